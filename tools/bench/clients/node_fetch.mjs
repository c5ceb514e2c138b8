#!/usr/bin/env node
// node_fetch.mjs: Node's built-in fetch (undici), -c async workers pulling from
// the URL list, awaited together with Promise.all (with fewer URLs than -c this
// is one fetch per URL under Promise.all, the usual way).
//
// Options as the other clients: -i FILE -c N --resolve HOST:PORT:ADDR --cacert FILE
// -o DIR --stream.  Only built-ins: undici's Agent is not exported by Node 20,
// so its constructor is taken from the global dispatcher fetch installs, and a
// new Agent gets connect.lookup (answers the overrides, else dns.lookup) and
// connect.ca (the test CA only: verification stays on, SNI and Host keep the name).
import fs from 'node:fs';
import dns from 'node:dns';
import path from 'node:path';

const args = { concurrency: 100, resolve: [], stream: false };
const argv = process.argv.slice(2);
for (let k = 0; k < argv.length; k++) {
  const a = argv[k];
  if (a === '-i' || a === '--input') args.input = argv[++k];
  else if (a === '-c' || a === '--concurrency') args.concurrency = parseInt(argv[++k], 10);
  else if (a === '--resolve') args.resolve.push(argv[++k]);
  else if (a === '--cacert') args.cacert = argv[++k];
  else if (a === '-o' || a === '--output-dir') args.outputDir = argv[++k];
  else if (a === '--stream') args.stream = true;
  else { console.error(`node_fetch: unknown argument ${a}`); process.exit(2); }
}
if (!args.input) { console.error('node_fetch: -i FILE is required'); process.exit(2); }

const table = new Map();
for (const r of args.resolve) {
  const m = /^(.*):(\d+):(.*)$/.exec(r);
  table.set(m[1], m[3]);   // lookup() is not told the port: by name
}

await fetch('data:,').catch(() => {});   // makes fetch install its global dispatcher
const Agent = globalThis[Symbol.for('undici.globalDispatcher.1')]?.constructor;
if (!Agent) { console.error('node_fetch: no undici Agent reachable from built-ins'); process.exit(2); }
function lookup(hostname, opts, cb) {
  const addr = table.get(hostname);
  if (addr === undefined) return dns.lookup(hostname, opts, cb);
  const family = addr.includes(':') ? 6 : 4;
  if (opts && opts.all) cb(null, [{ address: addr, family }]);
  else cb(null, addr, family);
}
const connect = { lookup };
if (args.cacert) connect.ca = fs.readFileSync(args.cacert);
const dispatcher = new Agent({ connect });   // undici's default timeouts

// Streams the URL list: memory does not grow with it.
function lineReader(file) {
  let fd = fs.openSync(file, 'r');
  const buf = Buffer.alloc(1 << 16);
  let rest = '', lines = [], eof = false, index = 0;
  return function next() {
    for (;;) {
      while (lines.length) {
        const l = lines.shift().trim();
        if (l && !l.startsWith('#')) return [index++, l];
      }
      if (eof) {
        if (rest) { const l = rest.trim(); rest = ''; if (l && !l.startsWith('#')) return [index++, l]; }
        if (fd !== null) { fs.closeSync(fd); fd = null; }
        return null;
      }
      const n = fs.readSync(fd, buf, 0, buf.length, null);
      if (n === 0) { eof = true; continue; }
      const parts = (rest + buf.toString('latin1', 0, n)).split('\n');
      rest = parts.pop();
      lines = parts;
    }
  };
}

let ok = 0, failed = 0, bytes = 0;
const errors = [];
function fail(i, url, msg) {
  failed++;
  if (errors.length < 10) errors.push(`#${i} ${url}: ${msg}`);
}

async function one(i, url) {
  try {
    const r = await fetch(url, { dispatcher });
    let n = 0;
    if (args.outputDir) {
      const fh = await fs.promises.open(path.join(args.outputDir, String(i)), 'w');
      try {
        for await (const chunk of r.body) { await fh.write(chunk); n += chunk.length; }
      } finally { await fh.close(); }
    } else if (args.stream) {
      for await (const chunk of r.body) n += chunk.length;
    } else {
      n = (await r.arrayBuffer()).byteLength;
    }
    if (r.status !== 200) return fail(i, url, `status ${r.status}`);
    ok++;
    bytes += n;
  } catch (e) {
    fail(i, url, `${e.message}${e.cause ? ': ' + (e.cause.code || e.cause.message) : ''}`);
  }
}

const next = lineReader(args.input);
async function worker() {
  for (let item = next(); item; item = next()) await one(item[0], item[1]);
}
await Promise.all(Array.from({ length: args.concurrency }, worker));
await dispatcher.close();
for (const e of errors) console.error(e);
console.log(JSON.stringify({ ok, failed, bytes }));
process.exitCode = failed ? 1 : 0;
