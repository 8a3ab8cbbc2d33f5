"""The six labs, run as the README's first command runs them: every lab under
the tracer with every CPython on the machine.  Each lab's headline figures,
read from its JSON report, must be what CPython 3.11 really does; a
regression in the tracer or the reporter turns one of them red.  The seed's
own scripts (labs/seed/, no marks) are asserted from the line-by-line view
of the main script alone.
"""

import json
import subprocess
import sys
import unittest
from pathlib import Path

from harness import CLI, REPO, TracerTestCase

RUN_LABS = REPO / "labs" / "run_labs.py"
MILLION = 1_000_000
CACHED_INTS = 257  # 0..256 are preallocated; the comprehension starts at 0


class Labs(TracerTestCase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        import tempfile
        cls.out = Path(tempfile.mkdtemp(prefix="memtrace-labs."))
        proc = subprocess.run([sys.executable, str(RUN_LABS), "--build", str(CLI.parent),
                               "--out", str(cls.out)], capture_output=True, text=True,
                              timeout=600)
        if proc.returncode != 0:
            raise AssertionError("run_labs.py failed:\n%s\n%s" % (proc.stdout, proc.stderr))
        cls.overview = proc.stdout
        cls.labs = {n: json.loads((cls.out / ("lab%d.json" % n)).read_text())
                    for n in range(1, 7)}
        cls.seed = {n: json.loads((cls.out / "seed" / ("lab%d.json" % n)).read_text())
                    for n in range(1, 7)}

    def each(self, number, labs=None):
        """(python, figures) of every interpreter the lab ran with."""
        entries = (labs or self.labs)[number]["interpreters"]
        self.assertGreaterEqual(len(entries), 1)
        for entry in entries:
            with self.subTest(python=entry["python"]):
                yield entry["figures"]

    def test_reports_written(self):
        for out in (self.out, self.out / "seed"):
            for n in range(1, 7):
                for ext in ("txt", "html", "json"):
                    path = out / ("lab%d.%s" % (n, ext))
                    self.assertGreater(path.stat().st_size, 500, path)
                text = (out / ("lab%d.txt" % n)).read_text()
                self.assertIn("Lab %d:" % n, text)
        lines = self.overview.splitlines()
        runs = 6 * len(self.labs[1]["interpreters"])
        self.assertEqual(sum(l.startswith("lab ") for l in lines), runs)
        self.assertEqual(sum(l.startswith("seed lab ") for l in lines), runs)
        # the seed's reports show the script line by line, with its source
        text = (self.out / "seed" / "lab5.txt").read_text()
        self.assertIn("main script, line by line:", text)
        self.assertRegex(text, r"\n +4 +0 +999,7\d\d .* -30 .*  del big_data\n")

    def test_lab1_interning(self):
        for f in self.each(1):
            self.assertEqual(f["small_int_objects"], 0)
            self.assertEqual(f["constant_objects"], 0)
            self.assertEqual(f["runtime_objects"], 2)
            self.assertEqual(f["runtime_classes"], {"32": 2})

    def test_lab2_second_name(self):
        for f in self.each(2):
            self.assertEqual((f["allocs"], f["frees"]), (0, 0))

    def test_lab3_identity(self):
        for f in self.each(3):
            self.assertEqual(f["small_int_objects"], 0)
            self.assertEqual(f["big_int_objects"], 1)
            self.assertEqual(f["big_int_classes"], {"32": 1})
            self.assertEqual(f["append_allocs"], 0)
            self.assertEqual(f["append_resizes"], 1)
            self.assertEqual(f["append_chain"], [2, 8])
            self.assertEqual(f["append_slack_slots"], 5)
            self.assertGreater(f["string_obj_allocs"], 0)

    def test_lab4_copies(self):
        for f in self.each(4):
            self.assertEqual(f["alias_allocs"], 0)
            # The outer list object comes from CPython's free list when one
            # is there (it is, after start-up, in both interpreters); its
            # 2-item buffer (16 bytes) is always a new PyMem block.
            self.assertIn(f["slice_allocs"], (1, 2))
            self.assertEqual(f["slice_classes"].get("16"), 1)
            self.assertGreater(f["deep_allocs"], f["slice_allocs"])
            self.assertEqual(f["append_allocs"], 0)
            self.assertEqual(f["append_resizes"], 1)

    def test_lab5_gc(self):
        for f in self.each(5):
            # one 32-byte int per item not in the small-int cache, plus at
            # most a handful of other 32-byte blocks the interpreter makes
            # while running the comprehension
            self.assertGreaterEqual(f["int_objects_32"], MILLION - CACHED_INTS)
            self.assertLessEqual(f["int_objects_32"], MILLION - CACHED_INTS + 16)
            self.assertGreaterEqual(f["build_arenas"], 30)
            self.assertLessEqual(f["del_arenas"], -29)
            self.assertEqual(f["collect_arenas"], 0)
            self.assertEqual(f["list_resizes"], 86)
            self.assertEqual(f["final_capacity"], 1_056_084)
            self.assertGreaterEqual(f["del_frees"], MILLION - CACHED_INTS)
            self.assertLess(f["collect_frees"], 1000)

    def test_lab6_sizes(self):
        for f in self.each(6):
            self.assertEqual(f["list_mem_allocs"], 1)
            self.assertEqual(f["tuple_mem_allocs"], 0)

    # ---- the seed's scripts, from the line-by-line view alone ----

    def test_seed1_interning(self):
        for f in self.each(1, self.seed):
            # no line binding an int allocates an int; the one block of
            # `y = 100` is the module's namespace growing (CPython 3.11's
            # dict keys table for 16 entries is 400 bytes; an int is 32)
            self.assertEqual((f["x_allocs"], f["a_allocs"], f["b_allocs"]), (0, 0, 0))
            self.assertEqual((f["y_allocs"], f["y_frees"]), (1, 1))
            self.assertEqual(f["y_obj"], [1, 400])

    def test_seed2_second_name(self):
        for f in self.each(2, self.seed):
            self.assertEqual((f["second_allocs"], f["second_frees"]), (0, 0))

    def test_seed3_identity(self):
        for f in self.each(3, self.seed):
            self.assertEqual(f["plus_allocs"], 0)
            self.assertEqual(f["make_mem"], [1, 16])  # two item slots
            # the append: one realloc of the item buffer, 2 to 8 slots
            self.assertEqual((f["append_allocs"], f["append_frees"]), (1, 0))
            self.assertEqual(f["append_resizes"], 1)
            self.assertEqual(f["append_mem"], [1, 64])
            self.assertEqual(f["append_freed"], 16)

    def test_seed4_copies(self):
        for f in self.each(4, self.seed):
            self.assertEqual(f["alias_allocs"], 0)
            # the slice: a 2-slot item buffer, and the list object unless
            # CPython's free list of lists had one (it depends on what the
            # interpreter's start-up left there)
            self.assertEqual(f["shallow_mem"], [1, 16])
            self.assertIn(f["shallow_obj"], ([0, 0], [1, 56]))
            self.assertGreater(f["deep_allocs"], f["shallow_allocs"] + 10)
            self.assertEqual((f["append_resizes"], f["append_allocs"]), (1, 1))

    def test_seed5_gc(self):
        for f in self.each(5, self.seed):
            self.assertEqual(f["build_resizes"], 86)
            self.assertGreaterEqual(f["build_arenas"], 30)
            # del frees every int made (1,000,000 less the 257 cached) and
            # the item buffer, and the arenas go back
            self.assertGreaterEqual(f["del_frees"], MILLION - CACHED_INTS + 1)
            self.assertLessEqual(f["del_frees"], MILLION - CACHED_INTS + 16)
            self.assertGreaterEqual(f["del_arenas"], 29)
            # gc.collect() frees no int and no arena: only the small blocks
            # of CPython's free lists (fewer than 1,000 blocks, 32 KiB)
            self.assertEqual(f["collect_allocs"], 0)
            self.assertEqual((f["collect_arenas"], f["collect_pools"]), (0, 0))
            self.assertLess(f["collect_frees"], 1000)
            self.assertLess(f["collect_bytes"], 32 * 1024)

    def test_seed6_sizes(self):
        for f in self.each(6, self.seed):
            # getsizeof(list) = 56 + 48: six slots for five items
            self.assertEqual(f["list_mem"], [1, 48])
            self.assertEqual(f["list_slots"], 6)
            self.assertEqual(f["tuple_allocs"], 0)


if __name__ == "__main__":
    unittest.main(argv=[sys.argv[0]] + sys.argv[1:])
