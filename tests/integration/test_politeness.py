"""Politeness (issue 12 §2): --rate over the run, --per-host-rate and
--per-host-delay per host, as minimum intervals between request starts held
by loop timers; 429/503 slow that host only (a pause for Retry-After, else its
rate halves) and it recovers step by step; throttled_ms says what a fetch
waited for it.  Start times come from the servers' request logs."""
import os

from harness import SERVERS_DIR, ScriptedServer, run_volley, slack

TOL_S = 0.015  # timers are exact to a few ms; the server logs after reading the head


class SemanticsServer(ScriptedServer):
    SCRIPT = os.path.join(SERVERS_DIR, "semantics.py")


def starts(server, path_prefix="/"):
    return sorted(r["t"] for r in server.requests() if r["target"].startswith(path_prefix))


def gaps(ts):
    return [b - a for a, b in zip(ts, ts[1:])]


def run_ok(args, urls, timeout=60):
    res = run_volley(["--json", "-i", "-"] + args, input="\n".join(urls) + "\n", timeout=timeout)
    assert len(res.records) == len(urls), res.describe("one record per URL")
    return res


def test_per_host_rate_spaces_starts_to_each_host_and_hosts_run_side_by_side(tmp):
    with ScriptedServer(tmp) as a, ScriptedServer(tmp) as b:
        urls = [s.url("/ok?i=%d" % i) for i in range(15) for s in (a, b)]
        res = run_ok(["--per-host-rate", "10/s"], urls)
        ta, tb = starts(a), starts(b)
    assert all(r["ok"] for r in res.records), res.describe()
    for name, ts in (("a", ta), ("b", tb)):
        assert len(ts) == 15
        assert min(gaps(ts)) >= 0.1 - TOL_S, "%s: starts %.3f s apart" % (name, min(gaps(ts)))
        span = ts[-1] - ts[0]
        assert span < 1.4 * 1.4 + slack(2), "%s: 15 starts at 10/s took %.2f s" % (name, span)
    # side by side: b is not held behind a
    assert abs(ta[0] - tb[0]) < 0.3 + slack(1), (ta[0], tb[0])
    throttled = [r["throttled_ms"] for r in res.records]
    assert max(throttled) > 500 and min(throttled) < 50, throttled


def test_per_host_delay_is_a_minimum_interval(tmp):
    with ScriptedServer(tmp) as s:
        run_ok(["--per-host-delay", "0.2", "-c", "10"], [s.url("/ok?i=%d" % i) for i in range(6)])
        ts = starts(s)
    assert len(ts) == 6 and min(gaps(ts)) >= 0.2 - TOL_S, gaps(ts)


def test_rate_bounds_starts_over_the_whole_run(tmp):
    with ScriptedServer(tmp) as a, ScriptedServer(tmp) as b, ScriptedServer(tmp) as c:
        urls = [s.url("/ok?i=%d" % i) for i in range(8) for s in (a, b, c)]
        res = run_ok(["--rate", "1200/m"], urls)  # 20/s
        ts = sorted(starts(a) + starts(b) + starts(c))
    assert all(r["ok"] for r in res.records), res.describe()
    assert len(ts) == 24 and min(gaps(ts)) >= 0.05 - TOL_S, min(gaps(ts))
    assert ts[-1] - ts[0] >= 23 * 0.05 - TOL_S


def test_retry_after_pauses_that_host_only(tmp):
    with SemanticsServer(tmp) as a, ScriptedServer(tmp) as b:
        urls = [a.url("/flaky?key=k&fails=1&status=429&retry_after=1&i=0")]
        urls += [a.url("/flaky?key=other%d&fails=0&i=%d" % (i, i)) for i in range(1, 4)]
        urls += [b.url("/slow?ms=100&i=%d" % i) for i in range(10)]
        res = run_ok(["--per-host", "1", "--retry", "1", "-v"], urls)
        a_reqs = sorted(a.requests(), key=lambda r: r["t"])
        tb = starts(b)
    recs = res.by_index(len(urls))
    assert recs[0]["ok"] and recs[0]["attempts"] == 2, recs[0]
    t429 = a_reqs[0]["t"]
    later = [r["t"] - t429 for r in a_reqs[1:]]
    assert min(later) >= 1.0 - TOL_S, "a was asked again %.3f s after its 429" % min(later)
    assert tb[-1] - tb[0] < 1.0 + 0.3 + slack(2), "b was held too: %.2f s" % (tb[-1] - tb[0])
    assert "paused 1.0 s (Retry-After)" in res.stderr, res.stderr[-2000:]
    assert all(recs[i]["throttled_ms"] > 500 for i in (1, 2, 3)), [recs[i] for i in (1, 2, 3)]
    assert all(recs[i]["throttled_ms"] < 100 for i in range(4, 14))


def test_429_without_retry_after_halves_the_rate_then_it_recovers(tmp):
    with SemanticsServer(tmp) as s:
        urls = [s.url("/flaky?key=k&fails=1&status=429&i=0")]
        urls += [s.url("/flaky?key=ok%d&fails=0&i=%d" % (i, i)) for i in range(1, 6)]
        res = run_ok(["--per-host", "1", "-v"], urls)
        reqs = sorted(s.requests(), key=lambda r: r["t"])
    recs = res.by_index(len(urls))
    assert recs[0]["status"] == 429 and all(recs[i]["ok"] for i in range(1, 6))
    # unlimited -> 2/s: the next start is >= 0.5 s after the 429
    assert reqs[1]["t"] - reqs[0]["t"] >= 0.5 - TOL_S, reqs[1]["t"] - reqs[0]["t"]
    assert "rate unlimited 0.00/s -> 2.00/s" in res.stderr, res.stderr[-2000:]
    assert "(recovering)" in res.stderr, res.stderr[-2000:]
    g = gaps([r["t"] for r in reqs])
    assert g[-1] < g[1], "the rate did not recover: gaps %s" % g


def test_bad_rates_are_usage_errors():
    for arg in (["--rate", "0"], ["--rate", "5/d"], ["--rate", "x"], ["--per-host-rate", "-1"],
                ["--per-host-delay", "-1"]):
        res = run_volley(arg + ["http://127.0.0.1:1/"], check=False)
        assert res.rc == 2, (arg, res.describe())
