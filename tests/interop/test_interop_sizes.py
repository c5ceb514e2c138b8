"""Every body size from 0 B to 10 MiB, fetched from real servers with -o DIR,
arrives intact: the saved file's sha256 equals the source file's, and the
record's "bytes" equals its size.  Sizes straddle volley's and the servers'
buffer edges (1 KiB, 4 KiB, 16 KiB, 64 KiB, 1 MiB, each +-1); the content never
repeats (sha256-chained blocks), so a dropped, doubled or reordered block
shows.  Under valgrind 10 MiB is left out (interop.sizes())."""
from harness import timeout
from interop import (H2O, Apache, Lighttpd, Node, PyHttp10, assert_bodies_intact, fetch_files,
                     file_name, sizes)


def check_sizes(tmp, server, prefix="", big=True, extra_args=()):
    names = [prefix + file_name(s) for s in sizes(big)]
    recs, res = fetch_files(tmp, server, names, extra_args=("-c", "8") + tuple(extra_args))
    assert_bodies_intact(server, names, recs, res, tmp, source=lambda n: n[len(prefix):])
    wrong = ["%s: bytes %d" % (n, recs[i]["bytes"]) for i, n in enumerate(names)
             if recs[i]["bytes"] != int(n.rsplit("/", 1)[1].split(".")[0])]
    assert not wrong, "%s: record bytes differ from the file size: %s" % (server.NAME, wrong)
    assert res.rc == 0, res.describe("exit 0")
    return recs


@timeout(60, valgrind=300)
def test_apache_serves_every_size_0_to_10mib_intact(tmp):
    with Apache(tmp) as srv:
        check_sizes(tmp, srv)


@timeout(60, valgrind=300)
def test_lighttpd_serves_every_size_0_to_10mib_intact(tmp):
    with Lighttpd(tmp) as srv:
        check_sizes(tmp, srv)


@timeout(60, valgrind=300)
def test_h2o_serves_every_size_0_to_10mib_intact(tmp):
    with H2O(tmp) as srv:
        check_sizes(tmp, srv)


@timeout(60, valgrind=300)
def test_node_serves_every_size_0_to_10mib_intact_with_length_and_chunked(tmp):
    with Node(tmp) as srv:
        check_sizes(tmp, srv)
        check_sizes(tmp, srv, prefix="chunked/")


@timeout(60, valgrind=300)
def test_python_http10_serves_every_size_intact_with_length(tmp):
    with PyHttp10(tmp) as srv:
        recs = check_sizes(tmp, srv)
    assert not any(r["reused"] for r in recs.values()), (
        "an HTTP/1.0 server closes after each response; no connection can be reused: %s"
        % [r for r in recs.values() if r["reused"]][:3])


@timeout(60, valgrind=300)
def test_python_http10_close_delimited_bodies_of_every_size_are_intact(tmp):
    with PyHttp10(tmp) as srv:
        check_sizes(tmp, srv, prefix="noclen/")


@timeout(60, valgrind=300)
def test_h2o_over_h2c_serves_every_size_0_to_10mib_intact(tmp):
    # HTTP/2 by prior knowledge (issue 15): the same sizes over h2o's h2 streams
    with H2O(tmp) as srv:
        recs = check_sizes(tmp, srv, extra_args=("--http2-prior-knowledge",))
        versions = {r["http_version"] for r in recs.values()}
        assert versions == {"2"}, "h2o over h2c: http_version %s" % versions
