#!/usr/bin/env python3
"""scripted.py: a small, deliberately misbehaving HTTP/1.1 server for volley's tests.

    python3 tests/servers/scripted.py --port 0 [--request-log FILE]

Binds 127.0.0.1, prints the port it got as the first line on stdout, then serves
until SIGTERM/SIGINT.  One thread per connection; connections are kept alive
unless the path says otherwise.  With --request-log every request is appended to
FILE as one JSON object (conn, seq, method, target, version, headers, body as
latin-1 text, dropped), so tests can check exactly what the client sent.  Every response
carries `X-Conn: N` (the 1-based number of the TCP connection it went out on).

Behaviour is chosen by the request path:

  /ok                 200, Content-Length, body OK_BODY; keep-alive.  ?size=N: N bytes of 'x'.
  /chunked            200, chunked, chunk extensions and two trailers; decoded body
                      CHUNKED_BODY.  ?ext=multi: a chunk with ";a=1;b=2" instead.
  /close              200 with neither Content-Length nor Transfer-Encoding: the body
                      (CLOSE_BODY) is delimited by closing the connection.
  /head-like          GET: 200 with HEAD_LIKE_LEN bytes.  HEAD: the same headers
                      (Content-Length: HEAD_LIKE_LEN) and no body, connection kept.
  /204                204 No Content, no body; keep-alive.
  /304                304 Not Modified with ETag and a Content-Length: 500 that
                      describes the representation (RFC 9110 §8.6); no body follows.
  /100                "100 Continue", then 200 with OK_BODY.
  /103                "103 Early Hints" with a Link header, then 200 with OK_BODY.
  /reset              reads the request, then resets the connection (SO_LINGER 0).
  /reset-mid-body     headers (Content-Length 100000) and 5000 body bytes, then reset.
  /stall              reads the request and never answers (until the client goes).
  /stall-body         headers (Content-Length 2000) and 1000 body bytes, then stalls.
  /malformed          a garbage status line, then close.
  /truncated-cl       Content-Length: 1000, sends 100 bytes, then closes (FIN).
  /truncated-chunked  chunked, ends in the middle of a chunk, then closes.
  /te-and-cl          both Transfer-Encoding: chunked and Content-Length: 3; the chunked
                      body decodes to TE_CL_BODY; the connection closes after it.
  /huge-headers?kb=N  200 with N KiB of extra header lines (X-Filler-i, 1024 bytes each).
  /slow?ms=N          waits N ms (default 1000), then 200 with OK_BODY.
  /stale              200 with OK_BODY, keep-alive advertised; the server then reads the
                      NEXT request on that connection, logs it with "dropped": true and
                      closes without a byte of answer: the stale keep-alive race made
                      deterministic.  A client should retry that request once on a new
                      connection.
  /stale-idle         200 with OK_BODY, keep-alive advertised, then closes right away.
  /count              plain-text number of TCP connections accepted so far (this one
                      included).
  /echo, /echo/...    200; the body is the request exactly as received (request line,
                      header lines, blank line, body), so a test can see what was sent.
  /redirect?to=PATH&code=N   N (default 302) with Location: PATH.
  /raw?r=B64&piece=N&keep=1  sends the bytes base64url-decoded from r exactly as
                      given (any status line, line ends, framing), N bytes per
                      send() with 5 ms between (default: all at once), then closes
                      (FIN) unless keep=1.  For quirks nothing else sends.
  /flaky?key=K&fail=N the first N requests with key K: 503 with Retry-After: 0 and the
                      body FLAKY_FAIL_BODY; later ones: 200 with FLAKY_OK_BODY.
                      With &cut=1 the failing ones are instead a 200 announcing all of
                      FLAKY_OK_BODY, cut after half of it by a reset.
  anything else       404 with a short body.
"""
import argparse
import json
import os
import signal
import socket
import struct
import sys
import threading
import time
from urllib.parse import parse_qs, urlsplit

OK_BODY = b"hello from scripted\n"
# (data, chunk extension) pairs; RFC 9112 §7.1.1 chunk-ext = *( ";" name [ "=" value ] ),
# value = token / quoted-string.
CHUNKS = [(b"hello", b";name=value"), (b", chunked", b';q="quoted; value"'),
          (b" world\n" * 40, b";flag;other")]
# /chunked?ext=multi: several extensions on one chunk, the first with a token value.
CHUNKS_MULTI = [(b"hello", b""), (b", chunked", b";a=1;b=2"), (b" world\n" * 40, b"")]
CHUNKED_BODY = b"".join(data for data, _ in CHUNKS)
CLOSE_BODY = bytes(range(256)) * 8  # 2048 bytes
HEAD_LIKE_LEN = 1234
TE_CL_BODY = b"chunked wins\n"
MAX_HEAD = 1 << 20
FLAKY_FAIL_BODY = b"busy: try again\n" * 8
FLAKY_OK_BODY = b"the real answer\n"
_flaky = {}

_lock = threading.Lock()
_accepted = 0
_seq = 0
_log_file = None


class Request:
    def __init__(self, method, target, version, headers, body, raw):
        self.method, self.target, self.version = method, target, version
        self.headers, self.body, self.raw = headers, body, raw
        split = urlsplit(target)
        self.path = split.path
        self.query = {k: v[0] for k, v in parse_qs(split.query).items()}

    def header(self, name):
        for k, v in self.headers:
            if k.lower() == name.lower():
                return v
        return None


class Conn:
    """One accepted connection: buffered reading of requests, raw writes."""

    def __init__(self, sock, number):
        self.sock, self.number, self.buf = sock, number, b""

    def _fill(self):
        data = self.sock.recv(65536)
        if not data:
            return False
        self.buf += data
        return True

    def read_head(self):
        while b"\r\n\r\n" not in self.buf:
            if len(self.buf) > MAX_HEAD or not self._fill():
                return None
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        return head + b"\r\n\r\n"

    def read_exact(self, n):
        while len(self.buf) < n:
            if not self._fill():
                raise ConnectionError("client closed inside the request body")
        data, self.buf = self.buf[:n], self.buf[n:]
        return data

    def read_line(self):
        while b"\r\n" not in self.buf:
            if not self._fill():
                raise ConnectionError("client closed inside a chunked body")
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def read_chunked(self):
        body, raw = b"", b""
        while True:
            line = self.read_line()
            raw += line + b"\r\n"
            size = int(line.split(b";")[0].strip(), 16)
            if size == 0:
                while True:  # trailers up to the empty line
                    t = self.read_line()
                    raw += t + b"\r\n"
                    if not t:
                        return body, raw
            data = self.read_exact(size + 2)
            body += data[:size]
            raw += data

    def read_request(self, expect_hook=None):
        head = self.read_head()
        if head is None:
            return None
        lines = head[:-4].decode("latin-1").split("\r\n")
        parts = lines[0].split(" ")
        if len(parts) != 3:
            raise ConnectionError("bad request line %r" % lines[0])
        headers = []
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers.append((name.strip(), value.strip()))
        req = Request(parts[0], parts[1], parts[2], headers, b"", head)
        if expect_hook:
            expect_hook(req)
        te = (req.header("Transfer-Encoding") or "").lower()
        if "chunked" in te:
            req.body, raw_body = self.read_chunked()
        else:
            req.body = raw_body = self.read_exact(int(req.header("Content-Length") or 0))
        req.raw = head + raw_body
        return req

    def send(self, data):
        self.sock.sendall(data)

    def reset(self):
        """Close with RST instead of FIN."""
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.sock.close()

    def stall(self):
        """Hold the connection, reading and discarding, until the client closes it."""
        try:
            while self.sock.recv(65536):
                pass
        except OSError:
            pass


def response(status, reason, headers=(), body=b"", length=True, conn=None):
    lines = ["HTTP/1.1 %d %s" % (status, reason)]
    if conn is not None:
        lines.append("X-Conn: %d" % conn.number)
    lines.extend(headers)
    if length:
        lines.append("Content-Length: %d" % len(body))
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def log_request(conn, req, dropped=False):
    global _seq
    with _lock:
        _seq += 1
        seq = _seq
        if _log_file is not None:
            rec = {"conn": conn.number, "seq": seq, "method": req.method, "target": req.target,
                   "version": req.version, "headers": req.headers,
                   "body": req.body.decode("latin-1"), "dropped": dropped,
                   "t": time.time()}
            _log_file.write(json.dumps(rec) + "\n")
            _log_file.flush()


# Each handler sends its answer and returns True to keep the connection for
# another request, False to close it (FIN) afterwards, or None when it has
# already closed or reset the socket itself.

def h_ok(c, req):
    body = b"x" * int(req.query["size"]) if "size" in req.query else OK_BODY
    c.send(response(200, "OK", ["Content-Type: text/plain"], body, conn=c))
    return True


def h_chunked(c, req):
    out = response(200, "OK", ["Content-Type: text/plain", "Transfer-Encoding: chunked"],
                   length=False, conn=c)
    chunks = CHUNKS_MULTI if req.query.get("ext") == "multi" else CHUNKS
    for i, (data, ext) in enumerate(chunks):
        size = b"%x" % len(data)
        if i == 2:
            size = size.upper()  # hex digits are case-insensitive
        out += size + ext + b"\r\n" + data + b"\r\n"
    out += b"0\r\nX-Trailer: done\r\nX-Checksum: 42\r\n\r\n"
    c.send(out)
    return True


def h_close(c, req):
    c.send(response(200, "OK", ["Content-Type: application/octet-stream", "Connection: close"],
                    CLOSE_BODY, length=False, conn=c))
    return False


def h_head_like(c, req):
    head = response(200, "OK", ["Content-Type: application/octet-stream",
                                "Content-Length: %d" % HEAD_LIKE_LEN], length=False, conn=c)
    c.send(head if req.method == "HEAD" else head + b"h" * HEAD_LIKE_LEN)
    return True


def h_204(c, req):
    c.send(response(204, "No Content", length=False, conn=c))
    return True


def h_304(c, req):
    c.send(response(304, "Not Modified", ['ETag: "v1"', "Content-Length: 500"], length=False,
                    conn=c))
    return True


def h_100(c, req):
    # The interim response went out before the body was read (see expect_hook).
    c.send(response(200, "OK", ["Content-Type: text/plain"], OK_BODY, conn=c))
    return True


def h_103(c, req):
    c.send(b"HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload; as=style\r\n\r\n")
    c.send(response(200, "OK", ["Content-Type: text/plain"], OK_BODY, conn=c))
    return True


def h_reset(c, req):
    c.reset()
    return None


def h_reset_mid_body(c, req):
    c.send(response(200, "OK", ["Content-Length: 100000"], length=False, conn=c) + b"r" * 5000)
    time.sleep(0.05)  # let the bytes leave before the RST discards the send queue
    c.reset()
    return None


def h_stall(c, req):
    c.stall()
    return False


def h_stall_body(c, req):
    c.send(response(200, "OK", ["Content-Length: 2000"], length=False, conn=c) + b"s" * 1000)
    c.stall()
    return False


def h_malformed(c, req):
    c.send(b"SPDY/9 2OO what is this\r\nthis: is not\r\n\r\nhttp")
    return False


def h_truncated_cl(c, req):
    c.send(response(200, "OK", ["Content-Length: 1000"], length=False, conn=c) + b"t" * 100)
    return False


def h_truncated_chunked(c, req):
    c.send(response(200, "OK", ["Transfer-Encoding: chunked"], length=False, conn=c)
           + b"10\r\n0123456789abcdef\r\n100\r\nonly part of the chunk")
    return False


def h_te_and_cl(c, req):
    body = b"%x\r\n%s\r\n0\r\n\r\n" % (len(TE_CL_BODY), TE_CL_BODY)
    c.send(response(200, "OK", ["Transfer-Encoding: chunked", "Content-Length: 3"],
                    length=False, conn=c) + body)
    return False


def h_huge_headers(c, req):
    kb = int(req.query.get("kb", "100"))
    # Each line is exactly 1024 bytes with its CRLF: "X-Filler-0001: fff...".
    filler = ["X-Filler-%04d: %s" % (i, "f" * 1007) for i in range(kb)]
    c.send(response(200, "OK", filler, OK_BODY, conn=c))
    return True


def h_slow(c, req):
    time.sleep(int(req.query.get("ms", "1000")) / 1000.0)
    c.send(response(200, "OK", ["Content-Type: text/plain"], OK_BODY, conn=c))
    return True


def h_stale(c, req):
    c.send(response(200, "OK", ["Content-Type: text/plain", "Keep-Alive: timeout=60"],
                    OK_BODY, conn=c))
    # The next request arrives on a connection we are about to drop: log it
    # (with "dropped": true) and close without answering.
    try:
        nxt = c.read_request()
    except (OSError, ValueError):
        nxt = None
    if nxt is not None:
        log_request(c, nxt, dropped=True)
    return False


def h_stale_idle(c, req):
    c.send(response(200, "OK", ["Content-Type: text/plain", "Keep-Alive: timeout=60"],
                    OK_BODY, conn=c))
    return False


def h_count(c, req):
    with _lock:
        n = _accepted
    c.send(response(200, "OK", ["Content-Type: text/plain"], b"%d\n" % n, conn=c))
    return True


def h_echo(c, req):
    c.send(response(200, "OK", ["Content-Type: application/octet-stream"], req.raw, conn=c))
    return True


def h_redirect(c, req):
    code = int(req.query.get("code", "302"))
    c.send(response(code, "Redirect", ["Location: %s" % req.query.get("to", "/ok")],
                    b"moved\n", conn=c))
    return True


def h_raw(c, req):
    import base64
    data = base64.urlsafe_b64decode(req.query["r"] + "=" * (-len(req.query["r"]) % 4))
    piece = int(req.query.get("piece", "0")) or len(data) or 1
    c.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    for i in range(0, len(data), piece):
        c.send(data[i:i + piece])
        if piece < len(data):
            time.sleep(0.005)
    return req.query.get("keep") == "1"


def h_flaky(c, req):
    key = req.query.get("key", "")
    with _lock:
        seen = _flaky[key] = _flaky.get(key, 0) + 1
    if seen <= int(req.query.get("fail", "1")) and req.query.get("cut"):
        whole = response(200, "OK", ["Content-Type: text/plain"], FLAKY_OK_BODY, conn=c)
        c.send(whole[:len(whole) - len(FLAKY_OK_BODY) // 2])
        time.sleep(0.05)
        c.reset()
        return None
    if seen <= int(req.query.get("fail", "1")):
        c.send(response(503, "Service Unavailable", ["Content-Type: text/plain", "Retry-After: 0"],
                        FLAKY_FAIL_BODY, conn=c))
    else:
        c.send(response(200, "OK", ["Content-Type: text/plain"], FLAKY_OK_BODY, conn=c))
    return True


def h_not_found(c, req):
    c.send(response(404, "Not Found", ["Content-Type: text/plain"], b"no such path\n", conn=c))
    return True


ROUTES = {
    "/ok": h_ok, "/chunked": h_chunked, "/close": h_close, "/head-like": h_head_like,
    "/204": h_204, "/304": h_304, "/100": h_100, "/103": h_103, "/reset": h_reset,
    "/reset-mid-body": h_reset_mid_body, "/stall": h_stall, "/stall-body": h_stall_body,
    "/malformed": h_malformed, "/truncated-cl": h_truncated_cl,
    "/truncated-chunked": h_truncated_chunked, "/te-and-cl": h_te_and_cl,
    "/huge-headers": h_huge_headers, "/slow": h_slow, "/stale": h_stale,
    "/stale-idle": h_stale_idle, "/count": h_count, "/echo": h_echo,
    "/redirect": h_redirect, "/raw": h_raw, "/flaky": h_flaky,
}


def serve_connection(sock, number):
    c = Conn(sock, number)

    def expect_hook(req):
        # /100 answers "100 Continue" as soon as the head is in, body or not.
        if req.path == "/100":
            c.send(b"HTTP/1.1 100 Continue\r\n\r\n")

    try:
        while True:
            req = c.read_request(expect_hook)
            if req is None:
                break
            log_request(c, req)
            handler = ROUTES.get(req.path)
            if handler is None:
                handler = h_echo if req.path.startswith("/echo/") else h_not_found
            keep = handler(c, req)
            if keep is None:
                return
            if not keep or (req.header("Connection") or "").lower() == "close":
                break
    except (OSError, ValueError) as e:
        print("scripted: conn %d: %s" % (number, e), file=sys.stderr)
    try:
        sock.shutdown(socket.SHUT_WR)
    except OSError:
        pass
    sock.close()


def listen_and_serve(description, serve_connection, state):
    """The command line and accept loop of both test servers (this one and
    semantics.py): --port (0 = a free one, printed on the first line of
    stdout), --request-log FILE, SIGTERM exits, a thread per connection.
    state is the server's module: its _log_file, _lock and _accepted."""
    ap = argparse.ArgumentParser(description=description)
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--request-log", help="append one JSON line per request to this file")
    args = ap.parse_args()
    if args.request_log:
        state._log_file = open(args.request_log, "a")
    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))

    lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    lsock.bind(("127.0.0.1", args.port))
    lsock.listen(512)
    print(lsock.getsockname()[1], flush=True)
    try:
        while True:
            sock, _ = lsock.accept()
            with state._lock:
                state._accepted += 1
                number = state._accepted
            threading.Thread(target=serve_connection, args=(sock, number), daemon=True).start()
    except KeyboardInterrupt:
        pass


def main():
    listen_and_serve("volley's scripted test server", serve_connection, sys.modules[__name__])


if __name__ == "__main__":
    main()
