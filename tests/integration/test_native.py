"""Native stacks (MEMTRACE_NATIVE=1) in the report: symbolized frames with
exact functions and lines, inlined functions as frames of their own, a
library loaded with dlopen, and for Python the merged stack (Python frames
in place of CPython's evaluation loop, native frames above and below).

The lines are found in the sources by their markers (SITE_B, ...), so the
tests do not depend on line numbers.
"""

import os
import re
import subprocess
import textwrap
import unittest

from harness import CLI, PROGS, REPO, STORM, TracerTestCase, clean_env, marker_line, prog

SRC = REPO / "tests" / "progs"
LIB_SO = PROGS / "libnstack_lib.so"
PYTHONS = [p for p in ("/usr/bin/python3", "/root/.pyenv/versions/3.11.7/bin/python3")
           if os.access(p, os.X_OK)]
NATIVE_ENV = {"MEMTRACE_NATIVE": "1", "MEMTRACE_PY_DEPTH": "128"}
# What libunwind and the symbolizer must see for the stacks to be complete.
EVAL_NAMES = ("_PyEval_EvalFrameDefault", "_PyEval_Vector", "PyEval_EvalCode")


def frame_tuple(f):
    return (f["function"], os.path.basename(f["file"]), f["line"])


def site_by_function(rep, function):
    for s in rep["sites"]:
        if s["function"] == function:
            return s
    raise AssertionError("no site %s in %s" % (function, [s["function"] for s in rep["sites"]]))


def folded(trace):
    proc = subprocess.run([str(CLI), "report", "--format", "folded", "--folded-lines", str(trace)],
                          capture_output=True, text=True, timeout=120, env=clean_env())
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


class NativeStacksC(TracerTestCase):
    """native_stacks.c: main -> level_a -> level_b -> malloc, main ->
    level_a -> inlined_c (always inlined) -> malloc, main ->
    nstack_lib_alloc (dlopen) -> malloc."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        if not (PROGS / "native_stacks").exists() or not LIB_SO.exists():
            raise AssertionError("native_stacks is missing: build the project first")

    def setUp(self):
        super().setUp()
        run = self.run_traced_ok([prog("native_stacks"), str(LIB_SO)], env=NATIVE_ENV)
        self.assertIn("done", run.stdout)
        self.trace = run.traces[0]
        self.rep = self.report_ok(self.trace)
        src = SRC / "native_stacks.c"
        self.line = {m: marker_line(src, m) for m in
                     ("SITE_A", "SITE_B", "SITE_C", "SITE_MAIN_B", "SITE_MAIN_C", "SITE_MAIN_LIB")}
        self.lib_line = marker_line(SRC / "nstack_lib.c", "SITE_LIB")

    def user_frames(self, site):
        """The frames from main inwards."""
        names = [f["function"] for f in site["stack"]]
        self.assertIn("main", names, site["stack"])
        return [frame_tuple(f) for f in site["stack"][names.index("main"):]]

    def test_call_path(self):
        site = site_by_function(self.rep, "level_b")
        self.assertEqual((os.path.basename(site["file"]), site["line"]),
                         ("native_stacks.c", self.line["SITE_B"]))
        self.assertEqual(site["bytes"], 100000)
        self.assertEqual(site["allocs"], 1)
        self.assertEqual(site["domain"], "malloc")
        self.assertEqual(self.user_frames(site), [
            ("main", "native_stacks.c", self.line["SITE_MAIN_B"]),
            ("level_a", "native_stacks.c", self.line["SITE_A"]),
            ("level_b", "native_stacks.c", self.line["SITE_B"]),
        ])
        top = site["stack"][-1]
        self.assertTrue(top["module"].endswith("/native_stacks"), top)

    def test_inlined_function_is_a_frame(self):
        site = site_by_function(self.rep, "inlined_c")
        self.assertEqual(site["line"], self.line["SITE_C"])
        self.assertEqual(site["bytes"], 200000)
        self.assertEqual(self.user_frames(site), [
            ("main", "native_stacks.c", self.line["SITE_MAIN_C"]),
            ("level_a", "native_stacks.c", self.line["SITE_A"]),
            ("inlined_c", "native_stacks.c", self.line["SITE_C"]),
        ])

    def test_dlopened_library(self):
        site = site_by_function(self.rep, "nstack_lib_alloc")
        self.assertEqual((os.path.basename(site["file"]), site["line"]),
                         ("nstack_lib.c", self.lib_line))
        self.assertEqual(site["bytes"], 300000)
        self.assertEqual(self.user_frames(site), [
            ("main", "native_stacks.c", self.line["SITE_MAIN_LIB"]),
            ("nstack_lib_alloc", "nstack_lib.c", self.lib_line),
        ])
        self.assertTrue(site["stack"][-1]["module"].endswith("/libnstack_lib.so"))

    def test_flame_and_folded(self):
        lines = folded(self.trace).splitlines()
        want = {
            "level_b": 100000, "inlined_c": 200000, "nstack_lib_alloc": 300000,
        }
        for function, size in want.items():
            hits = [l for l in lines if l.rsplit(" ", 1)[0].split(";")[-1].startswith(function + " (")]
            self.assertEqual(len(hits), 1, (function, hits))
            stack, value = hits[0].rsplit(" ", 1)
            self.assertEqual(int(value), size)
            self.assertIn(";main (", stack)
        self.assertIn(";level_a (%s:%d);inlined_c (%s:%d)" % (
            SRC / "native_stacks.c", self.line["SITE_A"], SRC / "native_stacks.c",
            self.line["SITE_C"]), "\n".join(lines))
        self.assertEqual(self.rep["flame"]["value"],
                         sum(s["bytes"] for s in self.rep["sites"]))

    def test_text_report_names_the_sites(self):
        proc = subprocess.run([str(CLI), "report", str(self.trace)], capture_output=True,
                              text=True, timeout=120, env=clean_env())
        self.assertEqual(proc.returncode, 0, proc.stderr)
        for function in ("level_b", "inlined_c", "nstack_lib_alloc"):
            self.assertIn(function, proc.stdout)


class NativeStacksPython(TracerTestCase):
    """A Python script calls nstack_lib_alloc through ctypes: the merged
    stack reads main ... script.py lines ... ctypes/libffi ->
    nstack_lib_alloc."""

    SCRIPT = textwrap.dedent("""\
        import ctypes, sys
        lib = ctypes.CDLL(sys.argv[1])
        lib.nstack_lib_alloc.restype = ctypes.c_void_p
        lib.nstack_lib_alloc.argtypes = [ctypes.c_size_t]

        def work():
            return lib.nstack_lib_alloc(len([0] * 5) * 100000)  # CALL

        keep = work()  # MODULE
        data = [str(i) for i in range(5000)]  # LISTCOMP
        """)

    def setUp(self):
        super().setUp()
        if not PYTHONS:
            self.skipTest("no CPython found")
        self.script = self.tmp / "native_ext.py"
        self.script.write_text(self.SCRIPT)
        self.line = {m: marker_line(self.script, "# " + m) for m in ("CALL", "MODULE", "LISTCOMP")}

    def check(self, python):
        run = self.run_traced_ok([python, str(self.script), str(LIB_SO)], env=NATIVE_ENV)
        rep = self.report_ok(run.traces[0])
        site = site_by_function(rep, "nstack_lib_alloc")
        self.assertEqual(site["domain"], "malloc")
        self.assertEqual(site["bytes"], 500000)
        self.assertEqual(site["line"], marker_line(SRC / "nstack_lib.c", "SITE_LIB"))
        stack = site["stack"]
        names = [f["function"] for f in stack]
        # no evaluation loop left: the Python frames took its place
        for name in EVAL_NAMES:
            self.assertNotIn(name, names)
        script = str(self.script)
        py = [(f["function"], f["line"]) for f in stack if f["file"] == script]
        self.assertEqual(py, [("<module>", self.line["MODULE"]), ("work", self.line["CALL"])])
        for f in stack:
            if f["file"] == script:
                self.assertIsNone(f["module"])
        # Python frames, then native frames down to the C function
        first_py = next(i for i, f in enumerate(stack) if f["file"] == script)
        self.assertEqual(stack[first_py + 1]["file"], script)
        self.assertEqual(stack[-1]["function"], "nstack_lib_alloc")
        self.assertTrue(stack[-1]["module"].endswith("/libnstack_lib.so"))
        self.assertTrue(all(f["module"] for f in stack[first_py + 2:]), stack)
        # native frames above: the interpreter's main
        self.assertIn("Py_BytesMain", names[:first_py])
        # a pure Python allocation keeps its Python line as its site
        lc = [s for s in rep["sites"] if s["file"] == script and s["line"] == self.line["LISTCOMP"]
              and s["domain"] == "pymem_obj" and s["function"] == "<listcomp>"]
        self.assertEqual(len(lc), 1, [(s["function"], s["allocs"], s["bytes"]) for s in lc])
        self.assertIn(("<module>", self.line["LISTCOMP"]),
                      [(f["function"], f["line"]) for f in lc[0]["stack"]])
        # the folded output has the whole merged path
        want = "<module> (%s:%d);work (%s:%d);" % (script, self.line["MODULE"], script,
                                                   self.line["CALL"])
        hits = [l for l in folded(run.traces[0]).splitlines()
                if want in l and "nstack_lib_alloc (" in l]
        self.assertEqual(len(hits), 1)
        self.assertTrue(hits[0].endswith(" 500000"), hits[0])

    def test_merged_stack(self):
        for python in PYTHONS:
            with self.subTest(python=python):
                self.check(python)


class OuterFramesPython(TracerTestCase):
    """A thread's walk reuses the callers of its last stack while they are
    still on the stack (unwind.c): the same allocating function, called
    from the main module, from a thread and from an atexit handler, must
    show each its own outer frames, however the calls interleave."""

    SCRIPT = textwrap.dedent("""\
        import atexit, ctypes, sys, threading
        lib = ctypes.CDLL(sys.argv[1])
        lib.nstack_lib_alloc.restype = ctypes.c_void_p
        lib.nstack_lib_alloc.argtypes = [ctypes.c_size_t]
        atexit.register(lambda: lib.nstack_lib_alloc(700001))
        for _ in range(3):
            lib.nstack_lib_alloc(300001)
            t = threading.Thread(target=lib.nstack_lib_alloc, args=(900001,))
            t.start()
            t.join()
        """)

    # the size each caller allocates, how often, and a function that must
    # and one that must not be outward of the Python frames (exported ones:
    # Debian's python3 is stripped)
    CALLERS = {
        300001: (3, "_PyRun_SimpleFileObject", "Py_FinalizeEx"),
        700001: (1, "Py_FinalizeEx", "_PyRun_SimpleFileObject"),
        900001: (3, "start_thread", "Py_BytesMain"),
    }

    def test_outer_frames_follow_the_caller(self):
        if not PYTHONS:
            self.skipTest("no CPython found")
        script = self.tmp / "outer.py"
        script.write_text(self.SCRIPT)
        for python in PYTHONS:
            with self.subTest(python=python):
                run = self.run_traced_ok([python, str(script), str(LIB_SO)], env=NATIVE_ENV)
                lines = [l for l in folded(run.traces[0]).splitlines() if "nstack_lib_alloc (" in l]
                for size, (times, present, absent) in self.CALLERS.items():
                    hits = [l for l in lines if l.endswith(" %d" % (times * size))]
                    self.assertEqual(len(hits), 1, (size, lines))
                    frames = hits[0].split(";")
                    first_py = next(i for i, f in enumerate(frames) if ".py:" in f)
                    outer = ";".join(frames[:first_py])
                    self.assertIn(present, outer)
                    self.assertNotIn(absent, outer)


def folded_stacks(text):
    """folded output as {stack: bytes}."""
    out = {}
    for line in text.splitlines():
        stack, _, count = line.rpartition(" ")
        out[stack] = out.get(stack, 0) + int(count)
    return out


CHECKED = re.compile(r"MEMTRACE_NATIVE_UNWIND=check: (\d+) stacks walked both ways, "
                     r"(\d+) differ; (\d+) left to libunwind")


class Unwinders(TracerTestCase):
    """The tracer walks stacks by the DWARF rules of each return address
    (unwind.c), falling back to libunwind where they do not do.
    MEMTRACE_NATIVE_UNWIND=check walks every stack both ways and counts the
    ones that differ: there must be none."""

    def checked(self, argv, at_least, **env):
        # the count is a message on stderr, which MEMTRACE_QUIET=1 would silence
        run = self.run_traced_ok(argv, quiet=False,
                                 env={**NATIVE_ENV, **env, "MEMTRACE_NATIVE_UNWIND": "check"})
        m = CHECKED.search(run.stderr)
        self.assertIsNotNone(m, run.stderr)
        self.assertEqual(int(m.group(2)), 0, run.stderr)
        self.assertGreaterEqual(int(m.group(1)), at_least, run.stderr)
        return run

    def test_hard_frames(self):
        """unwind_cases.c: deep recursion, alloca, a realigned frame, a
        signal handler, a thread and a library unloaded and loaded again;
        PER_PATH (3) blocks of one size each, the same stacks with either
        unwinder."""
        # (size, a function on the path, how often recurse is on it)
        paths = [(101, "main", 41), (101, "thread_main", 6), (102, "with_alloca", 0),
                 (103, "realigned", 0), (104, "on_signal", 0), (105, "thread_main", 0),
                 (2 * 106, "load_call_unload", 0)]
        for unwinder in ("rules", "libunwind"):
            with self.subTest(unwinder=unwinder):
                run = self.run_traced_ok([prog("unwind_cases"), str(LIB_SO)],
                                         env={**NATIVE_ENV, "MEMTRACE_NATIVE_UNWIND": unwinder})
                stacks = folded_stacks(folded(run.traces[0]))
                for size, function, depth in paths:
                    hits = [s for s, n in stacks.items() if n == 3 * size
                            and ";%s (" % function in s and s.count("recurse (") == depth]
                    self.assertEqual(len(hits), 1, (size, function, stacks))
                    inner = "nstack_lib_alloc (" if size == 2 * 106 else "allocate ("
                    self.assertTrue(hits[0].rsplit(";", 1)[-1].startswith(inner), hits[0])
        run = self.checked([prog("unwind_cases"), str(LIB_SO)], 10)
        # the signal handler's three allocations: a signal frame is libunwind's
        self.assertEqual(int(CHECKED.search(run.stderr).group(3)), 3)

    def test_cxx_and_threads(self):
        self.checked([prog("cxx"), "3"], 40)
        self.checked([str(STORM), "4", "20000"], 80000)

    def test_python(self):
        for python in PYTHONS:
            with self.subTest(python=python):
                self.checked([python, str(REPO / "bench" / "alloc_heavy.py"), "5000"], 200000)

    def test_cut_at_the_depth(self):
        """Stacks deeper than MEMTRACE_NATIVE_DEPTH keep their innermost
        frames, however the walk got them."""
        for depth in ("3", "20"):
            with self.subTest(depth=depth):
                self.checked([prog("unwind_cases"), str(LIB_SO)], 10,
                             MEMTRACE_NATIVE_DEPTH=depth)
                self.checked([PYTHONS[0], str(REPO / "bench" / "alloc_heavy.py"), "2000"],
                             50000, MEMTRACE_NATIVE_DEPTH=depth)

    def test_bad_setting(self):
        run = self.run_traced_ok([prog("unwind_cases")], quiet=False,
                                 env={**NATIVE_ENV, "MEMTRACE_NATIVE_UNWIND": "fast"})
        self.assertIn('ignoring MEMTRACE_NATIVE_UNWIND="fast"', run.stderr)
        self.report_ok(run.traces[0])


if __name__ == "__main__":
    unittest.main()
