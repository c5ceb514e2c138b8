"""The scheduler (issue 12 §1): a fetch waiting for its host (--per-host, its
first TLS handshake) waits in that host's queue, not in the -c window, and
the next fetch is taken from a host with room, so a list sorted by host runs
as fast as an interleaved one and no host waits for another's backlog."""
import time

from harness import ScriptedServer, run_volley, slack

HOSTS = 4
PER_HOST_URLS = 100
DELAY_MS = 50


def _servers(tmp):
    return [ScriptedServer(tmp).start() for _ in range(HOSTS)]


def _run(servers, order, extra=()):
    urls = [s.url("/slow?ms=%d&i=%d" % (DELAY_MS, i)) for s in servers
            for i in range(PER_HOST_URLS)]
    if order == "interleaved":
        urls = [urls[h * PER_HOST_URLS + i] for i in range(PER_HOST_URLS) for h in range(HOSTS)]
    t0 = time.time()
    res = run_volley(["--json", "--per-host", "2", "-c", "100", "-i", "-"] + list(extra),
                     input="\n".join(urls) + "\n", timeout=60)
    wall = time.time() - t0
    recs = res.records
    assert len(recs) == len(urls) and all(r["ok"] for r in recs), res.describe("all ok")
    return t0, wall


def _first_start(server, t0):
    return min(r["t"] for r in server.requests()) - t0


def test_a_host_sorted_list_starts_every_host_at_once(tmp):
    servers = _servers(tmp)
    try:
        t0, wall = _run(servers, "sorted")
        # ideal: 400 x 50 ms over 4 hosts x 2 connections = 2.5 s; before
        # the scheduler the last host started only after the others' backlog
        firsts = [_first_start(s, t0) for s in servers]
        assert max(firsts) < 1.0 + slack(1.0), "first request per host at %s s" % [
            round(f, 2) for f in firsts]
        for s in servers:
            starts = sorted(r["t"] for r in s.requests())
            assert len(starts) == PER_HOST_URLS, len(starts)
        assert wall < 2.5 * 1.6 + slack(10), "sorted list took %.2f s (ideal 2.5 s)" % wall
    finally:
        for s in servers:
            s.stop()


def test_sorted_and_interleaved_lists_take_about_the_same_time(tmp):
    servers = _servers(tmp)
    try:
        _, sorted_wall = _run(servers, "sorted")
        _, mixed_wall = _run(servers, "interleaved")
    finally:
        for s in servers:
            s.stop()
    assert sorted_wall < mixed_wall * 1.3 + slack(2), (
        "sorted %.2f s vs interleaved %.2f s" % (sorted_wall, mixed_wall))


def test_per_host_limit_holds_with_a_deep_read_ahead(tmp):
    """The read-ahead is deeper than -c, yet no host ever gets more than
    --per-host connections, and every connection is reused."""
    servers = _servers(tmp)
    try:
        _run(servers, "sorted", extra=("--read-ahead", "400"))
        for s in servers:
            conns = {r["conn"] for r in s.requests()}
            assert len(conns) <= 2, "host had %d connections with --per-host 2" % len(conns)
    finally:
        for s in servers:
            s.stop()


def test_read_ahead_full_of_blocked_hosts_says_so_in_verbose(tmp):
    with ScriptedServer(tmp) as s:
        urls = [s.url("/slow?ms=20&i=%d" % i) for i in range(30)]
        res = run_volley(["--json", "--per-host", "1", "-c", "10", "--read-ahead", "5", "-v",
                          "-i", "-"], input="\n".join(urls) + "\n", timeout=60)
        assert len(res.records) == 30 and all(r["ok"] for r in res.records), res.describe()
    assert "read-ahead full" in res.stderr, res.stderr[-2000:]
    # never more than the read-ahead started at once: queue_ms grows, bounded
    assert max(r["timings"]["queue_ms"] for r in res.records) > 0
