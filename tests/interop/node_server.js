// node_server.js: a small server on Node's own http module for volley's interop tests.
//
//   node node_server.js --port N --root DIR [--log FILE]
//        [--keep-alive-timeout-ms MS] [--max-requests-per-socket N]
//
// Listens on 127.0.0.1:N (prints "listening N" when it does), keeps Node's
// defaults unless told (keepAliveTimeout 5000 ms, maxRequestsPerSocket 0).
// Every request is appended to FILE as one JSON line when its response has
// gone or its connection closed (method, url, headers, socket: a number per
// TCP connection, status, encoding: the response's Content-Encoding or null,
// finished: whether node saw the whole response written).  Paths:
//
//   /files/NAME          DIR/files/NAME with Content-Length (like a static server)
//   /chunked/PATH        DIR/PATH chunked (a stream, no Content-Length)
//   /gzip/PATH           DIR/PATH compressed with gzip, streamed chunked, when the
//   /deflate/PATH        request's Accept-Encoding names that coding; identity
//   /br/PATH             otherwise (Vary: Accept-Encoding either way)
//   /force-br/PATH       brotli whatever the request accepts (a misbehaving server)
//   /raw-deflate/PATH    "Content-Encoding: deflate" as raw RFC 1951 data without
//                        the zlib wrapper (what some servers send), when accepted
//   /chain/301 -> /chain/302 -> /chain/307 -> /chain/308 -> /chain/final
//                        301 Location "/chain/302" (absolute path), 302 "307"
//                        (relative), 307 "http://127.0.0.1:N/chain/308" (absolute),
//                        308 "../chain/final?via=308" (dot segments); final: 200
//                        "final\n".  The chain keeps the query string "?q=..." of
//                        the first request (the tests check it survives).
//   /echo                200; JSON of the request's method, url and headers
//   anything else        404
'use strict';
const http = require('http');
const fs = require('fs');
const path = require('path');
const zlib = require('zlib');

function arg(name, fallback) {
    const i = process.argv.indexOf(name);
    return i >= 0 && i + 1 < process.argv.length ? process.argv[i + 1] : fallback;
}

const port = Number(arg('--port', '0'));
const root = arg('--root', '.');
const logPath = arg('--log', null);
const logFd = logPath ? fs.openSync(logPath, 'a') : null;
let sockets = 0;

// One line per request once its response is sent: what came and what went.
function log(req, res) {
    if (logFd === null) return;
    // 'close', not 'finish': a client that closes the moment the last byte is
    // in can beat 'finish' (finished: false then).
    const socket = req.socket.volleyId;
    res.on('close', () => {
        const rec = {method: req.method, url: req.url, headers: req.headers,
                     socket: socket, status: res.statusCode,
                     encoding: res.volleyEncoding || null, finished: res.writableFinished};
        fs.writeSync(logFd, JSON.stringify(rec) + '\n');
    });
}

function notFound(res) {
    res.writeHead(404, {'Content-Type': 'text/plain', 'Content-Length': '13'});
    res.end('no such path\n');
}

// The file under root that rest names, or null if it escapes root or is missing.
function fileFor(rest) {
    const p = path.normalize(path.join(root, decodeURIComponent(rest)));
    if (!p.startsWith(path.normalize(root) + path.sep)) return null;
    try {
        return fs.statSync(p).isFile() ? p : null;
    } catch (e) {
        return null;
    }
}

function accepts(req, coding) {
    const ae = String(req.headers['accept-encoding'] || '');
    return ae.split(',').some((part) => {
        const [name, ...params] = part.trim().split(';');
        const q = params.map((s) => s.trim()).find((s) => s.startsWith('q='));
        return name.trim().toLowerCase() === coding && !(q && Number(q.slice(2)) === 0);
    });
}

const ENCODERS = {
    gzip: () => zlib.createGzip(),
    deflate: () => zlib.createDeflate(),
    // Quality 5, not node's default 11: the same format, a fraction of the CPU.
    br: () => zlib.createBrotliCompress({params: {[zlib.constants.BROTLI_PARAM_QUALITY]: 5}}),
    'raw-deflate': () => zlib.createDeflateRaw(),
};

function sendFile(res, file, type) {
    const size = fs.statSync(file).size;
    res.writeHead(200, {'Content-Type': type, 'Content-Length': String(size)});
    fs.createReadStream(file).pipe(res);
}

function sendCompressed(req, res, file, kind, force) {
    const coding = kind === 'raw-deflate' ? 'deflate' : kind;
    if (!force && !accepts(req, coding)) {
        res.setHeader('Vary', 'Accept-Encoding');
        return sendFile(res, file, 'text/plain');
    }
    res.volleyEncoding = coding;
    res.writeHead(200, {'Content-Type': 'text/plain', 'Content-Encoding': coding,
                        'Vary': 'Accept-Encoding'});
    fs.createReadStream(file).pipe(ENCODERS[kind]()).pipe(res);
}

function chain(req, res, step, query) {
    const next = {
        '301': [301, '/chain/302' + query],
        '302': [302, '307' + query],
        '307': [307, 'http://127.0.0.1:' + port + '/chain/308' + query],
        '308': [308, '../chain/final' + (query ? query + '&' : '?') + 'via=308'],
    }[step];
    if (step === 'final') {
        res.writeHead(200, {'Content-Type': 'text/plain', 'Content-Length': '6'});
        return res.end('final\n');
    }
    if (!next) return notFound(res);
    res.writeHead(next[0], {'Location': next[1], 'Content-Type': 'text/plain',
                            'Content-Length': '6'});
    res.end('moved\n');
}

const server = http.createServer((req, res) => {
    log(req, res);
    const u = new URL(req.url, 'http://127.0.0.1');
    const m = /^\/([a-z0-9-]+)\/(.*)$/.exec(u.pathname);
    const top = m ? m[1] : u.pathname.slice(1);
    const rest = m ? m[2] : '';
    if (top === 'echo') {
        const body = JSON.stringify({method: req.method, url: req.url, headers: req.headers});
        res.writeHead(200, {'Content-Type': 'application/json',
                            'Content-Length': String(Buffer.byteLength(body))});
        return res.end(body);
    }
    if (top === 'chain') return chain(req, res, rest, u.search);
    const file = rest ? fileFor(top === 'files' ? 'files/' + rest : rest) : null;
    if (!file) return notFound(res);
    if (top === 'files') return sendFile(res, file, 'application/octet-stream');
    if (top === 'chunked') {
        res.writeHead(200, {'Content-Type': 'application/octet-stream'});
        return fs.createReadStream(file).pipe(res);
    }
    if (top === 'force-br') return sendCompressed(req, res, file, 'br', true);
    if (ENCODERS[top]) return sendCompressed(req, res, file, top, false);
    notFound(res);
});

server.on('connection', (sock) => { sock.volleyId = ++sockets; });
if (arg('--keep-alive-timeout-ms', null) !== null)
    server.keepAliveTimeout = Number(arg('--keep-alive-timeout-ms'));
if (arg('--max-requests-per-socket', null) !== null)
    server.maxRequestsPerSocket = Number(arg('--max-requests-per-socket'));
process.on('SIGTERM', () => process.exit(0));
server.listen(port, '127.0.0.1', () => console.log('listening ' + server.address().port));
