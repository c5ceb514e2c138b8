"""Redirect chains from real servers: the record's "redirects" counts the hops,
"final_url" names the last URL, and the body is the final resource's.
Apache: 301 (mod_alias Redirect) -> 302 (mod_rewrite) -> 307 (Redirect) -> 308
(RewriteRule), each Location absolute.  Node: 301 -> 302 -> 307 -> 308 with an
absolute-path, a relative, an absolute and a dot-segment Location, the first
request's query carried along by the server."""
from harness import run_volley, timeout
from interop import Apache, Node, file_name, fetch_files, assert_bodies_intact


@timeout(30, valgrind=150)
def test_apache_redirect_and_rewrite_chain_301_302_307_308_is_followed(tmp):
    with Apache(tmp, big=False) as srv:
        recs, res = fetch_files(tmp, srv, ["r/1"])
        rec = recs[0]
        assert rec["ok"] and rec["status"] == 200, res.describe("ok, 200")
        assert rec["redirects"] == 4, "4 hops, record says %d: %s" % (rec["redirects"], rec)
        assert rec["final_url"] == srv.url("/" + file_name(1024)), (
            "final_url %r, expected %r" % (rec["final_url"], srv.url("/" + file_name(1024))))
        assert rec["url"] == srv.url("/r/1"), rec
        assert_bodies_intact(srv, ["r/1"], recs, res, tmp, source=lambda n: file_name(1024))
        log = srv.wait_access(5) and srv.access_log()
    hops = [(e["path"], e["status"]) for e in log]
    assert hops == [("/r/1", 301), ("/r/2", 302), ("/r/3", 307), ("/r/4", 308),
                    ("/" + file_name(1024), 200)], "Apache saw: %s" % hops


@timeout(30, valgrind=150)
def test_node_chain_with_relative_and_absolute_locations_is_followed(tmp):
    with Node(tmp, big=False) as srv:
        url = srv.url("/chain/301?q=a%20b")
        res = run_volley(["--json", url])
        rec = res.one()
        want_final = srv.url("/chain/final?q=a%20b&via=308")
        assert rec["ok"] and rec["status"] == 200 and rec["bytes"] == 6, res.describe(
            "ok, 6 bytes")
        assert rec["redirects"] == 4, "4 hops, record says %d: %s" % (rec["redirects"], rec)
        assert rec["final_url"] == want_final, "final_url %r, expected %r" % (rec["final_url"],
                                                                              want_final)
        seen = [(r["method"], r["url"], r["status"]) for r in srv.wait_access(5)]
    assert seen == [("GET", "/chain/301?q=a%20b", 301), ("GET", "/chain/302?q=a%20b", 302),
                    ("GET", "/chain/307?q=a%20b", 307), ("GET", "/chain/308?q=a%20b", 308),
                    ("GET", "/chain/final?q=a%20b&via=308", 200)], "node saw: %s" % seen


@timeout(30, valgrind=150)
def test_node_chain_longer_than_max_redirs_fails_with_a_redirect_error(tmp):
    with Node(tmp, big=False) as srv:
        res = run_volley(["--json", "--max-redirs", "3", srv.url("/chain/301")])
        seen = [r["url"] for r in srv.wait_access(4)]
    rec = res.one()
    assert not rec["ok"] and rec["error"] and "redirect" in rec["error"], res.describe(
        "a failure naming the redirect limit")
    assert res.rc == 1, res.describe("exit 1")
    assert len(seen) == 4 and not any("final" in u for u in seen), (
        "3 redirects followed means 4 requests and no /chain/final: %s" % seen)


@timeout(30, valgrind=150)
def test_node_307_and_308_keep_post_and_its_body(tmp):
    with Node(tmp, big=False) as srv:
        res = run_volley(["--json", "-d", "a=1", srv.url("/chain/307")])
        seen = [(r["method"], r["url"], r["headers"].get("content-length")) for r in
                srv.wait_access(3)]
    rec = res.one()
    assert rec["ok"] and rec["redirects"] == 2, res.describe("ok after 2 redirects")
    assert seen == [("POST", "/chain/307", "3"), ("POST", "/chain/308", "3"),
                    ("POST", "/chain/final?via=308", "3")], (
        "307 and 308 keep the method and body (RFC 9110 §15.4.8, §15.4.9): %s" % seen)
