"""The pprof export read by its real consumer, `go tool pprof` (Debian's
golang-go; skipped when it is not installed), with every Go setting pointed
into the test's scratch directory.

  * every_call.c with native stacks: the totals of alloc_objects,
    alloc_space and, at exit, inuse_* are the program's own counts;
  * native_stacks.c: the functions of its three call paths with their exact
    bytes, the inlined function as a line of its caller's location, the
    order of the frames, the source lines, and the mappings of the program
    and of the dlopen'ed library with their build ids (as readelf reads them);
  * threads.c: the thread label splits the figures per thread: each
    producer's leaked block is its thread's;
  * a Python script: the line that allocates 1,000 bytes objects has exactly
    1,000 allocations of 1,033 bytes, under its function and <module>; the
    totals are those of the report's size histogram; with native stacks the
    Python frames sit inside the interpreter's native ones;
  * the options: a bad --at, an export of several traces, pprof's gzip
    data to a terminal are refused with exit status 1 and a message.

Run alone, this file exits 77 (ctest's SKIP_RETURN_CODE) when every test
was skipped."""

import os
import re
import shutil
import subprocess
import sys
import unittest
from pathlib import Path

from harness import (CLI, PROGS, PYTHONS, REPO, TIMEOUT, TracerTestCase, clean_env,
                     marker_line, parse_expect, prog, python_of)

GO = shutil.which("go")
SRC = REPO / "tests" / "progs"
NATIVE_ENV = {"MEMTRACE_NATIVE": "1", "MEMTRACE_PY_DEPTH": "128"}
VALUES = ("alloc_objects", "alloc_space", "inuse_objects", "inuse_space")


def build_id(path):
    """The GNU build id of an ELF file, as readelf prints it."""
    out = subprocess.run(["readelf", "-n", str(path)], capture_output=True, text=True,
                         check=True).stdout
    return re.search(r"Build ID: ([0-9a-f]+)", out).group(1)


def parse_raw(text):
    """The samples of `go tool pprof -raw`: [(values, {label: value})]."""
    samples, lines = [], text.split("Samples:", 1)[1].split("Locations", 1)[0].splitlines()
    for line in lines:
        m = re.match(r"\s*(\d+)\s+(\d+)\s+(\d+)\s+(\d+):", line)
        if m:
            samples.append(([int(v) for v in m.groups()], {}))
        elif samples and ":[" in line:
            samples[-1][1].update(re.findall(r"(\w+):\[([^\]]*)\]", line))
    return samples


def parse_top(text):
    """{name: (flat, cum)} from `go tool pprof -top` in plain numbers (bytes
    with -unit=B, counts as they are)."""
    rows = {}
    for line in text.splitlines():
        m = re.match(r"\s*(\d+)B?\s+[\d.]+%\s+[\d.]+%\s+(\d+)B?\s+[\d.]+%\s+(.+?)\s*$", line)
        if m:
            rows[m.group(3)] = (int(m.group(1)), int(m.group(2)))
    return rows


def parse_traces(text):
    """The stacks of `go tool pprof -traces`: [(value, labels, frames)],
    frames innermost first."""
    traces = []
    for block in text.split("-----------+")[1:]:
        labels, frames, value = {}, [], None
        for line in block.splitlines()[1:]:
            m = re.match(r"\s+(\w+):\s+(\S+)$", line)
            if value is None and m:
                labels[m.group(1)] = m.group(2)
                continue
            m = re.match(r"\s+(\d+)B?\s+(.+?)\s*$", line)
            if value is None and m:
                value = int(m.group(1))
                frames.append(m.group(2))
            elif value is not None and line.strip():
                frames.append(line.strip())
        if frames:
            traces.append((value, labels, frames))
    return traces


@unittest.skipIf(GO is None, "go is not installed (Debian package golang-go)")
class PprofCase(TracerTestCase):
    """Helpers: memtrace's export and go tool pprof on it."""

    def export(self, trace, *args):
        out = self.tmp / ("%s%s.pb.gz" % (Path(trace).stem, "".join(args).replace("-", "_")))
        proc = subprocess.run([str(CLI), "report", "--format", "pprof", "-o", str(out), *args,
                               str(trace)], capture_output=True, text=True, timeout=TIMEOUT)
        self.assertEqual(proc.returncode, 0, proc.stderr)
        self.assertEqual(out.read_bytes()[:2], b"\x1f\x8b", "not gzip")
        return out

    def pprof(self, profile, *args):
        """stdout of `go tool pprof ARGS PROFILE`, with Go's and pprof's
        state in the scratch directory, never in $HOME."""
        home = self.tmp / "home"
        home.mkdir(exist_ok=True)
        env = clean_env(HOME=str(home), GOPATH=str(home / "go"),
                        GOCACHE=str(home / "gocache"), GOENV="off", GOFLAGS="",
                        GOTOOLCHAIN="local", GOTELEMETRY="off",
                        PPROF_TMPDIR=str(home / "pprof"),
                        PPROF_BINARY_PATH=str(home / "binaries"))
        proc = subprocess.run([GO, "tool", "pprof", *args, str(profile)], env=env,
                              capture_output=True, text=True, timeout=TIMEOUT, cwd=self.tmp)
        self.assertEqual(proc.returncode, 0, proc.stderr)
        return proc.stdout

    def total(self, profile, value):
        """The profile's total of one sample type, as pprof sums it."""
        out = self.pprof(profile, "-top", "-unit=B", "-sample_index=" + value)
        return int(re.search(r"Total samples = (\d+)B?", out).group(1))

    def raw(self, profile):
        return parse_raw(self.pprof(profile, "-raw"))


class PprofC(PprofCase):

    def test_totals_are_the_programs_counts(self):
        run = self.run_traced_ok([prog("every_call")], env=NATIVE_ENV)
        expect = parse_expect(run.stdout)["every_call"]
        at_exit = self.export(run.traces[0], "--at", "exit")
        self.assertEqual(self.total(at_exit, "alloc_objects"),
                         expect["allocs"] + expect["reallocs"])
        self.assertEqual(self.total(at_exit, "alloc_space"), expect["bytes"])
        self.assertEqual(self.total(at_exit, "inuse_objects"), expect["live_blocks"])
        self.assertEqual(self.total(at_exit, "inuse_space"), expect["live_bytes"])
        # all of it under main, the default sample type being inuse_space
        top = parse_top(self.pprof(at_exit, "-top", "-unit=B", "-symbolize=none"))
        self.assertEqual(top["main"][1], expect["live_bytes"])
        out = self.pprof(at_exit, "-top")
        self.assertIn("Type: inuse_space", out)
        self.assertIn("inuse: live at exit", out)

    def test_inuse_at_the_peak(self):
        run = self.run_traced_ok([prog("every_call")])
        rep = self.report_ok(run.traces[0])
        profile = self.export(run.traces[0])
        samples = self.raw(profile)
        peak = sum(s["peak_bytes"] for s in rep["sites"])
        self.assertEqual(sum(v[3] for v, _ in samples), peak)
        self.assertEqual(sum(v[2] for v, _ in samples),
                         sum(s["peak_blocks"] for s in rep["sites"]))
        self.assertIn("inuse: live at the heap peak, %d us after start"
                      % rep["summary"]["heap_peak"]["sites_time_us"],
                      self.pprof(profile, "-comments"))


class ExportOptions(TracerTestCase):
    """What `memtrace report` says about the exports' options (no go needed)."""

    def test_usage_errors(self):
        run = self.run_traced_ok([prog("every_call")])
        trace = str(run.traces[0])
        for args, message in (
                (["--format", "pprof", "--at", "end"], "--at takes peak or exit"),
                (["--format", "speedscope", trace], "take one TRACE"),
                (["--format", "flamegraph"], "pprof or speedscope")):
            proc = subprocess.run([str(CLI), "report", *args, trace], capture_output=True,
                                  text=True, timeout=TIMEOUT)
            self.assertEqual(proc.returncode, 1, args)
            self.assertIn(message, proc.stderr)

    def test_pprof_not_to_a_terminal(self):
        run = self.run_traced_ok([prog("every_call")])
        main, sub = os.openpty()
        try:
            proc = subprocess.run([str(CLI), "report", "--format", "pprof", str(run.traces[0])],
                                  stdout=sub, stderr=subprocess.PIPE, text=True, timeout=TIMEOUT)
        finally:
            os.close(sub)
            os.close(main)
        self.assertEqual(proc.returncode, 1)
        self.assertIn("use -o FILE", proc.stderr)


class PprofNative(PprofCase):
    """native_stacks.c: main -> level_a -> level_b -> malloc(100000), main ->
    level_a -> inlined_c (inlined) -> malloc(200000), main ->
    nstack_lib_alloc (dlopen'ed) -> malloc(300000); all live at exit."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.lib = PROGS / "libnstack_lib.so"

    def setUp(self):
        super().setUp()
        run = self.run_traced_ok([prog("native_stacks"), str(self.lib)], env=NATIVE_ENV)
        self.profile = self.export(run.traces[0])
        self.line = {m: marker_line(SRC / "native_stacks.c", m)
                     for m in ("SITE_A", "SITE_B", "SITE_C", "SITE_MAIN_B")}

    def test_functions_and_bytes(self):
        want = {"level_b": 100000, "inlined_c (inline)": 200000, "nstack_lib_alloc": 300000}
        for value in ("inuse_space", "alloc_space"):
            top = parse_top(self.pprof(self.profile, "-top", "-unit=B", "-symbolize=none",
                                       "-sample_index=" + value))
            self.assertEqual({f: top[f][0] for f in want}, want, value)
            self.assertEqual(top["level_a"][1], 300000, value)
        top = parse_top(self.pprof(self.profile, "-top", "-symbolize=none",
                                   "-sample_index=alloc_objects"))
        self.assertEqual({f: top[f][0] for f in want}, dict.fromkeys(want, 1))

    def test_stacks_and_lines(self):
        traces = parse_traces(self.pprof(self.profile, "-traces", "-unit=B", "-symbolize=none"))
        stacks = {t[2][0]: t for t in traces}
        value, labels, frames = stacks["level_b"]
        self.assertEqual(value, 100000)
        self.assertEqual(frames[:3], ["level_b", "level_a", "main"])
        self.assertEqual(labels["domain"], "malloc")
        self.assertRegex(labels["thread"], r"^\d+$")
        # the inlined function is a line of level_a's location
        self.assertEqual(stacks["inlined_c (inline)"][2][:3],
                         ["inlined_c (inline)", "level_a", "main"])
        lines = parse_top(self.pprof(self.profile, "-top", "-lines", "-unit=B",
                                     "-symbolize=none"))
        src = str(SRC / "native_stacks.c")
        self.assertEqual(lines["level_b %s:%d" % (src, self.line["SITE_B"])], (100000, 100000))
        self.assertEqual(lines["inlined_c %s:%d (inline)" % (src, self.line["SITE_C"])][0],
                         200000)
        self.assertEqual(lines["level_a %s:%d" % (src, self.line["SITE_A"])][1], 300000)

    def test_mappings_with_build_ids(self):
        raw = self.pprof(self.profile, "-raw")
        mappings = {}
        for line in raw.split("Mappings", 1)[1].splitlines()[1:]:
            m = re.match(r"\d+: 0x([0-9a-f]+)/0x([0-9a-f]+)/0x0 (\S+) ([0-9a-f]*) (.*)$", line)
            if m:
                mappings[m.group(3)] = (int(m.group(1), 16), int(m.group(2), 16), m.group(4),
                                        m.group(5))
        exe, lib = str(PROGS / "native_stacks"), str(self.lib)
        for path in (exe, lib):
            start, limit, bid, flags = mappings[path]
            self.assertEqual(bid, build_id(path), path)
            self.assertLess(start, limit)
            self.assertEqual(flags, "[FN][FL][LN][IN]", path)
        # pprof takes the first mapping for the program
        self.assertIn("File: native_stacks\nBuild ID: %s" % build_id(exe),
                      self.pprof(self.profile, "-top"))
        # without -symbolize=none pprof keeps our symbols and finds nothing to add
        self.assertIn("level_b", self.pprof(self.profile, "-top"))


class PprofThreads(PprofCase):

    def test_thread_labels(self):
        producers = 3
        run = self.run_traced_ok([prog("threads"), str(producers), "2", "500"])
        rep = self.report_ok(run.traces[0])
        samples = self.raw(self.export(run.traces[0], "--at", "exit"))
        live, allocs = {}, {}
        for values, labels in samples:
            self.assertEqual(labels["domain"], "malloc")
            live[labels["thread"]] = live.get(labels["thread"], 0) + values[3]
            allocs[labels["thread"]] = allocs.get(labels["thread"], 0) + values[0]
        self.assertEqual(len(live), rep["trace"]["threads"])
        # each producer leaks one block of 1000 + i bytes and allocates
        # nothing else that lives
        self.assertEqual(sorted(v for v in live.values() if 1000 <= v < 1000 + producers),
                         [1000 + i for i in range(producers)])
        self.assertEqual(sum(1 for v in allocs.values() if v == 501), producers)
        hist = rep["summary"]["size_histogram"]
        self.assertEqual(sum(allocs.values()), sum(h["allocs"] for h in hist))


SCRIPT = """\
def blocks(n):
    out = [None] * n
    for i in range(n):
        out[i] = bytes(1000)  # BLOCKS
    return out


kept = blocks(1000)
"""


def bytes_size(python):
    """The block of bytes(1000)."""
    return 1033 + (16 if python_of(python).free_threaded else 0)


@unittest.skipIf(not PYTHONS, "no CPython found")
class PprofPython(PprofCase):

    def trace(self, python, env=None):
        script = self.tmp / "script.py"
        script.write_text(SCRIPT)
        run = self.run_traced_ok([python, str(script)], env={"MEMTRACE_PY_DEPTH": "16",
                                                                 **(env or {})})
        return run.traces[0], script

    def test_lines_and_totals(self):
        for label, python in PYTHONS.items():
            with self.subTest(python=label):
                trace, script = self.trace(python)
                rep = self.report_ok(trace)
                line = "blocks %s:%d" % (script, marker_line(script, "BLOCKS"))
                # the blocks live at the heap peak, at the script's end (the
                # interpreter frees them at exit)
                profile = self.export(trace)
                # a bytes of 1000 is 1033 bytes on 3.11: a 32-byte header,
                # the bytes and a NUL (16 more on a free-threaded build,
                # whose object header is longer)
                size = 1000 * bytes_size(python)
                for value, want in zip(VALUES, (1000, size, 1000, size)):
                    top = parse_top(self.pprof(profile, "-top", "-lines", "-unit=B",
                                               "-sample_index=" + value))
                    self.assertEqual(top.get(line, (None,))[0], want, value)
                hist = rep["summary"]["size_histogram"]
                self.assertEqual(self.total(profile, "alloc_objects"),
                                 sum(h["allocs"] for h in hist))
                self.assertEqual(self.total(profile, "alloc_space"),
                                 sum(h["bytes"] for h in hist))
                traces = parse_traces(self.pprof(profile, "-traces", "-unit=B"))
                stacks = [t for t in traces if t[2][0] == "blocks"]
                self.assertIn((size, {"domain": "pymem_obj", "thread": stacks[0][1]["thread"]},
                               ["blocks", "<module>"]), stacks)

    def test_python_frames_in_native_stacks(self):
        for label, python in PYTHONS.items():
            with self.subTest(python=label):
                trace, script = self.trace(python, NATIVE_ENV)
                profile = self.export(trace)
                traces = parse_traces(self.pprof(profile, "-traces", "-lines", "-unit=B",
                                                 "-symbolize=none"))
                line = "blocks %s:%d" % (script, marker_line(script, "BLOCKS"))
                stacks = [t for t in traces if t[2][0] == line]
                self.assertEqual(sum(t[0] for t in stacks), 1000 * bytes_size(python))
                for _, _, frames in stacks:
                    # the interpreter's frames under the line are left out,
                    # its frames above <module> stay
                    self.assertEqual(frames[1], "<module> %s:%d"
                                     % (script, marker_line(script, "kept =")))
                    self.assertTrue(any(f.startswith("Py_RunMain") for f in frames[2:]), frames)
                raw = self.pprof(profile, "-raw")
                exe = os.path.realpath(python)
                self.assertRegex(raw, r"\n\d+: 0x[0-9a-f]+/0x[0-9a-f]+/0x0 %s %s "
                                 % (re.escape(exe), build_id(exe)))


if __name__ == "__main__":
    result = unittest.main(exit=False).result
    if not result.wasSuccessful():
        sys.exit(1)
    sys.exit(77 if result.testsRun and len(result.skipped) == result.testsRun else 0)
