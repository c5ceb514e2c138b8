"""Server-side compression from real servers: the body volley decodes equals
the original file by sha256, and the server really compressed it.  Proof of
compression, two ways: Python's http.client asking with the same
Accept-Encoding sees the Content-Encoding; and volley itself with
--no-decompress saves bytes that differ from the file and that zlib decodes
back to it (gzip and deflate; Python has no brotli module, so for br the
http.client check stands alone, next to the decoded sha256).

Brotli cases probe first whether this volley asks for br at all (the
Accept-Encoding it sends to the scripted server's /echo); without it they
skip with "needs brotli decoding (issue 11 §2)"."""
import os
import zlib

from harness import ScriptedServer, Skip, run_volley, timeout
from interop import (H2O, Apache, Lighttpd, Node, TEXT_NAME, _fresh_dir, assert_bodies_intact,
                     fetch_files, file_name, raw_get)

BROTLI_SKIP = "needs brotli decoding (issue 11 §2)"
ZLIB_WBITS = {"gzip": 16 + 15, "deflate": 15, "raw-deflate": -15}


def volley_accept_encoding(tmp):
    """The Accept-Encoding header volley sends by default (from /echo)."""
    with ScriptedServer(tmp) as s:
        out = _fresh_dir(tmp, "probe")
        res = run_volley(["--json", "-o", out, s.url("/echo")])
        rec = res.one()
        assert rec["ok"], res.describe("the /echo probe to succeed")
        with open(rec["file"] if os.path.isabs(rec["file"]) else os.path.join(tmp, rec["file"]),
                  "rb") as f:
            head = f.read().decode("latin-1")
    for line in head.split("\r\n"):
        name, _, value = line.partition(":")
        if name.strip().lower() == "accept-encoding":
            return [c.split(";")[0].strip().lower() for c in value.split(",")]
    return []


def require_brotli(tmp):
    if "br" not in volley_accept_encoding(tmp):
        raise Skip(BROTLI_SKIP)


def assert_server_compresses(srv, path, accept, coding):
    status, headers, body = raw_get(srv.port, path, {"Accept-Encoding": accept})
    assert status == 200 and headers.get("content-encoding") == coding, (
        "%s %s with Accept-Encoding %r: expected 200 and Content-Encoding %s, got %s %s"
        % (srv.NAME, path, accept, coding, status, headers))
    return body


def check_compressed(tmp, srv, paths, coding, accept=None, source=None):
    """paths (relative, no leading '/') come back decoded and intact, and were
    compressed with coding on the wire (see the module docstring).  accept:
    an Accept-Encoding for volley to send instead of its default.
    source(path) -> the original's key in srv.digests (default: path)."""
    source = source or (lambda p: p)
    wire_coding = "deflate" if coding == "raw-deflate" else coding
    extra = ("-H", "Accept-Encoding: %s" % accept) if accept else ()
    probe = accept or ", ".join(volley_accept_encoding(tmp))  # what volley will send
    for p in paths:
        assert_server_compresses(srv, "/" + p, probe, wire_coding)
    before = len(srv.access_lines())
    recs, res = fetch_files(tmp, srv, paths, extra_args=extra)
    assert_bodies_intact(srv, paths, recs, res, tmp, source=source)
    if coding in ZLIB_WBITS:
        check_kept_encoded(tmp, srv, paths, coding, accept or "gzip, deflate", source)
    if srv.LOG_BUFFERED:  # check_kept_encoded has shown the same request coded
        return recs
    served = srv.wait_access(before + len(paths)) and srv.access_log()[before:]
    coded = {e["path"].lstrip("/"): e["encoding"] for e in served}
    plain = [p for p in paths if coded.get(p) != wire_coding]
    assert not plain, (
        "%s did not answer volley's requests with Content-Encoding %s (so the decoding "
        "went untested): %s" % (srv.NAME, wire_coding, {p: coded.get(p) for p in plain}))
    return recs


def check_kept_encoded(tmp, srv, paths, coding, accept, source):
    """--no-decompress saves the coded bytes, which zlib decodes to the file.
    (Without -H, --no-decompress sends no Accept-Encoding at all.)"""
    recs, res = fetch_files(tmp, srv, paths,
                            extra_args=("--no-decompress", "-H", "Accept-Encoding: " + accept))
    for i, p in enumerate(paths):
        r = recs[i]
        assert r["ok"], res.describe("%s ok with --no-decompress" % p)
        path = r["file"] if os.path.isabs(r["file"]) else os.path.join(tmp, r["file"])
        with open(path, "rb") as f:
            wire = f.read()
        with open(os.path.join(srv.root, source(p)), "rb") as f:
            original = f.read()
        try:
            decoded = zlib.decompress(wire, ZLIB_WBITS[coding])
        except zlib.error as e:
            raise AssertionError("%s %s with --no-decompress: the saved body is not %s (%s): %r"
                                 % (srv.NAME, p, coding, e, wire[:40]))
        assert decoded == original and wire != original, (
            "%s %s: --no-decompress body (%d bytes) does not decode to the file (%d bytes)"
            % (srv.NAME, p, len(wire), len(original)))
        assert r["bytes"] == len(wire), (
            "--no-decompress: record bytes %d, saved %d" % (r["bytes"], len(wire)))


# Node compresses whatever file it is asked for; these cover an empty body, a
# body of one byte, incompressible data bigger after gzip, and text.
NODE_FILES = [TEXT_NAME, file_name(0), file_name(1), file_name(65537), file_name(1048577)]


def node_paths(kind):
    return ["%s/%s" % (kind, f) for f in NODE_FILES]


def strip_kind(p):
    return p.split("/", 1)[1]


@timeout(60, valgrind=300)
def test_apache_mod_deflate_gzip_body_is_decoded_intact(tmp):
    with Apache(tmp, big=False) as srv:
        check_compressed(tmp, srv, [TEXT_NAME], "gzip", accept="gzip")


@timeout(60, valgrind=300)
def test_lighttpd_mod_deflate_gzip_and_deflate_bodies_are_decoded_intact(tmp):
    with Lighttpd(tmp, big=False) as srv:
        check_compressed(tmp, srv, [TEXT_NAME], "gzip", accept="gzip")
        check_compressed(tmp, srv, [TEXT_NAME], "deflate", accept="deflate")


@timeout(60, valgrind=300)
def test_h2o_compress_on_gzip_body_is_decoded_intact(tmp):
    with H2O(tmp, big=False) as srv:
        check_compressed(tmp, srv, [TEXT_NAME], "gzip", accept="gzip")


@timeout(60, valgrind=300)
def test_node_zlib_gzip_and_deflate_bodies_are_decoded_intact(tmp):
    with Node(tmp) as srv:
        check_compressed(tmp, srv, node_paths("gzip"), "gzip", source=strip_kind)
        check_compressed(tmp, srv, node_paths("deflate"), "deflate", source=strip_kind)


@timeout(60, valgrind=300)
def test_node_raw_deflate_without_zlib_wrapper_is_decoded_intact(tmp):
    with Node(tmp) as srv:
        check_compressed(tmp, srv, node_paths("raw-deflate"), "raw-deflate", source=strip_kind)


@timeout(60, valgrind=300)
def test_node_brotli_body_is_decoded_intact(tmp):
    require_brotli(tmp)
    with Node(tmp) as srv:
        check_compressed(tmp, srv, node_paths("br"), "br", accept="br", source=strip_kind)
        # volley's own Accept-Encoding (which now names br) gets br from node too
        check_compressed(tmp, srv, ["br/" + TEXT_NAME], "br", accept=None, source=strip_kind)


@timeout(60, valgrind=300)
def test_h2o_and_lighttpd_brotli_bodies_are_decoded_intact(tmp):
    require_brotli(tmp)
    with H2O(tmp, big=False) as h2o, Lighttpd(tmp, big=False) as lt:
        for srv in (h2o, lt):
            check_compressed(tmp, srv, [TEXT_NAME], "br", accept="br")
