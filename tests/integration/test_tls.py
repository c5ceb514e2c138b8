"""HTTPS through build/volley: verification and its errors, CA sources,
session resumption, connection reuse, and servers that break TLS mid-way.

Certificates come from tests/lib/certs.py (a throwaway CA per test); nginx from
harness.Nginx; the misbehaving TLS servers from tests/lib/tls_helpers.py."""
import os

from harness import Nginx, check_record, run_volley, timeout
from tls_helpers import WWW_BODY, TlsServer, certs_in

# Our CA sources only: the image may point these at the system bundle.
NO_CA_ENV = {"SSL_CERT_FILE": "", "SSL_CERT_DIR": ""}


def tls_nginx(tmp, certs, cert="good", **kw):
    return Nginx(tmp, ssl=(certs[cert], certs.key), big_files=False, **kw)


def fetch(args, env=None, **kw):
    e = dict(NO_CA_ENV)
    e.update(env or {})
    return run_volley(["--json"] + list(args), env=e, **kw)


def one(res, url=None):
    return check_record(res.one(), url)


def test_trusted_cert_fetched_with_cacert(tmp):
    certs = certs_in(tmp)
    with tls_nginx(tmp, certs) as ng:
        url = "https://localhost:%d/1k.bin" % ng.port
        res = fetch(["--cacert", certs.ca, url])
        rec = one(res, url)
        assert rec["ok"] and rec["status"] == 200 and rec["bytes"] == 1024, res.describe()
        assert res.rc == 0, res.describe()
        assert rec["timings"]["tls_ms"] >= 0, rec


def test_each_bad_certificate_fails_with_its_own_error(tmp):
    certs = certs_in(tmp)
    cases = [("selfsigned", "localhost", "tls: certificate not trusted (unknown CA)"),
             ("unknown_ca", "localhost", "tls: certificate not trusted (unknown CA)"),
             ("expired", "localhost", "tls: certificate expired"),
             ("future", "localhost", "tls: certificate not yet valid"),
             ("wronghost", "localhost",
              "tls: hostname mismatch (cert for wrong.test, wanted localhost)"),
             ("wronghost", "127.0.0.1",
              "tls: hostname mismatch (cert for wrong.test, wanted 127.0.0.1)")]
    for cert, host, want in cases:
        with tls_nginx(tmp, certs, cert) as ng:
            url = "https://%s:%d/1k.bin" % (host, ng.port)
            res = fetch(["--cacert", certs.ca, url])
            rec = one(res, url)
            assert not rec["ok"] and rec["error"] == want, (
                "%s cert for %s: expected error %r, got %r\n%s"
                % (cert, host, want, rec["error"], res.describe()))
            assert res.rc == 1, res.describe()
            assert ng.access_log() == [], "a request went out over an unverified connection"


def test_insecure_accepts_every_bad_certificate(tmp):
    certs = certs_in(tmp)
    for cert in ("selfsigned", "unknown_ca", "expired", "wronghost"):
        with tls_nginx(tmp, certs, cert) as ng:
            for flag in ("-k", "--insecure"):
                url = "https://localhost:%d/1k.bin" % ng.port
                res = fetch([flag, url])
                rec = one(res, url)
                assert rec["ok"] and rec["bytes"] == 1024, "%s with %s:\n%s" % (
                    cert, flag, res.describe())


def test_ip_literal_host_is_verified_against_ip_sans(tmp):
    certs = certs_in(tmp)
    with tls_nginx(tmp, certs) as ng:
        url = "https://127.0.0.1:%d/1k.bin" % ng.port
        rec = one(fetch(["--cacert", certs.ca, url]), url)
        assert rec["ok"] and rec["bytes"] == 1024, rec


def test_ca_from_ssl_cert_file_and_cacert_option(tmp):
    certs = certs_in(tmp)
    with tls_nginx(tmp, certs) as ng:
        url = "https://localhost:%d/index.html" % ng.port
        rec = one(fetch([url], env={"SSL_CERT_FILE": certs.ca}), url)
        assert rec["ok"], "SSL_CERT_FILE=%s: %s" % (certs.ca, rec)
        cadir = os.path.join(str(tmp), "cadir")
        os.makedirs(cadir)
        os.symlink(certs.ca, os.path.join(cadir, "volley-test-ca.pem"))
        rec = one(fetch([url], env={"SSL_CERT_DIR": cadir}), url)
        assert rec["ok"], "SSL_CERT_DIR=%s: %s" % (cadir, rec)
        # --cacert wins over the environment
        rec = one(fetch(["--cacert", certs.ca, url], env={"SSL_CERT_FILE": certs.ca2}), url)
        assert rec["ok"], rec
        # a CA that did not sign the server's certificate
        rec = one(fetch(["--cacert", certs.ca2, url]), url)
        assert rec["error"] == "tls: certificate not trusted (unknown CA)", rec


def test_unreadable_ca_file_is_reported(tmp):
    certs = certs_in(tmp)
    with tls_nginx(tmp, certs) as ng:
        url = "https://localhost:%d/index.html" % ng.port
        missing = os.path.join(str(tmp), "nope.pem")
        res = fetch(["--cacert", missing, url])
        assert res.rc != 0, res.describe()
        text = (res.records[0]["error"] if res.records else "") + res.stderr
        assert "tls: cannot load CA file %s: No such file or directory" % missing in text, (
            res.describe())
        res = fetch(["--cacert", certs.key, url])  # a key, not a certificate
        text = (res.records[0]["error"] if res.records else "") + res.stderr
        assert "tls: cannot load CA file %s: " % certs.key in text, res.describe()


@timeout(90)
def test_second_and_later_connections_to_a_host_resume_the_session(tmp):
    certs = certs_in(tmp)
    hosts = ["localhost", "a.test", "b.test"]
    with tls_nginx(tmp, certs, keepalive_timeout_s=0) as ng:
        resolve = []
        for h in hosts[1:]:
            resolve += ["--resolve", "%s:%d:127.0.0.1" % (h, ng.port)]
        urls = ["https://%s:%d/1k.bin" % (hosts[i % 3], ng.port) for i in range(15)]
        res = fetch(["--cacert", certs.ca, "-c", "1", "-i", "-"] + resolve,
                    input="\n".join(urls) + "\n")
        recs = res.by_index(15)
        assert all(r["ok"] for r in recs.values()), res.describe()
        log = ng.wait_log(15)
    assert len({e["connection"] for e in log}) == 15, "keepalive_timeout 0 should close each"
    flags = "".join(e["ssl_reused"] for e in log)
    # one full handshake per host (the first three requests), the rest resumed
    assert flags == "..." + "r" * 12, "ssl_session_reused per request: %r" % flags


def test_verbose_trace_names_version_suite_alpn_and_resumption(tmp):
    certs = certs_in(tmp)
    with tls_nginx(tmp, certs, keepalive_timeout_s=0) as ng:
        url = "https://localhost:%d/index.html" % ng.port
        res = fetch(["-v", "-c", "1", "--cacert", certs.ca, url, url])
        assert all(r["ok"] for r in res.records), res.describe()
    lines = [l for l in res.stderr.splitlines() if " tls: TLSv1.2 TLS-" in l]
    assert len(lines) == 2, "expected two tls trace lines:\n%s" % res.stderr[-3000:]
    assert "alpn=http/1.1" in lines[0] and "resumed" not in lines[0], lines
    assert "alpn=http/1.1 resumed" in lines[1], lines


@timeout(120)
def test_thousand_gets_at_concurrency_50_use_at_most_50_connections(tmp):
    certs = certs_in(tmp)
    with tls_nginx(tmp, certs) as ng:
        url = "https://localhost:%d/1k.bin" % ng.port
        res = fetch(["--cacert", certs.ca, "-c", "50", "-i", "-"], input=(url + "\n") * 1000,
                    timeout=90)
        recs = res.by_index(1000)
        bad = [r for r in recs.values() if not r["ok"] or r["bytes"] != 1024]
        assert not bad, "%d failed, e.g. %s" % (len(bad), bad[:3])
        log = ng.wait_log(1000)
    conns = {}
    for e in log:
        conns.setdefault(e["connection"], e["ssl_reused"])
    assert len(conns) <= 50, "1000 GETs at -c 50 used %d connections" % len(conns)
    resumed = sum(1 for v in conns.values() if v == "r")
    print("1000 GETs: %d connections, %d of them resumed sessions" % (len(conns), resumed))


def test_peer_closing_without_close_notify_after_a_complete_body_is_fine(tmp):
    certs = certs_in(tmp)
    with TlsServer(tmp, "www-no-notify", certs.good, certs.key) as srv:
        url = srv.url("/")
        rec = one(fetch(["--cacert", certs.ca, url]), url)
        assert rec["ok"] and rec["bytes"] == len(WWW_BODY), rec


def test_servers_that_break_tls_fail_cleanly(tmp):
    certs = certs_in(tmp)
    cases = [("reset-handshake", "tls: connection reset by peer during handshake"),
             ("eof-handshake", "tls: connection closed by peer during handshake"),
             ("truncated-handshake", "tls: truncated record"),
             ("truncated-body", "tls: truncated record")]
    for mode, want in cases:
        with TlsServer(tmp, mode, certs.good, certs.key) as srv:
            url = srv.url("/")
            res = fetch(["--cacert", certs.ca, url], timeout=20)
            rec = one(res, url)
            assert not rec["ok"], "%s: expected a failure\n%s" % (mode, res.describe())
            assert rec["error"].startswith(want), "%s: expected %r..., got %r" % (
                mode, want, rec["error"])


def test_https_url_for_a_plain_http_port_says_so(tmp):
    with Nginx(tmp, big_files=False) as ng:
        url = "https://127.0.0.1:%d/index.html" % ng.port
        rec = one(fetch(["-k", url]), url)
        assert rec["error"] == ("tls: handshake failed: the server answered in plain HTTP, "
                                "not TLS"), rec
