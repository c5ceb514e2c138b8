"""Gather at scale: -c overlaps waits, big lists give every index exactly once
over few connections, memory stays bounded by the window, and failures mixed
with successes do not lose or double a record.  Counts shrink under valgrind."""
import os

from harness import (Nginx, ScriptedServer, free_port, run_volley, sanitized, slack, timeout,
                     under_valgrind)


def scaled(n, valgrind_n):
    return valgrind_n if under_valgrind() else n


def write_list(tmp, name, urls):
    path = os.path.join(tmp, name)
    with open(path, "w") as f:
        for u in urls:
            f.write(u + "\n")
    return path


def startup_s():
    """Seconds a trivial volley run takes here (large under valgrind)."""
    return run_volley(["--version"], timeout=30).elapsed_s


def test_concurrency_overlaps_slow_responses(tmp):
    base = startup_s()
    with ScriptedServer(tmp) as s:
        urls = [s.url("/slow?ms=300&i=%d" % i) for i in range(10)]
        wide = run_volley(["--json", "-c", "10"] + urls)
        narrow = run_volley(["--json", "-c", "1"] + urls)
    wide_s, narrow_s = wide.elapsed_s, narrow.elapsed_s
    for res in (wide, narrow):
        res.by_index(10)
        assert all(r["ok"] for r in res.records), res.describe("every URL to succeed")
    assert wide_s - base < 1.5, "10 x 300 ms at -c 10 took %.2f s (start-up %.2f s)" % (
        wide_s, base)
    assert narrow_s >= 3.0, "10 x 300 ms at -c 1 took only %.2f s" % narrow_s


@timeout(120, valgrind=600)
def test_twenty_thousand_urls_each_reported_once_over_few_connections(tmp):
    n = scaled(20000, 2000)
    with Nginx(tmp, big_files=False) as ng:
        path = write_list(tmp, "urls.txt", (ng.url("/empty.bin?i=%d" % i) for i in range(n)))
        res = run_volley(["--json", "-c", "100", "-i", path], timeout=100)
        entries = ng.wait_log(n, timeout_s=10)
    recs = res.by_index(n)
    bad = [r for r in recs.values() if not r["ok"]]
    assert not bad, "%d of %d failed, first: %s" % (len(bad), n, bad[:3])
    assert all(recs[i]["url"].endswith("?i=%d" % i) for i in range(n)), "index/url mismatch"
    assert len(entries) == n, "nginx logged %d requests for %d URLs" % (len(entries), n)
    conns = ng.connections(entries)
    assert conns <= 100, "-c 100 used %d connections for %d requests" % (conns, n)
    assert res.rc == 0, res.describe("exit 0")


@timeout(120, valgrind=900)
def test_huge_list_streams_in_bounded_memory(tmp):
    n = scaled(200000, 5000)
    with Nginx(tmp, big_files=False) as ng:
        path = write_list(tmp, "urls.txt", (ng.url("/empty.bin?i=%d" % i) for i in range(n)))
        res = run_volley(["--json", "-c", "50", "-i", path], timeout=110, measure_rss=True,
                         cwd=tmp)
    recs = res.by_index(n)
    failed = sum(1 for r in recs.values() if not r["ok"])
    assert failed == 0, "%d of %d failed" % (failed, n)
    assert res.peak_rss_kib is not None, "no RSS sample of a %.1f s run" % res.elapsed_s
    if not under_valgrind() and not sanitized():  # they would measure their own memory
        assert res.peak_rss_kib < 64 * 1024, (
            "peak RSS %.1f MiB for %d URLs at -c 50" % (res.peak_rss_kib / 1024.0, n))


@timeout(90, valgrind=600)
def test_stdin_list_streams_too(tmp):
    n = scaled(30000, 1000)
    with Nginx(tmp, big_files=False) as ng:
        data = "".join(ng.url("/empty.bin?i=%d" % i) + "\n" for i in range(n))
        res = run_volley(["--json", "-c", "20", "-i", "-"], input=data, timeout=80)
    recs = res.by_index(n)
    assert all(r["ok"] for r in recs.values()), res.describe("every URL to succeed")


@timeout(90, valgrind=600)
def test_mixed_failures_and_successes_each_reported_once(tmp):
    refused = "http://127.0.0.1:%d/" % free_port()
    with Nginx(tmp, big_files=False) as ng, ScriptedServer(tmp) as s:
        kinds = [
            (ng.url("/1k.bin"), True), (ng.url("/missing"), True), (refused, False),
            (s.url("/reset"), False), (s.url("/malformed"), False), ("ftp://nope/", False),
            (s.url("/chunked"), True), (s.url("/truncated-cl"), False), ("not a url", False),
            (s.url("/ok"), True), (s.url("/204"), True), (ng.url("/empty.bin"), True),
        ]
        n = scaled(1200, 120)
        urls = [kinds[i % len(kinds)][0] for i in range(n)]
        path = write_list(tmp, "urls.txt", urls)
        res = run_volley(["--json", "-c", "40", "-i", path], timeout=80)
    recs = res.by_index(n)
    wrong = [(i, recs[i]) for i in range(n) if recs[i]["ok"] != kinds[i % len(kinds)][1]
             or recs[i]["url"] != urls[i]]
    assert not wrong, "%d records wrong, first: %s" % (len(wrong), wrong[:3])
    assert res.rc == 1, res.describe("exit 1")


def test_concurrency_window_bounds_requests_in_flight(tmp):
    with ScriptedServer(tmp) as s:
        urls = [s.url("/slow?ms=200&i=%d" % i) for i in range(12)]
        res = run_volley(["--json", "-c", "4"] + urls)
        elapsed = res.elapsed_s
        conns = s.connections()
    res.by_index(12)
    assert all(r["ok"] for r in res.records), res.describe("every URL to succeed")
    assert elapsed >= 0.55, "12 x 200 ms at -c 4 took only %.2f s" % elapsed
    assert elapsed < 0.6 + 1.5 + slack(), "12 x 200 ms at -c 4 took %.2f s" % elapsed
    assert conns <= 4, "-c 4 opened %d connections" % conns
