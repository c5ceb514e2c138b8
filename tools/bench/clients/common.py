"""Shared by the Python clients: argument parsing, the URL list reader and the
summary line every client prints ({"ok": N, "failed": N, "bytes": N})."""
import argparse
import json
import sys


def parse_args(description):
    ap = argparse.ArgumentParser(description=description)
    ap.add_argument("-i", "--input", required=True, help="URL list, one per line")
    ap.add_argument("-c", "--concurrency", type=int, default=100)
    ap.add_argument("--resolve", action="append", default=[], metavar="HOST:PORT:ADDR")
    ap.add_argument("--cacert", help="CA file to verify servers with")
    ap.add_argument("-o", "--output-dir", help="save body i as DIR/i")
    ap.add_argument("--per-host", type=int, default=0,
                    help="connections per host (aiohttp's limit_per_host; 0 = unlimited)")
    ap.add_argument("--stream", action="store_true",
                    help="read bodies in chunks instead of whole (big bodies)")
    args = ap.parse_args()
    table = {}
    for r in args.resolve:
        host, port, addr = r.rsplit(":", 2)
        table[(host, int(port))] = addr
    args.table = table
    return args


def iter_urls(path):
    """(index, url) for each URL line; blank lines and # comments skipped.
    Streams the file: memory does not grow with the list."""
    i = 0
    with open(path) as f:
        for line in f:
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            yield i, line
            i += 1


class Tally:
    def __init__(self):
        self.ok = self.failed = self.bytes = 0
        self.errors = []

    def fail(self, index, url, msg):
        self.failed += 1
        if len(self.errors) < 10:
            self.errors.append("#%d %s: %s" % (index, url, msg))

    def finish(self):
        for e in self.errors:
            print(e, file=sys.stderr)
        print(json.dumps({"ok": self.ok, "failed": self.failed, "bytes": self.bytes}), flush=True)
        return 1 if self.failed else 0
