"""URLs as people write them (issue 11 §3): what volley puts on the wire for
non-ASCII paths, spaces, '|', IDN hosts and credentials, what the record says,
and how a Location with spaces is resolved.  The scripted server's /echo logs
the request line and headers exactly as they arrived."""
from harness import ScriptedServer, headers_of, run_volley


def only_request(server):
    reqs = server.requests()
    assert len(reqs) == 1, "expected one request, server saw: %s" % (
        [(r["method"], r["target"]) for r in reqs])
    return reqs[0]


def test_non_ascii_path_spaces_and_fragment_are_sent_encoded_and_recorded_as_given(tmp):
    with ScriptedServer(tmp) as s:
        url = s.url("/echo/한국어 x|y?q=a b#frag")
        res = run_volley(["--json", url])
        req = only_request(s)
    rec = res.one()
    assert rec["ok"] and rec["status"] == 200, res.describe("a 200 from /echo")
    want = "/echo/%ED%95%9C%EA%B5%AD%EC%96%B4%20x|y?q=a%20b"
    line = "%s %s %s" % (req["method"], req["target"], req["version"])
    assert line == "GET %s HTTP/1.1" % want, "request line %r, expected %r" % (
        line, "GET %s HTTP/1.1" % want)
    assert rec["url"] == url, "record url %r, expected the input as given %r" % (rec["url"], url)


def test_idn_host_is_looked_up_and_sent_as_its_a_label(tmp):
    with ScriptedServer(tmp) as s:
        res = run_volley(["--json", "--resolve", "xn--3e0b707e.kr:%d:127.0.0.1" % s.port,
                          "http://한국.kr:%d/echo" % s.port])
        req = only_request(s)
    assert res.one()["ok"], res.describe("the fetch to succeed via --resolve of the A-label")
    host = headers_of(req).get("host")
    assert host == ["xn--3e0b707e.kr:%d" % s.port], "Host: %s, expected the A-label" % host


def test_credentials_in_the_url_stay_out_of_request_line_and_host(tmp):
    with ScriptedServer(tmp) as s:
        res = run_volley(["--json", "http://user:secret@127.0.0.1:%d/echo" % s.port])
        req = only_request(s)
    assert res.one()["ok"], res.describe("the fetch to succeed")
    assert req["target"] == "/echo", "request target %r" % req["target"]
    host = headers_of(req).get("host")
    assert host == ["127.0.0.1:%d" % s.port], "Host: %s" % host
    assert "secret" not in req["target"] and "secret" not in str(host), req


def test_location_with_spaces_resolves_to_an_encoded_url(tmp):
    with ScriptedServer(tmp) as s:
        res = run_volley(["--json", s.url("/redirect?to=../echo/a%20b%7Cc%3Fd%3De%20f")])
        reqs = s.requests()
    rec = res.one()
    assert rec["ok"] and rec["redirects"] == 1, res.describe("one redirect, then 200")
    targets = [r["target"] for r in reqs]
    assert targets[-1] == "/echo/a%20b|c?d=e%20f", "targets %s" % targets
    assert rec["final_url"] == s.url("/echo/a%20b|c?d=e%20f"), "final_url %r" % rec["final_url"]


def test_unsupported_scheme_empty_host_and_bad_port_fail_with_url_messages(tmp):
    urls = ["ftp://x/", "http://:80/", "http://h:99999/"]
    res = run_volley(["--json"] + urls, check=True)
    recs = res.by_index(3)
    for i, want in enumerate(["url: unsupported scheme 'ftp'", "url: empty host",
                              "url: port out of range"]):
        assert not recs[i]["ok"] and want in (recs[i]["error"] or ""), (
            "%s: expected error %r, got %s" % (urls[i], want, recs[i]))
