"""Threads: cross-thread frees and immediate address reuse account exactly.

glibc allocates for each new thread on its own (its TLS vector), so the
programs' own counts are compared as differences between runs that differ
only in the amount of work; valgrind covers the absolute figures."""

import unittest

from harness import STORM, TracerTestCase, parse_expect, prog


class Threads(TracerTestCase):

    def traced(self, producers, consumers, items):
        argv = [prog("threads"), str(producers), str(consumers), str(items)]
        run = self.run_traced_ok(argv)
        rep = self.report_ok(run.traces[0])
        self.assert_clean_end(rep)
        dom = rep["domains"]["malloc"]
        self.assertEqual(dom["unmatched_frees"], 0,
                         "a free was ordered before the malloc it frees")
        return rep, parse_expect(run.stdout)["threads"]

    def check_against_valgrind(self, producers, consumers, items):
        rep, _ = self.traced(producers, consumers, items)
        vg, _ = self.valgrind([prog("threads"), str(producers), str(consumers), str(items)])
        self.assert_matches_valgrind(rep["domains"]["malloc"], vg)
        # the main thread and every worker allocate or free
        self.assertEqual(rep["trace"]["threads"], 1 + producers + consumers)

    def test_many_producers_two_consumers(self):
        self.check_against_valgrind(4, 2, 20000)

    def test_one_producer_many_consumers(self):
        self.check_against_valgrind(1, 5, 30000)

    def test_many_producers_one_consumer(self):
        self.check_against_valgrind(6, 1, 5000)

    def test_counts_follow_the_program(self):
        rep_a, expect_a = self.traced(3, 3, 2000)
        rep_b, expect_b = self.traced(3, 3, 30000)
        self.assert_count_differences(rep_a["domains"]["malloc"], expect_a,
                                      rep_b["domains"]["malloc"], expect_b)
        self.assertEqual(rep_b["domains"]["malloc"]["live_bytes_at_exit"]
                         - rep_a["domains"]["malloc"]["live_bytes_at_exit"], 0,
                         "the leak does not depend on the number of items")


class SmallStack(TracerTestCase):
    """A thread with a PTHREAD_STACK_MIN stack is created as without the
    tracer (its TLS comes out of that stack), with and without native
    stacks, and its 7 allocations of 40 bytes are recorded."""

    def test_small_stack(self):
        for native in ("0", "1"):
            with self.subTest(native=native):
                run = self.run_traced_ok([prog("small_stack")], env={"MEMTRACE_NATIVE": native})
                self.assertEqual(run.stdout.strip(), "create=0")
                rep = self.report_ok(run.traces[0])
                # without native stacks all of malloc is one site; the
                # thread's pairs are its only temporaries either way
                mine = [(s["temporary_allocs"], s["temporary_bytes"]) for s in rep["sites"]
                        if s["domain"] == "malloc" and s["temporary_allocs"]]
                self.assertEqual(mine, [(7, 7 * 40)], rep["sites"])


class Storm(TracerTestCase):
    """bench/storm.c at full speed on every core: nothing may be lost, and
    the live heap at exit must not depend on how many calls were made."""

    def traced(self, threads, iterations):
        run = self.run_traced_ok([str(STORM), str(threads), str(iterations)])
        rep = self.report_ok(run.traces[0])
        self.assert_clean_end(rep)
        return rep

    def test_storm(self):
        if not STORM.exists():
            self.fail("%s is missing" % STORM)
        idle = self.traced(4, 0)["domains"]["malloc"]
        rep = self.traced(4, 300000)
        busy = rep["domains"]["malloc"]
        calls = 4 * 300000
        self.assertEqual(busy["allocs"] - idle["allocs"], calls)
        self.assertEqual(busy["frees"] - idle["frees"], calls)
        self.assertEqual(busy["unmatched_frees"], 0)
        self.assert_live(busy, idle["live_bytes_at_exit"], idle["live_blocks_at_exit"],
                         "the same program making no calls")


if __name__ == "__main__":
    unittest.main()
