"""Proxies (issue 14): -x/--proxy, --noproxy and the proxy environment, as curl
has them.  Real proxies from Debian (squid, tinyproxy, microsocks, danted),
each started on a free 127.0.0.1 port with a config generated under the
test's temp dir and stopped by PID; small Python proxies of this file's own
for what real ones will not do (close mid-CONNECT, SOCKS reply 4, stall)."""
import base64
import os
import re
import socket
import struct
import subprocess
import threading
import time

from harness import (Nginx, ScriptedServer, _Server, _fresh_dir, _live, _stop_pid, check_record,
                     free_port, headers_of, port_accepts, run_volley, timeout, wait_until)
from tls_helpers import certs_in

# Neither the image's CA settings nor its proxies: each test sets what it means.
# (run_volley merges env into os.environ, and an empty variable counts as set,
# as in curl: the proxy variables leave this test process's environment.)
CLEAN_ENV = {"SSL_CERT_FILE": "", "SSL_CERT_DIR": ""}
PROXY_VARS = ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY",
              "no_proxy", "NO_PROXY")
for _name in PROXY_VARS:
    os.environ.pop(_name, None)


def volley(args, env=None, **kw):
    e = dict(CLEAN_ENV)
    e.update(env or {})
    return run_volley(["--json"] + list(args), env=e, **kw)


def records(res, n):
    by = res.by_index(n)
    recs = [by[i] for i in range(n)]
    for r in recs:
        check_record(r)
    return recs


def chmod_for_proxy_user(tmp, d):
    """squid drops root for its 'proxy' user: it must reach and write its dir."""
    os.chmod(str(tmp), 0o711)
    os.chmod(d, 0o777)


def _start_proc(server, argv, log_name, ready_port, timeout_s=15.0, what=None):
    with open(os.path.join(server.dir, log_name), "ab") as err:
        server.proc = subprocess.Popen(argv, stdout=err, stderr=err, stdin=subprocess.DEVNULL)
    _live.append(server)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if server.proc.poll() is not None:
            break
        if port_accepts(ready_port):
            return server
        time.sleep(0.05)
    tail = server.log_tail()
    server.stop()
    raise AssertionError("%s did not start on port %d:\n%s" % (what or argv[0], ready_port, tail))


class _Proc(_Server):
    logs = ()

    def stop(self):
        if getattr(self, "proc", None) is not None:
            _stop_pid(self.proc)
            self.proc = None
        self._forget()

    def log_tail(self, n=3000):
        out = ""
        for name in self.logs:
            try:
                with open(os.path.join(self.dir, name), "rb") as f:
                    out += f.read()[-n:].decode("utf-8", "replace")
            except OSError:
                pass
        return out

    @property
    def base(self):
        return "127.0.0.1:%d" % self.port


class Squid(_Proc):
    """squid -N (foreground), no cache, access log with the client's port
    (one per TCP connection).  auth=(user, password): basic auth via
    basic_ncsa_auth and an htpasswd file.  deny_port: CONNECT or requests to
    that port get squid's 403."""

    logs = ("cache.log", "stderr.log")
    LOG_RE = re.compile(r"^(\S+) (\S+) (\S+) (\d+)$")

    def __init__(self, tmp, auth=None, deny_port=None, tls=None):
        self.tmp = tmp
        self.dir = _fresh_dir(tmp, "squid")
        self.auth, self.deny_port, self.tls = auth, deny_port, tls
        self.proc = None

    def _config(self):
        d = self.dir
        port = "http_port 127.0.0.1:%d" % self.port
        if self.tls:  # https_port: TLS to the proxy itself (Debian's squid: GnuTLS)
            port = "https_port 127.0.0.1:%d tls-cert=%s tls-key=%s" % ((self.port,) + self.tls)
        lines = [port,
                 "pid_filename %s/squid.pid" % d,
                 "cache deny all", "cache_mem 4 MB", "cache_store_log none",
                 "logformat volley %>a:%>p %rm %ru %>Hs",
                 "access_log stdio:%s/access.log volley" % d,
                 "cache_log %s/cache.log" % d,
                 "coredump_dir %s" % d,
                 "pinger_enable off", "shutdown_lifetime 0 seconds", "strip_query_terms off",
                 "acl loop src 127.0.0.1/32"]
        if self.deny_port:
            lines += ["acl denied port %d" % self.deny_port, "http_access deny denied"]
        if self.auth:
            pw = os.path.join(d, "passwd")
            subprocess.run(["htpasswd", "-b", "-c", pw, self.auth[0], self.auth[1]], check=True,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            os.chmod(pw, 0o644)
            lines += ["auth_param basic program /usr/lib/squid/basic_ncsa_auth %s" % pw,
                      "auth_param basic children 2 startup=1 idle=1",
                      "auth_param basic realm volley",
                      "acl authed proxy_auth REQUIRED",
                      "http_access allow loop authed", "http_access deny all"]
        else:
            lines += ["http_access allow loop", "http_access deny all"]
        return "\n".join(lines) + "\n"

    def start(self):
        chmod_for_proxy_user(self.tmp, self.dir)
        for path in self.tls or ():  # the throwaway key, readable by squid's user
            os.chmod(os.path.dirname(path), 0o755)
            os.chmod(path, 0o644)
        self.port = free_port()
        conf = os.path.join(self.dir, "squid.conf")
        with open(conf, "w") as f:
            f.write(self._config())
        # -n: a service name of its own, so its shared memory segments
        # (/dev/shm/squid-NAME-*) never meet another squid's
        return _start_proc(self, ["squid", "-N", "-n", "volley%d" % self.port, "-f", conf],
                           "stderr.log", self.port)

    def access_log(self, n=0, timeout_s=5.0):
        """[(client, method, url, status)] once at least n lines are there
        (squid logs a CONNECT when its tunnel closes)."""
        def read():
            try:
                with open(os.path.join(self.dir, "access.log")) as f:
                    lines = f.read().splitlines()
            except FileNotFoundError:
                lines = []
            out = [m.groups() for m in map(self.LOG_RE.match, lines)
                   if m and m.group(2) != "-"]  # "-": the readiness probe's empty connection
            return out if len(out) >= n else None
        return wait_until(read, timeout_s, "%d squid access log lines" % n) if n else read() or []


class Microsocks(_Proc):
    logs = ("stderr.log",)

    def __init__(self, tmp, user=None, password=None):
        self.dir = _fresh_dir(tmp, "microsocks")
        self.user, self.password = user, password
        self.proc = None

    def start(self):
        self.port = free_port()
        argv = ["microsocks", "-i", "127.0.0.1", "-p", str(self.port)]
        if self.user:
            argv += ["-u", self.user, "-P", self.password]
        return _start_proc(self, argv, "stderr.log", self.port)


class Danted(_Proc):
    """dante's SOCKS server, no authentication (its 'username' method wants
    system accounts through PAM/passwd: microsocks covers RFC 1929)."""

    logs = ("danted.log", "stderr.log")

    def __init__(self, tmp):
        self.dir = _fresh_dir(tmp, "danted")
        self.proc = None

    def start(self):
        self.port = free_port()
        conf = os.path.join(self.dir, "danted.conf")
        with open(conf, "w") as f:
            f.write("logoutput: %s/danted.log\n"
                    "internal: 127.0.0.1 port = %d\n"
                    "external: 127.0.0.1\n"
                    "socksmethod: none\nclientmethod: none\n"
                    "user.privileged: root\nuser.unprivileged: nobody\n"
                    "client pass { from: 127.0.0.0/8 to: 0.0.0.0/0 }\n"
                    "socks pass { from: 127.0.0.0/8 to: 0.0.0.0/0 command: connect }\n"
                    % (self.dir, self.port))
        return _start_proc(self, ["danted", "-f", conf, "-N", "1", "-p",
                                  os.path.join(self.dir, "danted.pid")], "stderr.log", self.port)


class Tinyproxy(_Proc):
    logs = ("tinyproxy.log", "stderr.log")

    def __init__(self, tmp):
        self.tmp = tmp
        self.dir = _fresh_dir(tmp, "tinyproxy")
        self.proc = None

    def start(self):
        chmod_for_proxy_user(self.tmp, self.dir)
        self.port = free_port()
        conf = os.path.join(self.dir, "tinyproxy.conf")
        with open(conf, "w") as f:
            # no ConnectPort line: CONNECT to every port
            f.write("Port %d\nListen 127.0.0.1\nTimeout 30\nLogFile \"%s/tinyproxy.log\"\n"
                    "LogLevel Info\nPidFile \"%s/tinyproxy.pid\"\nMaxClients 20\n"
                    "Allow 127.0.0.1\nDisableViaHeader Yes\n" % (self.port, self.dir, self.dir))
        return _start_proc(self, ["tinyproxy", "-d", "-c", conf], "stderr.log", self.port)

    def log(self):
        try:
            with open(os.path.join(self.dir, "tinyproxy.log")) as f:
                return f.read()
        except FileNotFoundError:
            return ""


class FakeProxy:
    """A one-file proxy of this test's own: handler(sock) runs per accepted
    connection in a thread; what it read is kept in .seen."""

    def __init__(self, handler):
        self.handler = handler
        self.seen = []
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.stopping = False
        self.thread = threading.Thread(target=self._serve, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stopping = True
        try:
            self.sock.shutdown(socket.SHUT_RDWR)  # wakes the accept (close alone does not)
        except OSError:
            pass
        self.sock.close()
        self.thread.join(5)
        assert not self.thread.is_alive(), "the fake proxy's thread did not stop"

    def _serve(self):
        while not self.stopping:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._one, args=(c,), daemon=True).start()

    def _one(self, c):
        try:
            c.settimeout(10)
            self.handler(self, c)
        except OSError:
            pass
        finally:
            c.close()

    @staticmethod
    def read_head(c):
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = c.recv(4096)
            if not chunk:
                break
            data += chunk
        return data

    @staticmethod
    def read_n(c, n):
        data = b""
        while len(data) < n:
            chunk = c.recv(n - len(data))
            if not chunk:
                raise OSError("closed")
            data += chunk
        return data


def dead_port():
    """A port nothing listens on (connect: connection refused)."""
    return free_port()


def tls_nginx(tmp, certs, **kw):
    return Nginx(tmp, ssl=(certs["good"], certs.key), big_files=False, **kw)


# ------------------------------------------------------- http proxy: squid

@timeout(60)
def test_http_urls_through_squid_use_absolute_form_and_one_pooled_connection(tmp):
    with Nginx(tmp, big_files=False) as ng, Squid(tmp) as sq:
        urls = [ng.url("/1k.bin?n=%d" % i) for i in range(4)]
        res = volley(["-c", "1", "-x", "http://%s" % sq.base] + urls)
        recs = records(res, 4)
        for r in recs:
            assert r["ok"] and r["status"] == 200 and r["bytes"] == 1024, res.describe()
            assert r["url"] == urls[r["index"]] and r["final_url"] == urls[r["index"]], r
            assert r["timings"]["proxy_ms"] is None, "no tunnel for http:// through an http " \
                "proxy: %r" % r["timings"]
        assert res.rc == 0, res.describe()
        log = sq.access_log(4)
        assert [(m, u) for _, m, u, _ in log] == [("GET", u) for u in urls], log
        clients = {c for c, _, _, _ in log}
        assert len(clients) == 1, "expected one keep-alive connection to the proxy, saw %r" % log
        assert sum(r["reused"] for r in recs) == 3, recs


@timeout(60)
def test_http_proxy_connections_are_pooled_per_proxy_not_per_target(tmp):
    with Nginx(tmp, big_files=False) as a, Nginx(tmp, big_files=False) as b, Squid(tmp) as sq:
        urls = [a.url("/1k.bin"), b.url("/1k.bin"), a.url("/empty.bin"), b.url("/empty.bin")]
        res = volley(["-c", "1", "-x", sq.base] + urls)  # no scheme: http://
        assert all(r["ok"] for r in records(res, 4)), res.describe()
        log = sq.access_log(4)
        assert len({c for c, _, _, _ in log}) == 1, "two targets, one proxy: one connection " \
            "expected, saw %r" % log


@timeout(60)
def test_https_urls_through_squid_tunnel_with_connect_and_verify_the_target(tmp):
    certs = certs_in(tmp)
    with tls_nginx(tmp, certs) as ng, Squid(tmp) as sq:
        urls = ["https://localhost:%d/1k.bin?n=%d" % (ng.port, i) for i in range(3)]
        res = volley(["-c", "1", "--cacert", certs.ca, "-x", "http://" + sq.base] + urls)
        recs = records(res, 3)
        for r in recs:
            assert r["ok"] and r["status"] == 200 and r["bytes"] == 1024, res.describe()
        first = min(recs, key=lambda r: r["reused"])
        assert first["timings"]["proxy_ms"] is not None and first["timings"]["proxy_ms"] >= 0, first
        assert first["timings"]["tls_ms"] >= 0, first
        assert ng.connections(ng.wait_log(3)) == 1, "the tunnel is a pooled connection: " \
            "%r" % ng.access_log()
        log = sq.access_log(1)
        assert [(m, u) for _, m, u, _ in log] == [("CONNECT", "localhost:%d" % ng.port)], log
    # the target is verified by its own name through the tunnel
    with Nginx(tmp, ssl=(certs["wronghost"], certs.key), big_files=False) as ng, Squid(tmp) as sq:
        res = volley(["--cacert", certs.ca, "-x", sq.base, "https://localhost:%d/1k.bin" % ng.port])
        rec = records(res, 1)[0]
        assert rec["error"] == "tls: hostname mismatch (cert for wrong.test, wanted localhost)", rec
        assert ng.access_log() == [], "a request went out over an unverified tunnel"


@timeout(60)
def test_proxy_credentials_are_percent_decoded_and_sent_as_basic_auth(tmp):
    certs = certs_in(tmp)
    with Nginx(tmp, big_files=False) as ng, tls_nginx(tmp, certs) as tng, \
            Squid(tmp, auth=("us@er", "p:ss w")) as sq:
        urls = [ng.url("/1k.bin"), "https://localhost:%d/1k.bin" % tng.port]
        res = volley(["--cacert", certs.ca, "-x", "http://us%40er:p%3Ass%20w@" + sq.base] + urls)
        for r in records(res, 2):
            assert r["ok"] and r["status"] == 200, res.describe()


@timeout(60)
def test_missing_or_wrong_proxy_credentials_are_named_407(tmp):
    certs = certs_in(tmp)
    with Nginx(tmp, big_files=False) as ng, tls_nginx(tmp, certs) as tng, \
            Squid(tmp, auth=("alice", "right")) as sq:
        https_url = "https://localhost:%d/1k.bin" % tng.port
        for proxy in ("http://" + sq.base, "http://alice:wrong@" + sq.base):
            res = volley(["--cacert", certs.ca, "-x", proxy, ng.url("/1k.bin"), https_url])
            plain, tunneled = records(res, 2)
            # the proxy's own answer to a forwarded request is that request's response, as curl
            assert plain["status"] == 407, res.describe()
            want = "proxy: CONNECT to localhost:%d refused (407 Proxy Authentication Required)" \
                % tng.port
            assert not tunneled["ok"] and tunneled["error"] == want, (want, tunneled)
            assert tunneled["status"] is None, tunneled
            assert res.rc == 1, res.describe()
        assert tng.access_log() == [], "no request may reach the target without a tunnel"


@timeout(60)
def test_squid_403_is_named_for_tunnels_and_is_the_status_for_forwarded_requests(tmp):
    certs = certs_in(tmp)
    with Nginx(tmp, big_files=False) as ng, tls_nginx(tmp, certs) as tng:
        with Squid(tmp, deny_port=tng.port) as sq:
            res = volley(["--cacert", certs.ca, "-x", sq.base,
                          "https://localhost:%d/1k.bin" % tng.port, ng.url("/1k.bin")])
            denied, allowed = records(res, 2)
            assert denied["error"] == "proxy: CONNECT to localhost:%d refused (403 Forbidden)" \
                % tng.port, denied
            assert allowed["ok"] and allowed["status"] == 200, allowed
        with Squid(tmp, deny_port=ng.port) as sq:
            res = volley(["-x", sq.base, ng.url("/1k.bin")])
            assert records(res, 1)[0]["status"] == 403, res.describe()


@timeout(30)
def test_proxy_down_is_a_connect_error_naming_the_proxy(tmp):
    port = dead_port()
    for url in ("http://127.0.0.1:1/x", "https://localhost:1/x"):
        res = volley(["-x", "127.0.0.1:%d" % port, url])
        rec = records(res, 1)[0]
        want = "proxy: connect: connection refused (127.0.0.1:%d)" % port
        assert not rec["ok"] and rec["error"] == want, (want, rec)
        assert rec["url"] == url, rec
        assert res.rc == 1


def _close_after_head(proxy, c):
    proxy.seen.append(FakeProxy.read_head(c))


def _garbage_after_head(proxy, c):
    proxy.seen.append(FakeProxy.read_head(c))
    c.sendall(b"SSH-2.0-not-a-proxy\r\n\r\n")


def _stall_after_head(proxy, c):
    proxy.seen.append(FakeProxy.read_head(c))
    time.sleep(5)


@timeout(60)
def test_a_proxy_that_breaks_the_protocol_fails_that_fetch_only(tmp):
    with Nginx(tmp, big_files=False) as ng:
        for handler, want in ((_close_after_head, "the proxy closed the connection before its "
                               "response"), (_garbage_after_head, "http: ")):
            with FakeProxy(handler) as fp:
                direct = "http://127.0.0.1:%d/1k.bin" % ng.port
                res = volley(["-x", "127.0.0.1:%d" % fp.port, "--noproxy", "127.0.0.1",
                              "https://a.localhost:%d/x" % ng.port, direct])
                broken, ok = records(res, 2)
                prefix = "proxy: CONNECT to a.localhost:%d: " % ng.port
                assert not broken["ok"] and broken["error"].startswith(prefix + want), broken
                assert ok["ok"] and ok["status"] == 200, ok
                assert res.rc == 1, res.describe()
                assert fp.seen and fp.seen[0].startswith(
                    b"CONNECT a.localhost:%d HTTP/1.1\r\nHost: a.localhost:%d\r\n"
                    % (ng.port, ng.port)), fp.seen


def _refuse_after_head(proxy, c):
    proxy.seen.append(FakeProxy.read_head(c))
    c.sendall(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n")


@timeout(30)
def test_long_credentials_go_whole_and_a_too_long_host_is_never_cut(tmp):
    # a 700-byte token as the password: the CONNECT request outgrows the
    # stage's fixed buffer and must still go out whole
    token = "t" * 700
    with FakeProxy(_refuse_after_head) as fp:
        res = volley(["-x", "http://bot:%s@127.0.0.1:%d" % (token, fp.port),
                      "https://a.test:8443/x"])
        rec = records(res, 1)[0]
        assert rec["error"] == "proxy: CONNECT to a.test:8443 refused (403 Forbidden)", rec
        b64 = base64.b64encode(("bot:" + token).encode())
        assert fp.seen and b"\r\nProxy-Authorization: Basic " + b64 + b"\r\n" in fp.seen[0], \
            fp.seen[0][:200]
    # a 300-byte host name (DNS allows 253): refused by the stage, never cut
    # to 255 bytes and sent on to another host
    host = ".".join(["a" * 60] * 5)
    with FakeProxy(_close_after_head) as fp:
        res = volley(["-x", "socks5h://127.0.0.1:%d" % fp.port, "http://%s/x" % host])
        rec = records(res, 1)[0]
        assert rec["error"] == ("proxy: host name too long for a tunnel (%d bytes, at most 255)"
                                % len(host)), rec


@timeout(30)
def test_connect_timeout_covers_the_tunnel(tmp):
    with FakeProxy(_stall_after_head) as fp:
        t0 = time.monotonic()
        res = volley(["--connect-timeout", "1", "-x", "127.0.0.1:%d" % fp.port,
                      "https://localhost:1/x"])
        rec = records(res, 1)[0]
        assert rec["error"] == "timeout: connect after 1.0 s in TUNNEL", rec
        assert time.monotonic() - t0 < 4, "took %.1f s" % (time.monotonic() - t0)


# ------------------------------------------------------ noproxy and the env

def _direct_or_proxied(ng, env=None, args=(), hosts=("localhost",)):
    """For each host: 'direct' when the fetch reached nginx, 'proxied' when
    it went to the (dead) proxy of env/args."""
    urls = ["http://%s:%d/1k.bin" % (h, ng.port) for h in hosts]
    res = volley(list(args) + urls, env=env)
    out = []
    for r in records(res, len(urls)):
        if r["ok"]:
            out.append("direct")
        else:
            assert r["error"].startswith("proxy: connect: connection refused"), r
            out.append("proxied")
    return out


@timeout(60)
def test_noproxy_matches_suffixes_star_ips_and_cidr_as_curl(tmp):
    dead = "http://127.0.0.1:%d" % dead_port()
    hosts = ("localhost", "a.localhost", "127.0.0.1")
    cases = [("localhost", ["direct", "direct", "proxied", "proxied"]),
             (".localhost", ["direct", "direct", "proxied", "proxied"]),
             ("a.localhost", ["proxied", "direct", "proxied", "proxied"]),
             ("calhost", ["proxied", "proxied", "proxied", "proxied"]),
             ("*", ["direct", "direct", "direct", "direct"]),
             ("127.0.0.1", ["proxied", "proxied", "direct", "proxied"]),
             ("127.0.0.0/8", ["proxied", "proxied", "direct", "proxied"]),
             ("10.0.0.0/8, ::1", ["proxied", "proxied", "proxied", "direct"]),
             ("::/0", ["proxied", "proxied", "proxied", "direct"]),
             ("foo.test,  localhost ,127.0.0.2", ["direct", "direct", "proxied", "proxied"])]
    with Nginx(tmp, big_files=False) as ng:
        for noproxy, want in cases:
            for how in ("env", "option"):
                if how == "env":
                    got = _direct_or_proxied(ng, env={"http_proxy": dead, "NO_PROXY": noproxy},
                                             hosts=hosts)
                else:
                    got = _direct_or_proxied(ng, args=["-x", dead, "--noproxy", noproxy],
                                             hosts=hosts)
                assert got == want[:3], "noproxy %r (%s): expected %r, got %r" % (
                    noproxy, how, want[:3], got)


@timeout(60)
def test_proxy_environment_is_read_as_curl_reads_it(tmp):
    dead = "http://127.0.0.1:%d" % dead_port()
    certs = certs_in(tmp)
    with Nginx(tmp, big_files=False) as ng, tls_nginx(tmp, certs) as tng:
        http_url = ng.url("/1k.bin")
        https_url = "https://localhost:%d/1k.bin" % tng.port

        def how(env, args=()):
            res = volley(["--cacert", certs.ca] + list(args) + [http_url, https_url], env=env)
            return ["direct" if r["ok"] else "proxied" if r["error"].startswith("proxy: ")
                    else r["error"] for r in records(res, 2)]

        assert how({"http_proxy": dead}) == ["proxied", "direct"]
        # httpoxy: HTTP_PROXY can come from a CGI request's "Proxy:" header
        assert how({"HTTP_PROXY": dead}, ) == ["direct", "direct"]
        assert how({"HTTPS_PROXY": dead}) == ["direct", "proxied"]
        assert how({"https_proxy": dead}) == ["direct", "proxied"]
        assert how({"ALL_PROXY": dead}) == ["proxied", "proxied"]
        assert how({"all_proxy": dead, "https_proxy": ""}) == ["proxied", "direct"]
        assert how({"all_proxy": dead, "no_proxy": "localhost,127.0.0.1"}) == ["direct", "direct"]
        # an explicit --proxy '' or --noproxy '*' turns the environment off
        assert how({"all_proxy": dead}, ["--proxy", ""]) == ["direct", "direct"]
        assert how({"all_proxy": dead}, ["--noproxy", "*"]) == ["direct", "direct"]
        # --noproxy replaces NO_PROXY; -x replaces the proxy variables
        assert how({"all_proxy": dead, "NO_PROXY": "*"}, ["--noproxy", "x.test"]) == \
            ["proxied", "proxied"]
        assert how({}, ["-x", dead]) == ["proxied", "proxied"]


@timeout(60)
def test_redirect_to_a_noproxy_host_goes_direct_and_gets_no_proxy_credentials(tmp):
    with ScriptedServer(tmp) as s, Squid(tmp, auth=("alice", "s3cret")) as sq:
        target = "http://localhost:%d/echo" % s.port
        url = "http://127.0.0.1:%d/redirect?to=%s" % (s.port, target)
        res = volley(["-x", "http://alice:s3cret@" + sq.base, "--noproxy", "localhost", url])
        rec = records(res, 1)[0]
        assert rec["ok"] and rec["status"] == 200 and rec["redirects"] == 1, res.describe()
        assert rec["final_url"] == target, rec
        reqs = s.requests()
        assert [r["target"] for r in reqs] == ["/redirect?to=%s" % target, "/echo"], reqs
        echo = reqs[1]
        assert "proxy-authorization" not in headers_of(echo), echo
        log = sq.access_log(1)
        assert [u for _, _, u, _ in log] == [url], "only the first hop via the proxy: %r" % log


@timeout(60)
def test_proxy_credentials_never_show_in_verbose_output_or_records(tmp):
    certs = certs_in(tmp)
    with Nginx(tmp, big_files=False) as ng, tls_nginx(tmp, certs) as tng, \
            Squid(tmp, auth=("alice", "s3cretpw")) as sq:
        warc = os.path.join(tmp, "out.warc")
        res = volley(["-v", "--cacert", certs.ca, "-x", "http://alice:s3cretpw@" + sq.base,
                      "--warc", warc, ng.url("/1k.bin"), "https://localhost:%d/1k.bin" % tng.port])
        for r in records(res, 2):
            assert r["ok"], res.describe()
        b64 = base64.b64encode(b"alice:s3cretpw").decode()
        for stream in (res.stdout, res.stderr):
            assert "s3cretpw" not in stream and b64 not in stream, stream[-2000:]
        # the WARC's request records hold what went to the target, not the
        # proxy's credentials (the forwarded request carried them on the wire)
        with open(warc, "rb") as f:
            data = f.read()
        assert b"GET http://127.0.0.1:%d/1k.bin" % ng.port in data, data[:600]
        assert b"Proxy-Authorization" not in data and b64.encode() not in data and \
            b"s3cretpw" not in data, "proxy credentials in the WARC file"
        assert "proxy: http://%s for http://127.0.0.1:%d" % (sq.base, ng.port) in res.stderr, \
            res.stderr[-2000:]
        assert "proxy: http://%s for https://localhost:%d" % (sq.base, tng.port) in res.stderr


@timeout(60)
def test_https_proxy_forwards_and_tunnels_with_tls_inside_tls(tmp):
    certs = certs_in(tmp)
    with Nginx(tmp, big_files=False) as ng, tls_nginx(tmp, certs) as tng, \
            Squid(tmp, tls=(certs["good"], certs.key), auth=("alice", "pw")) as sq:
        urls = [ng.url("/1k.bin?a"), ng.url("/1k.bin?b"),
                "https://localhost:%d/1k.bin?a" % tng.port,
                "https://localhost:%d/1k.bin?b" % tng.port]
        res = volley(["-c", "1", "--cacert", certs.ca, "--proxy-cacert", certs.ca,
                      "-x", "https://alice:pw@localhost:%d" % sq.port] + urls)
        recs = records(res, 4)
        for r in recs:
            assert r["ok"] and r["status"] == 200 and r["bytes"] == 1024, res.describe()
        # TLS to the proxy is part of the proxy phase, for forwarded requests too
        assert recs[0]["timings"]["proxy_ms"] is not None, recs[0]
        assert tng.connections(tng.wait_log(2)) == 1, tng.access_log()
        log = sq.access_log(3)
        methods = sorted(m for _, m, _, _ in log)
        assert methods == ["CONNECT", "GET", "GET"], log
        assert len({c for c, m, _, _ in log if m == "GET"}) == 1, "forwarded requests share " \
            "one TLS connection to the proxy: %r" % log


@timeout(60)
def test_https_proxy_is_verified_like_a_server_with_its_own_ca_options(tmp):
    certs = certs_in(tmp)
    with Nginx(tmp, big_files=False) as ng:
        with Squid(tmp, tls=(certs["good"], certs.key)) as sq:
            proxy = "https://localhost:%d" % sq.port
            # --cacert is for the servers; the proxy is checked with --proxy-cacert
            for extra in ([], ["--cacert", certs.ca]):
                res = volley(extra + ["-x", proxy, ng.url("/1k.bin")])
                rec = records(res, 1)[0]
                assert rec["error"] == "proxy: tls: certificate not trusted (unknown CA)", rec
            rec = records(volley(["--proxy-insecure", "-x", proxy, ng.url("/1k.bin")]), 1)[0]
            assert rec["ok"] and rec["status"] == 200, rec
            # a CA file that cannot be read fails each fetch through the proxy, naming it
            res = volley(["--proxy-cacert", os.path.join(str(tmp), "nope.pem"), "-x", proxy,
                          ng.url("/1k.bin")])
            rec = records(res, 1)[0]
            assert rec["error"].startswith("proxy: tls: ") and "nope.pem" in rec["error"], rec
    with Nginx(tmp, big_files=False) as ng, Squid(tmp, tls=(certs["wronghost"], certs.key)) as sq:
        res = volley(["--proxy-cacert", certs.ca, "-x", "https://localhost:%d" % sq.port,
                      ng.url("/1k.bin")])
        rec = records(res, 1)[0]
        assert rec["error"] == "proxy: tls: hostname mismatch (cert for wrong.test, wanted " \
            "localhost)", rec
        assert ng.access_log() == [], "nothing may go through an unverified proxy"


@timeout(20)
def test_bad_proxy_urls_are_usage_errors(tmp):
    for proxy, want in (("ftp://p.test", "proxy: unsupported scheme 'ftp'"),
                        ("http://p.test:99999", "proxy: bad host or port"),
                        ("http://:8080", "proxy: bad host or port"),
                        ("gopher://p.test", "proxy: unsupported scheme 'gopher'")):
        res = volley(["-x", proxy, "http://127.0.0.1:1/"])
        assert res.rc == 2 and want in res.stderr, res.describe()


# ------------------------------------------------------------------- SOCKS

@timeout(60)
def test_socks5h_through_microsocks_sends_names_and_pools_tunnels(tmp):
    certs = certs_in(tmp)
    with Nginx(tmp, big_files=False) as ng, tls_nginx(tmp, certs) as tng, Microsocks(tmp) as ms:
        urls = ["https://localhost:%d/1k.bin?n=%d" % (tng.port, i) for i in range(3)]
        urls.append("http://localhost:%d/1k.bin" % ng.port)
        res = volley(["-c", "1", "--cacert", certs.ca, "-x", "socks5h://" + ms.base] + urls)
        recs = records(res, 4)
        for r in recs:
            assert r["ok"] and r["status"] == 200 and r["bytes"] == 1024, res.describe()
        assert any(r["timings"]["proxy_ms"] is not None for r in recs), recs
        assert tng.connections(tng.wait_log(3)) == 1, tng.access_log()
        # a request through a SOCKS tunnel is origin-form, as to the server itself
        assert ng.wait_log(1)[0]["path"] == "/1k.bin", ng.access_log()


@timeout(60)
def test_socks5_resolves_names_here_and_socks5h_leaves_them_to_the_proxy(tmp):
    with Nginx(tmp, big_files=False) as ng, Microsocks(tmp) as ms:
        url = "http://a.test:%d/1k.bin" % ng.port
        resolve = ["--resolve", "a.test:%d:127.0.0.1" % ng.port]
        res = volley(resolve + ["-x", "socks5://" + ms.base, url])
        rec = records(res, 1)[0]
        assert rec["ok"] and rec["status"] == 200, res.describe()
        # the proxy cannot resolve a.test: it says so in its reply
        res = volley(resolve + ["-x", "socks5h://" + ms.base, url])
        rec = records(res, 1)[0]
        assert not rec["ok"] and rec["error"].startswith("proxy: socks5: "), rec
        assert re.search(r"\(reply \d\)$", rec["error"]), rec


@timeout(60)
def test_socks5_username_password_with_microsocks(tmp):
    with Nginx(tmp, big_files=False) as ng, Microsocks(tmp, "bob", "pa:ss") as ms:
        url = ng.url("/1k.bin")
        ok = records(volley(["-x", "socks5://bob:pa%3Ass@" + ms.base, url]), 1)[0]
        assert ok["ok"] and ok["status"] == 200, ok
        wrong = records(volley(["-x", "socks5://bob:nope@" + ms.base, url]), 1)[0]
        assert wrong["error"] == "proxy: socks5: user name and password rejected", wrong
        none = records(volley(["-x", "socks5h://" + ms.base, url]), 1)[0]
        assert none["error"] == \
            "proxy: socks5: the proxy wants authentication (no user name given)", none


@timeout(60)
def test_socks5_socks5h_and_socks4_through_danted(tmp):
    with Nginx(tmp, big_files=False) as ng, Danted(tmp) as d:
        # dante has no SOCKS4a (curl --socks4a fails there too): see the scripted one below
        for scheme in ("socks5", "socks5h", "socks4"):
            res = volley(["-x", "%s://%s" % (scheme, d.base), ng.url("/1k.bin")])
            rec = records(res, 1)[0]
            assert rec["ok"] and rec["status"] == 200, (scheme, res.describe())


def _socks5_reply(code, atyp_seen):
    def handler(proxy, c):
        greet = FakeProxy.read_n(c, 2)
        FakeProxy.read_n(c, greet[1])
        c.sendall(b"\x05\x00")
        head = FakeProxy.read_n(c, 5)
        atyp_seen.append(head[3])
        rest = {1: 3, 3: head[4], 4: 15}[head[3]] + 2
        body = FakeProxy.read_n(c, rest)
        proxy.seen.append(head + body)
        c.sendall(b"\x05" + bytes([code]) + b"\x00\x01" + b"\x00" * 6)
        time.sleep(0.2)
    return handler


@timeout(30)
def test_socks5_reply_errors_are_named_with_their_code(tmp):
    for code, name in ((4, "host unreachable"), (5, "connection refused"),
                       (2, "connection not allowed by ruleset"), (9, "unknown failure")):
        atyps = []
        with FakeProxy(_socks5_reply(code, atyps)) as fp:
            res = volley(["-x", "socks5h://127.0.0.1:%d" % fp.port, "http://a.test:8080/x"])
            rec = records(res, 1)[0]
            assert rec["error"] == "proxy: socks5: %s (reply %d)" % (name, code), rec
            assert atyps == [3], "socks5h sends the name (ATYP 3): %r" % atyps
            assert fp.seen[0][5:5 + 6] == b"a.test" and fp.seen[0][-2:] == struct.pack("!H", 8080)
    atyps = []
    with FakeProxy(_socks5_reply(4, atyps)) as fp:
        volley(["-x", "socks5://127.0.0.1:%d" % fp.port, "http://[::1]:8080/x",
                "http://127.0.0.1:8080/y", "-c", "1"])
        assert sorted(atyps) == [1, 4], "socks5 sends addresses (ATYP 1 and 4): %r" % atyps


def _read_until_nul(c):
    data = b""
    while not data.endswith(b"\0"):
        data += FakeProxy.read_n(c, 1)
    return data


def _socks4_then_http(proxy, c):
    head = FakeProxy.read_n(c, 8)
    user = _read_until_nul(c)
    name = _read_until_nul(c) if head[4:7] == b"\0\0\0" and head[7] else b""
    proxy.seen.append((head, user, name))
    c.sendall(b"\x00\x5a" + b"\x00" * 6)
    req = FakeProxy.read_head(c)
    proxy.seen.append(req)
    c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")


@timeout(30)
def test_socks4a_sends_the_name_and_socks4_the_address(tmp):
    with FakeProxy(_socks4_then_http) as fp:
        res = volley(["-x", "socks4a://joe@127.0.0.1:%d" % fp.port, "http://a.test:8080/x"])
        rec = records(res, 1)[0]
        assert rec["ok"] and rec["status"] == 200 and rec["bytes"] == 2, res.describe()
        head, user, name = fp.seen[0]
        assert head == b"\x04\x01" + struct.pack("!H", 8080) + b"\0\0\0\x01", head
        assert user == b"joe\0" and name == b"a.test\0", fp.seen[0]
        assert fp.seen[1].startswith(b"GET /x HTTP/1.1\r\nHost: a.test:8080\r\n"), fp.seen[1]
    with FakeProxy(_socks4_then_http) as fp:
        # an IPv6 address first (as localhost often is): SOCKS4 takes the IPv4 one
        res = volley(["--resolve", "a.test:8080:[::1],127.0.0.9", "-x",
                      "socks4://127.0.0.1:%d" % fp.port, "http://a.test:8080/x"])
        assert records(res, 1)[0]["ok"], res.describe()
        head, user, name = fp.seen[0]
        assert head == b"\x04\x01" + struct.pack("!H", 8080) + bytes([127, 0, 0, 9]), head
        assert user == b"\0" and name == b"", fp.seen[0]
    with FakeProxy(_socks4_then_http) as fp:
        res = volley(["-x", "socks4://127.0.0.1:%d" % fp.port, "http://[::1]:8080/x"])
        assert records(res, 1)[0]["error"] == \
            "proxy: socks4: ::1 has no IPv4 address (socks4 carries only IPv4)", res.describe()


# ----------------------------------------------------------------- tinyproxy

@timeout(60)
def test_tinyproxy_forwards_http_and_tunnels_https(tmp):
    certs = certs_in(tmp)
    with Nginx(tmp, big_files=False) as ng, tls_nginx(tmp, certs) as tng, Tinyproxy(tmp) as tp:
        urls = [ng.url("/1k.bin"), "https://localhost:%d/1k.bin" % tng.port]
        res = volley(["--cacert", certs.ca, "-x", tp.base] + urls)
        for r in records(res, 2):
            assert r["ok"] and r["status"] == 200 and r["bytes"] == 1024, res.describe()
        log = wait_until(lambda: "CONNECT" in tp.log() and tp.log(), 5, "tinyproxy's log")
        assert "localhost:%d" % tng.port in log, log[-2000:]
