"""interop.py: real servers from Debian for volley's interop tests, and what
those tests share.

Each server starts on a free 127.0.0.1 port with a config generated into the
test's temp dir, serves ROOT (files made by make_files()), and is stopped by
PID in every path (use them as context managers, like harness.Nginx):

    Apache(tmp, ...)     /usr/sbin/apache2 -f CONF -DFOREGROUND, mpm_event, mod_deflate,
                         mod_alias Redirect and mod_rewrite chains under /r/
    Lighttpd(tmp, ...)   lighttpd -D -f CONF, mod_deflate
    H2O(tmp, ...)        h2o -c CONF, HTTP/1.1 over cleartext, compress: ON
    Node(tmp, ...)       node tests/interop/node_server.js (node's http module; see there)
    PyHttp10(tmp)        python3 tests/interop/http10_server.py: http.server, HTTP/1.0

Files: make_files(root) writes files/<size>.bin for every size in SIZES (bytes
that never repeat: a chain of sha256 blocks) and text/words.txt (compressible
text from a seeded PRNG, no repeating period); file_sha256() and
sha256_of() compare.  run_volley_fed() runs one volley process whose stdin gets
batches of URLs with a pause between them (the keep-alive race).
"""
import hashlib
import json
import os
import random
import re
import signal
import subprocess
import sys
import threading
import time

import harness
from harness import _Server, _fresh_dir, _live, _stop_pid, _children, free_port, port_accepts

HERE = os.path.dirname(os.path.abspath(__file__))
APACHE = "/usr/sbin/apache2"
APACHE_MODULES = "/usr/lib/apache2/modules"
LIGHTTPD = "/usr/sbin/lighttpd"
LIGHTTPD_MODULES = "/usr/lib/lighttpd"
H2O_BIN = "/usr/bin/h2o"
NODE = "/usr/bin/node"
PYTHON = "/usr/bin/python3"

MIB = 1024 * 1024
SMALL_SIZES = [0, 1, 2, 100, 1023, 1024, 1025, 4095, 4096, 4097, 16383, 16384, 16385,
               65535, 65536, 65537]
BIG_SIZES = [MIB - 1, MIB, MIB + 1, 10 * MIB]
SIZES = SMALL_SIZES + BIG_SIZES
TEXT_NAME = "text/words.txt"
TEXT_BYTES = 256 * 1024


def sizes(big=True):
    """The sizes a test fetches: under valgrind 10 MiB is left out (memcheck
    makes every byte ~30x dearer) and only 1 MiB - 1 .. 1 MiB + 1 remain."""
    if not big:
        return list(SMALL_SIZES)
    if harness.under_valgrind():
        return SMALL_SIZES + [MIB - 1, MIB, MIB + 1]
    return list(SIZES)


def file_name(size):
    return "files/%d.bin" % size


def chained_bytes(size, seed=b"volley-interop"):
    """size bytes with no repeating period: block i is sha256(seed, i)."""
    out = bytearray()
    i = 0
    while len(out) < size:
        out += hashlib.sha256(seed + i.to_bytes(8, "big")).digest()
        i += 1
    return bytes(out[:size])


def words_text(size, seed=11):
    """Compressible English-ish text that never repeats (seeded PRNG)."""
    rng = random.Random(seed)
    vocab = ("volley fetch many urls at once on one thread reactor epoll kqueue timer heap "
             "keep alive connection pool request response header body chunked gzip deflate "
             "brotli redirect location status record index final url sha256 interop").split()
    out, n = [], 0
    while n < size:
        line = " ".join(rng.choice(vocab) for _ in range(rng.randint(6, 14))) + ".\n"
        out.append(line)
        n += len(line)
    return "".join(out).encode()[:size]


def make_files(root, big=True):
    """Writes the test files under root; returns {relative name: bytes' sha256}."""
    digests = {}
    os.makedirs(os.path.join(root, "files"), exist_ok=True)
    os.makedirs(os.path.join(root, "text"), exist_ok=True)
    biggest = chained_bytes(max(sizes(big)))
    for size in sizes(big):
        data = biggest[:size]
        with open(os.path.join(root, file_name(size)), "wb") as f:
            f.write(data)
        digests[file_name(size)] = hashlib.sha256(data).hexdigest()
    text = words_text(TEXT_BYTES)
    with open(os.path.join(root, TEXT_NAME), "wb") as f:
        f.write(text)
    digests[TEXT_NAME] = hashlib.sha256(text).hexdigest()
    with open(os.path.join(root, "index.html"), "wb") as f:
        f.write(b"<!doctype html><title>volley interop</title>\n")
    return digests


def sha256_of(data):
    return hashlib.sha256(data).hexdigest()


def file_sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def open_up(path):
    """Servers that drop root (Apache, h2o) read the files as www-data or
    nobody: make path and every directory above it under /tmp traversable."""
    p = os.path.abspath(path)
    while p not in ("/", "/tmp", ""):
        try:
            os.chmod(p, os.stat(p).st_mode | 0o755)
        except OSError:
            break
        p = os.path.dirname(p)


def chmod_tree(root):
    for d, dirs, files in os.walk(root):
        os.chmod(d, 0o755)
        for name in files:
            os.chmod(os.path.join(d, name), 0o644)


# ------------------------------------------------------------------ servers

class Daemon(_Server):
    """A real server in a subprocess (foreground mode) on a free port.
    Subclasses give NAME, command() and config(); the config goes to
    self.conf_path.  Retries on another port when the chosen one was taken."""

    NAME = "server"
    CONF = "server.conf"
    LOG_BUFFERED = False

    def __init__(self, tmp, big=True):
        self.dir = _fresh_dir(tmp, self.NAME)
        self.root = os.path.join(self.dir, "root")
        self.conf_path = os.path.join(self.dir, self.CONF)
        self.stderr_path = os.path.join(self.dir, "stderr.log")
        self.error_log_path = os.path.join(self.dir, "error.log")
        self.access_log_path = os.path.join(self.dir, "access.log")
        self.big = big
        self.digests = {}
        self.proc = None
        self.port = None
        self._kids = []

    def command(self):
        raise NotImplementedError

    def config(self):
        return None

    def prepare(self):
        self.digests = make_files(self.root, self.big)
        if os.geteuid() == 0:
            chmod_tree(self.dir)
            open_up(self.dir)

    def ready(self):
        return port_accepts(self.port)

    def start(self, timeout_s=15.0):
        self.prepare()
        log = ""
        for attempt in range(3):
            self.port = free_port()
            text = self.config()
            if text is not None:
                with open(self.conf_path, "w") as f:
                    f.write(text)
            with open(self.stderr_path, "ab") as err:
                self.proc = subprocess.Popen(self.command(), stdout=err, stderr=err,
                                             stdin=subprocess.DEVNULL, cwd=self.dir)
            _live.append(self)
            deadline = time.monotonic() + timeout_s
            while time.monotonic() < deadline and self.proc.poll() is None:
                if self.ready():
                    self._kids = _children(self.proc.pid)
                    return self
                time.sleep(0.02)
            log = self.log_tail()
            self.stop()
            if "in use" not in log:
                break
        raise AssertionError("%s did not start on port %s:\n%s" % (self.NAME, self.port, log))

    def stop(self):
        if self.proc is not None:
            harness.stop_master(self.proc, set(self._kids) | set(_children(self.proc.pid)))
            self.proc = None
        self._forget()

    @property
    def base(self):
        return "http://127.0.0.1:%d" % self.port

    def log_tail(self, n=3000):
        out = ""
        for p in (self.error_log_path, self.stderr_path):
            try:
                with open(p, "rb") as f:
                    out += "--- %s\n" % p + f.read()[-n:].decode("utf-8", "replace")
            except OSError:
                pass
        return out

    def access_lines(self):
        try:
            with open(self.access_log_path) as f:
                return f.read().splitlines()
        except FileNotFoundError:
            return []

    LOG_RE = re.compile(r'^(\S+) (\S+) (\d+) (\S+) "(.*)" (\S*)$')

    def access_log(self):
        """Parsed access log lines (Apache, lighttpd, h2o): dicts with port (the
        client's: one per connection), keepalive (Apache's %k, else None),
        status, request, path and encoding (the response's Content-Encoding,
        None when it had none)."""
        entries = []
        for line in self.access_lines():
            m = self.LOG_RE.match(line)
            assert m, "%s: unparsable access log line %r" % (self.NAME, line)
            parts = m.group(5).split(" ")
            entries.append({"port": m.group(1),
                            "keepalive": None if m.group(2) == "-" else int(m.group(2)),
                            "status": int(m.group(3)), "request": m.group(5),
                            "path": parts[1] if len(parts) > 1 else "",
                            "encoding": None if m.group(6) in ("", "-") else m.group(6)})
        return entries

    def wait_access(self, n, timeout_s=10.0):
        """The access log once it holds n lines (servers log after sending)."""
        return harness.wait_until(lambda: (lambda l: l if len(l) >= n else None)(
            self.access_lines()), timeout_s, "%d access log lines from %s" % (n, self.NAME))


class Apache(Daemon):
    """Apache httpd 2.4, mpm_event, Debian's modules; Apache's own defaults for
    keep-alive (MaxKeepAliveRequests 100, KeepAliveTimeout 5) unless told.
    Access log: see Daemon.access_log() (keepalive = %k, the requests before
    this one on its connection).  Redirect chain under /r/:
      /r/1 --301 (mod_alias Redirect)--> /r/2 --302 (mod_rewrite R=302)-->
      /r/3 --307 (Redirect)--> /r/4 --308 (RewriteRule R=308)--> /files/1024.bin
    /text/ is compressed by mod_deflate (text/plain)."""

    NAME = "apache"
    CONF = "httpd.conf"
    MODULES = ("mpm_event", "authz_core", "authz_host", "mime", "dir", "alias", "rewrite",
               "deflate", "filter", "headers")

    def __init__(self, tmp, keepalive_timeout_s=5, max_keepalive_requests=100, big=True):
        Daemon.__init__(self, tmp, big)
        self.keepalive_timeout_s = keepalive_timeout_s
        self.max_keepalive_requests = max_keepalive_requests

    def command(self):
        return [APACHE, "-d", self.dir, "-f", self.conf_path, "-DFOREGROUND"]

    def config(self):
        loads = "\n".join("LoadModule %s_module %s/mod_%s.so" % (m, APACHE_MODULES, m)
                          for m in self.MODULES)
        user = "User www-data\nGroup www-data\n" if os.geteuid() == 0 else ""
        return """# generated by tests/interop/interop.py
ServerRoot {d}
{loads}
{user}DefaultRuntimeDir {d}
PidFile {d}/httpd.pid
Mutex file:{d} default
ServerName 127.0.0.1
Listen 127.0.0.1:{port}
ErrorLog {d}/error.log
LogLevel warn
LogFormat "%{{remote}}p %k %>s %B \\"%r\\" %{{Content-Encoding}}o" volley
CustomLog {d}/access.log volley
StartServers 1
ServerLimit 4
ThreadsPerChild 25
MaxRequestWorkers 100
MinSpareThreads 5
MaxSpareThreads 100
KeepAlive On
MaxKeepAliveRequests {mkr}
KeepAliveTimeout {kt}
TypesConfig /etc/mime.types
AddType text/plain .txt
DocumentRoot {root}
<Directory />
    AllowOverride None
    Require all granted
</Directory>
AddOutputFilterByType DEFLATE text/plain
DeflateCompressionLevel 6
Redirect 301 /r/1 /r/2
Redirect 307 /r/3 /r/4
RewriteEngine On
RewriteRule ^/r/2$ /r/3 [R=302,L]
RewriteRule ^/r/4$ /files/1024.bin [R=308,L]
""".format(d=self.dir, loads=loads, user=user, port=self.port, mkr=self.max_keepalive_requests,
           kt=self.keepalive_timeout_s, root=self.root)



class Lighttpd(Daemon):
    """lighttpd 1.4 in the foreground; mod_deflate compresses text/plain with
    gzip, deflate (and br, zstd when asked).  max_keepalive_requests None
    keeps lighttpd's default (server.max-keep-alive-requests = 1000)."""

    NAME = "lighttpd"
    CONF = "lighttpd.conf"
    # mod_accesslog buffers and flushes every few seconds: waiting for the log
    # costs up to 4 s, so tests that can prove their point otherwise do.
    LOG_BUFFERED = True

    def __init__(self, tmp, keepalive_idle_s=None, max_keepalive_requests=None, big=True):
        Daemon.__init__(self, tmp, big)
        self.keepalive_idle_s = keepalive_idle_s
        self.max_keepalive_requests = max_keepalive_requests

    def command(self):
        return [LIGHTTPD, "-D", "-f", self.conf_path, "-m", LIGHTTPD_MODULES]

    def config(self):
        extra = []
        if self.keepalive_idle_s is not None:
            extra.append("server.max-keep-alive-idle = %d" % self.keepalive_idle_s)
        if self.max_keepalive_requests is not None:
            extra.append("server.max-keep-alive-requests = %d" % self.max_keepalive_requests)
        return """# generated by tests/interop/interop.py
server.modules = ("mod_deflate", "mod_accesslog")
server.document-root = "{root}"
server.bind = "127.0.0.1"
server.port = {port}
server.errorlog = "{d}/error.log"
server.pid-file = "{d}/lighttpd.pid"
accesslog.filename = "{d}/access.log"
accesslog.format = "%{{remote}}p - %s %b \\"%r\\" %{{Content-Encoding}}o"
index-file.names = ("index.html")
mimetype.assign = (".txt" => "text/plain", ".bin" => "application/octet-stream",
                   ".html" => "text/html")
deflate.mimetypes = ("text/plain")
deflate.allowed-encodings = ("br", "gzip", "deflate")
{extra}
""".format(root=self.root, port=self.port, d=self.dir, extra="\n".join(extra))


class H2O(Daemon):
    """h2o 2.2 serving ROOT over cleartext HTTP/1.1 with compress: ON (gzip,
    and br when the client asks for it)."""

    NAME = "h2o"
    CONF = "h2o.conf"

    def __init__(self, tmp, idle_timeout_s=None, big=True):
        Daemon.__init__(self, tmp, big)
        self.idle_timeout_s = idle_timeout_s

    def command(self):
        return [H2O_BIN, "-c", self.conf_path]

    def config(self):
        user = "user: nobody\n" if os.geteuid() == 0 else ""
        idle = ("http1-request-timeout: %d\n" % self.idle_timeout_s
                if self.idle_timeout_s is not None else "")
        return """# generated by tests/interop/interop.py
{user}num-threads: 1
error-log: {d}/error.log
{idle}listen:
  host: 127.0.0.1
  port: {port}
hosts:
  default:
    access-log:
      path: {d}/access.log
      format: "%{{remote}}p - %s %b \\"%r\\" %{{content-encoding}}o"
    paths:
      /:
        file.dir: {root}
        compress: ON
""".format(user=user, d=self.dir, idle=idle, port=self.port, root=self.root)


class Node(Daemon):
    """tests/interop/node_server.js on node's http module: see that file for
    its paths (files, chunked files, gzip/deflate/br, redirect chain, echo).
    keepalive_timeout_ms None keeps node's default (5000 ms);
    max_requests_per_socket None keeps node's default (0 = no limit)."""

    NAME = "node"
    SCRIPT = os.path.join(HERE, "node_server.js")

    def __init__(self, tmp, keepalive_timeout_ms=None, max_requests_per_socket=None, big=True):
        Daemon.__init__(self, tmp, big)
        self.keepalive_timeout_ms = keepalive_timeout_ms
        self.max_requests_per_socket = max_requests_per_socket
        self.request_log = os.path.join(self.dir, "requests.jsonl")

    def command(self):
        cmd = [NODE, self.SCRIPT, "--port", str(self.port), "--root", self.root,
               "--log", self.request_log]
        if self.keepalive_timeout_ms is not None:
            cmd += ["--keep-alive-timeout-ms", str(self.keepalive_timeout_ms)]
        if self.max_requests_per_socket is not None:
            cmd += ["--max-requests-per-socket", str(self.max_requests_per_socket)]
        return cmd

    def access_log(self):
        """requests() in Daemon.access_log()'s shape (port = node's socket number)."""
        return [{"port": r["socket"], "keepalive": None, "status": r["status"],
                 "request": "%s %s" % (r["method"], r["url"]), "path": r["url"],
                 "encoding": r["encoding"]} for r in self.requests()]

    def access_lines(self):
        return self.requests()

    def requests(self):
        try:
            with open(self.request_log) as f:
                return [json.loads(l) for l in f if l.strip()]
        except FileNotFoundError:
            return []


class PyHttp10(Daemon):
    """Python's http.server (tests/interop/http10_server.py), HTTP/1.0: one
    request per connection; files with Content-Length under /, and the same
    files close-delimited (no Content-Length) under /noclen/."""

    NAME = "pyhttp10"
    SCRIPT = os.path.join(HERE, "http10_server.py")

    def command(self):
        return [PYTHON, self.SCRIPT, "--port", str(self.port), "--root", self.root]


# ------------------------------------------------------- fetching and checking

def fetch_files(tmp, server, names, extra_args=(), timeout=120):
    """One volley run fetching server.url("/" + name) for each name with
    -o DIR: (records by index, the run's result)."""
    out_dir = _fresh_dir(tmp, "out-%s" % server.NAME)
    urls = [server.url("/" + n) for n in names]
    res = harness.run_volley(["--json", "-o", out_dir] + list(extra_args) + urls,
                             timeout=timeout)
    return res.by_index(len(urls)), res


def assert_bodies_intact(server, names, recs, res, cwd, source=None):
    """Each record ok, 200, and its saved file's sha256 equal to the source
    file's: source(name) is its key in server.digests (default: name)."""
    bad = []
    for i, name in enumerate(names):
        r = recs[i]
        harness.check_record(r)
        if not r["ok"] or r["status"] != 200:
            bad.append("%s: ok=%s status=%s error=%s" % (name, r["ok"], r["status"], r["error"]))
            continue
        want = server.digests[source(name) if source else name]
        path = r.get("file")
        if not path:
            bad.append("%s: record has no file: %s" % (name, r))
            continue
        if not os.path.isabs(path):
            path = os.path.join(cwd, path)
        got = file_sha256(path) if os.path.exists(path) else "(no file %s)" % path
        if got != want:
            bad.append("%s: sha256 %s, want %s (record bytes %d, file %d bytes)"
                       % (name, got[:16], want[:16], r["bytes"],
                          os.path.getsize(path) if os.path.exists(path) else -1))
    assert not bad, "%s: %d of %d bodies not intact:\n  %s\n%s" % (
        server.NAME, len(bad), len(names), "\n  ".join(bad), res.describe(limit=800))


def raw_get(port, path, headers=None, timeout_s=10):
    """One GET with Python's http.client: (status, headers dict lowercased, raw body)."""
    import http.client
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout_s)
    try:
        c.request("GET", path, headers=headers or {})
        r = c.getresponse()
        body = r.read()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, body
    finally:
        c.close()


# ------------------------------------------------------------ the fed run

def client_established(server_port):
    """How many ESTABLISHED TCP connections from a client to 127.0.0.1:server_port
    (the client side: remote port = server_port) /proc/net/tcp lists."""
    n = 0
    with open("/proc/net/tcp") as f:
        next(f)
        for line in f:
            fields = line.split()
            rem, state = fields[2], fields[3]
            if state == "01" and int(rem.split(":")[1], 16) == server_port:
                n += 1
    return n


def run_volley_fed(args, batches, between, timeout=60):
    """One volley process (args + "-i -"), stdin fed batch by batch: batch k+1
    is written once every record of batches 0..k has come out and
    between(k) (a callable that waits, e.g. for the server to drop the idle
    connections) has returned.  Returns harness.VolleyResult."""
    args = [str(a) for a in args] + ["-i", "-"]
    limit = timeout * harness._timeout_scale()
    t0 = time.monotonic()
    proc = subprocess.Popen(harness.volley_command(args), env=harness._volley_env(None),
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    lines, err = [], []
    got = threading.Condition()

    def read_stdout():
        for line in proc.stdout:
            with got:
                lines.append(line)
                got.notify_all()
        proc.stdout.close()

    threads = [threading.Thread(target=read_stdout, daemon=True),
               threading.Thread(target=harness._drain, args=(proc.stderr, err), daemon=True)]
    for t in threads:
        t.start()
    try:
        sent = 0
        for k, batch in enumerate(batches):
            proc.stdin.write("".join(u + "\n" for u in batch).encode())
            proc.stdin.flush()
            sent += len(batch)
            with got:
                ok = got.wait_for(lambda: len(lines) >= sent or proc.poll() is not None,
                                  max(0.1, limit - (time.monotonic() - t0)))
            assert ok and len(lines) >= sent, (
                "batch %d: %d of %d records came within %.0f s" % (k, len(lines), sent, limit))
            if k + 1 < len(batches):
                between(k)
        proc.stdin.close()
        proc.wait(timeout=max(1, limit - (time.monotonic() - t0)))
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        for t in threads:
            t.join(5)
    stdout = b"".join(lines).decode("utf-8", "replace")
    stderr = b"".join(err).decode("utf-8", "replace")
    res = harness.VolleyResult(args, proc.returncode, stdout, stderr, time.monotonic() - t0)
    harness._check_health(res)
    return res
