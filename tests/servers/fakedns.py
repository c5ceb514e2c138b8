#!/usr/bin/env python3
"""fakedns.py: a tiny scripted DNS server for volley's tests (standard library only).

    python3 tests/servers/fakedns.py [--config FILE] [--json TEXT] [--stats FILE] [--port N]

Listens on UDP 127.0.0.1 (a free port unless --port) and prints the port alone on
the first line of stdout.  Only loopback: it never forwards or recurses.

The configuration (a JSON object; --config re-reads FILE whenever it changes, so a
test can change answers mid-run) maps lower-case names to behaviours:

    {"names": {
        "ok.test":     {"A": ["127.0.0.1"], "AAAA": ["::1"], "ttl": 60},
        "v4.test":     {"A": ["127.0.0.1"], "ttl": 1},     # AAAA query: NOERROR, no data
        "slow.test":   {"A": ["127.0.0.1"], "delay_ms": 300},
        "nx.test":     "nxdomain",
        "fail.test":   "servfail",
        "silent.test": "silent"},                           # never answers
     "default": "nxdomain"}                                 # unknown names

Every query is counted per name and type.  The counts are exposed two ways:
  * --stats FILE: rewritten atomically after each query, {"name": {"A": n, "AAAA": n}};
  * a TXT query for "_count.NAME" answers "A=n AAAA=n total=n" (not counted itself).
SIGTERM or SIGINT stops it.
"""
import argparse
import ipaddress
import json
import os
import signal
import socket
import struct
import sys
import threading

QTYPES = {1: "A", 28: "AAAA", 16: "TXT"}
RCODE_NOERROR, RCODE_SERVFAIL, RCODE_NXDOMAIN = 0, 2, 3


class Config:
    def __init__(self, path, text):
        self.path, self.mtime, self.data = path, None, {"names": {}, "default": "nxdomain"}
        if text:
            self.data = self.normalise(json.loads(text))
        self.reload()

    @staticmethod
    def normalise(data):
        data.setdefault("default", "nxdomain")
        data["names"] = {k.lower().rstrip("."): v for k, v in data.get("names", {}).items()}
        return data

    def reload(self):
        if not self.path:
            return
        try:
            mtime = os.stat(self.path).st_mtime_ns
        except OSError:
            return
        if mtime != self.mtime:
            with open(self.path) as f:
                self.data = self.normalise(json.load(f))
            self.mtime = mtime

    def lookup(self, name):
        self.reload()
        return self.data["names"].get(name, self.data["default"])


def parse_question(msg):
    """Returns (id, flags, labels-as-name, qtype, end offset) or None."""
    if len(msg) < 12:
        return None
    qid, flags, qdcount = struct.unpack("!HHH", msg[:6])
    if qdcount != 1 or flags & 0x8000:
        return None
    pos, labels = 12, []
    while True:
        if pos >= len(msg):
            return None
        n = msg[pos]
        pos += 1
        if n == 0:
            break
        if n & 0xC0 or pos + n > len(msg):
            return None
        labels.append(msg[pos:pos + n].decode("ascii", "replace"))
        pos += n
    if pos + 4 > len(msg):
        return None
    qtype, qclass = struct.unpack("!HH", msg[pos:pos + 4])
    return qid, flags, ".".join(labels), qtype, pos + 4


def response(msg, q, rcode, answers):
    """answers: list of (type, ttl, rdata bytes), all for the question's name."""
    qid, flags, _, _, qend = q
    rflags = 0x8000 | (flags & 0x7900) | 0x0400 | 0x0080 | rcode  # QR, opcode+RD, AA, RA
    out = struct.pack("!HHHHHH", qid, rflags, 1, len(answers), 0, 0) + msg[12:qend]
    for rtype, ttl, rdata in answers:
        out += struct.pack("!HHHIH", 0xC00C, rtype, 1, ttl, len(rdata)) + rdata
    return out


class Server:
    def __init__(self, sock, config, stats_path):
        self.sock, self.config, self.stats_path = sock, config, stats_path
        self.counts, self.lock = {}, threading.Lock()

    def count(self, name, qtype):
        with self.lock:
            per = self.counts.setdefault(name, {})
            per[qtype] = per.get(qtype, 0) + 1
            if self.stats_path:
                tmp = self.stats_path + ".tmp"
                with open(tmp, "w") as f:
                    json.dump(self.counts, f)
                os.replace(tmp, self.stats_path)

    def count_txt(self, name):
        with self.lock:
            per = self.counts.get(name, {})
            text = "A=%d AAAA=%d total=%d" % (per.get("A", 0), per.get("AAAA", 0),
                                             sum(per.values()))
        data = text.encode()
        return bytes([len(data)]) + data

    def answer(self, msg, q):
        name = q[2].lower().rstrip(".")
        qtype = QTYPES.get(q[3], str(q[3]))
        if qtype == "TXT" and name.startswith("_count."):
            return response(msg, q, RCODE_NOERROR, [(16, 0, self.count_txt(name[7:]))])
        self.count(name, qtype)
        rule = self.config.lookup(name)
        if rule == "nxdomain":
            return response(msg, q, RCODE_NXDOMAIN, [])
        if rule == "servfail":
            return response(msg, q, RCODE_SERVFAIL, [])
        if rule == "silent" or not isinstance(rule, dict):
            return None
        ttl = int(rule.get("ttl", 60))
        answers = []
        if qtype == "A":
            answers = [(1, ttl, ipaddress.IPv4Address(a).packed) for a in rule.get("A", [])]
        elif qtype == "AAAA":
            answers = [(28, ttl, ipaddress.IPv6Address(a).packed) for a in rule.get("AAAA", [])]
        return response(msg, q, RCODE_NOERROR, answers)

    def serve(self):
        while True:
            msg, peer = self.sock.recvfrom(4096)
            q = parse_question(msg)
            if not q:
                continue
            try:
                out = self.answer(msg, q)
            except Exception as e:  # a bad config must not kill the server mid-test
                print("fakedns: %s" % e, file=sys.stderr)
                out = response(msg, q, RCODE_SERVFAIL, [])
            if out is None:
                continue
            rule = self.config.lookup(q[2].lower().rstrip("."))
            delay = rule.get("delay_ms", 0) / 1000.0 if isinstance(rule, dict) else 0
            if delay:
                threading.Timer(delay, self.sock.sendto, (out, peer)).start()
            else:
                self.sock.sendto(out, peer)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--config", help="JSON file, re-read when it changes")
    ap.add_argument("--json", help="JSON configuration given inline")
    ap.add_argument("--stats", help="query counts written here after each query")
    ap.add_argument("--port", type=int, default=0)
    args = ap.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", args.port))
    server = Server(sock, Config(args.config, args.json), args.stats)
    print(sock.getsockname()[1], flush=True)
    try:
        server.serve()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
