#!/usr/bin/env python3
"""http10_server.py: Python's http.server as volley's interop tests run it.

    python3 http10_server.py --port N --root DIR

SimpleHTTPRequestHandler on 127.0.0.1:N speaking HTTP/1.0 (http.server's
default protocol_version): one request per connection, closed after the
response.  Files under / come with Content-Length, as http.server sends
them; /noclen/NAME is the same file without Content-Length, so the body ends
only when the server closes the connection (RFC 9112 §6.3, rule 8).
"""
import argparse
import functools
import http.server
import signal
import sys


class Handler(http.server.SimpleHTTPRequestHandler):
    protocol_version = "HTTP/1.0"

    def translate_path(self, path):
        self.close_delimited = path.startswith("/noclen/")
        if self.close_delimited:
            path = path[len("/noclen"):]
        return super().translate_path(path)

    def send_header(self, keyword, value):
        if getattr(self, "close_delimited", False) and keyword.lower() == "content-length":
            return
        super().send_header(keyword, value)

    def log_message(self, fmt, *args):
        pass


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--root", required=True)
    args = ap.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    handler = functools.partial(Handler, directory=args.root)
    with http.server.ThreadingHTTPServer(("127.0.0.1", args.port), handler) as httpd:
        httpd.serve_forever()


if __name__ == "__main__":
    main()
