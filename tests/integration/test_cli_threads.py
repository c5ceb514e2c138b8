"""-t N: N worker threads, each with its own loop and client, share one input
and one stdout.  Records stay whole and one per index, failures included,
and a thread leaves nothing behind when it ends (issue 11 §4: the JSON
record buffer leaked 512 bytes a thread; make asan and make valgrind catch
that through run_volley's health check).

The input is partitioned by host (issue 16): each host's URLs go to one
thread, so its pool, TLS sessions and limits are the whole run's; -t 0 is
one thread per core.  Host names come from --resolve (all 127.0.0.1)."""
import os
import re

from harness import ScriptedServer, check_record, free_port, read_file_field, run_volley, timeout
import scripted

HOSTS = ["h%d.test" % i for i in range(8)]


def resolve_args(hosts, port):
    out = []
    for h in hosts:
        out += ["--resolve", "%s:%d:127.0.0.1" % (h, port)]
    return out


def worker_records(stderr):
    """-v: {worker id: records it wrote}."""
    return {int(m.group(1)): int(m.group(2))
            for m in re.finditer(r"^volley: worker (\d+): (\d+) records", stderr, re.M)}

# (path, ok?) mixed so that every thread sees successes and failures.
MIX = [("/ok", True), ("/chunked", True), ("/malformed", False), ("/ok?size=5000", True),
       ("/truncated-cl", False), ("/slow?ms=50", True), ("/nope", True), ("/close", True),
       ("/truncated-chunked", False), ("/204", True)]


def mixed_urls(s, rounds):
    """(urls, expected ok per index): MIX repeated over the HOSTS (so that
    every thread has some), and a refused port each round."""
    refused = "http://127.0.0.1:%d/refused" % free_port()
    urls, oks = [], []
    for r in range(rounds):
        for k, (path, ok) in enumerate(MIX):
            sep = "&" if "?" in path else "?"
            urls.append("http://%s:%d%s%sr=%d" % (HOSTS[k % len(HOSTS)], s.port, path, sep, r))
            oks.append(ok)
        urls.append(refused)
        oks.append(False)
    return urls, oks


def run_threads(tmp, threads, outdir=None, rounds=4):
    with ScriptedServer(tmp) as s:
        urls, oks = mixed_urls(s, rounds)
        args = ["--json", "-t", threads, "-c", 2 * threads] + resolve_args(HOSTS, s.port)
        if outdir:
            args += ["-o", outdir]
        res = run_volley(args + urls, cwd=tmp, timeout=60)
    recs = res.by_index(len(urls))
    for i, url in enumerate(urls):
        r = check_record(recs[i], url)
        assert r["ok"] is oks[i], "index %d (%s): ok %s, expected %s: %s" % (
            i, url, r["ok"], oks[i], r)
    failed = oks.count(False)
    assert res.rc == 1, res.describe("exit 1: %d of %d fetches fail" % (failed, len(urls)))
    assert "%d URLs, %d ok, %d failed" % (len(urls), len(urls) - failed, failed) in res.stderr, (
        res.describe("a summary that counts every thread's records"))
    return urls, recs


def test_two_threads_json_gives_one_whole_record_per_index_with_failures_mixed_in(tmp):
    run_threads(tmp, 2)


def test_three_threads_json_gives_one_whole_record_per_index_with_failures_mixed_in(tmp):
    run_threads(tmp, 3)


def check_saved(tmp, urls, recs):
    files = set()
    for i, url in enumerate(urls):
        r = recs[i]
        if not r["ok"]:
            continue
        data = read_file_field(r, tmp)
        if "/ok?size=5000" in url:
            assert data == b"x" * 5000, "index %d: saved %d bytes" % (i, len(data))
        elif "/chunked" in url:
            assert data == scripted.CHUNKED_BODY, "index %d: saved %r" % (i, data[:80])
        elif "/close" in url:
            assert data == scripted.CLOSE_BODY, "index %d: saved %d bytes" % (i, len(data))
        files.add(os.path.realpath(os.path.join(tmp, r["file"])))
    assert len(files) == sum(1 for r in recs.values() if r["ok"]), "two records share a file"


def test_two_threads_json_with_output_dir_saves_each_body_once(tmp):
    outdir = os.path.join(tmp, "saved")
    check_saved(tmp, *run_threads(tmp, 2, outdir=outdir))


def test_three_threads_json_with_output_dir_saves_each_body_once(tmp):
    outdir = os.path.join(tmp, "saved")
    check_saved(tmp, *run_threads(tmp, 3, outdir=outdir))


def test_two_threads_over_tls_with_names_free_their_tls_and_dns_state(tmp):
    # Each thread's client has its own TLS context (CA chain, session cache)
    # and its own resolver channel ("localhost" is looked up); all of it must
    # be gone when the thread ends.  The failures are a refused port.
    from harness import Nginx
    from tls_helpers import certs_in
    certs = certs_in(tmp)
    refused = free_port()
    with Nginx(tmp, ssl=(certs["good"], certs.key), big_files=False) as ng:
        good = ["https://localhost:%d/1k.bin?i=%d" % (ng.port, i) for i in range(12)]
        bad = ["https://localhost:%d/?i=%d" % (refused, i) for i in range(4)]
        urls = [u for pair in zip(good[:4], bad) for u in pair] + good[4:]
        res = run_volley(["--json", "-t", "2", "-c", "4", "--cacert", certs.ca] + urls,
                         env={"SSL_CERT_FILE": "", "SSL_CERT_DIR": ""}, timeout=60)
    recs = res.by_index(len(urls))
    for i, url in enumerate(urls):
        r = check_record(recs[i], url)
        assert r["ok"] is (url in good), "index %d (%s): %s" % (i, url, r)
        if r["ok"]:
            assert r["bytes"] == 1024, r
    assert res.rc == 1, res.describe("exit 1: the refused fetches fail")


# ------------------------------------------------ issue 16: hosts partitioned

def shuffled_hosts(hosts, per_host, seed=16):
    """Each host per_host times in a fixed shuffled order: no pattern a
    round-robin hand-out could line up with."""
    import random
    seq = [h for h in hosts for _ in range(per_host)]
    random.Random(seed).shuffle(seq)
    return seq


def host_of(req):
    for name, value in req["headers"]:
        if name.lower() == "host":
            return value.split(":")[0]
    return None


def nginx_run(ng, args, urls, seen):
    """volley over urls against ng; (result, the access log entries it made)."""
    res = run_volley(["--json", "-v"] + args + urls, timeout=60)
    res.by_index(len(urls))
    assert all(r["ok"] for r in res.records), res.describe("every URL ok")
    entries = ng.wait_log(seen + len(urls))[seen:]
    return res, entries


@timeout(90, valgrind=400)
def test_two_threads_per_host_1_over_8_hosts_open_8_connections_as_one_thread_does(tmp):
    # Before issue 16, two threads meant two pools: a host's connections
    # doubled (and --per-host was divided, or capped -t at --per-host).
    from harness import Nginx
    with Nginx(tmp, big_files=False) as ng:
        urls = ["http://%s:%d/1k.bin?i=%d" % (h, ng.port, i)
                for i, h in enumerate(shuffled_hosts(HOSTS, 15))]
        conns, seen = {}, 0
        for t in (1, 2):
            res, entries = nginx_run(ng, ["-t", t, "-c", 16, "--per-host", 1]
                                     + resolve_args(HOSTS, ng.port), urls, seen)
            seen += len(entries)
            conns[t] = ng.connections(entries)
            if t == 2:
                assert "volley: 2 threads (-t 2)" in res.stderr, res.describe("two threads")
                per = worker_records(res.stderr)
                assert sorted(per) == [0, 1] and min(per.values()) > 0, (
                    "both threads should own some of the 8 hosts: %s" % per)
    assert conns == {1: 8, 2: 8}, "connections at -t 1 / -t 2 with --per-host 1: %s" % conns


@timeout(90, valgrind=400)
def test_per_host_delay_holds_for_the_whole_run_at_two_threads(tmp):
    # The delay spaces starts; the server sees the bytes a little later, and
    # under valgrind (one thread at a time) a write can lag a lot, so there
    # the tolerance is wider (two threads starting one host together were
    # well under a millisecond apart).  One connection per host: no connect
    # between a start and its bytes.
    from harness import under_valgrind
    delay, tol = 0.15, (0.015 if not under_valgrind() else 0.1)
    hosts = HOSTS[:4]
    with ScriptedServer(tmp) as s:
        urls = ["http://%s:%d/ok?i=%d" % (h, s.port, i)
                for i, h in enumerate(shuffled_hosts(hosts, 6))]
        res = run_volley(["--json", "-v", "-t", "2", "-c", "8", "--per-host", "1",
                          "--per-host-delay", str(delay)]
                         + resolve_args(hosts, s.port) + urls, timeout=60)
        reqs = s.requests()
    res.by_index(len(urls))
    assert all(r["ok"] for r in res.records), res.describe("every URL ok")
    per = worker_records(res.stderr)
    assert len(per) == 2 and min(per.values()) > 0, "both threads should work: %s" % per
    starts = {}
    for r in reqs:
        starts.setdefault(host_of(r), []).append(r["t"])
    assert sorted(starts) == hosts, starts.keys()
    for h, ts in starts.items():
        ts.sort()
        gaps = [b - a for a, b in zip(ts, ts[1:])]
        assert len(ts) == 6 and min(gaps) >= delay - tol, (
            "%s: starts %.3f s apart at least, want %.2f: %s" % (h, min(gaps), delay, gaps))


@timeout(90, valgrind=400)
def test_tls_at_two_threads_does_one_full_handshake_per_host_the_rest_resume(tmp):
    from harness import Nginx
    from tls_helpers import certs_in
    certs = certs_in(tmp)
    hosts = ["localhost", "a.test", "b.test", "c.test", "d.test", "e.test"]  # the cert's names
    with Nginx(tmp, ssl=(certs["good"], certs.key), big_files=False) as ng:
        urls = ["https://%s:%d/1k.bin?i=%d" % (h, ng.port, i)
                for i, h in enumerate(shuffled_hosts(hosts, 16))]
        seen, full, resumed, conns = 0, {}, {}, {}
        for t in (1, 2):
            res, entries = nginx_run(ng, ["-t", t, "-c", 12, "--per-host", 2, "--cacert", certs.ca]
                                     + resolve_args(hosts, ng.port), urls, seen)
            seen += len(entries)
            first = {}
            for e in entries:
                first.setdefault(e["connection"], e["ssl_reused"])
            conns[t] = len(first)
            full[t] = sum(1 for v in first.values() if v != "r")
            resumed[t] = conns[t] - full[t]
    assert full == {1: 6, 2: 6}, (
        "full handshakes at -t 1 / -t 2 over 6 hosts: %s (connections %s, resumed %s)"
        % (full, conns, resumed))
    assert resumed[2] >= 1 and conns[2] <= 12, (conns, resumed)


@timeout(60, valgrind=300)
def test_t_0_runs_one_thread_per_core_this_process_may_use(tmp):
    cores = sorted(os.sched_getaffinity(0))
    with ScriptedServer(tmp) as s:
        urls = ["http://%s:%d/ok?i=%d" % (HOSTS[i % 8], s.port, i) for i in range(40)]
        args = ["--json", "-v", "-t", "0", "-c", "64"] + resolve_args(HOSTS, s.port) + urls
        res = run_volley(args, timeout=30)
        res.by_index(40)
        want = "volley: %d thread%s (-t 0: one per core" % (len(cores), "" if len(cores) == 1 else "s")
        assert want in res.stderr, res.describe(want)
        assert len(worker_records(res.stderr)) == len(cores), res.describe("a worker per core")
        if len(cores) > 1:  # the affinity mask counts, not the machine's cores
            os.sched_setaffinity(0, cores[:1])
            try:
                res = run_volley(args, timeout=30)
            finally:
                os.sched_setaffinity(0, cores)
            res.by_index(40)
            assert "volley: 1 thread (-t 0: one per core" in res.stderr, res.describe("1 thread")


@timeout(90, valgrind=600)
def test_a_list_of_one_host_at_two_threads_finishes_and_the_few_others_still_run(tmp):
    # 95% one host: its thread's queue fills and holds the reader; the other
    # thread idles, gets the few others' URLs when the reader reaches them,
    # and the run ends with one record per index.
    from harness import Nginx
    with Nginx(tmp, big_files=False) as ng:
        urls = []
        for i in range(4000):
            host = HOSTS[1 + i % 7] if i % 20 == 19 else HOSTS[0]
            urls.append("http://%s:%d/1k.bin?i=%d" % (host, ng.port, i))
        urls.append("http://%s:%d/1k.bin?i=last" % (HOSTS[0], ng.port))
        res = run_volley(["--json", "-v", "-t", "2", "-c", "4", "-i", "-"]
                         + resolve_args(HOSTS, ng.port), input="\n".join(urls) + "\n",
                         timeout=80)
    res.by_index(len(urls))
    assert all(r["ok"] for r in res.records), res.describe("every URL ok")
    per = worker_records(res.stderr)
    assert sum(per.values()) == len(urls) and len(per) == 2, per


@timeout(90, valgrind=600)
def test_resume_at_two_threads_fetches_only_what_was_not_ok(tmp):
    import json
    with ScriptedServer(tmp) as s:
        urls = []
        for i in range(60):
            path = "/malformed" if i % 10 == 3 else "/ok"
            urls.append("http://%s:%d%s?i=%d" % (HOSTS[i % 8], s.port, path, i))
        lst = os.path.join(tmp, "urls.txt")
        with open(lst, "w") as f:
            f.write("\n".join(urls) + "\n")
        rec = os.path.join(tmp, "records.jsonl")
        args = ["-t", "2", "-c", "8", "--records", rec, "-i", lst] + resolve_args(HOSTS, s.port)
        first = run_volley(args, timeout=30)
        assert first.rc == 1, first.describe("exit 1: 6 fail")
        n0 = len(s.requests())
        again = run_volley(args + ["--resume"], timeout=30)
        refetched = sorted(int(re.search(r"i=(\d+)", r["target"]).group(1))
                           for r in s.requests()[n0:])
    assert refetched == [i for i in range(60) if i % 10 == 3], refetched
    assert "resume: 54 already ok" in again.stderr, again.describe()
    with open(rec) as f:
        recs = [json.loads(line) for line in f][1:]
    assert sorted(r["index"] for r in recs) == sorted(list(range(60)) + refetched), (
        "one record per index per run")


@timeout(60, valgrind=300)
def test_sigint_at_two_threads_finishes_what_is_in_flight_and_starts_no_more(tmp):
    import json
    import signal
    import subprocess
    import time
    from harness import _volley_env, check_health, slack, volley_command, wait_until
    with ScriptedServer(tmp) as s:
        urls = ["http://%s:%d/slow?ms=300&i=%d" % (HOSTS[i % 8], s.port, i) for i in range(200)]
        lst = os.path.join(tmp, "urls.txt")
        with open(lst, "w") as f:
            f.write("\n".join(urls) + "\n")
        args = ["--json", "-t", "2", "-c", "8", "-i", lst] + resolve_args(HOSTS, s.port)
        proc = subprocess.Popen(volley_command(args), env=_volley_env(None),
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            wait_until(lambda: len(s.requests()) >= 8 or proc.poll() is not None,
                       10 + slack(20), "8 requests in flight")
            proc.send_signal(signal.SIGINT)
            t0 = time.monotonic()
            out, err = proc.communicate(timeout=10 + slack(30))
            elapsed = time.monotonic() - t0
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        sent = len(s.requests())
    err = err.decode("utf-8", "replace")
    check_health(args, proc.returncode, err)
    recs = [json.loads(line) for line in out.decode().splitlines()]
    assert proc.returncode == 130, "exit %s: %s" % (proc.returncode, err[-500:])
    assert recs and all(r["ok"] for r in recs), recs[:3]
    assert len(recs) == sent < 200, "%d records for %d requests sent" % (len(recs), sent)
    assert len({r["index"] for r in recs}) == len(recs), "an index twice"
    assert elapsed < 2 + slack(10), "%.2f s after SIGINT" % elapsed


@timeout(60, valgrind=300)
def test_progress_every_at_two_threads_counts_every_threads_records(tmp):
    with ScriptedServer(tmp) as s:
        urls = ["http://%s:%d/slow?ms=100&i=%d" % (HOSTS[i % 8], s.port, i) for i in range(40)]
        res = run_volley(["--json", "-t", "2", "-c", "4", "--progress-every", "0.2"]
                         + resolve_args(HOSTS, s.port) + urls, timeout=30)
    assert res.rc == 0 and len(res.records) == 40, res.describe("40 records")
    res.by_index(40)
    dones = [int(m.group(1)) for m in
             re.finditer(r"^volley: progress: (\d+)/(?:40|\?) done", res.stderr, re.M)]
    assert len(dones) >= 3 and dones == sorted(dones), res.describe("rising progress lines")
