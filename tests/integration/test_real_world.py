"""Responses real servers send (issue 11 §2): RFC 9112's robustness rules as
curl and browsers apply them, and every way a response can carry bytes that
are not the body.  Each case is sent byte for byte by the scripted server's
/raw route, once in one send() and once in small pieces (so every limit and
every header value is seen split across reads), and the record and the saved
body are checked exactly: the wrong bytes reported as ok is the failure this
file exists to catch."""
import base64
import ctypes
import ctypes.util
import gzip
import os
import zlib

from harness import ScriptedServer, check_record, run_volley
import scripted

BODY = b"".join(b"line %04d of the real body\n" % i for i in range(400))


def b64(data):
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def raw_path(data, piece=0):
    return "/raw?r=%s%s" % (b64(data), "&piece=%d" % piece if piece else "")


def head(status_line, *fields, sep=b"\r\n"):
    lines = [status_line.encode("latin-1")] + [f.encode("latin-1") for f in fields]
    return sep.join(lines) + sep + sep


def chunked(data, size=700, sep=b"\r\n"):
    out = b""
    for i in range(0, len(data), size):
        part = data[i:i + size]
        out += b"%x" % len(part) + sep + part + sep
    return out + b"0" + sep + sep


def deflate(data):
    return zlib.compress(data, 6)


def gz(data):
    return gzip.compress(data, 6)


def _lib(name):
    path = ctypes.util.find_library(name)
    assert path, "lib%s not found (Debian's lib%s is a build dependency)" % (name, name)
    return ctypes.CDLL(path)


def brotli(data):
    """br through Debian's libbrotlienc (ctypes: no Python package needed)."""
    enc = _lib("brotlienc")
    out_len = ctypes.c_size_t(len(data) + 1024)
    out = ctypes.create_string_buffer(out_len.value)
    ok = enc.BrotliEncoderCompress(5, 22, 0, ctypes.c_size_t(len(data)), data,
                                   ctypes.byref(out_len), out)
    assert ok == 1, "BrotliEncoderCompress failed"
    return out.raw[:out_len.value]


def zstd(data):
    lib = _lib("zstd")
    lib.ZSTD_compressBound.restype = ctypes.c_size_t
    lib.ZSTD_compress.restype = ctypes.c_size_t
    lib.ZSTD_isError.restype = ctypes.c_uint
    cap = lib.ZSTD_compressBound(ctypes.c_size_t(len(data)))
    out = ctypes.create_string_buffer(cap)
    n = lib.ZSTD_compress(out, ctypes.c_size_t(cap), data, ctypes.c_size_t(len(data)), 3)
    assert not lib.ZSTD_isError(ctypes.c_size_t(n)), "ZSTD_compress failed"
    return out.raw[:n]


def cl(body):
    return "Content-Length: %d" % len(body)


# (name, raw response, expectation): an expectation is ("ok", status, body)
# or ("fail", substring of the error).
def cases():
    ok_h = head("HTTP/1.1 200 OK", cl(BODY))
    yield "crlf baseline", ok_h + BODY, ("ok", 200, BODY)
    yield "bare LF everywhere", head("HTTP/1.1 200 OK", "Content-Type: text/plain", cl(BODY),
                                     sep=b"\n") + BODY, ("ok", 200, BODY)
    yield "mixed line ends", (b"HTTP/1.1 200 OK\nContent-Type: text/plain\r\n" +
                              cl(BODY).encode() + b"\n\r\n" + BODY), ("ok", 200, BODY)
    yield "blank lines before the status line", b"\r\n\n" + ok_h + BODY, ("ok", 200, BODY)
    yield "OWS after values", head("HTTP/1.1 200 OK", cl(BODY) + "  \t",
                                   "Content-Type: text/plain   ") + BODY, ("ok", 200, BODY)
    yield "obs-fold continuation", head("HTTP/1.1 200 OK", "X-Folded: first", "  second",
                                        cl(BODY)) + BODY, ("ok", 200, BODY)
    yield "status without reason", head("HTTP/1.1 200", cl(BODY)) + BODY, ("ok", 200, BODY)
    yield "status with empty reason", head("HTTP/1.1 204 ") , ("ok", 204, b"")
    yield "status 600 is final", head("HTTP/1.1 600 Odd", "Content-Length: 2") + b"hi", \
        ("ok", 600, b"hi")
    yield "status 999 is final", head("HTTP/1.1 999 Odd", "Content-Length: 2") + b"hi", \
        ("ok", 999, b"hi")
    for bad in ["HTTP/1.1 20 OK", "HTTP/1.1 2 OK", "HTTP/1.1 000 OK", "HTTP/1.1 099 Low",
                "HTTP/1.1  200 OK", "HTTP/1.1 OK", "HTTP/1.1 2000 OK", "HTTP/1.1 200OK",
                "HTTP/1.1", "HTTP/2.0 200 OK", "ICY 200 OK"]:
        yield "status line %r" % bad, head(bad, "Content-Length: 2") + b"hi", \
            ("fail", "http: malformed status line")
    yield "100 with a Content-Length adds nothing", (
        head("HTTP/1.1 100 Continue", "Content-Length: 5") +
        head("HTTP/1.1 200 OK", cl(BODY)) + BODY), ("ok", 200, BODY)
    yield "103 claiming chunked adds nothing", (
        head("HTTP/1.1 103 Early Hints", "Transfer-Encoding: chunked", "Link: </a>") +
        head("HTTP/1.1 200 OK", cl(BODY)) + BODY), ("ok", 200, BODY)
    yield "16 interim responses are fine", (
        head("HTTP/1.1 102 Processing") * 16 + ok_h + BODY), ("ok", 200, BODY)
    yield "17 interim responses are too many", (
        head("HTTP/1.1 102 Processing") * 17 + ok_h + BODY), ("fail", "interim (1xx)")
    yield "chunked with bare LF", head("HTTP/1.1 200 OK", "Transfer-Encoding: chunked",
                                       sep=b"\n") + chunked(BODY, sep=b"\n"), ("ok", 200, BODY)
    yield "chunk data not followed by CRLF", (
        head("HTTP/1.1 200 OK", "Transfer-Encoding: chunked") +
        b"5\r\nhelloXX3\r\nabc\r\n0\r\n\r\n"), ("fail", "not followed by CRLF")
    yield "chunk size with BWS and extension", (
        head("HTTP/1.1 200 OK", "Transfer-Encoding: chunked") +
        b"5 ;a=1\r\nhello\r\n5\t; b=\"x;y\"\r\nworld\r\n0\r\n\r\n"), ("ok", 200, b"helloworld")
    yield "whitespace before the first field", (
        b"HTTP/1.1 200 OK\r\n X-Bad: 1\r\n" + cl(BODY).encode() + b"\r\n\r\n" + BODY), \
        ("fail", "whitespace before the first header field")
    # Content codings, stacked in the order the server applied them.
    yield "deflate, identity, gzip", head("HTTP/1.1 200 OK",
                                          "Content-Encoding: deflate, identity, gzip",
                                          cl(gz(deflate(BODY)))) + gz(deflate(BODY)), \
        ("ok", 200, BODY)
    stacked = gz(BODY)
    stacked2 = deflate(stacked)
    yield "two Content-Encoding fields", head("HTTP/1.1 200 OK", "Content-Encoding: gzip",
                                              "Content-Encoding: deflate", cl(stacked2)) + \
        stacked2, ("ok", 200, BODY)
    yield "br", head("HTTP/1.1 200 OK", "Content-Encoding: br", cl(brotli(BODY))) + \
        brotli(BODY), ("ok", 200, BODY)
    yield "zstd", head("HTTP/1.1 200 OK", "Content-Encoding: zstd", cl(zstd(BODY))) + \
        zstd(BODY), ("ok", 200, BODY)
    mix = zstd(brotli(gz(BODY)))
    yield "gzip, br, zstd", head("HTTP/1.1 200 OK", "Content-Encoding: gzip, br, zstd",
                                 cl(mix)) + mix, ("ok", 200, BODY)
    yield "unknown content coding", head("HTTP/1.1 200 OK", "Content-Encoding: x-foo",
                                         cl(BODY)) + BODY, \
        ("fail", "decode: unsupported content coding 'x-foo'")
    yield "compress is not supported", head("HTTP/1.1 200 OK", "Content-Encoding: compress",
                                            cl(BODY)) + BODY, \
        ("fail", "decode: unsupported content coding 'compress'")
    yield "unknown coding on an empty body", head("HTTP/1.1 200 OK", "Content-Encoding: x-foo",
                                                  "Content-Length: 0"), ("ok", 200, b"")
    yield "five content codings", head("HTTP/1.1 200 OK",
                                        "Content-Encoding: gzip, gzip, gzip, gzip, gzip",
                                        cl(BODY)) + BODY, ("fail", "more than 4 codings")
    # Transfer codings other than chunked: undone, body to the close.
    yield "Transfer-Encoding: gzip to the close", head("HTTP/1.1 200 OK",
                                                       "Transfer-Encoding: gzip") + gz(BODY), \
        ("ok", 200, BODY)
    yield "Transfer-Encoding: gzip, chunked", head("HTTP/1.1 200 OK",
                                                   "Transfer-Encoding: gzip, chunked") + \
        chunked(gz(BODY)), ("ok", 200, BODY)
    te_ce = gz(brotli(BODY))
    yield "Content-Encoding br under Transfer-Encoding gzip", head(
        "HTTP/1.1 200 OK", "Content-Encoding: br", "Transfer-Encoding: gzip, chunked") + \
        chunked(te_ce), ("ok", 200, BODY)
    yield "chunked before gzip", head("HTTP/1.1 200 OK", "Transfer-Encoding: chunked, gzip") + \
        chunked(BODY), ("fail", "Transfer-Encoding")
    yield "two Transfer-Encoding fields", head("HTTP/1.1 200 OK", "Transfer-Encoding: gzip",
                                               "Transfer-Encoding: chunked") + \
        chunked(gz(BODY)), ("fail", "2 Transfer-Encoding header fields")
    yield "five transfer codings", head("HTTP/1.1 200 OK",
                                        "Transfer-Encoding: gzip, gzip, gzip, gzip, chunked") + \
        chunked(BODY), ("fail", "more than 4 codings")
    yield "unknown transfer coding", head("HTTP/1.1 200 OK", "Transfer-Encoding: x-zip") + \
        BODY, ("fail", "unsupported transfer coding 'x-zip'")
    # Location values.
    yield "empty Location is not followed", head("HTTP/1.1 302 Found", "Location: ",
                                                 "Content-Length: 3") + b"abc", \
        ("ok", 302, b"abc")
    yield "two different Locations", head("HTTP/1.1 302 Found", "Location: /a", "Location: /b",
                                          "Content-Length: 0"), \
        ("fail", "several different Location")


def brief(rec):
    """A record without its (long, base64) URLs, for failure messages."""
    return {k: v for k, v in rec.items() if k not in ("url", "final_url")}


def _expect(name, rec, exp, cwd):
    check_record(rec)
    full, rec = rec, brief(rec)
    if exp[0] == "fail":
        assert rec["ok"] is False, "%s: expected a failure (%s), got %r" % (name, exp[1], rec)
        assert exp[1] in (rec["error"] or ""), "%s: expected an error with %r, got %r" % (
            name, exp[1], rec["error"])
        return
    assert rec["ok"] is True, "%s: expected ok, got %r" % (name, rec)
    assert rec["status"] == exp[1], "%s: status %r, expected %r" % (name, rec["status"], exp[1])
    with open(os.path.join(cwd, full["file"]), "rb") as f:
        body = f.read()
    assert body == exp[2], "%s: body of %d bytes differs from the %d expected (first %r)" % (
        name, len(body), len(exp[2]), body[:60])
    assert rec["bytes"] == len(exp[2]), (name, rec["bytes"])


def _run_cases(tmp, piece):
    all_cases = list(cases())
    with ScriptedServer(tmp) as s:
        urls = [s.url(raw_path(raw, piece)) for _, raw, _ in all_cases]
        res = run_volley(["--json", "-c", "8", "-o", "out", "--max-redirs", "3"] + urls,
                         check=False, cwd=tmp, timeout=60)
    recs = {r["index"]: r for r in res.records}
    assert sorted(recs) == list(range(len(all_cases))), res.describe("one record per case")
    for i, (name, _, exp) in enumerate(all_cases):
        _expect("%s (piece=%d)" % (name, piece), recs[i], exp, tmp)


def test_quirky_responses_in_one_piece(tmp):
    _run_cases(tmp, 0)


def test_quirky_responses_in_small_pieces(tmp):
    _run_cases(tmp, 7)


def test_location_with_trailing_whitespace_is_followed(tmp):
    with ScriptedServer(tmp) as s:
        raw = head("HTTP/1.1 301 Moved", "Location: /ok   \t", "Content-Length: 0")
        res = run_volley(["--json", s.url(raw_path(raw))])
        rec = check_record(res.one())
    assert rec["ok"] and rec["status"] == 200 and rec["redirects"] == 1, brief(rec)
    assert rec["final_url"] == s.url("/ok"), rec["final_url"]
    assert rec["bytes"] == len(scripted.OK_BODY), rec


def test_same_location_twice_is_followed(tmp):
    with ScriptedServer(tmp) as s:
        raw = head("HTTP/1.1 302 Found", "Location: /ok", "Location: /ok", "Content-Length: 0")
        rec = check_record(run_volley(["--json", s.url(raw_path(raw))]).one())
    assert rec["ok"] and rec["status"] == 200 and rec["final_url"] == s.url("/ok"), brief(rec)


def test_long_location_is_followed_exactly_however_it_is_split(tmp):
    """A Location over 8 KiB (an internal buffer once) is neither dropped nor
    spliced: volley requests exactly the URL the server sent."""
    pad = "".join("%05d" % i for i in range(2400))  # 12,000 bytes
    target = "/ok?pad=" + pad
    with ScriptedServer(tmp) as s:
        for piece in (0, 1000, 333):
            raw = head("HTTP/1.1 302 Found", "Location: " + target, "Content-Length: 0")
            rec = check_record(run_volley(["--json", s.url(raw_path(raw, piece))]).one())
            assert rec["ok"] and rec["redirects"] == 1, (piece, brief(rec))
            assert rec["final_url"] == s.url(target), "piece=%d: final_url is not the Location" \
                % piece
        targets = [r["target"] for r in s.requests()]
    assert targets.count(target) == 3, "the server saw %d requests for the long target" % (
        targets.count(target))


def test_accept_encoding_names_every_decoder(tmp):
    with ScriptedServer(tmp) as s:
        run_volley(["--json", s.url("/ok")])
        (req,) = s.requests()
    ae = [v for k, v in req["headers"] if k.lower() == "accept-encoding"]
    assert ae == ["gzip, deflate, br, zstd"], ae
