#!/usr/bin/env python3
"""The classic comparison, offline: 30 URLs on a local server that delays
each response by 100 ms, fetched one after another (volley -c 1, like a
requests loop) and all at once (volley, like aiohttp + asyncio.gather).

    python3 tools/demo.py --volley build/volley [--urls 30] [--delay-ms 100]
"""
import argparse
import http.server
import os
import socketserver
import subprocess
import sys
import tempfile
import threading
import time


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    delay = 0.1

    def log_message(self, *a):
        pass

    def do_GET(self):
        time.sleep(self.delay)
        body = ("hello from %s after %d ms\n" % (self.path, self.delay * 1000)).encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    request_queue_size = 256


def run(volley, args, urls):
    t0 = time.monotonic()
    p = subprocess.run([volley] + args, input="\n".join(urls) + "\n", capture_output=True, text=True)
    return time.monotonic() - t0, p


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--volley", default="build/volley")
    ap.add_argument("--urls", type=int, default=30)
    ap.add_argument("--delay-ms", type=int, default=100)
    a = ap.parse_args()
    Handler.delay = a.delay_ms / 1000.0
    srv = Server(("127.0.0.1", 0), Handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    port = srv.server_address[1]
    hosts = ["a.demo", "b.demo", "c.demo"]
    urls = ["http://%s:%d/item/%d" % (hosts[i % 3], port, i) for i in range(a.urls)]
    resolve = []
    for h in hosts:
        resolve += ["--resolve", "%s:%d:127.0.0.1" % (h, port)]
    print("volley demo: %d URLs on 3 host names, each answered after %d ms by a local server\n"
          % (a.urls, a.delay_ms))
    seq_t, seq = run(a.volley, ["-c", "1", "-i", "-"] + resolve, urls)
    par_t, par = run(a.volley, ["-i", "-"] + resolve, urls)
    print("gathered run (volley -i urls.txt):")
    sys.stdout.write("".join(par.stdout.splitlines(True)[:5]))
    print("  ... (%d lines)" % len(par.stdout.splitlines()))
    print("  " + par.stderr.strip().splitlines()[-1])
    print()
    print("%-34s %8.3f s   (exit %d)" % ("one after another (volley -c 1)", seq_t, seq.returncode))
    print("%-34s %8.3f s   (exit %d)" % ("gathered on one thread (volley)", par_t, par.returncode))
    print("%-34s %8.1fx" % ("speed-up", seq_t / par_t if par_t else 0))
    srv.shutdown()
    sys.exit(0 if seq.returncode == 0 and par.returncode == 0 else 1)


if __name__ == "__main__":
    main()
