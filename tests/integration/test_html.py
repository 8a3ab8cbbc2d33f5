"""`memtrace report --format html` and `--format folded` on real traces.

The HTML page must be one self-contained file (nothing fetched from
anywhere), well formed, made of the JSON report and the script that draws
it: a traced Python script whose file name, arguments and marks are full
of markup must not get any of it into the page as markup or script, and
the page's data must be the report (`--format json --profile`) itself.
The folded stacks must add up to the flame graph's total.  `memtrace diff
--format html` is a page of the same kind, its data the diff (`--format
json`) itself.  (The pages' script is exercised in a real browser by
test_chromium.)"""

import html.parser
import json
import re
import shutil
import subprocess
import unittest
from pathlib import Path

from harness import CLI, REPO, TIMEOUT, TracerTestCase, prog, profile_cells

# Void elements need no end tag; everything else must be closed in order.
VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta",
        "source", "track", "wbr"}
# SVG elements the page writes self-closed (<path .../>).
SVG_EMPTY = {"path", "line", "rect", "circle", "text", "polyline", "g"}

EVIL = "</script><script>alert(1)</script><img src=x onerror=alert(2)>&amp;\u2028"

SCRIPT = """\
import sys
sys.path.insert(0, {python_dir!r})
from memtrace import mark

def build(n):
    return [i * 3 for i in range(n)]

def table(n):
    return {{str(i): (i, [i]) for i in range(n)}}

mark("build the list " + sys.argv[1])
xs = build(100000)
mark("build a dict")
d = table(5000)
mark("free the list")
del xs
mark("end")
"""


DOMAINS = ["malloc", "pymem_raw", "pymem_mem", "pymem_obj"]


def python():
    """A real CPython executable (not pyenv's shim, which execs)."""
    for exe in ("/usr/bin/python3", shutil.which("python3")):
        if exe and Path(exe).exists():
            return subprocess.run([exe, "-c", "import sys; print(sys.executable)"],
                                  capture_output=True, text=True).stdout.strip()
    raise unittest.SkipTest("no python3")


class Page(html.parser.HTMLParser):
    """Collects what the checks need and checks that tags nest."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.stack, self.errors = [], []
        self.scripts, self.ids, self.text = [], set(), []
        self.attrs = []
        self._script = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        self.attrs.append((tag, a))
        if "id" in a:
            self.ids.add(a["id"])
        if tag == "script":
            self._script = [a.get("type"), a.get("id"), ""]
        if tag not in VOID:
            self.stack.append(tag)

    def handle_startendtag(self, tag, attrs):
        self.attrs.append((tag, dict(attrs)))
        if tag not in VOID and tag not in SVG_EMPTY:
            self.errors.append("<%s/> is not a void element" % tag)

    def handle_endtag(self, tag):
        if tag == "script" and self._script is not None:
            self.scripts.append(tuple(self._script))
            self._script = None
        if not self.stack or self.stack[-1] != tag:
            self.errors.append("</%s> closes <%s>" % (tag, self.stack[-1] if self.stack else None))
        else:
            self.stack.pop()

    def handle_data(self, data):
        if self._script is not None:
            self._script[2] += data
        else:
            self.text.append(data)


class HtmlReport(TracerTestCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.python = python()

    def traced_python(self, *args, env=None):
        workdir = self.tmp / "lab&<i>"  # the script's path is shown in the page
        workdir.mkdir()
        script = workdir / "lab<b>.py"
        script.write_text(SCRIPT.format(python_dir=str(REPO / "python")))
        run = self.run_traced_ok([self.python, str(script), *args],
                                 env={"MEMTRACE_PY_DEPTH": "8", **(env or {})})
        return run.traces[0]

    def render(self, trace, fmt, *options, expect_rc=0):
        out = self.tmp / ("report." + fmt)
        proc = subprocess.run([str(CLI), "report", "--format", fmt, *options, "-o", str(out),
                               str(trace)], capture_output=True, text=True, timeout=TIMEOUT)
        self.assertEqual(proc.returncode, expect_rc, proc.stderr)
        return out.read_text(encoding="utf-8")

    def parse(self, text):
        page = Page()
        page.feed(text)
        page.close()
        self.assertEqual(page.errors, [])
        self.assertEqual(page.stack, [], "elements left open")
        return page

    def assert_self_contained(self, text, page):
        for tag, attrs in page.attrs:
            for name in ("src", "href", "action", "srcset", "poster"):
                value = attrs.get(name)
                if value is not None:
                    self.assertTrue(value.startswith("#"),
                                    "<%s %s=%r> points outside the page" % (tag, name, value))
            self.assertNotEqual(tag, "link", "a <link> element")
            self.assertNotIn(tag, ("iframe", "object", "embed", "img"))
        self.assertNotRegex(text, r"@import|url\(|@font-face")
        # the SVG namespace is a name, not a fetch; nothing else is a URL
        urls = set(re.findall(r"https?://[^\s\"'<>)]+", text))
        self.assertLessEqual(urls, {"http://www.w3.org/2000/svg"})

    def page_data(self, page):
        """The page's two scripts and no other; the data block is JSON."""
        self.assertEqual([(t, i) for t, i, _ in page.scripts],
                         [("application/json", "mt-data"), (None, None)])
        block = page.scripts[0][2]
        self.assertNotIn("\u2028", block)
        self.assertNotIn("<", block)
        return json.loads(block)

    def json_report(self, trace):
        proc = subprocess.run([str(CLI), "report", "--format", "json", "--profile", str(trace)],
                              capture_output=True, text=True, timeout=TIMEOUT)
        self.assertEqual(proc.returncode, 0, proc.stderr)
        return json.loads(proc.stdout)

    def test_python_page(self):
        trace = self.traced_python(EVIL)
        text = self.render(trace, "html")
        page = self.parse(text)
        self.assert_self_contained(text, page)
        self.assertNotIn("<img", text)
        self.assertEqual(text.count("<script"), 2)

        # the page's data is the JSON report, the lists of sites and the
        # flame graph's tree left out (the page makes them from the
        # profile), and the trace's name
        data = self.page_data(page)
        self.assertEqual(data["trace_file"], str(trace))
        rep = self.json_report(trace)
        full = dict(rep)
        flame_total = rep.pop("flame")["value"]
        for key in ("sites", "leaks", "temporary_sites"):
            rep.pop(key)
        self.assertEqual(data["report"], rep)

        # the hostile strings are in it intact, as data
        prof = data["report"]["profile"]
        self.assertIn("build the list " + EVIL, [m["label"] for m in data["report"]["marks"]])
        self.assertIn(EVIL, data["report"]["process"]["argv"])
        files = {prof["strings"][i] for i in prof["frames"]["file"]}
        self.assertTrue(any(f.endswith("lab&<i>/lab<b>.py") for f in files), files)

        # the main script line by line, for the page's section: the list's
        # line and `del xs` with their allocations and frees; the histogram:
        # the list's ints are 32-byte requests, in the bucket from 32 to 63
        lines = {l["source"].strip(): l for l in data["report"]["script_lines"]}
        self.assertGreaterEqual(lines["return [i * 3 for i in range(n)]"]["allocs"],
                                100000 - 257)
        self.assertGreaterEqual(lines["del xs"]["frees"], 100000 - 257)
        sizes = {b["min"]: b for b in data["report"]["summary"]["size_histogram"]}
        self.assertEqual(sizes[32]["max"], 63)
        self.assertGreaterEqual(sizes[32]["allocs"], 100000 - 257)

        # the profile's sites add up to the JSON's rows: the top ones (a
        # line's sites, each of one stack, summed) have the same figures
        sites, frames, strings = prof["sites"], prof["frames"], prof["strings"]
        self.assertEqual(sum(sites["bytes"]), flame_total)
        for row in full["sites"][:5]:
            members = [k for k, w in enumerate(sites["where"])
                       if (strings[frames["file"][w]], frames["line"][w],
                           strings[frames["function"][w]]) ==
                       (row["file"], row["line"], row["function"]) and
                       prof["threads"][sites["thread"][k]] == row["thread"] and
                       sites["domain"][k] == DOMAINS.index(row["domain"])]
            self.assertTrue(members, row)
            for key, column in (("bytes", "bytes"), ("allocs", "allocs"),
                                ("peak_bytes", "peak_bytes"),
                                ("live_bytes_at_exit", "live_bytes_at_exit")):
                self.assertEqual(sum(sites[column][k] for k in members), row[key], (row, key))

    def test_diff_page(self):
        """The diff of the hostile script's run and a C program's: every
        site differs, the script's paths among them."""
        python_trace = self.traced_python(EVIL)
        c_trace = self.run_traced_ok([prog("every_call")]).traces[0]
        out = self.tmp / "diff.html"
        argv = [str(CLI), "diff", "--fail-on", "leaked:+1G", str(python_trace), str(c_trace)]
        proc = subprocess.run([*argv, "--format", "html", "-o", str(out)], capture_output=True,
                              text=True, timeout=TIMEOUT)
        self.assertEqual(proc.returncode, 0, proc.stderr)
        text = out.read_text(encoding="utf-8")
        page = self.parse(text)
        self.assert_self_contained(text, page)
        self.assertNotIn("<img", text)
        proc = subprocess.run([*argv, "--format", "json"], capture_output=True, text=True,
                              timeout=TIMEOUT)
        self.assertEqual(proc.returncode, 0, proc.stderr)
        diff = json.loads(proc.stdout)
        self.assertEqual(self.page_data(page), {"diff": diff})
        self.assertTrue(any(s["file"].endswith("lab&<i>/lab<b>.py") for s in diff["sites"]))
        self.assertEqual([l["limit"] for l in diff["fail_on"]], ["leaked:+1G"])
        # the same script as the report's draws it
        report = self.parse(self.render(python_trace, "html"))
        self.assertEqual(page.scripts[1][2], report.scripts[1][2])

    def test_folded_adds_up(self):
        trace = self.traced_python("x")
        folded = self.render(trace, "folded")
        rep = self.report_ok(trace)
        total, stacks = 0, set()
        for line in folded.splitlines():
            m = re.fullmatch(r"(.+) (\d+)", line)
            self.assertIsNotNone(m, "not a folded line: %r" % line)
            self.assertNotIn(m.group(1), stacks, "stack printed twice")
            stacks.add(m.group(1))
            total += int(m.group(2))
            self.assertTrue(all(f for f in m.group(1).split(";")), line)
        self.assertEqual(total, rep["flame"]["value"])
        # frames are the functions' names, stacks several deep
        self.assertTrue(any(s.endswith(";build;build.<locals>.<listcomp>") for s in stacks))
        self.assertTrue(any(s.count(";") >= 2 for s in stacks))
        # --folded-lines: "function (file:line)"
        folded = self.render(trace, "folded", "--folded-lines")
        self.assertRegex(folded, r"<listcomp> \(.*lab<b>\.py:\d+\) \d+\n")

    def test_not_python(self):
        run = self.run_traced_ok([prog("every_call")])
        text = self.render(run.traces[0], "html")
        page = self.parse(text)
        self.assert_self_contained(text, page)
        rep = self.page_data(page)["report"]
        self.assertIsNone(rep["process"]["python"])
        # every site is a malloc one, and they add up to the malloc domain
        sites = rep["profile"]["sites"]
        self.assertEqual(set(sites["domain"]), {0})
        malloc = rep["domains"]["malloc"]
        self.assertEqual(sum(sites["allocs"]), malloc["allocs"] + malloc["reallocs"])
        self.assertEqual(sum(sites["live_bytes_at_exit"]), malloc["live_bytes_at_exit"])

    def test_window_cells(self):
        """--from/--to cut the profile's cells too: views.c's "peak" step
        (peak() allocates 3 x 1,500,000 and 40,000,000 bytes and frees
        them, the last at once: a temporary) on a grid over that step alone, without temporaries()'
        100,000 allocations of the step before."""
        run = self.run_traced_ok([prog("views")], env={"MEMTRACE_NATIVE": "1"})
        trace = run.traces[0]
        rep = self.page_data(self.parse(self.render(trace, "html", "--from", "peak", "--to",
                                                    "small")))["report"]
        win, grid, sites = rep["window"], rep["profile"]["grid"], rep["profile"]["sites"]
        strings, frames = rep["profile"]["strings"], rep["profile"]["frames"]
        self.assertEqual(grid["from_us"], win["from_us"])
        span = win["to_us"] - win["from_us"]
        self.assertLessEqual(grid["buckets"], 256)
        self.assertLessEqual((grid["buckets"] - 1) * grid["bucket_us"], span)
        self.assertLess(span, grid["buckets"] * grid["bucket_us"])
        names = [strings[frames["function"][w]] for w in sites["where"]]
        self.assertNotIn("temporaries", names)
        # peak()'s two call sites
        peak = [i for i, n in enumerate(names) if n == "peak"]
        self.assertEqual([sum(sites[k][i] for i in peak) for k in ("allocs", "bytes", "peak_bytes")],
                         [4, 44_500_000, 44_500_000])
        # each site's last cell is its figures in the window; the cells
        # are in the grid
        cells_of = profile_cells(rep["profile"])
        for i in range(len(names)):
            cells = cells_of[i]
            self.assertTrue(cells, names[i])
            self.assertTrue(all(0 <= c[0] < grid["buckets"] for c in cells), names[i])
            last = cells[-1]
            self.assertEqual(last[1:3] + last[4:6],
                             [sites["allocs"][i], sites["bytes"][i], sites["temporary_allocs"][i],
                              sites["temporary_bytes"][i]], names[i])
        self.assertEqual([sum(cells_of[i][-1][k] for i in peak)
                          for k in range(1, 6)], [4, 44_500_000, 0, 1, 40_000_000])
        # the whole trace's grid starts at 0 and has temporaries()' cells
        rep = self.page_data(self.parse(self.render(trace, "html")))["report"]
        grid, sites = rep["profile"]["grid"], rep["profile"]["sites"]
        strings, frames = rep["profile"]["strings"], rep["profile"]["frames"]
        self.assertEqual(grid["from_us"], 0)
        names = [strings[frames["function"][w]] for w in sites["where"]]
        self.assertEqual(profile_cells(rep["profile"])[names.index("temporaries")][-1][1:],
                         [100_000, 100_000_000, 0, 100_000, 100_000_000])

    def test_stdout_and_help(self):
        run = self.run_traced_ok([prog("every_call")])
        proc = subprocess.run([str(CLI), "report", "--format", "html", str(run.traces[0])],
                              capture_output=True, text=True, timeout=TIMEOUT)
        self.assertEqual(proc.returncode, 0, proc.stderr)
        self.assertTrue(proc.stdout.startswith("<!DOCTYPE html>"))
        self.assertTrue(proc.stdout.rstrip().endswith("</html>"))
        proc = subprocess.run([str(CLI), "report", "--help"], capture_output=True, text=True)
        self.assertIn("html", proc.stdout)
        self.assertIn("folded", proc.stdout)


if __name__ == "__main__":
    unittest.main()
