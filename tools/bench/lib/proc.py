"""proc.py: run one client process and measure it the same way for everyone.

Wall time is taken around fork+exec .. reap; CPU (user+sys) comes from
os.wait4's rusage of that one child (its own reaped children included), so no
other process of the benchmark is ever counted.

Peak RSS comes from /usr/bin/time -f %M, which execs the client: Linux carries
the RSS high-water mark of the process that execs into the new program's
ru_maxrss, so a client forked straight from this Python runner would report at
least the runner's own ~20 MiB.  time is ~1 MiB, below any client, and its
rusage of its one child is exact otherwise.  (Its CPU, ~1 ms, is counted.)
"""
import os
import signal
import subprocess
import threading
import time


class Measured:
    __slots__ = ("cmd", "rc", "wall", "user", "sys", "maxrss_kib", "stdout", "stderr",
                 "timed_out", "extra")

    @property
    def cpu(self):
        return self.user + self.sys


def run_measured(cmd, stdout_path, stderr_path, timeout, env=None, cwd=None, during=None):
    """Runs cmd (a list) with stdout/stderr to files.  `during`, if given, is
    called as during(stop_event) in a thread while the child runs (e.g. to poll
    the server).  Kills the child (by its PID) after `timeout` seconds."""
    m = Measured()
    m.cmd, m.stdout, m.stderr, m.timed_out, m.extra = cmd, stdout_path, stderr_path, False, None
    rss_path = stderr_path + ".rss"
    if TIME:
        cmd = [TIME, "-f", "%M", "-o", rss_path, "--"] + list(cmd)
    if env is None:
        env = clean_env()
    with open(stdout_path, "wb") as out, open(stderr_path, "wb") as err:
        t0 = time.monotonic()
        p = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=err,
                             env=env, cwd=cwd, start_new_session=True)
    killed = threading.Event()

    def kill():
        killed.set()
        try:
            os.killpg(p.pid, signal.SIGKILL)   # its own session: the client and its helpers
        except ProcessLookupError:
            pass
    timer = threading.Timer(timeout, kill)
    timer.daemon = True
    timer.start()
    stop = threading.Event()
    poller = None
    if during is not None:
        poller = threading.Thread(target=during, args=(stop,), daemon=True)
        poller.start()
    try:
        while True:
            try:
                _, status, ru = os.wait4(p.pid, 0)
                break
            except InterruptedError:
                continue
    except BaseException:
        kill()
        os.waitpid(p.pid, 0)
        raise
    finally:
        timer.cancel()
        stop.set()
    m.wall = time.monotonic() - t0
    p.returncode = os.waitstatus_to_exitcode(status)  # tell Popen it is reaped
    if poller is not None:
        poller.join(timeout=5)
    m.rc = p.returncode
    m.timed_out = killed.is_set()
    m.user, m.sys, m.maxrss_kib = ru.ru_utime, ru.ru_stime, ru.ru_maxrss
    if TIME:
        try:
            with open(rss_path) as f:
                m.maxrss_kib = int(f.read().split()[-1])
        except (OSError, ValueError, IndexError):
            m.maxrss_kib = 0
    return m


TIME = "/usr/bin/time" if os.access("/usr/bin/time", os.X_OK) else None

# Nothing in the environment may steer one client and not another: no proxies,
# no CA bundle variables (each client is given the test CA explicitly).
DROP = {"http_proxy", "https_proxy", "all_proxy", "no_proxy", "HTTP_PROXY", "HTTPS_PROXY",
        "ALL_PROXY", "NO_PROXY", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "SSL_CERT_FILE",
        "SSL_CERT_DIR", "NODE_EXTRA_CA_CERTS", "NODE_OPTIONS", "PYTHONPATH", "AWS_CA_BUNDLE",
        "NIX_SSL_CERT_FILE", "CURL_HOME", "PYTHONASYNCIODEBUG", "PYTHONDEVMODE"}


def clean_env():
    env = {k: v for k, v in os.environ.items() if k not in DROP}
    env["HOME"] = env.get("HOME", "/tmp")
    return env
