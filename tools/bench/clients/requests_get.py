#!/usr/bin/python3
"""requests_get.py: Python requests, one requests.Session, a sequential loop
(how requests is used without threads).  -c is accepted and ignored.

Name resolution: HOST:PORT:ADDR overrides replace the system lookup for those
names only (socket.getaddrinfo is wrapped; urllib3 looks it up per new
connection); the URL, Host header, SNI and certificate check keep the name.
"""
import os
import socket
import sys

import requests
from requests.adapters import HTTPAdapter

from common import Tally, iter_urls, parse_args

CHUNK = 1 << 16


def main():
    args = parse_args(__doc__)
    if args.table:
        orig = socket.getaddrinfo

        def getaddrinfo(host, port, *a, **kw):
            addr = args.table.get((host, int(port) if port else 0))
            return orig(addr if addr else host, port, *a, **kw)
        socket.getaddrinfo = getaddrinfo
    hosts = {h for h, _ in args.table} or {"-"}
    s = requests.Session()
    adapter = HTTPAdapter(pool_connections=max(10, len(hosts)), pool_maxsize=10)
    s.mount("http://", adapter)
    s.mount("https://", adapter)
    s.verify = args.cacert if args.cacert else True
    s.trust_env = False   # no proxy or CA variables from the environment
    t = Tally()
    for i, url in iter_urls(args.input):
        try:
            with s.get(url, stream=bool(args.stream or args.output_dir), timeout=(10, 300),
                       verify=s.verify) as r:
                n = 0
                if args.output_dir:
                    with open(os.path.join(args.output_dir, str(i)), "wb") as f:
                        for chunk in r.iter_content(CHUNK):
                            f.write(chunk)
                            n += len(chunk)
                elif args.stream:
                    for chunk in r.iter_content(CHUNK):
                        n += len(chunk)
                else:
                    n = len(r.content)
            if r.status_code != 200:
                t.fail(i, url, "status %d" % r.status_code)
            else:
                t.ok += 1
                t.bytes += n
        except Exception as e:  # noqa: BLE001 - every failure is counted
            t.fail(i, url, repr(e))
    return t.finish()


if __name__ == "__main__":
    sys.exit(main())
