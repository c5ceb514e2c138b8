"""Response parsing: body framing (Content-Length, chunked, close-delimited,
HEAD, 204, 304), interim 1xx responses, big headers, gzip, redirects; and that
the connection is reusable after each framing."""
import os

from harness import Nginx, ScriptedServer, check_record, read_file_field, run_volley
import scripted


def fetch_one(url, *extra, **kw):
    res = run_volley(["--json"] + list(extra) + [url], **kw)
    return check_record(res.one(), url), res


def assert_ok_200(r, res, nbytes):
    assert r["ok"] and r["status"] == 200 and r["bytes"] == nbytes, (
        res.describe("ok, status 200, %d bytes" % nbytes))


def test_nginx_static_sizes_are_counted_exactly(tmp):
    outdir = os.path.join(tmp, "out")
    names = ["empty.bin", "1k.bin", "100k.bin", "10m.bin"]
    with Nginx(tmp) as ng:
        urls = [ng.url("/" + n) for n in names]
        res = run_volley(["--json", "-o", outdir] + urls, cwd=tmp)
    recs = res.by_index(len(names))
    for i, name in enumerate(names):
        r = recs[i]
        assert r["ok"] and r["status"] == 200, r
        assert r["bytes"] == Nginx.FILES[name], "%s: bytes %d" % (name, r["bytes"])
        assert read_file_field(r, tmp) == Nginx.content(name), "%s: saved body differs" % name


def test_chunked_body_with_extensions_and_trailers(tmp):
    with ScriptedServer(tmp) as s:
        r, res = fetch_one(s.url("/chunked"), "-o", os.path.join(tmp, "out"), cwd=tmp)
    assert r["ok"] and r["status"] == 200, res.describe("ok, status 200")
    assert r["bytes"] == len(scripted.CHUNKED_BODY), (
        "bytes %d, expected %d (decoded chunked body)" % (r["bytes"], len(scripted.CHUNKED_BODY)))
    assert read_file_field(r, tmp) == scripted.CHUNKED_BODY


def test_chunk_with_several_valued_extensions(tmp):
    # "9;a=1;b=2": RFC 9112 §7.1.1 allows any number of extensions per chunk.
    with ScriptedServer(tmp) as s:
        r, res = fetch_one(s.url("/chunked?ext=multi"))
    assert r["ok"] and r["bytes"] == len(scripted.CHUNKED_BODY), res.describe(
        "ok and %d bytes for chunk extensions ';a=1;b=2'" % len(scripted.CHUNKED_BODY))


def test_body_delimited_by_connection_close(tmp):
    with ScriptedServer(tmp) as s:
        r, res = fetch_one(s.url("/close"))
    assert r["ok"] and r["status"] == 200 and r["bytes"] == len(scripted.CLOSE_BODY), (
        res.describe("ok, status 200, %d bytes (close-delimited)" % len(scripted.CLOSE_BODY)))


def test_head_reads_no_body_and_keeps_the_connection(tmp):
    with ScriptedServer(tmp) as s:
        urls = [s.url("/head-like"), s.url("/head-like"), s.url("/ok")]
        res = run_volley(["--json", "-c", "1", "-X", "HEAD", "--read-timeout", "3"] + urls)
        conns = s.connections()
        methods = [r["method"] for r in s.requests() if r["target"] != "/count"]
    recs = res.by_index(3)
    for r in recs.values():
        assert r["ok"] and r["status"] == 200 and r["bytes"] == 0, (
            "HEAD must not wait for the Content-Length body: %s" % r)
    assert methods == ["HEAD"] * 3, methods
    assert conns == 1, (
        "HEAD responses should leave the connection reusable; %d connections" % conns)


def test_head_against_nginx(tmp):
    with Nginx(tmp, big_files=False) as ng:
        r, res = fetch_one(ng.url("/100k.bin"), "-X", "HEAD", "--read-timeout", "3")
        entries = ng.wait_log(1)
    assert r["ok"] and r["status"] == 200 and r["bytes"] == 0, (
        res.describe("ok, status 200, no body"))
    assert entries[0]["method"] == "HEAD", entries


def test_204_and_304_have_no_body_and_keep_the_connection(tmp):
    with ScriptedServer(tmp) as s:
        urls = [s.url("/204"), s.url("/304"), s.url("/ok")]
        res = run_volley(["--json", "-c", "1", "--read-timeout", "3"] + urls)
        conns = s.connections()
    recs = res.by_index(3)
    assert recs[0]["ok"] and recs[0]["status"] == 204 and recs[0]["bytes"] == 0, recs[0]
    assert recs[1]["ok"] and recs[1]["status"] == 304 and recs[1]["bytes"] == 0, (
        "304 has no body whatever its Content-Length says: %s" % recs[1])
    assert recs[2]["ok"] and recs[2]["bytes"] == len(scripted.OK_BODY), recs[2]
    assert conns == 1, "expected all three on one connection, got %d" % conns


def test_100_continue_is_skipped(tmp):
    with ScriptedServer(tmp) as s:
        r, res = fetch_one(s.url("/100"))
    assert_ok_200(r, res, len(scripted.OK_BODY))


def test_103_early_hints_is_skipped(tmp):
    with ScriptedServer(tmp) as s:
        r, res = fetch_one(s.url("/103"))
    assert_ok_200(r, res, len(scripted.OK_BODY))


def test_100_continue_before_a_post_body_response(tmp):
    with ScriptedServer(tmp) as s:
        r, res = fetch_one(s.url("/100"), "-d", "payload=1")
        reqs = s.requests()
    assert r["ok"] and r["status"] == 200, res.describe("ok, status 200")
    assert reqs[0]["body"] == "payload=1", reqs


def test_framings_in_a_row_on_one_connection(tmp):
    with ScriptedServer(tmp) as s:
        paths = ["/chunked", "/ok", "/103", "/chunked", "/204", "/ok?size=5000", "/100"]
        res = run_volley(["--json", "-c", "1", "--read-timeout", "3"] + [s.url(p) for p in paths])
        conns = s.connections()
    recs = res.by_index(len(paths))
    expected = [len(scripted.CHUNKED_BODY), len(scripted.OK_BODY), len(scripted.OK_BODY),
                len(scripted.CHUNKED_BODY), 0, 5000, len(scripted.OK_BODY)]
    got = [recs[i]["bytes"] for i in range(len(paths))]
    assert got == expected and all(r["ok"] for r in recs.values()), (got, expected, recs)
    assert conns == 1, "all keep-alive responses; expected 1 connection, got %d" % conns


def test_headers_just_under_the_limit_are_accepted(tmp):
    with ScriptedServer(tmp) as s:
        r, res = fetch_one(s.url("/huge-headers?kb=60"))
    assert_ok_200(r, res, len(scripted.OK_BODY))


def test_gzip_body_is_decoded_and_counted_decoded(tmp):
    with Nginx(tmp, big_files=False) as ng:
        r, res = fetch_one(ng.url("/text.txt"), "-o", os.path.join(tmp, "out"), cwd=tmp)
        entries = ng.wait_log(1)
    assert r["ok"] and r["bytes"] == Nginx.FILES["text.txt"], (
        res.describe("ok with the decoded size %d" % Nginx.FILES["text.txt"]))
    assert entries[0]["bytes"] < Nginx.FILES["text.txt"] // 4, (
        "nginx did not compress (no Accept-Encoding sent?): %s" % entries[0])
    assert read_file_field(r, tmp) == Nginx.content("text.txt")


def test_redirect_is_followed_and_reported(tmp):
    with ScriptedServer(tmp) as s:
        url = s.url("/redirect?to=/redirect%3Fto%3D/ok&code=301")
        r, res = fetch_one(url)
        no_follow, _ = fetch_one(url, "--max-redirs", "0")
    assert r["ok"] and r["status"] == 200 and r["redirects"] == 2, (
        res.describe("ok, status 200 after 2 redirects"))
    assert r["final_url"] == s.url("/ok") and r["url"] == url, r
    assert r["bytes"] == len(scripted.OK_BODY), r
    assert no_follow["status"] == 301 and no_follow["redirects"] == 0, no_follow
    assert no_follow["final_url"] == url, no_follow
