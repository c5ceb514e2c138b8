"""HTTP semantics users expect.

Redirects: every code (301/302/303/307/308) with relative, absolute-path,
absolute and scheme-relative Locations, against nginx's `return` and our own
server; method rewriting (POST -> GET on 301/302/303, 307/308 keep method and
body); loops and chains beyond --max-redirs; --max-redirs 0; a Location with
an unsupported scheme; credentials set with -H dropped across hosts.
Decompression: gzip (nginx and ours), zlib-wrapped and raw deflate, checked by
the sha256 of the saved file; --no-decompress; corrupt and truncated streams;
a 1 GiB gzip bomb in bounded memory and under --max-filesize.
Retries: transient statuses, Retry-After, POST, refused connections, the last
transfer left waiting for its retry, --retry-max-time.
Request bodies from files (20 MiB, streamed, no Expect), saved output (100 MiB,
partial files removed, unwritable output paths), --fail, and --timeout across
a chain of redirects.

Servers: nginx for what it does natively, tests/servers/semantics.py for the
rest (driven through the harness's ScriptedServer class: same command line),
tests/servers/scripted.py for its misbehaving paths."""
import hashlib
import http.client
import json
import os
import random

from harness import (SERVERS_DIR, Nginx, ScriptedServer, check_record, free_port, headers_of,
                     read_file_field, run_volley, slack, timeout, under_valgrind)
import scripted
import semantics

CODES = (301, 302, 303, 307, 308)
MIB = 1024 * 1024


class SemanticsServer(ScriptedServer):
    """tests/servers/semantics.py (same command line and request log as scripted.py)."""
    SCRIPT = os.path.join(SERVERS_DIR, "semantics.py")


def sha256(data):
    return hashlib.sha256(data).hexdigest()


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(MIB), b""):
            h.update(block)
    return h.hexdigest()


def file_path(rec, cwd):
    path = rec.get("file")
    assert isinstance(path, str) and path, "record has no 'file': %s" % rec
    return path if os.path.isabs(path) else os.path.join(cwd, path)


def fetch_one(url, *extra, **kw):
    res = run_volley(["--json"] + list(extra) + [url], **kw)
    return check_record(res.one(), url), res


def logged(server, path):
    """Logged requests whose path (target without query) is path."""
    return [r for r in server.requests() if r["target"].split("?")[0] == path]


def echo_of(rec, cwd):
    """What our server's /echo saw, from the file -o saved."""
    return json.loads(read_file_field(rec, cwd))


def files_in(d):
    return sorted(os.listdir(d)) if os.path.isdir(d) else []


# ------------------------------------------------------------------ redirects

def test_nginx_redirects_every_code_and_location_form(tmp):
    # rel-N: Location "/1k.bin" as written (absolute_redirect off);
    # abs-N: an absolute URL built from the request's Host;
    # auto-N: "/1k.bin" that nginx itself turns into http://127.0.0.1:PORT/1k.bin.
    locs = []
    for code in CODES:
        locs.append("location = /rel-%d { absolute_redirect off; return %d /1k.bin; }" % (code, code))
        locs.append("location = /abs-%d { return %d $scheme://$http_host/1k.bin; }" % (code, code))
        locs.append("location = /auto-%d { return %d /1k.bin; }" % (code, code))
    paths = ["/%s-%d" % (form, code) for code in CODES for form in ("rel", "abs", "auto")]
    with Nginx(tmp, locations="\n        ".join(locs), big_files=False) as ng:
        probe = http.client.HTTPConnection("127.0.0.1", ng.port, timeout=5)
        probe.request("GET", "/rel-302")
        rel_loc = probe.getresponse().getheader("Location")
        probe.close()
        res = run_volley(["--json", "-c", "4"] + [ng.url(p) for p in paths], timeout=20)
        entries = ng.wait_log(2 * len(paths) + 1)  # + the probe above
    assert rel_loc == "/1k.bin", "nginx config did not give a relative Location: %r" % rel_loc
    recs = res.by_index(len(paths))
    bad = []
    for i, p in enumerate(paths):
        r = check_record(recs[i], ng.url(p))
        if not (r["ok"] and r["status"] == 200 and r["redirects"] == 1 and r["bytes"] == 1024
                and r["final_url"] == ng.url("/1k.bin")):
            bad.append(r)
    assert not bad, "redirects not followed as expected (want status 200, redirects 1, " \
        "1024 bytes, final_url %s):\n%s" % (ng.url("/1k.bin"), "\n".join(map(str, bad)))
    gets = [e for e in entries if e["path"] == "/1k.bin"]
    assert len(gets) == len(paths) and all(e["method"] == "GET" for e in gets), entries
    assert res.rc == 0, res.describe("exit 0")


def test_redirect_location_forms_on_own_server(tmp):
    # From /from/here/redirect: absolute URL, scheme-relative (//host:port/...),
    # absolute path, and a path relative to the redirecting URL (../rel/echo).
    with SemanticsServer(tmp) as s:
        forms = {
            "absolute": ("http://127.0.0.1:%d/abs/echo?x=1" % s.port, "/abs/echo?x=1"),
            "scheme-relative": ("//127.0.0.1:%d/sr/echo" % s.port, "/sr/echo"),
            "absolute-path": ("/ap/echo", "/ap/echo"),
            "path-relative": ("../rel/echo", "/from/rel/echo"),
        }
        cases = []
        for code in CODES:
            for name, (loc, target) in sorted(forms.items()):
                q = "code=%d&to=%s" % (code, loc.replace("&", "%26").replace("?", "%3F"))
                cases.append((code, name, s.url("/from/here/redirect?" + q), s.url(target)))
        res = run_volley(["--json", "-c", "4"] + [c[2] for c in cases], timeout=20)
        reqs = s.requests()
    recs = res.by_index(len(cases))
    bad = []
    for i, (code, name, url, final) in enumerate(cases):
        r = check_record(recs[i], url)
        if not (r["ok"] and r["status"] == 200 and r["redirects"] == 1 and r["final_url"] == final):
            bad.append("%d %s: want final_url %s; got %s" % (code, name, final, r))
    assert not bad, "\n".join(bad)
    targets = sorted(r["target"] for r in reqs if "/redirect" not in r["target"])
    want = sorted(c[3][len(s.base):] for c in cases)
    assert targets == want, "server saw %s, expected %s" % (targets, want)


def test_post_redirects_rewrite_the_method_as_browsers_do(tmp):
    # 301/302/303 after a POST: GET without a body (nor its Content-Length or
    # Content-Type); 307/308: the same POST with the same body.
    out = os.path.join(tmp, "out")
    body = "a=1&b=two"
    with SemanticsServer(tmp) as s:
        urls = [s.url("/redirect?code=%d&to=echo" % code) for code in CODES]
        res = run_volley(["--json", "-c", "1", "-d", body, "-o", out] + urls, cwd=tmp)
        firsts = logged(s, "/redirect")
    recs = res.by_index(len(CODES))
    assert [r["method"] for r in firsts] == ["POST"] * 5 and all(
        r["body"] == body for r in firsts), firsts
    for i, code in enumerate(CODES):
        r = recs[i]
        assert r["ok"] and r["status"] == 200 and r["redirects"] == 1, (code, r)
        got = echo_of(r, tmp)
        h = headers_of(got)
        if code in (307, 308):
            assert got["method"] == "POST" and got["body"] == body, (
                "%d must keep POST and its body; the target saw %s %r" % (code, got["method"], got["body"]))
            assert h.get("content-length") == [str(len(body))], (code, h)
            assert h.get("content-type") == ["application/x-www-form-urlencoded"], (code, h)
        else:
            assert got["method"] == "GET" and got["body_len"] == 0, (
                "POST then %d must become a GET without a body; the target saw %s with %d bytes"
                % (code, got["method"], got["body_len"]))
            assert "content-length" not in h and "content-type" not in h, (
                "GET after %d still carries body headers: %s" % (code, h))


def test_307_308_resend_a_file_body_and_put_keeps_its_method(tmp):
    out = os.path.join(tmp, "out")
    src = os.path.join(tmp, "body.bin")
    data = random.Random(7).randbytes(200000)
    with open(src, "wb") as f:
        f.write(data)
    with SemanticsServer(tmp) as s:
        urls = [s.url("/redirect?code=%d&to=echo" % c) for c in (303, 307, 308)]
        files = run_volley(["--json", "-c", "1", "--data-binary", "@" + src, "-o", out] + urls,
                           cwd=tmp)
        put_urls = [s.url("/redirect?code=%d&to=echo" % c) for c in (301, 302, 303)]
        puts = run_volley(["--json", "-c", "1", "-X", "PUT", "-d", "x=1", "-o", out + "2"]
                          + put_urls, cwd=tmp)
    f = files.by_index(3)
    got = [echo_of(f[i], tmp) for i in range(3)]
    assert got[0]["method"] == "GET" and got[0]["body_len"] == 0, got[0]
    for g, code in zip(got[1:], (307, 308)):
        assert g["method"] == "POST" and g["body_len"] == len(data) and g["body_sha256"] == sha256(data), (
            "%d: the file body must be sent again whole; target saw %s, %d bytes"
            % (code, g["method"], g["body_len"]))
    p = puts.by_index(3)
    methods = [echo_of(p[i], tmp)["method"] for i in range(3)]
    # Only POST turns into GET on 301/302 (RFC 9110 §15.4.2, Fetch); 303 makes anything a GET.
    assert methods == ["PUT", "PUT", "GET"], "PUT after 301, 302, 303: %s" % methods
    assert echo_of(p[0], tmp)["body"] == "x=1", echo_of(p[0], tmp)


def test_redirect_loop_and_long_chain_fail_with_too_many_redirects(tmp):
    with SemanticsServer(tmp) as s:
        loop, res_loop = fetch_one(s.url("/loop"))
        chain_url = s.url("/chain?n=5")
        chain, res_chain = fetch_one(chain_url, "--max-redirs", "3")
        exact_url = s.url("/chain?n=3")
        exact, res_exact = fetch_one(exact_url, "--max-redirs", "3")
    assert not loop["ok"] and loop["error"] == "redirect: too many redirects (10)", (
        res_loop.describe("failure 'redirect: too many redirects (10)' for a loop"))
    assert loop["redirects"] == 10 and res_loop.rc == 1, loop
    assert not chain["ok"] and chain["error"] == "redirect: too many redirects (3)", (
        res_chain.describe("failure 'redirect: too many redirects (3)'"))
    assert chain["redirects"] == 3 and res_chain.rc == 1, chain
    assert exact["ok"] and exact["status"] == 200 and exact["redirects"] == 3, (
        res_exact.describe("a chain of exactly --max-redirs to succeed"))
    assert exact["bytes"] == len(semantics.CHAIN_END), exact
    assert exact["final_url"] == s.url("/chain?n=0&code=302&ms=0"), exact


def test_max_redirs_zero_returns_the_redirect_itself(tmp):
    with SemanticsServer(tmp) as s:
        url = s.url("/redirect?code=301&to=echo")
        r, res = fetch_one(url, "--max-redirs", "0")
        reqs = s.requests()
    assert r["ok"] and r["status"] == 301 and r["redirects"] == 0, res.describe(
        "ok with the 301 itself")
    assert r["final_url"] == url and r["bytes"] == len(b"moved\n"), r
    assert [q["target"] for q in reqs] == ["/redirect?code=301&to=echo"], reqs
    assert res.rc == 0, res.describe("exit 0")


def test_redirect_to_ftp_fails_clearly(tmp):
    with SemanticsServer(tmp) as s:
        url = s.url("/redirect?code=302&to=ftp://127.0.0.1/pub/file.txt")
        r, res = fetch_one(url)
    assert not r["ok"] and res.rc == 1, res.describe("a failure for a Location with ftp://")
    assert r["error"].startswith("redirect:") and "ftp" in r["error"], r["error"]


def test_cross_host_redirect_drops_credentials_same_host_keeps_them(tmp):
    with SemanticsServer(tmp) as s:
        p = s.port
        a, b = "http://a.test:%d" % p, "http://b.test:%d" % p
        urls = [a + "/redirect?to=%s/cross/echo" % b,      # absolute, other host
                a + "/redirect?to=//b.test:%d/sr/echo" % p,  # scheme-relative, other host
                a + "/redirect?to=/same/echo",               # same host
                a + "/redirect?to=%s/abs-same/echo" % a]     # absolute, same host
        res = run_volley(["--json", "-c", "1",
                          "--resolve", "a.test:%d:127.0.0.1" % p,
                          "--resolve", "b.test:%d:127.0.0.1" % p,
                          "-H", "Authorization: Bearer s3cret", "-H", "Cookie: session=abc",
                          "-H", "X-Keep: yes"] + urls)
        reqs = {r["target"]: headers_of(r) for r in s.requests()}
    recs = res.by_index(4)
    assert all(r["ok"] and r["redirects"] == 1 for r in recs.values()), res.describe("4 ok")
    for target in ("/cross/echo", "/sr/echo"):
        h = reqs[target]
        assert h.get("host") == ["b.test:%d" % p], (target, h.get("host"))
        assert "authorization" not in h and "cookie" not in h, (
            "credentials leaked to another host on %s: %s" % (target, h))
        assert h.get("x-keep") == ["yes"], "other -H headers should survive: %s" % h
    for target in ("/same/echo", "/abs-same/echo"):
        h = reqs[target]
        assert h.get("host") == ["a.test:%d" % p], (target, h.get("host"))
        assert h.get("authorization") == ["Bearer s3cret"] and h.get("cookie") == ["session=abc"], (
            "same-host redirect lost credentials on %s: %s" % (target, h))


# -------------------------------------------------------------- decompression

def test_gzip_from_nginx_decoded_and_no_decompress_sends_no_accept_encoding(tmp):
    with Nginx(tmp, big_files=False) as ng:
        url = ng.url("/text.txt")
        r, res = fetch_one(url, "-o", os.path.join(tmp, "out"), cwd=tmp)
        raw, res_raw = fetch_one(url, "--no-decompress", "-o", os.path.join(tmp, "raw"), cwd=tmp)
        entries = ng.wait_log(2)
    want = Nginx.content("text.txt")
    assert r["ok"] and r["bytes"] == len(want), res.describe("ok, %d decoded bytes" % len(want))
    assert sha256_file(file_path(r, tmp)) == sha256(want), "saved gzip-decoded body differs"
    assert entries[0]["bytes"] < len(want) // 4, "nginx did not compress: %s" % entries[0]
    # Without Accept-Encoding nginx sends the file as is.
    assert raw["ok"] and raw["bytes"] == len(want), res_raw.describe("ok, %d bytes" % len(want))
    assert entries[1]["bytes"] == len(want), (
        "nginx compressed, so --no-decompress still sent Accept-Encoding: %s" % entries[1])


def test_gzip_and_zlib_deflate_decoded_with_matching_sha256(tmp):
    out = os.path.join(tmp, "out")
    want = semantics.payload()
    paths = ["/enc/gzip", "/enc/deflate", "/enc/identity",
             "/enc/gzip?split=1", "/enc/deflate?split=1", "/enc/gzip?split=11"]
    with SemanticsServer(tmp) as s:
        res = run_volley(["--json", "-o", out] + [s.url(p) for p in paths], cwd=tmp)
        reqs = s.requests()
    recs = res.by_index(len(paths))
    for i, p in enumerate(paths):
        r = recs[i]
        assert r["ok"] and r["status"] == 200, (p, r)
        assert r["bytes"] == len(want), "%s: bytes %d, want the decoded %d" % (p, r["bytes"], len(want))
        assert sha256_file(file_path(r, tmp)) == sha256(want), "%s: saved body differs" % p
    for q in reqs:
        ae = ",".join(headers_of(q).get("accept-encoding", [])).lower()
        assert "gzip" in ae and "deflate" in ae, "Accept-Encoding %r on %s" % (ae, q["target"])


def test_raw_deflate_decoded_with_matching_sha256(tmp):
    # "Content-Encoding: deflate" without the zlib wrapper, as some servers
    # send it; split=1: the first byte of the stream arrives on its own.
    out = os.path.join(tmp, "out")
    want = semantics.payload()
    paths = ["/enc/rawdeflate", "/enc/rawdeflate?split=1"]
    with SemanticsServer(tmp) as s:
        res = run_volley(["--json", "-o", out] + [s.url(p) for p in paths], cwd=tmp)
    recs = res.by_index(len(paths))
    for i, p in enumerate(paths):
        r = recs[i]
        assert r["ok"] and r["bytes"] == len(want), res.describe(
            "%s: ok with %d decoded bytes" % (p, len(want)))
        assert sha256_file(file_path(r, tmp)) == sha256(want), "%s: saved body differs" % p


def test_no_decompress_keeps_encoded_bytes_and_sends_no_accept_encoding(tmp):
    out = os.path.join(tmp, "out")
    kinds = ["gzip", "deflate"]
    with SemanticsServer(tmp) as s:
        res = run_volley(["--json", "--no-decompress", "-o", out]
                         + [s.url("/enc/" + k) for k in kinds], cwd=tmp)
        reqs = s.requests()
    recs = res.by_index(len(kinds))
    for i, k in enumerate(kinds):
        encoded, _ = semantics.encode(k, semantics.payload())
        r = recs[i]
        assert r["ok"] and r["bytes"] == len(encoded), (
            "%s: bytes %d, want the %d encoded bytes: %s" % (k, r["bytes"], len(encoded), r))
        assert sha256_file(file_path(r, tmp)) == sha256(encoded), "%s: saved bytes are not as sent" % k
    for q in reqs:
        assert "accept-encoding" not in headers_of(q), (
            "--no-decompress sent Accept-Encoding: %s" % headers_of(q)["accept-encoding"])


def test_corrupt_gzip_fails_with_decode_error_and_no_file(tmp):
    out = os.path.join(tmp, "out")
    with SemanticsServer(tmp) as s:
        url = s.url("/enc/gzip-corrupt")
        r, res = fetch_one(url, "-o", out, cwd=tmp)
    assert not r["ok"] and res.rc == 1, res.describe("a failure for a corrupt gzip body")
    assert r["error"].startswith("decode:"), r["error"]
    assert "file" not in r or r["file"] is None, r
    assert files_in(out) == [], "partial file left behind: %s" % files_in(out)


def test_truncated_gzip_fails(tmp):
    # The HTTP framing is complete (Content-Length matches); the gzip stream is not.
    out = os.path.join(tmp, "out")
    with SemanticsServer(tmp) as s:
        r, res = fetch_one(s.url("/enc/gzip-truncated"), "-o", out, cwd=tmp)
    assert not r["ok"] and res.rc == 1, res.describe("a failure for a truncated gzip stream")
    assert r["error"].startswith("decode:") and "truncated" in r["error"], r["error"]
    assert files_in(out) == [], "partial file left behind: %s" % files_in(out)


@timeout(60, valgrind=600)
def test_gzip_bomb_streams_in_bounded_memory(tmp):
    # ~1 MB on the wire, 1 GiB decoded, counted and discarded.  Under valgrind
    # (where RSS means nothing) 64 MiB, to check the decoding in finite time.
    mibs = 64 if under_valgrind() else semantics.BOMB_SIZE >> 20
    with SemanticsServer(tmp) as s:
        r, res = fetch_one(s.url("/bomb?mib=%d" % mibs), measure_rss=not under_valgrind(),
                           timeout=45, cwd=tmp)
    assert r["ok"] and r["status"] == 200, res.describe("ok for %d MiB of gzip-ped zeros" % mibs)
    assert r["bytes"] == mibs << 20, "bytes %d, want %d" % (r["bytes"], mibs << 20)
    if not under_valgrind():
        assert res.peak_rss_kib is not None, "no peak RSS measured"
        assert res.peak_rss_kib < 64 * 1024, "peak RSS %d KiB decoding a bomb (limit 64 MiB)" % (
            res.peak_rss_kib)


def test_max_filesize_stops_a_gzip_bomb(tmp):
    out = os.path.join(tmp, "out")
    with SemanticsServer(tmp) as s:
        r, res = fetch_one(s.url("/bomb"), "--max-filesize", "1000000", "-o", out,
                           timeout=20, cwd=tmp)
    assert not r["ok"] and res.rc == 1, res.describe("a failure over --max-filesize")
    assert "max-filesize" in r["error"], r["error"]
    assert r["bytes"] <= 1000000 + 65536, "kept decoding past the limit: %s" % r
    assert res.elapsed_s < 5 + slack(), res.describe("a quick stop")
    assert files_in(out) == [], "partial file left behind: %s" % files_in(out)


# -------------------------------------------------------------------- retries

def test_retry_succeeds_after_two_503s(tmp):
    out = os.path.join(tmp, "out")
    with SemanticsServer(tmp) as s:
        r, res = fetch_one(s.url("/flaky?key=a&fails=2"), "--retry", "3", "--retry-delay", "0.1",
                           "-o", out, cwd=tmp)
        short, res_short = fetch_one(s.url("/flaky?key=b&fails=2"), "--retry", "1",
                                     "--retry-delay", "0.1")
        seen_a = [q for q in logged(s, "/flaky") if "key=a&" in q["target"]]
    assert r["ok"] and r["status"] == 200 and r["attempts"] == 3, res.describe(
        "status 200 after 3 attempts")
    assert len(seen_a) == 3, "server saw %d requests, want 3" % len(seen_a)
    assert read_file_field(r, tmp) == semantics.FLAKY_OK, (
        "the saved file must hold only the final answer: %r" % read_file_field(r, tmp))
    assert short["status"] == 503 and short["attempts"] == 2, res_short.describe(
        "503 after 2 attempts with --retry 1")


def test_retry_after_is_honoured(tmp):
    # Retry-After: 2; the default backoff would wait at most 1 s before retry 1.
    with SemanticsServer(tmp) as s:
        r, res = fetch_one(s.url("/flaky?key=ra&fails=1&retry_after=2"), "--retry", "1",
                           timeout=15)
    assert r["ok"] and r["status"] == 200 and r["attempts"] == 2, res.describe("200 on attempt 2")
    assert res.elapsed_s >= 1.9, "retried after %.2f s despite Retry-After: 2" % res.elapsed_s
    assert res.elapsed_s < 4.5 + slack(), res.describe("done soon after 2 s")


def test_retry_after_outranks_a_shorter_retry_delay(tmp):
    # A server's Retry-After is a floor, as in curl (it sleeps the larger of
    # --retry-delay and Retry-After).
    with SemanticsServer(tmp) as s:
        r, res = fetch_one(s.url("/flaky?key=rd&fails=1&retry_after=1"), "--retry", "1",
                           "--retry-delay", "0.1", timeout=15)
    assert r["ok"] and r["attempts"] == 2, res.describe("200 on attempt 2")
    assert res.elapsed_s >= 0.95, (
        "retried after %.2f s: --retry-delay 0.1 overrode the server's Retry-After: 1"
        % res.elapsed_s)


def test_post_is_never_retried(tmp):
    with SemanticsServer(tmp) as s:
        r, res = fetch_one(s.url("/flaky?key=p&fails=1"), "-d", "x=1", "--retry", "3",
                           "--retry-delay", "0.1")
        seen = logged(s, "/flaky")
    assert r["status"] == 503 and r["attempts"] == 1, res.describe("the 503 after 1 attempt")
    assert len(seen) == 1 and seen[0]["method"] == "POST", seen


def test_connection_refused_is_retried_with_the_delay(tmp):
    url = "http://127.0.0.1:%d/" % free_port()
    r, res = fetch_one(url, "--retry", "2", "--retry-delay", "0.1", timeout=10)
    assert not r["ok"] and "refused" in r["error"] and res.rc == 1, res.describe("refused")
    assert r["attempts"] == 3, "attempts %s, want 3: %s" % (r["attempts"], r)
    assert res.elapsed_s >= 0.2, "two retries 0.1 s apart took only %.3f s" % res.elapsed_s
    assert res.elapsed_s < 3 + slack(), res.describe("done quickly")


def test_retry_as_the_only_transfer_left_completes(tmp):
    # curl once hung when a transfer waiting for its retry was all that was
    # left: the loop must wait for the retry timer, then finish.
    with SemanticsServer(tmp) as s:
        alone, res_alone = fetch_one(s.url("/flaky?key=solo&fails=1"), "--retry", "1", timeout=10)
        urls = [s.url("/echo"), s.url("/flaky?key=last&fails=1"), s.url("/echo")]
        res = run_volley(["--json", "--retry", "1", "--retry-delay", "0.3"] + urls, timeout=10)
    assert alone["ok"] and alone["status"] == 200 and alone["attempts"] == 2, (
        res_alone.describe("200 after 2 attempts"))
    assert res_alone.elapsed_s < 3 + slack(), res_alone.describe("done within the backoff")
    recs = res.by_index(3)
    assert all(r["ok"] and r["status"] == 200 for r in recs.values()), res.describe("3 ok")
    assert recs[1]["attempts"] == 2, recs[1]
    assert res.rc == 0, res.describe("exit 0")


def test_retry_max_time_bounds_all_attempts(tmp):
    url = "http://127.0.0.1:%d/" % free_port()
    r, res = fetch_one(url, "--retry", "50", "--retry-delay", "0.2", "--retry-max-time", "1",
                       timeout=10)
    assert not r["ok"] and 2 <= r["attempts"] < 50, res.describe("a few attempts, then failure")
    assert res.elapsed_s < 3 + slack(), res.describe("at most ~1 s of retrying, not 50 attempts")
    # The bound also cuts an attempt in progress (read timeout far away).
    with SemanticsServer(tmp) as s:
        st, res_st = fetch_one(s.url("/stall"), "--retry", "5", "--retry-max-time", "1",
                               "--read-timeout", "30", timeout=10)
    assert not st["ok"] and "timeout" in st["error"], res_st.describe("a timeout failure")
    assert 0.9 <= res_st.elapsed_s < 3 + slack(), res_st.describe("a stop after ~1 s")


# ------------------------------------------------------------ request bodies

def test_20mib_file_bodies_arrive_intact_without_expect(tmp):
    src = os.path.join(tmp, "upload.bin")
    data = random.Random(20).randbytes(20 * MIB)
    with open(src, "wb") as f:
        f.write(data)
    with SemanticsServer(tmp) as s:
        runs = [fetch_one(s.url("/echo"), opt, "@" + src, timeout=30)
                for opt in ("-d", "--data-binary")]
        reqs = logged(s, "/echo")
    for (r, res), opt in zip(runs, ("-d", "--data-binary")):
        assert r["ok"] and r["status"] == 200, res.describe("ok for a 20 MiB %s upload" % opt)
    assert len(reqs) == 2, [q["target"] for q in reqs]
    for q, opt in zip(reqs, ("-d", "--data-binary")):
        h = headers_of(q)
        assert q["method"] == "POST", (opt, q["method"])
        assert q["body_len"] == len(data) and q["body_sha256"] == sha256(data), (
            "%s @FILE: server got %d bytes (sha256 %s), want %d" % (
                opt, q["body_len"], q["body_sha256"], len(data)))
        assert h.get("content-length") == [str(len(data))], (opt, h.get("content-length"))
        assert "expect" not in h, "%s sent Expect: %s" % (opt, h["expect"])


# --------------------------------------------------------------------- output

@timeout(60, valgrind=300)
def test_100mib_download_matches_sha256(tmp):
    data = random.Random(100).randbytes(100 * MIB)
    with Nginx(tmp, big_files=False) as ng:
        with open(os.path.join(ng.root, "100m.bin"), "wb") as f:
            f.write(data)
        r, res = fetch_one(ng.url("/100m.bin"), "-o", os.path.join(tmp, "out"), timeout=40,
                           cwd=tmp)
    assert r["ok"] and r["status"] == 200 and r["bytes"] == len(data), res.describe(
        "ok with %d bytes" % len(data))
    path = file_path(r, tmp)
    assert os.path.getsize(path) == len(data), os.path.getsize(path)
    assert sha256_file(path) == sha256(data), "saved 100 MiB body differs"


def test_partial_files_of_failed_fetches_are_removed(tmp):
    out = os.path.join(tmp, "out")
    with ScriptedServer(tmp) as s:
        urls = [s.url("/truncated-cl"), s.url("/ok"), s.url("/reset-mid-body"),
                s.url("/truncated-chunked")]
        res = run_volley(["--json", "-o", out] + urls, cwd=tmp, timeout=15)
    recs = res.by_index(4)
    assert res.rc == 1, res.describe("exit 1")
    for i in (0, 2, 3):
        assert not recs[i]["ok"] and recs[i].get("file") is None, recs[i]
    assert recs[1]["ok"] and read_file_field(recs[1], tmp) == scripted.OK_BODY, recs[1]
    assert files_in(out) == [os.path.basename(recs[1]["file"])], (
        "partial files left behind: %s" % files_in(out))


def test_unwritable_output_dir_fails_each_fetch_with_the_os_error(tmp):
    # Tests run as root here, where chmod 0555 stops nothing; instead:
    # (a) -o names a regular file, so each open(DIR/NAME) fails with ENOTDIR;
    # (b) -o names a directory under a missing parent, so mkdir and each open
    #     fail with ENOENT.
    notdir = os.path.join(tmp, "plain-file")
    with open(notdir, "w") as f:
        f.write("not a directory\n")
    missing = os.path.join(tmp, "missing", "parent", "out")
    with SemanticsServer(tmp) as s:
        urls = [s.url("/echo"), s.url("/enc/gzip"), s.url("/nothing-here")]
        runs = [(run_volley(["--json", "-o", d] + urls, cwd=tmp), why)
                for d, why in ((notdir, "Not a directory"), (missing, "No such file or directory"))]
    for res, why in runs:
        assert res.rc == 1, res.describe("exit 1")
        recs = res.by_index(len(urls))
        for i in range(len(urls)):
            r = check_record(recs[i], urls[i])
            assert not r["ok"] and why in r["error"], (
                "want a failure naming %r: %s\n%s" % (why, r, res.describe()))
            assert r.get("file") is None, r
    assert files_in(os.path.dirname(missing)) == [], "created something under the missing parent"


# ---------------------------------------------------------- --fail, --timeout

def test_fail_turns_4xx_and_5xx_into_failures(tmp):
    with SemanticsServer(tmp) as s:
        urls = [s.url("/echo"), s.url("/nothing-here"), s.url("/flaky?key=f&fails=99&status=500"),
                s.url("/redirect?to=missing")]
        plain = run_volley(["--json"] + urls)
        failing = run_volley(["--json", "--fail"] + urls)
    p = plain.by_index(4)
    assert plain.rc == 0 and all(r["ok"] for r in p.values()), plain.describe(
        "all ok without --fail")
    assert [p[i]["status"] for i in range(4)] == [200, 404, 500, 404], p
    f = failing.by_index(4)
    assert failing.rc == 1, failing.describe("exit 1 with --fail")
    assert f[0]["ok"], f[0]
    for i, status in ((1, 404), (2, 500), (3, 404)):
        r = f[i]
        assert not r["ok"] and r["status"] == status and str(status) in r["error"], r
    assert f[3]["redirects"] == 1, "--fail judges the final response: %s" % f[3]


def test_timeout_bounds_an_attempt_across_redirects(tmp):
    # Seven answers 0.4 s apart (six redirects, then the end): each one is
    # far under --timeout 1 and the read timeout, the chain (2.8 s) is not.
    with SemanticsServer(tmp) as s:
        slow, res = fetch_one(s.url("/chain?n=6&ms=400"), "--timeout", "1", "--read-timeout", "5",
                              timeout=10)
        fits, res_fits = fetch_one(s.url("/chain?n=2&ms=150"), "--timeout", "1.5", timeout=10)
    assert not slow["ok"] and "timeout" in slow["error"], res.describe("a timeout failure")
    assert slow["redirects"] >= 1, "the timeout should have hit inside the chain: %s" % slow
    assert 0.9 <= res.elapsed_s < 2.2 + slack(), res.describe("a stop after ~1 s")
    assert fits["ok"] and fits["redirects"] == 2, res_fits.describe("a quick chain within --timeout")
