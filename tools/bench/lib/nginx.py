"""nginx.py: one nginx (plain + TLS listener) on free loopback ports, started as
our own child (daemon off) and stopped by its PID.

Locations:
  /f/<name>        static files from the docroot (sendfile; 1k.bin, big files)
  /delay?s=SECS    echo module: waits SECS without blocking the worker, then
                   answers "ok\\n" (chunked)
  /status          stub_status (plain port only): accepted and active connections

reuseport gives each worker its own accept queue: the kernel caps a backlog
at net.core.somaxconn (4096 here), and a client that opens 10,000 connections
in one burst would otherwise overflow one queue and wait out SYN retries.

The TLS server logs one short line per request ($connection, whether the TLS
session was resumed, the protocol), so the report can say how many connections
and full handshakes each client made.  The plain server logs nothing.
"""
import os
import signal
import socket
import subprocess
import time
import urllib.request

ECHO_MODULE = "/usr/lib/nginx/modules/ngx_http_echo_module.so"
DELAY_BODY = b"ok\n"

CONF = """\
{load_module}
worker_processes {workers};
worker_rlimit_nofile {nofile};
pid {prefix}/nginx.pid;
error_log {prefix}/error.log warn;
daemon off;
master_process on;
{user}
events {{
    worker_connections {conns};
    multi_accept on;
}}
http {{
    access_log off;
    default_type application/octet-stream;
    sendfile on;
    tcp_nopush on;
    tcp_nodelay on;
    keepalive_requests 100000000;
    keepalive_timeout 300s;
    reset_timedout_connection on;
    open_file_cache max=1000 inactive=60s;
    client_body_temp_path {prefix}/tmp_body;
    proxy_temp_path {prefix}/tmp_proxy;
    fastcgi_temp_path {prefix}/tmp_fastcgi;
    uwsgi_temp_path {prefix}/tmp_uwsgi;
    scgi_temp_path {prefix}/tmp_scgi;
    ssl_certificate {cert};
    ssl_certificate_key {key};
    ssl_protocols {protocols};
    ssl_session_cache shared:BENCH:32m;
    ssl_session_timeout 1h;
    ssl_session_tickets on;
    log_format bench '$connection $ssl_session_reused $ssl_protocol';
    server {{
        listen 127.0.0.1:{http_port} backlog=16384 reuseport;
        server_name _;
        root {docroot};
        location /f/ {{ alias {docroot}/; }}
        location = /delay {{ echo_sleep $arg_s; echo "ok"; }}
        location = /status {{ stub_status; }}
    }}
    server {{
        listen 127.0.0.1:{https_port} ssl{http2} backlog=16384 reuseport;
        server_name _;
        root {docroot};
        access_log {prefix}/tls.log bench;
        location /f/ {{ alias {docroot}/; }}
        location = /delay {{ echo_sleep $arg_s; echo "ok"; }}
    }}
}}
"""


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _nofile(want):
    """What a worker may ask for: no more than our own hard limit."""
    import resource
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    if hard == resource.RLIM_INFINITY:
        return max(1024, want)
    return max(1024, min(want, hard))


def _children(pid):
    try:
        with open("/proc/%d/task/%d/children" % (pid, pid)) as f:
            return [int(x) for x in f.read().split()]
    except (OSError, ValueError):
        return []


class Nginx:
    def __init__(self, prefix, docroot, certs, workers=1, conns=4096, tls_protocols="TLSv1.2 TLSv1.3",
                 http2=False):
        self.prefix, self.docroot, self.certs = prefix, docroot, certs
        self.http2 = http2  # the TLS listener also speaks h2 (ALPN)
        self.workers, self.conns, self.protocols = workers, conns, tls_protocols
        self.proc = None
        self.http_port = self.https_port = None

    def start(self, timeout=10.0):
        os.makedirs(self.prefix, exist_ok=True)
        for p in (self.prefix, self.docroot):
            os.chmod(p, 0o755)
        for attempt in range(5):
            self.http_port, self.https_port = free_port(), free_port()
            if self.http_port == self.https_port:
                continue
            conf = os.path.join(self.prefix, "nginx.conf")
            with open(conf, "w") as f:
                f.write(CONF.format(
                    load_module=("load_module %s;" % ECHO_MODULE) if os.path.exists(ECHO_MODULE) else "",
                    workers=self.workers, nofile=_nofile(2 * self.conns + 64),
                    conns=self.conns, prefix=self.prefix,
                    user="user root;" if os.geteuid() == 0 else "",
                    cert=self.certs["cert"], key=self.certs["key"], protocols=self.protocols,
                    http_port=self.http_port, https_port=self.https_port, docroot=self.docroot,
                    http2=" http2" if self.http2 else ""))
            log = open(os.path.join(self.prefix, "stderr.log"), "ab")
            self.proc = subprocess.Popen(["nginx", "-c", conf, "-p", self.prefix],
                                         stdin=subprocess.DEVNULL, stdout=log, stderr=log)
            log.close()
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                if self.proc.poll() is not None:
                    break
                if self._listening():
                    return self
                time.sleep(0.05)
            self.stop()
        raise RuntimeError("nginx did not start; see %s/error.log" % self.prefix)

    def _listening(self):
        for port in (self.http_port, self.https_port):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            except OSError:
                return False
        return True

    def active_connections(self):
        """Server-side count of open client connections (stub_status)."""
        try:
            with urllib.request.urlopen("http://127.0.0.1:%d/status" % self.http_port, timeout=2) as r:
                first = r.read().decode().splitlines()[0]
            return int(first.split(":")[1]) - 1  # minus the status request itself
        except (OSError, ValueError, IndexError):
            return None

    def _status(self):
        with urllib.request.urlopen("http://127.0.0.1:%d/status" % self.http_port, timeout=2) as r:
            return r.read().decode().splitlines()

    def snapshot(self):
        """Counters before a client run: (accepted connections, TLS log offset)."""
        try:
            accepts = int(self._status()[2].split()[0])
        except (OSError, ValueError, IndexError):
            accepts = None
        try:
            off = os.path.getsize(os.path.join(self.prefix, "tls.log"))
        except OSError:
            off = 0
        return accepts, off

    def since(self, snap):
        """What the server saw since snapshot(): {"conns", "tls_conns", "resumed", "protocols"}."""
        accepts0, off = snap
        out = {}
        try:
            out["conns"] = int(self._status()[2].split()[0]) - accepts0 - 1  # minus this probe
        except (OSError, ValueError, IndexError, TypeError):
            pass
        conns = {}
        try:
            with open(os.path.join(self.prefix, "tls.log"), "rb") as f:
                f.seek(off)
                for line in f:
                    parts = line.split()
                    if len(parts) == 3 and parts[0] not in conns:
                        conns[parts[0]] = (parts[1] == b"r", parts[2].decode())
        except OSError:
            pass
        if conns:
            out["tls_conns"] = len(conns)
            out["resumed"] = sum(1 for r, _ in conns.values() if r)
            out["protocols"] = sorted({p for _, p in conns.values()})
        return out

    def stop(self):
        p, self.proc = self.proc, None
        if p is None or p.poll() is not None:
            return
        workers = _children(p.pid)
        try:
            os.kill(p.pid, signal.SIGTERM)   # fast shutdown; workers follow the master
            p.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.kill(p.pid, signal.SIGKILL)
            p.wait(timeout=10)
        except ProcessLookupError:
            pass
        for pid in workers:   # only if the master died without taking them along
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
