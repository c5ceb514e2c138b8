"""Keep-alive against real servers.

1,000 GETs at -c 20 across each server's per-connection request limit
(Apache's MaxKeepAliveRequests 100, lighttpd's default 1000, node's default
of none and node with maxRequestsPerSocket 10, h2o): every record ok, every
body the right length, exactly one record per index.

The keep-alive race: one volley run reads URLs from stdin; a first batch is
fetched, then the feeder waits until the server has closed every idle
connection (short keep-alive timeout in the generated config; no ESTABLISHED
client socket to the server left in /proc/net/tcp), then writes a second
batch, which must go out on new connections (or be retried on them) without
a single failure."""
import time

from harness import timeout, wait_until
from interop import (H2O, Apache, Lighttpd, Node, client_established, file_name,
                     run_volley_fed)
import harness

N = 1000
SIZES = (1024, 16385, 0, 4097)


def thousand_gets(srv, n=N, concurrency=20):
    urls = [srv.url("/%s?i=%d" % (file_name(SIZES[i % len(SIZES)]), i)) for i in range(n)]
    res = harness.run_volley(["--json", "-c", concurrency, "-i", "-"],
                             input="".join(u + "\n" for u in urls), timeout=60)
    recs = res.by_index(n)
    bad = [r for r in recs.values()
           if not r["ok"] or r["status"] != 200 or r["bytes"] != SIZES[r["index"] % len(SIZES)]]
    assert not bad, "%s: %d of %d GETs failed or came short; first: %s\n%s" % (
        srv.NAME, len(bad), n, bad[:3], res.describe(limit=600))
    assert res.rc == 0, res.describe("exit 0")
    return recs, res


def n_gets(n):
    return n if not harness.under_valgrind() else n // 5


@timeout(60, valgrind=300)
def test_apache_1000_gets_across_max_keepalive_requests_100_all_ok(tmp):
    n = n_gets(N)
    with Apache(tmp, big=False) as srv:
        recs, res = thousand_gets(srv, n)
        log = srv.wait_access(n) and srv.access_log()
    conns = len({e["port"] for e in log})
    most = max(e["keepalive"] for e in log)
    assert len(log) == n, "Apache logged %d requests for %d URLs" % (len(log), n)
    assert conns >= n // 100 and most <= 99, (
        "MaxKeepAliveRequests 100: %d requests need >= %d connections; saw %d, at most %d "
        "requests on one" % (n, n // 100, conns, most + 1))
    reused = sum(r["reused"] for r in recs.values())
    assert reused >= n - conns, "%d connections, %d requests, only %d reused" % (
        conns, n, reused)


@timeout(60, valgrind=300)
def test_lighttpd_1000_gets_with_default_keepalive_limits_all_ok(tmp):
    with Lighttpd(tmp, big=False) as srv:
        thousand_gets(srv, n_gets(N))


@timeout(60, valgrind=300)
def test_h2o_1000_gets_all_ok(tmp):
    with H2O(tmp, big=False) as srv:
        thousand_gets(srv, n_gets(N))


@timeout(60, valgrind=300)
def test_node_1000_gets_with_default_limits_all_ok(tmp):
    with Node(tmp, big=False) as srv:
        thousand_gets(srv, n_gets(N))


@timeout(60, valgrind=300)
def test_node_1000_gets_across_max_requests_per_socket_10_all_ok(tmp):
    # At the limit node answers with "Connection: close" (and 503 to anything
    # sent after it on that socket): volley must not reuse such a connection.
    n = n_gets(N)
    with Node(tmp, big=False, max_requests_per_socket=10) as srv:
        thousand_gets(srv, n)
        seen = srv.wait_access(n)  # node logs once a response has gone
    per_socket = {}
    for r in seen:
        per_socket[r["socket"]] = per_socket.get(r["socket"], 0) + 1
    assert len(seen) == n and max(per_socket.values()) <= 10, (
        "%d requests logged; most on one socket %d" % (len(seen), max(per_socket.values())))


# ------------------------------------------------------------- the race

def race(srv, idle_timeout_s, batch=40, concurrency=10, batches=2):
    """batches of URLs in one run, each after the server dropped the idle ones."""
    urls = [[srv.url("/%s?b=%d&i=%d" % (file_name(SIZES[i % len(SIZES)]), b, i))
             for i in range(batch)] for b in range(batches)]
    closed_at = []

    def between(k):
        t0 = time.monotonic()
        # Past the server's timeout, and until its closes have reached us.
        wait_until(lambda: time.monotonic() - t0 > idle_timeout_s and
                   client_established(srv.port) == 0, 20 + idle_timeout_s,
                   "%s to close the idle keep-alive connections" % srv.NAME, interval_s=0.05)
        closed_at.append(time.monotonic() - t0)

    res = run_volley_fed(["--json", "-c", concurrency], urls, between, timeout=60)
    n = batch * batches
    recs = res.by_index(n)
    bad = [r for r in recs.values() if not r["ok"] or r["status"] != 200]
    assert not bad, ("%s: after the server closed idle connections (%s s after each batch), "
                     "%d of %d requests failed; first: %s\n%s"
                     % (srv.NAME, ["%.1f" % c for c in closed_at], len(bad), n, bad[:3],
                        res.describe(limit=600)))
    return recs, res


@timeout(60, valgrind=300)
def test_apache_second_batch_after_keepalive_timeout_all_ok(tmp):
    with Apache(tmp, big=False, keepalive_timeout_s=1) as srv:
        race(srv, 1.0)


@timeout(60, valgrind=300)
def test_lighttpd_second_batch_after_keepalive_idle_all_ok(tmp):
    with Lighttpd(tmp, big=False, keepalive_idle_s=1) as srv:
        race(srv, 1.0)


@timeout(60, valgrind=300)
def test_node_second_batch_after_keepalive_timeout_all_ok(tmp):
    with Node(tmp, big=False, keepalive_timeout_ms=500) as srv:
        race(srv, 0.5, batches=3)


@timeout(60, valgrind=300)
def test_h2o_second_batch_after_idle_timeout_all_ok(tmp):
    with H2O(tmp, big=False, idle_timeout_s=1) as srv:
        race(srv, 1.0)
