"""tools/dask/volley-dask on one box: a Dask scheduler and workers as separate
local processes (each dask worker command in a process group of its own, like
a machine), one nginx answering 40 host names after a delay.  Whatever is
killed (a busy worker process, only its volley child, a worker's whole
process group), the driver exits 0, every index has exactly one record, no
temp file is left and nginx saw no more requests than the killed shards
explain.  Also: the commit protocol (a committed shard is skipped, a stale
temp is ignored and cleaned), the host partitioning, and volley
--die-with-parent.

Dask runs under Debian's /usr/bin/python3 (python3-distributed); the test
process itself need not import it."""
import collections
import hashlib
import importlib.machinery
import importlib.util
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time

from harness import Nginx, _volley_env, free_port, timeout, volley_bin, wait_until

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TOOL = os.path.join(REPO, "tools", "dask", "volley-dask")
SYS_PY = "/usr/bin/python3"
ECHO_MODULE = "/usr/lib/nginx/modules/ngx_http_echo_module.so"
NHOSTS = 40


def load_tool():
    """volley-dask as a module (it imports distributed only in main)."""
    loader = importlib.machinery.SourceFileLoader("volley_dask", TOOL)
    spec = importlib.util.spec_from_loader("volley_dask", loader)
    mod = importlib.util.module_from_spec(spec)
    loader.exec_module(mod)
    return mod


class DelayNginx(Nginx):
    """The suite's nginx with the echo module: /d?i=N answers after `delay` s."""

    def __init__(self, tmp, delay):
        super().__init__(tmp, big_files=False, locations=(
            'location = /d { echo_sleep %s; echo "ok"; }' % delay))

    def _config(self):
        return "load_module %s;\n" % ECHO_MODULE + super()._config()

    def requested(self):
        """{index: times requested} from the access log."""
        out = collections.Counter()
        with open(self.access_log_path) as f:
            for line in f:
                m = re.search(r'"GET /d\?i=(\d+) ', line)
                if m:
                    out[int(m.group(1))] += 1
        return out


def write_urls(tmp, port, n):
    path = os.path.join(tmp, "urls.txt")
    with open(path, "w") as f:
        f.write("# %d URLs over %d hosts\n\n" % (n, NHOSTS))
        for i in range(n):
            f.write("http://h%02d.test:%d/d?i=%d\n" % (i % NHOSTS, port, i))
            if i == 7:
                f.write("   \n# a comment does not count\n")
    return path


def resolve_args(port):
    out = []
    for h in range(NHOSTS):
        out += ["--resolve", "h%02d.test:%d:127.0.0.1" % (h, port)]
    return out


def _kill_group(pgid, sig):
    try:
        os.killpg(pgid, sig)
    except ProcessLookupError:
        pass


def _alive(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def _ppid(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            return int(f.read().rsplit(")", 1)[1].split()[1])
    except OSError:
        return None


def _children(pid):
    """Every child of pid, whichever of its threads started it."""
    out = []
    for name in os.listdir("/proc"):
        if name.isdigit() and _ppid(int(name)) == pid:
            out.append(int(name))
    return out


def _cmdline(pid):
    try:
        with open("/proc/%d/cmdline" % pid, "rb") as f:
            return f.read().split(b"\0")
    except OSError:
        return []


class Cluster:
    """A dask scheduler and n `dask worker --nworkers 1 --nthreads 1`
    commands, each in its own session (process group), all stopped by
    process group in every path."""

    def __init__(self, tmp, n):
        self.dir = os.path.join(tmp, "dask")
        os.makedirs(self.dir, exist_ok=True)
        self.n = n
        self.sched_file = os.path.join(self.dir, "scheduler.json")
        self.procs = []      # (Popen, log path); [0] is the scheduler
        self.workers = []    # the dask worker commands (nannies) still alive

    def _start(self, args, name):
        log = os.path.join(self.dir, name + ".log")
        with open(log, "ab") as f:
            p = subprocess.Popen([SYS_PY, "-m"] + args, stdout=f, stderr=f,
                                 stdin=subprocess.DEVNULL, start_new_session=True,
                                 env=_volley_env({"PYTHONUNBUFFERED": "1"}), cwd=self.dir)
        self.procs.append((p, log))
        return p

    def __enter__(self):
        try:
            port = free_port()
            self._start(["distributed.cli.dask_scheduler", "--host", "127.0.0.1", "--port",
                         str(port), "--no-dashboard", "--scheduler-file", self.sched_file],
                        "scheduler")
            wait_until(lambda: os.path.exists(self.sched_file), 60, "the scheduler file")
            for i in range(self.n):
                self.workers.append(self.start_worker(i))
            wait_until(lambda: all(self.worker_process(w) for w in self.workers) and
                       self.registered() >= self.n, 90, "%d registered workers" % self.n)
        except BaseException:
            self.stop()
            raise
        return self

    def start_worker(self, i):
        return self._start(["distributed.cli.dask_worker", "--scheduler-file",
                            self.sched_file, "--nworkers", "1", "--nthreads", "1",
                            "--no-dashboard", "--local-directory",
                            os.path.join(self.dir, "w%d" % i)], "worker%d" % i)

    def registered(self):
        n = 0
        for p, log in self.procs[1:]:
            with open(log, errors="replace") as f:
                n += f.read().count("Registered to:")
        return n

    @staticmethod
    def worker_process(nanny):
        """The worker process a dask worker command (the nanny) spawned."""
        for c in _children(nanny.pid):
            if any(b"spawn_main" in a for a in _cmdline(c)):
                return c
        return None

    def logs(self):
        out = ""
        for _, log in self.procs:
            with open(log, errors="replace") as f:
                out += "--- %s\n%s" % (os.path.basename(log), f.read()[-1500:])
        return out

    def stop(self):
        for p, _ in reversed(self.procs):
            _kill_group(p.pid, signal.SIGTERM)
        deadline = time.monotonic() + 10
        for p, _ in reversed(self.procs):
            try:
                p.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                pass
            _kill_group(p.pid, signal.SIGKILL)
            try:
                p.wait(5)
            except subprocess.TimeoutExpired:
                pass

    def __exit__(self, *exc):
        self.stop()


def running_volleys(out_dir):
    """{volley pid: (shard number, records written so far)} of the volleys
    running on this job."""
    found = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        argv = _cmdline(int(name))
        if not argv or not argv[0].endswith(b"volley") or b"--records" not in argv:
            continue
        shard = None
        for a in argv:
            m = re.search(rb"/shard-(\d+)\.jsonl$", a)
            if m and a.startswith(out_dir.encode()):
                shard = int(m.group(1))
        if shard is not None:
            try:
                with open(argv[argv.index(b"--records") + 1], "rb") as f:
                    written = f.read().count(b"\n")
            except OSError:
                written = 0
            found[int(name)] = (shard, written)
    return found


def start_driver(tmp, cluster, urls, out_dir, port, extra=()):
    log = open(os.path.join(tmp, "driver.log"), "wb")
    cmd = [SYS_PY, TOOL, "--scheduler-file", cluster.sched_file, "-i", urls, "--out-dir",
           out_dir, "--shards", "32", "--volley", volley_bin(), "--retries", "3",
           "--progress-every", "2", *extra, "--"] + resolve_args(port) + ["-c", "30"]
    p = subprocess.Popen(cmd, stdout=log, stderr=log, stdin=subprocess.DEVNULL,
                         env=_volley_env(None), start_new_session=True)
    log.close()
    return p


def finish_driver(p, tmp, cluster, limit_s):
    try:
        rc = p.wait(limit_s)
    except subprocess.TimeoutExpired:
        _kill_group(p.pid, signal.SIGKILL)
        p.wait(5)
        rc = None
    with open(os.path.join(tmp, "driver.log"), errors="replace") as f:
        log = f.read()
    assert rc == 0, "volley-dask exited %s, expected 0:\n%s\n%s" % (rc, log[-3000:],
                                                                   cluster.logs())
    return log


def check_output(out_dir, n, ng, killed_sizes, what):
    """Every index 0..n-1 exactly once over the parts, no temp file, the
    manifest agrees, and nginx saw at most n + the killed shards' requests."""
    parts = sorted(f for f in os.listdir(os.path.join(out_dir, "out")))
    temps = [f for f in parts if ".tmp" in f]
    assert not temps, "temp files left after %s: %s" % (what, temps)
    seen = collections.Counter()
    for f in parts:
        with open(os.path.join(out_dir, "out", f)) as fh:
            for line in fh:
                rec = json.loads(line)
                if "index" in rec:
                    seen[rec["index"]] += 1
                    assert rec["ok"], "a failed record after %s: %s" % (what, rec)
    missing = [i for i in range(n) if seen[i] == 0]
    dup = [i for i, c in seen.items() if c != 1]
    extra = [i for i in seen if not 0 <= i < n]
    assert not missing and not dup and not extra, (
        "after %s: %d indexes missing (%s...), %d with more than one record (%s...), %d out of "
        "range" % (what, len(missing), missing[:5], len(dup), dup[:5], len(extra)))
    with open(os.path.join(out_dir, "manifest.json")) as f:
        man = json.load(f)
    assert man["complete"] and man["records"] == n and man["ok"] == n and man["failed"] == 0, \
        {k: man[k] for k in ("complete", "records", "ok", "failed")}
    assert os.path.exists(os.path.join(out_dir, "_SUCCESS")), "no _SUCCESS"
    got = ng.requested()
    total = sum(got.values())
    bound = n + sum(killed_sizes)
    assert all(got[i] >= 1 for i in range(n)), "an index the server never saw"
    assert total <= bound, ("after %s nginx saw %d requests, more than %d URLs + %d of the "
                            "killed shards (%s)" % (what, total, n, sum(killed_sizes),
                                                    killed_sizes))
    return man


def shard_size(out_dir, k):
    with open(os.path.join(out_dir, "shards", "shard-%05d.jsonl" % k)) as f:
        return sum(1 for _ in f)


def kill_midway(tmp, n, how):
    """Run the 32-shard job on 4 workers; once some parts are committed, kill
    (how) one busy worker's process, its volley child only, or its whole
    process group.  Returns after the checks."""
    with DelayNginx(tmp, "0.02") as ng, Cluster(tmp, 4) as cl:
        urls = write_urls(tmp, ng.port, n)
        out_dir = os.path.join(tmp, "job")
        p = start_driver(tmp, cl, urls, out_dir, ng.port)
        try:
            sizes = {}

            def remaining(item):
                k, written = item
                if k not in sizes:
                    sizes[k] = shard_size(out_dir, k)
                return sizes[k] - written

            def busy():
                # midway: parts committed, and a volley with much left to do
                # (>= 2000 requests: over 1.3 s at -c 30 and 20 ms)
                parts = os.path.join(out_dir, "out")
                done = [f for f in os.listdir(parts) if f.startswith("part-")] \
                    if os.path.isdir(parts) else []
                running = running_volleys(out_dir)
                if len(done) >= 1 and len(running) >= 2 and \
                        max(remaining(v) for v in running.values()) >= 2000:
                    return running
                return None
            running = wait_until(busy, 120, "a committed part and a volley with 2000 to go")
            vpid = max(running, key=lambda v: remaining(running[v]))
            running = {v: item[0] for v, item in running.items()}
            worker = _ppid(vpid)
            nanny = next(w for w in cl.workers if cl.worker_process(w) == worker)
            if how == "volley":
                victims = {vpid: running[vpid]}
                os.kill(vpid, signal.SIGKILL)
            else:
                victims = {v: k for v, k in running.items() if _ppid(v) == worker}
                if how == "worker":
                    os.kill(worker, signal.SIGKILL)
                else:
                    _kill_group(nanny.pid, signal.SIGKILL)
            # SIGKILL, or PR_SET_PDEATHSIG when its worker went: at once,
            # not after the >= 2000 requests it had left
            wait_until(lambda: not any(_alive(v) for v in victims), 1.0,
                       "the killed volley to be gone", interval_s=0.005)
            log = finish_driver(p, tmp, cl, 240)
        finally:
            _kill_group(p.pid, signal.SIGKILL)
            p.wait(5)
        sizes = [shard_size(out_dir, k) for k in victims.values()]
        man = check_output(out_dir, n, ng, sizes, "killing the %s" % how)
        parts = {p["shard"]: p for p in man["parts"]}
        assert len(parts) == len(man["parts"]) == 22, "%d parts, expected the 22 shards " \
            "with URLs once each" % len(man["parts"])
        for k in victims.values():
            assert parts[k]["records"] == shard_size(out_dir, k), parts[k]
            # the killed attempt committed nothing: a later one did
            assert parts[k]["committed"] == "this attempt", parts[k]
        return man, log


@timeout(280)
def test_sigkill_of_a_busy_dask_worker_process_still_one_record_per_url(tmp):
    kill_midway(tmp, 40000, "worker")


@timeout(200)
def test_sigkill_of_only_the_volley_child_is_a_task_failure_dask_retries(tmp):
    kill_midway(tmp, 40000, "volley")


@timeout(200)
def test_losing_a_worker_process_group_like_a_machine_still_one_record_per_url(tmp):
    kill_midway(tmp, 40000, "group")


# ------------------------------------------------------------- small ones

def test_partitioning_puts_each_host_in_exactly_one_shard_and_numbers_like_volley(tmp):
    vd = load_tool()
    lines = []
    for i in range(600):
        host = ["A.example", "a.example", "b.example:8080", "c.example", "xn--3e0b707e.kr",
                "d.EXAMPLE."][i % 6]
        lines.append("http://%s/p%d" % (host, i))
        if i % 50 == 0:
            lines += ["", "  # comment", "\t"]
    data = ("\n".join(lines) + "\n").encode()
    out = os.path.join(tmp, "p")
    n, counts = vd.partition(data, out, 16)
    assert n == 600, "numbered %d URLs, expected 600 (blank and # lines do not count)" % n
    host_shards = collections.defaultdict(set)
    indexes = []
    for k in counts:
        with open(vd.shard_path(out, k)) as f:
            for line in f:
                req = json.loads(line)
                indexes.append(req["index"])
                host = req["url"].split("/")[2].split(":")[0].rstrip(".").lower()
                host_shards[host].add(k)
                # the index is the URL's position among the counted lines
                assert req["url"].endswith("/p%d" % req["index"]), req
    assert sorted(indexes) == list(range(600)), "each index once over the shards"
    assert all(len(s) == 1 for s in host_shards.values()), dict(host_shards)
    assert len(host_shards) == 5, sorted(host_shards)  # A.example == a.example
    # stable: the same answer in another interpreter (no hash() salt)
    code = ("import importlib.machinery as m, importlib.util as u;"
            "l=m.SourceFileLoader('v', %r); s=u.spec_from_loader('v', l); v=u.module_from_spec(s);"
            "l.exec_module(v); print(v.shard_of(b'http://c.example/x', 16))" % TOOL)
    other = subprocess.run([SYS_PY, "-c", code], stdout=subprocess.PIPE, check=True,
                           env=dict(os.environ, PYTHONHASHSEED="123"))
    assert int(other.stdout) == vd.shard_of(b"http://c.example/y", 16)
    assert host_shards["c.example"] == {int(other.stdout)}


@timeout(60)
def test_commit_protocol_skips_a_committed_shard_and_ignores_then_removes_stale_temps(tmp):
    vd = load_tool()
    with DelayNginx(tmp, "0.001") as ng:
        urls = ["http://h%02d.test:%d/d?i=%d" % (i % 6, ng.port, i) for i in range(90)]
        out = os.path.join(tmp, "job")
        n, counts = vd.partition(("\n".join(urls) + "\n").encode(), out, 2)
        os.makedirs(os.path.join(out, "out"))
        env_volley = volley_bin()
        spec = {"dir": out, "volley": env_volley, "volley_args": resolve_args(ng.port)[:12]}
        shards = sorted(counts)
        k = shards[0]
        # a stale temp of a dead attempt: a torn line, a foreign index
        stale = os.path.join(out, "out", ".part-%05d.jsonl.tmp-deadhost-1-abcd" % k)
        with open(stale, "w") as f:
            f.write('{"index":99999,"ok":true}\n{"index":1,"o')
        os.environ.update({"VOLLEY_CHECK_FDS": "1"})
        try:
            first = vd.run_shard(dict(spec, shard=k))
        finally:
            del os.environ["VOLLEY_CHECK_FDS"]
        assert first["committed"] == "this attempt", first
        assert first["records"] == counts[k] and first["ok"] == counts[k], first
        assert not os.path.exists(stale), "the stale temp of the shard was not removed"
        final = vd.part_path(out, k)
        got = sorted(json.loads(l)["index"] for l in open(final) if '"index"' in l)
        assert got == sorted(vd.read_shard_indexes(vd.shard_path(out, k))), "part != shard"
        before = sum(ng.requested().values())
        assert before == counts[k], "nginx saw %d requests for %d" % (before, counts[k])
        mtime = os.stat(final).st_mtime_ns
        again = vd.run_shard(dict(spec, shard=k))
        assert again["committed"] == "before" and again["sha256"] == first["sha256"], again
        assert os.stat(final).st_mtime_ns == mtime, "a committed part was rewritten"
        time.sleep(0.2)
        assert sum(ng.requested().values()) == before, "a committed shard was fetched again"
        # an attempt that loses the race: its copy is discarded, the part kept
        other = shards[1]
        lose = vd.part_path(out, other)
        with open(lose, "w") as f:
            f.write("")  # a committed (here: empty) part exists already
        try:
            vd.run_shard(dict(spec, shard=other))
            raise AssertionError("an existing part that does not match its shard was accepted")
        except vd.ShardError as e:
            assert "0 records for %d requests" % counts[other] in str(e), str(e)
        os.unlink(lose)
        tmpf = os.path.join(out, "out", "mine")
        with open(tmpf, "w") as f:
            f.write("x\n")
        with open(lose, "w") as f:
            f.write("y\n")
        assert vd.commit(tmpf, lose) is False and not os.path.exists(tmpf)
        with open(lose) as f:
            assert f.read() == "y\n", "commit replaced an existing part"
        # a shard whose volley crashes is a task failure (an exception), no part
        os.unlink(lose)
        try:
            vd.run_shard(dict(spec, shard=other, volley_args=["--no-such-option"]))
            raise AssertionError("volley's usage error was not a task failure")
        except vd.ShardError as e:
            assert "exit status 2" in str(e), str(e)
        assert not os.path.exists(lose)
        assert not [f for f in os.listdir(os.path.join(out, "out")) if ".tmp" in f]


@timeout(60)
def test_local_cluster_run_then_rerun_is_a_no_op_and_usage_errors_exit_2(tmp):
    with DelayNginx(tmp, "0.001") as ng:
        urls = write_urls(tmp, ng.port, 400)
        out_dir = os.path.join(tmp, "job")
        cmd = [SYS_PY, TOOL, "-i", urls, "--out-dir", out_dir, "--workers", "2", "--shards",
               "8", "--volley", volley_bin(), "--"] + resolve_args(ng.port)
        env = _volley_env(None)
        r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
                           timeout=120)
        assert r.returncode == 0, r.stderr.decode()[-3000:]
        assert b"shards," in r.stderr, "no plain progress line without a terminal"
        man = check_output(out_dir, 400, ng, [], "a LocalCluster run")
        for part in man["parts"]:
            with open(os.path.join(out_dir, part["file"]), "rb") as f:
                assert hashlib.sha256(f.read()).hexdigest() == part["sha256"], part
        seen = sum(ng.requested().values())
        r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
                           timeout=120)
        assert r.returncode == 0, r.stderr.decode()[-3000:]
        assert sum(ng.requested().values()) == seen, "the rerun fetched again"
        with open(os.path.join(out_dir, "manifest.json")) as f:
            assert {p["committed"] for p in json.load(f)["parts"]} == {"before"}
        # a failed record: exit 1, still one record per URL
        bad = os.path.join(tmp, "bad.txt")
        with open(bad, "w") as f:
            f.write("http://h01.test:%d/d?i=0\nhttp://127.0.0.1:1/refused\n" % ng.port)
        r = subprocess.run([SYS_PY, TOOL, "-i", bad, "--out-dir", os.path.join(tmp, "bad"),
                            "--workers", "1", "--volley", volley_bin(), "--"] +
                           resolve_args(ng.port), stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, env=env, timeout=120)
        assert r.returncode == 1, (r.returncode, r.stderr.decode()[-2000:])
        with open(os.path.join(tmp, "bad", "manifest.json")) as f:
            m = json.load(f)
        assert m["complete"] and m["records"] == 2 and m["failed"] == 1, m
    for args, msg in ((["--out-dir", out_dir, "--shards", "4", "-i", urls], b"another job"),
                      (["--out-dir", out_dir], b"no input"),
                      (["-i", urls, "--out-dir", out_dir, "--", "--records", "x"],
                       b"set by volley-dask"),
                      (["-i", urls, "--out-dir", out_dir, "--workers", "0"], b"--workers"),
                      (["-i", urls, "--out-dir", os.path.join(tmp, "new"), "--scheduler-file",
                        os.path.join(tmp, "none.json")], b"no scheduler file"),
                      (["-i", urls, "--out-dir", os.path.join(tmp, "new"), "--scheduler",
                        "tcp://127.0.0.1:%d" % free_port(), "--connect-timeout", "1"],
                       b"cannot reach the Dask scheduler")):
        r = subprocess.run([SYS_PY, TOOL] + args, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, timeout=60)
        assert r.returncode == 2 and msg in r.stderr, (args, r.returncode, r.stderr)


def test_volley_die_with_parent_dies_when_its_parent_is_killed(tmp):
    # a parent shell that starts volley (retrying a refused port for a long
    # time) and waits; SIGKILL the shell, volley must go too
    script = '"$1" --die-with-parent --retry 1000 --retry-delay 1 http://127.0.0.1:1/ & ' \
             'echo $! > "$2"; wait'
    pidfile = os.path.join(tmp, "volley.pid")
    sh = subprocess.Popen(["sh", "-c", script, "sh", volley_bin(), pidfile],
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                          start_new_session=True)
    try:
        wait_until(lambda: os.path.exists(pidfile) and open(pidfile).read().strip(), 10,
                   "the volley pid")
        vpid = int(open(pidfile).read())
        wait_until(lambda: any(b"--die-with-parent" in a for a in _cmdline(vpid)), 10,
                   "volley to start")
        time.sleep(0.3)
        assert _alive(vpid), "volley ended on its own"
        os.kill(sh.pid, signal.SIGKILL)
        sh.wait(5)
        wait_until(lambda: not _alive(vpid), 5, "volley to die with its parent")
    finally:
        _kill_group(sh.pid, signal.SIGKILL)
    # without the option it outlives its parent (the test can fail)
    sh = subprocess.Popen(["sh", "-c", script.replace("--die-with-parent ", ""), "sh",
                           volley_bin(), pidfile + "2"], stdout=subprocess.DEVNULL,
                          stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        wait_until(lambda: os.path.exists(pidfile + "2") and open(pidfile + "2").read().strip(),
                   10, "the second volley pid")
        vpid = int(open(pidfile + "2").read())
        time.sleep(0.3)
        os.kill(sh.pid, signal.SIGKILL)
        sh.wait(5)
        time.sleep(0.5)
        assert _alive(vpid), "volley without --die-with-parent died with its parent"
    finally:
        _kill_group(sh.pid, signal.SIGKILL)


@timeout(60)
def test_prepare_only_run_shard_and_collect_do_the_job_without_dask_as_slurm_would(tmp):
    with DelayNginx(tmp, "0.001") as ng:
        urls = write_urls(tmp, ng.port, 300)
        out_dir = os.path.join(tmp, "job")
        env = _volley_env(None)

        def tool(*args):
            return subprocess.run([SYS_PY, TOOL, "--out-dir", out_dir] + list(args),
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
                                  timeout=60)
        r = tool("-i", urls, "--shards", "16", "--prepare-only")
        assert r.returncode == 0, r.stderr
        r = tool("-i", urls, "--shards", "16", "--prepare-only", "--", *resolve_args(ng.port))
        assert r.returncode == 2 and b"another job" in r.stderr, r.stderr
        shutil.rmtree(out_dir)
        r = tool("-i", urls, "--shards", "16", "--prepare-only", "--", *resolve_args(ng.port))
        assert r.returncode == 0, r.stderr
        shards = [int(k) for k in r.stdout.split()]
        assert shards and len(shards) <= 16 and len(set(shards)) == len(shards), r.stdout
        assert sum(ng.requested().values()) == 0, "--prepare-only fetched"
        r = tool("--collect")
        assert r.returncode == 1 and b"not done" in r.stderr, r.stderr
        assert not os.path.exists(os.path.join(out_dir, "_SUCCESS"))
        for k in shards[:-1]:
            r = tool("--run-shard", str(k), "--volley", volley_bin())
            assert r.returncode == 0, r.stderr
            assert json.loads(r.stdout)["committed"] == "this attempt", r.stdout
        r = tool("--collect")
        assert r.returncode == 1, r.stderr
        with open(os.path.join(out_dir, "manifest.json")) as f:
            man = json.load(f)
        assert [s["shard"] for s in man["failed_shards"]] == shards[-1:], man["failed_shards"]
        r = tool("--run-shard", str(shards[-1]), "--volley", volley_bin())
        assert r.returncode == 0, r.stderr
        r = tool("--run-shard", str(shards[-1]), "--volley", volley_bin())  # a requeued task
        assert r.returncode == 0 and json.loads(r.stdout)["committed"] == "before", r.stdout
        r = tool("--collect")
        assert r.returncode == 0, r.stderr
        check_output(out_dir, 300, ng, [], "the Slurm-style run")
        r = tool("--run-shard", "99", "--volley", volley_bin())
        assert r.returncode == 2 and b"no URLs" in r.stderr, r.stderr
