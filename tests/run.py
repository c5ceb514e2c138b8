#!/usr/bin/env python3
"""run.py: volley's test runner (what `make test` and `make asan` call).

    python3 tests/run.py --build DIR [-k SUBSTR] [--timeout S] [--keep-tmp] [-v]

1. Every cmocka unit binary DIR/tests/test_*: passes and failures are counted
   from cmocka's "[  PASSED  ] N test(s)." / "[  FAILED  ] N test(s)" lines; a
   binary that crashes or exits nonzero without a parseable count is 1 failure.
2. Every top-level function test_* in tests/integration/test_*.py, then in
   tests/interop/test_*.py (real Debian servers: Apache, lighttpd, h2o, node,
   Python's http.server), each in its
   own subprocess (its own process group) with a fresh temp dir as argument and
   working directory, and a timeout (default 60 s; a test may declare more with
   harness.timeout()).  A test that overruns gets SIGTERM (its finally blocks
   stop its servers), then its whole process group gets SIGKILL.
Prints "PASS name", "FAIL name: message" (details indented below) or
"SKIP name: reason", and ends with exactly one line "N passed, N failed"
(", N skipped" when some were).  Exit status 1 if anything failed.

VOLLEY_BIN is set to DIR/volley for the tests.  VOLLEY_VALGRIND=1 runs every
volley process under valgrind (see tests/lib/harness.py) and multiplies the
timeouts by 5.  Failed tests keep their temp dir (its path is printed).
"""
import argparse
import glob
import importlib.util
import inspect
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import traceback

TESTS_DIR = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(TESTS_DIR)
LIB_DIR = os.path.join(TESTS_DIR, "lib")
INTEGRATION_DIR = os.path.join(TESTS_DIR, "integration")
INTEROP_DIR = os.path.join(TESTS_DIR, "interop")
UNIT_TIMEOUT_S = 120
TERM_GRACE_S = 5

PASSED_RE = re.compile(r"^\[  PASSED  \] (\d+) test\(s\)\.", re.M)
FAILED_RE = re.compile(r"^\[  FAILED  \] (\d+) test\(s\)", re.M)
FAILED_NAME_RE = re.compile(r"^\[  FAILED  \] (?!\d+ test\(s\))(\S+)", re.M)


class Tally:
    def __init__(self):
        self.passed = self.failed = self.skipped = 0

    def line(self):
        s = "%d passed, %d failed" % (self.passed, self.failed)
        if self.skipped:
            s += ", %d skipped" % self.skipped
        return s


def out(line):
    print(line, flush=True)


def indent(text, limit=40):
    lines = text.rstrip("\n").splitlines()
    if len(lines) > limit:
        lines = ["... (%d lines omitted)" % (len(lines) - limit)] + lines[-limit:]
    return "\n".join("    " + l for l in lines)


def under_valgrind():
    return os.environ.get("VOLLEY_VALGRIND") == "1"


# ------------------------------------------------------------------ unit tests

def parse_cmocka(text, rc):
    """(passed, failed, failed_names) from cmocka's output; sums every group."""
    passed = sum(int(n) for n in PASSED_RE.findall(text))
    failed = sum(int(n) for n in FAILED_RE.findall(text))
    names = list(dict.fromkeys(FAILED_NAME_RE.findall(text)))  # each once, in order
    if passed == 0 and failed == 0:
        return None
    if rc != 0 and failed == 0:
        failed = 1  # crashed after the last summary, or a nonzero exit with all passing
        names.append("(exit status %d)" % rc)
    return passed, failed, names


def run_unit(path, tally, keyword):
    name = "unit/" + os.path.basename(path)
    if keyword and keyword not in name:
        return
    env = dict(os.environ, CMOCKA_MESSAGE_OUTPUT="STDOUT")
    env.pop("CMOCKA_XML_FILE", None)
    try:
        p = subprocess.run([path], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env,
                           timeout=UNIT_TIMEOUT_S * (5 if under_valgrind() else 1),
                           stdin=subprocess.DEVNULL, cwd=REPO)
        text, rc = p.stdout.decode("utf-8", "replace"), p.returncode
    except subprocess.TimeoutExpired as e:
        text, rc = (e.stdout or b"").decode("utf-8", "replace"), None
    counts = parse_cmocka(text, rc) if rc is not None else None
    if counts is None:
        tally.failed += 1
        why = "timed out after %d s" % UNIT_TIMEOUT_S if rc is None else (
            "exit status %d and no cmocka summary" % rc)
        out("FAIL %s: %s" % (name, why))
        out(indent(text))
        return
    passed, failed, names = counts
    tally.passed += passed
    tally.failed += failed
    if failed:
        out("FAIL %s: %d of %d failed: %s" % (name, failed, passed + failed, ", ".join(names)))
        out(indent(text))
    else:
        out("PASS %s (%d tests)" % (name, passed))


# ----------------------------------------------------------- integration tests

def load_module(path):
    # The test's own directory too, for helpers beside it (tests/interop/interop.py).
    for d in (LIB_DIR, os.path.dirname(os.path.abspath(path))):
        if d not in sys.path:
            sys.path.insert(0, d)
    modname = os.path.splitext(os.path.basename(path))[0]
    spec = importlib.util.spec_from_file_location(modname, path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def discover(path):
    """Top-level test_* functions of the module at path, in source order."""
    mod = load_module(path)
    fns = [f for n, f in vars(mod).items()
           if n.startswith("test_") and inspect.isfunction(f) and f.__module__ == mod.__name__]
    return sorted(fns, key=lambda f: f.__code__.co_firstlineno)


def test_timeout(fn, default_s):
    if under_valgrind():
        return getattr(fn, "valgrind_timeout", getattr(fn, "timeout", default_s) * 5)
    return getattr(fn, "timeout", default_s)


def group_members(pgid):
    """Live (non-zombie) processes in process group pgid."""
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % entry) as f:
                stat = f.read()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2:].split()  # state ppid pgrp ...
        if int(fields[2]) == pgid and fields[0] != "Z":
            pids.append(int(entry))
    return pids


def kill_group(pgid):
    """SIGKILL what is left of the test's process group; True if anything was."""
    left = group_members(pgid)
    if left:
        try:
            os.killpg(pgid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    return bool(left)


def run_integration(path, fn, tally, args, env):
    modname = os.path.splitext(os.path.basename(path))[0]
    name = "%s.%s" % (modname, fn.__name__)
    limit = test_timeout(fn, args.timeout)
    tmp = tempfile.mkdtemp(prefix="volley-%s-" % fn.__name__[:40])
    result_path = os.path.join(tmp, ".result.json")
    log_path = os.path.join(tmp, ".output.log")
    t0 = time.monotonic()
    with open(log_path, "wb") as log:
        proc = subprocess.Popen([sys.executable, os.path.abspath(__file__), "--child", path,
                                 fn.__name__, tmp, result_path],
                                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                env=env, cwd=tmp, start_new_session=True)
        timed_out = False
        try:
            proc.wait(timeout=limit)
        except subprocess.TimeoutExpired:
            timed_out = True
            proc.send_signal(signal.SIGTERM)  # the child's finally blocks stop servers
            try:
                proc.wait(timeout=TERM_GRACE_S)
            except subprocess.TimeoutExpired:
                pass
        stragglers = kill_group(proc.pid)  # anything left in its group: servers, volley
        if proc.poll() is None:
            proc.wait()
    elapsed = time.monotonic() - t0
    result = {}
    try:
        with open(result_path) as f:
            result = json.load(f)
    except (OSError, ValueError):
        pass
    with open(log_path, "rb") as f:
        output = f.read().decode("utf-8", "replace")

    status, message = result.get("status"), result.get("message", "")
    if timed_out:
        status, message = "fail", "timed out after %d s" % limit
        result["unexpected"] = True  # show where it was stopped
    elif not status:
        status = "fail"
        message = "test process exited with status %s and no result" % proc.returncode
    elif stragglers and status == "pass":
        status, message = "fail", "left processes running after it finished (killed)"

    timing = " (%.1f s)" % elapsed if args.verbose else ""
    if status == "pass":
        tally.passed += 1
        out("PASS %s%s" % (name, timing))
    elif status == "skip":
        tally.skipped += 1
        out("SKIP %s: %s" % (name, message))
    else:
        tally.failed += 1
        first, _, rest = message.partition("\n")
        out("FAIL %s: %s%s" % (name, first, timing))
        show_tb = args.verbose or result.get("unexpected")  # an exception, not an assert
        details = rest + ("\n" + result.get("traceback", "") if show_tb else "")
        if output.strip() and (args.verbose or not result):
            details += "\n--- test output ---\n" + output
        if details.strip():
            out(indent(details, 60))
        out("    (temp dir kept: %s)" % tmp)
    if args.verbose and status == "pass" and output.strip():
        out(indent(output, 20))
    if status != "fail" and not args.keep_tmp:
        shutil.rmtree(tmp, ignore_errors=True)


def child_main(path, func_name, tmp, result_path):
    """Runs one test in this (child) process and writes its result as JSON."""
    class Terminated(BaseException):
        pass

    def on_term(signum, frame):
        raise Terminated("terminated by the runner (timeout)")

    signal.signal(signal.SIGTERM, on_term)
    result = {"status": "fail", "message": "did not finish"}
    try:
        mod = load_module(path)
        fn = getattr(mod, func_name)
        harness = sys.modules.get("harness")
        skip_exc = getattr(harness, "Skip", None)
        try:
            if inspect.signature(fn).parameters:
                fn(tmp)
            else:
                fn()
            result = {"status": "pass"}
        except Exception as e:
            if skip_exc is not None and isinstance(e, skip_exc):
                result = {"status": "skip", "message": str(e)}
            elif isinstance(e, AssertionError):
                result = {"status": "fail", "message": str(e) or "assertion failed",
                          "traceback": traceback.format_exc()}
            else:
                result = {"status": "fail", "message": "%s: %s" % (type(e).__name__, e),
                          "traceback": traceback.format_exc(), "unexpected": True}
    except Terminated as e:  # the traceback says where it hung
        result = {"status": "fail", "message": str(e), "traceback": traceback.format_exc(),
                  "unexpected": True}
    except BaseException as e:
        result = {"status": "fail", "message": "%s: %s" % (type(e).__name__, e),
                  "traceback": traceback.format_exc()}
    finally:
        with open(result_path, "w") as f:
            json.dump(result, f)
    # atexit in harness stops any server the test forgot.
    sys.exit(0)


def main():
    if len(sys.argv) == 6 and sys.argv[1] == "--child":
        child_main(*sys.argv[2:])
        return
    ap = argparse.ArgumentParser(description="volley test runner")
    ap.add_argument("--build", default="build", help="build directory (default: build)")
    ap.add_argument("-k", dest="keyword", help="only tests whose name contains this")
    ap.add_argument("--timeout", type=float, default=60, help="default per-test timeout (s)")
    ap.add_argument("--keep-tmp", action="store_true", help="keep every test's temp dir")
    ap.add_argument("--no-unit", action="store_true", help="skip the cmocka binaries")
    ap.add_argument("--no-integration", action="store_true", help="skip tests/integration")
    ap.add_argument("--integration-dir", default=INTEGRATION_DIR,
                    help="where test_*.py live (default: tests/integration)")
    ap.add_argument("--no-interop", action="store_true", help="skip tests/interop")
    ap.add_argument("-v", "--verbose", action="store_true", help="timings, tracebacks, output")
    args = ap.parse_args()

    build = os.path.abspath(args.build)
    env = dict(os.environ)
    env["VOLLEY_BIN"] = os.path.join(build, "volley")
    env["VOLLEY_BUILD"] = build
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    sys.dont_write_bytecode = True
    tally = Tally()
    t0 = time.monotonic()

    if not args.no_unit:
        for path in sorted(glob.glob(os.path.join(build, "tests", "test_*"))):
            name = os.path.basename(path)
            if os.path.isfile(path) and os.access(path, os.X_OK) and "." not in name:
                run_unit(path, tally, args.keyword)

    if not args.no_integration:
        os.environ.update({"VOLLEY_BIN": env["VOLLEY_BIN"], "VOLLEY_BUILD": build})
        dirs = [args.integration_dir] + ([] if args.no_interop else [INTEROP_DIR])
        paths = [p for d in dirs for p in sorted(glob.glob(os.path.join(d, "test_*.py")))]
        for path in paths:
            modname = os.path.splitext(os.path.basename(path))[0]
            try:
                fns = discover(path)
            except Exception as e:
                if not args.keyword or args.keyword in modname:
                    tally.failed += 1
                    out("FAIL %s: cannot import: %s: %s" % (modname, type(e).__name__, e))
                    out(indent(traceback.format_exc()))
                continue
            for fn in fns:
                if args.keyword and args.keyword not in "%s.%s" % (modname, fn.__name__):
                    continue
                run_integration(path, fn, tally, args, env)

    if args.verbose:
        out("# %.1f s" % (time.monotonic() - t0))
    out(tally.line())
    sys.exit(1 if tally.failed else 0)


if __name__ == "__main__":
    main()
