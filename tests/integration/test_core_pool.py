"""The keep-alive pool: connections are reused, bounded by -c and --per-host,
not reused after "Connection: close", and a stale pooled connection that dies
before any response byte costs exactly one retry on a new connection."""
from harness import Nginx, ScriptedServer, run_volley, slack


def nginx_run(tmp, n, *options):
    """n GETs of /1k.bin to a fresh nginx: (records by index, access log, result)."""
    with Nginx(tmp, big_files=False) as ng:
        urls = [ng.url("/1k.bin?i=%d" % i) for i in range(n)]
        res = run_volley(["--json"] + list(options) + urls)
        entries = ng.wait_log(n)
    return res.by_index(n), entries, res


def distinct_connections(entries):
    return len({e["connection"] for e in entries})


def test_many_urls_to_one_host_reuse_at_most_concurrency_connections(tmp):
    recs, entries, res = nginx_run(tmp, 200, "-c", "10")
    assert all(r["ok"] and r["bytes"] == 1024 for r in recs.values()), (
        res.describe("every URL to succeed"))
    conns = distinct_connections(entries)
    assert len(entries) == 200, "nginx saw %d requests for 200 URLs" % len(entries)
    assert conns <= 10, "-c 10 opened %d connections for 200 requests" % conns
    reused = sum(1 for r in recs.values() if r["reused"])
    assert reused >= 200 - conns, (
        "%d connections served 200 requests, so at least %d were reused; records say %d"
        % (conns, 200 - conns, reused))


def test_sequential_requests_share_one_connection(tmp):
    recs, entries, res = nginx_run(tmp, 5, "-c", "1")
    assert distinct_connections(entries) == 1, entries
    assert [e["connection_requests"] for e in entries] == [1, 2, 3, 4, 5], entries
    assert [recs[i]["reused"] for i in range(5)] == [False, True, True, True, True], recs


def test_per_host_caps_connections(tmp):
    recs, entries, res = nginx_run(tmp, 50, "-c", "10", "--per-host", "2")
    assert all(r["ok"] for r in recs.values()), res.describe("every URL to succeed")
    conns = distinct_connections(entries)
    assert conns <= 2, "--per-host 2 opened %d connections" % conns


def test_per_host_caps_requests_in_flight(tmp):
    with ScriptedServer(tmp) as s:
        urls = [s.url("/slow?ms=300&i=%d" % i) for i in range(6)]
        res = run_volley(["--json", "-c", "10", "--per-host", "2"] + urls)
        elapsed = res.elapsed_s
        conns = s.connections()
    res.by_index(6)
    assert all(r["ok"] for r in res.records), res.describe("every URL to succeed")
    assert conns <= 2, "--per-host 2 opened %d connections" % conns
    assert elapsed >= 0.85, "6 x 300 ms over 2 connections took only %.2f s" % elapsed
    queued = [r for r in res.records if r["timings"]["queue_ms"] >= 250]
    assert len(queued) >= 2, "at least 4 requests had to wait for a connection: %s" % [
        r["timings"]["queue_ms"] for r in res.records]


def test_connection_close_response_is_not_reused(tmp):
    with ScriptedServer(tmp) as s:
        urls = [s.url("/close"), s.url("/ok"), s.url("/ok")]
        res = run_volley(["--json", "-c", "1"] + urls)
        conns = s.connections()
        reqs = s.requests()
    recs = res.by_index(3)
    assert all(r["ok"] for r in recs.values()), res.describe("every URL to succeed")
    assert conns == 2, "expected /close alone on its connection, then one more; got %d" % conns
    assert not any(r.get("dropped") for r in reqs), reqs
    assert recs[1]["reused"] is False and recs[2]["reused"] is True, recs


def test_stale_keep_alive_connection_is_retried_once_on_a_new_one(tmp):
    with ScriptedServer(tmp) as s:
        res = run_volley(["--json", "-c", "1", s.url("/stale"), s.url("/ok")])
        reqs = s.requests()
    recs = res.by_index(2)
    assert recs[0]["ok"] and recs[1]["ok"], res.describe(
        "both ok: the stale connection's request retried on a new one")
    assert recs[1]["bytes"] > 0 and res.rc == 0, recs[1]
    ok_reqs = [(r["conn"], r["dropped"]) for r in reqs if r["target"] == "/ok"]
    stale_conn = [r["conn"] for r in reqs if r["target"] == "/stale"][0]
    retry_conn = ok_reqs[-1][0]
    assert ok_reqs == [(stale_conn, True), (retry_conn, False)] and retry_conn != stale_conn, (
        "expected /ok first on the stale connection (dropped), then once on a new one: %s" % reqs)
    assert recs[1]["reused"] is False, "the retry went out on a new connection: %s" % recs[1]


def test_stale_retry_is_not_repeated(tmp):
    # The retried request fails too (reset on a fresh connection): that is final.
    with ScriptedServer(tmp) as s:
        res = run_volley(["--json", "-c", "1", s.url("/stale"), s.url("/reset")])
        elapsed = res.elapsed_s
        reqs = s.requests()
    recs = res.by_index(2)
    assert recs[0]["ok"] and not recs[1]["ok"] and "reset" in recs[1]["error"], (
        res.describe("/stale ok, then /reset failing with a reset error"))
    sent = [r["dropped"] for r in reqs if r["target"] == "/reset"]
    assert sent == [True, False], "expected /reset sent twice (stale, then one retry): %s" % reqs
    assert elapsed < 5 + slack(), elapsed


def test_server_closing_an_idle_connection_is_survived(tmp):
    with ScriptedServer(tmp) as s:
        urls = [s.url("/stale-idle"), s.url("/ok"), s.url("/stale-idle"), s.url("/ok")]
        res = run_volley(["--json", "-c", "1"] + urls)
    recs = res.by_index(4)
    assert all(r["ok"] for r in recs.values()), res.describe("every URL to succeed")
