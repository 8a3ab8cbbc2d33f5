"""What the OS sees: the mmap domain (tests/progs/mappings.c, Python's mmap
module), samples of RSS and of glibc's heap at marks (tests/progs/trim.c),
MEMTRACE_RSS_MS, and that the tracer leaves glibc's decisions to the
program (tests/progs/glibc_view.c).

Each figure is either exact (the program's own count) or bounded, with the
reason for the bound next to it.
"""

import os
import sys
import unittest
from pathlib import Path

from harness import PYTHONS, RSS_SLACK, TracerTestCase, parse_expect, prog, python_of

PAGE = os.sysconf("SC_PAGESIZE")
MIB = 1 << 20
BLOCK = 100_000
CHUNK = (BLOCK + 8 + 15) // 16 * 16  # glibc's chunk for a 100,000-byte request

MMAP_SCRIPT = """\
import mmap, os, sys
path = sys.argv[1]
with open(path, "wb") as f:
    f.write(b"y" * (3 * 4096 + 100))
with open(path, "r+b") as f:
    kept = mmap.mmap(f.fileno(), 0)                # 4 pages of the file, live at exit
scratch = mmap.mmap(-1, 10 * 4096)                 # anonymous, 10 pages
scratch[:5] = b"hello"
scratch.close()
objects = [str(i) for i in range(300_000)]         # pymalloc arenas, none of them mmap's
del objects
print(kept[:2].decode(), len(kept), flush=True)
os._exit(0)                                        # no finalization: kept stays mapped
"""


def mark_memory(rep):
    """{label: the sample at the mark} of a report."""
    return {m["label"]: m["memory"]["sample"] for m in rep["marks"] if m["memory"]}


class MmapDomain(TracerTestCase):

    def test_c_program_exact(self):
        argv = [prog("mappings")]
        plain = self.run_plain(argv)
        self.assertEqual(plain.returncode, 0, plain.stderr)
        run = self.run_traced_ok(argv)
        # every result and errno as without the tracer
        self.assertEqual(run.stdout, plain.stdout)
        rep = self.report_ok(run.traces[0])
        self.assert_clean_end(rep)
        expect = parse_expect(run.stdout)
        dom, want = rep["domains"]["mmap"], expect["mmap"]
        self.assertEqual(
            (dom["allocs"], dom["frees"], dom["reallocs"], dom["failed"],
             dom["bytes_allocated"], dom["live_bytes_at_exit"], dom["live_blocks_at_exit"],
             dom["peak_bytes"], dom["unmatched_frees"], dom["inconsistent"]),
            (want["allocs"], want["frees"], want["reallocs"], want["failed"], want["bytes"],
             want["live_bytes"], want["live_blocks"], want["peak"], 0, 0))
        maps = rep["mappings"]
        self.assertEqual(maps["file_bytes_at_exit"], want["file_bytes"])
        self.assertEqual(maps["anonymous_bytes_at_exit"], want["live_bytes"] - want["file_bytes"])
        self.assertEqual(sum(m["bytes"] for m in maps["largest_at_exit"]), want["live_bytes"])
        # the 1 MiB mallocs glibc maps on its own are malloc blocks only
        self.assert_counts(rep["domains"]["malloc"], expect["mappings"])

    def test_python_mapping_seen(self):
        for label, python in PYTHONS.items():
            with self.subTest(python=label):
                data = self.tmp / ("%s.dat" % label)
                script = self.tmp / "maps.py"
                script.write_text(MMAP_SCRIPT)
                run = self.run_traced_ok([python, str(script), str(data)])
                self.assertEqual(run.stdout, "yy 12388\n")
                rep = self.report_ok(run.traces[0])
                dom = rep["domains"]["mmap"]
                # the script's own: a file mapping of 4 pages (12,388 bytes
                # rounded up) and an anonymous one of 10; arenas (and, on
                # 3.13t, mimalloc's reservations) are not the script's
                self.assertEqual((dom["allocs"], dom["frees"], dom["failed"]), (2, 1, 0))
                self.assertEqual(dom["bytes_allocated"], 14 * PAGE)
                self.assertEqual((dom["live_bytes_at_exit"], dom["live_blocks_at_exit"]),
                                 (4 * PAGE, 1))
                self.assertEqual(rep["mappings"]["file_bytes_at_exit"], 4 * PAGE)
                if python_of(python).pymalloc:
                    self.assertGreater(rep["arenas"]["allocated"], 5)
                where = rep["mappings"]["largest_at_exit"][0]["location"]
                self.assertEqual((Path(where["file"]).name, where["line"]), ("maps.py", 6))


class Samples(TracerTestCase):

    def trim_report(self, env=None):
        run = self.run_traced_ok([prog("trim")], env=env)
        rep = self.report_ok(run.traces[0])
        self.assert_clean_end(rep)
        return rep

    def test_trim_marks(self):
        rep = self.trim_report()
        at = mark_memory(rep)
        tops = {m["label"]: m["memory"]["heap_top"] for m in rep["marks"] if m["memory"]}
        start, full, freed = at["start"], at["allocated"], at["freed all but the last"]
        trimmed, last = at["trimmed"], at["freed the last"]

        def rss(s):
            # the program's: memtrace's own resident pages are in RSS too
            return s["rss"] - s["memtrace_resident"]

        # Each mark samples the state after the previous step.  glibc's
        # figures are exact: the program makes no other malloc between its
        # marks, and the tracer none in glibc's heap.
        self.assertEqual(full["requested"], 1000 * BLOCK)
        self.assertEqual(full["glibc_in_use"] - start["glibc_in_use"], 1000 * CHUNK)
        # The blocks are written whole: RSS grows by their pages, at least
        # their bytes, at most their chunks and one page at each end, and
        # the counters' lag (RSS_SLACK)
        grown = rss(full) - rss(start)
        self.assertGreaterEqual(grown, 1000 * BLOCK - PAGE - RSS_SLACK)
        self.assertLessEqual(grown, 1000 * CHUNK + 2 * PAGE + RSS_SLACK)
        self.assertGreaterEqual(full["brk_heap"], 1000 * CHUNK)

        # free() keeps the 999 chunks: they coalesce into one free chunk
        # below the last block, glibc's heap keeps its size and RSS its
        # pages (but for the counters' lag)
        self.assertEqual(freed["glibc_in_use"], start["glibc_in_use"] + CHUNK)
        self.assertEqual(freed["glibc_free"] - freed["glibc_top"], 999 * CHUNK)
        self.assertEqual(freed["glibc_heaps"], full["glibc_heaps"])
        self.assertLessEqual(abs(rss(freed) - rss(full)), RSS_SLACK)
        holder = tops["freed all but the last"]["held_by"]
        self.assertEqual((holder["size"], holder["file"], holder["domain"]),
                         (BLOCK, "<native>", "malloc"))
        self.assertEqual(tops["freed all but the last"]["gap"], 0)
        self.assertEqual(tops["freed all but the last"]["free_below_top"], 999 * CHUNK)

        # malloc_trim(0) gives the free chunk's pages back but its first
        # (the chunk's header and bin links) and last (shared with the last
        # block): RSS falls by at least its size less two pages, at most by
        # that and the top chunk it also trims; the heap keeps its size but
        # for that top chunk
        fell = rss(freed) - rss(trimmed)
        self.assertGreaterEqual(fell, 999 * CHUNK - 2 * PAGE - RSS_SLACK)
        self.assertLessEqual(fell, 999 * CHUNK + freed["glibc_top"] + RSS_SLACK)
        self.assertEqual(trimmed["glibc_free"] - trimmed["glibc_top"], 999 * CHUNK)
        self.assertLessEqual(freed["glibc_heaps"] - trimmed["glibc_heaps"], freed["glibc_top"])
        self.assertLessEqual(trimmed["brk_resident"],
                             start["brk_resident"] + CHUNK + 2 * PAGE + freed["glibc_top"])

        # freeing the last block joins everything to the top chunk, which
        # glibc trims back to the size it had at the start
        self.assertEqual(last["glibc_heaps"], start["glibc_heaps"])
        self.assertEqual(last["brk_heap"], start["brk_heap"])
        self.assertEqual(last["glibc_in_use"], start["glibc_in_use"])

        # the report's parts add up to RSS, at the marks and at exit
        for mem in [m["memory"] for m in rep["marks"] if m["memory"]] + [rep["memory"]["exit"]]:
            parts = [p["bytes"] for p in mem["parts"]]
            self.assertNotIn(None, parts)
            self.assertEqual(mem["requested"] + sum(parts), mem["rss"])

    def test_samples_over_time(self):
        rep = self.trim_report()
        mem = rep["memory"]
        self.assertTrue(mem["sampled"])
        self.assertEqual((mem["interval_ms"], mem["malloc"]), (10, "glibc"))
        samples = rep["timeline"]["samples"]
        times = [s["time_us"] for s in samples]
        self.assertEqual(times, sorted(times))
        self.assertEqual(samples[-1]["time_us"], mem["exit"]["time_us"])
        self.assertEqual(max(s["rss"] for s in samples), mem["peak"]["rss"])
        # the peak: 100 MB written and not yet given back
        self.assertGreaterEqual(mem["peak"]["rss"], 1000 * BLOCK)

    def test_rss_ms_off(self):
        rep = self.trim_report(env={"MEMTRACE_RSS_MS": "0"})
        self.assertFalse(rep["memory"]["sampled"])
        self.assertEqual(rep["memory"]["interval_ms"], 0)
        self.assertEqual(rep["timeline"]["samples"], [])
        self.assertEqual([m["memory"] for m in rep["marks"]], [None] * 5)

    def test_rss_ms_bad_value(self):
        run = self.run_traced_ok([prog("trim")], quiet=False, env={"MEMTRACE_RSS_MS": "often"})
        self.assertIn('ignoring MEMTRACE_RSS_MS="often"', run.stderr)
        rep = self.report_ok(run.traces[0])
        self.assertEqual(rep["memory"]["interval_ms"], 10)
        self.assertTrue(rep["memory"]["sampled"])

    def test_threads_sampled(self):
        run = self.run_traced_ok([prog("threads"), "2", "2", "20000"])
        rep = self.report_ok(run.traces[0])
        self.assert_clean_end(rep)
        self.assertTrue(rep["memory"]["sampled"])
        self.assertIsNotNone(rep["memory"]["exit"]["rss"])

    def test_text_and_html(self):
        run = self.run_traced_ok([prog("trim")])
        text = self.run_plain([str(Path(os.environ.get("MEMTRACE_CLI", "build/memtrace"))),
                               "report", str(run.traces[0])]).stdout
        self.assertIn("memory the OS sees", text)
        self.assertIn("why RSS is higher than the requested heap, at exit", text)
        self.assertIn("RSS peak", text)


class GlibcUntouched(TracerTestCase):

    def test_glibc_decides_as_without_the_tracer(self):
        argv = [prog("glibc_view")]
        plain = self.run_plain(argv)
        run = self.run_traced_ok(argv)
        self.assertIn("first 200 KiB block: mapped", plain.stdout)
        self.assertEqual(run.stdout, plain.stdout)


if __name__ == "__main__":
    unittest.main(argv=[sys.argv[0]] + sys.argv[1:])
