"""The six labs, run as the README's first command runs them: every lab under
the tracer with every CPython on the machine (harness.INTERPRETERS: 3.11
static and shared, 3.13, 3.13t).  Each lab's headline figures, read from its
JSON report, must be what that CPython really does (pyfacts.py, and the
notes run_labs.py adds where an interpreter differs); a regression in the
tracer or the reporter turns one of them red.  The seed's own scripts
(labs/seed/, no marks) are asserted from the line-by-line view of the main
script alone.
"""

import json
import subprocess
import sys
import unittest
from pathlib import Path

import pyfacts
from harness import CLI, INTERPRETERS, REPO, TracerTestCase, python_of

RUN_LABS = REPO / "labs" / "run_labs.py"
MILLION = pyfacts.MILLION
CACHED_INTS = pyfacts.CACHED_INTS


@unittest.skipUnless(INTERPRETERS, "no Python interpreter found")
class Labs(TracerTestCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        import tempfile
        cls.out = Path(tempfile.mkdtemp(prefix="memtrace-labs."))
        given = [a for py in INTERPRETERS.values() for a in ("--python", py.exe)]
        proc = subprocess.run([sys.executable, str(RUN_LABS), "--build", str(CLI.parent),
                               "--out", str(cls.out), "--only-given", *given],
                              capture_output=True, text=True, timeout=900)
        if proc.returncode != 0:
            raise AssertionError("run_labs.py failed:\n%s\n%s" % (proc.stdout, proc.stderr))
        cls.overview = proc.stdout
        cls.labs = {n: json.loads((cls.out / ("lab%d.json" % n)).read_text())
                    for n in range(1, 7)}
        cls.seed = {n: json.loads((cls.out / "seed" / ("lab%d.json" % n)).read_text())
                    for n in range(1, 7)}

    def each(self, number, labs=None):
        """(Python, figures) of every interpreter the lab ran with."""
        entries = (labs or self.labs)[number]["interpreters"]
        self.assertEqual(sorted(e["python"] for e in entries),
                         sorted(py.exe for py in INTERPRETERS.values()))
        for entry in entries:
            py = python_of(entry["python"])
            with self.subTest(python=py.label):
                self.assertEqual(entry["free_threaded"], py.free_threaded)
                yield py, entry["figures"]

    def notes(self, number, py):
        return next(e["notes"] for e in self.labs[number]["interpreters"]
                    if e["python"] == py.exe)

    def test_reports_written(self):
        for out in (self.out, self.out / "seed"):
            for n in range(1, 7):
                for ext in ("txt", "html", "json"):
                    path = out / ("lab%d.%s" % (n, ext))
                    self.assertGreater(path.stat().st_size, 500, path)
                text = (out / ("lab%d.txt" % n)).read_text()
                self.assertIn("Lab %d:" % n, text)
        lines = self.overview.splitlines()
        runs = 6 * len(INTERPRETERS)
        self.assertEqual(sum(l.startswith("lab ") for l in lines), runs)
        self.assertEqual(sum(l.startswith("seed lab ") for l in lines), runs)
        # the seed's reports show the script line by line, with its source
        text = (self.out / "seed" / "lab5.txt").read_text()
        self.assertIn("main script, line by line:", text)

    def test_version_notes(self):
        """Each difference by interpreter comes with its reason."""
        for py in INTERPRETERS.values():
            with self.subTest(python=py.label):
                first = self.notes(1, py)
                if py.free_threaded:
                    self.assertEqual(len(first), 1)
                    self.assertIn("Py_GIL_DISABLED requires using mimalloc", first[0])
                    self.assertTrue(any("gc_free_threading.c" in note
                                        for note in self.notes(5, py)))
                else:
                    self.assertEqual(first, [])
                inline = [note for note in self.notes(5, py) if "PEP 709" in note]
                self.assertEqual(len(inline), 1 if pyfacts.inline(py) else 0)

    def test_lab2_immortal_literal(self):
        """The note of lab 2 on free-threaded builds is what the interpreter
        does: the seed's literal reads 4294967295 there, 4 then 5 elsewhere."""
        seed = 'import sys\nm = "DevSecOps"\nprint(sys.getrefcount(m))\nc = m\n' \
               'print(sys.getrefcount(m))\n'
        for py in INTERPRETERS.values():
            with self.subTest(python=py.label):
                counts = subprocess.run([py.exe, "-c", seed], capture_output=True, text=True,
                                        check=True).stdout.split()
                immortal = [n for n in self.notes(2, py) if "4294967295" in n]
                if py.free_threaded:
                    self.assertEqual(counts, ["4294967295", "4294967295"])
                    self.assertEqual(len(immortal), 1)
                else:
                    self.assertEqual(counts, ["4", "5"])
                    self.assertEqual(immortal, [])

    def test_lab1_interning(self):
        for py, f in self.each(1):
            self.assertEqual(f["small_int_objects"], 0)
            self.assertEqual(f["constant_objects"], 0)
            self.assertEqual(f["runtime_objects"], 2)
            self.assertEqual(f["runtime_classes"], {str(pyfacts.int_block(py)): 2})

    def test_lab2_second_name(self):
        for _, f in self.each(2):
            self.assertEqual((f["allocs"], f["frees"]), (0, 0))

    def test_lab3_identity(self):
        for py, f in self.each(3):
            self.assertEqual(f["small_int_objects"], 0)
            self.assertEqual(f["big_int_objects"], 1)
            self.assertEqual(f["big_int_classes"], {str(pyfacts.int_block(py)): 1})
            # the free-threaded list_resize allocates a new array
            self.assertEqual(f["append_allocs"], 1 if py.free_threaded else 0)
            self.assertEqual(f["append_resizes"], 1)
            self.assertEqual(f["append_chain"], [2, 8])
            self.assertEqual(f["append_slack_slots"], 5)
            self.assertGreater(f["string_obj_allocs"], 0)
            # mimalloc serves large blocks itself
            if py.free_threaded:
                self.assertEqual(f["string_raw_allocs"], 0)
            else:
                self.assertGreater(f["string_raw_allocs"], 0)

    def test_lab4_copies(self):
        for py, f in self.each(4):
            self.assertEqual(f["alias_allocs"], 0)
            # The outer list object comes from CPython's free list, which
            # start-up has filled; only its 2-item buffer is allocated: 16
            # bytes, or on a free-threaded build 24 (the array's capacity
            # first) in the 32-byte class.
            self.assertEqual(f["slice_allocs"], 1)
            self.assertEqual(f["slice_classes"], {"32" if py.free_threaded else "16": 1})
            self.assertGreater(f["deep_allocs"], f["slice_allocs"])
            self.assertEqual(f["append_allocs"], 1 if py.free_threaded else 0)
            self.assertEqual(f["append_resizes"], 1)

    def test_lab5_gc(self):
        for py, f in self.each(5):
            # one int per item not in the small-int cache, plus at most a
            # handful of other blocks of the same class the interpreter
            # makes while running the comprehension
            self.assertEqual(f["int_block"], pyfacts.int_block(py))
            self.assertGreaterEqual(f["int_objects"], MILLION - CACHED_INTS)
            self.assertLessEqual(f["int_objects"], MILLION - CACHED_INTS + 16)
            self.assertEqual(f["list_resizes"], pyfacts.list_resizes(py, MILLION))
            self.assertEqual(f["final_capacity"], pyfacts.list_capacities(MILLION)[-1])
            self.assertGreaterEqual(f["del_frees"], MILLION - CACHED_INTS)
            self.assertLess(f["collect_frees"], 1000)
            if py.free_threaded:
                self.assertEqual((f["build_arenas"], f["arenas_peak"]), (0, 0))
                continue
            self.assertGreaterEqual(f["build_arenas"], 30)
            self.assertLessEqual(f["del_arenas"], -29)
            self.assertEqual(f["collect_arenas"], 0)

    def test_lab6_sizes(self):
        for _, f in self.each(6):
            self.assertEqual(f["list_mem_allocs"], 1)
            self.assertEqual(f["tuple_mem_allocs"], 0)

    # ---- the seed's scripts, from the line-by-line view alone ----

    def test_seed1_interning(self):
        for py, f in self.each(1, self.seed):
            # no line binding an int allocates an int; the one block of
            # `y = 100` is the module's namespace growing (a dict keys table
            # for 16 entries, 400 bytes; an int would be 32): PyObject's on
            # 3.11, PyMem's from 3.12 on (seed_labs.namespace_domain)
            self.assertEqual((f["x_allocs"], f["a_allocs"], f["b_allocs"]), (0, 0, 0))
            self.assertEqual((f["y_allocs"], f["y_frees"]), (1, 1))
            self.assertEqual(f["y_namespace"], [1, 400])

    def test_seed2_second_name(self):
        for py, f in self.each(2, self.seed):
            self.assertEqual((f["second_allocs"], f["second_frees"]), (0, 0))
            self.assertEqual(f["first_namespace"], [1, 400])

    def test_seed3_identity(self):
        for py, f in self.each(3, self.seed):
            # a free-threaded list's item array has an 8-byte capacity field
            # first, and grows by a new array and a free (pyfacts)
            header = 8 if py.free_threaded else 0
            self.assertEqual(f["plus_allocs"], 0)
            # two item slots; from 3.12 on the namespace's growth is PyMem too
            self.assertEqual(f["make_mem"], [1, 16] if py.version < (3, 12)
                             else [2, 16 + header + 400])
            # the append: the item buffer from 2 to 8 slots
            self.assertEqual((f["append_allocs"], f["append_frees"]),
                             (1, 1 if py.free_threaded else 0))
            self.assertEqual(f["append_resizes"], 1)
            self.assertEqual(f["append_mem"], [1, 64 + header])
            self.assertEqual(f["append_freed"], 16 + header)

    def test_seed4_copies(self):
        for py, f in self.each(4, self.seed):
            header = 8 if py.free_threaded else 0
            self.assertEqual(f["alias_allocs"], 0)
            # the slice: a 2-slot item buffer, and the list object unless
            # CPython's free list of lists had one (it depends on what the
            # interpreter's start-up left there)
            self.assertEqual(f["shallow_mem"], [1, 16 + header])
            self.assertIn(f["shallow_obj"], ([0, 0], [1, 56]))
            self.assertGreater(f["deep_allocs"], f["shallow_allocs"] + 10)
            self.assertEqual((f["append_resizes"], f["append_allocs"]), (1, 1))

    def test_seed5_gc(self):
        for py, f in self.each(5, self.seed):
            # 86 resizes from empty to 1,000,000 items; the free-threaded
            # build's first array is an allocation, not a resize (pyfacts)
            self.assertEqual(f["build_resizes"], pyfacts.list_resizes(py, MILLION))
            # del frees every int made (1,000,000 less the 257 cached) and
            # the item buffer, and the arenas go back (none without pymalloc)
            self.assertGreaterEqual(f["del_frees"], MILLION - CACHED_INTS + 1)
            self.assertLessEqual(f["del_frees"], MILLION - CACHED_INTS + 16)
            if py.free_threaded:
                self.assertEqual((f["build_arenas"], f["del_arenas"]), (0, 0))
            else:
                self.assertGreaterEqual(f["build_arenas"], 30)
                self.assertGreaterEqual(f["del_arenas"], 29)
            # gc.collect() frees no int and no arena: only small blocks of
            # CPython's free lists and the collector's own (fewer than 1,000
            # blocks, 64 KiB)
            self.assertLessEqual(f["collect_allocs"], 2)
            self.assertEqual((f["collect_arenas"], f["collect_pools"]), (0, 0))
            self.assertLess(f["collect_frees"], 1000)
            self.assertLess(f["collect_bytes"], 64 * 1024)

    def test_seed6_sizes(self):
        for py, f in self.each(6, self.seed):
            # getsizeof(list) = 56 + 48: six slots for five items (and the
            # free-threaded array's capacity field)
            header = 8 if py.free_threaded else 0
            self.assertEqual(f["list_buffer"], 48 + header)
            self.assertEqual(f["list_slots"], 6)
            self.assertEqual(f["list_mem"], [1, 48] if py.version < (3, 12)
                             else [2, 48 + header + 400])
            self.assertEqual(f["tuple_allocs"], 0)

if __name__ == "__main__":
    unittest.main(argv=[sys.argv[0]] + sys.argv[1:])
