#!/usr/bin/env python3
"""soak.py: one long volley run over mixed faults, checked for exactly-once
records and flat memory and fds (what `make soak` runs; not in `make test`).

    python3 tools/soak.py [--volley build/volley] [-n 100000] [-c 50] [--servers 4]
                          [--read-timeout 0.5] [--seed 1] [--keep DIR]

Starts --servers instances of tests/servers/scripted.py (one thread per
connection each; several so the Python side keeps up), writes n URLs drawn
(seeded) from MIX, and runs `volley --json -i FILE` once.  While it runs,
volley's VmRSS (/proc/PID/status) and open fds (/proc/PID/fd) are sampled
with the progress (records out / n).  Then it asserts:
  - every index 0..n-1 has exactly one record, and its url is the one at that index;
  - each path's outcome is the expected one (ok or not; status and bytes for ok);
  - RSS at 100% <= RSS at 20% * 1.10 (+ 512 KiB), fds at 100% <= fds at 20% + 5;
  - volley's exit status is 1 (some URLs fail by design), not 3 (fd leak) or a signal.
Prints the samples and a summary; exit status 0 when all held, 1 otherwise.
"""
import argparse
import collections
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import threading
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPTED = os.path.join(REPO, "tests", "servers", "scripted.py")
sys.path.insert(0, os.path.dirname(SCRIPTED))
import scripted  # noqa: E402  (bodies and sizes the expectations use)

# (path, weight, expected): expected is ("ok", status, bytes, redirects) or ("error",).
MIX = [
    ("/ok", 30, ("ok", 200, len(scripted.OK_BODY), 0)),
    ("/ok?size=20000", 5, ("ok", 200, 20000, 0)),
    ("/chunked", 10, ("ok", 200, len(scripted.CHUNKED_BODY), 0)),
    ("/close", 8, ("ok", 200, len(scripted.CLOSE_BODY), 0)),
    ("/slow?ms=10", 3, ("ok", 200, len(scripted.OK_BODY), 0)),
    ("/redirect?to=/ok", 5, ("ok", 200, len(scripted.OK_BODY), 1)),
    ("/stale", 3, ("ok", 200, len(scripted.OK_BODY), 0)),
    ("/stale-idle", 3, ("ok", 200, len(scripted.OK_BODY), 0)),
    ("/204", 2, ("ok", 204, 0, 0)),
    ("/no-such-path", 2, ("ok", 404, len(b"no such path\n"), 0)),
    ("/reset", 4, ("error",)),
    ("/reset-mid-body", 3, ("error",)),
    ("/malformed", 3, ("error",)),
    ("/truncated-cl", 3, ("error",)),
    ("/truncated-chunked", 3, ("error",)),
    ("/stall", 0.5, ("error",)),
    ("/stall-body", 0.5, ("error",)),
]
RSS_SLACK = 1.10
RSS_SLACK_KIB = 512
FD_SLACK = 5


def start_server():
    p = subprocess.Popen([sys.executable, SCRIPTED, "--port", "0"], stdout=subprocess.PIPE,
                         stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
    line = p.stdout.readline()  # printed after listen(): it accepts from now on
    if not line.strip():
        p.kill()
        p.wait()
        raise RuntimeError("scripted server did not report its port")
    return p, int(line)


def stop(p):
    if p.poll() is None:
        p.terminate()
        try:
            p.wait(timeout=5)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


def sample(pid):
    """(VmRSS KiB, open fds) of pid, or None once it is gone."""
    try:
        with open("/proc/%d/status" % pid) as f:
            rss = next(int(l.split()[1]) for l in f if l.startswith("VmRSS:"))
        return rss, len(os.listdir("/proc/%d/fd" % pid))
    except (OSError, StopIteration):
        return None


def build_input(path, n, ports, rng):
    paths = [m[0] for m in MIX]
    weights = [m[1] for m in MIX]
    urls = []
    with open(path, "w") as f:
        for i in range(n):
            p = rng.choices(paths, weights)[0]
            url = "http://127.0.0.1:%d%s%si=%d" % (ports[i % len(ports)], p,
                                                  "&" if "?" in p else "?", i)
            urls.append((url, p))
            f.write(url + "\n")
    return urls


def check(records, urls):
    """Problems (strings) with the records against the URLs and MIX."""
    expected = {m[0]: m[2] for m in MIX}
    problems, seen = [], {}
    for r in records:
        i = r.get("index")
        if i in seen:
            problems.append("index %s twice" % i)
        seen[i] = r
    missing = [i for i in range(len(urls)) if i not in seen]
    extra = [i for i in seen if not (isinstance(i, int) and 0 <= i < len(urls))]
    if missing:
        problems.append("%d indexes without a record, first %s" % (len(missing), missing[:10]))
    if extra:
        problems.append("records with unknown indexes: %s" % extra[:10])
    wrong = collections.Counter()
    examples = {}
    for i, (url, path) in enumerate(urls):
        r = seen.get(i)
        if r is None:
            continue
        want = expected[path]
        if r.get("url") != url:
            why = "url %r" % r.get("url")
        elif want[0] == "error":
            why = None if (r["ok"] is False and r.get("error")) else "expected an error"
        else:
            got = (r["ok"], r["status"], r["bytes"], r["redirects"])
            why = None if got == (True,) + want[1:] else "got ok/status/bytes/redirects %s" % (
                got,)
        if why:
            wrong[path] += 1
            examples.setdefault(path, "%s: %s: %s" % (path, why, json.dumps(r)[:400]))
    for path, count in wrong.items():
        problems.append("%d x %s" % (count, examples[path]))
    return problems


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--volley", default=os.path.join(REPO, "build", "volley"))
    ap.add_argument("-n", type=int, default=100000)
    ap.add_argument("-c", type=int, default=50)
    ap.add_argument("--servers", type=int, default=4)
    ap.add_argument("--read-timeout", default="0.5")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--interval", type=float, default=0.2, help="sampling interval (s)")
    ap.add_argument("--keep", help="keep the URL list and records in this directory")
    args = ap.parse_args()

    work = args.keep or tempfile.mkdtemp(prefix="volley-soak-")
    os.makedirs(work, exist_ok=True)
    servers = []
    try:
        for _ in range(args.servers):
            servers.append(start_server())
        urls = build_input(os.path.join(work, "urls.txt"), args.n, [p for _, p in servers],
                           random.Random(args.seed))
        cmd = [args.volley, "--json", "--no-progress", "-c", str(args.c),
               "--read-timeout", args.read_timeout, "--timeout", "30",
               "-i", os.path.join(work, "urls.txt")]
        print("soak: %d URLs over %d scripted servers: %s" % (args.n, args.servers,
                                                             " ".join(cmd)), flush=True)
        env = dict(os.environ, VOLLEY_CHECK_FDS="1")
        t0 = time.monotonic()
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                stdin=subprocess.DEVNULL, env=env)
        lines, err = [], []
        reader = threading.Thread(target=lambda: lines.extend(proc.stdout), daemon=True)
        errs = threading.Thread(target=lambda: err.append(proc.stderr.read()), daemon=True)
        reader.start()
        errs.start()
        samples = []  # (seconds, progress, rss KiB, fds)
        while proc.poll() is None:
            s = sample(proc.pid)
            if s:
                samples.append((time.monotonic() - t0, len(lines) / args.n) + s)
            time.sleep(args.interval)
        reader.join(30)
        errs.join(30)
        elapsed = time.monotonic() - t0
        rc = proc.returncode
    finally:
        for p, _ in servers:
            stop(p)

    records, problems = [], []
    for line in lines:
        try:
            records.append(json.loads(line))
        except ValueError:
            problems.append("non-JSON line on stdout: %r" % line[:200])
    problems += check(records, urls)
    if rc not in (0, 1):
        problems.append("volley exited with status %s (3 = fd leak, negative = signal): %s"
                        % (rc, b"".join(err)[-500:].decode("utf-8", "replace")))

    at20 = next((s for s in samples if s[1] >= 0.2), None)
    last = samples[-1] if samples else None
    print("%8s %8s %10s %6s" % ("t (s)", "progress", "VmRSS KiB", "fds"))
    marks = [0.1 * k for k in range(11)]
    for s in samples:
        if marks and s[1] >= marks[0]:
            while marks and s[1] >= marks[0]:
                marks.pop(0)
            print("%8.1f %7.1f%% %10d %6d" % (s[0], 100 * s[1], s[2], s[3]))
    if last:
        print("%8.1f %7.1f%% %10d %6d  (last sample)" % (last[0], 100 * last[1], last[2], last[3]))
    if at20 is None or last is None or last[1] < 0.9:
        problems.append("too few samples to judge RSS and fds (run ended too fast: raise -n)")
    else:
        if last[2] > at20[2] * RSS_SLACK + RSS_SLACK_KIB:
            problems.append("RSS grew: %d KiB at %.0f%%, %d KiB at %.0f%% (allowed %d)"
                            % (at20[2], 100 * at20[1], last[2], 100 * last[1],
                               at20[2] * RSS_SLACK + RSS_SLACK_KIB))
        if last[3] > at20[3] + FD_SLACK:
            problems.append("fds grew: %d at %.0f%%, %d at %.0f%%" % (
                at20[3], 100 * at20[1], last[3], 100 * last[1]))
    outcomes = collections.Counter("ok" if r.get("ok") else "failed" for r in records)
    peak = max((s[2] for s in samples), default=0)
    print("soak: %d records (%d ok, %d failed by design) in %.1f s (%.0f req/s); exit %s; "
          "VmRSS %s KiB at 20%%, %s KiB at the end, peak %d KiB; fds %s at 20%%, %s at the end"
          % (len(records), outcomes["ok"], outcomes["failed"], elapsed, len(records) / elapsed,
             rc, at20 and at20[2], last and last[2], peak, at20 and at20[3], last and last[3]))
    if args.keep:
        with open(os.path.join(work, "records.jsonl"), "wb") as f:
            f.writelines(lines)
    else:
        shutil.rmtree(work, ignore_errors=True)
    if problems:
        print("soak: FAILED")
        for p in problems:
            print("  " + p)
        return 1
    print("soak: passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
