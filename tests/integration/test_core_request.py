"""What volley sends: the scripted server logs every request it reads, so each
test checks the request line, headers and body exactly as they arrived."""
import os

from harness import ScriptedServer, headers_of, read_file_field, run_volley


def only_request(server, path_prefix="/echo"):
    reqs = [r for r in server.requests() if r["target"].startswith(path_prefix)]
    assert len(reqs) == 1, "expected one request to %s, server saw: %s" % (
        path_prefix, [(r["method"], r["target"]) for r in server.requests()])
    return reqs[0]


def test_get_sends_host_with_port_user_agent_and_accept(tmp):
    with ScriptedServer(tmp) as s:
        res = run_volley(["--json", s.url("/echo")])
        req = only_request(s)
    assert res.one()["ok"], res.describe("the fetch to succeed")
    h = headers_of(req)
    assert req["method"] == "GET" and req["version"] == "HTTP/1.1", req
    assert h.get("host") == ["127.0.0.1:%d" % s.port], "Host: %s" % h.get("host")
    ua = h.get("user-agent", [])
    assert len(ua) == 1 and ua[0].startswith("volley/"), "User-Agent: %s" % ua
    assert h.get("accept") == ["*/*"], "Accept: %s" % h.get("accept")
    conn = [v.lower() for v in h.get("connection", [])]
    assert "close" not in conn, "volley asked to close a connection it could keep: %s" % conn
    assert "content-length" not in h and "transfer-encoding" not in h, "GET with a body: %s" % h
    assert req["body"] == "", req


def test_request_target_is_path_and_query_without_fragment(tmp):
    with ScriptedServer(tmp) as s:
        res = run_volley(["--json", s.url("/echo?a=1&b=two%20words#frag")])
        req = only_request(s)
    assert res.one()["ok"], res.describe("the fetch to succeed")
    assert req["target"] == "/echo?a=1&b=two%20words", "request target %r" % req["target"]


def test_url_without_path_requests_slash(tmp):
    with ScriptedServer(tmp) as s:
        res = run_volley(["--json", s.base])
        reqs = s.requests()
    assert len(reqs) == 1 and reqs[0]["target"] == "/", reqs
    assert res.one()["status"] == 404, res.describe("status 404")


def test_repeated_header_options_are_all_sent_in_order(tmp):
    with ScriptedServer(tmp) as s:
        res = run_volley(["--json", "-H", "X-Multi: one", "-H", "X-Multi: two",
                          "-H", "X-Other: with spaces  inside", s.url("/echo")])
        req = only_request(s)
    assert res.one()["ok"], res.describe("the fetch to succeed")
    h = headers_of(req)
    assert h.get("x-multi") == ["one", "two"], "X-Multi: %s" % h.get("x-multi")
    assert h.get("x-other") == ["with spaces  inside"], h.get("x-other")


def test_header_option_replaces_the_default_user_agent(tmp):
    with ScriptedServer(tmp) as s:
        res = run_volley(["--json", "-H", "User-Agent: custom/1.0", s.url("/echo")])
        req = only_request(s)
    assert res.one()["ok"], res.describe("the fetch to succeed")
    assert headers_of(req).get("user-agent") == ["custom/1.0"], (
        "User-Agent should be replaced, not doubled: %s" % headers_of(req).get("user-agent"))


def test_data_string_makes_a_form_post_with_content_length(tmp):
    body = "name=volley&value=a%20b"
    with ScriptedServer(tmp) as s:
        res = run_volley(["--json", "-d", body, s.url("/echo")])
        req = only_request(s)
    assert res.one()["ok"], res.describe("the fetch to succeed")
    h = headers_of(req)
    assert req["method"] == "POST", "method %s for -d" % req["method"]
    assert h.get("content-length") == [str(len(body))], h.get("content-length")
    assert h.get("content-type") == ["application/x-www-form-urlencoded"], h.get("content-type")
    assert req["body"] == body, req["body"]


def test_method_option_with_data_sends_put(tmp):
    with ScriptedServer(tmp) as s:
        res = run_volley(["--json", "-X", "PUT", "-d", "replace", s.url("/echo")])
        req = only_request(s)
    assert res.one()["ok"], res.describe("the fetch to succeed")
    assert req["method"] == "PUT" and req["body"] == "replace", req
    assert headers_of(req).get("content-length") == ["7"], req


def test_method_option_without_data(tmp):
    with ScriptedServer(tmp) as s:
        res = run_volley(["--json", "-X", "DELETE", s.url("/echo")])
        req = only_request(s)
    assert res.one()["ok"], res.describe("the fetch to succeed")
    assert req["method"] == "DELETE" and req["body"] == "", req


def test_data_from_file_sends_its_exact_bytes(tmp):
    path = os.path.join(tmp, "body.bin")
    # 200 KiB: more than one socket write; no newlines (curl's -d @file strips them).
    content = bytes(b for b in range(256) if b not in (10, 13)) * 820
    with open(path, "wb") as f:
        f.write(content)
    with ScriptedServer(tmp) as s:
        res = run_volley(["--json", "-d", "@" + path, s.url("/echo")])
        req = only_request(s)
    assert res.one()["ok"], res.describe("the fetch to succeed")
    assert req["method"] == "POST", req["method"]
    assert headers_of(req).get("content-length") == [str(len(content))], headers_of(req)
    got = req["body"].encode("latin-1")
    assert got == content, "server got %d body bytes, expected %d" % (len(got), len(content))


def test_same_request_goes_to_every_url_in_a_list(tmp):
    with ScriptedServer(tmp) as s:
        urls = [s.url("/echo?i=%d" % i) for i in range(6)]
        res = run_volley(["--json", "-c", "3", "-X", "PATCH", "-d", "x=1", "-H", "X-Tag: t"]
                         + urls)
        reqs = s.requests()
    res.by_index(6)
    assert sorted(r["target"] for r in reqs) == sorted(u[len(s.base):] for u in urls), reqs
    for r in reqs:
        h = headers_of(r)
        assert r["method"] == "PATCH" and r["body"] == "x=1" and h.get("x-tag") == ["t"], r


def test_echo_body_saved_with_output_dir_is_the_request(tmp):
    with ScriptedServer(tmp) as s:
        res = run_volley(["--json", "-o", os.path.join(tmp, "out"), s.url("/echo")], cwd=tmp)
        req = only_request(s)
    data = read_file_field(res.one(), tmp)
    assert data.startswith(b"GET /echo HTTP/1.1\r\n") and data.endswith(b"\r\n\r\n"), data[:300]
    assert ("Host: 127.0.0.1:%d" % s.port).encode() in data, data
    assert len(req["headers"]) == data.count(b"\r\n") - 2, data
