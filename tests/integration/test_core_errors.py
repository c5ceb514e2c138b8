"""Each way a fetch can fail gives ok=false, exit 1 and a precise error string;
each deadline fires on time.  Wall-clock bounds leave room for a slow box (and
more under valgrind, see harness.slack)."""
import socket

from harness import (Nginx, ScriptedServer, Skip, check_record, free_port, run_volley, slack)
import scripted


def failed_record(url, *extra, **kw):
    res = run_volley(["--json"] + list(extra) + [url], **kw)
    r = check_record(res.one(), url)
    assert r["ok"] is False, "expected a failure for %s: %s" % (url, res.describe())
    assert res.rc == 1, res.describe("exit 1 for a failed URL")
    return r, res


def test_connection_refused(tmp):
    port = free_port()
    r, res = failed_record("http://127.0.0.1:%d/" % port)
    assert r["error"].startswith("connect:") and "refused" in r["error"], r["error"]
    assert str(port) in r["error"], "error should name the address: %r" % r["error"]
    assert r["status"] in (0, None) and r["bytes"] == 0, r


def test_reset_after_request(tmp):
    with ScriptedServer(tmp) as s:
        r, res = failed_record(s.url("/reset"))
    assert "reset" in r["error"], r["error"]


def test_reset_in_the_middle_of_the_body(tmp):
    with ScriptedServer(tmp) as s:
        r, res = failed_record(s.url("/reset-mid-body"))
    assert "reset" in r["error"], r["error"]
    assert r["status"] in (200, 0, None), r


def test_malformed_status_line(tmp):
    with ScriptedServer(tmp) as s:
        r, res = failed_record(s.url("/malformed"))
    assert r["error"].startswith("http:"), r["error"]


def test_header_block_over_the_limit(tmp):
    with ScriptedServer(tmp) as s:
        r, res = failed_record(s.url("/huge-headers?kb=80"))
    assert r["error"].startswith("http:") and "header" in r["error"], r["error"]


def test_body_shorter_than_content_length(tmp):
    with ScriptedServer(tmp) as s:
        r, res = failed_record(s.url("/truncated-cl"))
    err = r["error"].lower()
    assert err.startswith("http:") and ("content-length" in err or "shorter" in err), r["error"]


def test_truncated_chunked_body(tmp):
    with ScriptedServer(tmp) as s:
        r, res = failed_record(s.url("/truncated-chunked"))
    assert r["error"].startswith("http:") and "chunk" in r["error"].lower(), r["error"]


def test_transfer_encoding_with_content_length_never_uses_the_length(tmp):
    with ScriptedServer(tmp) as s:
        res = run_volley(["--json", s.url("/te-and-cl")])
    r = check_record(res.one())
    if r["ok"]:
        assert r["bytes"] == len(scripted.TE_CL_BODY), (
            "RFC 9112 §6.3: chunked overrides Content-Length; got %d bytes: %s" % (r["bytes"], r))
    else:
        assert r["error"].startswith("http:"), r


def test_read_timeout_while_awaiting_headers(tmp):
    with ScriptedServer(tmp) as s:
        r, res = failed_record(s.url("/stall"), "--read-timeout", "1")
        elapsed = res.elapsed_s
    assert "timeout: read" in r["error"], r["error"]
    assert 0.9 <= elapsed < 3 + slack(), "read timeout of 1 s took %.2f s" % elapsed


def test_read_timeout_in_the_body(tmp):
    with ScriptedServer(tmp) as s:
        r, res = failed_record(s.url("/stall-body"), "--read-timeout", "1")
        elapsed = res.elapsed_s
    assert "timeout: read" in r["error"] and "BODY" in r["error"], r["error"]
    assert elapsed < 3 + slack(), "read timeout of 1 s took %.2f s" % elapsed


def test_read_timeout_is_per_byte_not_total(tmp):
    # /slow answers after 1.5 s of silence: over a 1 s read timeout...
    with ScriptedServer(tmp) as s:
        r, res = failed_record(s.url("/slow?ms=1500"), "--read-timeout", "1")
        assert "timeout: read" in r["error"], r["error"]
        # ...but well inside a 3 s one.
        ok = run_volley(["--json", "--read-timeout", "3", s.url("/slow?ms=1500")])
    assert ok.one()["ok"], ok.describe("the fetch to succeed")


def test_total_timeout(tmp):
    with ScriptedServer(tmp) as s:
        r, res = failed_record(s.url("/slow?ms=5000"), "--timeout", "1")
        elapsed = res.elapsed_s
    assert r["error"].startswith("timeout:"), r["error"]
    assert elapsed < 3 + slack(), "--timeout 1 took %.2f s" % elapsed


def test_total_timeout_fires_in_the_body(tmp):
    # The body stalls halfway; the read timeout is far away, so the attempt's
    # own deadline must be what ends it.
    with ScriptedServer(tmp) as s:
        r, res = failed_record(s.url("/stall-body"), "--timeout", "1", "--read-timeout", "10")
        elapsed = res.elapsed_s
    assert r["error"].startswith("timeout:") and "BODY" in r["error"], r["error"]
    assert elapsed < 3 + slack(), "--timeout 1 took %.2f s" % elapsed


class FullBacklog:
    """A listening socket whose accept queue is full, so a new SYN is dropped
    and connect() hangs: a connect timeout without any non-loopback address."""

    def __init__(self):
        self.listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.fillers = []

    def __enter__(self):
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(0)
        self.port = self.listener.getsockname()[1]
        for _ in range(4):  # backlog 0 holds one; the rest sit in SYN_SENT
            c = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            c.setblocking(False)
            c.connect_ex(("127.0.0.1", self.port))
            self.fillers.append(c)
        return self

    def hangs(self, wait_s=0.5):
        probe = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        probe.settimeout(wait_s)
        try:
            probe.connect(("127.0.0.1", self.port))
            return False
        except socket.timeout:
            return True
        except OSError:
            return False
        finally:
            probe.close()

    def __exit__(self, *exc):
        for c in self.fillers:
            c.close()
        self.listener.close()


def test_connect_timeout_against_a_full_accept_queue(tmp):
    with FullBacklog() as fb:
        if not fb.hangs():
            raise Skip("this kernel completes connects to a full accept queue; "
                       "no loopback way to make connect() hang")
        r, res = failed_record("http://127.0.0.1:%d/" % fb.port, "--connect-timeout", "1")
        elapsed = res.elapsed_s
    assert "timeout: connect" in r["error"], r["error"]
    assert 0.9 <= elapsed < 3 + slack(), "--connect-timeout 1 took %.2f s" % elapsed


def test_error_records_come_with_the_rest_of_a_list(tmp):
    with ScriptedServer(tmp) as s, Nginx(tmp, big_files=False) as ng:
        urls = [ng.url("/1k.bin"), s.url("/reset"), s.url("/malformed"), s.url("/truncated-cl"),
                s.url("/truncated-chunked"), "http://127.0.0.1:%d/" % free_port(),
                s.url("/huge-headers?kb=80"), ng.url("/100k.bin")]
        res = run_volley(["--json", "-c", "4"] + urls)
    recs = res.by_index(len(urls))
    oks = [recs[i]["ok"] for i in range(len(urls))]
    assert oks == [True] + [False] * 6 + [True], oks
    assert res.rc == 1, res.describe("exit 1")
