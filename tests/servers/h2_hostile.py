#!/usr/bin/env python3
"""A scripted HTTP/2 server (h2c, prior knowledge) for what real servers
will not do on demand: raw frames written with the standard library only.

  h2_hostile.py --port 0 --request-log FILE --mode MODE

prints its port on stdout once listening.  Every stream it sees is one line
of FILE: {"conn": N, "stream": ID, "action": "answered" | "reset" | "ignored"}.
MODE:
  ok            answer every stream: 200, body BODY
  refuse:K      RST_STREAM(REFUSED_STREAM) the first K streams (all connections)
  reset:CODE    RST_STREAM(CODE) every third stream (2nd, 5th, ...), answer the others
  goaway:K      on each connection answer K streams, then GOAWAY(last = the K-th),
                ignore the later ones and close after the client does (or 2 s)
  badframe      answer the first stream, then a DATA frame on stream 0 (a
                connection error, RFC 9113 §6.1), then ignore everything
  bigheader:N   answer with N header fields of 4000 bytes each (HEADERS plus
                CONTINUATION frames of 16384 bytes)
  stall         never answer
  stallconn     never answer on the first connection (a NAT that forgot it);
                answer on the later ones
  drop          on the first connection, read the first request whole (its body
                too), log it as "dropped" and close the connection without a
                byte of answer; answer on the later connections
A client's RST_STREAM is logged as "client_reset", its GOAWAY as "client_goaway".
A request with a body is answered after its END_STREAM; its body's size is
logged as {"stream": ID, "action": "body", "bytes": N}.
Request headers are not decoded (HPACK with Huffman): streams are told
apart by their ids; the response headers are ":status: 200" (static table
index 8) and one literal content-type field.
"""
import argparse
import json
import socket
import socketserver
import struct
import sys
import threading
import time

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
BODY = b"hello from h2\n"
DATA, HEADERS, RST_STREAM, SETTINGS, PING, GOAWAY, WINDOW_UPDATE, CONTINUATION = \
    0, 1, 3, 4, 6, 7, 8, 9
END_STREAM, END_HEADERS, ACK = 0x1, 0x4, 0x1

lock = threading.Lock()
state = {"conns": 0, "streams": 0}


def frame(ftype, flags, stream, payload=b""):
    return struct.pack(">I", len(payload))[1:] + bytes([ftype, flags]) + \
        struct.pack(">I", stream & 0x7FFFFFFF) + payload


def literal(name, value):
    # literal header field without indexing, new name (RFC 7541 §6.2.2), no Huffman
    return b"\x00" + bytes([len(name)]) + name + bytes([len(value)]) + value


RESPONSE_BLOCK = b"\x88" + literal(b"content-type", b"text/plain")


def hpack_int(v, prefix_bits, first=0):
    # RFC 7541 §5.1
    top = (1 << prefix_bits) - 1
    if v < top:
        return bytes([first | v])
    out, v = [first | top], v - top
    while v >= 128:
        out.append(v % 128 + 128)
        v //= 128
    return bytes(out + [v])


def big_block(n):
    block = b"\x88"
    for i in range(n):
        name, value = b"x-big-%d" % i, b"v" * 4000
        block += b"\x00" + hpack_int(len(name), 7) + name + hpack_int(len(value), 7) + value
    return block


def read_exact(sock, n):
    buf = b""
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            return None
        buf += chunk
    return buf


class Handler(socketserver.BaseRequestHandler):
    def log(self, stream, action):
        with open(self.server.request_log, "a") as f:
            f.write(json.dumps({"conn": self.conn_no, "stream": stream, "action": action}) + "\n")

    def answer(self, stream, block=RESPONSE_BLOCK):
        first, rest = block[:16384], block[16384:]
        out = frame(HEADERS, 0 if rest else END_HEADERS, stream, first)
        while rest:
            chunk, rest = rest[:16384], rest[16384:]
            out += frame(CONTINUATION, 0 if rest else END_HEADERS, stream, chunk)
        self.request.sendall(out + frame(DATA, END_STREAM, stream, BODY))
        self.log(stream, "answered")

    def log_body(self, stream, n):
        with open(self.server.request_log, "a") as f:
            f.write(json.dumps({"conn": self.conn_no, "stream": stream, "action": "body",
                                "bytes": n}) + "\n")

    def handle(self):
        sock = self.request
        with lock:
            state["conns"] += 1
            self.conn_no = state["conns"]
        mode, _, arg = self.server.mode.partition(":")
        if read_exact(sock, len(PREFACE)) != PREFACE:
            return
        # SETTINGS_MAX_CONCURRENT_STREAMS = 100, SETTINGS_INITIAL_WINDOW_SIZE = 1 MiB,
        # and the connection's window 16 MiB up: request bodies never wait for us
        sock.sendall(frame(SETTINGS, 0, 0, struct.pack(">HIHI", 3, 100, 4, 1 << 20)) +
                     frame(WINDOW_UPDATE, 0, 0, struct.pack(">I", 1 << 24)))
        on_conn, goaway_sent, broken = 0, None, False
        bodies = {}  # stream -> body bytes so far, for requests still sending one
        sock.settimeout(5)
        while True:
            try:
                hdr = read_exact(sock, 9)
            except (socket.timeout, OSError):
                return
            if hdr is None:
                return
            length = struct.unpack(">I", b"\x00" + hdr[:3])[0]
            ftype, flags = hdr[3], hdr[4]
            stream = struct.unpack(">I", hdr[5:9])[0] & 0x7FFFFFFF
            payload = read_exact(sock, length) if length else b""
            if payload is None:
                return
            if ftype == SETTINGS and not flags & ACK:
                sock.sendall(frame(SETTINGS, ACK, 0))
                continue
            if ftype == PING and not flags & ACK:
                sock.sendall(frame(PING, ACK, 0, payload))
                continue
            if ftype == RST_STREAM:
                self.log(stream, "client_reset")
                continue
            if ftype == GOAWAY:
                self.log(0, "client_goaway")
                continue
            if ftype == DATA and stream in bodies:
                bodies[stream] += len(payload)  # no padding from our client
                if flags & END_STREAM:
                    self.log_body(stream, bodies.pop(stream))
                    if mode == "drop" and self.conn_no == 1:
                        self.log(stream, "dropped")
                        return
                    self.answer(stream)
                continue
            if ftype != HEADERS:
                continue
            with lock:
                state["streams"] += 1
                seen = state["streams"]
            on_conn += 1
            if broken or goaway_sent is not None:
                self.log(stream, "ignored")
                continue
            if mode == "refuse" and seen <= int(arg):
                sock.sendall(frame(RST_STREAM, 0, stream, struct.pack(">I", 7)))
                self.log(stream, "reset")
            elif mode == "reset" and seen % 3 == 2:
                sock.sendall(frame(RST_STREAM, 0, stream, struct.pack(">I", int(arg))))
                self.log(stream, "reset")
            elif mode == "goaway" and on_conn > int(arg):
                goaway_sent = stream - 2  # the K-th stream's id
                sock.sendall(frame(GOAWAY, 0, 0, struct.pack(">II", goaway_sent, 0)))
                self.log(stream, "ignored")
                sock.settimeout(2)
            elif mode == "badframe" and on_conn > 1:
                sock.sendall(frame(DATA, 0, 0, b"junk"))
                broken = True
                self.log(stream, "ignored")
            elif mode == "drop" and self.conn_no == 1 and flags & END_STREAM:
                self.log(stream, "dropped")
                return
            elif mode == "stallconn" and self.conn_no == 1:
                self.log(stream, "ignored")
            elif mode == "stall":
                self.log(stream, "ignored")
            elif mode == "bigheader":
                self.answer(stream, big_block(int(arg)))
            elif not flags & END_STREAM:
                bodies[stream] = 0  # answered when its body has come
            else:
                self.answer(stream)


class Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--request-log", required=True)
    ap.add_argument("--mode", default="ok")
    a = ap.parse_args()
    srv = Server(("127.0.0.1", a.port), Handler)
    srv.request_log, srv.mode = a.request_log, a.mode
    open(a.request_log, "a").close()
    sys.stdout.write("%d\n" % srv.server_address[1])
    sys.stdout.flush()
    srv.serve_forever()


if __name__ == "__main__":
    main()
