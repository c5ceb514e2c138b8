#!/usr/bin/env python3
"""semantics.py: an HTTP/1.1 server for volley's "HTTP semantics" tests
(tests/integration/test_semantics.py): redirects of every kind, encoded
bodies, flaky endpoints for retries, big request bodies.

    python3 tests/servers/semantics.py --port 0 [--request-log FILE]

Same command line and conventions as scripted.py (so the harness's
ScriptedServer class can drive it): binds 127.0.0.1, prints its port as the
first line on stdout, serves until SIGTERM, one thread per connection,
keep-alive.  With --request-log every request is appended to FILE as one JSON
object: conn, seq, method, target, version, headers ([name, value] pairs),
body_len, body_sha256 and body (latin-1 text of at most BODY_LOG_MAX bytes).
Request bodies (Content-Length or chunked) are read in pieces and hashed as
they arrive, never held whole.  Every response carries X-Conn: N.

Behaviour by path (a route matches on the LAST path segment, so
/a/b/redirect and /redirect are the same route; relative Locations resolve
against the former):

  .../echo            200 application/json: {"method", "target", "headers",
                      "body_len", "body_sha256", "body"} of the request.
  .../redirect?code=N&to=LOC     N (default 302) with Location: LOC exactly as
                      given (relative, absolute, scheme-relative, ftp://...).
  .../loop            302 to itself.
  .../chain?n=K&code=N&ms=D      waits D ms, then N (default 302) to
                      chain?n=K-1 (same code and ms); n=0 answers 200 CHAIN_END.
  /enc/KIND?size=N&split=B       payload(N) (default PAYLOAD_SIZE) encoded as
                      KIND: gzip, deflate (zlib-wrapped), rawdeflate (deflate
                      without the zlib wrapper, labelled "deflate"), identity,
                      gzip-corrupt (bytes in the middle of the stream flipped),
                      gzip-truncated (the first 60% of the stream, framed
                      correctly by Content-Length).  Sent whatever the request's
                      Accept-Encoding says.  split=B: the first B body bytes
                      go out alone, then 50 ms later the rest.
  /bomb?mib=N         gzip of N MiB (default BOMB_SIZE, 1 GiB) of zero bytes, ~1 KB
                      on the wire per MiB, built once per size and streamed.
  /flaky?key=K&fails=N&status=S&retry_after=V    the first N requests with key
                      K get status S (default 503; with Retry-After: V if given),
                      later ones 200 FLAKY_OK.
  /stall              reads the request and never answers.
  /count              number of TCP connections accepted (this one included).
  anything else       404.
"""
import hashlib
import json
import random
import socket
import struct
import sys
import threading
import time
import zlib
from urllib.parse import parse_qs, urlsplit

PAYLOAD_SIZE = 300000
BODY_LOG_MAX = 4096
BOMB_SIZE = 1 << 30
CHAIN_END = b"end of chain\n"
FLAKY_OK = b"finally\n"
MAX_HEAD = 1 << 20

_lock = threading.Lock()
_accepted = 0
_seq = 0
_log_file = None
_flaky = {}
_bombs = {}


def payload(size=PAYLOAD_SIZE):
    """Deterministic test content: compressible text and incompressible bytes,
    interleaved, so that encoded streams have both stored-like and
    Huffman-heavy stretches."""
    rnd = random.Random(size)
    out = bytearray()
    n = 0
    while len(out) < size:
        out += b"line %06d: the quick brown fox jumps over the lazy dog\n" % n
        out += rnd.randbytes(97)
        n += 1
    return bytes(out[:size])


def encode(kind, data):
    """The body /enc/KIND sends for data; (body, Content-Encoding or None)."""
    if kind == "identity":
        return data, None
    if kind == "gzip":
        c = zlib.compressobj(6, zlib.DEFLATED, 16 + 15)
        return c.compress(data) + c.flush(), "gzip"
    if kind == "deflate":
        return zlib.compress(data, 6), "deflate"
    if kind == "rawdeflate":
        c = zlib.compressobj(6, zlib.DEFLATED, -15)
        return c.compress(data) + c.flush(), "deflate"
    if kind == "gzip-corrupt":
        body, enc = encode("gzip", data)
        mid = len(body) // 2
        bad = bytes(b ^ 0x5A for b in body[mid:mid + 64])
        return body[:mid] + bad + body[mid + 64:], enc
    if kind == "gzip-truncated":
        body, enc = encode("gzip", data)
        return body[:len(body) * 6 // 10], enc
    raise KeyError(kind)


def bomb_stream(mibs=BOMB_SIZE >> 20):
    """gzip of mibs MiB of zero bytes as one deflate stream, without spending
    seconds compressing a GiB: after a full flush the compressor forgets its
    history, so each MiB of zeros compresses to the same bytes; repeat them."""
    with _lock:
        if mibs not in _bombs:
            mib = bytes(1 << 20)
            c = zlib.compressobj(9, zlib.DEFLATED, -15)
            block = c.compress(mib) + c.flush(zlib.Z_FULL_FLUSH)
            final = zlib.compressobj(9, zlib.DEFLATED, -15).flush()  # empty last block
            crc = 0
            for _ in range(mibs):
                crc = zlib.crc32(mib, crc)
            header = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x02\xff"
            trailer = struct.pack("<II", crc & 0xFFFFFFFF, (mibs << 20) & 0xFFFFFFFF)
            _bombs[mibs] = header + block * mibs + final + trailer
        return _bombs[mibs]


class Request:
    def __init__(self, method, target, version, headers):
        self.method, self.target, self.version, self.headers = method, target, version, headers
        split = urlsplit(target)
        self.path = split.path
        self.leaf = self.path.rsplit("/", 1)[-1]
        self.query = {k: v[0] for k, v in parse_qs(split.query).items()}
        self.body_len = 0
        self.body_head = b""
        self.sha = hashlib.sha256()

    def header(self, name):
        for k, v in self.headers:
            if k.lower() == name.lower():
                return v
        return None

    def take(self, data):
        self.body_len += len(data)
        self.sha.update(data)
        if len(self.body_head) < BODY_LOG_MAX:
            self.body_head += data[:BODY_LOG_MAX - len(self.body_head)]

    def as_dict(self):
        return {"method": self.method, "target": self.target, "version": self.version,
                "headers": self.headers, "body_len": self.body_len,
                "body_sha256": self.sha.hexdigest(), "body": self.body_head.decode("latin-1")}


class Conn:
    def __init__(self, sock, number):
        self.sock, self.number, self.buf = sock, number, b""

    def _fill(self):
        data = self.sock.recv(262144)
        if not data:
            return False
        self.buf += data
        return True

    def _line(self):
        while b"\r\n" not in self.buf:
            if not self._fill():
                raise ConnectionError("client closed inside a chunked body")
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def _stream(self, req, n):
        """Feed n body bytes to req without keeping them."""
        while n > 0:
            if not self.buf and not self._fill():
                raise ConnectionError("client closed inside the request body")
            piece, self.buf = self.buf[:n], self.buf[n:]
            req.take(piece)
            n -= len(piece)

    def read_request(self):
        while b"\r\n\r\n" not in self.buf:
            if len(self.buf) > MAX_HEAD or not self._fill():
                return None
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        lines = head.decode("latin-1").split("\r\n")
        parts = lines[0].split(" ")
        if len(parts) != 3:
            raise ConnectionError("bad request line %r" % lines[0])
        headers = []
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers.append([name.strip(), value.strip()])
        req = Request(parts[0], parts[1], parts[2], headers)
        if "chunked" in (req.header("Transfer-Encoding") or "").lower():
            while True:
                size = int(self._line().split(b";")[0].strip(), 16)
                if size == 0:
                    while self._line():
                        pass
                    break
                self._stream(req, size)
                self._line()
        else:
            self._stream(req, int(req.header("Content-Length") or 0))
        return req

    def send(self, data):
        self.sock.sendall(data)


def head(status, reason, headers=(), length=None, conn=None):
    lines = ["HTTP/1.1 %d %s" % (status, reason)]
    if conn is not None:
        lines.append("X-Conn: %d" % conn.number)
    lines.extend(headers)
    if length is not None:
        lines.append("Content-Length: %d" % length)
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def respond(c, status, reason, body=b"", headers=()):
    c.send(head(status, reason, headers, len(body), c) + body)


def log_request(c, req):
    global _seq
    with _lock:
        _seq += 1
        if _log_file is not None:
            rec = dict(req.as_dict(), conn=c.number, seq=_seq, t=time.time())
            _log_file.write(json.dumps(rec) + "\n")
            _log_file.flush()


def h_echo(c, req):
    body = json.dumps(req.as_dict()).encode()
    respond(c, 200, "OK", body, ["Content-Type: application/json"])
    return True


def h_redirect(c, req):
    code = int(req.query.get("code", "302"))
    respond(c, code, "Redirect", b"moved\n", ["Location: %s" % req.query.get("to", "echo")])
    return True


def h_loop(c, req):
    respond(c, 302, "Found", b"again\n", ["Location: %s" % req.target])
    return True


def h_chain(c, req):
    n = int(req.query.get("n", "0"))
    code = int(req.query.get("code", "302"))
    ms = int(req.query.get("ms", "0"))
    if ms:
        time.sleep(ms / 1000.0)
    if n <= 0:
        respond(c, 200, "OK", CHAIN_END, ["Content-Type: text/plain"])
    else:
        respond(c, code, "Redirect", b"next\n",
                ["Location: chain?n=%d&code=%d&ms=%d" % (n - 1, code, ms)])
    return True


def h_enc(c, req):
    kind = req.leaf
    try:
        body, enc = encode(kind, payload(int(req.query.get("size", PAYLOAD_SIZE))))
    except KeyError:
        return h_not_found(c, req)
    headers = ["Content-Type: application/octet-stream"]
    if enc:
        headers.append("Content-Encoding: %s" % enc)
    split = int(req.query.get("split", "0"))
    c.send(head(200, "OK", headers, len(body), c) + body[:split])
    if split:
        time.sleep(0.05)
    c.send(body[split:])
    return True


def h_bomb(c, req):
    body = bomb_stream(int(req.query.get("mib", BOMB_SIZE >> 20)))
    c.send(head(200, "OK", ["Content-Type: application/octet-stream",
                            "Content-Encoding: gzip"], len(body), c))
    view = memoryview(body)
    for off in range(0, len(body), 65536):
        c.send(view[off:off + 65536])
    return True


def h_flaky(c, req):
    key = req.query.get("key", "")
    fails = int(req.query.get("fails", "2"))
    with _lock:
        seen = _flaky.get(key, 0)
        _flaky[key] = seen + 1
    if seen < fails:
        status = int(req.query.get("status", "503"))
        headers = ["Content-Type: text/plain"]
        if "retry_after" in req.query:
            headers.append("Retry-After: %s" % req.query["retry_after"])
        respond(c, status, "Try Again", b"failure %d of %d\n" % (seen + 1, fails), headers)
    else:
        respond(c, 200, "OK", FLAKY_OK, ["Content-Type: text/plain"])
    return True


def h_stall(c, req):
    try:
        while c.sock.recv(65536):
            pass
    except OSError:
        pass
    return False


def h_count(c, req):
    with _lock:
        n = _accepted
    respond(c, 200, "OK", b"%d\n" % n, ["Content-Type: text/plain"])
    return True


def h_not_found(c, req):
    respond(c, 404, "Not Found", b"no such path\n", ["Content-Type: text/plain"])
    return True


LEAF_ROUTES = {"echo": h_echo, "redirect": h_redirect, "loop": h_loop, "chain": h_chain}
PATH_ROUTES = {"/bomb": h_bomb, "/flaky": h_flaky, "/stall": h_stall, "/count": h_count}


def route(req):
    if req.path.startswith("/enc/"):
        return h_enc
    return PATH_ROUTES.get(req.path) or LEAF_ROUTES.get(req.leaf) or h_not_found


def serve_connection(sock, number):
    c = Conn(sock, number)
    try:
        while True:
            req = c.read_request()
            if req is None:
                break
            log_request(c, req)
            if not route(req)(c, req):
                break
            if (req.header("Connection") or "").lower() == "close":
                break
    except (OSError, ValueError) as e:
        print("semantics: conn %d: %s" % (number, e), file=sys.stderr)
    try:
        sock.shutdown(socket.SHUT_WR)
    except OSError:
        pass
    sock.close()


def main():
    from scripted import listen_and_serve  # the shared command line and accept loop
    listen_and_serve("volley's HTTP semantics test server", serve_connection,
                     sys.modules[__name__])


if __name__ == "__main__":
    main()
