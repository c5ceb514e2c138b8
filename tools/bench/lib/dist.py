"""dist.py: the `dist` scenario.  tools/dask/volley-dask on a LocalCluster of
1, 2 and 4 worker processes against plain volley on the same list: N URLs
over 64 hosts, each answer held 10 ms by the echo module.  Every volley
process (plain, or one per shard) runs at the same -c; wall includes the
cluster's start, the partitioning, the commit checks and the manifest."""
import json
import os
import re
import shutil

from core import PY, Client, Job, Section, Volley, run_rounds

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
TOOL = os.path.join(ROOT, "tools", "dask", "volley-dask")
DIST_HOSTS = ["d%02d.dist.test" % i for i in range(64)]
CONC = 100


class VolleyDask(Client):
    """volley-dask --workers N on a fresh job directory per run; count() reads
    its parts (the records of every shard) as Volley.count reads stdout."""

    def __init__(self, name, binary, workers, scratch):
        super().__init__(name)
        self.binary, self.workers, self.scratch = binary, workers, scratch
        self.needs = (PY, binary, TOOL)
        self.out = None
        self.phases = []      # the manifest's phases_s of each run

    def available(self):
        if not super().available():
            return False
        import subprocess
        return subprocess.run([PY, "-c", "import distributed"], stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL, timeout=60).returncode == 0

    def cmd(self, job, outdir):
        self.out = os.path.join(self.scratch, "dist-job-%d" % self.workers)
        shutil.rmtree(self.out, ignore_errors=True)
        c = [PY, TOOL, "-i", job.urls, "--out-dir", self.out, "--workers", str(self.workers),
             "--shards", str(8 * self.workers), "--volley", self.binary, "--no-progress",
             "--", "-c", str(self.conc(job))]
        for r in job.resolve:
            c += ["--resolve", r]
        return c

    def count(self, stdout_path):
        ok = nbytes = 0
        first_err = None
        rx = re.compile(rb'"bytes":\s*(\d+)')
        parts = os.path.join(self.out, "out")
        for name in sorted(os.listdir(parts)) if os.path.isdir(parts) else []:
            with open(os.path.join(parts, name), "rb") as f:
                for line in f:
                    if b'"ok":true' in line:
                        ok += 1
                        m = rx.search(line)
                        nbytes += int(m.group(1)) if m else 0
                    elif first_err is None and b'"index"' in line:
                        first_err = line.decode(errors="replace").strip()[:300]
        try:
            with open(os.path.join(self.out, "manifest.json")) as f:
                self.phases.append(json.load(f).get("phases_s", {}))
        except (OSError, ValueError):
            pass
        shutil.rmtree(self.out, ignore_errors=True)
        return ok, nbytes, first_err


def dist(ctx, write_urls, resolves, delay_body):
    P = ctx.P
    n = P["dist_n"]
    with ctx.nginx(workers=ctx.args.nginx_workers) as ng:
        port = ng.http_port
        rs = resolves(DIST_HOSTS, port)
        urls = ("http://%s:%d/delay?s=0.01&i=%d" % (DIST_HOSTS[i % len(DIST_HOSTS)], port, i)
                for i in range(n))
        path, n = write_urls(ctx, "dist", urls)
        job = Job("dist", path, n, n * len(delay_body), CONC, rs, timeout=900, server=ng)
        sec = Section("dist", "dist: %d URLs over %d hosts (each answer 10 ms), volley -c %d "
                      "vs volley-dask on 1, 2 and 4 local Dask workers" % (n, len(DIST_HOSTS),
                                                                          CONC), job,
                      "volley-dask (tools/dask) partitions the list by host into 8 shards per "
                      "worker and runs one volley -c %d per shard, one shard per worker "
                      "process at a time (LocalCluster, processes=True, threads_per_worker=1). "
                      "Its wall includes starting the cluster, writing the shards, checking "
                      "and committing every part and the manifest; CPU and RSS are the "
                      "driver's and what it reaped, not the workers'.  `volley -c %d` has the "
                      "4 workers' total concurrency in one process." % (CONC, 4 * CONC),
                      columns=("wall", "rps", "cpu", "rss"), ratios=("wall", "rps"))
        clients = [Volley("volley", ctx.volley)]
        clients += [VolleyDask("volley-dask %d worker%s" % (w, "s" if w > 1 else ""), ctx.volley,
                               w, ctx.scratch) for w in (1, 2, 4)]
        clients.append(Volley("volley -c %d" % (4 * CONC), ctx.volley, concurrency=4 * CONC))
        run_rounds(ctx, sec, clients, P["dist_rounds"])
        for c in clients:
            for ph in getattr(c, "phases", []):
                sec.notes.append(
                    "%s, where the wall went (s): partition %s (while the cluster starts), "
                    "cluster start %s, tasks %s (volley itself %s, summed over shards), "
                    "cluster close %s, check %s" % (
                        c.name, ph.get("partition"), ph.get("cluster"), ph.get("tasks"),
                        ph.get("volley_secs_sum"), ph.get("close"), ph.get("check")))
        one = sec.ratio("volley-dask 1 worker", "wall")
        if one is not None:
            sec.notes.append("overhead at one worker: %+.1f%% wall against plain volley "
                             "(target <= 5%%: %s)" % ((one - 1) * 100,
                                                     "met" if one <= 1.05 else "missed"))
        for w in (2, 4):
            s = sec.ratio("volley-dask %d workers" % w, "rps")
            if s is not None:
                sec.notes.append("speed-up at %d workers: %.2fx plain volley's req/s" % (w, s))
    return [sec]
