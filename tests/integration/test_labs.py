"""The six labs, run as the README's first command runs them: every lab under
the tracer with every CPython on the machine.  Each lab's headline figures,
read from its JSON report, must be what CPython 3.11 really does; a
regression in the tracer or the reporter turns one of them red.
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

    def each(self, number):
        """(python, figures) of every interpreter the lab ran with."""
        entries = self.labs[number]["interpreters"]
        self.assertGreaterEqual(len(entries), 1)
        for entry in entries:
            with self.subTest(python=entry["python"]):
                yield entry["figures"]

    def test_reports_written(self):
        for n in range(1, 7):
            for ext in ("txt", "html", "json"):
                path = self.out / ("lab%d.%s" % (n, ext))
                self.assertGreater(path.stat().st_size, 500, path)
            text = (self.out / ("lab%d.txt" % n)).read_text()
            self.assertIn("Lab %d:" % n, text)
        self.assertEqual(self.overview.count("lab "), 6 * len(self.labs[1]["interpreters"]))

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


if __name__ == "__main__":
    unittest.main(argv=[sys.argv[0]] + sys.argv[1:])
