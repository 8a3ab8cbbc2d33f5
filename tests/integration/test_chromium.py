"""The HTML report in a real browser: headless Chromium (Debian package
`chromium`; skipped when it is not installed).

A Python script with marks is traced by the real interpreter and its
report loaded offline, with a fresh profile:
  * the page's script sets <html data-memtrace="ok"> once every chart, table
    and the flame graph are set up, "error" on any exception; no console
    errors at all;
  * a copy of the page with a test script appended drives it: sorts a
    table, hovers a chart, zooms the flame graph in and out, searches it,
    and reports what it saw;
  * the report views, against figures computed here from the page's own
    data block: each sort puts the expected site on top, with its figure;
    a time brushed on the heap chart shows the window's own peak and cuts
    the tables and the flame graph to it; a domain filter leaves only that
    domain's sites, a thread filter only that thread's;
  * pages of 100,000 sites and of 10^6 timeline points still draw, the
    chart downsampled, and cut to a window;
  * memtrace diff's page, of that run against one that builds a smaller
    list and a bigger dict: its totals, the sites table sorted by each
    column of changes (largest growth, then largest drop on top) and the
    --fail-on verdict, against the diff in its data block;
  * screenshots (1400 px wide) are written to $MEMTRACE_SCREENSHOTS
    (default: a scratch directory) and must be real, non-blank PNGs.

Run alone, this file exits 77 (ctest's SKIP_RETURN_CODE) when every test
was skipped."""

import html
import json
import os
import re
import shutil
import struct
import subprocess
import sys
import tempfile
import unittest
import zlib
from pathlib import Path

from harness import CHROMIUM, CLI, REPO, TIMEOUT, TracerTestCase, profile_cells, run_chromium

SCREENSHOTS = os.environ.get("MEMTRACE_SCREENSHOTS")

SCRIPT = """\
import sys
import threading
sys.path.insert(0, {python_dir!r})
from memtrace import mark

def square(i):
    return i * i

def build(n):
    return [square(i) for i in range(n)]

def nested(n):
    return {{str(i): (i, [i, str(i)]) for i in range(n)}}

def grow(n):
    out = []
    for i in range(n):
        out.append(str(i))
    return out

mark("build the list")
xs = build(300000)
mark("build a dict")
d = nested(20000)
mark("grow a list")
out = []
t = threading.Thread(target=lambda: out.append(grow(50000)))
t.start()
t.join()
mark("free the list")
del xs
mark("end <script>alert(1)</script>")
"""

# The page draws its views a task at a time: the self-tests start once it
# says it is done (the browser runs with a virtual time budget, so that
# they get to run before the page is dumped).
WHEN_DRAWN = """
<script>
function whenDrawn(f) {
  (function poll() {
    if (document.documentElement.getAttribute("data-memtrace") !== "loading") f();
    else setTimeout(poll, 10);
  })();
}
// f(out) fills out once the page is drawn; out, with the page's status and
// any error, goes into <html data-selftest> as JSON.
function selfTest(f) {
  whenDrawn(function () {
    var out = {status: document.documentElement.getAttribute("data-memtrace")};
    try {
      f(out);
    } catch (e) {
      out.error = String(e && e.stack || e);
    }
    document.documentElement.setAttribute("data-selftest", JSON.stringify(out));
  });
}
</script>
"""

# Appended to a copy of the page: drives it and writes what it saw into
# <html data-selftest>, as JSON.
SELF_TEST = """
<script>
selfTest(function (out) {
  function fire(el, type, x, y) {
    el.dispatchEvent(new MouseEvent(type, {bubbles: true, clientX: x, clientY: y}));
  }
  // sort the sites by their first numeric column, twice
  var table = document.querySelector("#summary table.sortable");
  var th = table.querySelectorAll("th[data-sort=num]")[1];
  var col = Array.prototype.indexOf.call(th.parentNode.cells, th);
  function column() {
    return Array.prototype.map.call(table.tBodies[0].rows, function (r) {
      return parseFloat(r.cells[col].getAttribute("data-v"));
    });
  }
  function sorted(values, dir) {
    return values.length >= 3 && values.every(function (v, i) {
      return i === 0 || (dir === "ascending" ? values[i - 1] <= v : values[i - 1] >= v);
    });
  }
  th.click();
  var first = column(), dir1 = th.getAttribute("aria-sort");
  th.click();
  var second = column(), dir2 = th.getAttribute("aria-sort");
  out.sort = {first: first.slice(0, 5), second: second.slice(0, 5), dir1: dir1, dir2: dir2,
    ok1: sorted(first, dir1), ok2: sorted(second, dir2)};
  // hover the heap chart in its middle
  var chart = document.querySelector("#heap svg[data-chart=heap]");
  var box = chart.getBoundingClientRect();
  fire(chart, "mousemove", box.left + box.width / 2, box.top + box.height / 2);
  var tip = document.getElementById("mt-tip");
  out.chartTip = tip.style.display === "block" ? tip.textContent : null;
  // the flame graph: frames drawn, zoom into the widest child of the root, reset
  var fg = document.querySelector("#fg svg");
  var frames = fg.querySelectorAll("g");
  out.frames = frames.length;
  var best = null;
  Array.prototype.forEach.call(frames, function (g) {
    var r = g.querySelector("rect");
    if (+r.getAttribute("y") > 0 && +r.getAttribute("y") < 20 &&
        (!best || +r.getAttribute("width") > +best.querySelector("rect").getAttribute("width")))
      best = g;
  });
  var rb = best.querySelector("rect").getBoundingClientRect();
  fire(best.querySelector("rect"), "mousemove", rb.left + 2, rb.top + 2);
  out.flameTip = tip.textContent;
  var name = best.textContent;
  best.querySelector("rect").dispatchEvent(new MouseEvent("click", {bubbles: true}));
  var zoomed = Array.prototype.filter.call(fg.querySelectorAll("g"), function (g) {
    return +g.querySelector("rect").getAttribute("y") > 0 &&
           +g.querySelector("rect").getAttribute("y") < 20;
  });
  out.zoomedWidth = zoomed.length ? +zoomed[0].querySelector("rect").getAttribute("width") : 0;
  out.svgWidth = fg.viewBox.baseVal.width;
  out.zoomedName = zoomed.length ? zoomed[0].textContent : null;
  out.clickedName = name;
  document.getElementById("fg-reset").click();
  out.framesAfterReset = fg.querySelectorAll("g").length;
  var search = document.getElementById("fg-search");
  search.value = "build";
  search.dispatchEvent(new Event("input"));
  out.match = document.getElementById("fg-match").textContent;
  out.hits = fg.querySelectorAll("g.hit").length;
});
</script>
"""

# Appended to memtrace diff's page: its totals, the sites table's first row
# as drawn and after each click on a column of changes (twice: growth
# first, then drops first), and the verdict.
DIFF_TEST = """
<script>
selfTest(function (out) {
  out.totals = {};
  document.querySelectorAll("#summary .card[data-total]").forEach(function (c) {
    out.totals[c.getAttribute("data-total")] = +c.getAttribute("data-v");
  });
  var t = document.querySelector("#sites table.diff-sites");
  function top() {
    var tr = t.tBodies[0].rows[0];
    return {site: tr.cells[0].textContent, domain: tr.cells[1].textContent,
            values: Array.prototype.slice.call(tr.cells, 2).map(function (td) {
              return +td.getAttribute("data-v"); })};
  }
  out.rows = t.tBodies[0].rows.length;
  out.first = top();
  out.sorts = [];
  Array.prototype.forEach.call(t.tHead.rows[0].cells, function (th, i) {
    if (i < 2) return;
    th.click();
    var growth = {top: top(), dir: th.getAttribute("aria-sort")};
    th.click();
    out.sorts.push({head: th.textContent, growth: growth,
                    drop: {top: top(), dir: th.getAttribute("aria-sort")}});
  });
  var v = document.getElementById("verdict");
  out.verdict = v && {failed: v.classList.contains("fail"),
    limits: Array.prototype.map.call(v.querySelectorAll("li"), function (li) {
      return [li.querySelector("code").textContent, li.getAttribute("data-exceeded") === "true"];
    })};
});
</script>
"""

# The diff's second run: a smaller list (fewer ints), a bigger dict.
DIFF_CHANGES = (("xs = build(300000)", "xs = build(200000)"), ("d = nested(20000)", "d = nested(60000)"))
DIFF_COLUMNS = ("bytes", "peak_bytes", "leaked_bytes", "allocs", "temporary_allocs")

# ---- the report views, computed here from the page's data ------------------

CELL = 6
SORTS = {"peak": ("peak", "bytes"), "allocations": ("allocs", "bytes"),
         "bytes": ("bytes", "allocs"), "leaked": ("leak", "leakBlocks"),
         "temporary": ("temp", "tempBytes")}


def page_data(text):
    m = re.search(r'<script type="application/json" id="mt-data">(.*?)</script>', text, re.S)
    return json.loads(m.group(1))


def cell_at(cells, b):
    best = [0] * CELL
    for c in cells:
        if c[0] <= b:
            best = c
    return best


def make_window(rep, t0, t1):
    """The window as the page makes it: grid buckets, and its peak, the
    highest heap of the timeline in it."""
    grid = rep["profile"]["grid"]
    width, origin = grid["bucket_us"], grid["from_us"]
    peak, peak_t = None, t0
    points = rep["timeline"]["points"]
    for t, heap in zip(points["time_us"], points["heap"]):
        if t0 <= t <= t1 and (peak is None or heap > peak):
            peak, peak_t = heap, t
    return {"b0": int((t0 - origin) // width), "b1": int((t1 - origin) // width),
            "bp": int((peak_t - origin) // width), "peak": peak}


def site_figures(rep, win=None):
    s = rep["profile"]["sites"]
    out, cells_of = [], profile_cells(rep["profile"])
    for i in range(len(s["where"])):
        if win is None:
            out.append({"allocs": s["allocs"][i], "bytes": s["bytes"][i],
                        "peak": s["peak_bytes"][i], "leak": s["live_bytes_at_exit"][i],
                        "leakBlocks": s["live_blocks_at_exit"][i],
                        "temp": s["temporary_allocs"][i], "tempBytes": s["temporary_bytes"][i]})
            continue
        cells = cells_of[i]
        a, b = cell_at(cells, win["b0"] - 1), cell_at(cells, win["b1"])
        out.append({"allocs": b[1] - a[1], "bytes": b[2] - a[2],
                    "peak": cell_at(cells, win["bp"])[3], "leak": b[3], "leakBlocks": 0,
                    "temp": b[4] - a[4], "tempBytes": b[5] - a[5]})
    return out


def group_rows(rep, fig, domains=(0, 1, 2, 3), thread=None):
    """The visible sites by line: where frame -> summed figures."""
    s, rows = rep["profile"]["sites"], {}
    for i, f in enumerate(fig):
        if s["domain"][i] not in domains or thread not in (None, s["thread"][i]):
            continue
        r = rows.setdefault(s["where"][i], dict.fromkeys(f, 0))
        for k, v in f.items():
            r[k] += v
    return rows


def top_row(rows, how):
    """The page's sites table: rows with anything, by key, key2, then frame."""
    key, key2 = SORTS[how]
    live = {w: r for w, r in rows.items() if r["allocs"] > 0 or r["peak"] > 0 or r["leak"] > 0}
    where = min(live, key=lambda w: (-live[w][key], -live[w][key2], w))
    return where, live[where]

# Appended to a copy of the page: uses the report views as a user does
# (buttons, the mouse on the heap chart, check boxes) and writes what the
# tables, the window and the flame graph show into <html data-selftest>.
VIEWS_TEST = """
<script>
selfTest(function (out) {
  function fire(el, type, x, y) {
    el.dispatchEvent(new MouseEvent(type, {bubbles: true, clientX: x, clientY: y, button: 0}));
  }
  function top(id) {
    var tr = document.querySelector("#" + id + " table.sites tbody tr");
    if (!tr) return null;
    return {where: +tr.getAttribute("data-where"),
            values: Array.prototype.slice.call(tr.cells, 2).map(function (td) {
              return +td.getAttribute("data-v"); })};
  }
  function sorts() {
    var r = {};
    ["peak", "allocations", "bytes", "leaked", "temporary"].forEach(function (k) {
      document.querySelector("#sites button[data-sort-by=" + k + "]").click();
      r[k] = top("sites");
    });
    return r;
  }
  out.whole = {sorts: sorts(), flame: window.memtrace.flameTotal(),
               peakText: document.querySelector(".win-peak").textContent};
  /* brush the heap chart from T0 to T1 */
  var c = document.querySelector("#heap svg[data-chart=heap]");
  var g = c.getAttribute("data-plot").split(" ").map(Number);  /* L R x0 x1 W */
  var box = c.getBoundingClientRect();
  function cx(t) { return box.left + (g[0] + (t - g[2]) / (g[3] - g[2]) * (g[1] - g[0])) * box.width / g[4]; }
  var cy = box.top + box.height / 2;
  fire(c, "mousedown", cx(%(t0)s), cy);
  fire(c, "mousemove", cx(%(t1)s), cy);
  fire(c, "mouseup", cx(%(t1)s), cy);
  var w = window.memtrace.window();
  out.window = w && {t0: w.t0, t1: w.t1, peak: w.peak};
  out.windowPeakText = document.querySelector(".win-peak").textContent;
  out.inWindow = {sorts: sorts(), flame: window.memtrace.flameTotal()};
  /* back to the whole trace; then malloc alone */
  document.getElementById("win-clear").click();
  out.clearedPeakText = document.querySelector(".win-peak").textContent;
  document.querySelectorAll("input[data-domain]").forEach(function (cb) {
    if (cb.value !== "malloc") cb.click();
  });
  document.querySelector("#sites button[data-sort-by=bytes]").click();
  out.malloc = {top: top("sites"), flame: window.memtrace.flameTotal(),
    domains: Array.prototype.map.call(
      document.querySelectorAll("#sites table.sites tbody tr td.dom"),
      function (td) { return td.title; })};
  /* every domain again; then the thread that grew the list alone */
  document.querySelectorAll("input[data-domain]").forEach(function (cb) {
    if (!cb.checked) cb.click();
  });
  var threads = document.getElementById("view-thread");
  threads.value = "%(thread)s";
  threads.dispatchEvent(new Event("change"));
  out.thread = {top: top("sites"), flame: window.memtrace.flameTotal(),
    options: threads.options.length};
});
</script>
"""

# Appended to the large page: what it drew, and a brushed window.
SCALE_TEST = """
<script>
selfTest(function (out) {
  var c = document.querySelector("#heap svg[data-chart=heap]");
  out.vertices = c.querySelector("path.line").getAttribute("d").split(/[ML]/).length - 1;
  out.plot = c.getAttribute("data-plot").split(" ").map(Number);
  out.rows = document.querySelectorAll("#sites table.sites tbody tr").length;
  out.more = document.querySelector("#sites button.showall").textContent;
  window.memtrace.setWindow(%(t0)s, %(t1)s);
  out.windowPeak = window.memtrace.window().peak;
  out.flame = window.memtrace.flameTotal();
});
</script>
"""


# Appended to a page: the flame graph's total and the peak of a window.
WINDOW_TEST = """
<script>
selfTest(function (out) {
  window.memtrace.setWindow(%(t0)s, %(t1)s);
  out.flame = window.memtrace.flameTotal();
  out.peak = window.memtrace.window().peak;
});
</script>
"""


def large_report(base, nsites, npoints):
    """base with nsites sites, each its own line with one cell, and a
    timeline of npoints points whose heap is a saw tooth with one high
    tooth: the page must draw it downsampled and keep that peak."""
    rep = dict(base)
    nbuckets = 256
    step = 10  # us between points
    bucket = max(1, npoints * step // nbuckets)
    strings = ["file%d.py" % (i % 1000) for i in range(1000)] + ["f%d" % i for i in range(nsites)]
    sites = {"where": list(range(nsites)), "node": list(range(nsites)),
             "domain": [i % 4 for i in range(nsites)], "thread": [0] * nsites,
             "allocs": [1 + i % 7 for i in range(nsites)],
             "bytes": [100 * (1 + i % 7) for i in range(nsites)],
             "peak_bytes": [i % 5 for i in range(nsites)], "peak_blocks": [1] * nsites,
             "live_bytes_at_exit": [0] * nsites, "live_blocks_at_exit": [0] * nsites,
             "temporary_allocs": [0] * nsites, "temporary_bytes": [0] * nsites,
             "cells": [1] * nsites}
    cells = {"bucket": [i % nbuckets for i in range(nsites)], "allocs": sites["allocs"],
             "bytes": sites["bytes"], "live_bytes": [0] * nsites,
             "temporary_allocs": [0] * nsites, "temporary_bytes": [0] * nsites}
    rep["profile"] = {"grid": {"from_us": 0, "bucket_us": bucket, "buckets": nbuckets},
                      "strings": strings,
                      "frames": {"function": [1000 + i for i in range(nsites)],
                                 "file": [i % 1000 for i in range(nsites)],
                                 "line": [1 + i for i in range(nsites)],
                                 "module": [-1] * nsites},
                      "nodes": {"frame": list(range(nsites)), "parent": [-1] * nsites},
                      "threads": [1], "sites": sites, "cells": cells}
    heap = [(i % 1000) * 1000 for i in range(npoints)]
    heap[npoints // 3] += 5_000_000
    rep["timeline"] = {"interval_us": step,
                       "points": {"time_us": list(range(0, npoints * step, step)), "heap": heap}}
    return rep


def python():
    for exe in ("/usr/bin/python3", shutil.which("python3")):
        if exe and Path(exe).exists():
            return subprocess.run([exe, "-c", "import sys; print(sys.executable)"],
                                  capture_output=True, text=True).stdout.strip()
    raise unittest.SkipTest("no python3")


def png_size(path):
    """(width, height) from a PNG's IHDR, after checking its signature."""
    data = Path(path).read_bytes()
    if data[:8] != b"\x89PNG\r\n\x1a\n" or data[12:16] != b"IHDR":
        raise AssertionError("%s is not a PNG" % path)
    return struct.unpack(">II", data[16:24]), data


def png_colours(data):
    """How many distinct colours the first rows of an 8-bit RGB(A) PNG hold
    (a blank page has one)."""
    width, height = struct.unpack(">II", data[16:24])
    depth, ctype = data[24], data[25]
    if depth != 8 or ctype not in (2, 6):
        return None
    idat, off = b"", 8
    while off < len(data):
        length, kind = struct.unpack(">I4s", data[off:off + 8])
        if kind == b"IDAT":
            idat += data[off + 8:off + 8 + length]
        off += 12 + length
    raw = zlib.decompress(idat)
    bpp = 3 if ctype == 2 else 4
    stride = width * bpp + 1
    colours, prev = set(), bytearray(stride - 1)
    for y in range(min(height, 600)):
        line = raw[y * stride:(y + 1) * stride]
        kind, cur = line[0], bytearray(line[1:])
        for i in range(len(cur)):  # undo the PNG filters
            a = cur[i - bpp] if i >= bpp else 0
            b = prev[i]
            c = prev[i - bpp] if i >= bpp else 0
            if kind == 1:
                cur[i] = (cur[i] + a) & 0xFF
            elif kind == 2:
                cur[i] = (cur[i] + b) & 0xFF
            elif kind == 3:
                cur[i] = (cur[i] + (a + b) // 2) & 0xFF
            elif kind == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                cur[i] = (cur[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 0xFF
        if y % 10 == 0:
            colours.update(bytes(cur[i:i + 3]) for i in range(0, len(cur), bpp * 7))
        prev = cur
    return len(colours)


@unittest.skipIf(CHROMIUM is None, "chromium is not installed (Debian package chromium)")
class Browser(TracerTestCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.work = Path(tempfile.mkdtemp(prefix="memtrace-chromium."))
        cls.addClassCleanup(shutil.rmtree, cls.work, True)
        script = cls.work / "steps.py"
        script.write_text(SCRIPT.format(python_dir=str(REPO / "python")))
        env = {k: v for k, v in os.environ.items() if not k.startswith("MEMTRACE_")}
        env.update(LD_PRELOAD=os.environ.get("MEMTRACE_LIB", str(REPO / "build" / "libmemtrace.so")),
                   MEMTRACE_OUTPUT=str(cls.work / "steps.trace"), MEMTRACE_QUIET="1",
                   MEMTRACE_PY_DEPTH="16")
        subprocess.run([python(), str(script)], env=env, check=True, timeout=TIMEOUT,
                       capture_output=True)
        cls.page = cls.work / "report.html"
        subprocess.run([str(CLI), "report", "--format", "html", "-o", str(cls.page),
                        str(cls.work / "steps.trace")], check=True, timeout=TIMEOUT)
        cls.env = env

    def diff_page(self, *options, expect_rc=0):
        """memtrace diff's page of the run against the changed one, and
        the diff as `--format json` prints it.  The changed script takes
        the first one's place, since sites match by their file."""
        script = self.work / "steps.py"
        text = SCRIPT.format(python_dir=str(REPO / "python"))
        for old, new in DIFF_CHANGES:
            self.assertIn(old, text)
            text = text.replace(old, new)
        script.write_text(text)
        new_trace = self.tmp / "steps2.trace"
        subprocess.run([python(), str(script)], env={**self.env, "MEMTRACE_OUTPUT": str(new_trace)},
                       check=True, timeout=TIMEOUT, capture_output=True)
        page = self.tmp / "steps-diff.html"
        traces = [str(self.work / "steps.trace"), str(new_trace)]
        proc = subprocess.run([str(CLI), "diff", "--format", "html", "-o", str(page), *options,
                               *traces], capture_output=True, text=True, timeout=TIMEOUT)
        self.assertEqual(proc.returncode, expect_rc, proc.stderr)
        proc = subprocess.run([str(CLI), "diff", "--format", "json", *options, *traces],
                              capture_output=True, text=True, timeout=TIMEOUT)
        self.assertEqual(proc.returncode, expect_rc, proc.stderr)
        return page, json.loads(proc.stdout)

    def selftest_result(self, page):
        """What the self-test appended to page wrote into <html data-selftest>."""
        dom = self.chromium("--dump-dom", "--window-size=1400,3000", page=page).stdout
        m = re.search(r"data-selftest=\"([^\"]*)\"", dom)
        self.assertIsNotNone(m, "the self-test did not run")
        got = json.loads(html.unescape(m.group(1)))
        self.assertNotIn("error", got, got.get("error"))
        self.assertEqual(got["status"], "ok")
        return got

    def chromium(self, *args, page=None):
        proc = run_chromium((page or self.page).as_uri(), self.tmp, "--virtual-time-budget=60000",
                            *args)
        self.assertEqual(proc.returncode, 0, proc.stderr[-3000:])
        console = [l for l in proc.stderr.splitlines() if "CONSOLE" in l or "Uncaught" in l]
        self.assertEqual(console, [], "console messages")
        return proc

    def test_renders_without_errors(self):
        dom = self.chromium("--dump-dom").stdout
        m = re.search(r'<html[^>]*data-memtrace="([^"]*)"', dom)
        self.assertIsNotNone(m, dom[:500])
        self.assertEqual(m.group(1), "ok")
        self.assertNotIn('id="mt-error"', dom)
        # the script built the flame graph
        self.assertIsNotNone(re.search(r'<div class="fg" id="fg"><svg[^>]*>.*?<rect', dom),
                             "no flame graph")
        # what the OS saw: its chart, and a row for the RSS peak, each mark
        # sampled and exit
        rep = page_data(self.page.read_text(encoding="utf-8"))["report"]
        self.assertTrue(rep["timeline"]["samples"])
        memory = re.search(r'<section id="memory">.*?</section>', dom, re.S)
        self.assertIsNotNone(memory, "no memory section")
        self.assertIn('data-chart="memory"', memory.group(0))
        sampled = [m for m in rep["marks"] if m.get("memory")]
        first_table = memory.group(0).split("</table>")[0]
        self.assertEqual(first_table.count("<tr>") - 1, 2 + len(sampled))
        self.assertIn("Why RSS is higher than the requested heap", memory.group(0))
        # the main script, line by line: a row per line of its text, the
        # list's line with its allocations
        self.assertTrue(rep["script_lines"])
        script = re.search(r'<section id="script">.*?</section>', dom, re.S)
        self.assertIsNotNone(script, "no script section")
        build = [l for l in rep["script_lines"] if l["source"].strip().startswith("return [square")]
        self.assertEqual(len(build), 1)
        row = re.search(r'<tr class="hot"><td class="n ln">%d</td><td class="n">([^<]*)</td>'
                        % build[0]["line"], script.group(0))
        self.assertIsNotNone(row)
        self.assertEqual(row.group(1).replace(",", ""), str(build[0]["allocs"]))

    def test_interactions(self):
        got = self.selftest(SELF_TEST, "selftest.html")
        self.assertEqual({got["sort"]["dir1"], got["sort"]["dir2"]}, {"ascending", "descending"})
        self.assertTrue(got["sort"]["ok1"] and got["sort"]["ok2"], got["sort"])
        self.assertIsNotNone(got["chartTip"], "no read-out on the heap chart")
        self.assertRegex(got["chartTip"], r"heap.*B")
        self.assertGreater(got["frames"], 5)
        self.assertIn("of all", got["flameTip"])
        self.assertAlmostEqual(got["zoomedWidth"], got["svgWidth"], delta=1)
        self.assertEqual(got["zoomedName"].split("…")[0][:10], got["clickedName"].split("…")[0][:10])
        self.assertEqual(got["framesAfterReset"], got["frames"])
        self.assertRegex(got["match"], r"matched .*B \(.*%\)")
        self.assertGreater(got["hits"], 0)

    def selftest(self, script, name, text=None):
        """What script saw on a copy (name) of the page whose HTML is text
        (by default the report's page)."""
        page = self.tmp / name
        text = self.page.read_text(encoding="utf-8") if text is None else text
        page.write_text(text.replace("</body>", WHEN_DRAWN + script + "</body>"),
                        encoding="utf-8")
        return self.selftest_result(page)

    def expect_sorts(self, got, rep, fig):
        rows = group_rows(rep, fig)
        column = {"allocations": 0, "bytes": 1, "peak": 2, "leaked": 3, "temporary": 4}
        for how in SORTS:
            where, figures = top_row(rows, how)
            with self.subTest(sort=how):
                self.assertEqual(got[how]["where"], where)
                self.assertEqual(got[how]["values"][column[how]], figures[SORTS[how][0]])
        return {how: got[how]["where"] for how in SORTS}

    def test_views(self):
        rep = page_data(self.page.read_text(encoding="utf-8"))["report"]
        marks = rep["marks"]
        first = 1 if marks[0]["label"] == "(before first mark)" else 0
        t0, t1 = marks[first]["time_us"], marks[first + 1]["time_us"]  # "build the list"
        # the threads in the order their sites came: the main one, then the
        # one that grew the list
        tids = rep["profile"]["threads"]
        self.assertEqual(len(tids), 2)
        thread = 1
        got = self.selftest(VIEWS_TEST % {"t0": t0, "t1": t1, "thread": thread}, "views.html")

        # each sort puts the expected site on top, and they are not all one
        tops = self.expect_sorts(got["whole"]["sorts"], rep, site_figures(rep))
        self.assertGreaterEqual(len(set(tops.values())), 3, tops)
        self.assertEqual(got["whole"]["flame"], sum(rep["profile"]["sites"]["bytes"]))

        # the brush: the window's own peak, lower than the trace's, and the
        # tables and flame graph cut to the window
        w = got["window"]
        self.assertIsNotNone(w, "the brush made no window")
        self.assertAlmostEqual(w["t0"], t0, delta=(t1 - t0) * 0.02 + 1000)
        self.assertAlmostEqual(w["t1"], t1, delta=(t1 - t0) * 0.02 + 1000)
        win = make_window(rep, w["t0"], w["t1"])
        self.assertEqual(w["peak"], win["peak"])
        self.assertLess(win["peak"], rep["summary"]["heap_peak"]["bytes"])
        self.assertNotEqual(got["windowPeakText"], got["whole"]["peakText"])
        self.assertEqual(got["clearedPeakText"], got["whole"]["peakText"])
        fig = site_figures(rep, win)
        self.expect_sorts(got["inWindow"]["sorts"], rep, fig)
        self.assertEqual(got["inWindow"]["flame"], sum(f["bytes"] for f in fig))
        self.assertLess(got["inWindow"]["flame"], got["whole"]["flame"])

        # malloc alone: no other domain in the table, the flame graph its bytes
        m = got["malloc"]
        self.assertTrue(m["domains"] and all(d == "malloc" for d in m["domains"]), m["domains"])
        sites = rep["profile"]["sites"]
        self.assertEqual(m["flame"], sum(b for b, d in zip(sites["bytes"], sites["domain"]) if d == 0))
        where, figures = top_row(group_rows(rep, site_figures(rep), domains=(0,)), "bytes")
        self.assertEqual(m["top"]["where"], where)
        self.assertEqual(m["top"]["values"][1], figures["bytes"])

        # the second thread alone: its sites' bytes, grow()'s append on top
        t = got["thread"]
        self.assertEqual(t["options"], len(tids) + 1)
        self.assertEqual(t["flame"], sum(b for b, k in zip(sites["bytes"], sites["thread"])
                                         if k == thread))
        where, figures = top_row(group_rows(rep, site_figures(rep), thread=thread), "bytes")
        self.assertEqual(t["top"]["where"], where)
        self.assertEqual(t["top"]["values"][1], figures["bytes"])
        frames = rep["profile"]["frames"]
        self.assertEqual(rep["profile"]["strings"][frames["function"][where]], "grow")

    def large_page(self, nsites, npoints):
        """What the page drew for a report of nsites sites and npoints
        timeline points, and for a window over its second quarter."""
        text = self.page.read_text(encoding="utf-8")
        rep = large_report(page_data(text)["report"], nsites, npoints)
        head, rest = text.split('<script type="application/json" id="mt-data">', 1)
        block = json.dumps({"report": rep}, separators=(",", ":")).replace("<", "\\u003c")
        t0, t1 = npoints // 4 * 10, npoints // 2 * 10
        got = self.selftest(SCALE_TEST % {"t0": t0, "t1": t1}, "large.html",
                            head + '<script type="application/json" id="mt-data">' + block +
                            "</script>" + rest.split("</script>", 1)[1])
        # the window's peak, and the flame graph of the sites' cells in it
        points = rep["timeline"]["points"]
        peak = max(h for t, h in zip(points["time_us"], points["heap"]) if t0 <= t <= t1)
        self.assertEqual(got["windowPeak"], peak)
        width = rep["profile"]["grid"]["bucket_us"]
        cells = rep["profile"]["cells"]
        self.assertEqual(got["flame"], sum(
            b for k, b in zip(cells["bucket"], cells["bytes"]) if t0 // width <= k <= t1 // width))
        print("\n%d sites, %d points: a page of %.0f MB" % (
            nsites, npoints, (self.tmp / "large.html").stat().st_size / 1e6), file=sys.stderr)
        return got

    def test_many_sites(self):
        """100,000 sites: the tables show a page of rows."""
        got = self.large_page(100_000, 1000)
        self.assertEqual(got["rows"], 50)
        self.assertEqual(got["more"], "Show all 100,000 rows")

    def test_many_points(self):
        """10^6 timeline points: the chart is downsampled to at most the
        first, lowest, highest and last point of each pixel, and the one
        high tooth is still the window's peak."""
        npoints = 1_000_000
        got = self.large_page(1000, npoints)
        left, right = got["plot"][0], got["plot"][1]
        self.assertLessEqual(got["vertices"], 4 * (right - left + 1))
        self.assertGreater(got["vertices"], right - left)
        self.assertEqual(got["windowPeak"], 5_000_000 + (npoints // 3 % 1000) * 1000)

    def test_report_of_a_window(self):
        """The page of `--from "build a dict" --to "grow a list"`: its grid
        starts at the window, so that the window brushed over all of it
        counts every site's bytes, and one over its second half the cells
        in that half."""
        page = self.tmp / "step.html"
        subprocess.run([str(CLI), "report", "--format", "html", "--from", "build a dict", "--to",
                        "grow a list", "-o", str(page), str(self.work / "steps.trace")],
                       check=True, timeout=TIMEOUT)
        text = page.read_text(encoding="utf-8")
        rep = page_data(text)["report"]
        t0, t1 = rep["window"]["from_us"], rep["window"]["to_us"]
        self.assertEqual(rep["profile"]["grid"]["from_us"], t0)
        whole = sum(rep["profile"]["sites"]["bytes"])
        self.assertGreater(whole, 0)
        for lo in (t0, (t0 + t1) // 2):
            with self.subTest(start=lo):
                got = self.selftest(WINDOW_TEST % {"t0": lo, "t1": t1}, page.name, text)
                win = make_window(rep, lo, t1)
                self.assertEqual(got["peak"], win["peak"])
                self.assertEqual(got["flame"], sum(f["bytes"] for f in site_figures(rep, win)))
                if lo == t0:
                    self.assertEqual(got["flame"], whole)

    def test_diff(self):
        """The diff's page draws the diff of its data block: the totals,
        a sortable table of the sites, the verdict of --fail-on."""
        page, d = self.diff_page("--fail-on", "allocs:+0", "--fail-on", "peak:+1000%",
                                 expect_rc=4)
        self.assertEqual(page_data(page.read_text(encoding="utf-8")), {"diff": d})
        got = self.selftest(DIFF_TEST, "diff-test.html", page.read_text(encoding="utf-8"))

        self.assertEqual(got["totals"], {k: c["delta"] for k, c in d["totals"].items()})
        sites = d["sites"]
        self.assertGreaterEqual(len(sites), 3)
        self.assertEqual(got["rows"], min(len(sites), 50))

        def values(site):
            return [site[k]["delta"] for k in DIFF_COLUMNS]

        def shown(row, site):
            self.assertEqual(row["values"], values(site))
            self.assertIn("%s:%d" % (Path(site["file"]).name, site["line"]), row["site"])
            self.assertIn(site["function"], row["site"])
            self.assertEqual(row["domain"], site["domain"])

        # as the diff orders them, then by each column: the first site of
        # the largest delta on top, then of the smallest
        shown(got["first"], sites[0])
        self.assertEqual(len(got["sorts"]), len(DIFF_COLUMNS))
        for key, s in zip(DIFF_COLUMNS, got["sorts"]):
            with self.subTest(column=key):
                self.assertEqual((s["growth"]["dir"], s["drop"]["dir"]), ("descending", "ascending"))
                most = max(sites, key=lambda x: x[key]["delta"])
                least = min(sites, key=lambda x: x[key]["delta"])
                shown(s["growth"]["top"], most)
                shown(s["drop"]["top"], least)
        # the dict's lines grew and the list's shrank: bytes' extremes
        by_bytes = got["sorts"][0]
        self.assertIn("nested", by_bytes["growth"]["top"]["site"])
        self.assertGreater(by_bytes["growth"]["top"]["values"][0], 0)
        self.assertIn("build", by_bytes["drop"]["top"]["site"])
        self.assertLess(by_bytes["drop"]["top"]["values"][0], 0)

        # the verdict: allocations grew (40,000 more dict entries, 100,000
        # fewer ints), the peak did not grow tenfold
        self.assertEqual(got["verdict"]["limits"], [[l["limit"], l["exceeded"]] for l in d["fail_on"]])
        self.assertEqual(got["verdict"]["limits"], [["allocs:+0", True], ["peak:+1000%", False]])
        self.assertTrue(got["verdict"]["failed"])
        self.screenshot("diff", 2000, page)

    def screenshot(self, name, height, page=None):
        """NAME.png of page (the report's by default), 1400 px wide and
        height high, in $MEMTRACE_SCREENSHOTS (or the scratch directory),
        with a copy of the page as NAME.html."""
        outdir = Path(SCREENSHOTS) if SCREENSHOTS else self.tmp
        outdir.mkdir(parents=True, exist_ok=True)
        shot = outdir / (name + ".png")
        shot.unlink(missing_ok=True)
        self.chromium("--screenshot=" + str(shot), "--window-size=1400,%d" % height,
                      "--hide-scrollbars", page=page)
        self.assertTrue(shot.exists(), "no screenshot")
        (width, got_height), data = png_size(shot)
        self.assertEqual((width, got_height), (1400, height))
        self.assertGreater(len(data), 50_000, "the screenshot is nearly blank")
        colours = png_colours(data)
        if colours is not None:
            self.assertGreater(colours, 20, "the screenshot is nearly blank")
        shutil.copy(page or self.page, outdir / (name + ".html"))
        print("\nscreenshot: %s" % shot, file=sys.stderr)

    def test_screenshot(self):
        self.screenshot("report", 3000)

    def test_screenshot_window(self):
        """The whole page, 1400 px wide, cut to the "build a dict" step with
        the raw domain hidden: report-window.png."""
        rep = page_data(self.page.read_text(encoding="utf-8"))["report"]
        marks = [m for m in rep["marks"] if m["label"] != "(before first mark)"]
        page = self.tmp / "window.html"
        page.write_text(self.page.read_text(encoding="utf-8").replace("</body>", WHEN_DRAWN + """
<script>whenDrawn(function () {
  window.memtrace.setWindow(%d, %d);
  document.querySelector("input[data-domain=pymem_raw]").click();
});</script></body>""" % (marks[1]["time_us"], marks[2]["time_us"])), encoding="utf-8")
        self.screenshot("report-window", 9000, page)


if __name__ == "__main__":
    result = unittest.main(exit=False).result
    if not result.wasSuccessful():
        sys.exit(1)
    sys.exit(77 if result.testsRun and len(result.skipped) == result.testsRun else 0)
