"""The report's Python analyses on real CPython runs, in both interpreters
of the machine (/usr/bin/python3, libpython linked statically, and pyenv's
3.11.7 with a shared libpython; one that is absent is skipped).

The exact figures come from CPython's own rules: list_resize's growth
formula gives the capacities of a list grown by appends; a million-int
comprehension makes 999,743 int objects (0..256 are cached), each a
PyObject_Malloc(sizeof(PyLongObject)) of 32 bytes; sys.getsizeof gives an
object's allocation size.
"""

import json
import subprocess
import textwrap
import unittest

from harness import CLI, PYTHONS, REPO, TracerTestCase, clean_env

PYTHON_DIR = REPO / "python"
POOL_SIZE = 16384




def list_capacities(n):
    """The capacities CPython 3.11's list_resize gives a list grown from
    empty by n appends."""
    caps, cap = [], 0
    for size in range(1, n + 1):
        if size > cap:
            cap = (size + (size >> 3) + 6) & ~3
            caps.append(cap)
    return caps


def line_of(script, marker):
    """The 1-based line of the script that holds marker."""
    for number, text in enumerate(script.splitlines(), 1):
        if marker in text:
            return number
    raise AssertionError("%r not in the script" % marker)


def find_site(report, path, line, domain):
    for site in report["sites"]:
        if site["file"] == str(path) and site["line"] == line and site["domain"] == domain:
            return site
    return None


def find_list_site(report, path, line):
    for site in report["lists"]["sites"]:
        if site["file"] == str(path) and site["line"] == line:
            return site
    return None


def marks_by_label(report):
    return {m["label"]: m for m in report["marks"]}


def size_class(report, size):
    for entry in report["pools"]["size_classes"]:
        if entry["size"] == size:
            return entry
    return None


APPENDS = """
import sys
sys.path.insert(0, {python_dir!r})
from memtrace import mark
mark("appends")
items = []
for i in range({n}):
    items.append(i)  # APPEND
mark("done")
print(len(items))
"""

SLOTS = """
import sys
sys.path.insert(0, {python_dir!r})
from memtrace import mark
class Point:
    __slots__ = ("x",)
    def __init__(self, x):
        self.x = x
mark("objects")
objs = [Point(i) for i in range({n})]  # OBJECTS
mark("done")
print(sys.getsizeof(objs[0]))
"""

MILLION = """
import gc, sys
sys.path.insert(0, {python_dir!r})
from memtrace import mark
mark("build")
x = [i for i in range({n})]  # BUILD
mark("del")
del x
mark("collect")
print(gc.collect() >= 0)
"""


class PythonReport(TracerTestCase):
    """Each test runs its script in every interpreter found."""

    def setUp(self):
        super().setUp()
        if not PYTHONS:
            self.skipTest("no CPython found")

    def script(self, name, template, **params):
        text = template.format(python_dir=str(PYTHON_DIR), **params)
        path = self.tmp / name
        path.write_text(text)
        return path, text

    def traced_report(self, python, path, args=(), env=None):
        run = self.run_traced_ok([python, *args, str(path)], env=env)
        return run, self.report_ok(run.traces[0])

    def test_list_growth_chain(self):
        n = 1000
        path, text = self.script("appends.py", APPENDS, n=n)
        line = line_of(text, "# APPEND")
        caps = list_capacities(n)
        for label, python in PYTHONS.items():
            with self.subTest(python=label):
                run, rep = self.traced_report(python, path)
                self.assertEqual(run.stdout.strip(), str(n))
                site = find_list_site(rep, path, line)
                self.assertIsNotNone(site, "no list chain at %s:%d" % (path, line))
                self.assertEqual(site["resizes"], len(caps))
                self.assertEqual(site["buffers"], 1)
                self.assertEqual(site["final_capacity"], caps[-1])
                self.assertEqual(site["chain"], caps)
                self.assertEqual(site["chain"][:10], [4, 8, 16, 24, 32, 40, 52, 64, 76, 92])
                # the last resize came with item caps[-2] + 1
                self.assertEqual(site["slack_slots"], caps[-1] - caps[-2] - 1)
                self.assertEqual(site["slack_bytes"], 8 * site["slack_slots"])
                step = marks_by_label(rep)["appends"]
                self.assertGreaterEqual(step["list_resizes"], len(caps))
                self.assertLess(step["list_resizes"], len(caps) + 10)

    def test_objects_of_one_size_class(self):
        n = 100_000
        path, text = self.script("slots.py", SLOTS, n=n)
        line = line_of(text, "# OBJECTS")
        for label, python in PYTHONS.items():
            with self.subTest(python=label):
                run, rep = self.traced_report(python, path)
                size = int(run.stdout.strip())
                cls = (size + 15) // 16 * 16
                site = find_site(rep, path, line, "pymem_obj")
                self.assertIsNotNone(site)
                self.assertGreaterEqual(site["allocs"], n)
                self.assertGreaterEqual(site["bytes"], n * size)
                entry = size_class(rep, cls)
                self.assertIsNotNone(entry, "no size class %d" % cls)
                self.assertGreaterEqual(entry["allocs"], n)
                self.assertGreaterEqual(entry["live_objects_peak"], n)
                self.assertGreaterEqual(entry["pools_peak"], n * cls // POOL_SIZE)
                self.assertGreaterEqual(rep["pools"]["pools_peak"], n * size // POOL_SIZE)
                step = marks_by_label(rep)["objects"]
                counts = {c["size"]: c for c in step["size_classes"]}
                self.assertGreaterEqual(counts[cls]["allocs"], n)
                self.assertLess(counts[cls]["allocs"], n + 1000)
                self.assertGreaterEqual(step["by_domain"]["pymem_obj"]["allocs"], n)

    def test_million_ints(self):
        n = 1_000_000
        made = n - 257  # 0..256 are cached
        path, text = self.script("million.py", MILLION, n=n)
        line = line_of(text, "# BUILD")
        caps = list_capacities(n)
        for label, python in PYTHONS.items():
            with self.subTest(python=label):
                run, rep = self.traced_report(python, path)
                self.assertEqual(run.stdout.strip(), "True")
                site = find_site(rep, path, line, "pymem_obj")
                self.assertIsNotNone(site)
                # the ints, and (3.11.2) one more object made at that line
                self.assertGreaterEqual(site["allocs"], made)
                self.assertLessEqual(site["allocs"], made + 2)
                self.assertGreaterEqual(site["bytes"], made * 32)
                self.assertLessEqual(site["bytes"], made * 32 + 2 * 512)
                self.assertEqual(site["live_bytes_at_exit"], 0)
                # the heap peak: the ints were all alive then
                self.assertGreaterEqual(site["peak_bytes"], made * 32)
                top = rep["summary"]["heap_peak"]["top_sites"][0]
                self.assertEqual((top["file"], top["line"], top["domain"]),
                                 (str(path), line, "pymem_obj"))
                self.assertGreaterEqual(size_class(rep, 32)["allocs"], made)
                self.assertGreaterEqual(size_class(rep, 32)["live_objects_peak"], made)
                # the item buffer's growth chain
                lst = find_list_site(rep, path, line)
                self.assertEqual(lst["resizes"], len(caps))
                self.assertEqual(lst["final_capacity"], caps[-1])
                self.assertEqual(lst["longest_chain_resizes"], len(caps))
                self.assertEqual(lst["chain"][:16], caps[:16])
                self.assertEqual(lst["chain"][-1], caps[-1])
                self.assertEqual(len(lst["chain"]) + lst["chain_skipped"], len(caps))
                self.assertGreater(lst["bytes_copied"], 0)
                # arenas grow by about 33 and go at `del`, before gc.collect()
                steps = marks_by_label(rep)
                self.assertEqual([m["label"] for m in rep["marks"]],
                                 ["(before first mark)", "build", "del", "collect"])
                build, drop, collect = steps["build"], steps["del"], steps["collect"]
                self.assertGreaterEqual(build["arenas_delta"], 28)
                self.assertLessEqual(build["arenas_delta"], 40)
                self.assertGreaterEqual(build["by_domain"]["pymem_obj"]["allocs"], made)
                self.assertLessEqual(drop["arenas_delta"], -25)
                self.assertGreaterEqual(drop["by_domain"]["pymem_obj"]["frees"], made)
                self.assertLess(drop["net_bytes"], -25 * 2**20)
                self.assertGreater(collect["arenas_delta"], -3)
                self.assertEqual(rep["arenas"]["arena_size"], 2**20)
                self.assertGreaterEqual(rep["arenas"]["peak"], 30)
                # the heap is malloc + arenas
                self.assertGreaterEqual(rep["summary"]["heap_peak"]["bytes"],
                                        rep["arenas"]["peak"] * 2**20)
                points = rep["timeline"]["points"]
                self.assertLessEqual(len(points), 1000)
                self.assertEqual(max(p["heap"] for p in points),
                                 rep["summary"]["heap_peak"]["bytes"])

    def test_allocator_modes_keep_lines(self):
        """PYTHONMALLOC=malloc and debug, -X dev and -X tracemalloc: the
        OBJ allocations still carry the script's line."""
        n = 100_000
        made = n - 257
        path, text = self.script("modes.py", MILLION, n=n)
        line = line_of(text, "# BUILD")
        modes = {
            "malloc": ([], {"PYTHONMALLOC": "malloc"}),
            "debug": ([], {"PYTHONMALLOC": "debug"}),
            "dev": (["-X", "dev"], {}),
            "tracemalloc": (["-X", "tracemalloc"], {}),
        }
        for label, python in PYTHONS.items():
            for mode, (args, env) in modes.items():
                with self.subTest(python=label, mode=mode):
                    run, rep = self.traced_report(python, path, args=args, env=env)
                    self.assertEqual(run.stdout.strip(), "True")
                    site = find_site(rep, path, line, "pymem_obj")
                    self.assertIsNotNone(site, "no pymem_obj site at line %d" % line)
                    self.assertGreaterEqual(site["allocs"], made)
                    self.assertGreaterEqual(site["bytes"], made * 32)
                    if mode == "malloc":
                        # no arenas: every object is a malloc block of its own,
                        # counted once, at its Python line
                        self.assertEqual(rep["arenas"]["allocated"], 0)
                        # the heap was at its highest before the last few
                        # ints, if a temporary was freed just before them
                        self.assertGreaterEqual(site["peak_bytes"], (made - 16) * 32)
                        native = [s for s in rep["sites"]
                                  if s["file"] == "<native>" and s["domain"] == "malloc"]
                        self.assertTrue(all(s["bytes"] < made * 32 for s in native))


class ReportCommand(TracerTestCase):
    """`memtrace run` options and `memtrace report` of several traces."""

    def setUp(self):
        super().setUp()
        if not PYTHONS:
            self.skipTest("no CPython found")
        self.python = PYTHONS.get("pyenv") or next(iter(PYTHONS.values()))

    def run_cli(self, *args, **kwargs):
        return subprocess.run([str(CLI), *args], capture_output=True, text=True,
                              timeout=120, env=clean_env(**kwargs), cwd=self.tmp)

    def test_run_py_depth_and_native(self):
        script = self.tmp / "deep.py"
        script.write_text(textwrap.dedent("""\
            import os
            def inner():
                return [str(i) for i in range(20000)]  # INNER
            def outer():
                return inner()
            print(os.environ.get("MEMTRACE_NATIVE"), os.environ.get("MEMTRACE_PY_DEPTH"))
            x = outer()
            """))
        trace = self.tmp / "deep.trace"
        proc = self.run_cli("run", "--py-depth", "3", "--native", "-q", "-o", str(trace),
                            "--", self.python, str(script))
        self.assertEqual(proc.returncode, 0, proc.stderr)
        self.assertEqual(proc.stdout.strip(), "1 3")
        rep = self.report_ok(trace)
        self.assertEqual(rep["process"]["python"]["py_depth"], 3)
        site = find_site(rep, script, 3, "pymem_obj")
        self.assertIsNotNone(site)
        # three Python frames, outermost first: <module> is cut off (with
        # --native the stack is merged: native frames have a "module")
        py = [f for f in site["stack"] if f.get("module") is None]
        self.assertEqual([f["function"] for f in py],
                         ["outer", "inner", "inner.<locals>.<listcomp>"])
        self.assertEqual([f["line"] for f in py], [5, 3, 3])
        bad = self.run_cli("run", "--py-depth", "200", "--", "true")
        self.assertEqual(bad.returncode, 1)
        self.assertIn("--py-depth", bad.stderr)

    def test_report_of_several_traces(self):
        script = self.tmp / "small.py"
        script.write_text("x = [str(i) for i in range(100000)]\n")
        traces = []
        for name in ("one", "two"):
            trace = self.tmp / (name + ".trace")
            proc = self.run_cli("run", "-q", "-o", str(trace), "--", self.python, str(script))
            self.assertEqual(proc.returncode, 0, proc.stderr)
            traces.append(trace)
        proc = self.run_cli("report", "--format", "json", *map(str, traces))
        self.assertEqual(proc.returncode, 0, proc.stderr)
        self.assertNotIn("reading", proc.stderr)  # no progress bar: stderr is a pipe
        data = json.loads(proc.stdout)
        self.assertEqual(data["format"], "memtrace-report-set")
        self.assertEqual(len(data["reports"]), 2)
        combined = data["combined"]
        self.assertEqual(combined["traces"], 2)
        self.assertEqual(combined["events_total"],
                         sum(r["events"]["total"] for r in data["reports"]))
        self.assertEqual([p["heap_peak"] for p in combined["processes"]],
                         [r["summary"]["heap_peak"]["bytes"] for r in data["reports"]])
        text = self.run_cli("report", *map(str, traces))
        self.assertEqual(text.returncode, 0, text.stderr)
        self.assertIn("combined: 2 traces", text.stdout)
        self.assertEqual(text.stdout.count("memtrace report: "), 2)
        # one unreadable trace: reported, the other still is
        junk = self.tmp / "junk.trace"
        junk.write_bytes(b"not a trace at all")
        mixed = self.run_cli("report", "--format", "json", str(traces[0]), str(junk))
        self.assertEqual(mixed.returncode, 2)
        self.assertEqual(len(json.loads(mixed.stdout)["reports"]), 1)
        self.assertIn("junk.trace", mixed.stderr)


if __name__ == "__main__":
    unittest.main()
