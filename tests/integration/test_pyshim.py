"""The CPython shim: PyMem/PyObject domains, arenas and Python lines on
every interpreter of the machine (harness.INTERPRETERS: Debian's static
3.11, the shared-libpython 3.11 on PATH, 3.13 and the free-threaded 3.13t
of scripts/pythons.sh), under every allocator start-up mode, with threads,
child processes and marks.

The figures asserted are CPython's own (pyfacts.py says why each is what
it is): a comprehension over range(200000) makes 199,743 int objects, one
PyObject_Malloc each; object() is one PyObject_Malloc of
sys.getsizeof(object()) bytes.
"""

import sys
import textwrap
import unittest

import pyfacts
from harness import (INTERPRETERS, REPO, REPORT_OK, REPORT_TORN, TracerTestCase, marker_line,
                     report)

PYTHONS = list(INTERPRETERS.values())
N = 200_000
INTS = N - pyfacts.CACHED_INTS

MANY_INTS = """
import gc
x = [i for i in range(200000)]  # BUILD
del x
print(gc.collect() >= 0)
"""

# object() once per item at the marked line: one PyObject_Malloc each and
# nothing else (repeat yields the same None, where range would make ints;
# the list is made on a line of its own, since whether a new list object is
# allocated depends on CPython's free list of lists, which other threads
# fill and empty)
OBJECTS = """
import itertools, threading
shared = []
lock = threading.Lock()
def work(n):
    mine = []
    add = mine.append
    for _ in itertools.repeat(None, n):
        add(object())  # WORK
    with lock:
        shared.append(mine)
threads = [threading.Thread(target=work, args=(100000,)) for _ in range(4)]
for t in threads: t.start()
for t in threads: t.join()
# frees in the main thread of objects the workers allocated
shared.clear()
print("done")
"""

MULTIPROCESSING = """
import itertools
import multiprocessing as mp
def make(n):
    made = []
    for _ in itertools.repeat(None, n):
        made.append(object())  # MAKE
    return len(made)
if __name__ == "__main__":
    mp.set_start_method("{method}")
    pool = mp.Pool(2)
    print(sum(pool.map(make, [1000 * k for k in range(1, 9)])))
    # close and join, not terminate: the workers end normally, their
    # traces complete
    pool.close()
    pool.join()
"""

# os.fork() 12 times, alone, counting the threads right after it returns
# in the parent and the child, as CPython 3.12+ does there to warn
# (/proc/self/stat), and as a listing would (/proc/self/task).  Between the
# forks the parent makes objects in the patterns of tests/progs/forks.c:
# many, a few with a pause between, very few, and some.
FORKS = """
import itertools, os, sys, time
def threads():
    fd = os.open("/proc/self/stat", os.O_RDONLY)
    stat = os.read(fd, 1024)
    os.close(fd)
    return max(int(stat.rsplit(b")", 1)[1].split()[17]), len(os.listdir("/proc/self/task")))
def make(n):
    made = []
    for _ in itertools.repeat(None, n):
        made.append(object())  # MAKE
    return made
kept, most, more = [], 0, 0
for i in range(12):
    kept.append(make((40000, 150, 5, 20000)[i % 4]))
    if i % 4 == 1:
        time.sleep(0.015)
        kept.append(make(150))
    pid = os.fork()
    seen = threads()
    if pid == 0:
        child = make(1000 + i)
        if i % 2:
            os._exit(seen != 1)
        sys.exit(seen != 1)
    most = max(most, seen)
    more += os.waitpid(pid, 0)[1] != 0
print("threads", most, more, sum(map(len, kept)))
"""

CHILD = ("import itertools\\nx = []\\nfor _ in itertools.repeat(None, 50000):\\n"
         "    x.append(object())\\nprint(len(x))")
SUBPROCESS = """
import subprocess, sys
out = subprocess.run([sys.executable, "-c", "%s"],
                     capture_output=True, text=True, check=True).stdout
print(out.strip())
""" % CHILD

TRACEMALLOC = """
import itertools, tracemalloc
tracemalloc.start()
x = []
for _ in itertools.repeat(None, 200000):
    x.append(object())  # TRACED
size, peak = tracemalloc.get_traced_memory()
print(size > 3_000_000, peak >= size)
"""

MARKS = """
import sys
sys.path.insert(0, {python_dir!r})
from memtrace import mark
class Label(str):
    pass
built = "".join(["h\\u00e9llo ", "w\\u00f6rld"])  # a str made at run time
before = sys.getsizeof(built)
mark("ABCDEFGHIJKLMNOPQRSTUVWXYZ")
mark("alias")
mark(built)
mark("\\u2713 \\U0001d11e")
mark("lone \\udc80 surrogate")
sys.audit("memtrace.mark", Label("a str subclass"))
sys.audit("memtrace.mark", 42)
sys.audit("memtrace.mark")
mark("last")
print(sys.getsizeof(built) == before)
"""



def sites_at(rep, path, line, domain="pymem_obj"):
    return [s for s in rep["sites"] if s["file"] == str(path) and s["line"] == line
            and s["domain"] == domain]


class PyShimCase(TracerTestCase):

    def script(self, text, name="script.py"):
        path = self.tmp / name
        path.write_text(textwrap.dedent(text))
        return path

    def traced_python(self, python, script, args=(), env=None, traces=1):
        """Runs the script traced, checks its output equals the untraced
        run's, and returns the reports of its traces."""
        argv = [python, *args, str(script)]
        plain = self.run_plain(argv, env=env, cwd=self.tmp)
        self.assertEqual(plain.returncode, 0, plain.stderr)
        run = self.run_traced_ok(argv, traces=traces, env=env)
        self.assertEqual(run.stdout, plain.stdout)
        return self.reports(run)

    def assert_exact_order(self, rep):
        """Every free matched a live block in its domain: the merged stream
        of all threads is in a consistent order."""
        for name, dom in rep["domains"].items():
            self.assertEqual((dom["unmatched_frees"], dom["inconsistent"]), (0, 0), name)
        self.assertEqual(rep["events"]["lost"], 0)

    def assert_site(self, rep, path, line, function, allocs, nbytes):
        """The PyObject allocations of `function` at path:line, all in one
        site, are exactly allocs blocks of nbytes in all.  (JSON lists every
        site: on 3.11 the <module> frame around a <listcomp> is a site of
        its own at the same line, with the range and its iterator.)"""
        sites = [s for s in sites_at(rep, path, line) if s["function"] == function]
        self.assertEqual([(s["function"], s["allocs"], s["bytes"]) for s in sites],
                         [(function, allocs, nbytes)], "PyObject sites at line %d" % line)
        return sites[0]


@unittest.skipUnless(PYTHONS, "no Python interpreter found")
class ManyInts(PyShimCase):
    """199,743 int objects at the comprehension's line, exactly, whatever
    serves PyObject_Malloc and whoever else hooks it."""

    def test_modes(self):
        path = self.script(MANY_INTS)
        line = marker_line(path, "# BUILD")
        for py in PYTHONS:
            extra, extra_bytes = pyfacts.range_loop_objects(py)
            function = pyfacts.comprehension_function(py, "<module>")
            for mode, (args, env, allocator) in pyfacts.allocator_modes(py).items():
                with self.subTest(python=py.label, mode=mode):
                    rep, = self.traced_python(py.exe, path, args, env)
                    site = self.assert_site(rep, path, line, function, INTS + extra,
                                            INTS * pyfacts.int_block(py) + extra_bytes)
                    self.assertEqual(site["live_bytes_at_exit"], 0)
                    self.assert_exact_order(rep)
                    python = rep["process"]["python"]
                    self.assertEqual(python["object_allocator"], allocator)
                    self.assertEqual(python["free_threaded"], py.free_threaded)
                    self.assertEqual(python["py_depth"], 1)
                    # the heap counts the ints, whoever holds their memory:
                    # pymalloc's arenas, malloc, or mimalloc block by block
                    self.assertGreaterEqual(rep["summary"]["heap_peak"]["bytes"],
                                            INTS * pyfacts.int_block(py))
                    if allocator == "pymalloc":
                        self.assertIsNone(rep["arenas"]["absent"])
                        # 392 pools of 510 ints: 6 arenas of 63 or 64 pools
                        self.assertGreaterEqual(rep["arenas"]["peak"], 6)
                    else:
                        self.assertEqual(rep["arenas"]["allocated"], 0)
                        self.assertIn(("free-threaded" if py.free_threaded
                                       else "PYTHONMALLOC=" + allocator),
                                      rep["arenas"]["absent"])


@unittest.skipUnless(PYTHONS, "no Python interpreter found")
class Concurrency(PyShimCase):

    def test_threads(self):
        """Four threads make 100,000 objects each at one line; the main
        thread frees them.  On 3.13t they run in parallel."""
        path = self.script(OBJECTS)
        line = marker_line(path, "# WORK")
        for py in PYTHONS:
            with self.subTest(python=py.label):
                rep, = self.traced_python(py.exe, path)
                self.assertGreaterEqual(rep["trace"]["threads"], 5)
                self.assert_site(rep, path, line, "work", 400000,
                                 400000 * pyfacts.object_size(py))
                self.assert_exact_order(rep)

    def test_multiprocessing(self):
        for method in ("fork", "spawn"):
            text = MULTIPROCESSING.format(method=method)
            path = self.script(text, "mp_%s.py" % method)
            line = marker_line(path, "# MAKE")
            for py in PYTHONS:
                with self.subTest(python=py.label, method=method):
                    run = self.run_traced([py.exe, str(path)])
                    self.assertEqual(run.returncode, 0, run.stderr)
                    self.assertEqual(run.stdout.strip(), str(36000))
                    # the parent and its two workers at least, each its own
                    # file; the pool terminates its workers with SIGTERM, so
                    # only the parent's trace is sure to have its footer
                    self.assertGreaterEqual(len(run.traces), 3, [t.name for t in run.traces])
                    # SIGTERM may also cut a worker's last block short
                    reps = {}
                    for trace in run.traces:
                        rc, rep, stderr = report(trace)
                        self.assertIn(rc, (REPORT_OK, REPORT_TORN), stderr)
                        reps[rep["process"]["pid"]] = rep
                    self.assertTrue(reps[run.pid]["trace"]["complete"])
                    # the pool's two workers (a spawned pool also starts a
                    # resource tracker)
                    workers = [r for r in reps.values() if r["process"]["ppid"] == run.pid
                               and "resource_tracker" not in " ".join(r["process"]["argv"])]
                    self.assertEqual(len(workers), 2, [r["process"] for r in reps.values()])
                    self.assert_exact_order(reps[run.pid])
                    # the eight calls made 36,000 objects between them, in
                    # whichever worker ran each
                    made = [s for r in workers for s in sites_at(r, path, line)]
                    self.assertEqual((sum(s["allocs"] for s in made), sum(s["bytes"] for s in made)),
                                     (36000, 36000 * pyfacts.object_size(py)))
                    self.assertEqual({s["function"] for s in made}, {"make"})
                    for rep in workers:
                        self.assertTrue(rep["trace"]["complete"])
                        # a forked worker frees blocks its parent allocated,
                        # which its own trace never saw: only those may not match
                        for name, dom in rep["domains"].items():
                            self.assertEqual(dom["inconsistent"], 0, name)
                        if method == "spawn":
                            self.assert_exact_order(rep)

    def test_fork_alone(self):
        """A single-threaded program sees one thread right after each
        os.fork() returns, in the parent and the child (3.13 warns there
        otherwise: its stderr must stay empty), and every object the
        parent and its 12 children made is in their traces."""
        path = self.script(FORKS)
        line = marker_line(path, "# MAKE")
        for py in PYTHONS:
            with self.subTest(python=py.label):
                argv = [py.exe, str(path)]
                run = self.run_traced_ok(argv, traces=13)
                self.assertEqual((run.stdout, run.stderr), ("threads 1 0 180915\n", ""))
                reps = {rep["process"]["pid"]: rep for rep in self.reports(run)}
                parent = reps.pop(run.pid)
                self.assertTrue(parent["trace"]["complete"])
                self.assert_exact_order(parent)
                # 3 x (40,000 + 2 x 150 + 5 + 20,000) objects
                self.assert_site(parent, path, line, "make", 180915,
                                 180915 * pyfacts.object_size(py))
                made = sorted(s["allocs"] for r in reps.values()
                              for s in sites_at(r, path, line))
                self.assertEqual(made, list(range(1000, 1012)))
                for rep in reps.values():
                    self.assertTrue(rep["trace"]["complete"])
                    self.assertEqual(rep["events"]["lost"], 0)
                    # a child frees blocks its parent allocated, which its
                    # own trace never saw: only those may not match
                    for name, dom in rep["domains"].items():
                        self.assertEqual(dom["inconsistent"], 0, name)

    def test_subprocess(self):
        path = self.script(SUBPROCESS)
        for py in PYTHONS:
            with self.subTest(python=py.label):
                reps = self.traced_python(py.exe, path, traces=2)
                # by parentage, not pid order: pids wrap (pid_max is 32768 here)
                pids = {r["process"]["pid"] for r in reps}
                children = [r for r in reps if r["process"]["ppid"] in pids]
                self.assertEqual(len(children), 1, [r["process"] for r in reps])
                self.assert_site(children[0], "<string>", 4, "<module>", 50000,
                                 50000 * pyfacts.object_size(py))
                self.assert_exact_order(children[0])


@unittest.skipUnless(PYTHONS, "no Python interpreter found")
class Coexistence(PyShimCase):

    def test_tracemalloc_started_by_the_program(self):
        """tracemalloc.start() wraps the shim's hooks: both see every
        object, the shim once."""
        path = self.script(TRACEMALLOC)
        line = marker_line(path, "# TRACED")
        for py in PYTHONS:
            with self.subTest(python=py.label):
                rep, = self.traced_python(py.exe, path)
                self.assert_site(rep, path, line, "<module>", 200000,
                                 200000 * pyfacts.object_size(py))
                self.assert_exact_order(rep)

    def test_debugmallocstats(self):
        """A limitation shared with tracemalloc: sys._debugmallocstats()
        prints pymalloc's statistics only while PyObject_Malloc is pymalloc
        itself.  Under any hook CPython takes pymalloc to be off
        (_PyMem_PymallocEnabled compares the OBJ allocator with
        _PyObject_Malloc, Objects/obmalloc.c) and leaves the section out
        (README: why the tracer leaves sys alone).  A free-threaded build
        prints mimalloc's statistics whatever the hooks
        (_PyMem_MimallocEnabled is always true there)."""
        code = ["-c", "import sys; sys._debugmallocstats()"]
        section = "Small block threshold"
        for py in PYTHONS:
            with self.subTest(python=py.label):
                plain = self.run_plain([py.exe, *code]).stderr
                tracemalloc = self.run_plain([py.exe, "-X", "tracemalloc", *code]).stderr
                traced = self.run_traced_ok([py.exe, *code]).stderr
                self.assertIn(section, plain)
                for hooked in (tracemalloc, traced):
                    if py.free_threaded:
                        self.assertIn(section, hooked)
                    else:
                        self.assertNotIn(section, hooked)
                # the rest (free lists, type statistics) is there either way
                self.assertIn("free PyDictObjects", traced)

    def test_blocks_freed_past_the_raw_hook(self):
        """CPython copies argv with the default raw allocator put in for a
        moment, and frees the copies the same way at exit (_Py_SetArgcArgv,
        _Py_ClearArgcArgv, Python/initconfig.c).  The start-up watch has
        hooked the raw domain again by the time the copies are made, so
        each is a pymem_raw block whose free only malloc sees: it ends with
        its malloc block (freed_below), one per argument, and never stays
        live."""
        raw = {}
        for py in PYTHONS:
            with self.subTest(python=py.label):
                for extra in ([], ["a", "b", "c"]):
                    rep, = self.reports(self.run_traced_ok([py.exe, "-c", "pass", *extra]))
                    self.assert_exact_order(rep)
                    dom = rep["domains"]["pymem_raw"]
                    raw[len(extra)] = (dom["freed_below"], dom["live_blocks_at_exit"])
                self.assertGreater(raw[0][0], 0)
                self.assertEqual(raw[3], (raw[0][0] + 3, raw[0][1]))

    def test_native_program_has_no_python_events(self):
        rep, = self.reports(self.run_traced_ok(["/bin/true"]))
        for name in ("pymem_raw", "pymem_mem", "pymem_obj"):
            self.assertEqual(rep["domains"][name]["allocs"], 0, name)
        self.assertIsNone(rep["process"]["python"])


@unittest.skipUnless(PYTHONS, "no Python interpreter found")
class Marks(PyShimCase):

    def test_labels(self):
        """Labels come out as the program wrote them, in UTF-8, whatever
        their characters; a lone surrogate becomes U+FFFD.  Reading a label
        changes nothing in the program: a str keeps no UTF-8 copy it did
        not have (sys.getsizeof would show it), and a step with nothing in
        it allocates nothing."""
        path = self.script(MARKS.format(python_dir=str(REPO / "python")))
        labels = ["(before first mark)", "ABCDEFGHIJKLMNOPQRSTUVWXYZ", "alias",
                  "h\u00e9llo w\u00f6rld", "\u2713 \U0001d11e", "lone \ufffd surrogate",
                  "a str subclass", "last"]
        for py in PYTHONS:
            with self.subTest(python=py.label):
                rep, = self.traced_python(py.exe, path)
                self.assertEqual([m["label"] for m in rep["marks"]], labels)
                steps = {m["label"]: m for m in rep["marks"]}
                # the steps up to the one whose next line makes a Label
                for label in labels[1:5]:
                    self.assertEqual((steps[label]["allocs"], steps[label]["frees"]), (0, 0),
                                     label)


class Messages(PyShimCase):

    def test_one_line_or_none(self):
        """Every interpreter here has Python lines, so the tracer says only
        where the trace went, and with MEMTRACE_QUIET=1 nothing at all;
        MEMTRACE_PY_DEPTH=0 turns the lines off."""
        path = self.script(MANY_INTS)
        line = marker_line(path, "# BUILD")
        for py in PYTHONS:
            with self.subTest(python=py.label):
                run = self.run_traced_ok([py.exe, str(path)], quiet=False, terminal=True)
                self.assertRegex(run.stderr, r"^memtrace: wrote \S+ \(\d+ events\)\n$")
                run = self.run_traced_ok([py.exe, str(path)], quiet=False)
                self.assertEqual(run.stderr, "")
                run = self.run_traced_ok([py.exe, str(path)], env={"MEMTRACE_PY_DEPTH": "0"})
                self.assertEqual(run.stderr, "")
                rep = self.report_ok(run.traces[0])
                self.assertEqual(rep["process"]["python"]["py_depth"], 0)
                self.assertEqual(sites_at(rep, path, line), [])


if __name__ == "__main__":
    unittest.main(argv=[sys.argv[0]] + sys.argv[1:])
