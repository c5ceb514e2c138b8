"""HTTP/2 (issue 15) through build/volley: ALPN picks h2 against nginx's
`listen ... ssl http2`, many fetches of one host share one connection's
streams (counted with nginx's $connection), the server's stream limit is
kept, bodies arrive intact and decoded, redirects cross to an HTTP/1.1 host,
h2c by prior knowledge, the fallbacks to HTTP/1.1, and a scripted hostile
h2 server (tests/servers/h2_hostile.py) for RST_STREAM, GOAWAY and a
protocol violation: every URL still gets exactly one record."""
import hashlib
import subprocess
import os

from harness import H2Hostile, Nghttpd, Nginx, check_record, run_volley, timeout, wait_until
from tls_helpers import certs_in

NO_CA_ENV = {"SSL_CERT_FILE": "", "SSL_CERT_DIR": ""}


def h2_nginx(tmp, certs, **kw):
    kw.setdefault("big_files", False)
    return Nginx(tmp, ssl=(certs["good"], certs.key), http2=True, **kw)


def fetch(certs, args, **kw):
    return run_volley(["--json", "--cacert", certs.ca] + list(args), env=NO_CA_ENV, **kw)


def local(ng):
    """localhost (the certificate's name) pinned to nginx's port."""
    return ng.base.replace("127.0.0.1", "localhost"), ["--resolve", "localhost:%d:127.0.0.1" % ng.port]


def all_ok(res, n):
    recs = res.by_index(n)
    bad = [r for r in recs.values() if not check_record(r)["ok"]]
    assert not bad, "%d of %d failed, e.g. %s\n%s" % (len(bad), n, bad[:2], res.describe())
    return recs


def protocols(entries):
    return {e["request"].rsplit(" ", 1)[-1] for e in entries}


@timeout(30)
def test_alpn_picks_h2_against_nginx_and_records_say_http_version_2(tmp):
    certs = certs_in(tmp)
    with h2_nginx(tmp, certs) as ng:
        base, pin = local(ng)
        res = fetch(certs, pin + [base + "/1k.bin", base + "/index.html"])
        recs = all_ok(res, 2)
        assert {r["http_version"] for r in recs.values()} == {"2"}, res.describe('http_version "2"')
        assert recs[0]["bytes"] == 1024 and recs[0]["status"] == 200, recs[0]
        entries = ng.wait_log(2)
        assert protocols(entries) == {"HTTP/2.0"}, "nginx saw %s" % protocols(entries)


@timeout(60, valgrind=300)
def test_thousand_gets_to_one_host_share_one_h2_connection(tmp):
    certs = certs_in(tmp)
    with h2_nginx(tmp, certs) as ng:
        base, pin = local(ng)
        res = fetch(certs, pin + ["-c", "50", "-i", "-"], input=(base + "/1k.bin\n") * 1000,
                    timeout=120)
        recs = all_ok(res, 1000)
        assert all(r["bytes"] == 1024 and r["http_version"] == "2" for r in recs.values())
        entries = ng.wait_log(1000)
        assert ng.connections(entries) == 1, (
            "1000 GETs at -c 50 over h2: want 1 connection, nginx saw %d" % ng.connections(entries))
        assert max(e["connection_requests"] for e in entries) == 1000, "not all on one connection"


@timeout(60, valgrind=300)
def test_server_stream_limit_is_kept_and_more_connections_open_only_when_full(tmp):
    certs = certs_in(tmp)
    with h2_nginx(tmp, certs, extra_http="http2_max_concurrent_streams 10;") as ng:
        base, pin = local(ng)
        res = fetch(certs, pin + ["-c", "50", "-i", "-"], input=(base + "/100k.bin\n") * 300,
                    timeout=120)
        all_ok(res, 300)
        entries = ng.wait_log(300)
        n = ng.connections(entries)
        # 50 in flight over streams of 10: at least 5 connections, and not one per fetch
        assert 5 <= n <= 10, "max 10 streams at -c 50: want 5..10 connections, got %d" % n
    with h2_nginx(tmp, certs, extra_http="http2_max_concurrent_streams 10;") as ng:
        base, pin = local(ng)
        res = fetch(certs, pin + ["-c", "50", "--per-host", "1", "-i", "-"],
                    input=(base + "/1k.bin\n") * 200, timeout=120)
        all_ok(res, 200)
        entries = ng.wait_log(200)
        assert ng.connections(entries) == 1, "--per-host 1 over h2: %d connections" % (
            ng.connections(entries))


@timeout(60, valgrind=300)
def test_big_body_over_h2_is_intact_with_output_dir(tmp):
    certs = certs_in(tmp)
    with h2_nginx(tmp, certs, big_files=True) as ng:
        base, pin = local(ng)
        out = os.path.join(str(tmp), "out")
        os.makedirs(out)
        res = fetch(certs, pin + ["-c", "2", "-o", out, base + "/10m.bin", base + "/10m.bin"])
        recs = all_ok(res, 2)
        want = hashlib.sha256(Nginx.content("10m.bin")).hexdigest()
        for r in recs.values():
            assert r["http_version"] == "2" and r["bytes"] == 10 * 1024 * 1024, r
            with open(r["file"], "rb") as f:
                got = hashlib.sha256(f.read()).hexdigest()
            assert got == want, "%s: sha256 %s, want %s" % (r["file"], got, want)


@timeout(30)
def test_gzip_over_h2_is_decoded(tmp):
    certs = certs_in(tmp)
    with h2_nginx(tmp, certs) as ng:
        base, pin = local(ng)
        out = os.path.join(str(tmp), "out")
        os.makedirs(out)
        res = fetch(certs, pin + ["-o", out, base + "/text.txt"])
        r = all_ok(res, 1)[0]
        assert r["http_version"] == "2", r
        with open(r["file"], "rb") as f:
            assert f.read() == Nginx.content("text.txt"), "decoded text.txt differs"
        e = ng.wait_log(1)[0]
        assert e["bytes"] < 10000, "nginx sent %d bytes: not gzip" % e["bytes"]


@timeout(30)
def test_redirect_from_h2_host_to_http11_host(tmp):
    certs = certs_in(tmp)
    with Nginx(tmp, big_files=False) as h1:
        loc = "location = /away { return 302 %s/1k.bin; }" % h1.base
        with h2_nginx(tmp, certs, locations=loc) as ng:
            base, pin = local(ng)
            res = fetch(certs, pin + [base + "/away"])
            r = all_ok(res, 1)[0]
            assert r["redirects"] == 1 and r["final_url"] == h1.base + "/1k.bin", r
            assert r["http_version"] == "1.1" and r["bytes"] == 1024, r
            assert protocols(ng.wait_log(1)) == {"HTTP/2.0"}
            assert protocols(h1.wait_log(1)) == {"HTTP/1.1"}


@timeout(30)
def test_prior_knowledge_speaks_h2c_to_nginx(tmp):
    with Nginx(tmp, http2=True, big_files=False) as ng:
        res = run_volley(["--json", "--http2-prior-knowledge", "-c", "20", "-i", "-"],
                         input=(ng.base + "/1k.bin\n") * 100)
        recs = all_ok(res, 100)
        assert {r["http_version"] for r in recs.values()} == {"2"}, res.describe('"2"')
        entries = ng.wait_log(100)
        assert protocols(entries) == {"HTTP/2.0"} and ng.connections(entries) == 1, (
            "h2c: want one HTTP/2.0 connection, nginx saw %d %s" % (ng.connections(entries),
                                                                    protocols(entries)))


@timeout(30)
def test_alpn_falls_back_to_http11_when_server_has_no_h2(tmp):
    certs = certs_in(tmp)
    with Nginx(tmp, ssl=(certs["good"], certs.key), big_files=False) as ng:
        base, pin = local(ng)
        res = fetch(certs, pin + [base + "/1k.bin"])
        r = all_ok(res, 1)[0]
        assert r["http_version"] == "1.1", res.describe('http_version "1.1"')
        assert protocols(ng.wait_log(1)) == {"HTTP/1.1"}


@timeout(30)
def test_http11_option_forces_http11_against_an_h2_server(tmp):
    certs = certs_in(tmp)
    with h2_nginx(tmp, certs) as ng:
        base, pin = local(ng)
        res = fetch(certs, pin + ["--http1.1", base + "/1k.bin", base + "/1k.bin"])
        recs = all_ok(res, 2)
        assert {r["http_version"] for r in recs.values()} == {"1.1"}, res.describe('"1.1"')
        assert protocols(ng.wait_log(2)) == {"HTTP/1.1"}
    # plain http without prior knowledge stays HTTP/1.1 too
    with Nginx(tmp, big_files=False) as ng:
        r = all_ok(run_volley(["--json", "--http2", ng.base + "/1k.bin"]), 1)[0]
        assert r["http_version"] == "1.1", r


def hostile(tmp, mode, n, args=(), settle=None):
    """Run n URLs against H2Hostile(mode); settle(requests) waits for the
    server's log to say what the client sent last (it logs after volley exits)."""
    with H2Hostile(tmp, mode) as s:
        urls = "".join("%s/u%d\n" % (s.base, i) for i in range(n))
        res = run_volley(["--json", "--http2-prior-knowledge", "-c", "20", "-i", "-"] + list(args),
                         input=urls, check=False)
        recs = res.by_index(n)
        if settle:
            wait_until(lambda: settle(s.requests()), 5, "the server's log")
        return res, recs, s.requests(), s.connections()


@timeout(30)
def test_a_connection_lost_before_any_answer_resends_a_get_once_and_never_a_post(tmp):
    # the server read the request, then the connection died without a byte
    # of answer: it may have acted on it (RFC 9113 §8.7 promises nothing),
    # so only an idempotent request goes again, as an HTTP/1.1 stale retry
    res, recs, streams, _ = hostile(tmp, "drop", 1)
    assert recs[0]["ok"] and recs[0]["attempts"] == 1, res.describe("the GET sent again")
    assert [s["action"] for s in streams if s["action"] in ("dropped", "answered")] == \
        ["dropped", "answered"], streams
    for extra in (["--data", "charge=1"], ["--data", "charge=1", "--retry", "0"]):
        res, recs, streams, _ = hostile(tmp, "drop", 1, extra)
        assert not recs[0]["ok"] and recs[0]["error"].startswith("http2: connection closed"), \
            res.describe("the POST failed, not sent again")
        assert [s["action"] for s in streams if s["action"] in ("dropped", "answered")] == \
            ["dropped"], ("the POST reached the server more than once", streams)


@timeout(30)
def test_refused_streams_are_sent_again_without_counting_an_attempt(tmp):
    res, recs, streams, _ = hostile(tmp, "refuse:5", 20)
    bad = [r for r in recs.values() if not r["ok"]]
    assert not bad, "REFUSED_STREAM must be retried: %s\n%s" % (bad[:2], res.describe())
    assert {r["attempts"] for r in recs.values()} == {1}, [r["attempts"] for r in recs.values()]
    assert sum(s["action"] == "reset" for s in streams) == 5, streams


@timeout(30)
def test_stream_reset_fails_that_fetch_with_the_error_code_named(tmp):
    res, recs, streams, _ = hostile(tmp, "reset:2", 20)
    failed = [r for r in recs.values() if not r["ok"]]
    assert len(failed) == sum(s["action"] == "reset" for s in streams) == 7, (
        "%d failed, %s\n%s" % (len(failed), streams, res.describe()))
    for r in failed:
        assert r["error"] == "http2: stream reset by server (INTERNAL_ERROR)", r
    assert res.rc == 1, res.describe("exit 1")
    ok = [r for r in recs.values() if r["ok"]]
    assert all(r["bytes"] == len(b"hello from h2\n") for r in ok), ok[:2]


@timeout(30)
def test_goaway_lets_lower_streams_finish_and_requeues_the_rest(tmp):
    res, recs, streams, conns = hostile(tmp, "goaway:7", 30)
    bad = [r for r in recs.values() if not r["ok"]]
    assert not bad, "GOAWAY: streams above last-stream-id must go again: %s\n%s" % (
        bad[:2], res.describe())
    assert {r["attempts"] for r in recs.values()} == {1}, "requeues are no attempts"
    assert sum(s["action"] == "answered" for s in streams) == 30, streams
    assert conns >= 5, "7 answered per connection for 30 URLs: want >= 5 connections, got %d" % conns


@timeout(30)
def test_protocol_violation_fails_the_connections_fetches_with_a_clear_error(tmp):
    res, recs, streams, conns = hostile(tmp, "badframe", 20)
    ok = [r for r in recs.values() if r["ok"]]
    failed = [r for r in recs.values() if not r["ok"]]
    assert len(ok) == 1 and len(failed) == 19, res.describe("1 ok, 19 failed")
    for r in failed:
        assert r["error"].startswith("http2: protocol error from server: PROTOCOL_ERROR"), r
    assert conns == 1, "a broken server is not asked again: %d connections" % conns


@timeout(30)
def test_verbose_traces_h2_frames(tmp):
    certs = certs_in(tmp)
    with h2_nginx(tmp, certs) as ng:
        base, pin = local(ng)
        res = fetch(certs, pin + ["-v", base + "/1k.bin"])
        all_ok(res, 1)
        for want in ("recv SETTINGS stream=0", "send HEADERS stream=1 flags=0x05",
                     "recv DATA stream=1 flags=0x01 length=1024"):
            assert want in res.stderr, "no %r in the trace:\n%s" % (want, res.stderr[-3000:])


@timeout(30)
def test_h2_header_block_is_bounded_like_http11(tmp):
    # 20 fields of 4000 bytes: over the 65536-byte default bound
    res, recs, _, _ = hostile(tmp, "bigheader:20", 2)
    for r in recs.values():
        assert not r["ok"] and r["error"] == "http2: header block over 65536 bytes", r
    # 10 of them fit
    res, recs, _, _ = hostile(tmp, "bigheader:10", 2)
    assert all(r["ok"] for r in recs.values()), res.describe("both ok")


@timeout(30)
def test_stalled_h2_stream_times_out_and_is_reset(tmp):
    def reset_seen(reqs):
        return sum(r["action"] == "client_reset" for r in reqs) >= 3
    res, recs, streams, _ = hostile(tmp, "stall", 3, ["--read-timeout", "1"], settle=reset_seen)
    for r in recs.values():
        assert r["error"] == "timeout: read after 1.0 s in AWAIT_HEADERS", r
    resets = {s["stream"] for s in streams if s["action"] == "client_reset"}
    assert resets == {1, 3, 5}, "each timed-out stream must be reset (CANCEL): %s" % streams


@timeout(30)
def test_request_bodies_go_over_h2_from_memory_and_from_a_file(tmp):
    path = os.path.join(str(tmp), "body.bin")
    with open(path, "wb") as f:
        f.write(b"x" * 100000)
    res, recs, streams, _ = hostile(tmp, "ok", 3, ["-d", "hello=world"])
    assert all(r["ok"] for r in recs.values()), res.describe("ok")
    assert sorted(s["bytes"] for s in streams if s["action"] == "body") == [11, 11, 11], streams
    res, recs, streams, _ = hostile(tmp, "ok", 2, ["--data-binary", "@" + path])
    assert all(r["ok"] for r in recs.values()), res.describe("ok")
    assert [s["bytes"] for s in streams if s["action"] == "body"] == [100000, 100000], streams


@timeout(120)
def test_warc_of_h2_exchanges_holds_them_as_http11_messages(tmp):
    # the raw-bytes tap sees an h2 exchange as the HTTP/1.1 it is rendered to (h2.h)
    from test_cli_warc import check_warc, responses, sha256
    certs = certs_in(tmp)
    path = os.path.join(str(tmp), "h2.warc.gz")
    with h2_nginx(tmp, certs) as ng:
        base, pin = local(ng)
        urls = [base + "/1k.bin", base + "/text.txt"]
        res = fetch(certs, pin + ["--warc", path] + urls, timeout=60)
        assert {r["http_version"] for r in all_ok(res, 2).values()} == {"2"}, res.describe()
    recs = check_warc(path)
    got = responses(recs)
    one = got[urls[0]]
    assert one["http_status"] == 200 and not one["truncated"], one
    assert one["payload_sha256"] == sha256(Nginx.content("1k.bin")), one
    text = got[urls[1]]
    assert text["content_sha256"] == sha256(Nginx.content("text.txt")), text
    assert text["http_headers"].get("content-encoding") == "gzip", text["http_headers"]
    reqs = [r for r in recs if r["type"] == "request"]
    assert len(reqs) == 2 and all(r["block_head"].startswith("GET /") for r in reqs), reqs


@timeout(60, valgrind=300)
def test_nghttpd_over_tls_and_h2c_serves_files_intact(tmp):
    certs = certs_in(tmp)
    names = ["empty.bin", "1k.bin", "100k.bin", "10m.bin", "text.txt"]
    for ssl in ((certs["good"], certs.key), None):
        with Nghttpd(tmp, ssl=ssl, big_files=True) as srv:
            base = srv.base
            args = ["-c", "5", "-o", os.path.join(str(tmp), "out-%s" % bool(ssl))]
            os.makedirs(args[-1])
            if ssl:
                base, pin = base.replace("127.0.0.1", "localhost"), [
                    "--resolve", "localhost:%d:127.0.0.1" % srv.port]
                res = fetch(certs, pin + args + [base + "/" + n for n in names], timeout=60)
            else:
                res = run_volley(["--json", "--http2-prior-knowledge"] + args +
                                 [base + "/" + n for n in names], timeout=60)
            recs = all_ok(res, len(names))
            for i, n in enumerate(names):
                r = recs[i]
                assert r["http_version"] == "2" and r["bytes"] == len(Nginx.content(n)), r
                if r.get("file"):
                    with open(r["file"], "rb") as f:
                        assert f.read() == Nginx.content(n), "%s differs" % n


IDLE_PROGRAM = r"""
#include <stdio.h>
#include <volley.h>

static void on_result(const vl_result *r, void *data)
{
    (void)data;
    printf("%d %s %s\n", r->status, r->http_version ? r->http_version : "-",
           r->error ? r->error : "ok");
}

int main(int argc, char **argv)
{
    (void)argc;
    vl_loop *loop = vl_loop_new();
    vl_client_opts o;
    vl_client_opts_init(&o);
    o.http_version = VL_HTTP_2_PRIOR;
    o.idle_timeout_s = 0.5;
    vl_client *cl;
    char err[256];
    if (!loop || vl_client_new(loop, &o, &cl, err, sizeof(err)) < 0)
        return 1;
    vl_request req = {0};
    req.url = argv[1];
    vl_fetch_start(cl, &req, on_result, NULL, NULL);
    vl_loop_run(loop); /* returns once nothing is left: the idle session closed */
    vl_client_free(cl);
    vl_loop_free(loop);
    return 0;
}
"""


@timeout(30)
def test_idle_h2_connection_is_closed_by_the_idle_timeout(tmp):
    import time
    from test_readme import build
    exe = build(str(tmp), 99, IDLE_PROGRAM)
    with H2Hostile(tmp, "ok") as s:
        t0 = time.monotonic()
        p = subprocess.run([exe, s.base + "/x"], capture_output=True, text=True, timeout=20)
        elapsed = time.monotonic() - t0
        assert p.returncode == 0 and p.stdout == "200 2 ok\n", (p.returncode, p.stdout, p.stderr)
        assert 0.4 <= elapsed < 5, "idle timeout 0.5 s: the loop ran %.2f s" % elapsed
        wait_until(lambda: any(r["action"] == "client_goaway" for r in s.requests()), 5,
                   "the client's GOAWAY")


@timeout(60)
def test_h2_rides_proxy_tunnels_but_never_speaks_h2_to_a_forwarding_proxy(tmp):
    from test_proxy import Microsocks, Squid, records, volley
    certs = certs_in(tmp)
    with h2_nginx(tmp, certs) as ng, Squid(tmp) as sq:
        urls = ["https://localhost:%d/1k.bin?n=%d" % (ng.port, i) for i in range(20)]
        res = volley(["-c", "10", "--cacert", certs.ca, "-x", "http://" + sq.base] + urls)
        recs = records(res, 20)
        assert all(r["ok"] and r["http_version"] == "2" for r in recs), res.describe("h2 in CONNECT")
        entries = ng.wait_log(20)
        assert ng.connections(entries) == 1 and protocols(entries) == {"HTTP/2.0"}, entries[:3]
        assert [m for _, m, _, _ in sq.access_log(1)] == ["CONNECT"], sq.access_log(1)
    with Nginx(tmp, http2=True, big_files=False) as ng, Microsocks(tmp) as ms, \
            Nginx(tmp, big_files=False) as h1, Squid(tmp) as sq:
        # h2c by prior knowledge through a SOCKS tunnel ...
        urls = ["http://127.0.0.1:%d/1k.bin?n=%d" % (ng.port, i) for i in range(5)]
        res = volley(["--http2-prior-knowledge", "-x", "socks5://" + ms.base] + urls)
        assert all(r["ok"] and r["http_version"] == "2" for r in records(res, 5)), res.describe()
        # ... but HTTP/1.1 to a proxy that forwards (squid speaks no h2c)
        res = volley(["--http2-prior-knowledge", "-x", "http://" + sq.base, h1.base + "/1k.bin"])
        r = records(res, 1)[0]
        assert r["ok"] and r["http_version"] == "1.1", res.describe("1.1 to squid")


@timeout(30)
def test_header_values_with_trailing_blanks_are_trimmed_for_h2(tmp):
    # HTTP/1.1 servers strip the OWS of "X-A: b "; h2 forbids it in a field
    # value (RFC 9113 §8.2.1), and nghttpd resets such a stream
    with Nghttpd(tmp) as srv:
        res = run_volley(["--json", "--http2-prior-knowledge", "-H", "X-A: b \t",
                          srv.base + "/1k.bin"])
        r = all_ok(res, 1)[0]
        assert r["http_version"] == "2" and r["bytes"] == 1024, r


@timeout(40)
def test_a_silent_connection_takes_no_new_streams_after_a_read_timeout(tmp):
    # the first connection goes silent: its streams time out, and their
    # retries (and later fetches) go to a new connection, not the dead one
    res, recs, streams, conns = hostile(tmp, "stallconn", 3, ["--read-timeout", "1", "--retry", "1",
                                                              "--retry-delay", "0.1"])
    assert all(r["ok"] and r["attempts"] == 2 for r in recs.values()), \
        res.describe("each fetch ok on its second attempt")
    assert conns == 2, ("one silent connection and one new one expected", conns, streams)


@timeout(30)
def test_a_request_nghttp2_will_not_send_fails_once_with_the_reason(tmp):
    # a 70,000-byte header field is over nghttp2's header block limit: the
    # stream is refused locally; that is no server's REFUSED_STREAM to send again
    with Nghttpd(tmp) as srv:
        res = run_volley(["--json", "-v", "--http2-prior-knowledge", "-H", "X-Big: " + "b" * 70000,
                          srv.base + "/1k.bin"], check=False)
        r = res.by_index(1)[0]
        assert not r["ok"] and r["error"].startswith("http2: request not sent: "), r
        assert "sending it again" not in res.stderr, res.stderr[-1500:]
