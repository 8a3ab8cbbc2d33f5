"""Runs: a command is a tree of processes (a shim, a shell, make), and
`memtrace run` / `memtrace report` lead with the one that did the work.

The work is known.py, whose marked steps make exactly the same
allocations wherever it runs: "build" keeps 99,999 ints in a list, "drop"
frees them.  Its figures when run through a chain of processes must equal
those of the interpreter run directly on it."""

import json
import os
import shutil
import stat
import subprocess
import textwrap
import unittest
from pathlib import Path

from harness import CLI, LIB, PYTHONS, REPO, TracerTestCase, clean_env, prog, run_capturing

KNOWN = """\
import sys
sys.path.insert(0, sys.argv[1])
from memtrace import mark
mark("build")
x = [i * 1000 for i in range(100000)]
mark("drop")
del x
mark("end")
"""
KNOWN_LINE = 5   # the comprehension
KEPT = 99_999    # ints it keeps (0 * 1000 is a cached small int)

# A pyenv-like shim: helper processes first, then env, then the interpreter.
SHIM = """\
#!/bin/bash
set -e
here=$(dirname "$0")
name=$(basename "$0" .sh)
version=$(cat "$here/version")
real=$(readlink -f "$0")
[ "$name" = shim ] && [ -n "$version" ] && [ -n "$real" ]
exec env {python} "$@"
"""

WRAPPER = """\
#!/bin/sh
echo start
python3 known.py {pydir}
echo done
exit 3
"""

MAKEFILE = """\
all: one two three
one:
\techo one > one.txt
two: one
\tcat one.txt
three:
\tpython3 known.py {pydir}
"""

PYDIR = str(REPO / "python")


def memtrace_lines(stderr):
    return [line for line in stderr.splitlines() if line.startswith("memtrace")]


def exe_name(proc):
    return os.path.basename(proc["exe"] or "?")


@unittest.skipUnless(PYTHONS, "no CPython found")
class RunCase(TracerTestCase):

    def setUp(self):
        super().setUp()
        self.python = next(iter(PYTHONS.values()))
        self.work = self.tmp / "work"
        self.work.mkdir()
        (self.work / "known.py").write_text(KNOWN)
        # python3 on PATH is the interpreter itself, so that chains have
        # the shape the test gives them
        self.bin = self.tmp / "bin"
        self.bin.mkdir()
        (self.bin / "python3").symlink_to(self.python)
        self.path = "%s:%s" % (self.bin, os.environ.get("PATH", "/usr/bin:/bin"))

    def script(self, name, text):
        path = self.work / name
        path.write_text(text)
        path.chmod(path.stat().st_mode | stat.S_IXUSR)
        return path

    def cli(self, *args, env=None, cwd=None):
        return subprocess.run([str(CLI), *map(str, args)], capture_output=True, text=True,
                              timeout=300, cwd=cwd or self.work,
                              env=clean_env(PATH=self.path, **(env or {})))

    def preloaded(self, argv, env=None, cwd=None, terminal=False):
        """argv under a bare LD_PRELOAD; with terminal, stderr is a terminal
        (where the traces went is said to one only)."""
        env = clean_env(PATH=self.path, LD_PRELOAD=str(LIB), **(env or {}))
        rc, stdout, stderr, _ = run_capturing(argv, env, cwd or self.work, terminal, 300)
        return subprocess.CompletedProcess(argv, rc, stdout, stderr)

    def plain(self, argv, cwd=None):
        return subprocess.run(list(map(str, argv)), capture_output=True, text=True,
                              timeout=300, cwd=cwd or self.work, env=clean_env(PATH=self.path))

    def run_report(self, arg, *options):
        proc = self.cli("report", "--format", "json", *options, arg)
        self.assertEqual(proc.returncode, 0, proc.stderr)
        return json.loads(proc.stdout)

    # -- the oracle

    def script_figures(self, rep):
        """The steps' PyObject figures and the comprehension's site."""
        steps = {m["label"]: m["by_domain"]["pymem_obj"] for m in rep["marks"]}
        # the line's sites: the comprehension's, and on 3.11 the <module>
        # frame's own few objects (the function, the range and its iterator)
        line = [(s["allocs"], s["bytes"]) for s in rep["sites"]
                if s["file"].endswith("known.py") and s["line"] == KNOWN_LINE
                and s["domain"] == "pymem_obj"]
        site = [max(line)] if line and max(line)[0] >= KEPT else []
        return {"build": steps["build"], "drop": steps["drop"], "site": site}

    def direct(self, python=None):
        """known.py's figures with the interpreter traced on its own."""
        out = self.tmp / "direct"
        out.mkdir(exist_ok=True)
        proc = self.preloaded([python or self.python, "known.py", PYDIR],
                              env={"MEMTRACE_OUTPUT": str(out / "d.%p.trace"),
                                   "MEMTRACE_QUIET": "1"})
        self.assertEqual(proc.returncode, 0, proc.stderr)
        (trace,) = out.glob("d.*.trace")
        figures = self.script_figures(self.report_ok(trace))
        trace.unlink()
        # what the script does, whatever the interpreter: the list's ints
        # are made in "build" and freed, all of them, in "drop"
        self.assertEqual(figures["drop"]["frees"], KEPT)
        self.assertEqual(figures["drop"]["net_bytes"], -figures["build"]["net_bytes"])
        self.assertEqual(len(figures["site"]), 1)
        return figures

    def assert_leads_with_script(self, run, reason, python=None):
        """The run's report leads with the interpreter, whose figures are
        known.py's; returns the lead's process node."""
        nodes = {p["trace_id"]: p for p in run["run"]["processes"]}
        lead = nodes[run["run"]["lead"]]
        self.assertEqual(run["run"]["lead_reason"], reason)
        self.assertEqual(lead["exe"], os.path.realpath(python or self.python))
        self.assertEqual(lead["argv"][-2:], ["known.py", PYDIR])
        (rep,) = run["reports"]
        self.assertEqual(rep["trace_file"], lead["trace_file"])
        self.assertEqual(self.script_figures(rep), self.direct(python))
        return lead

    def tree(self, run):
        """{trace id: node} and the top process's exec chain, as exe names."""
        nodes = {p["trace_id"]: p for p in run["run"]["processes"]}
        (first,) = [p for p in nodes.values() if p["top"] and not p["exec_predecessor"]]
        chain = [first]
        while chain[-1]["exec_successor"]:
            chain.append(nodes[chain[-1]["exec_successor"]])
        return nodes, [exe_name(p) for p in chain]


class PyenvLikeChain(RunCase):
    """A bash shim runs four helpers (each a fork of bash that execs the
    helper), then execs env, which execs the interpreter: 11 traces."""

    def shim(self, python=None):
        (self.work / "version").write_text("3.11\n")
        return self.script("shim.sh", SHIM.format(python=python or self.python))

    def check_tree(self, run, python=None):
        nodes, chain = self.tree(run)
        self.assertEqual(run["run"]["traces"], 11)
        self.assertEqual(chain, ["bash", "env",
                                 os.path.basename(os.path.realpath(python or self.python))])
        top = nodes[run["run"]["processes"][0]["trace_id"]]
        helpers = [nodes[c] for c in top["children"]]
        self.assertEqual([exe_name(h) for h in helpers], ["bash"] * 4)
        self.assertEqual(sorted(exe_name(nodes[h["exec_successor"]]) for h in helpers),
                         ["basename", "cat", "dirname", "readlink"])
        for h in helpers:
            self.assertEqual((h["parent"], h["ended"]), (top["trace_id"], "exec"))
            after = nodes[h["exec_successor"]]
            self.assertEqual((after["parent"], after["exec_predecessor"]),
                             (top["trace_id"], h["trace_id"]))

    def test_memtrace_run(self):
        # on every interpreter: 3.13t's threads run in parallel, each with
        # the tracer's state of its own
        for label, python in PYTHONS.items():
            with self.subTest(python=label):
                shim = self.shim(python)
                trace = self.tmp / ("chain.%s.trace" % label.replace(" ", "_"))
                proc = self.cli("run", "-o", trace, "--", shim, "known.py", PYDIR)
                self.assertEqual(proc.returncode, 0, proc.stderr)
                self.assertEqual(memtrace_lines(proc.stderr),
                                 ["memtrace: run %s: 11 processes traced" % trace])
                first = proc.stdout.splitlines()[:2]
                self.assertEqual(first[0], "memtrace report: run %s, 11 traces" % trace)
                self.assertRegex(first[1], r"^leading with python3[.\d]*t? \(pid \d+, .*\): "
                                           r"the last program the command ran$")
                self.assertIn("the rest of the run, by executable", proc.stdout)
                run = self.run_report(trace)
                self.check_tree(run, python)
                self.assert_leads_with_script(run, "last_program", python)

    def test_bare_preload(self):
        shim = self.shim()
        proc = self.preloaded([shim, "known.py", PYDIR],
                              env={"MEMTRACE_OUTPUT": str(self.tmp / "bare.%p.trace")},
                              terminal=True)
        self.assertEqual(proc.returncode, 0, proc.stderr)
        (line,) = memtrace_lines(proc.stderr)
        # the run's first trace: bare.PID.trace; the others bare.PID.PID2[.N].trace
        (first,) = [p for p in self.tmp.glob("bare.*.trace") if p.name.count(".") == 2]
        run = self.run_report(first)
        self.check_tree(run)
        lead = self.assert_leads_with_script(run, "last_program")
        # the wrote line counts what the report counts (arena records
        # included on neither side)
        events = self.report_ok(lead["trace_file"])["events"]["total"]
        self.assertEqual(line, "memtrace: wrote %s (%d events); its run has 11 traces so far: "
                               "memtrace report %s" % (lead["trace_file"], events, first))

    def test_one_error_line_and_no_files(self):
        shim = self.shim()
        proc = self.preloaded([shim, "known.py", PYDIR],
                              env={"MEMTRACE_OUTPUT": "/nonexistent/dir/x.trace"})
        self.assertEqual(proc.returncode, 0)
        self.assertEqual(memtrace_lines(proc.stderr),
                         ["memtrace: cannot create /nonexistent/dir/x.trace (No such file or "
                          "directory); tracing is off, the program runs on"])
        proc = self.cli("run", "-o", "/nonexistent/dir/x.trace", "--", shim, "known.py", PYDIR)
        self.assertEqual(proc.returncode, 0)
        self.assertEqual(memtrace_lines(proc.stderr),
                         ["memtrace: cannot create /nonexistent/dir/x.trace (No such file or "
                          "directory); tracing is off, the program runs on"])

    def test_bad_setting_once_per_run(self):
        shim = self.shim()
        proc = self.preloaded([shim, "known.py", PYDIR],
                              env={"MEMTRACE_OUTPUT": str(self.tmp / "s.%p.trace"),
                                   "MEMTRACE_FLUSH_MS": "often"})
        self.assertEqual(proc.returncode, 0, proc.stderr)
        self.assertEqual(memtrace_lines(proc.stderr),
                         ['memtrace: ignoring MEMTRACE_FLUSH_MS="often": expected a whole '
                          'number from 1 to 60000; using 100'])
        self.assertEqual(len(list(self.tmp.glob("s.*.trace"))), 11)


def pyenv_shim():
    """pyenv's python3 shim (a script that execs pyenv) if PATH has one;
    under pyenv, the interpreter's own directory comes first in PATH."""
    for d in os.environ.get("PATH", "").split(os.pathsep):
        try:
            with open(os.path.join(d, "python3"), "rb") as f:
                text = f.read(4096)
        except OSError:
            continue
        if text.startswith(b"#!") and b"pyenv" in text:
            return os.path.join(d, "python3")
    return None


# the interpreter behind python3 on PATH, as the harness found it
PATH_PYTHON = next((exe for label, exe in PYTHONS.items() if label.endswith(" path")), None)


@unittest.skipUnless(pyenv_shim() and PATH_PYTHON, "python3 on PATH is not pyenv's shim")
class RealPyenvShim(RunCase):
    """`memtrace run known.py` runs the python3 on PATH: here pyenv's bash
    shim, its some 77 helpers, then the interpreter."""

    def test_script_through_the_shim(self):
        interpreter = PATH_PYTHON
        trace = self.tmp / "pyenv.trace"
        path = "%s:%s" % (os.path.dirname(pyenv_shim()), os.environ["PATH"])
        proc = subprocess.run([str(CLI), "run", "-o", str(trace), "known.py", PYDIR],
                              capture_output=True, text=True, timeout=300, cwd=self.work,
                              env=clean_env(PATH=path))
        self.assertEqual(proc.returncode, 0, proc.stderr)
        (line,) = memtrace_lines(proc.stderr)
        run = self.run_report(trace)
        self.assertRegex(line, r"^memtrace: run %s: %d processes traced$"
                         % (trace, run["run"]["traces"]))
        self.assertGreater(run["run"]["traces"], 10)
        # the shim is "#!/usr/bin/env bash", and so is pyenv's own script
        _, chain = self.tree(run)
        self.assertEqual(chain[:2], ["env", "bash"])
        self.assertEqual(chain[-1], os.path.basename(os.path.realpath(interpreter)))
        self.assert_leads_with_script(run, "last_program", interpreter)


class Launchers(RunCase):

    def test_env_shebang(self):
        # no .py: memtrace run would run that with python3 itself
        script = self.script("known_env", "#!/usr/bin/env python3\n" + KNOWN)
        trace = self.tmp / "env.trace"
        proc = self.cli("run", "-o", trace, "--", script, PYDIR)
        self.assertEqual(proc.returncode, 0, proc.stderr)
        self.assertEqual(memtrace_lines(proc.stderr),
                         ["memtrace: run %s: 2 processes traced" % trace])
        run = self.run_report(trace)
        _, chain = self.tree(run)
        self.assertEqual(chain, ["env", os.path.basename(os.path.realpath(self.python))])
        nodes = {p["trace_id"]: p for p in run["run"]["processes"]}
        lead = nodes[run["run"]["lead"]]
        self.assertEqual(run["run"]["lead_reason"], "last_program")
        self.assertEqual(lead["argv"][-2:], [str(script), PYDIR])
        (rep,) = run["reports"]
        figures = self.script_figures(rep)
        direct = self.direct()
        self.assertEqual((figures["build"], figures["drop"]), (direct["build"], direct["drop"]))

    def test_script_py(self):
        # the python3 on PATH runs it, as memray's users expect
        trace = self.tmp / "script.trace"
        proc = self.cli("run", "-o", trace, "known.py", PYDIR)
        self.assertEqual(proc.returncode, 0, proc.stderr)
        self.assertEqual(memtrace_lines(proc.stderr),
                         ["memtrace: run %s: 1 process traced" % trace])
        rep = self.report_ok(trace)
        self.assertEqual(rep["process"]["argv"], ["python3", "known.py", PYDIR])
        self.assertEqual(self.script_figures(rep), self.direct())

    def test_shell_wrapper(self):
        wrapper = self.script("wrapper.sh", WRAPPER.format(pydir=PYDIR))
        plain = self.plain(["sh", wrapper])
        self.assertEqual((plain.returncode, plain.stdout), (3, "start\ndone\n"))
        trace = self.tmp / "wrapper.trace"
        proc = self.cli("run", "-o", trace, "--", "sh", wrapper)
        self.assertEqual((proc.returncode, proc.stdout.splitlines()[:2]),
                         (3, ["start", "done"]))
        # dash starts the interpreter with vfork: no copy of the shell
        # between them
        self.assertEqual(memtrace_lines(proc.stderr),
                         ["memtrace: run %s: 2 processes traced" % trace])
        run = self.run_report(trace)
        nodes, chain = self.tree(run)
        self.assertEqual(chain, ["dash"])
        top = nodes[run["run"]["processes"][0]["trace_id"]]
        self.assertEqual(top["exit_status"], 3)
        # the shell made a tenth of the interpreter's calls: the
        # interpreter leads, the busiest process
        lead = self.assert_leads_with_script(run, "busiest")
        self.assertEqual(lead["parent"], top["trace_id"])
        self.assertLess(top["events"] * 10, lead["events"])


class Make(RunCase):
    """make -C: three recipes in another directory, one of them Python.
    The traces stay where the run started."""

    def setUp(self):
        super().setUp()
        self.sub = self.work / "sub"
        self.sub.mkdir()
        shutil.copy(self.work / "known.py", self.sub / "known.py")
        (self.sub / "Makefile").write_text(MAKEFILE.format(pydir=PYDIR))
        self.argv = ["make", "-s", "-C", "sub"]
        if not shutil.which("make"):
            self.fail("make is missing: scripts/install-deps.sh --test installs it")

    def clean(self):
        (self.sub / "one.txt").unlink(missing_ok=True)

    def check_make_tree(self, run):
        nodes, chain = self.tree(run)
        self.assertEqual(chain, ["make"])
        top = nodes[run["run"]["processes"][0]["trace_id"]]
        # echo's redirection needs a shell; cat and python3 make spawns
        # itself (posix_spawn: no copy of make in between)
        self.assertEqual(sorted(exe_name(nodes[c]) for c in top["children"]),
                         sorted(["dash", "cat", os.path.basename(os.path.realpath(self.python))]))
        self.assertEqual(len(nodes), 4)
        self.assert_leads_with_script(run, "busiest")

    def test_memtrace_run(self):
        plain = self.plain(self.argv)
        self.clean()
        proc = self.cli("run", "--", *self.argv)
        self.assertEqual((proc.returncode, proc.stdout.splitlines()[0]), (0, plain.stdout.strip()))
        (line,) = memtrace_lines(proc.stderr)
        self.assertRegex(line, r"^memtrace: run %s/memtrace\.\d+\.trace: 4 processes traced$"
                         % self.work)
        self.assertEqual(list(self.sub.glob("*.trace")), [])
        self.check_make_tree(self.run_report(line.split()[2][:-1]))

    def test_bare_preload(self):
        self.clean()
        proc = self.preloaded(self.argv, terminal=True)
        self.assertEqual(proc.returncode, 0, proc.stderr)
        (line,) = memtrace_lines(proc.stderr)
        self.assertRegex(line, r"^memtrace: wrote %s/memtrace\.\d+\.trace \(\d+ events\); "
                               r"its run has 4 traces so far: memtrace report "
                         % self.work)
        self.assertEqual(list(self.sub.glob("*.trace")), [])
        self.check_make_tree(self.run_report(line.split()[-1]))

    def test_only_and_follow_none(self):
        plain = self.plain(self.argv)
        interpreter = os.path.basename(os.path.realpath(self.python))
        for option, value, names in (("--only", "python3*", [interpreter]),
                                     ("--only", "cat,dash", ["cat", "dash"]),
                                     ("--follow", "none", ["make"])):
            with self.subTest(option=option, value=value):
                self.clean()
                out = self.tmp / ("only" if option == "--only" else "none")
                shutil.rmtree(out, ignore_errors=True)
                out.mkdir()
                trace = out / "run.trace"
                proc = self.cli("run", "-q", option, value, "-o", trace, "--", *self.argv)
                self.assertEqual((proc.returncode, proc.stdout), (plain.returncode, plain.stdout))
                self.assertEqual(memtrace_lines(proc.stderr), [])
                traces = sorted(out.glob("*.trace"))
                exes = sorted(os.path.basename(self.report_ok(t)["process"]["exe"])
                              for t in traces)
                self.assertEqual(exes, names)
                # the same with the settings in the environment
                self.clean()
                env_name = "MEMTRACE_ONLY" if option == "--only" else "MEMTRACE_FOLLOW"
                for t in traces:
                    t.unlink()
                proc = self.preloaded(self.argv, env={env_name: value, "MEMTRACE_QUIET": "1",
                                                      "MEMTRACE_OUTPUT": str(trace)})
                self.assertEqual((proc.returncode, proc.stdout), (plain.returncode, plain.stdout))
                self.assertEqual(len(list(out.glob("*.trace"))), len(names))


class ProgramTrees(TracerTestCase):
    """The C test programs' trees: the links come from the headers."""

    def run_json(self, run):
        proc = subprocess.run([str(CLI), "report", "--format", "json", str(run.traces[0])],
                              capture_output=True, text=True, timeout=120)
        self.assertEqual(proc.returncode, 0, proc.stderr)
        return json.loads(proc.stdout)["run"]

    def test_fork(self):
        run = self.run_json(self.run_traced_ok([prog("fork")], traces=2))
        parent, child = run["processes"]
        self.assertEqual((parent["pid"], parent["top"], parent["parent"]), (parent["pid"], True, None))
        self.assertEqual((child["ppid"], child["parent"], child["top"]),
                         (parent["pid"], parent["trace_id"], False))
        self.assertEqual(parent["children"], [child["trace_id"]])

    def test_exec(self):
        run = self.run_json(self.run_traced_ok([prog("exec"), prog("exec_target")], traces=2))
        first, second = run["processes"]
        self.assertEqual((first["exec_successor"], second["exec_predecessor"]),
                         (second["trace_id"], first["trace_id"]))
        self.assertEqual((first["ended"], second["ended"]), ("exec", "exit"))
        self.assertEqual(run["lead"], second["trace_id"])

    def test_spawn(self):
        # posix_spawn and vfork + exec: the children's images find the run
        # by the parent's entry, and name the parent
        run = self.run_json(self.run_traced_ok([prog("spawn"), prog("exec_target")], traces=3))
        parent, *children = run["processes"]
        self.assertEqual(sorted(parent["children"]), sorted(c["trace_id"] for c in children))
        for c in children:
            self.assertEqual((c["parent"], c["exec_predecessor"]), (parent["trace_id"], None))

    def test_killed_child(self):
        # a child killed with SIGKILL leaves a trace without its footer:
        # the tree says so, and knows neither its exit status nor its losses
        argv = ["sh", "-c", "%s 1; echo after $?" % prog("killed")]
        run = self.run_traced_ok(argv, traces=2)
        self.assertEqual(run.stdout.splitlines()[-1], "after 137")
        tree = self.run_json(run)
        shell, killed = tree["processes"]
        self.assertEqual((shell["ended"], shell["exit_status"], shell["complete"]), ("0", 0, True))
        self.assertEqual((killed["parent"], killed["ended"], killed["exit_status"],
                          killed["complete"], killed["readable"]),
                         (shell["trace_id"], "no footer", None, False, True))
        self.assertEqual((killed["events"], killed["live_at_exit"]), (1, 1))
        # the shell leads, the command's last program; the killed process
        # sits in the table below it
        self.assertEqual(tree["lead"], shell["trace_id"])
        proc = subprocess.run([str(CLI), "report", str(run.traces[0])],
                              capture_output=True, text=True, timeout=120)
        self.assertEqual(proc.returncode, 0, proc.stderr)
        rest = proc.stdout[proc.stdout.index("the rest of the run, by executable"):]
        self.assertRegex(rest, r"\n +1 +1 +1 no footer x1  killed\n")
        rep = self.report_ok(killed["trace_file"])
        self.assertEqual((rep["trace"]["complete"], rep["events"]["lost"]), (False, None))

    def test_report_selectors(self):
        run = self.run_traced_ok([prog("spawn"), prog("exec_target")], traces=3)
        name = run.traces[0].parent / ("%d.trace" % run.pid)
        for args, count in ((["--all"], 3), (["--pid", str(run.pid)], 1),
                            (["--exe", "exec_tar*"], 2)):
            with self.subTest(args=args):
                proc = subprocess.run([str(CLI), "report", "-f", "json", *args, str(name)],
                                      capture_output=True, text=True, timeout=120)
                self.assertEqual(proc.returncode, 0, proc.stderr)
                self.assertEqual(len(json.loads(proc.stdout)["reports"]), count)
        # the run's directory, and its name without .trace, give the same run
        for arg in (name.parent, str(name)[:-len(".trace")]):
            proc = subprocess.run([str(CLI), "report", "-f", "json", str(arg)],
                                  capture_output=True, text=True, timeout=120)
            self.assertEqual(proc.returncode, 0, proc.stderr)
            self.assertEqual(json.loads(proc.stdout)["run"]["traces"], 3)
        bad = subprocess.run([str(CLI), "report", "--pid", "1", str(name)],
                             capture_output=True, text=True, timeout=120)
        self.assertEqual(bad.returncode, 1)
        self.assertIn("no readable trace of the run matches", bad.stderr)


if __name__ == "__main__":
    unittest.main()
