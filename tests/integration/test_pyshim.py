"""The CPython shim: PyMem/PyObject domains and arenas, in both interpreters
on the machine (the static /usr/bin/python3 and the shared-libpython one on
PATH), under every allocator start-up mode, with threads and child
processes.

The figures asserted come from CPython itself: a list comprehension of a
million ints makes a million int objects through PyObject_Malloc, each of
which is freed again when the list goes.
"""

import shutil
import subprocess
import sys
import textwrap
import unittest
from pathlib import Path

from harness import (PYTHONS as HARNESS_PYTHONS, REPORT_OK, REPORT_TORN, TracerTestCase,
                     clean_env, report)

MILLION = 1_000_000

# Python's own start-up allocates some ten thousand objects, which the
# million ints sit on top of; 10% leaves room for both interpreters.
STARTUP_SLACK = 100_000


PYTHONS = list(HARNESS_PYTHONS.values())

MILLION_INTS = """
import gc
x = [i for i in range(1000000)]
del x
print(gc.collect() >= 0)
"""

THREADS = """
import threading
shared = []
lock = threading.Lock()
def work(n):
    mine = [str(i) for i in range(n)]
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
import multiprocessing as mp
def square(x):
    return [i * x for i in range(20000)][-1]
if __name__ == "__main__":
    mp.set_start_method("{method}")
    with mp.Pool(2) as pool:
        print(sum(pool.map(square, range(8))))
"""

SUBPROCESS = """
import subprocess, sys
out = subprocess.run([sys.executable, "-c", "print(len([str(i) for i in range(50000)]))"],
                     capture_output=True, text=True, check=True).stdout
print(out.strip())
"""

TRACEMALLOC = """
import tracemalloc
tracemalloc.start()
x = [str(i) for i in range(200000)]
size, peak = tracemalloc.get_traced_memory()
print(size > 10_000_000, peak >= size)
"""


class PyShimCase(TracerTestCase):

    def script(self, text, name="script.py"):
        path = self.tmp / name
        path.write_text(textwrap.dedent(text))
        return str(path)

    def traced_python(self, python, script, args=(), env=None, traces=1):
        """Runs the script traced, checks its output equals the untraced
        run's, and returns the reports of its traces."""
        argv = [python, *args, script]
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


@unittest.skipUnless(PYTHONS, "no Python interpreter found")
class MillionInts(PyShimCase):
    """~1M PyObject allocations, all freed again, in every start-up mode."""

    MODES = {
        "default": ([], {}),
        "PYTHONMALLOC=pymalloc": ([], {"PYTHONMALLOC": "pymalloc"}),
        "PYTHONMALLOC=malloc": ([], {"PYTHONMALLOC": "malloc"}),
        "PYTHONMALLOC=debug": ([], {"PYTHONMALLOC": "debug"}),
        "-X dev": (["-X", "dev"], {}),
        "-X tracemalloc": (["-X", "tracemalloc"], {}),
    }

    def test_modes(self):
        script = self.script(MILLION_INTS)
        for python in PYTHONS:
            for mode, (args, env) in self.MODES.items():
                with self.subTest(python=python, mode=mode):
                    rep, = self.traced_python(python, script, args, env)
                    obj = rep["domains"]["pymem_obj"]
                    self.assertGreaterEqual(obj["allocs"], MILLION)
                    self.assertLess(obj["allocs"], MILLION + STARTUP_SLACK)
                    self.assertGreaterEqual(obj["frees"], MILLION)
                    self.assertGreater(rep["domains"]["pymem_mem"]["allocs"], 0)
                    self.assertGreater(rep["domains"]["pymem_raw"]["allocs"], 0)
                    self.assert_exact_order(rep)


@unittest.skipUnless(PYTHONS, "no Python interpreter found")
class Concurrency(PyShimCase):

    def test_threads(self):
        script = self.script(THREADS)
        for python in PYTHONS:
            with self.subTest(python=python):
                rep, = self.traced_python(python, script)
                self.assertGreaterEqual(rep["trace"]["threads"], 5)
                self.assertGreaterEqual(rep["domains"]["pymem_obj"]["allocs"], 400_000)
                self.assert_exact_order(rep)

    def test_multiprocessing(self):
        for method in ("fork", "spawn"):
            script = self.script(MULTIPROCESSING.format(method=method), "mp_%s.py" % method)
            for python in PYTHONS:
                with self.subTest(python=python, method=method):
                    argv = [python, script]
                    run = self.run_traced(argv)
                    self.assertEqual(run.returncode, 0, run.stderr)
                    self.assertEqual(run.stdout.strip(), str(sum(19999 * x for x in range(8))))
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
                    workers = [r for r in reps.values() if r["process"]["ppid"] == run.pid]
                    self.assertGreaterEqual(len(workers), 2)
                    self.assert_exact_order(reps[run.pid])
                    for rep in workers:
                        # a forked worker frees blocks its parent allocated,
                        # which its own trace never saw: only those may not match
                        for name, dom in rep["domains"].items():
                            self.assertEqual(dom["inconsistent"], 0, name)

    def test_subprocess(self):
        script = self.script(SUBPROCESS)
        for python in PYTHONS:
            with self.subTest(python=python):
                reps = self.traced_python(python, script, traces=2)
                # by parentage, not pid order: pids wrap (pid_max is 32768 here)
                pids = {r["process"]["pid"] for r in reps}
                children = [r for r in reps if r["process"]["ppid"] in pids]
                self.assertEqual(len(children), 1, [r["process"] for r in reps])
                child = children[0]
                self.assertGreaterEqual(child["domains"]["pymem_obj"]["allocs"], 50_000)


@unittest.skipUnless(PYTHONS, "no Python interpreter found")
class Coexistence(PyShimCase):

    def test_tracemalloc_still_works(self):
        script = self.script(TRACEMALLOC)
        for python in PYTHONS:
            with self.subTest(python=python):
                rep, = self.traced_python(python, script)
                self.assertGreaterEqual(rep["domains"]["pymem_obj"]["allocs"], 200_000)

    def test_native_program_has_no_python_events(self):
        rep, = self.reports(self.run_traced_ok(["/bin/true"]))
        for name in ("pymem_raw", "pymem_mem", "pymem_obj"):
            self.assertEqual(rep["domains"][name]["allocs"], 0, name)


if __name__ == "__main__":
    unittest.main(argv=[sys.argv[0]] + sys.argv[1:])
