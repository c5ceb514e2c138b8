"""Review regressions: the fetch state machine's bookkeeping around the
per-host wait list, redirects across hosts, retries and running out of fds."""
import os

from harness import SERVERS_DIR, ScriptedServer, run_volley, timeout


class SemanticsServer(ScriptedServer):
    """tests/servers/semantics.py (same command line as scripted.py)."""
    SCRIPT = os.path.join(SERVERS_DIR, "semantics.py")


def _busy_host_then_redirect(a, b, *extra):
    """Two slow fetches hold/queue for b's only slot; a third is redirected
    from a to b and has to wait there behind them (about 1.4 s)."""
    urls = [b.url("/slow?ms=700&i=0"), b.url("/slow?ms=700&i=1"),
            a.url("/redirect?to=%s" % b.url("/ok"))]
    return run_volley(["--json", "-c", "3", "--per-host", "1", "--read-timeout", "1"]
                      + list(extra) + urls, timeout=20)


@timeout(30)
def test_redirect_waiting_for_a_busy_host_is_not_timed_by_the_read_timeout(tmp):
    with ScriptedServer(tmp) as a, ScriptedServer(tmp) as b:
        res = _busy_host_then_redirect(a, b)
    recs = res.by_index(3)
    assert all(r["ok"] for r in recs.values()), res.describe(
        "waiting for a per-host slot after a redirect is no read (or connect) phase")
    assert recs[2]["redirects"] == 1, recs[2]


@timeout(30)
def test_retry_of_a_fetch_waiting_at_a_host_leaves_the_wait_list(tmp):
    # --timeout fires while the redirected fetch waits at b; the retry must
    # take it off b's wait list before it may queue there again, or the list
    # is corrupt and the fetch queued behind it (i=3) is never woken: a hang.
    with ScriptedServer(tmp) as a, ScriptedServer(tmp) as b:
        urls = [b.url("/slow?ms=700&i=0"), b.url("/slow?ms=700&i=1"),
                a.url("/redirect?to=%s" % b.url("/ok")), b.url("/ok?i=3")]
        res = run_volley(["--json", "-c", "3", "--per-host", "1", "--timeout", "1",
                          "--retry", "3", "--retry-delay", "0.1"] + urls, timeout=20)
    recs = res.by_index(4)
    assert all(r["ok"] for r in recs.values()), res.describe("every URL to succeed")
    # Since the scheduler, a redirected fetch goes first in b's queue (it
    # began before i=1), so it may get b's connection before --timeout: one
    # attempt or two, but never a hang.
    assert recs[2]["attempts"] in (1, 2) and recs[2]["redirects"] == 1, recs[2]


@timeout(30)
def test_a_fetch_waiting_for_its_retry_gives_its_slot_to_a_waiter_at_once(tmp):
    # --per-host 1: /ok waits behind /reset; /reset's retry waits 3 s and
    # holds nothing meanwhile, so /ok must not wait for it.
    with ScriptedServer(tmp) as s:
        res = run_volley(["--json", "-c", "2", "--per-host", "1", "--retry", "1",
                          "--retry-delay", "3", s.url("/reset"), s.url("/ok")], timeout=20)
    recs = res.by_index(2)
    assert recs[1]["ok"], res.describe("/ok to succeed")
    assert recs[0]["attempts"] == 2, res.describe("/reset to be tried twice")
    assert recs[1]["time_ms"] < 1500, res.describe(
        "/ok served while /reset waits for its retry, not after (%.0f ms)" % recs[1]["time_ms"])


@timeout(30)
def test_redirect_after_a_stale_retry_may_reuse_the_connection_it_left(tmp):
    # --per-host 1: /stale leaves a connection that dies under the next
    # request, which is retried once on a new connection; that one answers
    # with a redirect to the same host and goes idle holding the only slot.
    # The redirect must use it, not wait for a slot nobody will free.
    with ScriptedServer(tmp) as s:
        res = run_volley(["--json", "-c", "1", "--per-host", "1", "--timeout", "5",
                          s.url("/stale"), s.url("/redirect?to=/ok")], timeout=20)
    recs = res.by_index(2)
    assert all(r["ok"] for r in recs.values()), res.describe("every URL to succeed")
    assert recs[1]["redirects"] == 1 and recs[1]["time_ms"] < 2000, recs[1]


@timeout(30)
def test_retry_after_a_stale_retry_may_reuse_the_connection_it_left(tmp):
    # As above with a 503 and --retry: the retry waited for a slot forever.
    with ScriptedServer(tmp) as s:
        res = run_volley(["--json", "-c", "1", "--per-host", "1", "--retry", "1",
                          "--retry-delay", "0.1", s.url("/stale"),
                          s.url("/redirect?code=503&to=/ok")], timeout=15)
    recs = res.by_index(2)
    assert recs[1]["status"] == 503 and recs[1]["attempts"] == 2, res.describe(
        "the 503 to be tried twice")


@timeout(30)
def test_a_huge_retry_after_is_clamped_not_overflowed(tmp):
    # Retry-After: LONG_MAX seconds; x 1e6 overflowed int64 (to -1 s, i.e.
    # "no Retry-After") and the retry came after ~1 s.  Clamped to 5 min it
    # exceeds --retry-max-time: no retry, the 503 is the answer.
    with SemanticsServer(tmp) as s:
        url = s.url("/flaky?key=big&fails=1&retry_after=9223372036854775807")
        res = run_volley(["--json", "--retry", "1", "--retry-max-time", "10", url], timeout=20)
    rec = res.one()
    assert rec["status"] == 503 and rec["attempts"] == 1, res.describe(
        "no retry within --retry-max-time 10 when the server asks for 2^63 s")


@timeout(30)
def test_per_host_limit_holds_across_threads(tmp):
    # -t 4 ran four clients, each with its own --per-host 1: 4 connections.
    with ScriptedServer(tmp) as s:
        urls = [s.url("/slow?ms=200&i=%d" % i) for i in range(6)]
        res = run_volley(["--json", "-t", "4", "-c", "8", "--per-host", "1"] + urls, timeout=20)
        conns = s.connections()
    res.by_index(6)
    assert all(r["ok"] for r in res.records), res.describe("every URL to succeed")
    assert conns == 1, "--per-host 1 with -t 4 opened %d connections" % conns
