"""The labs, run as the README's first command runs them: every lab under
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
from harness import CLI, INTERPRETERS, REPO, RSS_SLACK, TracerTestCase, python_of

RUN_LABS = REPO / "labs" / "run_labs.py"
MILLION = pyfacts.MILLION
CACHED_INTS = pyfacts.CACHED_INTS
LABS = 7
SEED_LABS = 6  # labs/seed/lab1.py .. lab6.py
MIB = 1 << 20
PAGE = 4096


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
                    for n in range(1, LABS + 1)}
        cls.seed = {n: json.loads((cls.out / "seed" / ("lab%d.json" % n)).read_text())
                    for n in range(1, SEED_LABS + 1)}

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
        for out, count in ((self.out, LABS), (self.out / "seed", SEED_LABS)):
            for n in range(1, count + 1):
                for ext in ("txt", "html", "json"):
                    path = out / ("lab%d.%s" % (n, ext))
                    self.assertGreater(path.stat().st_size, 500, path)
                text = (out / ("lab%d.txt" % n)).read_text()
                self.assertIn("Lab %d:" % n, text)
        lines = self.overview.splitlines()
        self.assertEqual(sum(l.startswith("lab ") for l in lines), LABS * len(INTERPRETERS))
        self.assertEqual(sum(l.startswith("seed lab ") for l in lines),
                         SEED_LABS * len(INTERPRETERS))
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

    def test_lab2_seed_constant(self):
        for py, f in self.each(2):
            if py.free_threaded:
                # interned strings are immortal there: the count is fixed
                self.assertEqual((f["seed_one"], f["seed_two"]), (2**32 - 1, 2**32 - 1))
                continue
            # the seed's 4, then 5: globals, co_consts, the parser's arena
            # and the call's argument; no string made by the binding line
            self.assertEqual((f["seed_one"], f["seed_two"]), (4, 5))
            self.assertEqual((f["seed_allocs"], f["seed_frees"]), (0, 0))
            held = [h.split(" (")[0] for h in f["seed_held_by"]]
            self.assertEqual(held, ["the module code's constants", "the module's globals",
                                    "the parser's arena"])
            # compile() frees its arena before exec: one reference less
            self.assertEqual(f["seed_compiled"], [3, 4])

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

    def test_lab5_rss(self):
        for py, f in self.each(5):
            # Every int and every slot of the list's buffer was written, so
            # their pages are resident when the list is complete: RSS grew by
            # at least their bytes, less pages of pools (or mimalloc pages)
            # that were resident and partly used before the step (< 1 MiB).
            self.assertEqual(f["list_buffer_bytes"], 8 * 1_056_084)
            made = f["int_objects"] * f["int_block"] + f["list_buffer_bytes"]
            self.assertGreaterEqual(f["rss_full"] - f["rss_before"], made - MIB)
            # gc.collect() frees no int: RSS moves by a few pages at most,
            # and the kernel's counters lag (RSS_SLACK)
            self.assertLessEqual(abs(f["rss_after_gc"] - f["rss_after_del"]),
                                 64 * PAGE + RSS_SLACK)
            drop = f["rss_full"] - f["rss_after_del"]
            if py.free_threaded:
                # mimalloc's, not glibc's: no chunk unmapped by glibc, and
                # RSS cannot fall by more than was freed
                self.assertEqual(f["glibc_unmapped_at_del"], 0)
                self.assertLessEqual(drop, made + MIB)
                continue
            # The ints' arenas and the list's buffer (a chunk glibc mapped
            # on its own: the 1,056,084 slots of 8 bytes) are unmapped at
            # del, so RSS drops by their resident pages: all of the buffer
            # (every slot was written) and the arenas' pages but those of
            # pools pymalloc never used (untouched_when_full).  Pages the
            # step touches anew (the interpreter's, memtrace's own) are far
            # below 1 MiB, and nothing else is unmapped in the step.
            self.assertGreaterEqual(f["glibc_unmapped_at_del"], f["list_buffer_bytes"])
            freed = f["del_arena_bytes"] + f["list_buffer_bytes"]
            self.assertGreaterEqual(drop, freed - f["untouched_when_full"] - MIB)
            self.assertLessEqual(drop, freed + MIB)
            self.assertGreaterEqual(f["del_arena_bytes"], 29 * MIB)
            # The list took the arenas and the buffer on top of the start.
            self.assertGreaterEqual(f["rss_full"] - f["rss_before"], 29 * MIB + 8 * MIB)

    def test_lab5_arena_at_exit(self):
        for py, f in self.each(5):
            if py.free_threaded:
                self.assertEqual((f["arenas_at_exit"], f["empty_arenas_at_exit"]), (0, 0))
                continue
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
        for py, f in self.each(6):
            self.assertEqual(f["list_mem_allocs"], 1)
            self.assertEqual(f["tuple_mem_allocs"], 0)
            # [*range(1, 6)]: list_preallocate_exact rounds 5 up to 6 slots;
            # a free-threaded list's array holds its capacity first
            self.assertEqual(f["length"], 5)
            self.assertEqual(f["list_buffer_bytes"], 48 + (8 if py.free_threaded else 0))
            # PyGC_Head, PyListObject and a tuple's PyObject_VAR_HEAD: no
            # pre-header but 16 more bytes of object header when free-threaded
            self.assertEqual((f["gc_head"], f["list_object"], f["tuple_head"]),
                             (0, 56, 40) if py.free_threaded else (16, 40, 24))
            self.assertEqual((f["list_capacity"], f["slack_slots"], f["slack_bytes"]), (6, 1, 8))
            # derived from the headers and the slots, and what the lab printed
            self.assertEqual((f["getsizeof_list"], f["getsizeof_tuple"]), (104, 80))
            self.assertEqual((f["printed_list"], f["printed_tuple"]), (104, 80))

    def test_lab7_mimalloc(self):
        for py, f in self.each(7):
            if not py.free_threaded:
                continue
            self.assertEqual(f["c1_survivors"], 10_000)
            # 990,000 floats of 40 bytes (a 32-byte header and the double)
            # leave the requested heap when the list goes
            self.assertGreaterEqual(f["requested_c1_built"] - f["requested_c1_kept"],
                                    990_000 * 40)
            # the 1,001 bytes objects are mimalloc's: glibc holds less than
            # 1 MiB while they are live, so malloc_trim(0) has under 1 MiB to
            # give back and RSS moves by less than that
            self.assertGreaterEqual(f["requested_c2_built"] - f["requested_c1_dropped"],
                                    1001 * (65_536 + 33))
            self.assertLess(f["glibc_c2_built"], MIB)
            self.assertLessEqual(abs(f["rss_c2_freed"] - f["rss_c2_trimmed"]), MIB)

    def test_lab7_survivors(self):
        for py, f in self.each(7):
            if py.free_threaded:
                continue
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
        for py, f in self.each(7):
            if py.free_threaded:
                continue
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
            # what the script printed, and the report says why (lab 2's holders)
            counts = [2**32 - 1] * 2 if py.free_threaded else [4, 5]
            self.assertEqual(f["printed"], counts)
            text = (self.out / "seed" / "lab2.txt").read_text()
            self.assertIn("_PyArena_Free(arena) only after run_mod returns", text)

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
