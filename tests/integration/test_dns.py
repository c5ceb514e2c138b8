"""Name resolution through the CLI: `--dns-servers` pointed at our fake DNS
server (tests/servers/fakedns.py) on a free loopback port, names resolving to
127.0.0.1 where nginx listens.  Checks the answer path, one query per name
for many URLs, each failure's message and time bound, --resolve beating DNS,
--verbose lines, and happy eyeballs from a refused ::1 to a serving
127.0.0.1 without the 250 ms attempt delay."""
import json
import os
import selectors
import signal
import socket
import subprocess
import sys
import time

from harness import (Nginx, Skip, check_record, free_port, run_volley, slack, timeout,
                     under_valgrind)

FAKEDNS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                       "servers", "fakedns.py")


class FakeDNS:
    """tests/servers/fakedns.py on a free 127.0.0.1 UDP port, stopped by PID."""

    def __init__(self, tmp, names, default="nxdomain"):
        self.dir = os.path.join(tmp, "fakedns")
        os.makedirs(self.dir, exist_ok=True)
        self.config_path = os.path.join(self.dir, "config.json")
        self.stats_path = os.path.join(self.dir, "stats.json")
        with open(self.config_path, "w") as f:
            json.dump({"names": names, "default": default}, f)
        self.proc, self.port = None, None

    def start(self, timeout_s=10.0):
        self.proc = subprocess.Popen(
            [sys.executable, FAKEDNS, "--config", self.config_path, "--stats", self.stats_path],
            stdout=subprocess.PIPE, stderr=open(os.path.join(self.dir, "stderr.log"), "wb"),
            stdin=subprocess.DEVNULL)
        sel = selectors.DefaultSelector()
        sel.register(self.proc.stdout, selectors.EVENT_READ)
        line = b""
        deadline = time.monotonic() + timeout_s
        while not line.endswith(b"\n") and time.monotonic() < deadline:
            if sel.select(max(0.0, deadline - time.monotonic())):
                chunk = os.read(self.proc.stdout.fileno(), 64)
                if not chunk:
                    break
                line += chunk
        sel.close()
        if not line.strip().isdigit():
            self.stop()
            raise AssertionError("fakedns.py did not print its port within %.0f s: %r"
                                 % (timeout_s, line))
        self.port = int(line)
        return self

    def stop(self):
        if self.proc is not None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            self.proc.stdout.close()
            self.proc = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    @property
    def servers(self):
        return "127.0.0.1:%d" % self.port

    def queries(self, name, qtype=None):
        """Queries seen for name (one type, or all)."""
        try:
            with open(self.stats_path) as f:
                per = json.load(f).get(name, {})
        except (OSError, ValueError):
            per = {}
        return per.get(qtype, 0) if qtype else sum(per.values())


def v4(ttl=60):
    return {"A": ["127.0.0.1"], "ttl": ttl}


def fetch(dns, urls, *extra, **kw):
    return run_volley(["--json", "--dns-servers", dns.servers] + list(extra) + list(urls), **kw)


def test_name_resolves_through_dns_servers(tmp):
    with Nginx(tmp, big_files=False) as ngx, FakeDNS(tmp, {"web.test": v4()}) as dns:
        url = "http://web.test:%d/1k.bin" % ngx.port
        res = fetch(dns, [url])
        r = check_record(res.one(), url)
        assert r["ok"] and r["status"] == 200 and r["bytes"] == 1024, res.describe()
        assert res.rc == 0, res.describe("exit 0")
        assert dns.queries("web.test", "A") == 1, "A queries: %d" % dns.queries("web.test", "A")


def test_many_urls_on_one_name_make_one_query_per_type(tmp):
    n = 60
    with Nginx(tmp, big_files=False) as ngx, FakeDNS(tmp, {"many.test": v4()}) as dns:
        urls = ["http://many.test:%d/1k.bin?i=%d" % (ngx.port, i) for i in range(n)]
        res = fetch(dns, urls, "-c", "30")
        recs = res.by_index(n)
        assert all(r["ok"] for r in recs.values()), res.describe("every URL ok")
        assert dns.queries("many.test", "A") == 1 and dns.queries("many.test", "AAAA") == 1, (
            "expected one A and one AAAA query for %d URLs, got A=%d AAAA=%d"
            % (n, dns.queries("many.test", "A"), dns.queries("many.test", "AAAA")))


def test_nxdomain_is_named_in_the_record(tmp):
    with FakeDNS(tmp, {}) as dns:
        url = "http://nx.test:9/"
        res = fetch(dns, [url])
        r = check_record(res.one(), url)
        assert r["ok"] is False and res.rc == 1, res.describe()
        assert r["error"] == "dns: no such host (NXDOMAIN) 'nx.test'", r["error"]


def test_servfail_is_named_in_the_record(tmp):
    with FakeDNS(tmp, {"fail.test": "servfail"}) as dns:
        res = fetch(dns, ["http://fail.test:9/"])
        r = res.one()
        assert r["ok"] is False and r["error"] == "dns: server failure 'fail.test'", r["error"]
        assert res.elapsed_s < 2 + slack(), res.describe("an answer at once")


@timeout(30)
def test_silent_server_fails_within_the_dns_bound(tmp):
    with FakeDNS(tmp, {"silent.test": "silent"}) as dns:
        res = fetch(dns, ["http://silent.test:9/"])
        r = res.one()
        assert r["ok"] is False and r["error"] == "dns: timeout 'silent.test'", res.describe()
        # c-ares: 1000 ms, then 2000 ms on the retry (dns.c DNS_TIMEOUT_MS, DNS_TRIES).
        assert 2.5 < res.elapsed_s < 5 + slack(), res.describe("about 3 s")


def test_connect_timeout_covers_a_silent_dns_server(tmp):
    with FakeDNS(tmp, {"silent.test": "silent"}) as dns:
        res = fetch(dns, ["http://silent.test:9/"], "--connect-timeout", "1")
        r = res.one()
        assert r["ok"] is False and "timeout" in r["error"], res.describe()
        assert res.elapsed_s < 2.5 + slack(), res.describe("failure after about 1 s")


def test_resolve_override_wins_over_dns(tmp):
    with Nginx(tmp, big_files=False) as ngx, FakeDNS(tmp, {}) as dns:
        url = "http://over.test:%d/1k.bin" % ngx.port
        res = fetch(dns, [url], "--resolve", "over.test:%d:127.0.0.1" % ngx.port)
        r = res.one()
        assert r["ok"], res.describe()
        assert dns.queries("over.test") == 0, "--resolve should have kept DNS out"


def test_verbose_traces_lookup_answer_and_cache(tmp):
    with Nginx(tmp, big_files=False) as ngx, FakeDNS(tmp, {"trace.test": v4(42)}) as dns:
        # The second URL's port is another pool key, so it resolves again (from
        # the cache) instead of reusing the first one's keep-alive connection.
        closed = free_port()
        urls = ["http://trace.test:%d/1k.bin" % ngx.port, "http://trace.test:%d/" % closed]
        res = fetch(dns, urls, "--verbose", "-c", "1")
        recs = res.by_index(2)
        assert recs[0]["ok"] and recs[1]["error"].startswith("connect:"), res.describe()
        queries = dns.queries("trace.test", "A")
        assert queries == 1, "expected 1 A query, got %d" % queries
        err = res.stderr
        for needle in ("dns: looking up trace.test", "dns: trace.test -> 127.0.0.1 (ttl 42 s",
                       "dns: trace.test -> 127.0.0.1 (cached"):
            assert needle in err, "expected %r in --verbose output:\n%s" % (needle, err[-3000:])


def test_bad_dns_servers_is_a_usage_error(tmp):
    res = run_volley(["--json", "--dns-servers", "not-an-address", "http://x.test/"])
    assert res.rc == 2, res.describe("exit 2")
    assert "--dns-servers" in res.stderr, res.describe()


def _ipv6_loopback():
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


def test_refused_ipv6_falls_back_to_ipv4_at_once(tmp):
    if not _ipv6_loopback():
        raise Skip("no IPv6 loopback")
    names = {"dual.test": {"A": ["127.0.0.1"], "AAAA": ["::1"], "ttl": 60}}
    with Nginx(tmp, big_files=False) as ngx, FakeDNS(tmp, names) as dns:
        url = "http://dual.test:%d/1k.bin" % ngx.port  # nginx: 127.0.0.1 only; ::1 refuses
        res = fetch(dns, [url], "--verbose")
        r = check_record(res.one(), url)
        assert r["ok"], res.describe()
        err = res.stderr
        first = "connect attempt 1/2 to [::1]:%d" % ngx.port
        assert first in err, "expected ::1 to be tried first (%r):\n%s" % (first, err[-3000:])
        assert "connect attempt 2/2 to 127.0.0.1:%d" % ngx.port in err, err[-3000:]
        assert "failed: Connection refused" in err, err[-3000:]
        # Valgrind alone makes this ~100 ms; the exact timing is unit-tested
        # with a fake clock (tests/unit/test_connect.c).
        connect_ms = (r.get("timings") or {}).get("connect_ms")
        if connect_ms is not None and not under_valgrind():
            assert connect_ms < 100, (
                "connect took %.1f ms: the 250 ms attempt delay was waited" % connect_ms)
        assert res.elapsed_s < 1.0 + slack(), res.describe()


def test_all_addresses_refused_lists_each(tmp):
    if not _ipv6_loopback():
        raise Skip("no IPv6 loopback")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # bound, not listening: refused
        names = {"gone.test": {"A": ["127.0.0.1"], "AAAA": ["::1"], "ttl": 60}}
        with FakeDNS(tmp, names) as dns:
            res = fetch(dns, ["http://gone.test:%d/" % port])
    r = res.one()
    assert r["ok"] is False, res.describe()
    want = "connect: connection refused ([::1]:%d, 127.0.0.1:%d)" % (port, port)
    assert r["error"] == want, "expected %r, got %r" % (want, r["error"])
