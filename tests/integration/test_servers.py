"""The test servers themselves, checked with raw sockets and no volley: if these
fail, every volley test built on them means nothing."""
import socket
import time

from harness import Nginx, ScriptedServer, free_port, port_accepts, read_to_eof, wait_until
import scripted


def raw(port, request, timeout_s=5.0):
    """Send request bytes, read until the server closes; (bytes, error or None)."""
    data, err = b"", None
    with socket.create_connection(("127.0.0.1", port), timeout=timeout_s) as s:
        s.sendall(request)
        try:
            while True:  # not read_to_eof: keep what came before a reset
                chunk = s.recv(65536)
                if not chunk:
                    break
                data += chunk
        except OSError as e:
            err = e
    return data, err


def get(port, path, method="GET", extra=""):
    return raw(port, ("%s %s HTTP/1.1\r\nHost: t\r\n%sConnection: close\r\n\r\n"
                      % (method, path, extra)).encode())


def test_scripted_paths_behave_as_documented(tmp):
    with ScriptedServer(tmp) as s:
        data, _ = get(s.port, "/ok")
        assert data.startswith(b"HTTP/1.1 200") and data.endswith(scripted.OK_BODY), data
        data, _ = get(s.port, "/chunked")
        assert b"Transfer-Encoding: chunked" in data and b";name=value" in data, data
        assert data.endswith(b"0\r\nX-Trailer: done\r\nX-Checksum: 42\r\n\r\n"), data[-80:]
        data, _ = get(s.port, "/close")
        assert b"Content-Length" not in data and data.endswith(scripted.CLOSE_BODY)
        data, _ = get(s.port, "/head-like", "HEAD")
        assert data.endswith(b"Content-Length: 1234\r\n\r\n"), data
        data, _ = get(s.port, "/100")
        assert data.startswith(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200"), data
        data, _ = get(s.port, "/103")
        assert data.startswith(b"HTTP/1.1 103 Early Hints\r\nLink:"), data
        data, err = get(s.port, "/reset")
        assert data == b"" and isinstance(err, ConnectionResetError), (data, err)
        data, _ = get(s.port, "/malformed")
        assert data.startswith(b"SPDY/9"), data
        data, _ = get(s.port, "/truncated-cl")
        assert data.endswith(b"\r\n\r\n" + b"t" * 100), data[-120:]
        data, _ = get(s.port, "/huge-headers?kb=70")
        assert data.index(b"\r\n\r\n") > 70 * 1024, len(data)
        t0 = time.monotonic()
        get(s.port, "/slow?ms=300")
        assert time.monotonic() - t0 >= 0.3
        req = (b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n"
               b"Connection: close\r\n\r\nhello")
        data, _ = raw(s.port, req)
        assert data.endswith(b"\r\n\r\n" + req), data
        reqs = s.requests()
        assert reqs[-1]["method"] == "POST" and reqs[-1]["body"] == "hello", reqs[-1]
        n = s.connections()
        assert n == len(reqs), (n, len(reqs))


def test_scripted_stale_drops_the_next_request_on_the_connection(tmp):
    with ScriptedServer(tmp) as s:
        with socket.create_connection(("127.0.0.1", s.port), timeout=5) as c:
            c.sendall(b"GET /stale HTTP/1.1\r\nHost: t\r\n\r\n")
            first = b""
            while not first.endswith(scripted.OK_BODY):
                first += c.recv(4096)
            c.sendall(b"GET /ok HTTP/1.1\r\nHost: t\r\n\r\n")
            try:
                second = c.recv(4096)
            except ConnectionResetError:
                second = b""
            assert second == b"", second
        reqs = s.requests()
        got = [(r["target"], r["dropped"]) for r in reqs]
        assert got == [("/stale", False), ("/ok", True)], reqs


def test_scripted_stall_holds_until_the_client_leaves(tmp):
    with ScriptedServer(tmp) as s:
        with socket.create_connection(("127.0.0.1", s.port), timeout=0.5) as c:
            c.sendall(b"GET /stall HTTP/1.1\r\nHost: t\r\n\r\n")
            try:
                got = c.recv(10)
            except socket.timeout:
                got = None
            assert got is None, got


def test_nginx_serves_files_and_logs_connections(tmp):
    with Nginx(tmp, locations="location = /teapot { return 418; }") as ng:
        with socket.create_connection(("127.0.0.1", ng.port), timeout=5) as c:
            for name in ("1k.bin", "empty.bin"):
                c.sendall(("GET /%s HTTP/1.1\r\nHost: t\r\n\r\n" % name).encode())
            c.sendall(b"GET /teapot HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
            data = read_to_eof(c)
        assert Nginx.content("1k.bin") in data and b" 418 " in data, data[:200]
        entries = ng.wait_log(3)
        assert [e["status"] for e in entries] == [200, 200, 418], entries
        assert ng.connections(entries) == 1 and entries[2]["connection_requests"] == 3, entries
        data, _ = get(ng.port, "/text.txt", extra="Accept-Encoding: gzip\r\n")
        assert b"Content-Encoding: gzip" in data, data[:300]
        port = ng.port
    assert not port_accepts(port), "nginx still listening after stop()"


def test_free_port_is_not_listening():
    port = free_port()
    assert not port_accepts(port)
    wait_until(lambda: True, 1, "nothing")
