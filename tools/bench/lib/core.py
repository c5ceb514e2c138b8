"""core.py: the clients, one job at a time, rounds in alternation, verification,
and the per-section statistics (medians and pair-by-pair ratios to volley)."""
import json
import os
import re
import shutil
import statistics
import sys

from proc import run_measured

HERE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))   # tools/bench
CLIENTS_DIR = os.path.join(HERE, "clients")
PY = "/usr/bin/python3"   # Debian's python: python3-aiohttp and python3-requests live there


def log(msg):
    print(msg, file=sys.stderr, flush=True)


class Job:
    """The work one client run does: a URL list and how to fetch it."""

    def __init__(self, name, urls_path, n, nbytes, concurrency, resolve=(), cacert=None,
                 save=False, stream=False, timeout=300, server=None):
        self.name, self.urls, self.n, self.bytes = name, urls_path, n, nbytes
        self.server = server   # the Nginx, to count the connections each client made
        self.concurrency, self.resolve, self.cacert = concurrency, list(resolve), cacert
        self.save, self.stream, self.timeout = save, stream, timeout
        self._curl_cfg = {}

    def curl_config(self, outdir):
        """curl -K file: one url/output pair per URL (curl's way to take a list).
        Written before the measured run, once per job (and output dir)."""
        key = outdir or ""
        if key not in self._curl_cfg:
            path = "%s.curl%s.cfg" % (self.urls, "-save" if outdir else "")
            with open(self.urls) as src, open(path, "w") as out:
                i = 0
                for line in src:
                    line = line.strip()
                    if not line or line.startswith("#"):
                        continue
                    out.write('url = "%s"\noutput = "%s"\n'
                              % (line, os.path.join(outdir, str(i)) if outdir else "/dev/null"))
                    i += 1
            self._curl_cfg[key] = path
        return self._curl_cfg[key]


class Client:
    """A client as its users run it.  cmd() builds the command line; count()
    reads back how many URLs succeeded and how many body bytes came.
    `job`, when set, replaces the section's job for this client (seed's
    one-URL critical path); `concurrency` overrides the job's (volley -c 1)."""
    needs = ()        # executables that must exist
    job = None
    concurrency = None
    tls = True        # False: cannot do https (volley before its TLS landed)

    def __init__(self, name, job=None, concurrency=None):
        self.name, self.job, self.concurrency = name, job, concurrency

    def conc(self, job):
        return self.concurrency or job.concurrency

    def available(self):
        return all(shutil.which(x) or os.path.exists(x) for x in self.needs)


class Volley(Client):
    def __init__(self, name, binary, extra=(), **kw):
        super().__init__(name, **kw)
        self.binary, self.extra = binary, list(extra)
        self.needs = (binary,)

    def cmd(self, job, outdir):
        c = [self.binary, "-c", str(self.conc(job)), "-i", job.urls, "--json", "--no-progress"]
        for r in job.resolve:
            c += ["--resolve", r]
        if job.cacert:
            c += ["--cacert", job.cacert]
        if outdir:
            c += ["-o", outdir]
        return c + self.extra

    def count(self, stdout_path):
        ok = nbytes = 0
        first_err = None
        rx = re.compile(rb'"bytes":\s*(\d+)')
        with open(stdout_path, "rb") as f:
            for line in f:
                if b'"ok":true' in line or b'"ok": true' in line:
                    ok += 1
                    m = rx.search(line)
                    nbytes += int(m.group(1)) if m else 0
                elif first_err is None and line.strip():
                    first_err = line.decode(errors="replace").strip()[:300]
        return ok, nbytes, first_err


class Curl(Client):
    needs = ("curl",)

    def cmd(self, job, outdir):
        c = ["curl", "-q", "-s", "-S", "--parallel", "--parallel-immediate",
             "--parallel-max", str(min(self.conc(job), 300)),
             "-w", "%{http_code} %{size_download}\\n", "-K", job.curl_config(outdir)]
        for r in job.resolve:
            c += ["--resolve", r]
        if job.cacert:
            c += ["--cacert", job.cacert]
        return c

    def count(self, stdout_path):
        ok = nbytes = 0
        first_err = None
        with open(stdout_path, "rb") as f:
            for line in f:
                parts = line.split()
                if len(parts) == 2 and parts[0] == b"200":
                    ok += 1
                    nbytes += int(parts[1])
                elif first_err is None:
                    first_err = line.decode(errors="replace").strip()[:300]
        return ok, nbytes, first_err


class Script(Client):
    """One of clients/*.py|mjs: prints {"ok","failed","bytes"} as its last line."""

    def __init__(self, name, interpreter, script, extra=(), **kw):
        super().__init__(name, **kw)
        self.interpreter, self.script = interpreter, os.path.join(CLIENTS_DIR, script)
        self.needs = (interpreter,)
        self.extra = list(extra)

    def cmd(self, job, outdir):
        c = [self.interpreter, self.script, "-i", job.urls, "-c", str(self.conc(job))]
        for r in job.resolve:
            c += ["--resolve", r]
        if job.cacert:
            c += ["--cacert", job.cacert]
        if outdir:
            c += ["-o", outdir]
        if job.stream:
            c += ["--stream"]
        return c + self.extra

    def count(self, stdout_path):
        with open(stdout_path, "rb") as f:
            lines = f.read().decode(errors="replace").strip().splitlines()
        try:
            d = json.loads(lines[-1])
            return d["ok"], d["bytes"], None if not d["failed"] else "%d failed" % d["failed"]
        except (IndexError, ValueError, KeyError):
            return 0, 0, "no summary line"


class Requests(Script):
    def available(self):
        return super().available() and _py_has("requests")


class Aiohttp(Script):
    def available(self):
        return super().available() and _py_has("aiohttp")


_py_mods = {}


def _py_has(mod):
    if mod not in _py_mods:
        import subprocess
        _py_mods[mod] = subprocess.run([PY, "-c", "import " + mod], stdout=subprocess.DEVNULL,
                                       stderr=subprocess.DEVNULL, timeout=60).returncode == 0
    return _py_mods[mod]


class Wrk(Client):
    """wrk -tT -cN -dSECS on one URL: the ceiling, duration-based."""
    needs = ("wrk",)

    def __init__(self, name, url, duration, threads=1):
        super().__init__(name)
        self.url, self.duration, self.threads = url, duration, threads

    def cmd(self, job, outdir):
        return ["wrk", "-t%d" % self.threads, "-c%d" % self.conc(job), "-d%ds" % self.duration,
                self.url]

    def count(self, stdout_path):
        text = open(stdout_path, errors="replace").read()
        m = re.search(r"(\d+) requests in ([\d.]+)(\w+), ([\d.]+)(\w+) read", text)
        if not m:
            return 0, 0, "no wrk summary"
        err = None
        for bad in ("Non-2xx", "Socket errors"):
            if bad in text:
                err = [l for l in text.splitlines() if bad in l][0].strip()
        return int(m.group(1)), None, err


# ---------------------------------------------------------------------------

class Run:
    """One measured run of one client."""

    def __init__(self, client, rnd, m, ok, n, nbytes, error):
        self.client, self.round, self.m = client, rnd, m
        self.ok, self.n, self.bytes, self.error = ok, n, nbytes, error

    def metric(self, name):
        m = self.m
        return {"wall": m.wall, "rps": self.n / m.wall, "mbps": (self.bytes or 0) / m.wall / 1e6,
                "cpu": m.cpu, "cpu_us": m.cpu / max(self.n, 1) * 1e6,
                "rss": m.maxrss_kib / 1024.0}[name]

    def as_dict(self):
        return {"client": self.client, "round": self.round, "ok": self.ok, "n": self.n,
                "bytes": self.bytes, "error": self.error, "wall": self.m.wall,
                "user": self.m.user, "sys": self.m.sys, "maxrss_kib": self.m.maxrss_kib,
                "rc": self.m.rc, "cmd": self.m.cmd, "extra": self.m.extra}


def run_one(ctx, client, job, rnd, during=None):
    """Runs client on job once; verifies every URL succeeded with every byte."""
    job = client.job or job
    tag = "%s-%s-r%d" % (job.name, re.sub(r"[^A-Za-z0-9]+", "_", client.name), rnd)
    outdir = None
    if job.save:
        outdir = os.path.join(ctx.scratch, "out-" + tag)
        shutil.rmtree(outdir, ignore_errors=True)
        os.makedirs(outdir)
    cmd = client.cmd(job, outdir)
    so = os.path.join(ctx.logs, tag + ".out")
    se = os.path.join(ctx.logs, tag + ".err")
    snap = job.server.snapshot() if job.server else None
    m = run_measured(cmd, so, se, job.timeout, during=during)
    if snap is not None:
        m.extra = job.server.since(snap)
    n, nbytes, err = client.count(so)
    ok = True
    if m.timed_out:
        ok, err = False, "timed out after %ds" % job.timeout
    elif isinstance(client, Wrk):
        ok = err is None and m.rc == 0 and n > 0
    else:
        if n != job.n:
            ok, err = False, "%d of %d URLs ok (%s)" % (n, job.n, err or "rc=%d" % m.rc)
        elif job.bytes is not None and nbytes != job.bytes:
            ok, err = False, "%d body bytes, expected %d" % (nbytes, job.bytes)
        elif m.rc != 0:
            ok, err = False, "exit status %d" % m.rc
    if ok and outdir:
        files = os.listdir(outdir)
        size = sum(os.path.getsize(os.path.join(outdir, f)) for f in files)
        if len(files) != job.n or (job.bytes is not None and size != job.bytes):
            ok, err = False, "saved %d files / %d bytes, expected %d / %s" % (
                len(files), size, job.n, job.bytes)
    if outdir:
        shutil.rmtree(outdir, ignore_errors=True)
    if not ok:
        try:
            tail = open(se, errors="replace").read().strip().splitlines()[-3:]
        except OSError:
            tail = []
        err = "%s%s" % (err, (" | " + " / ".join(tail)) if tail else "")
    r = Run(client.name, rnd, m, ok, n, nbytes, err)
    log("  [%s] round %d %-22s %s wall %.3fs cpu %.3fs rss %.1f MiB%s" % (
        job.name, rnd + 1, client.name, "ok  " if ok else "FAIL", m.wall, m.cpu,
        m.maxrss_kib / 1024.0, "" if ok else "  -- " + err))
    return r


class Section:
    """One table: several clients on the same job, alternated over rounds."""

    def __init__(self, key, title, job, describe, columns=("wall", "rps", "cpu", "cpu_us", "rss"),
                 ratios=("wall", "rps", "cpu", "rss"), ref="volley"):
        self.key, self.title, self.job, self.describe = key, title, job, describe
        self.columns, self.ratio_cols, self.ref = columns, ratios, ref
        self.clients = []            # names in table order
        self.na = {}                 # name -> why it cannot take part
        self.runs = {}               # name -> [Run]
        self.notes = []

    def add_na(self, name, why):
        self.clients.append(name)
        self.na[name] = why

    def ok_runs(self, name):
        return [r for r in self.runs.get(name, []) if r.ok]

    def median(self, name, metric):
        vals = [r.metric(metric) for r in self.ok_runs(name)]
        return statistics.median(vals) if vals else None

    def ratio(self, name, metric):
        """Median over rounds of (client / ref) where both ran ok in that round."""
        ref = {r.round: r for r in self.ok_runs(self.ref)}
        vals = [r.metric(metric) / ref[r.round].metric(metric)
                for r in self.ok_runs(name) if r.round in ref and ref[r.round].metric(metric) > 0]
        return statistics.median(vals) if vals else None


def run_rounds(ctx, section, clients, rounds, during=None):
    """A B C .. then .. C B A: every client once per round, order reversed on
    odd rounds so a slow drift of the machine lands on everyone alike."""
    live = []
    for c in clients:
        section.clients.append(c.name)
        why = ctx.unavailable(c, section)
        if why:
            section.na[c.name] = why
        else:
            live.append(c)
            section.runs[c.name] = []
    for rnd in range(rounds):
        order = live if rnd % 2 == 0 else live[::-1]
        for c in order:
            section.runs[c.name].append(run_one(ctx, c, section.job, rnd, during=during))
    return section
