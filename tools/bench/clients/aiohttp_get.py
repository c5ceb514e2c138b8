#!/usr/bin/python3
"""aiohttp_get.py: aiohttp ClientSession + TCPConnector(limit=-c), the work
spread by asyncio.gather over -c coroutines that pull from the URL list (with
fewer URLs than -c this is one task per URL, the usual gather over all).

Name resolution: a custom aiohttp resolver (aiohttp's documented hook) answers
HOST:PORT:ADDR overrides and defers to aiohttp's default resolver otherwise;
SNI, Host and the certificate check keep the name.
"""
import asyncio
import os
import socket
import ssl
import sys

import aiohttp
from aiohttp.abc import AbstractResolver
from aiohttp.resolver import DefaultResolver

from common import Tally, iter_urls, parse_args

CHUNK = 1 << 16


class StaticResolver(AbstractResolver):
    def __init__(self, table):
        self.table = table
        self.fallback = DefaultResolver()

    async def resolve(self, host, port=0, family=socket.AF_INET):
        addr = self.table.get((host, port))
        if addr is None:
            return await self.fallback.resolve(host, port, family)
        fam = socket.AF_INET6 if ":" in addr else socket.AF_INET
        return [{"hostname": host, "host": addr, "port": port, "family": fam,
                 "proto": 0, "flags": socket.AI_NUMERICHOST}]

    async def close(self):
        await self.fallback.close()


async def run(args):
    ctx = ssl.create_default_context(cafile=args.cacert) if args.cacert else ssl.create_default_context()
    conn = aiohttp.TCPConnector(limit=args.concurrency, limit_per_host=args.per_host, ssl=ctx,
                                resolver=StaticResolver(args.table))
    timeout = aiohttp.ClientTimeout(total=600)   # default is 300 s in all; the rest are defaults
    t = Tally()
    urls = iter_urls(args.input)

    async def one(i, url, session):
        try:
            async with session.get(url) as r:
                n = 0
                if args.output_dir:
                    with open(os.path.join(args.output_dir, str(i)), "wb") as f:
                        async for chunk in r.content.iter_chunked(CHUNK):
                            f.write(chunk)
                            n += len(chunk)
                elif args.stream:
                    async for chunk in r.content.iter_chunked(CHUNK):
                        n += len(chunk)
                else:
                    n = len(await r.read())
                if r.status != 200:
                    t.fail(i, url, "status %d" % r.status)
                    return
            t.ok += 1
            t.bytes += n
        except Exception as e:  # noqa: BLE001 - every failure is counted
            t.fail(i, url, repr(e))

    async def worker(session):
        for i, url in urls:   # one shared iterator: each URL is taken once
            await one(i, url, session)

    async with aiohttp.ClientSession(connector=conn, timeout=timeout) as session:
        await asyncio.gather(*(worker(session) for _ in range(args.concurrency)))
    return t.finish()


def main():
    return asyncio.run(run(parse_args(__doc__)))


if __name__ == "__main__":
    sys.exit(main())
