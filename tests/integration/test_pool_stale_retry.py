"""The stale keep-alive retry under concurrency (found by tools/soak.py).

DESIGN.md: a request on a reused connection that dies before any response
byte is retried once on a NEW connection.  With one connection (-c 1, see
test_core_pool) that holds; with many, the retry's connect loses to "late
binding" (fetch.c adopt_idle: a connecting fetch takes an idle connection
that came free meanwhile), so the retry goes out on another pooled
connection, which may be just as stale: then the URL fails with "http:
connection closed before any response" although the server was fine."""
import random

from harness import ScriptedServer, run_volley, timeout

N = 2000


def stale_mix(tmp, stale_path):
    rng = random.Random(3)
    with ScriptedServer(tmp) as s:
        urls = [s.url("%s?i=%d" % (rng.choice([stale_path, "/ok"]), i)) for i in range(N)]
        res = run_volley(["--json", "-c", "50", "-i", "-"], input="\n".join(urls) + "\n",
                         timeout=60)
        reqs = s.requests()
    return res.by_index(N), reqs, res


@timeout(60, valgrind=300)
def test_stale_retry_under_concurrency_goes_out_on_a_new_connection(tmp):
    recs, reqs, res = stale_mix(tmp, "/stale")
    first_on_conn = {}
    for r in reqs:
        first_on_conn.setdefault(r["conn"], r["seq"])
    by_target = {}
    for r in reqs:
        by_target.setdefault(r["target"], []).append(r)
    wrong = []
    for target, sent in by_target.items():
        for prev, retry in zip(sent, sent[1:]):
            if prev["dropped"] and first_on_conn[retry["conn"]] != retry["seq"]:
                wrong.append("%s: dropped on conn %d, retried on conn %d (not new: request %d "
                             "there)" % (target, prev["conn"], retry["conn"],
                                         sum(1 for q in reqs if q["conn"] == retry["conn"]
                                             and q["seq"] <= retry["seq"])))
    failed = [r for r in recs.values() if "/ok" in r["url"] and not r["ok"]]
    assert not wrong and not failed, (
        "a request dropped by a stale connection must be retried once on a new connection: "
        "%d retries went out on a reused one and %d /ok URLs failed\n  %s\n  %s"
        % (len(wrong), len(failed), "\n  ".join(wrong[:5]),
           "\n  ".join("%s: %s (reused %s)" % (r["url"], r["error"], r["reused"])
                       for r in failed[:3])))


@timeout(60, valgrind=300)
def test_server_closing_idle_connections_under_concurrency_fails_no_url(tmp):
    # /stale-idle: the server closes right after its response; a request
    # that races the FIN onto that connection must be retried (on a new one).
    recs, _, res = stale_mix(tmp, "/stale-idle")
    failed = [r for r in recs.values() if not r["ok"]]
    assert not failed, "%d of %d URLs failed\n  %s" % (len(failed), N, "\n  ".join(
        "%s: %s (reused %s)" % (r["url"], r["error"], r["reused"]) for r in failed[:3]))
