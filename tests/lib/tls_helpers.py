#!/usr/bin/env python3
"""tls_helpers.py: what volley's TLS tests need beyond harness.py.

A small TLS server of our own (Python's ssl module, one thread per connection)
for what nginx will not do, usable as a script (the C unit test spawns it) or
through TlsServer (integration tests):

    python3 tests/lib/tls_helpers.py --mode MODE [--cert F --key F] [--port 0]

Binds 127.0.0.1, prints the port as the first line on stdout, serves until
SIGTERM.  Modes (the misbehaving ones need no certificate):

  www             TLS; per connection: reads one HTTP request head, answers
                  200 with WWW_BODY and Connection: close, sends close_notify,
                  closes.  ALPN http/1.1 offered.  Sessions and tickets on.
  www-no-notify   the same, but closes the TCP connection without close_notify.
  sha             TLS; reads "LEN\\n" then LEN bytes, answers the SHA-256 hex of
                  those bytes and "\\n", then waits for the client to close.  The
                  server reads slowly (SHA_READ_DELAY_S per 64 KiB) so a client's
                  writes fill the socket and hit EAGAIN.
  reset-handshake reads the ClientHello, then resets (SO_LINGER 0): no TLS at all.
  eof-handshake   reads the ClientHello, then closes (FIN) without a byte.
  truncated-handshake  reads the ClientHello, then sends a handshake record
                  header promising 1000 bytes, 100 of them, and closes (FIN).
  truncated-body  TLS handshake, reads the request, answers a response whose
                  last TLS record is cut short by 10 bytes, then closes (FIN).
  tls13-only      TLS 1.3 or nothing: a TLS 1.2 client gets a protocol_version alert.
  plain-http      no TLS: reads what comes and answers an HTTP 400, then closes.

Also certs_in(tmp): certs.make_certs() under tmp/certs, once per process.
"""
import argparse
import hashlib
import os
import selectors
import signal
import socket
import ssl
import struct
import subprocess
import sys
import threading
import time

WWW_BODY = b"hello over tls\n"
SHA_READ_DELAY_S = 0.002
IO_TIMEOUT_S = 20


# ----------------------------------------------------------------- the server

def _read_head(sock):
    data = b""
    while b"\r\n\r\n" not in data and len(data) < 65536:
        chunk = sock.recv(4096)
        if not chunk:
            break
        data += chunk
    return data


def _reset(sock):
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


def _www_response():
    return (b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\nConnection: close\r\n"
            b"Content-Type: text/plain\r\n\r\n" % len(WWW_BODY)) + WWW_BODY


def serve_www(ctx, raw, notify):
    with ctx.wrap_socket(raw, server_side=True) as s:
        _read_head(s)
        s.sendall(_www_response())
        if notify:
            try:
                s.unwrap()  # sends close_notify; waits for the peer's (or EOF)
            except (ssl.SSLError, OSError):
                pass
        else:
            # close the TCP connection under the TLS layer: no close_notify
            raw_fd = s.detach()
            socket.socket(fileno=raw_fd).close()


def serve_sha(ctx, raw):
    with ctx.wrap_socket(raw, server_side=True) as s:
        line = b""
        while not line.endswith(b"\n"):
            chunk = s.recv(1)
            if not chunk:
                return
            line += chunk
        left = int(line)
        h = hashlib.sha256()
        while left > 0:
            chunk = s.recv(min(left, 65536))
            if not chunk:
                return
            h.update(chunk)
            left -= len(chunk)
            time.sleep(SHA_READ_DELAY_S)
        s.sendall(h.hexdigest().encode() + b"\n")
        try:
            while s.recv(4096):
                pass
        except (ssl.SSLError, OSError):
            pass


def serve_truncated_body(ctx, raw):
    """TLS by hand (SSLObject over memory BIOs) so the last record can be cut."""
    inc, out = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = ctx.wrap_bio(inc, out, server_side=True)

    def pump_out():
        data = out.read()
        if data:
            raw.sendall(data)

    def feed():
        data = raw.recv(65536)
        if not data:
            raise ConnectionError("client went away")
        inc.write(data)

    while True:
        try:
            obj.do_handshake()
            break
        except ssl.SSLWantReadError:
            pump_out()
            feed()
    pump_out()
    head = b""
    while b"\r\n\r\n" not in head:
        try:
            head += obj.read(65536)
        except ssl.SSLWantReadError:
            feed()
    body = b"x" * 3000
    obj.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(body))
    raw.sendall(out.read())
    obj.write(body)
    record = out.read()
    raw.sendall(record[:-10])  # the body's record, 10 bytes short
    raw.shutdown(socket.SHUT_WR)
    time.sleep(0.2)
    raw.close()


def serve_raw(mode, raw):
    raw.recv(65536)  # the ClientHello (or most of it)
    if mode == "plain-http":
        raw.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n"
                    b"Connection: close\r\n\r\n")
    if mode == "reset-handshake":
        _reset(raw)
        return
    if mode == "truncated-handshake":
        # type 22 handshake, TLS 1.2, length 1000; then 100 bytes of it
        raw.sendall(b"\x16\x03\x03\x03\xe8" + b"\x02" + b"\x00" * 99)
    raw.shutdown(socket.SHUT_WR)
    time.sleep(0.2)
    raw.close()


def handle(mode, ctx, raw):
    raw.settimeout(IO_TIMEOUT_S)
    try:
        if mode in ("www", "www-no-notify", "tls13-only"):
            serve_www(ctx, raw, mode != "www-no-notify")
        elif mode == "sha":
            serve_sha(ctx, raw)
        elif mode == "truncated-body":
            serve_truncated_body(ctx, raw)
        else:
            serve_raw(mode, raw)
    except (ssl.SSLError, OSError, ValueError, ConnectionError) as e:
        sys.stderr.write("tls_helpers: %s: %s\n" % (mode, e))
    finally:
        try:
            raw.close()
        except OSError:
            pass


RAW_MODES = ("reset-handshake", "eof-handshake", "truncated-handshake", "plain-http")
MODES = ("www", "www-no-notify", "sha", "truncated-body", "tls13-only") + RAW_MODES


def server_main(argv):
    ap = argparse.ArgumentParser(description="volley's TLS test server")
    ap.add_argument("--mode", choices=MODES, required=True)
    ap.add_argument("--cert")
    ap.add_argument("--key")
    ap.add_argument("--port", type=int, default=0)
    args = ap.parse_args(argv)
    ctx = None
    if args.mode not in RAW_MODES:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(args.cert, args.key)
        ctx.set_alpn_protocols(["http/1.1"])
        if args.mode == "tls13-only":
            ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    signal.signal(signal.SIGTERM, lambda *a: os._exit(0))
    ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if args.mode == "sha":  # a small window (no autotuning): the client must wait
        ls.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 32768)
    ls.bind(("127.0.0.1", args.port))
    ls.listen(128)
    sys.stdout.write("%d\n" % ls.getsockname()[1])
    sys.stdout.flush()
    while True:
        raw, _ = ls.accept()
        threading.Thread(target=handle, args=(args.mode, ctx, raw), daemon=True).start()


# ------------------------------------------------------- for integration tests

class TlsServer:
    """This file as a server subprocess; stopped by PID (context manager)."""

    def __init__(self, tmp, mode, cert=None, key=None):
        self.tmp, self.mode, self.cert, self.key = str(tmp), mode, cert, key
        self.proc = None
        self.port = None
        self.stderr_path = os.path.join(self.tmp, "tls-server-%s.log" % mode)

    def start(self, timeout_s=10.0):
        cmd = [sys.executable, os.path.abspath(__file__), "--mode", self.mode]
        if self.cert:
            cmd += ["--cert", self.cert, "--key", self.key]
        with open(self.stderr_path, "ab") as err:
            self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=err,
                                         stdin=subprocess.DEVNULL)
        sel = selectors.DefaultSelector()
        sel.register(self.proc.stdout, selectors.EVENT_READ)
        deadline, line = time.monotonic() + timeout_s, b""
        try:
            while not line.endswith(b"\n"):
                left = deadline - time.monotonic()
                if left <= 0 or self.proc.poll() is not None:
                    self.stop()
                    raise AssertionError("TLS test server (%s) did not report its port: %s"
                                         % (self.mode, self.log_tail()))
                if sel.select(left):
                    chunk = os.read(self.proc.stdout.fileno(), 64)
                    if chunk:
                        line += chunk
        finally:
            sel.close()
        self.port = int(line.split(b"\n")[0])
        return self

    def stop(self):
        if self.proc is not None:
            if self.proc.poll() is None:
                self.proc.terminate()
                try:
                    self.proc.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait(timeout=5)
            self.proc.stdout.close()
            self.proc = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    def url(self, path="/", host="localhost"):
        return "https://%s:%d%s" % (host, self.port, path)

    def log_tail(self, n=2000):
        try:
            with open(self.stderr_path, "rb") as f:
                return f.read()[-n:].decode("utf-8", "replace")
        except OSError:
            return ""


_certs = {}


def certs_in(tmp):
    """make_certs() under tmp/certs, once per process and directory."""
    from certs import make_certs
    d = os.path.join(str(tmp), "certs")
    if d not in _certs:
        _certs[d] = make_certs(d)
    return _certs[d]


if __name__ == "__main__":
    server_main(sys.argv[1:])
