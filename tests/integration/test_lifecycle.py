"""Process life cycle: fork, exec (and a failed exec), posix_spawn and
vfork, _exit and SIGKILL."""

import signal
import unittest

from harness import REPORT_OK, TracerTestCase, parse_expect, prog, run_valgrind


class Fork(TracerTestCase):
    """tests/progs/fork.c: parent and child each get their own trace.  The
    child's trace starts at the fork, valgrind's child heap includes what
    the child inherited."""

    def test_fork(self):
        run = self.run_traced_ok([prog("fork")], traces=2)
        expect = parse_expect(run.stdout)
        reps = {rep["process"]["pid"]: rep for rep in self.reports(run)}
        self.assertIn(run.pid, reps, "no trace carries the parent's pid")
        parent = reps.pop(run.pid)
        (child,) = reps.values()
        self.assertEqual(child["process"]["ppid"], run.pid)

        self.assert_clean_end(parent)
        self.assert_clean_end(child)
        self.assert_counts(parent["domains"]["malloc"], expect["parent"])
        child_dom = child["domains"]["malloc"]
        self.assert_counts(child_dom, expect["child"])
        self.assertEqual(child_dom["unmatched_frees"], expect["inherited"]["unmatched_frees"],
                         "the child's free of an inherited block")

        vg = run_valgrind([prog("fork")], self.tmp)
        self.assertEqual(len(vg.summaries), 2, vg.summaries)
        vg_parent = vg.summaries.pop(vg.pid)
        (vg_child,) = vg.summaries.values()
        self.assert_matches_valgrind(parent["domains"]["malloc"], vg_parent)
        inherited = expect["inherited"]
        self.assertEqual(
            (child_dom["live_bytes_at_exit"] + inherited["live_bytes"],
             child_dom["live_blocks_at_exit"] + inherited["live_blocks"]),
            (vg_child.live_bytes, vg_child.live_blocks),
            "child's live figures plus what it inherited differ from valgrind's")


class Forks(TracerTestCase):
    """tests/progs/forks.c forks 40 times, alone.  Right after each fork()
    returns, and after 100 malloc/free pairs more, the parent and the child
    each count one thread, their own: the tracer's writer stops before a
    fork and starts again only later, from the events.  Between the forks
    the parent allocates in patterns that start it again in each way (half
    a ring, the time, not at all, or at the next fork); nothing it or any
    child allocated is missing from their traces."""

    FORKS = 40

    def test_one_thread_after_fork(self):
        run = self.run_traced_ok([prog("forks"), str(self.FORKS)], traces=self.FORKS + 1)
        self.assertIn("threads parent_most=1 children_with_more=0\n", run.stdout)
        expect = parse_expect(run.stdout)
        reps = {rep["process"]["pid"]: rep for rep in self.reports(run)}
        parent = reps.pop(run.pid)
        self.assert_clean_end(parent)
        self.assert_counts(parent["domains"]["malloc"], expect["parent"])
        self.assertEqual(parent["trace"]["threads"], 1)
        # child i makes i + 101 allocations
        children = sorted(reps.values(), key=lambda r: r["domains"]["malloc"]["allocs"])
        self.assertEqual(len(children), self.FORKS)
        for i, child in enumerate(children):
            with self.subTest(child=i):
                self.assertEqual(child["process"]["ppid"], run.pid)
                self.assert_clean_end(child, end_reason="_exit" if i % 2 else "exit")
                self.assert_counts(child["domains"]["malloc"], expect["child%d" % i])


class Exec(TracerTestCase):
    """tests/progs/exec.c execs exec_target: the first image's trace ends
    with "exec", the new image is traced into a file of its own."""

    def test_exec(self):
        run = self.run_traced_ok([prog("exec"), prog("exec_target")], traces=2)
        expect = parse_expect(run.stdout)
        first, second = self.reports(run)
        if first["trace"]["end_reason"] != "exec":  # same mtime resolution
            first, second = second, first

        self.assert_clean_end(first, end_reason="exec")
        self.assert_clean_end(second)
        self.assertEqual(first["process"]["pid"], run.pid)
        self.assertEqual(second["process"]["pid"], run.pid, "exec keeps the pid")
        self.assertEqual(second["process"]["argv"], [prog("exec_target"), "from-exec"])
        self.assert_counts(first["domains"]["malloc"], expect["exec"])
        self.assert_counts(second["domains"]["malloc"], expect["exec_target"])

        # valgrind reports nothing for an image that execs: exec.c can stop
        # where it would exec instead
        vg, _ = self.valgrind([prog("exec"), "-"])
        self.assert_matches_valgrind(first["domains"]["malloc"], vg)
        vg, _ = self.valgrind([prog("exec_target"), "from-exec"])
        self.assert_matches_valgrind(second["domains"]["malloc"], vg)

    def test_failed_exec_keeps_tracing(self):
        argv = [prog("exec"), str(self.tmp / "no-such-program")]
        run = self.run_traced_ok(argv)
        self.assertIn("exec failed", run.stdout)
        rep = self.report_ok(run.traces[0])
        self.assert_clean_end(rep, end_reason="exit")
        self.assert_counts(rep["domains"]["malloc"], parse_expect(run.stdout)["exec-failed"])
        vg, _ = self.valgrind(argv)
        self.assert_matches_valgrind(rep["domains"]["malloc"], vg)


class Spawn(TracerTestCase):
    """tests/progs/spawn.c starts exec_target with posix_spawn and with
    vfork + execv: a vfork child borrows its parent's memory, tracer state
    included, until its exec.  The parent's trace must come out as if the
    children never ran, and each child's image gets a trace of its own."""

    def test_posix_spawn_and_vfork(self):
        argv = [prog("spawn"), prog("exec_target")]
        run = self.run_traced_ok(argv, traces=3)
        expect = parse_expect(run.stdout)
        reps = self.reports(run)
        parents = [r for r in reps if r["process"]["pid"] == run.pid]
        children = [r for r in reps if r["process"]["pid"] != run.pid]
        self.assertEqual((len(parents), len(children)), (1, 2),
                         [(r["process"]["pid"], r["process"]["exe"]) for r in reps])

        parent = parents[0]
        self.assert_clean_end(parent)
        self.assert_counts(parent["domains"]["malloc"], expect["spawn"])
        self.assertEqual(parent["domains"]["malloc"]["unmatched_frees"], 0)
        for child in children:
            self.assert_clean_end(child)
            self.assertEqual(child["process"]["argv"], [prog("exec_target"), "from-exec"])
            self.assert_counts(child["domains"]["malloc"], expect["exec_target"])

        vg, _ = self.valgrind(argv)
        self.assert_matches_valgrind(parent["domains"]["malloc"], vg)


class ExitNow(TracerTestCase):

    def test_underscore_exit(self):
        run = self.run_traced_ok([prog("exit_now")], expect_rc=7)
        rep = self.report_ok(run.traces[0])
        self.assert_clean_end(rep, end_reason="_exit")
        dom = rep["domains"]["malloc"]
        self.assert_counts(dom, parse_expect(run.stdout)["exit_now"])
        vg, _ = self.valgrind([prog("exit_now")], expect_rc=7)
        self.assert_matches_valgrind(dom, vg)


class Killed(TracerTestCase):
    """tests/progs/killed.c allocates N blocks, sleeps 0.5 s (the writer
    flushes at least every 100 ms) and SIGKILLs itself: the trace has no
    footer but holds every one of the N blocks."""

    N = 300000

    def test_sigkill(self):
        run = self.run_traced_ok([prog("killed"), str(self.N)], expect_rc=-signal.SIGKILL)
        expect = parse_expect(run.stdout)["killed"]
        rep = self.report_ok(run.traces[0], expect_rc=REPORT_OK)
        self.assertFalse(rep["trace"]["complete"])
        self.assertIsNone(rep["events"]["lost"], "without a footer, lost events are unknown")
        dom = rep["domains"]["malloc"]
        self.assertEqual(dom["allocs"], self.N)
        self.assert_live(dom, expect["live_bytes"], self.N,
                         "the blocks allocated before the sleep")


if __name__ == "__main__":
    unittest.main()
