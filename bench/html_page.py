#!/usr/bin/env python3
"""How fast the HTML report opens in headless Chromium, and how big it is.

For each page: its size, the size of its profile, and over several runs
(the median) the time from navigation to the page saying it is drawn, and the longest task the browser reports
(PerformanceObserver, "longtask"): how long the page kept the browser from
answering.
The pages are opened one at a time by bench/html_open.js (Node, through
Chromium's DevTools protocol), each in a fresh headless Chromium.
  * the report of bench/alloc_heavy.py (the Python benchmark's trace),
    traced here with the tracer of BUILD;
  * synthetic reports put into the same page, at the scale the page must
    stay usable at: --sites sites (100,000) with 1,000 timeline points, and
    --points points (10^6, each with every key of the schema) with 1,000
    sites.

    python3 bench/html_page.py [--build build] [--reps 5]
"""
import argparse
import json
import os
import random
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

PROBE_HEAD = """<script>window.mtLong = [];
new PerformanceObserver(function (l) { l.getEntries().forEach(function (e) { mtLong.push(e.duration); }); })
  .observe({entryTypes: ["longtask"]});</script>"""
# once the page says it is drawn: its time since navigation (a frame is
# not waited for: headless Chromium does not always make one for a page
# this large that nobody looks at)
PROBE_TAIL = """<script>(function poll() {
  if (document.documentElement.getAttribute("data-memtrace") === "loading") return setTimeout(poll, 5);
  document.documentElement.setAttribute("data-drawn-ms", performance.now().toFixed(1));
})();</script>"""


def chromium():
    for name in ("chromium", "chromium-browser", "google-chrome"):
        if shutil.which(name):
            return shutil.which(name)
    sys.exit("no chromium")


def open_pages(pages):
    """[(state, drawn ms, longest task ms, main thread CPU ms)] of each page,
    by html_open.js."""
    proc = subprocess.run(["node", "--experimental-websocket", "--no-warnings",
                           str(REPO / "bench" / "html_open.js"), chromium(), *map(str, pages)],
                          capture_output=True, text=True, timeout=3600)
    if proc.returncode:
        sys.exit(proc.stderr)
    out = []
    for line in proc.stdout.splitlines():
        r = json.loads(line)
        out.append((r["state"], r["drawn_ms"], max(r["long_ms"] or [0]), r["cpu_ms"]))
    return out


def probed(template, data, out):
    """The page template with data as its data block, and the probes."""
    text = template.split('<script type="application/json" id="mt-data">', 1)
    head, rest = text[0], text[1].split("</script>", 1)[1]
    block = json.dumps(data, separators=(",", ":")).replace("<", "\\u003c").replace(
        ">", "\\u003e").replace("&", "\\u0026")
    out.write_text(head.replace("<body>", "<body>" + PROBE_HEAD, 1) +
                   '<script type="application/json" id="mt-data">' + block + "</script>" +
                   rest.replace("</body>", PROBE_TAIL + "</body>"), encoding="utf-8")
    return out


def synthetic(base, nsites, npoints, seed=1):
    """base's report with nsites sites (random stacks over nsites/2
    functions in 2,000 files, random cells) and npoints timeline points."""
    rnd = random.Random(seed)
    rep = dict(base)
    nbuckets = 256
    strings = ["file%d.py" % i for i in range(2000)] + ["f%d" % i for i in range(nsites // 2)]
    nframes = nsites
    frames = {"function": [2000 + rnd.randrange(nsites // 2) for _ in range(nframes)],
              "file": [rnd.randrange(2000) for _ in range(nframes)],
              "line": [rnd.randrange(1, 5000) for _ in range(nframes)],
              "module": [-1] * nframes}
    node_frame, node_parent, sites = [], [], {k: [] for k in (
        "where", "node", "domain", "thread", "allocs", "bytes", "peak_bytes", "peak_blocks",
        "live_bytes_at_exit", "live_blocks_at_exit", "temporary_allocs", "temporary_bytes",
        "cells")}
    cell_keys = ("bucket", "allocs", "bytes", "live_bytes", "temporary_allocs", "temporary_bytes")
    cells = {k: [] for k in cell_keys}
    roots = []
    for i in range(nsites):
        depth = rnd.randrange(2, 12)
        parent = rnd.choice(roots) if roots and rnd.random() < 0.9 else -1
        for _ in range(depth):
            node_frame.append(rnd.randrange(nframes))
            node_parent.append(parent)
            parent = len(node_frame) - 1
        if len(roots) < 200:
            roots.append(parent)
        mine, prev, allocs, nbytes, live, temp = 0, 0, 0, 0, 0, 0
        for b in sorted(rnd.sample(range(nbuckets), rnd.randrange(1, 6))):
            da, db = rnd.randrange(1, 1000), rnd.randrange(1, 100000)
            dl = rnd.randrange(-live, db) if live else db
            dt = rnd.randrange(0, da)
            for k, v in zip(cell_keys, (b - prev, da, db, dl, dt, dt * 16)):
                cells[k].append(v)
            mine += 1
            prev, allocs, nbytes, live, temp = b, allocs + da, nbytes + db, live + dl, temp + dt
        for k, v in (("where", rnd.randrange(nframes)), ("node", parent), ("domain", rnd.randrange(4)),
                     ("thread", rnd.randrange(8)), ("allocs", allocs), ("bytes", nbytes),
                     ("peak_bytes", live // 2), ("peak_blocks", 1), ("live_bytes_at_exit", live),
                     ("live_blocks_at_exit", 1 if live else 0), ("temporary_allocs", temp),
                     ("temporary_bytes", temp * 16), ("cells", mine)):
            sites[k].append(v)
    rep["profile"] = {"grid": {"from_us": 0, "bucket_us": 40000, "buckets": nbuckets}, "strings": strings,
                      "frames": frames, "nodes": {"frame": node_frame, "parent": node_parent},
                      "threads": list(range(1000, 1008)), "sites": sites, "cells": cells}
    keys = ("time_us", "heap", "malloc", "pymem_raw", "pymem_mem", "pymem_obj", "arenas", "pools")
    points, heap = {k: [] for k in keys}, 0
    for i in range(npoints):
        heap = max(0, heap + rnd.randrange(-1000, 1100))
        for k, v in zip(keys, (i * 10, heap, heap // 2, 0, heap // 4, heap // 3, heap >> 20,
                               heap >> 14)):
            points[k].append(v)
    rep["timeline"] = {"interval_us": 10, "points": points}
    return rep


def traced_page(build, stem):
    """The HTML page of alloc_heavy.py traced with build's library."""
    trace, page = stem.with_suffix(".trace"), stem.with_suffix(".html")
    python = subprocess.run(["python3", "-c", "import sys; print(sys.executable)"],
                            capture_output=True, text=True).stdout.strip()
    env = dict(os.environ, LD_PRELOAD=str(build / "libmemtrace.so"),
               MEMTRACE_OUTPUT=str(trace), MEMTRACE_QUIET="1")
    subprocess.run([python, str(REPO / "bench" / "alloc_heavy.py")], env=env, check=True,
                   stdout=subprocess.DEVNULL)
    subprocess.run([str(build / "memtrace"), "report", "--format", "html", "-o", str(page),
                    str(trace)], check=True)
    return page


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--build", default=str(REPO / "build"))
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--sites", type=int, default=100_000)
    ap.add_argument("--points", type=int, default=1_000_000)
    ap.add_argument("--baseline", metavar="BUILD",
                    help="another memtrace's build directory: its page of the workload, "
                         "traced with its own library, is measured too")
    args = ap.parse_args()
    build = Path(args.build).resolve()
    work = Path(tempfile.mkdtemp(prefix="memtrace-html-bench."))
    try:
        page = traced_page(build, work / "alloc_heavy")
        template = page.read_text(encoding="utf-8")
        data = json.loads(re.search(r'id="mt-data">(.*?)</script>', template, re.S).group(1))
        pages = [("alloc_heavy.py", probed(template, data, work / "a.html"), page.stat().st_size,
                  len(json.dumps(data["report"].get("profile"), separators=(",", ":"))))]
        if args.baseline:
            old = traced_page(Path(args.baseline).resolve(), work / "baseline")
            probe = old.read_text(encoding="utf-8").replace("<body>", "<body>" + PROBE_HEAD, 1)
            old.write_text(probe.replace("</body>", PROBE_TAIL + "</body>"), encoding="utf-8")
            pages.append(("alloc_heavy.py, --baseline's page", old, old.stat().st_size, 0))
        for nsites, npoints in ((args.sites, 1000), (1000, args.points)):
            big = synthetic(data["report"], nsites, npoints)
            syn = probed(template, {"report": big}, work / ("s%d.html" % len(pages)))
            pages.append(("%d sites, %d points" % (nsites, npoints), syn, syn.stat().st_size,
                          len(json.dumps(big["profile"], separators=(",", ":")))))
            del big
        print("%-36s %8s %8s %6s %10s %10s %10s" % ("page", "size", "profile", "drawn",
                                                    "drawn ms", "longest ms", "CPU ms"))
        for name, path, size, prof in pages:
            runs = open_pages([path] * args.reps)
            states = {r[0] for r in runs}
            drawn = statistics.median(r[1] for r in runs if r[1] is not None)
            longest = statistics.median(r[2] for r in runs)
            cpu = statistics.median(r[3] for r in runs)
            print("%-36s %7.1fM %7.1fM %6s %10.0f %10.0f %10.0f" % (
                name, size / 1e6, prof / 1e6, ",".join(sorted(map(str, states))), drawn,
                longest, cpu), flush=True)
    finally:
        shutil.rmtree(work, True)


if __name__ == "__main__":
    main()
