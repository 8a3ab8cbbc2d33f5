"""The traced program's behaviour and the tracer's own output: file names,
permissions, the exit message, and an unwritable output path."""

import os
import shutil
import stat
import subprocess
import unittest

from harness import REPO, TracerTestCase, prog

# Each program with arguments small enough to run quickly.
PROGRAMS = {
    "every_call": [prog("every_call")],
    "threads": [prog("threads"), "3", "2", "3000"],
    "fork": [prog("fork")],
    "exec": [prog("exec"), prog("exec_target")],
    "spawn": [prog("spawn"), prog("exec_target")],
    "exit_now": [prog("exit_now")],
    "cxx": [prog("cxx"), "2"],
}


def pythons():
    """Both CPythons DESIGN.md names: /usr/bin/python3 (libpython linked
    statically) and the python3 on PATH (pyenv, shared libpython), resolved
    to the real executable (pyenv's python3 is a shell script that execs)."""
    found = {}
    for name, exe in (("static", "/usr/bin/python3"), ("path", shutil.which("python3"))):
        if exe and os.path.exists(exe):
            real = subprocess.run([exe, "-c", "import sys; print(sys.executable)"],
                                  capture_output=True, text=True).stdout.strip()
            found.setdefault(real, name)
    return {"python_" + name: [exe, str(REPO / "bench" / "alloc_heavy.py"), "20000"]
            for exe, name in found.items()}


class Transparency(TracerTestCase):
    """A traced program prints the same and exits the same as untraced."""

    def test_programs_behave_the_same(self):
        for name, argv in {**PROGRAMS, **pythons()}.items():
            with self.subTest(program=name):
                plain = self.run_plain(argv)
                traced = self.run_traced(argv)
                self.assertEqual((traced.returncode, traced.stdout, traced.stderr),
                                 (plain.returncode, plain.stdout, plain.stderr))
                self.assertTrue(traced.traces, "no trace written")


class Messages(TracerTestCase):

    def test_exit_message_names_file_and_event_count(self):
        run = self.run_traced_ok([prog("every_call")], quiet=False, terminal=True)
        lines = run.stderr.splitlines()
        self.assertEqual(len(lines), 1, "expected one line on stderr:\n" + run.stderr)
        (trace,) = run.traces
        self.assertIn(trace.name, lines[0])
        events = self.report_ok(trace)["events"]["total"]
        self.assertRegex(lines[0], r"\b%d\b" % events)

    def test_quiet(self):
        run = self.run_traced_ok([prog("every_call")], quiet=True, terminal=True)
        self.assertEqual(run.stderr, "")

    def test_no_news_for_a_program_reading_stderr(self):
        """Where the trace went is said to a terminal only: a program that
        reads its child's stderr sees what the child wrote, nothing more."""
        run = self.run_traced_ok([prog("every_call")], quiet=False)
        self.assertEqual(run.stderr, "")

    def test_one_message_per_run(self):
        # the parent says it for both: its trace, and the run's two so far
        run = self.run_traced_ok([prog("fork")], quiet=False, traces=2, terminal=True)
        lines = run.stderr.splitlines()
        self.assertEqual(len(lines), 1, run.stderr)
        parent = run.traces[0].parent / ("%d.trace" % run.pid)
        self.assertEqual(lines[0], "memtrace: wrote %s (%d events); its run has 2 traces so far: "
                         "memtrace report %s" % (parent, self.report_ok(parent)["events"]["total"],
                                                 parent))

    def test_unwritable_output(self):
        argv = [prog("every_call")]
        plain = self.run_plain(argv)
        run = self.run_traced(argv, quiet=False,
                              env={"MEMTRACE_OUTPUT": "/nonexistent/dir/x.trace"})
        self.assertEqual((run.returncode, run.stdout), (plain.returncode, plain.stdout))
        lines = run.stderr.splitlines()
        self.assertEqual(len(lines), 1, "expected one line on stderr:\n" + run.stderr)
        self.assertIn("memtrace", lines[0].lower())
        self.assertEqual(run.traces, [])


class FullDisk(TracerTestCase):
    """A trace that cannot be written goes again: a full file system leaves
    no empty trace behind, and says so once."""

    def test_full_disk(self):
        disk = self.tmp / "disk"
        disk.mkdir()
        if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4k", "tmpfs", str(disk)],
                          capture_output=True).returncode:
            self.skipTest("cannot mount a small tmpfs here")
        self.addCleanup(subprocess.run, ["umount", str(disk)])
        (disk / "filler").write_bytes(b"x" * 4096)
        argv = ["bash", "-c", "%s; %s" % (prog("every_call"), prog("every_call"))]
        plain = self.run_plain(argv)
        run = self.run_traced(argv, quiet=False, env={"MEMTRACE_OUTPUT": str(disk / "t.trace")})
        self.assertEqual((run.returncode, run.stdout), (plain.returncode, plain.stdout))
        self.assertEqual(run.stderr.splitlines(),
                         ["memtrace: cannot write %s (No space left on device); tracing is "
                          "off, the program runs on" % (disk / "t.trace")])
        self.assertEqual(sorted(p.name for p in disk.iterdir()), ["filler"])


class Files(TracerTestCase):

    def test_default_name_in_working_directory(self):
        cwd = self.tmp / "cwd"
        cwd.mkdir()
        run = self.run_traced([prog("every_call")], output=None, cwd=cwd)
        self.assertEqual(run.returncode, 0)
        self.assertEqual(sorted(p.name for p in cwd.iterdir()),
                         ["memtrace.%d.trace" % run.pid])

    def test_pid_in_name_and_private_mode(self):
        run = self.run_traced_ok([prog("every_call")], output="t.%p.trace")
        (trace,) = run.traces
        self.assertEqual(trace.name, "t.%d.trace" % run.pid)
        self.assertEqual(stat.S_IMODE(trace.stat().st_mode), 0o600)

    def test_existing_file_and_symlink_left_alone(self):
        # The tracer must neither truncate a file that is in the way nor
        # write through a symlink planted at the trace's path.
        for kind in ("file", "symlink"):
            with self.subTest(kind=kind):
                target = self.tmp / ("target-" + kind)
                target.write_bytes(b"precious\n")
                path = self.tmp / ("in-the-way-" + kind + ".trace")
                if kind == "file":
                    path.write_bytes(b"precious\n")
                else:
                    os.symlink(target, path)
                plain = self.run_plain([prog("every_call")])
                run = self.run_traced([prog("every_call")], output=str(path))
                self.assertEqual((run.returncode, run.stdout), (plain.returncode, plain.stdout))
                self.assertEqual(target.read_bytes(), b"precious\n")
                self.assertEqual(path.read_bytes(), b"precious\n")


if __name__ == "__main__":
    unittest.main()
