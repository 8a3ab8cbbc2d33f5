"""The report's Python analyses on real CPython runs, on every interpreter
of the machine (harness.INTERPRETERS: Debian's static 3.11, the shared
3.11 on PATH, 3.13 and the free-threaded 3.13t; one that is absent is
skipped).

The exact figures come from CPython's own rules (pyfacts.py): list_resize's
growth formula gives the capacities of a list grown by appends; a
million-int comprehension makes 999,743 int objects (0..256 are cached),
each one PyObject_Malloc of a one-digit PyLongObject; sys.getsizeof gives
an object's allocation size.
"""

import json
import subprocess
import textwrap
import unittest

import pyfacts
from harness import CLI, INTERPRETERS, PYTHONS, REPO, TracerTestCase, clean_env, marker_line

PYTHON_DIR = REPO / "python"
POOL_SIZE = 16384
# a pool of 16 KiB holds (16384 - 48) // 32 = 510 blocks of 32 bytes after
# its header (POOL_OVERHEAD, Objects/obmalloc.c)
INTS_PER_POOL = (POOL_SIZE - 48) // 32



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

# Frames through C (sorted() calls the key function: 3.13 puts an entry
# frame of its own between them) and through __init__ (3.13 may run it
# from a shim code object of its own): neither is a frame of the program.
STACKS = """
class Box:
    def __init__(self, n):
        self.items = [str(i) for i in range(n)]  # INIT
def inner(n):
    return sorted(range(n), key=lambda i: [i])  # KEY
def outer():
    boxes = [Box(300) for _ in range(100)]  # BOXES
    return inner(2000), boxes  # INNER
x = outer()  # OUTER
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
        return path

    def traced_report(self, python, path, args=(), env=None):
        run = self.run_traced_ok([python, *args, str(path)], env=env)
        return run, self.report_ok(run.traces[0])

    def assert_peak(self, site, py, n):
        """The comprehension's bytes at the heap peak: those of
        pyfacts.comprehension_peak, give or take what else the heap did
        then (its top may come a few ints earlier, when some temporary
        block was freed just before them; the iterator may still be
        alive)."""
        want = pyfacts.comprehension_peak(py, n)
        self.assertGreaterEqual(site["peak_bytes"], want - 16 * pyfacts.int_block(py))
        self.assertLessEqual(site["peak_bytes"], want + pyfacts.range_iterator_size(py))

    def test_list_growth_chain(self):
        n = 1000
        path = self.script("appends.py", APPENDS, n=n)
        line = marker_line(path, "# APPEND")
        caps = pyfacts.list_capacities(n)
        for py in INTERPRETERS.values():
            with self.subTest(python=py.label):
                run, rep = self.traced_report(py.exe, path)
                self.assertEqual(run.stdout.strip(), str(n))
                site = find_list_site(rep, path, line)
                self.assertIsNotNone(site, "no list chain at %s:%d" % (path, line))
                resizes = pyfacts.list_resizes(py, n)
                self.assertEqual(site["resizes"], resizes)
                self.assertEqual(site["buffers"], 1)
                self.assertEqual(site["final_capacity"], caps[-1])
                self.assertEqual(site["chain"], caps)
                self.assertEqual(site["chain"][:10], [4, 8, 16, 24, 32, 40, 52, 64, 76, 92])
                # the last resize came with item caps[-2] + 1
                self.assertEqual(site["slack_slots"], caps[-1] - caps[-2] - 1)
                self.assertEqual(site["slack_bytes"], 8 * site["slack_slots"])
                step = marks_by_label(rep)["appends"]
                self.assertGreaterEqual(step["list_resizes"], resizes)
                self.assertLess(step["list_resizes"], resizes + 10)

    def test_objects_of_one_size_class(self):
        """100,000 Point objects and 99,743 ints at one line, exactly; on
        the default builds they fill pymalloc pools of their size class."""
        n = 100_000
        ints = n - pyfacts.CACHED_INTS
        path = self.script("slots.py", SLOTS, n=n)
        line = marker_line(path, "# OBJECTS")
        for py in INTERPRETERS.values():
            with self.subTest(python=py.label):
                run, rep = self.traced_report(py.exe, path)
                size = int(run.stdout.strip())
                extra, extra_bytes = pyfacts.range_loop_objects(py)
                site = find_site(rep, path, line, "pymem_obj")
                self.assertIsNotNone(site)
                self.assertEqual((site["allocs"], site["bytes"]),
                                 (n + ints + extra,
                                  n * size + ints * pyfacts.int_block(py) + extra_bytes))
                cls = (size + 15) // 16 * 16
                step = marks_by_label(rep)["objects"]
                counts = {c["size"]: c for c in step["size_classes"]}
                # the points, and the ints when they are of the same class
                # (48 bytes both, on 3.13t)
                same = n + (ints if cls == pyfacts.int_block(py) else 0)
                self.assertGreaterEqual(counts[cls]["allocs"], same)
                self.assertLess(counts[cls]["allocs"], same + 1000)
                self.assertGreaterEqual(step["by_domain"]["pymem_obj"]["allocs"], n + ints)
                if py.free_threaded:
                    self.assertEqual(rep["pools"]["size_classes"], [])
                    self.assertIn("free-threaded", rep["pools"]["absent"])
                    continue
                entry = size_class(rep, cls)
                self.assertIsNotNone(entry, "no size class %d" % cls)
                self.assertGreaterEqual(entry["allocs"], n)
                self.assertGreaterEqual(entry["live_objects_peak"], n)
                self.assertGreaterEqual(entry["pools_peak"], n * cls // POOL_SIZE)
                self.assertGreaterEqual(rep["pools"]["pools_peak"], n * size // POOL_SIZE)

    def test_million_ints(self):
        n = pyfacts.MILLION
        made = n - pyfacts.CACHED_INTS
        path = self.script("million.py", MILLION, n=n)
        line = marker_line(path, "# BUILD")
        caps = pyfacts.list_capacities(n)
        for py in INTERPRETERS.values():
            with self.subTest(python=py.label):
                run, rep = self.traced_report(py.exe, path)
                self.assertEqual(run.stdout.strip(), "True")
                block = pyfacts.int_block(py)
                extra, extra_bytes = pyfacts.range_loop_objects(py)
                site = find_site(rep, path, line, "pymem_obj")
                self.assertIsNotNone(site)
                self.assertEqual((site["allocs"], site["bytes"]),
                                 (made + extra, made * block + extra_bytes))
                self.assertEqual(site["live_bytes_at_exit"], 0)
                self.assert_peak(site, py, n)
                top = rep["summary"]["heap_peak"]["top_sites"][0]
                self.assertEqual((top["file"], top["line"], top["domain"]),
                                 (str(path), line, "pymem_obj"))
                # the item buffer's growth chain
                lst = find_list_site(rep, path, line)
                resizes = pyfacts.list_resizes(py, n)
                self.assertEqual(lst["resizes"], resizes)
                self.assertEqual(lst["final_capacity"], caps[-1])
                self.assertEqual(lst["longest_chain_resizes"], resizes)
                self.assertEqual(lst["chain"][:16], caps[:16])
                self.assertEqual(lst["chain"][-1], caps[-1])
                self.assertEqual(len(lst["chain"]) + lst["chain_skipped"], len(caps))
                self.assertGreater(lst["bytes_copied"], 0)
                steps = marks_by_label(rep)
                self.assertEqual([m["label"] for m in rep["marks"]],
                                 ["(before first mark)", "build", "del", "collect"])
                build, drop, collect = steps["build"], steps["del"], steps["collect"]
                self.assertGreaterEqual(build["by_domain"]["pymem_obj"]["allocs"], made)
                self.assertGreaterEqual(drop["by_domain"]["pymem_obj"]["frees"], made)
                # the heap is malloc + arenas (+ mimalloc's objects): it
                # holds the ints at its peak, and loses them at `del`
                self.assertGreaterEqual(rep["summary"]["heap_peak"]["bytes"], made * block)
                self.assertLess(drop["net_bytes"], -made * block)
                heap = rep["timeline"]["points"]["heap"]
                self.assertLessEqual(len(heap), 1000)
                self.assertEqual(len(rep["timeline"]["points"]["time_us"]), len(heap))
                self.assertEqual(max(heap), rep["summary"]["heap_peak"]["bytes"])
                if py.free_threaded:
                    self.assertEqual(rep["arenas"]["allocated"], 0)
                    self.assertIn("free-threaded", rep["arenas"]["absent"])
                    continue
                self.assertGreaterEqual(size_class(rep, 32)["allocs"], made)
                self.assertGreaterEqual(size_class(rep, 32)["live_objects_peak"], made)
                self.assertGreaterEqual(size_class(rep, 32)["pools_peak"],
                                        -(-made // INTS_PER_POOL))
                # arenas of 1 MiB hold 63 or 64 pools (64 when the arena
                # happens to be pool-aligned): 31 or 32 new arenas for the
                # 1,961 pools of ints, less what free pools the arenas
                # already had; they go at `del`, before gc.collect()
                self.assertGreaterEqual(build["arenas_delta"], 29)
                self.assertLessEqual(build["arenas_delta"], 32)
                self.assertLessEqual(drop["arenas_delta"], -29)
                self.assertGreater(collect["arenas_delta"], -3)
                self.assertEqual(rep["arenas"]["arena_size"], 2**20)
                self.assertGreaterEqual(rep["arenas"]["peak"], 31)
                self.assertGreaterEqual(rep["summary"]["heap_peak"]["bytes"],
                                        rep["arenas"]["peak"] * 2**20)

    def test_mimalloc_and_malloc_objects_in_the_heap(self):
        """Without pymalloc the objects are malloc blocks (counted once, at
        their Python line) or mimalloc blocks (counted by themselves)."""
        n = 100_000
        made = n - pyfacts.CACHED_INTS
        path = self.script("modes.py", MILLION, n=n)
        line = marker_line(path, "# BUILD")
        for py in INTERPRETERS.values():
            modes = {m: v for m, v in pyfacts.allocator_modes(py).items()
                     if v[2] != "pymalloc" and "tracemalloc" not in m.lower()}
            for mode, (args, env, allocator) in modes.items():
                with self.subTest(python=py.label, mode=mode):
                    run, rep = self.traced_report(py.exe, path, args=args, env=env)
                    self.assertEqual(run.stdout.strip(), "True")
                    site = find_site(rep, path, line, "pymem_obj")
                    self.assertIsNotNone(site, "no pymem_obj site at line %d" % line)
                    self.assertGreaterEqual(site["allocs"], made)
                    self.assertEqual(rep["arenas"]["allocated"], 0)
                    self.assertEqual(rep["process"]["python"]["object_allocator"], allocator)
                    block = pyfacts.int_block(py)
                    self.assert_peak(site, py, n)
                    self.assertGreaterEqual(rep["summary"]["heap_peak"]["bytes"], made * block)
                    native = [s for s in rep["sites"]
                              if s["file"] == "<native>" and s["domain"] == "malloc"]
                    self.assertTrue(all(s["bytes"] < made * block for s in native))

    def test_stacks(self):
        """MEMTRACE_PY_DEPTH=4: a site's Python stack holds the program's
        frames only, outermost first, on every interpreter."""
        path = self.tmp / "stacks.py"
        path.write_text(STACKS.lstrip("\n"))
        lines = {m: marker_line(path, "# " + m) for m in ("INIT", "KEY", "BOXES", "INNER", "OUTER")}
        for py in INTERPRETERS.values():
            with self.subTest(python=py.label):
                run, rep = self.traced_report(py.exe, path, env={"MEMTRACE_PY_DEPTH": "4"})
                self.assertEqual(rep["process"]["python"]["py_depth"], 4)
                key = pyfacts.comprehension_function
                if pyfacts.inline(py):
                    init = [("<module>", lines["OUTER"]), ("outer", lines["BOXES"]),
                            ("Box.__init__", lines["INIT"])]
                else:
                    init = [("outer", lines["BOXES"]), (key(py, "outer"), lines["BOXES"]),
                            ("Box.__init__", lines["INIT"]),
                            (key(py, "Box.__init__"), lines["INIT"])]
                lam = [("<module>", lines["OUTER"]), ("outer", lines["INNER"]),
                       ("inner", lines["KEY"]), ("inner.<locals>.<lambda>", lines["KEY"])]
                for want in (init, lam):
                    stacks = [[(f["function"], f["line"]) for f in s["stack"]]
                              for s in rep["sites"] if s["domain"] == "pymem_obj"
                              and s["file"] == str(path) and s["line"] == want[-1][1]]
                    self.assertIn(want, stacks)


class ReportCommand(TracerTestCase):
    """`memtrace run` options and `memtrace report` of several traces."""

    def setUp(self):
        super().setUp()
        if not PYTHONS:
            self.skipTest("no CPython found")
        # native stacks merge with Python frames on 3.11
        self.python = PYTHONS.get("3.11 path") or next(iter(PYTHONS.values()))

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
