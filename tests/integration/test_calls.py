"""Every malloc-family call, and C++ new/delete, counted exactly."""

import unittest

from harness import TracerTestCase, parse_expect, prog


class EveryCall(TracerTestCase):
    """tests/progs/every_call.c: all the functions and their edge cases
    (realloc to 0 and from NULL, failures, free(NULL), a free in an atexit
    handler).  The program makes no other allocation, and nothing in libc
    allocates for it, so its own counts must be met exactly."""

    def test_counts_are_exact(self):
        run = self.run_traced_ok([prog("every_call")])
        expect = parse_expect(run.stdout)["every_call"]
        rep = self.report_ok(run.traces[0])
        self.assert_clean_end(rep)
        dom = rep["domains"]["malloc"]
        self.assert_counts(dom, expect)
        self.assert_live(dom, 600, 4, "the four blocks leaked on purpose")
        self.assertEqual(dom["unmatched_frees"], 0)
        self.assertEqual(rep["events"]["total"],
                         sum(expect[k] for k in ("allocs", "frees", "reallocs", "failed")))
        for other in ("pymem_raw", "pymem_mem", "pymem_obj"):
            self.assertEqual(rep["domains"][other]["allocs"], 0, other)

    def test_live_figures_match_valgrind(self):
        run = self.run_traced_ok([prog("every_call")])
        dom = self.report_ok(run.traces[0])["domains"]["malloc"]
        vg, vg_stdout = self.valgrind([prog("every_call")])
        # Under valgrind the program skips pvalloc (see every_call.c), so
        # totals are compared with what the program counted there.
        vg_expect = parse_expect(vg_stdout)["every_call"]
        self.assertEqual((vg.allocs, vg.frees, vg.bytes),
                         (vg_expect["allocs"] + vg_expect["reallocs"],
                          vg_expect["frees"] + vg_expect["reallocs"],
                          vg_expect["bytes"]),
                         "every_call's own counts disagree with valgrind")
        self.assert_matches_valgrind(dom, vg, totals=False)

    def test_process_header(self):
        run = self.run_traced_ok([prog("every_call")])
        rep = self.report_ok(run.traces[0])
        process = rep["process"]
        self.assertEqual(process["pid"], run.pid)
        self.assertEqual(process["argv"], [prog("every_call")])
        self.assertTrue(process["exe"].endswith("/every_call"), process["exe"])
        self.assertGreaterEqual(rep["trace"]["threads"], 1)


class Cxx(TracerTestCase):
    """tests/progs/cxx.cpp: new/delete, new[]/delete[], vector growth and
    std::string.  libstdc++ allocates on its own at start-up, so the
    program's counts are compared as differences between two runs."""

    def traced(self, rounds):
        run = self.run_traced_ok([prog("cxx"), str(rounds)])
        rep = self.report_ok(run.traces[0])
        self.assert_clean_end(rep)
        return rep["domains"]["malloc"], parse_expect(run.stdout)["cxx"]

    def test_counts_follow_the_program(self):
        dom_a, expect_a = self.traced(1)
        dom_b, expect_b = self.traced(4)
        self.assert_count_differences(dom_a, expect_a, dom_b, expect_b)
        self.assertEqual(dom_b["reallocs"], 0, "operator new never reallocs")
        self.assertEqual(dom_b["unmatched_frees"], 0)

    def test_matches_valgrind(self):
        dom, _ = self.traced(3)
        vg, _ = self.valgrind([prog("cxx"), "3"])
        self.assert_matches_valgrind(dom, vg)


if __name__ == "__main__":
    unittest.main()
