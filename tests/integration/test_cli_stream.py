"""Input read as it arrives: URLs on a pipe are fetched and reported while
the producer is still silent; the loop never blocks on the input."""
import json
import select
import subprocess
import time

from harness import ScriptedServer, _volley_env, check_health, volley_command, slack


def read_line(proc, timeout_s):
    """One stdout line within timeout_s, or None."""
    ready, _, _ = select.select([proc.stdout], [], [], timeout_s)
    return proc.stdout.readline() if ready else None


def test_slow_producer_gets_each_record_before_sending_the_next_url(tmp):
    with ScriptedServer(tmp) as s:
        proc = subprocess.Popen(volley_command(["--json", "-i", "-"]), stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                env=_volley_env(None), bufsize=0)
        try:
            got = []
            for i in range(3):
                proc.stdin.write(("%s\n" % s.url("/ok?i=%d" % i)).encode())
                line = read_line(proc, 5 + slack(valgrind=20))
                assert line, "no record for URL %d while the producer waits (stdin open)" % i
                got.append(json.loads(line))
            proc.stdin.close()
            rest = proc.stdout.read()
            rc = proc.wait(timeout=10 + slack(valgrind=30))
            check_health(["--json", "-i", "-"], rc, proc.stderr.read().decode("utf-8", "replace"))
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    assert [r["index"] for r in got] == [0, 1, 2] and all(r["ok"] for r in got), got
    assert rest.strip() == b"", rest
    assert rc == 0, "exit %s" % rc


def test_silent_producer_does_not_stall_fetches_in_flight(tmp):
    # One slow fetch is in flight while stdin stays silent: its record must
    # come at ~0.3 s, not when the producer finally closes at ~2 s.
    with ScriptedServer(tmp) as s:
        proc = subprocess.Popen(volley_command(["--json", "-i", "-"]), stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                env=_volley_env(None), bufsize=0)
        try:
            t0 = time.monotonic()
            proc.stdin.write(("%s\n" % s.url("/slow?ms=300")).encode())
            line = read_line(proc, 1.5 + slack(valgrind=20))
            elapsed = time.monotonic() - t0
            time.sleep(0.2)
            proc.stdin.close()
            proc.stdout.read()
            rc = proc.wait(timeout=10 + slack(valgrind=30))
            check_health(["--json", "-i", "-"], rc, proc.stderr.read().decode("utf-8", "replace"))
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    assert line, "the record waited for the input to end"
    r = json.loads(line)
    assert r["ok"] and r["index"] == 0 and elapsed >= 0.29, (r, elapsed)
    assert rc == 0, "exit %s" % rc
