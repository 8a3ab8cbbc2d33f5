"""The labs, run as the README's first command runs them: every lab under
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
LABS = 7
MIB = 1 << 20
PAGE = 4096


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
                    for n in range(1, LABS + 1)}

    def each(self, number):
        """(python, figures) of every interpreter the lab ran with."""
        entries = self.labs[number]["interpreters"]
        self.assertGreaterEqual(len(entries), 1)
        for entry in entries:
            with self.subTest(python=entry["python"]):
                yield entry["figures"]

    def test_reports_written(self):
        for n in range(1, LABS + 1):
            for ext in ("txt", "html", "json"):
                path = self.out / ("lab%d.%s" % (n, ext))
                self.assertGreater(path.stat().st_size, 500, path)
            text = (self.out / ("lab%d.txt" % n)).read_text()
            self.assertIn("Lab %d:" % n, text)
        self.assertEqual(self.overview.count("lab "), LABS * len(self.labs[1]["interpreters"]))

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

    def test_lab5_rss(self):
        for f in self.each(5):
            # The ints' arenas and the list's buffer (a chunk glibc mapped
            # on its own: the 1,056,084 slots of 8 bytes) are unmapped at
            # del, so RSS drops by their resident pages: all of the buffer
            # (every slot was written) and the arenas' pages but those of
            # pools pymalloc never used (untouched_when_full).  Pages the
            # step touches anew (the interpreter's, memtrace's own) are far
            # below 1 MiB, and nothing else is unmapped in the step.
            self.assertEqual(f["list_buffer_bytes"], 8 * 1_056_084)
            self.assertGreaterEqual(f["glibc_unmapped_at_del"], f["list_buffer_bytes"])
            freed = f["del_arena_bytes"] + f["list_buffer_bytes"]
            drop = f["rss_full"] - f["rss_after_del"]
            self.assertGreaterEqual(drop, freed - f["untouched_when_full"] - MIB)
            self.assertLessEqual(drop, freed + MIB)
            self.assertGreaterEqual(f["del_arena_bytes"], 29 * MIB)
            # The list took the arenas and the buffer on top of the start.
            self.assertGreaterEqual(f["rss_full"] - f["rss_before"], 29 * MIB + 8 * MIB)
            # gc.collect() unmaps nothing: RSS moves by a few pages at most.
            self.assertLessEqual(abs(f["rss_after_gc"] - f["rss_after_del"]), 64 * PAGE)

    def test_lab5_arena_at_exit(self):
        for f in self.each(5):
            # obmalloc.c keeps at most one wholly free arena (bpo-37257):
            # after del there is one, and at exit one of the arenas left
            # holds no object.
            self.assertEqual(f["empty_arena_bytes_after_del"], MIB)
            self.assertEqual(f["empty_arenas_at_exit"], 1)
            self.assertEqual(f["arenas_at_exit"],
                             f["empty_arenas_at_exit"] + f["arenas_with_objects_at_exit"])
        text = (self.out / "lab5.txt").read_text()
        self.assertNotIn("a few surviving objects keep a whole MiB alive", text)
        self.assertIn("bpo-37257", text)

    def test_lab6_sizes(self):
        for f in self.each(6):
            self.assertEqual(f["list_mem_allocs"], 1)
            self.assertEqual(f["tuple_mem_allocs"], 0)
            # [*range(1, 6)]: list_preallocate_exact rounds 5 up to 6 slots
            self.assertEqual(f["length"], 5)
            self.assertEqual(f["list_buffer_bytes"], 48)
            self.assertEqual((f["list_capacity"], f["slack_slots"], f["slack_bytes"]), (6, 1, 8))
            # derived from the headers and the slots, and what the lab printed
            self.assertEqual((f["getsizeof_list"], f["getsizeof_tuple"]), (104, 80))
            self.assertEqual((f["printed_list"], f["printed_tuple"]), (104, 80))

    def test_lab7_survivors(self):
        for f in self.each(7):
            self.assertEqual(f["c1_survivors"], 10_000)
            # 10,000 floats of 24 bytes survive: the objects in pymalloc's
            # pools are those of before the step and theirs, but for what
            # the interpreter itself keeps from the step (well below 64 KiB)
            kept = f["c1_objects_kept"] - f["c1_objects_before"]
            self.assertGreaterEqual(kept, 10_000 * 24)
            self.assertLessEqual(kept, 10_000 * 24 + 64 * 1024)
            # ... yet not one arena goes, and RSS falls only by the list's
            # buffer (8 MB of the 1,000,000 slots) and pages of it
            self.assertEqual(f["c1_arenas_kept"], f["c1_arenas_built"])
            self.assertGreaterEqual(f["c1_arenas_kept"], 30 * MIB)
            self.assertLessEqual(f["c1_rss_built"] - f["c1_rss_kept"], 8 * MIB + 2 * MIB)
            self.assertGreaterEqual(f["c1_pool_space_kept"], 25 * MIB)
            # dropping the survivors unmaps the arenas: RSS falls by at least
            # 29 of them, less pages never touched (one arena at most)
            self.assertLessEqual(f["c1_arenas_dropped"], f["c1_arenas_kept"] - 29 * MIB)
            self.assertGreaterEqual(f["c1_rss_kept"] - f["c1_rss_dropped"], 28 * MIB)

    def test_lab7_heap_top(self):
        for f in self.each(7):
            # 1,000 freed blocks of 65,569 bytes (64 KiB and the bytes
            # object's 33-byte header) coalesce below the keeper, which holds
            # the top: the bytes object made at lab7.py:21
            self.assertEqual(f["c2_top_holder"], "lab7.py:21")
            self.assertEqual(f["c2_top_holder_size"], 65_536 + 33)
            self.assertGreaterEqual(f["c2_free_below_top"], 1000 * (65_536 + 33))
            # RSS stays: freed chunks are not given back (a few pages move)
            self.assertLessEqual(abs(f["c2_rss_freed"] - f["c2_rss_built"]), MIB)
            self.assertEqual(f["c2_glibc_freed"], f["c2_glibc_built"])
            # malloc_trim(0) releases the free chunks' inner pages: all but at
            # most two pages per free chunk (one coalesced chunk here, and a
            # few small ones), while the brk heap keeps its size but the top
            # chunk (which trim may lower by at most its own size, < 1 MiB)
            self.assertEqual(f["c2_trim_returned"], 1)
            self.assertGreaterEqual(f["c2_rss_freed"] - f["c2_rss_trimmed"],
                                    f["c2_free_below_top"] - MIB)
            self.assertLessEqual(f["c2_brk_freed"] - f["c2_brk_trimmed"], MIB)
            self.assertLessEqual(f["c2_brk_resident_trimmed"], 2 * MIB)
            # dropping the keeper lets glibc lower the break: what it still
            # holds of the brk heap beyond where it was before case 2 is free
            # memory (below a chunk it caches, with 3.11.7), but for its top
            # pad (128 KiB) and a few chunks the interpreter made meanwhile
            held = f["c2_brk_released"] - f["c2_free_released"]
            self.assertLessEqual(held, f["c2_brk_before"] + 256 * 1024)
            self.assertLess(f["c2_brk_released"], f["c2_brk_trimmed"])


if __name__ == "__main__":
    unittest.main(argv=[sys.argv[0]] + sys.argv[1:])
