"""scenarios.py: the eight scenarios.  Each one starts its own nginx (stopped by
PID when it ends, whatever happens), writes its URL lists, runs the clients in
alternation and returns its sections (tables) for the report."""
import os
import re
import shutil
import subprocess
import time

from core import PY, Aiohttp, Curl, Job, Requests, Script, Section, Volley, Wrk, log, run_one, run_rounds
from nginx import DELAY_BODY

KB1 = 1024
MiB = 1 << 20
GiB = 1 << 30

FULL = dict(seed_rounds=5, many_n=100_000, many_rounds=3, wrk_secs=5, tls_n=5_000, tls_rounds=3,
            big_total=GiB, big_rounds=3, idle_n=10_000, idle_base=100, idle_rounds=1,
            idle_delay_plain=6, idle_delay_tls=20, list_small=10_000, list_big=1_000_000,
            list_rounds=1, sorted_per_host=100, sorted_rounds=3, polite_hosts=50,
            polite_per_host=200, polite_rounds=1, hosts_small=100, hosts_big=10_000)
FULL.update(proxy_n=20_000, proxy_rounds=3)
QUICK = dict(seed_rounds=3, many_n=20_000, many_rounds=2, wrk_secs=3, tls_n=2_000, tls_rounds=2,
             big_total=256 * MiB, big_rounds=3, idle_n=1_000, idle_base=100, idle_rounds=1,
             idle_delay_plain=3, idle_delay_tls=5, list_small=10_000, list_big=100_000,
             list_rounds=1, sorted_per_host=50, sorted_rounds=2, polite_hosts=10,
             polite_per_host=40, polite_rounds=1, hosts_small=100, hosts_big=1_000)
QUICK.update(proxy_n=5_000, proxy_rounds=2)

SEED_HOSTS = ["a.seed.test", "b.seed.test", "c.seed.test"]
TLS_HOSTS = ["h%02d.tls.test" % i for i in range(50)]
IDLE_HOST = "idle.test"
ALL_HOSTS = SEED_HOSTS + TLS_HOSTS + [IDLE_HOST]


def write_urls(ctx, name, urls):
    path = os.path.join(ctx.scratch, name + ".urls")
    with open(path, "w") as f:
        n = 0
        for u in urls:
            f.write(u)
            f.write("\n")
            n += 1
    return path, n


def resolves(hosts, port):
    return ["%s:%d:127.0.0.1" % (h, port) for h in hosts]


def compare_clients(ctx):
    """--compare PATH: a second volley build in the same rounds (an A/B of two builds)."""
    return [Volley(ctx.compare_name, ctx.compare)] if ctx.compare else []


def std_clients(ctx, node=True, aiohttp=True, curl=True, requests=False):
    cs = [Volley("volley", ctx.volley)] + compare_clients(ctx)
    if curl:
        cs.append(Curl("curl --parallel"))
    if aiohttp:
        cs.append(Aiohttp("aiohttp", PY, "aiohttp_get.py"))
    if node:
        cs.append(Script("node fetch", "node", "node_fetch.mjs"))
    if requests:
        cs.append(Requests("requests (sequential)", PY, "requests_get.py"))
    return cs


# -- 1. seed -----------------------------------------------------------------

def seed(ctx):
    P = ctx.P
    with ctx.nginx() as ng:
        port = ng.https_port
        rs = resolves(SEED_HOSTS, port)
        urls = ["https://%s:%d/delay?s=0.1&i=%d" % (SEED_HOSTS[i % 3], port, i) for i in range(30)]
        path, n = write_urls(ctx, "seed", urls)
        job = Job("seed", path, n, n * len(DELAY_BODY), 100, rs, ctx.certs["ca"], timeout=120,
                  server=ng)
        one_path, _ = write_urls(ctx, "seed-one", urls[:1])
        one = Job("seed1", one_path, 1, len(DELAY_BODY), 1, rs, ctx.certs["ca"], timeout=60, server=ng)
        sec = Section("seed", "seed: 30 HTTPS URLs, 3 host names x 10, each answer delayed 100 ms",
                      job, "30 GETs over TLS (verified against the test CA), names resolved to "
                      "127.0.0.1 by each client's override; concurrency 100 (all at once) except "
                      "`volley -c 1` and requests (sequential).  *critical path* = volley fetching "
                      "one of the URLs alone: process start + one handshake + 100 ms.")
        clients = [Volley("volley", ctx.volley)] + compare_clients(ctx) + [
                   Volley("volley -c 1", ctx.volley, concurrency=1),
                   Curl("curl --parallel"), Aiohttp("aiohttp gather", PY, "aiohttp_get.py"),
                   Script("node fetch Promise.all", "node", "node_fetch.mjs"),
                   Requests("requests (sequential)", PY, "requests_get.py"),
                   Volley("critical path (1 URL)", ctx.volley, job=one)]
        run_rounds(ctx, sec, clients, P["seed_rounds"])
        sec.no_rps = {"critical path (1 URL)"}
    return [sec]


# -- 2. many -----------------------------------------------------------------

def many(ctx):
    P = ctx.P
    N = P["many_n"]
    with ctx.nginx(workers=ctx.args.nginx_workers) as ng:
        base = "http://127.0.0.1:%d/f/1k.bin" % ng.http_port
        path, n = write_urls(ctx, "many", ("%s?i=%d" % (base, i) for i in range(N)))
        job = Job("many", path, n, n * KB1, 100, timeout=600, server=ng)
        sec = Section("many", "many: %d small GETs (1 KiB), HTTP/1.1 keep-alive, concurrency 100, one host"
                      % N, job, "Plain HTTP to nginx (%d worker%s); wrk -t1 -c100 -d%ds on the same URL "
                      "is the ceiling (its count is whatever it did in that time)."
                      % (ctx.args.nginx_workers, "s" if ctx.args.nginx_workers > 1 else "", P["wrk_secs"]))
        clients = std_clients(ctx)
        clients.insert(1, Wrk("wrk -t1 (ceiling)", base, P["wrk_secs"]))
        # parallelism, the other half: two loops in two threads, and wrk's two
        clients.insert(2, Volley("volley -t 2", ctx.volley, extra=["-t", "2"]))
        clients.insert(3, Wrk("wrk -t2", base, P["wrk_secs"], threads=2))
        sec.add_na("requests (sequential)", "sequential requests at 100k GETs would take minutes; not a concurrency-100 client")
        # issue 13: bodies in the records (--body): 1k.bin is application/octet-stream
        # (base64); 1k.html is text/html with no charset, so the heaviest text path:
        # the <meta> prescan, then uchardet, then the body escaped as JSON
        with open(os.path.join(ctx.docroot, "1k.html"), "wb") as f:
            f.write((b"<!doctype html><title>many</title><p>" + b"caf\xc3\xa9 text, " * 100)[:KB1])
        hpath, hn = write_urls(ctx, "many-html", ("http://127.0.0.1:%d/f/1k.html?i=%d"
                                                  % (ng.http_port, i) for i in range(N)))
        html = Job("many-html", hpath, hn, hn * KB1, 100, timeout=600, server=ng)
        clients.insert(2, Volley("volley --body", ctx.volley, extra=["--body"]))
        clients.insert(3, Volley("volley --body (text/html)", ctx.volley, extra=["--body"], job=html))
        run_rounds(ctx, sec, clients, P["many_rounds"])
    return [sec]


# -- 3. tls ------------------------------------------------------------------

def tls(ctx):
    P = ctx.P
    N = P["tls_n"]
    with ctx.nginx() as ng:
        port = ng.https_port
        urls = ("https://%s:%d/f/1k.bin?i=%d" % (TLS_HOSTS[i % 50], port, i) for i in range(N))
        path, n = write_urls(ctx, "tls", urls)
        job = Job("tls", path, n, n * KB1, 50, resolves(TLS_HOSTS, port), ctx.certs["ca"], timeout=600,
                  server=ng)
        sec = Section("tls", "tls: %d HTTPS GETs (1 KiB), concurrency 50, over 50 host names" % N, job,
                      "Each name its own origin: connection pools, handshakes and session "
                      "resumption per name; server offers %s." % ctx.args.tls_protocols)
        sec.add_na("requests (sequential)", "not a concurrency-50 client")
        clients = std_clients(ctx)
        clients.insert(1, Volley("volley -t 2", ctx.volley, extra=["-t", "2"]))
        run_rounds(ctx, sec, clients, P["tls_rounds"])
    return [sec]


# -- 4. big ------------------------------------------------------------------

def big(ctx):
    P = ctx.P
    total = P["big_total"]
    part = total // 16
    for name, size in (("big.bin", total), ("part.bin", part)):
        with open(os.path.join(ctx.docroot, name), "wb") as f:
            f.truncate(size)   # sparse: costs no disk, served from the page cache
    secs = []
    free = shutil.disk_usage(ctx.scratch).free
    with ctx.nginx() as ng:
        for count, fname, size in ((1, "big.bin", total), (16, "part.bin", part)):
            url = "http://127.0.0.1:%d/f/%s" % (ng.http_port, fname)
            warm(url)   # the sparse file's pages into the page cache before anyone is timed
            path, n = write_urls(ctx, "big%d" % count, ("%s?i=%d" % (url, i) for i in range(count)))
            for save in (False, True):
                key = "big-%d-%s" % (count, "save" if save else "discard")
                job = Job(key, path, n, n * size, 16, stream=True, save=save, timeout=600, server=ng)
                what = "%d x %s" % (count, human_size(size))
                sec = Section(key, "big: %s, %s" % (what, "saved with -o (one file per body)" if save
                                                      else "body discarded"), job,
                              "Plain HTTP, nginx sendfile from the page cache; %s; bodies "
                              "streamed in chunks by every client.  MB/s = 10^6 bytes/s of wall time."
                              % ("16 in parallel" if count > 1 else "one transfer"),
                              columns=("wall", "mbps", "cpu", "rss"), ratios=("wall", "mbps", "cpu", "rss"))
                if save and free < 3 * total:
                    for c in ("volley", "curl --parallel", "aiohttp", "node fetch"):
                        sec.add_na(c, "not enough free disk in %s" % ctx.scratch)
                    secs.append(sec)
                    continue
                clients = std_clients(ctx, requests=(count == 1))
                if count > 1:
                    sec.add_na("requests (sequential)", "sequential: not a parallel client")
                run_rounds(ctx, sec, clients, P["big_rounds"])
                secs.append(sec)
            secs.append(big_warc(ctx, ng, count, path, n, size, free))
    for name in ("big.bin", "part.bin"):
        os.unlink(os.path.join(ctx.docroot, name))
    return secs


# -- 4b. big --warc: the WARC sink against plain -o (issue 13) ----------------

class VolleySaved(Volley):
    """volley -o DIR, a fresh DIR per run, removed once counted."""

    def __init__(self, name, binary, scratch):
        super().__init__(name, binary)
        self.dir = os.path.join(scratch, "big-o-" + re.sub(r"[^a-z0-9]+", "_", name))

    def cmd(self, job, outdir):
        shutil.rmtree(self.dir, ignore_errors=True)
        os.makedirs(self.dir)
        return super().cmd(job, None) + ["-o", self.dir]

    def count(self, stdout_path):
        got = super().count(stdout_path)
        shutil.rmtree(self.dir, ignore_errors=True)
        return got


class VolleyWarc(Volley):
    """volley --warc FILE, a fresh FILE per run; the run fails unless the file
    holds at least the body bytes (plain .warc) or is a whole gzip (.warc.gz)."""

    def __init__(self, name, binary, scratch, ext):
        super().__init__(name, binary)
        self.path = os.path.join(scratch, "big-" + re.sub(r"[^a-z0-9]+", "_", name) + ext)

    def cmd(self, job, outdir):
        if os.path.exists(self.path):
            os.unlink(self.path)
        self.want = job.bytes
        return super().cmd(job, None) + ["--warc", self.path]

    def count(self, stdout_path):
        ok, nbytes, err = super().count(stdout_path)
        size = os.path.getsize(self.path) if os.path.exists(self.path) else 0
        if self.path.endswith(".gz"):
            good = subprocess.run(["gzip", "-t", self.path]).returncode == 0
        else:
            good = size >= self.want
        if not good:
            ok, err = 0, "WARC file %s is short or broken (%d bytes)" % (self.path, size)
        if os.path.exists(self.path):
            os.unlink(self.path)
        return ok, nbytes, err


def big_warc(ctx, ng, count, urls, n, size, free):
    P = ctx.P
    job = Job("big-%d-warc" % count, urls, n, n * size, 16, stream=True, timeout=600, server=ng)
    sec = Section(job.name, "big: %d x %s, --warc FILE against -o DIR" % (count, human_size(size)),
                  job, "The same transfer saved three ways by volley: one file per body (-o), "
                  "one plain WARC (spooled to a temp file beside it, then copy_file_range), one "
                  ".warc.gz (zlib level 1, a gzip member per record).  The body is a sparse "
                  "file's zeros, which gzip squeezes to nothing: the .warc.gz row shows the "
                  "cost of the spool and of deflate's scan, not of writing compressed bytes.",
                  columns=("wall", "mbps", "cpu", "rss"), ratios=("wall", "mbps", "cpu", "rss"),
                  ref="volley -o")
    clients = [VolleySaved("volley -o", ctx.volley, ctx.scratch),
               VolleyWarc("volley --warc", ctx.volley, ctx.scratch, ".warc"),
               VolleyWarc("volley --warc .gz", ctx.volley, ctx.scratch, ".warc.gz")]
    if free < 3 * n * size:
        for c in clients:
            sec.add_na(c.name, "not enough free disk in %s" % ctx.scratch)
        return sec
    run_rounds(ctx, sec, clients, P["big_rounds"])
    return sec


def warm(url):
    subprocess.run(["curl", "-q", "-s", "-o", "/dev/null", url], timeout=300)


def human_size(n):
    return "%d GiB" % (n // GiB) if n >= GiB and n % GiB == 0 else "%d MiB" % (n // MiB)


# -- 5. idle -----------------------------------------------------------------

class IdleSection(Section):
    kind = "idle"


def idle(ctx):
    P = ctx.P
    secs = []
    import resource
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    # volley's gather keeps its window under (open-file limit - 32) / 3 (a socket, a
    # happy-eyeballs spare and an output file per fetch), silently: stay where
    # every client can hold all N at once under this box's limit.
    N = min(P["idle_n"], (soft - 32) // 3 // 100 * 100)
    n0 = P["idle_base"]
    limit_note = None
    if N < P["idle_n"]:
        limit_note = ("%d connections asked; this box's open-file limit is %d (root cannot raise it "
                      "here) and volley caps its window at (limit - 32) / 3 = %d (src/gather.c, "
                      "without a message), so every client holds %d"
                      % (P["idle_n"], soft, (soft - 32) // 3, N))
    with ctx.nginx(workers=2, conns=N + 512) as ng:
        for mode in ("plain", "tls"):
            delay = P["idle_delay_" + mode]
            if mode == "plain":
                base, rs, ca = "http://127.0.0.1:%d/delay" % ng.http_port, [], None
            else:
                base, rs, ca = ("https://%s:%d/delay" % (IDLE_HOST, ng.https_port),
                                resolves([IDLE_HOST], ng.https_port), ctx.certs["ca"])
            jobs = {}
            for count in (n0, N):
                d = delay if count == N else min(delay, 2)   # 2 s is ample for 100 to be open at once
                path, n = write_urls(ctx, "idle-%s-%d" % (mode, count),
                                     ("%s?s=%g&i=%d" % (base, d, i) for i in range(count)))
                jobs[count] = Job("idle-%s-%d" % (mode, count), path, n, n * len(DELAY_BODY), count,
                                  rs, ca, timeout=max(180, 8 * delay), server=ng)
            sec = IdleSection("idle-" + mode, "idle: %d concurrent %s connections, each answer held %gs"
                              % (N, "plain HTTP" if mode == "plain" else "TLS", delay), jobs[N],
                              "Every request is in flight at once (concurrency = N).  KiB/conn = "
                              "(peak RSS with %d conns - peak RSS with %d) / %d.  *server peak* = most "
                              "connections nginx saw open at once (stub_status, polled every 50 ms): "
                              "a connection whose answer came stays open in the client's pool until "
                              "it exits, so all N count at the peak even when the handshakes take "
                              "longer than the hold."
                              % (N, n0, N - n0))
            sec.n, sec.n0, sec.base_runs, sec.peak = N, n0, {}, {}
            if limit_note:
                sec.notes.append(limit_note)
            clients = std_clients(ctx, curl=False)
            if mode == "tls":
                # volley's default --connect-timeout (10 s) covers DNS+TCP+TLS; with every
                # handshake started at once, the late ones can wait longer than that
                clients.insert(1, Volley("volley --connect-timeout 120", ctx.volley,
                                         extra=["--connect-timeout", "120"]))
            sec.add_na("curl --parallel", "--parallel-max is capped at 300 transfers")
            live = []
            for c in clients:
                sec.clients.append(c.name)
                why = ctx.unavailable(c, sec)
                if why:
                    sec.na[c.name] = why
                else:
                    live.append(c)
                    sec.runs[c.name], sec.base_runs[c.name], sec.peak[c.name] = [], [], []
            for rnd in range(P["idle_rounds"]):
                for c in (live if rnd % 2 == 0 else live[::-1]):
                    peak = [0]

                    def poll(stop, peak=peak):
                        while not stop.wait(0.05):
                            a = ng.active_connections()
                            if a is not None and a > peak[0]:
                                peak[0] = a
                    r = run_one(ctx, c, jobs[N], rnd, during=poll)
                    r.m.extra = dict(r.m.extra or {}, server_peak=peak[0])
                    sec.runs[c.name].append(r)
                    sec.peak[c.name].append(peak[0])
                    sec.base_runs[c.name].append(run_one(ctx, c, jobs[n0], rnd))
                    wait_for_idle_server(ng)
            secs.append(sec)
    return secs


def wait_for_idle_server(ng, timeout=30):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        a = ng.active_connections()
        if a is not None and a <= 0:
            return
        time.sleep(0.1)


# -- 6. list -----------------------------------------------------------------

class ListSection(Section):
    kind = "list"


def list_(ctx):
    P = ctx.P
    small, bigN = P["list_small"], P["list_big"]
    with ctx.nginx(workers=ctx.args.nginx_workers) as ng:
        base = "http://127.0.0.1:%d/f/1k.bin" % ng.http_port
        jobs = {}
        for count in (small, bigN):
            path, n = write_urls(ctx, "list-%d" % count, ("%s?i=%d" % (base, i) for i in range(count)))
            jobs[count] = Job("list-%d" % count, path, n, n * KB1, 100, timeout=900, server=ng)
        sec = ListSection("list", "list: a %s-line URL list vs a %s-line one (concurrency 100, 1 KiB each)"
                          % (fmt_count(bigN), fmt_count(small)), jobs[bigN],
                          "Peak RSS of the whole run with each list; the list is the client's own "
                          "input (volley -i FILE, curl -K FILE, the scripts stream the file).")
        sec.small, sec.big, sec.small_runs = small, bigN, {}
        clients = [Volley("volley", ctx.volley)] + compare_clients(ctx) + [Curl("curl --parallel")]
        for name in ("aiohttp", "node fetch"):
            sec.add_na(name, "time budget: ~2k req/s here (see many); its script streams the list "
                             "(flat by construction)")
        live = []
        for c in clients:
            sec.clients.append(c.name)
            why = ctx.unavailable(c, sec)
            if why:
                sec.na[c.name] = why
            else:
                live.append(c)
                sec.runs[c.name], sec.small_runs[c.name] = [], []
        for rnd in range(P["list_rounds"]):
            for c in (live if rnd % 2 == 0 else live[::-1]):
                sec.small_runs[c.name].append(run_one(ctx, c, jobs[small], rnd))
                sec.runs[c.name].append(run_one(ctx, c, jobs[bigN], rnd))
    return [sec]


def fmt_count(n):
    if n >= 1_000_000 and n % 1_000_000 == 0:
        return "%dM" % (n // 1_000_000)
    if n >= 1000 and n % 1000 == 0:
        return "%dk" % (n // 1000)
    return str(n)


# -- 7. sorted ---------------------------------------------------------------

SORTED_HOSTS = ["s%d.sorted.test" % i for i in range(4)]


def sorted_(ctx):
    P = ctx.P
    per = P["sorted_per_host"]
    with ctx.nginx() as ng:
        port = ng.http_port
        rs = resolves(SORTED_HOSTS, port)
        by_host = [["http://%s:%d/delay?s=0.05&i=%d" % (h, port, i) for i in range(per)]
                   for h in SORTED_HOSTS]
        spath, n = write_urls(ctx, "sorted", (u for urls in by_host for u in urls))
        mpath, _ = write_urls(ctx, "sorted-mixed", (by_host[h][i] for i in range(per)
                                                    for h in range(len(SORTED_HOSTS))))
        nbytes = n * len(DELAY_BODY)
        job = Job("sorted", spath, n, nbytes, 100, rs, timeout=300, server=ng)
        mixed = Job("interleaved", mpath, n, nbytes, 100, rs, timeout=300, server=ng)
        ideal = n * 0.05 / (2 * len(SORTED_HOSTS))
        sec = Section("sorted", "sorted: %d URLs on %d hosts (each answer 50 ms), -c 100, 2 "
                      "connections per host: the list sorted by host vs interleaved"
                      % (n, len(SORTED_HOSTS)), job,
                      "The ideal is %.2f s either way (%d hosts x 2 connections x 20/s).  Rows "
                      "marked interleaved fetch the same URLs in round-robin host order.  aiohttp: "
                      "TCPConnector(limit_per_host=2), gather over 100 workers."
                      % (ideal, len(SORTED_HOSTS)))
        ph = ["--per-host", "2"]
        clients = [Volley("volley sorted", ctx.volley, extra=ph)]
        clients += [Volley(c.name, c.binary, extra=ph) for c in compare_clients(ctx)]
        clients += [Volley("volley interleaved", ctx.volley, extra=ph, job=mixed),
                    Aiohttp("aiohttp sorted", PY, "aiohttp_get.py", extra=ph),
                    Aiohttp("aiohttp interleaved", PY, "aiohttp_get.py", extra=ph, job=mixed)]
        sec.add_na("curl --parallel", "no per-host connection limit (Debian's curl 7.88)")
        run_rounds(ctx, sec, clients, P["sorted_rounds"])
    return [sec]


# -- 8. polite ---------------------------------------------------------------

def polite(ctx):
    P = ctx.P
    hosts = ["p%02d.polite.test" % i for i in range(P["polite_hosts"])]
    per = P["polite_per_host"]
    with ctx.nginx() as ng:
        port = ng.http_port
        rs = resolves(hosts, port)
        urls = ("http://%s:%d/f/1k.bin?i=%d" % (hosts[i % len(hosts)], port, i)
                for i in range(len(hosts) * per))
        path, n = write_urls(ctx, "polite", urls)
        job = Job("polite", path, n, n * KB1, 100, rs, timeout=600, server=ng)
        sec = Section("polite", "polite: %d hosts x %d URLs (1 KiB), --per-host-rate 20/s"
                      % (len(hosts), per), job,
                      "Each host at most 20 request starts a second, all hosts at once: the "
                      "ideal wall is %.2f s (first start at 0, last at (%d-1)/20 s), %d req/s in "
                      "all; achieved per-host rate = req/s / %d.  curl's --rate is ignored under "
                      "--parallel and aiohttp has no rate limit, so no other client can do this "
                      "work." % ((per - 1) / 20.0, per, 20 * len(hosts), len(hosts)))
        rate = ["--per-host-rate", "20/s"]
        clients = [Volley("volley", ctx.volley, extra=rate)]
        clients += [Volley(c.name, c.binary, extra=rate) for c in compare_clients(ctx)]
        sec.add_na("curl --parallel", "--rate is ignored under --parallel")
        sec.add_na("aiohttp", "no rate limit built in")
        run_rounds(ctx, sec, clients, P["polite_rounds"])
    return [sec]


# -- 9. hosts ----------------------------------------------------------------

def hosts(ctx):
    P = ctx.P
    per = 100
    with ctx.nginx(workers=ctx.args.nginx_workers) as ng:
        port = ng.http_port
        jobs = {}
        # both runs get the whole --resolve table (it costs memory per entry,
        # whatever the list): the comparison is the list and the hosts used
        names = ["h%05d.hosts.test" % i for i in range(P["hosts_big"])]
        table = resolves(names, port)
        for nh in (P["hosts_small"], P["hosts_big"]):
            urls = ("http://%s:%d/f/1k.bin?i=%d" % (names[i // per], port, i)
                    for i in range(nh * per))
            path, n = write_urls(ctx, "hosts-%d" % nh, urls)
            jobs[nh] = Job("hosts-%d" % nh, path, n, n * KB1, 100, table, timeout=900, server=ng)
        small, big = (jobs[P["hosts_small"]], jobs[P["hosts_big"]])
        sec = ListSection("hosts", "hosts: %s URLs over %s hosts vs %s over %s, sorted by host, "
                          "--per-host 2" % (fmt_count(big.n), fmt_count(P["hosts_big"]),
                                            fmt_count(small.n), fmt_count(P["hosts_small"])),
                          big, "Each host's %d URLs in a row (the worst order for a FIFO), every "
                          "name resolved to 127.0.0.1 by --resolve (the same table of every name in both runs); the scheduler keeps a queue "
                          "per host and reads ahead only while in-flight room is unused: peak "
                          "RSS must not follow the list or the number of hosts." % per)
        sec.small, sec.big, sec.small_runs = small.n, big.n, {}
        c = Volley("volley", ctx.volley, extra=["--per-host", "2"])
        sec.clients.append(c.name)
        sec.runs[c.name], sec.small_runs[c.name] = [], []
        for name in ("curl --parallel", "aiohttp"):
            sec.add_na(name, "no per-host limit (curl 7.88) / time budget (aiohttp); see list")
        sec.small_runs[c.name].append(run_one(ctx, c, small, 0))
        sec.runs[c.name].append(run_one(ctx, c, big, 0))
    return [sec]


# -- 10. threads (issue 16) -------------------------------------------------

THREAD_HOSTS = ["m%d.threads.test" % i for i in range(8)]


def threads(ctx):
    """-t 1 against -t 2 where -t partitions by host: many small GETs over 8
    plain-HTTP names, and the tls work over 50 HTTPS names; the server's
    connection (and TLS resumption) counts are the point."""
    P = ctx.P
    secs = []
    N = P["many_n"]
    ts = [Volley("volley -t 1", ctx.volley, extra=["-t", "1"]),
          Volley("volley -t 2", ctx.volley, extra=["-t", "2"])]
    with ctx.nginx(workers=ctx.args.nginx_workers) as ng:
        port = ng.http_port
        urls = ("http://%s:%d/f/1k.bin?i=%d" % (THREAD_HOSTS[i % 8], port, i) for i in range(N))
        path, n = write_urls(ctx, "threads-many", urls)
        job = Job("threads-many", path, n, n * KB1, 100, resolves(THREAD_HOSTS, port), timeout=600,
                  server=ng)
        sec = Section("threads-many", "threads: %d small GETs (1 KiB) over 8 host names, "
                      "concurrency 100, -t 1 vs -t 2" % N, job,
                      "Plain HTTP to nginx (%d workers); -t partitions the list by host name, so "
                      "each name's pool lives in one thread and the connection count should not "
                      "grow with -t." % ctx.args.nginx_workers, ref="volley -t 1")
        run_rounds(ctx, sec, ts, P["many_rounds"])
        secs.append(sec)
    N = P["tls_n"]
    with ctx.nginx() as ng:
        port = ng.https_port
        urls = ("https://%s:%d/f/1k.bin?i=%d" % (TLS_HOSTS[i % 50], port, i) for i in range(N))
        path, n = write_urls(ctx, "threads-tls", urls)
        job = Job("threads-tls", path, n, n * KB1, 50, resolves(TLS_HOSTS, port), ctx.certs["ca"],
                  timeout=600, server=ng)
        sec = Section("threads-tls", "threads: %d HTTPS GETs (1 KiB) over 50 host names, "
                      "concurrency 50, -t 1 vs -t 2" % N, job,
                      "Each name's pool and TLS session cache in one thread: one full handshake "
                      "per name at either -t (the rest resume or reuse).", ref="volley -t 1")
        run_rounds(ctx, sec, ts, P["tls_rounds"])
        secs.append(sec)
    return secs


# -- 11. proxy ----------------------------------------------------------------

class CurlProxy(Curl):
    def __init__(self, name, proxy):
        super().__init__(name)
        self.proxy = proxy

    def cmd(self, job, outdir):
        return super().cmd(job, outdir) + ["-x", self.proxy]


class _Squid:
    """squid -N on a free port, no cache, no access log; stopped by PID."""

    def __init__(self, ctx):
        import socket
        self.dir = os.path.join(ctx.scratch, "squid")
        os.makedirs(self.dir, exist_ok=True)
        os.chmod(ctx.scratch, 0o711)  # squid runs as its 'proxy' user
        os.chmod(self.dir, 0o777)
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.proc = None

    def __enter__(self):
        import socket
        conf = os.path.join(self.dir, "squid.conf")
        with open(conf, "w") as f:
            f.write("http_port 127.0.0.1:%d\npid_filename %s/squid.pid\ncache deny all\n"
                    "cache_mem 8 MB\naccess_log none\ncache_store_log none\ncache_log %s/cache.log\n"
                    "coredump_dir %s\npinger_enable off\nshutdown_lifetime 0 seconds\n"
                    "max_filedescriptors 8192\nacl loop src 127.0.0.1/32\n"
                    "http_access allow loop\nhttp_access deny all\n"
                    % (self.port, self.dir, self.dir, self.dir))
        self.proc = subprocess.Popen(["squid", "-N", "-n", "bench%d" % self.port, "-f", conf],
                                     stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and self.proc.poll() is None:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return self
            except OSError:
                time.sleep(0.05)
        self.__exit__()
        raise RuntimeError("squid did not start (see %s/cache.log)" % self.dir)

    def __exit__(self, *exc):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def proxy(ctx):
    P = ctx.P
    N = P.get("proxy_n", 5_000)
    if not shutil.which("squid"):
        raise RuntimeError("squid is not installed (tools/install-deps.sh installs it)")
    with ctx.nginx() as ng, _Squid(ctx) as sq:
        base = "http://127.0.0.1:%d/f/1k.bin" % ng.http_port
        path, n = write_urls(ctx, "proxy", ("%s?i=%d" % (base, i) for i in range(N)))
        job = Job("proxy", path, n, n * KB1, 100, timeout=600, server=ng)
        px = "http://127.0.0.1:%d" % sq.port
        sec = Section("proxy", "proxy: %d small GETs (1 KiB) through squid (-x), concurrency 100"
                      % N, job, "Plain HTTP through one squid (no cache, no log) to nginx: the "
                      "proxy's one CPU is the ceiling for every client; volley keeps its "
                      "connections to the proxy alive and pooled per proxy.")
        clients = [Volley("volley", ctx.volley, extra=["-x", px])]
        clients += [Volley(c.name, c.binary, extra=["-x", px]) for c in compare_clients(ctx)]
        clients.append(CurlProxy("curl --parallel", px))
        run_rounds(ctx, sec, clients, P.get("proxy_rounds", 2))
    return [sec]


SCENARIOS = {"seed": seed, "many": many, "tls": tls, "big": big, "idle": idle, "list": list_,
             "sorted": sorted_, "polite": polite, "hosts": hosts}
SCENARIOS["threads"] = threads
SCENARIOS["proxy"] = proxy
HTTPS_SCENARIOS = {"seed", "tls", "idle"} | {"threads"}


# -- tls-h2 (issue 15) --------------------------------------------------------

class CurlMultiplex(Curl):
    """curl --parallel without --parallel-immediate: it waits for the first
    connection and multiplexes the transfers over its h2 streams."""

    def cmd(self, job, outdir):
        return [a for a in Curl.cmd(self, job, outdir) if a != "--parallel-immediate"]


def tls_h2(ctx):
    """HTTPS GETs to one host whose nginx speaks h2: volley multiplexing its
    fetches over h2 streams, volley --http1.1 (a pool of connections), and
    curl --parallel (which multiplexes over h2 too)."""
    P = ctx.P
    N = P["tls_n"]
    host = TLS_HOSTS[0]
    with ctx.nginx(http2=True) as ng:
        port = ng.https_port
        urls = ("https://%s:%d/f/1k.bin?i=%d" % (host, port, i) for i in range(N))
        path, n = write_urls(ctx, "tls-h2", urls)
        job = Job("tls-h2", path, n, n * KB1, 50, resolves([host], port), ctx.certs["ca"],
                  timeout=600, server=ng)
        sec = Section("tls-h2", "tls-h2: %d HTTPS GETs (1 KiB) to one host, nginx with http2, "
                      "concurrency 50" % N, job,
                      "ALPN picks h2: volley multiplexes streams over one connection; "
                      "volley --http1.1 keeps a pool of HTTP/1.1 connections; curl --parallel "
                      "multiplexes too, and with --parallel-immediate (the other scenarios' curl "
                      "row) it opens its connections at once instead of waiting to multiplex.",
                      ref="volley (h2)")
        clients = [Volley("volley (h2)", ctx.volley), Volley("volley --http1.1", ctx.volley,
                                                             extra=["--http1.1"]),
                   CurlMultiplex("curl --parallel (h2)"),
                   Curl("curl --parallel --parallel-immediate (h2)")]
        run_rounds(ctx, sec, clients, P["tls_rounds"])
    return [sec]


SCENARIOS["tls-h2"] = tls_h2
HTTPS_SCENARIOS |= {"tls-h2"}
# -- 10. dist (lib/dist.py: volley-dask on 1, 2, 4 local Dask workers) --------

FULL.update(dist_n=200_000, dist_rounds=1)
QUICK.update(dist_n=40_000, dist_rounds=1)


def dist(ctx):
    import dist as dist_mod
    return dist_mod.dist(ctx, write_urls, resolves, DELAY_BODY)


SCENARIOS["dist"] = dist
