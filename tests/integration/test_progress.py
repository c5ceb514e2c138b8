"""The progress line: drawn on a terminal only (stderr a TTY, no --json, no
-v, no --no-progress), redrawn at most 10 times a second, erased before the
summary; never a byte of it into a pipe.  The terminal is a pseudo-terminal
from script(1); stdout goes to a file."""
import os
import re
import shlex
import shutil
import subprocess

from harness import (Nginx, Skip, _volley_env, check_health, run_volley, timeout, under_valgrind,
                     volley_command)

# Every fetch takes about a second (nginx sends the first 1 KiB at once, the
# rest a second later), so a run of 20 URLs at -c 10 lasts about 2 s.
SLOW_LOCATION = r"location /slow/ { rewrite ^/slow/(.*)$ /$1 break; limit_rate 1k; }"
DRAW = re.compile(r"\r(volley: [^\r\n\x1b]*)\x1b\[K")
ERASE = "\r\x1b[K"


def on_terminal(tmp, args, timeout_s=60):
    """Run volley with stdin/stderr on a pseudo-terminal and stdout into a
    file; (exit status, what the terminal showed, stdout)."""
    if not shutil.which("script"):
        raise Skip("script(1) is not installed")
    out_path = os.path.join(tmp, "stdout.txt")
    cmd = " ".join(shlex.quote(a) for a in volley_command(args)) + " > " + shlex.quote(out_path)
    env = _volley_env({"TERM": "xterm", "COLUMNS": "120"})
    scale = 5 if under_valgrind() else 1
    p = subprocess.run(["script", "-qec", cmd, "/dev/null"], stdin=subprocess.DEVNULL,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
                       timeout=timeout_s * scale)
    with open(out_path, "rb") as f:
        out = f.read().decode("utf-8", "replace")
    screen = p.stdout.decode("utf-8", "replace")
    check_health(args, p.returncode, screen)  # stderr is the terminal
    return p.returncode, screen, out


def slow_urls(n, count):
    return [n.url("/slow/1k.bin?i=%d" % i) for i in range(count)]


@timeout(60, valgrind=300)
def test_progress_line_on_a_terminal_is_throttled_and_erased_before_the_summary(tmp):
    with Nginx(tmp, locations=SLOW_LOCATION, big_files=False) as n:
        rc, screen, out = on_terminal(tmp, ["-c", "10"] + slow_urls(n, 20))
    assert rc == 0, "exit %d; terminal:\n%r" % (rc, screen[-2000:])
    assert len(out.splitlines()) == 20, "stdout should hold the 20 records:\n" + out
    draws = DRAW.findall(screen)
    assert draws, "no progress line on the terminal:\n%r" % screen[-2000:]
    for line in draws:
        assert re.match(r"volley: \d+/20 done, \d+ in flight, \d+ failed, [\d.]+ k?B, "
                        r"[\d.]+ req/s(, ETA (\d+h\d\dm|\d+m\d\ds|\d+s))?$", line), (
            "progress line %r" % line)
    assert any(", ETA " in line for line in draws), "no ETA while the total is known: %s" % draws
    done = [int(re.match(r"volley: (\d+)/", l).group(1)) for l in draws]
    assert done == sorted(done), "done went backwards: %s" % done
    m = re.search(r"in ([\d.]+) s \(", screen)
    assert m, "no summary line:\n%r" % screen[-2000:]
    secs = float(m.group(1))
    assert secs >= 1.0, "the run was too short (%.2f s) to test the redraw rate" % secs
    assert len(draws) <= 10 * secs + 2, "%d redraws in %.2f s: more than 10 a second" % (
        len(draws), secs)
    # The line is erased before the summary: nothing of it is left beside it.
    before, summary = screen.rsplit("volley: 20 URLs", 1)
    assert before.endswith(ERASE), "progress line not erased before the summary:\n%r" % (
        before[-300:])


@timeout(60, valgrind=300)
def test_no_progress_line_into_a_pipe_or_with_json_verbose_or_no_progress(tmp):
    with Nginx(tmp, locations=SLOW_LOCATION, big_files=False) as n:
        urls = slow_urls(n, 10)
        piped = run_volley(["-c", "10"] + urls, timeout=30)
        assert piped.rc == 0, piped.describe()
        for text in (piped.stderr, piped.stdout):
            assert "\x1b[" not in text and "\r" not in text, (
                "progress drawn into a pipe:\n%r" % text[-1000:])
        for flag in ("--no-progress", "--json", "-v"):
            rc, screen, out = on_terminal(tmp, ["-c", "10", flag] + urls)
            assert rc == 0, "%s: exit %d\n%r" % (flag, rc, screen[-1500:])
            assert not DRAW.search(screen) and "\x1b[K" not in screen, (
                "%s: a progress line was drawn:\n%r" % (flag, screen[-1500:]))
