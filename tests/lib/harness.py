"""harness.py: what volley's integration tests share.

Running volley:  run_volley(args) -> VolleyResult (rc, stdout, stderr, records).
    Every run sets VOLLEY_CHECK_FDS=1; exit status 3 (fd leak), a sanitizer
    report, a valgrind error (status 99) or a signal fails the test by raising
    AssertionError, whatever the test itself checks.  VOLLEY_VALGRIND=1 puts
    every run under valgrind memcheck.
Servers, each started on a free 127.0.0.1 port and stopped by PID in every
path (use them as context managers):
    Nginx(tmp, ...)          a real nginx with generated config and static files
    ScriptedServer(tmp)      tests/servers/scripted.py, our misbehaving server
Volley run by a test itself: check_health(args, rc, stderr) makes the same checks.
Helpers: free_port(), port_accepts(), wait_until(), read_to_eof(), check_record(),
read_file_field(), Skip, timeout(), under_valgrind(), sanitized(), slack().

The runner (tests/run.py) sets VOLLEY_BIN and gives each test a fresh temp dir.
"""
import atexit
import json
import os
import re
import selectors
import signal
import socket
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
TESTS_DIR = os.path.dirname(HERE)
SERVERS_DIR = os.path.join(TESTS_DIR, "servers")
if SERVERS_DIR not in sys.path:
    sys.path.insert(0, SERVERS_DIR)

NGINX = os.environ.get("VOLLEY_NGINX", "/usr/sbin/nginx")
VALGRIND = ["valgrind", "--error-exitcode=99", "--leak-check=full",
            "--errors-for-leak-kinds=definite,indirect", "--track-fds=yes", "-q",
            "--suppressions=" + os.path.join(HERE, "valgrind.supp")]
# Exit statuses that mean "volley is broken", not "a URL failed".
EXIT_FD_LEAK = 3
EXIT_SANITIZER = 98   # set through ASAN_OPTIONS/UBSAN_OPTIONS below
EXIT_VALGRIND = 99
SANITIZER_MARKERS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:",
                     "volley: fd leak")

RECORD_FIELDS = {"index": (int,), "url": (str,), "ok": (bool,), "status": (int, type(None)),
                 "bytes": (int,), "time_ms": (int, float), "redirects": (int,),
                 "final_url": (str, type(None)), "error": (str, type(None))}
TIMING_FIELDS = ("queue_ms", "dns_ms", "connect_ms", "tls_ms", "send_ms", "ttfb_ms", "total_ms")


class Skip(Exception):
    """Raise to skip a test; the message says why."""


def timeout(seconds, valgrind=None):
    """Decorator: this test may take up to `seconds` (runner default 60), or
    `valgrind` seconds when VOLLEY_VALGRIND=1 (default 5x)."""
    def mark(fn):
        fn.timeout = seconds
        if valgrind is not None:
            fn.valgrind_timeout = valgrind
        return fn
    return mark


def under_valgrind():
    return os.environ.get("VOLLEY_VALGRIND") == "1"


_SANITIZED = {}


def sanitized():
    """True when the volley binary is built with AddressSanitizer (make asan):
    its memory use (shadow, quarantine) says nothing about volley's own."""
    path = volley_bin()
    if path not in _SANITIZED:
        with open(path, "rb") as f:
            _SANITIZED[path] = b"__asan_init" in f.read()
    return _SANITIZED[path]


def slack(normal=0.0, valgrind=4.0):
    """Extra seconds a wall-clock bound allows (valgrind start-up is slow)."""
    return valgrind if under_valgrind() else normal


def wait_until(predicate, timeout_s, what, interval_s=0.02):
    """Poll predicate() until it returns a true value (returned) or fail after timeout_s."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError("timed out after %.1f s waiting for %s" % (timeout_s, what))
        time.sleep(interval_s)


def free_port():
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def port_accepts(port, timeout_s=0.2):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout_s):
            return True
    except OSError:
        return False


# ------------------------------------------------------------------ volley

def volley_bin():
    path = os.environ.get("VOLLEY_BIN")
    if not path:
        path = os.path.join(os.path.dirname(TESTS_DIR), "build", "volley")
    if not os.access(path, os.X_OK):
        raise AssertionError("volley binary not found at %s (run make, or pass --build DIR)"
                             % path)
    return path


def _volley_env(env):
    e = dict(os.environ)
    e["VOLLEY_CHECK_FDS"] = "1"
    asan = e.get("ASAN_OPTIONS", "")
    e["ASAN_OPTIONS"] = ":".join(filter(None, [asan, "exitcode=%d" % EXIT_SANITIZER,
                                                "detect_leaks=1", "abort_on_error=0"]))
    ubsan = e.get("UBSAN_OPTIONS", "")
    e["UBSAN_OPTIONS"] = ":".join(filter(None, [ubsan, "exitcode=%d" % EXIT_SANITIZER,
                                                 "print_stacktrace=1", "halt_on_error=1"]))
    if env:
        e.update(env)
    return e


def volley_command(args):
    cmd = [volley_bin()] + [str(a) for a in args]
    if under_valgrind():
        cmd = VALGRIND + cmd
    return cmd


class VolleyResult:
    """One finished volley run.  records: the parsed JSON lines of stdout.
    peak_rss_kib: the process's peak RSS (valgrind's own under VOLLEY_VALGRIND)."""

    def __init__(self, args, rc, stdout, stderr, elapsed_s, peak_rss_kib=None):
        self.args, self.rc, self.stdout, self.stderr = args, rc, stdout, stderr
        self.elapsed_s, self.peak_rss_kib = elapsed_s, peak_rss_kib
        self.records = []
        json_mode = "--json" in args
        for line in stdout.splitlines():
            if not line.strip():
                continue
            try:
                self.records.append(json.loads(line))
            except ValueError:
                if json_mode:
                    raise AssertionError("non-JSON line on stdout with --json: %r\n%s"
                                         % (line[:200], self.describe()))

    def describe(self, expected=None, limit=1500):
        """What ran and what came out; expected (if given) leads, for failure messages."""
        head = "expected %s; got:\n" % expected if expected else ""
        return ("%svolley %s\n  exit %s after %.2f s\n  stdout: %s\n  stderr: %s"
                % (head, " ".join(map(str, self.args))[:400], self.rc, self.elapsed_s,
                   self.stdout[:limit], self.stderr[-limit:]))

    def by_index(self, n=None):
        """Records keyed by index; asserts each index appears exactly once
        (and, given n, that the indexes are exactly 0..n-1)."""
        out = {}
        for r in self.records:
            i = r.get("index")
            assert i not in out, "index %r reported twice:\n  %s\n  %s" % (i, out[i], r)
            out[i] = r
        if n is not None:
            missing = sorted(set(range(n)) - set(out))
            extra = sorted(set(out) - set(range(n)))
            assert not missing and not extra, (
                "expected indexes 0..%d exactly once; missing %s, unexpected %s (%d records)"
                % (n - 1, missing[:20], extra[:20], len(self.records)))
        return out

    def one(self):
        assert len(self.records) == 1, "expected one record, got %d\n%s" % (
            len(self.records), self.describe())
        return self.records[0]


def _check_health(res):
    """Failures of volley itself, whatever the test expects."""
    problems = []
    if res.rc == EXIT_FD_LEAK or "volley: fd leak" in res.stderr:
        problems.append("fd leak (exit 3)")
    if res.rc == EXIT_VALGRIND:
        problems.append("valgrind reported errors (exit 99)")
    if res.rc == EXIT_SANITIZER:
        problems.append("sanitizer reported errors (exit 98)")
    if res.rc is not None and res.rc < 0:
        problems.append("killed by signal %d" % -res.rc)
    for marker in SANITIZER_MARKERS[:3]:
        if marker in res.stderr:
            problems.append("sanitizer output: %r" % marker)
    if under_valgrind():
        if re.search(r"==\d+== .*(Invalid|uninitialised|definitely lost)", res.stderr):
            problems.append("valgrind output on stderr")
        leaked = _valgrind_open_fds(res.stderr)
        if leaked:
            problems.append("valgrind: fds %s open at exit" % leaked)
    if problems:
        raise AssertionError("volley is broken: %s\n%s" % ("; ".join(problems),
                                                           res.describe(limit=4000)))


def check_health(args, rc, stderr, stdout=""):
    """The health check run_volley makes, for a test that runs volley itself
    (Popen, script(1)): fd leak, sanitizer or valgrind report, signal.  Run
    it with _volley_env(), which makes a sanitizer exit with status 98."""
    _check_health(VolleyResult(args, rc, stdout, stderr, 0.0))


def _valgrind_open_fds(stderr):
    """fds above 2 that --track-fds lists as open at exit, less inherited ones."""
    fds = []
    lines = stderr.splitlines()
    for i, line in enumerate(lines):
        m = re.search(r"==\d+== Open (?:file descriptor|AF_\w+ socket) (\d+)", line)
        if m and int(m.group(1)) > 2:
            following = lines[i + 1] if i + 1 < len(lines) else ""
            if "<inherited from parent>" not in following:
                fds.append(int(m.group(1)))
    return fds


_OWN_CMDLINE = None


def _vm_hwm_kib(pid):
    """Peak RSS so far of pid, once it has exec'd: a forked child not yet
    exec'd still shows this Python's memory (rusage's ru_maxrss keeps that
    too, which is why it is not used)."""
    global _OWN_CMDLINE
    if _OWN_CMDLINE is None:
        with open("/proc/self/cmdline", "rb") as f:
            _OWN_CMDLINE = f.read()
    try:
        with open("/proc/%d/cmdline" % pid, "rb") as f:
            if f.read() == _OWN_CMDLINE:
                return None
        with open("/proc/%d/status" % pid) as f:
            text = f.read()
    except OSError:
        return None
    m = re.search(r"^VmHWM:\s+(\d+) kB", text, re.M)
    return int(m.group(1)) if m else None


def _timeout_scale():
    return 5.0 if under_valgrind() else 1.0


def _drain(pipe, sink):
    try:
        while True:
            chunk = pipe.read(65536)
            if not chunk:
                break
            sink.append(chunk)
    finally:
        pipe.close()


def _feed(pipe, data):
    try:
        pipe.write(data)
    except BrokenPipeError:
        pass  # volley stopped reading (e.g. a usage error); its exit status tells
    finally:
        try:
            pipe.close()
        except BrokenPipeError:
            pass


def run_volley(args, input=None, timeout=30, env=None, check=True, cwd=None, measure_rss=False):
    """Run build/volley with args (a list).  input: str or bytes for stdin.
    Fails (AssertionError) when it does not finish within timeout seconds, and,
    with check, when it leaked fds, crashed or a sanitizer/valgrind complained.
    The result's peak_rss_kib is the process's VmHWM, sampled every few ms
    while it runs (None if it ended before a sample); measure_rss is kept for
    callers that say they rely on it."""
    args = [str(a) for a in args]
    if isinstance(input, str):
        input = input.encode()
    limit = timeout * _timeout_scale()
    t0 = time.monotonic()
    proc = subprocess.Popen(volley_command(args), env=_volley_env(env), cwd=cwd,
                            stdin=subprocess.PIPE if input is not None else subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out, err = [], []
    threads = [threading.Thread(target=_drain, args=(proc.stdout, out), daemon=True),
               threading.Thread(target=_drain, args=(proc.stderr, err), daemon=True)]
    if input is not None:
        threads.append(threading.Thread(target=_feed, args=(proc.stdin, input), daemon=True))
    for t in threads:
        t.start()
    status = None
    timed_out = False
    peak_kib = None
    try:
        while True:
            pid, status, _ = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            peak_kib = _vm_hwm_kib(proc.pid) or peak_kib
            if time.monotonic() - t0 > limit:
                timed_out = True
                proc.kill()
                _, status, _ = os.wait4(proc.pid, 0)
                break
            time.sleep(0.002)
    finally:
        if status is None:  # interrupted (the runner's timeout): leave nothing behind
            proc.kill()
            os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status) if status is not None else -9
        for t in threads:
            t.join(5)
    elapsed = time.monotonic() - t0
    stdout = b"".join(out).decode("utf-8", "replace")
    stderr = b"".join(err).decode("utf-8", "replace")
    if timed_out:
        raise AssertionError("volley did not finish within %.0f s: volley %s\n  stdout: %s\n"
                             "  stderr: %s" % (limit, " ".join(args)[:300], stdout[-800:],
                                               stderr[-800:]))
    res = VolleyResult(args, proc.returncode, stdout, stderr, elapsed, peak_kib)
    if check:
        _check_health(res)
    return res


def headers_of(req):
    """{lower-case name: [values]} of a request the scripted server logged."""
    out = {}
    for name, value in req["headers"]:
        out.setdefault(name.lower(), []).append(value)
    return out


def check_record(rec, url=None):
    """Assert rec follows the JSON record contract (DESIGN.md) and its extras."""
    for name, types in RECORD_FIELDS.items():
        assert name in rec, "record lacks %r: %s" % (name, rec)
        v = rec[name]
        assert isinstance(v, types) and not (bool not in types and isinstance(v, bool)), (
            "record field %r has type %s: %s" % (name, type(v).__name__, rec))
    assert rec["index"] >= 0 and rec["bytes"] >= 0 and rec["time_ms"] >= 0, rec
    assert rec["redirects"] >= 0, rec
    if url is not None:
        assert rec["url"] == url, "record url %r, expected %r" % (rec["url"], url)
    if rec["ok"]:
        assert rec["error"] is None, "ok record with an error: %s" % rec
        # 100-999: a final 6xx-9xx is passed through, as curl does (README: status codes)
        assert isinstance(rec["status"], int) and 100 <= rec["status"] <= 999, rec
    else:
        assert isinstance(rec["error"], str) and rec["error"], (
            "failed record without error: %s" % rec)
    timings = rec.get("timings")
    assert isinstance(timings, dict), "record lacks timings: %s" % rec
    for name in TIMING_FIELDS:
        # A phase that did not happen is null (JSON for the library's -1) or -1.
        assert name in timings, "timings lacks %s: %s" % (name, rec)
        v = timings[name]
        if v is None:
            continue
        assert isinstance(v, (int, float)) and not isinstance(v, bool), (
            "timings.%s is %r: %s" % (name, v, rec))
        assert v >= 0 or v == -1, "timings.%s is %r (want >= 0, -1 or null): %s" % (name, v, rec)
    assert isinstance(timings["total_ms"], (int, float)), "timings.total_ms missing: %s" % rec
    assert isinstance(rec.get("reused"), bool), "record lacks bool 'reused': %s" % rec
    attempts = rec.get("attempts")
    assert isinstance(attempts, int) and not isinstance(attempts, bool) and attempts >= 0, (
        "record lacks int 'attempts': %s" % rec)
    return rec


def read_file_field(rec, cwd):
    """Bytes of the file a record's "file" names (relative to cwd if relative)."""
    path = rec.get("file")
    assert isinstance(path, str) and path, "record has no 'file': %s" % rec
    if not os.path.isabs(path):
        path = os.path.join(cwd, path)
    assert os.path.isfile(path), "record's file %s does not exist" % path
    with open(path, "rb") as f:
        return f.read()


# ----------------------------------------------------------------- servers

_live = []  # every server started by this process, stopped at exit whatever happens


@atexit.register
def _stop_all():
    for server in list(_live):
        try:
            server.stop()
        except Exception:
            pass


def _stop_pid(proc, sig=signal.SIGTERM, grace_s=5.0, extra_pids=()):
    """Signal proc (a Popen) and wait for it; SIGKILL it (and extra_pids) if it lingers."""
    if proc.poll() is None:
        try:
            proc.send_signal(sig)
        except ProcessLookupError:
            pass
        try:
            proc.wait(timeout=grace_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=grace_s)
    for pid in extra_pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def stop_master(proc, workers):
    """SIGTERM a server's master (it reaps its workers), then SIGKILL any
    worker that outlived it (a master that had to be SIGKILLed leaves them)."""
    _stop_pid(proc, signal.SIGTERM)
    for pid in workers:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def _children(pid):
    try:
        with open("/proc/%d/task/%d/children" % (pid, pid)) as f:
            return [int(x) for x in f.read().split()]
    except OSError:
        return []


def read_to_eof(sock):
    """Everything sock receives until the peer closes."""
    data = b""
    while True:
        chunk = sock.recv(65536)
        if not chunk:
            return data
        data += chunk


class _Server:
    """What both servers share: a context manager that stops by PID in every path."""

    port = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    def _forget(self):
        if self in _live:
            _live.remove(self)

    def url(self, path):
        return self.base + path


def _fresh_dir(tmp, prefix):
    for n in range(1000):
        path = os.path.join(str(tmp), "%s-%d" % (prefix, n))
        try:
            os.makedirs(path)
            return path
        except FileExistsError:
            continue
    raise RuntimeError("no free directory name under %s" % tmp)


class ScriptedServer(_Server):
    """tests/servers/scripted.py in a subprocess.  See that file for the paths."""

    SCRIPT = os.path.join(SERVERS_DIR, "scripted.py")
    extra_args = []

    def __init__(self, tmp):
        self.dir = _fresh_dir(tmp, "scripted")
        self.request_log = os.path.join(self.dir, "requests.jsonl")
        self.stderr_path = os.path.join(self.dir, "stderr.log")
        self.proc = None
        self.port = None

    def start(self, timeout_s=10.0):
        with open(self.stderr_path, "ab") as err:
            self.proc = subprocess.Popen(
                [sys.executable, self.SCRIPT, "--port", "0", "--request-log", self.request_log]
                + self.extra_args,
                stdout=subprocess.PIPE, stderr=err, stdin=subprocess.DEVNULL)
        _live.append(self)
        sel = selectors.DefaultSelector()
        sel.register(self.proc.stdout, selectors.EVENT_READ)
        deadline = time.monotonic() + timeout_s
        line = b""
        try:
            while not line.endswith(b"\n"):
                left = deadline - time.monotonic()
                if left <= 0 or self.proc.poll() is not None:
                    raise AssertionError("scripted server did not report its port: %s"
                                         % self.log_tail())
                if sel.select(left):
                    chunk = os.read(self.proc.stdout.fileno(), 64)
                    if not chunk:
                        continue
                    line += chunk
        finally:
            sel.close()
        # The port is printed after listen(), so it accepts now; no probe
        # connection, which would throw off connections().
        self.port = int(line.split(b"\n")[0])
        return self

    def stop(self):
        if self.proc is not None:
            _stop_pid(self.proc)
            self.proc.stdout.close()
            self.proc = None
        self._forget()

    @property
    def base(self):
        return "http://127.0.0.1:%d" % self.port

    def requests(self):
        """The requests the server has read, as dicts (see scripted.py)."""
        if not os.path.exists(self.request_log):
            return []
        with open(self.request_log) as f:
            return [json.loads(line) for line in f if line.strip()]

    def connections(self):
        """How many TCP connections the server accepted so far (one more, for asking)."""
        with socket.create_connection(("127.0.0.1", self.port), timeout=5) as s:
            s.sendall(b"GET /count HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            data = read_to_eof(s)
        return int(data.split(b"\r\n\r\n", 1)[1]) - 1

    def log_tail(self, n=2000):
        try:
            with open(self.stderr_path, "rb") as f:
                return f.read()[-n:].decode("utf-8", "replace")
        except OSError:
            return ""


class H2Hostile(ScriptedServer):
    """tests/servers/h2_hostile.py (h2c by prior knowledge) in a subprocess, in
    one of its modes (see that file); requests() are its per-stream lines."""

    SCRIPT = os.path.join(SERVERS_DIR, "h2_hostile.py")

    def __init__(self, tmp, mode="ok"):
        ScriptedServer.__init__(self, tmp)
        self.extra_args = ["--mode", mode]

    def connections(self):
        return len({r["conn"] for r in self.requests()})


class Nghttpd(_Server):
    """nghttp2's own server (nghttp2-server), h2 only: over TLS with
    ssl=(certfile, keyfile) (ALPN h2), else h2c by prior knowledge.  Serves
    Nginx.FILES (without 10m.bin unless big_files) from its own root."""

    def __init__(self, tmp, ssl=None, big_files=False):
        self.dir = _fresh_dir(tmp, "nghttpd")
        self.root = os.path.join(self.dir, "root")
        self.ssl, self.big_files = ssl, big_files
        self.proc = None
        self.port = None

    def start(self, timeout_s=10.0):
        os.makedirs(self.root, exist_ok=True)
        for name in Nginx.FILES:
            if name != "10m.bin" or self.big_files:
                with open(os.path.join(self.root, name), "wb") as f:
                    f.write(Nginx.content(name))
        self.port = free_port()
        cmd = ["nghttpd", "-d", self.root, "-a", "127.0.0.1", str(self.port)]
        cmd += [self.ssl[1], self.ssl[0]] if self.ssl else ["--no-tls"]  # key, then cert
        with open(os.path.join(self.dir, "stderr.log"), "ab") as err:
            self.proc = subprocess.Popen(cmd, stdout=err, stderr=err, stdin=subprocess.DEVNULL)
        _live.append(self)
        wait_until(lambda: self.proc.poll() is not None or port_accepts(self.port), timeout_s,
                   "nghttpd on port %d" % self.port)
        if self.proc.poll() is not None:
            raise AssertionError("nghttpd exited: %s" % self.log_tail())
        return self

    def stop(self):
        if self.proc is not None:
            _stop_pid(self.proc)
            self.proc = None
        self._forget()

    @property
    def base(self):
        return "%s://127.0.0.1:%d" % ("https" if self.ssl else "http", self.port)

    def log_tail(self, n=2000):
        try:
            with open(os.path.join(self.dir, "stderr.log"), "rb") as f:
                return f.read()[-n:].decode("utf-8", "replace")
        except OSError:
            return ""


def _pattern(size):
    block = bytes(range(256))
    return (block * (size // 256 + 1))[:size]


def _text(size):
    line = b"volley test text, compressible and boring: the quick brown fox. 0123456789\n"
    return (line * (size // len(line) + 1))[:size]


class Nginx(_Server):
    """A real nginx on a free port, config and files generated under tmp.

    Static files in its root (name -> bytes): see FILES; content(name) gives
    the bytes.  locations: extra text put inside the server block (location
    blocks).  Access log lines carry "$connection $connection_requests $status
    $body_bytes_sent "$request" $ssl_session_reused" (see access_log()).
    ssl=(certfile, keyfile) makes it listen with TLS.  http2=True adds nginx's
    http2 to the listen line: h2 by ALPN with ssl, h2c (prior knowledge) without."""

    FILES = {"empty.bin": 0, "1k.bin": 1024, "100k.bin": 100 * 1024,
             "10m.bin": 10 * 1024 * 1024, "text.txt": 64 * 1024, "index.html": 512}
    LOG_RE = re.compile(r'^(\d+) (\d+) (\d+) (\d+) "(.*)" (\S*)$')

    def __init__(self, tmp, locations="", keepalive_requests=100000, keepalive_timeout_s=60,
                 ssl=None, extra_http="", big_files=True, http2=False):
        self.dir = _fresh_dir(tmp, "nginx")
        self.http2 = http2
        self.root = os.path.join(self.dir, "root")
        self.conf_path = os.path.join(self.dir, "nginx.conf")
        self.access_log_path = os.path.join(self.dir, "access.log")
        self.error_log_path = os.path.join(self.dir, "error.log")
        self.pid_path = os.path.join(self.dir, "nginx.pid")
        self.locations, self.ssl, self.extra_http = locations, ssl, extra_http
        self.keepalive_requests, self.keepalive_timeout_s = keepalive_requests, keepalive_timeout_s
        self.big_files = big_files
        self.proc = None
        self.port = None
        self._workers = []

    @classmethod
    def content(cls, name):
        size = cls.FILES[name]
        if name == "text.txt":
            return _text(size)
        if name == "index.html":
            return (b"<!doctype html><title>volley</title>\n" + _text(size))[:size]
        return _pattern(size)

    def _write_files(self):
        os.makedirs(self.root, exist_ok=True)
        for name in self.FILES:
            if name == "10m.bin" and not self.big_files:
                continue
            with open(os.path.join(self.root, name), "wb") as f:
                f.write(self.content(name))
        for sub in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"):
            os.makedirs(os.path.join(self.dir, "tmp", sub), exist_ok=True)

    def _config(self):
        d = self.dir
        listen = "127.0.0.1:%d" % self.port
        ssl_lines = ""
        if self.ssl:
            listen += " ssl"
        if self.http2:
            listen += " http2"
        if self.ssl:
            ssl_lines = ("ssl_certificate %s;\n        ssl_certificate_key %s;\n"
                         "        ssl_session_cache shared:volley:1m;\n" % self.ssl)
        user = "user root;\n" if os.geteuid() == 0 else ""
        return """# generated by tests/lib/harness.py
{user}worker_processes 1;
worker_rlimit_nofile 8192;
daemon off;
master_process on;
pid {d}/nginx.pid;
error_log {d}/error.log info;
events {{ worker_connections 4096; }}
http {{
    types {{ text/html html; text/plain txt; application/octet-stream bin; }}
    default_type application/octet-stream;
    client_body_temp_path {d}/tmp/client_body;
    proxy_temp_path {d}/tmp/proxy;
    fastcgi_temp_path {d}/tmp/fastcgi;
    uwsgi_temp_path {d}/tmp/uwsgi;
    scgi_temp_path {d}/tmp/scgi;
    log_format volley '$connection $connection_requests $status $body_bytes_sent '
                      '"$request" $ssl_session_reused';
    access_log {d}/access.log volley;
    keepalive_requests {kr};
    keepalive_timeout {kt}s;
    sendfile on;
    gzip on;
    gzip_min_length 64;
    gzip_types text/plain application/json;
    {extra_http}
    server {{
        listen {listen};
        server_name localhost;
        root {root};
        {ssl_lines}
        location / {{ }}
        {locations}
    }}
}}
""".format(user=user, d=d, kr=self.keepalive_requests, kt=self.keepalive_timeout_s,
           extra_http=self.extra_http, listen=listen, root=self.root, ssl_lines=ssl_lines,
           locations=self.locations)

    def start(self, timeout_s=10.0):
        self._write_files()
        for attempt in range(3):
            self.port = free_port()
            with open(self.conf_path, "w") as f:
                f.write(self._config())
            with open(os.path.join(self.dir, "stderr.log"), "ab") as err:
                self.proc = subprocess.Popen(
                    [NGINX, "-p", self.dir, "-c", self.conf_path, "-e", self.error_log_path],
                    stdout=err, stderr=err, stdin=subprocess.DEVNULL)
            _live.append(self)
            deadline = time.monotonic() + timeout_s
            while time.monotonic() < deadline and self.proc.poll() is None:
                if port_accepts(self.port):
                    self._workers = wait_until(lambda: _children(self.proc.pid), timeout_s,
                                               "nginx worker")
                    return self
                time.sleep(0.02)
            log = self.log_tail()
            self.stop()
            if "Address already in use" not in log:
                break
        raise AssertionError("nginx did not start on port %s:\n%s" % (self.port, log))

    def stop(self):
        if self.proc is not None:
            stop_master(self.proc, self._workers or _children(self.proc.pid))
            self.proc = None
        self._forget()

    @property
    def base(self):
        return "%s://127.0.0.1:%d" % ("https" if self.ssl else "http", self.port)

    def log_tail(self, n=3000):
        out = ""
        for p in (self.error_log_path, os.path.join(self.dir, "stderr.log")):
            try:
                with open(p, "rb") as f:
                    out += f.read()[-n:].decode("utf-8", "replace")
            except OSError:
                pass
        return out

    def access_log(self):
        """Parsed access log lines: dicts with connection, connection_requests,
        status, bytes, request, method, path, ssl_reused."""
        entries = []
        try:
            with open(self.access_log_path) as f:
                lines = f.read().splitlines()
        except FileNotFoundError:
            return entries
        for line in lines:
            m = self.LOG_RE.match(line)
            assert m, "unparsable access log line: %r" % line
            request = m.group(5)
            parts = request.split(" ")
            entries.append({"connection": int(m.group(1)), "connection_requests": int(m.group(2)),
                            "status": int(m.group(3)), "bytes": int(m.group(4)),
                            "request": request, "method": parts[0],
                            "path": parts[1] if len(parts) > 1 else "",
                            "ssl_reused": m.group(6)})
        return entries

    def wait_log(self, n, timeout_s=5.0):
        """The access log once it holds at least n entries (nginx logs after it
        sends the response, so the client can finish first)."""
        return wait_until(lambda: (lambda e: e if len(e) >= n else None)(self.access_log()),
                          timeout_s, "%d access log entries" % n)

    def connections(self, entries=None):
        """Distinct TCP connections in the access log."""
        if entries is None:
            entries = self.access_log()
        return len({e["connection"] for e in entries})
