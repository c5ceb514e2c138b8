"""SIGINT/SIGTERM: volley takes no new URL, gives the fetches in flight
--grace to finish, cancels the rest (each gets a `canceled` record), and
exits 130/143; a second signal exits at once.  --progress-every: progress
lines on stderr when it is no terminal."""
import json
import os
import re
import signal
import subprocess
import time

from harness import (ScriptedServer, _volley_env, check_health, run_volley, slack, timeout,
                     volley_command, wait_until)


def start_with_in_flight(server, args, n):
    """volley with args, once the server has read n requests from it."""
    proc = subprocess.Popen(volley_command(args), env=_volley_env(None),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        wait_until(lambda: len(server.requests()) >= n or proc.poll() is not None,
                   10 + slack(20), "%d requests in flight" % n)
    except AssertionError:
        proc.kill()
        proc.wait()
        raise
    return proc


def finish(proc, args, limit_s):
    try:
        out, err = proc.communicate(timeout=limit_s)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    err = err.decode("utf-8", "replace")
    check_health(args, proc.returncode, err)
    return proc.returncode, out.decode(), err


def list_file(tmp, urls):
    path = os.path.join(tmp, "urls.txt")
    with open(path, "w") as f:
        f.write("\n".join(urls) + "\n")
    return path


@timeout(60, valgrind=300)
def test_sigint_lets_fetches_in_flight_finish_within_the_grace_and_starts_no_more(tmp):
    with ScriptedServer(tmp) as s:
        urls = list_file(tmp, [s.url("/slow?ms=300&i=%d" % i) for i in range(100)])
        args = ["--json", "-i", urls, "-c", "5"]
        proc = start_with_in_flight(s, args, 5)
        proc.send_signal(signal.SIGINT)
        t0 = time.monotonic()
        rc, out, err = finish(proc, args, 10 + slack(30))
        elapsed = time.monotonic() - t0
        sent = len(s.requests())
    recs = [json.loads(line) for line in out.splitlines()]
    assert rc == 130, "exit %s, want 130: %s" % (rc, err[-500:])
    assert recs and all(r["ok"] for r in recs), "in-flight fetches should finish ok: %s" % recs[:3]
    assert len(recs) == sent < 100, "%d records for %d requests sent" % (len(recs), sent)
    assert len({r["index"] for r in recs}) == len(recs), "an index twice"
    assert elapsed < 2 + slack(10), "took %.2f s after SIGINT to finish 300 ms fetches" % elapsed
    assert "stopped by SIGINT" in err, err[-500:]


@timeout(60, valgrind=300)
def test_sigterm_cancels_what_outlives_the_grace_and_records_it_canceled(tmp):
    with ScriptedServer(tmp) as s:
        urls = list_file(tmp, [s.url("/stall?i=%d" % i) for i in range(10)])
        rec = os.path.join(tmp, "records.jsonl")
        # --read-ahead 4: no request waits started but unsent in a host queue
        # (those are recorded canceled too)
        args = ["--records", rec, "-i", urls, "-c", "4", "--read-ahead", "4", "--grace", "0.2"]
        proc = start_with_in_flight(s, args, 4)
        proc.send_signal(signal.SIGTERM)
        t0 = time.monotonic()
        rc, out, err = finish(proc, args, 10 + slack(30))
        elapsed = time.monotonic() - t0
    with open(rec) as f:
        lines = f.read().splitlines()
    recs = [json.loads(line) for line in lines[1:]]
    assert rc == 143, "exit %s, want 143: %s" % (rc, err[-500:])
    assert len(recs) == 4, "want a record for each of the 4 in flight, none for the rest: %s" % recs
    assert all(not r["ok"] and r["error"] == "canceled" for r in recs), recs
    assert 0.15 < elapsed < 1.5 + slack(10), "grace 0.2 s, but took %.2f s" % elapsed


@timeout(60, valgrind=300)
def test_second_sigint_exits_at_once_with_whole_records(tmp):
    with ScriptedServer(tmp) as s:
        urls = list_file(tmp, [s.url("/ok?i=%d" % i) for i in range(3)] +
                         [s.url("/stall?i=%d" % i) for i in range(3, 8)])
        rec = os.path.join(tmp, "records.jsonl")
        args = ["--records", rec, "-i", urls, "-c", "8", "--grace", "30"]
        proc = start_with_in_flight(s, args, 8)
        wait_until(lambda: open(rec).read().count("\n") >= 4, 10 + slack(20), "3 records")
        proc.send_signal(signal.SIGINT)
        time.sleep(0.2)
        assert proc.poll() is None, "the first SIGINT should wait for the grace (30 s)"
        t0 = time.monotonic()
        proc.send_signal(signal.SIGINT)
        try:
            rc = proc.wait(timeout=2 + slack(10))
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        elapsed = time.monotonic() - t0
        proc.stdout.close()
        proc.stderr.close()
    with open(rec, "rb") as f:
        raw = f.read()
    assert rc == 130, "exit %s, want 130" % rc
    assert elapsed < 1.0 + slack(5), "second SIGINT took %.2f s" % elapsed
    assert raw.endswith(b"\n"), "a torn record: %r" % raw[-100:]
    recs = [json.loads(line) for line in raw.decode().splitlines()[1:]]
    assert sorted(r["index"] for r in recs) == [0, 1, 2], recs


@timeout(60, valgrind=300)
def test_progress_every_prints_whole_lines_to_stderr_only(tmp):
    with ScriptedServer(tmp) as s:
        urls = [s.url("/slow?ms=100&i=%d" % i) for i in range(30)]
        res = run_volley(["--json", "-c", "3", "--progress-every", "0.2"] + urls)
    assert res.rc == 0, res.describe("exit 0")
    assert len(res.records) == 30, res.describe("30 records, nothing else on stdout")
    lines = [l for l in res.stderr.splitlines() if l.startswith("volley: progress: ")]
    assert len(lines) >= 3, res.describe("progress lines every 0.2 s over ~1 s")
    pat = (r"volley: progress: (\d+)/30 done, (\d+) ok, (\d+) failed, 0 skipped, \d+ in flight, "
           r"(\d+) records written, [\d.]+ k?B, [\d.]+ req/s(, ETA \d+s)?$")
    for line in lines:
        m = re.match(pat, line)
        assert m, "progress line %r does not match %r" % (line, pat)
    assert any("ETA" in l for l in lines), lines
    dones = [int(re.match(pat, l).group(1)) for l in lines]
    assert dones == sorted(dones), dones
