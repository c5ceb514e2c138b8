"""report.py: the Markdown tables, the target checks and the gnuplot chart."""
import os
import statistics
import subprocess

from scenarios import IdleSection, ListSection

COL = {"wall": ("wall s", "%.3f"), "rps": ("req/s", "{:,.0f}"), "mbps": ("MB/s", "{:,.0f}"),
       "cpu": ("CPU s (user+sys)", "%.3f"), "cpu_us": ("CPU µs/req", "%.1f"),
       "rss": ("peak RSS MiB", "%.1f")}
RATIO = {"wall": "wall ÷ volley", "rps": "req/s ÷ volley", "mbps": "MB/s ÷ volley",
         "cpu": "CPU ÷ volley", "rss": "RSS ÷ volley"}


def f(v, spec):
    if v is None:
        return "—"
    return spec.format(v) if "{" in spec else spec % v


def med(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def failed_note(sec, name):
    bad = [r for r in sec.runs.get(name, []) if not r.ok]
    if not bad:
        return ""
    return "%d/%d runs failed: %s" % (len(bad), len(sec.runs[name]), bad[0].error)


def ordered(sec):
    """Clients in the order they ran; those that could not take part last."""
    return [n for n in sec.clients if n not in sec.na] + [n for n in sec.clients if n in sec.na]


def conns_text(sec, name):
    """Connections the server accepted for this client (median over runs); for
    TLS, how many of them resumed a session, and the protocol."""
    ex = [r.m.extra for r in sec.ok_runs(name) if r.m.extra]
    if not ex:
        return "—"
    tls = [e for e in ex if "tls_conns" in e]
    if tls:
        c = med([e["tls_conns"] for e in tls])
        res = med([e["resumed"] for e in tls])
        protos = sorted({p for e in tls for p in e["protocols"]})
        return "%d (%d resumed; %s)" % (c, res, "/".join(p.replace("TLSv", "") for p in protos))
    c = med([e["conns"] for e in ex if "conns" in e])
    return "%d" % c if c is not None else "—"


def table_std(sec):
    cols = list(sec.columns)
    https = sec.job.cacert is not None
    head = (["client", "runs ok"] + [COL[c][0] for c in cols] + [RATIO[c] for c in sec.ratio_cols]
            + ["server conns (resumed; TLS)" if https else "server conns"])
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    no_rps = getattr(sec, "no_rps", set())
    for name in ordered(sec):
        if name in sec.na:
            lines.append("| %s | n/a | %s |" % (name, sec.na[name]) + " |" * (len(head) - 3))
            continue
        runs = sec.runs.get(name, [])
        okr = sec.ok_runs(name)
        row = [name, "%d/%d" % (len(okr), len(runs))]
        for c in cols:
            v = sec.median(name, c)
            if c in ("rps", "cpu_us", "mbps") and name in no_rps:
                v = None
            row.append(f(v, COL[c][1]))
        for c in sec.ratio_cols:
            if name == sec.ref:
                row.append("1")
            elif c in ("rps", "mbps") and name in no_rps:
                row.append("—")
            else:
                row.append(f(sec.ratio(name, c), "%.2f×"))
        row.append(conns_text(sec, name))
        lines.append("| " + " | ".join(row) + " |")
    notes = [failed_note(sec, n) for n in sec.clients if failed_note(sec, n)]
    return lines, [n for n in notes]


def idle_stats(sec, name):
    top = med([r.m.maxrss_kib for r in sec.ok_runs(name)])
    base = med([r.m.maxrss_kib for r in sec.base_runs.get(name, []) if r.ok])
    per = (top - base) / (sec.n - sec.n0) if top is not None and base is not None else None
    peak = med([r.m.extra["server_peak"] for r in sec.ok_runs(name) if r.m.extra])
    return top, base, per, peak


def table_idle(sec):
    https = sec.job.cacert is not None
    head = ["client", "conns", "server peak", "peak RSS MiB", "RSS MiB with %d" % sec.n0,
            "KiB / conn", "wall s", "CPU s", "KiB/conn ÷ volley"] + (["TLS conns (resumed; TLS)"] if https else [])
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    vper = idle_stats(sec, "volley")[2] if "volley" in sec.runs else None
    for name in ordered(sec):
        if name in sec.na:
            lines.append("| %s | n/a | %s |" % (name, sec.na[name]) + " |" * (len(head) - 3))
            continue
        top, base, per, peak = idle_stats(sec, name)
        ok = bool(sec.ok_runs(name))
        lines.append("| " + " | ".join([
            name, str(sec.n), f(peak, "%d"), f(top / 1024 if top else None, "%.1f"),
            f(base / 1024 if base else None, "%.1f"), f(per, "%.1f"),
            f(sec.median(name, "wall") if ok else None, "%.2f"),
            f(sec.median(name, "cpu") if ok else None, "%.2f"),
            "1" if name == "volley" else f(per / vper if per and vper else None, "%.2f×")]
            + ([conns_text(sec, name)] if https else [])) + " |")
    notes = [failed_note(sec, n) for n in sec.clients if failed_note(sec, n)]
    for name in sec.clients:
        bad = [r for r in sec.base_runs.get(name, []) if not r.ok]
        if bad:
            notes.append("%s baseline failed: %s" % (name, bad[0].error))
        peak = idle_stats(sec, name)[3] if name in sec.runs else None
        if peak is not None and peak < 0.95 * sec.n:
            notes.append("%s: the server saw at most %d of %d connections at once" % (name, peak, sec.n))
    return lines, notes


def list_stats(sec, name):
    small = med([r.m.maxrss_kib for r in sec.small_runs.get(name, []) if r.ok])
    big = med([r.m.maxrss_kib for r in sec.ok_runs(name)])
    growth = (big / small - 1) * 100 if small and big else None
    return small, big, growth


def table_list(sec):
    from scenarios import fmt_count
    s, b = fmt_count(sec.small), fmt_count(sec.big)
    head = ["client", "peak RSS MiB, %s URLs" % s, "peak RSS MiB, %s URLs" % b, "growth",
            "wall s (%s)" % b, "req/s (%s)" % b, "CPU µs/req (%s)" % b]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for name in ordered(sec):
        if name in sec.na:
            lines.append("| %s | n/a | %s |" % (name, sec.na[name]) + " |" * (len(head) - 3))
            continue
        small, big, growth = list_stats(sec, name)
        lines.append("| " + " | ".join([
            name, f(small / 1024 if small else None, "%.1f"), f(big / 1024 if big else None, "%.1f"),
            f(growth, "%+.1f%%"), f(sec.median(name, "wall"), "%.2f"),
            f(sec.median(name, "rps"), "{:,.0f}"), f(sec.median(name, "cpu_us"), "%.1f")]) + " |")
    notes = [failed_note(sec, n) for n in sec.clients if failed_note(sec, n)]
    for name in sec.clients:
        bad = [r for r in sec.small_runs.get(name, []) if not r.ok]
        if bad:
            notes.append("%s (%s URLs) failed: %s" % (name, s, bad[0].error))
    return lines, notes


# -- targets -----------------------------------------------------------------

def targets(secs):
    """[(scenario, target text, measured text, True/False/None)]"""
    by = {s.key: s for s in secs}
    out = []

    def add(scn, text, value, met):
        out.append((scn, text, value, met))

    def inv(x):
        return 1 / x if x else None

    s = by.get("many")
    if s:
        for name, want, label in (("wrk -t1 (ceiling)", 0.9, "wrk -t1"), ("curl --parallel", 3.5, "curl"),
                                  ("aiohttp", 20, "aiohttp"), ("node fetch", 15, "node")):
            v = inv(s.ratio(name, "rps"))
            add("many", "req/s ≥ %g× %s" % (want, label), f(v, "%.2f×"), None if v is None else v >= want)
        v = s.ratio("curl --parallel", "cpu_us")
        add("many", "CPU/request ≤ curl's / 3", "curl/volley = " + f(v, "%.2f"), None if v is None else v >= 3)
        v = s.ratio("curl --parallel", "rss")
        add("many", "RSS ≤ curl's", "curl/volley = " + f(v, "%.2f"), None if v is None else v >= 1)
    s = by.get("seed")
    if s:
        v = s.ratio("curl --parallel", "wall")
        add("seed", "wall ≤ curl's", "curl/volley = " + f(v, "%.2f"), None if v is None else v >= 1)
        v = inv(s.ratio("critical path (1 URL)", "wall"))
        add("seed", "wall ≤ 1.1× critical path", "volley/critical = " + f(v, "%.2f"),
            None if v is None else v <= 1.1)
        v = s.ratio("curl --parallel", "cpu")
        add("seed", "CPU ≤ curl's", "curl/volley = " + f(v, "%.2f"), None if v is None else v >= 1)
        v = s.ratio("aiohttp gather", "rss")
        add("seed", "RSS ≤ aiohttp's / 5", "aiohttp/volley = " + f(v, "%.2f"), None if v is None else v >= 5)
    s = by.get("tls")
    if s:
        v = inv(s.ratio("curl --parallel", "rps"))
        add("tls", "req/s ≥ 1.5× curl", f(v, "%.2f×"), None if v is None else v >= 1.5)
    for key in ("big-1-discard", "big-1-save", "big-16-discard", "big-16-save"):
        s = by.get(key)
        if s:
            v = inv(s.ratio("curl --parallel", "mbps"))
            add(key, "MB/s ≥ 1.0× curl", f(v, "%.2f×"), None if v is None else v >= 1.0)
    for key, lim in (("idle-plain", 8), ("idle-tls", 48)):
        s = by.get(key)
        if s:
            for name in [n for n in s.clients if n.startswith("volley") and n in s.runs]:
                per = idle_stats(s, name)[2]
                add(key, "≤ %d KiB RSS per connection%s" % (lim, "" if name == "volley" else " (%s)" % name),
                    f(per, "%.1f KiB") if per is not None else "failed" if not s.ok_runs(name) else "—",
                    None if per is None else per <= lim)
    for key in ("list", "hosts"):
        s = by.get(key)
        if s:
            small, big, growth = list_stats(s, "volley") if "volley" in s.runs else (None,) * 3
            add(key, "RSS at %d URLs within 10%% of RSS at %d" % (s.big, s.small),
                f(growth, "%+.1f%%"), None if growth is None else growth <= 10)
    return out


def markdown(meta, secs):
    L = ["# volley benchmark — %s" % meta["date"], "",
         "%s, %s run (`%s`).  Every figure is the median over the rounds; ratios are "
         "client ÷ volley, computed round by round (each pair ran back to back) and then the "
         "median taken.  Runs alternate A B C … C B A." % (meta["box"], meta["mode"], meta["command"]), ""]
    for k, v in meta["versions"]:
        L.append("- %s: %s" % (k, v))
    for n in meta.get("notes", []):
        L.append("- " + n)
    L.append("")
    for sec in secs:
        L += ["## " + sec.title, "", sec.describe, ""]
        if isinstance(sec, IdleSection):
            lines, notes = table_idle(sec)
        elif isinstance(sec, ListSection):
            lines, notes = table_list(sec)
        else:
            lines, notes = table_std(sec)
        L += lines
        L.append("")
        for n in notes + sec.notes:
            L.append("- " + n)
        if notes or sec.notes:
            L.append("")
    tg = targets(secs)
    if tg:
        L += ["## Targets", "", "| scenario | target | measured | |", "|---|---|---|---|"]
        for scn, text, value, met in tg:
            L.append("| %s | %s | %s | %s |" % (scn, text, value,
                                                 "met" if met else ("pending" if met is None else "**missed**")))
        L.append("")
    return "\n".join(L) + "\n"


# -- chart -------------------------------------------------------------------

def chart(secs, outdir, png):
    """One panel per section: the headline figure per client."""
    panels = []
    for sec in secs:
        rows = []
        if isinstance(sec, IdleSection):
            label = "KiB RSS per connection (lower is better)"
            for name in sec.clients:
                if name in sec.runs:
                    v = idle_stats(sec, name)[2]
                    if v is not None:
                        rows.append((name, v))
        elif isinstance(sec, ListSection):
            label = "peak RSS MiB at %d URLs (lower is better)" % sec.big
            for name in sec.clients:
                if name in sec.runs:
                    v = list_stats(sec, name)[1]
                    if v is not None:
                        rows.append((name, v / 1024))
        else:
            metric = "mbps" if "mbps" in sec.columns else ("wall" if sec.key == "seed" else "rps")
            label = {"mbps": "MB/s (higher is better)", "wall": "wall s (lower is better)",
                     "rps": "requests/s (higher is better)"}[metric]
            for name in sec.clients:
                v = sec.median(name, metric) if name in sec.runs else None
                if v is not None:
                    rows.append((name, v))
        if not rows:
            continue
        dat = os.path.join(outdir, "chart-%s.dat" % sec.key)
        with open(dat, "w") as fh:
            for name, v in rows:
                fh.write("%s\t%g\t%d\n" % (name.replace("'", ""), v, 1 if name.startswith("volley") else 0))
        panels.append((sec.key, label, dat, len(rows)))
    if not panels:
        return None
    cols = 1 if len(panels) == 1 else 2
    rows = (len(panels) + cols - 1) // cols
    gp = ["set terminal pngcairo size %d,%d font 'sans,9'" % (1400, 330 * rows) if _has_cairo()
          else "set terminal png size %d,%d" % (1400, 330 * rows),
          "set output '%s'" % png,
          "set datafile separator '\\t'",
          "set style fill solid 0.85 border -1", "set boxwidth 0.7",
          "set xtics rotate by -20 scale 0 font ',8'", "set grid ytics", "set yrange [0:*]",
          "set offsets 0,0,graph 0.12,0",
          "set multiplot layout %d,%d title 'volley benchmark'" % (rows, cols)]
    for key, label, dat, n in panels:
        gp += ["set title '%s: %s'" % (key, label), "set xrange [-0.6:%g]" % (n - 0.4),
               "plot '%s' using 0:2:($3 == 1 ? 0x3366aa : 0x999999):xtic(1) with boxes lc rgb variable notitle, "
               "'' using 0:2:($2 >= 100 ? sprintf('%%.0f', $2) : sprintf('%%.3g', $2)) "
               "with labels offset 0,0.8 notitle" % dat]
    gp.append("unset multiplot")
    script = os.path.join(outdir, "chart.gp")
    with open(script, "w") as fh:
        fh.write("\n".join(gp) + "\n")
    r = subprocess.run(["gnuplot", script], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=60)
    if r.returncode != 0:
        return "gnuplot failed: " + r.stdout.decode(errors="replace")[-300:]
    return None


def _has_cairo():
    try:
        r = subprocess.run(["gnuplot", "-e", "set terminal"], stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, timeout=20)
        return b"pngcairo" in r.stdout
    except (OSError, subprocess.SubprocessError):
        return False
