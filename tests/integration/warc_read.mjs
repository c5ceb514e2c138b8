// warc_read.mjs: read a WARC file back with an independent reader, webrecorder's
// warcio.js, and print one JSON object per record for test_cli_warc.py.
//
//   node warc_read.mjs NODE_PREFIX FILE.warc[.gz]
//
// NODE_PREFIX is where `npm install --prefix NODE_PREFIX warcio@2` put it.
// Each record is read twice, with warcio.js's own parser both times: once
// without HTTP parsing (the block exactly as stored, for the block digest) and
// once with it (the HTTP status and headers, the payload as stored, the payload
// with its chunked framing removed by warcio.js's dechunker, and the content
// decoded by warcio.js).  Digests are printed as hex sha1: the test turns them
// into base32 with Python's own encoder and compares them with the headers.
import { createHash } from "node:crypto";
import { createReadStream } from "node:fs";
import path from "node:path";
import { pathToFileURL } from "node:url";

const [prefix, file] = process.argv.slice(2);
const warcio = await import(
  pathToFileURL(path.join(prefix, "node_modules", "warcio", "dist", "index.js")).href
);
const { WARCParser, AsyncIterReader } = warcio;

const sha1 = (b) => createHash("sha1").update(b).digest("hex");
const sha256 = (b) => createHash("sha256").update(b).digest("hex");

async function pass(parseHttp, each) {
  const parser = new WARCParser(createReadStream(file), { parseHttp, keepHeadersCase: true });
  let i = 0;
  for await (const record of parser) {
    await each(i++, record);
  }
  return i;
}

const out = [];
await pass(false, async (i, record) => {
  const hs = record.warcHeaders.headers;
  const h = { get: (name) => hs.get(name) ?? null }; // a missing header is null in the JSON
  const block = await record.readFully(false);
  out.push({
    version: record.warcHeaders.protocol,
    type: record.warcType,
    id: h.get("WARC-Record-ID"),
    date: h.get("WARC-Date"),
    target_uri: h.get("WARC-Target-URI"),
    ip: h.get("WARC-IP-Address"),
    concurrent_to: h.get("WARC-Concurrent-To"),
    warcinfo_id: h.get("WARC-Warcinfo-ID"),
    filename: h.get("WARC-Filename"),
    content_type: h.get("Content-Type"),
    content_length: Number(h.get("Content-Length")),
    truncated: h.get("WARC-Truncated"),
    block_digest: h.get("WARC-Block-Digest"),
    payload_digest: h.get("WARC-Payload-Digest"),
    block_len: block.length,
    block_sha1: sha1(block),
    block_head: Buffer.from(block.slice(0, 2048)).toString("latin1"),
  });
});
await pass(true, async (i, record) => {
  const r = out[i];
  if (!record.httpHeaders) {
    if (r.type === "warcinfo")
      r.text = Buffer.from(await record.readFully(false)).toString("utf8");
    return;
  }
  const hh = record.httpHeaders;
  const raw = await record.readFully(false);
  const te = (hh.headers.get("Transfer-Encoding") || "").toLowerCase();
  const dechunked = te.includes("chunked")
    ? await new AsyncIterReader([raw], null, true).readFully()
    : raw;
  r.http_status = hh.statusCode ? Number(hh.statusCode) : null;
  r.http_line = hh.statusline;
  r.http_headers = Object.fromEntries([...hh.headers.entries()].map(([k, v]) => [k.toLowerCase(), v]));
  r.raw_payload_len = raw.length;
  r.payload_len = dechunked.length;
  r.payload_sha1 = sha1(dechunked);
  r.payload_sha256 = sha256(dechunked);
  if (r.type === "response" && !r.truncated) {
    const content = await record.readFully(true);
    r.content_len = content.length;
    r.content_sha256 = sha256(content);
  }
});
process.stdout.write(JSON.stringify(out) + "\n");
