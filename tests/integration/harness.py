"""Shared helpers for the memtrace integration tests.

Paths come from the environment (set by CTest, see CMakeLists.txt) and
default to a build tree in ./build, so a test file can also be run by hand:

    python3 -m unittest -v tests/integration/test_calls.py

Figures are checked against two independent oracles:
  * the test program's own count of the calls it made (its "expect" line,
    see tests/progs/progs.h);
  * valgrind --run-libc-freeres=no, whose "in use at exit" must equal the
    report's live figures, and whose totals must agree with the report's
    counts (valgrind counts a realloc of a non-NULL block as one alloc and
    one free, and never counts failed calls).
"""

import dataclasses
import json
import os
import pty
import re
import shutil
import struct
import subprocess
import tempfile
import unittest
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
BUILD = REPO / "build"

LIB = Path(os.environ.get("MEMTRACE_LIB", BUILD / "libmemtrace.so")).resolve()
CLI = Path(os.environ.get("MEMTRACE_CLI", BUILD / "memtrace")).resolve()
PROGS = Path(os.environ.get("MEMTRACE_PROGS", BUILD / "tests" / "progs")).resolve()
STORM = Path(os.environ.get("MEMTRACE_STORM", BUILD / "bench" / "storm")).resolve()

VALGRIND = shutil.which("valgrind")
# /proc/self/status reads the kernel's RSS counters without their per-CPU
# parts (get_mm_counter, percpu_counter_read_positive, since Linux 6.2):
# each CPU may hold up to percpu_counter_batch = max(32, 2 x CPUs) pages
# not yet added, so the difference of two readings of one counter is off by
# at most twice that over all CPUs.
RSS_SLACK = 2 * os.cpu_count() * max(32, 2 * os.cpu_count()) * os.sysconf("SC_PAGESIZE")
TIMEOUT = 120

# Report exit statuses (see `memtrace report`).
REPORT_OK, REPORT_CORRUPT, REPORT_TORN = 0, 2, 3

# Trace layout (include/memtrace/trace_format.h), for the corruption tests.
PREAMBLE_LEN = 16
BLOCK_HEADER_LEN = 12
BLOCK_MAGIC = 0x4B42544D
BLOCK_HEADER, BLOCK_EVENTS, BLOCK_FOOTER = 1, 2, 3


def prog(name):
    return str(PROGS / name)


def clean_env(**extra):
    """The test's environment without any tracer settings inherited from
    whoever runs the suite, plus `extra`."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("MEMTRACE_") and k != "LD_PRELOAD"}
    env.update(extra)
    return env


# ---- interpreters ----------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class Python:
    """A CPython the tests run on."""
    label: str            # "3.11 static", "3.11 path", "3.13", "3.13t"
    exe: str              # the real executable (never a shell shim)
    version: tuple        # (3, 13)
    free_threaded: bool   # --disable-gil: no pymalloc, no GIL

    @property
    def pymalloc(self):
        return not self.free_threaded


_PROBE = ("import sys, sysconfig; print(sys.executable); print(*sys.version_info[:2]);"
          "print(int(bool(sysconfig.get_config_var('Py_GIL_DISABLED'))))")


def _extra_pythons():
    """The interpreters scripts/pythons.sh built: the paths scripts/test.sh
    passes in MEMTRACE_TEST_PYTHONS (colon-separated), or, when a test runs
    by hand, the ones already in pythons.sh's cache."""
    given = os.environ.get("MEMTRACE_TEST_PYTHONS")
    if given is not None:
        return [p for p in given.split(":") if p]
    out = subprocess.run([str(REPO / "scripts" / "pythons.sh"), "--cached"],
                         capture_output=True, text=True, timeout=60)
    return out.stdout.split() if out.returncode == 0 else []


def _interpreters():
    """{label: Python} of the CPythons on the machine: Debian's static
    /usr/bin/python3 and the shared-libpython one behind `python3` on PATH
    (pyenv's `python3` is a shell script, never traced directly), both
    3.11, then 3.13 and 3.13t from scripts/pythons.sh."""
    found = {}
    candidates = [("static", "/usr/bin/python3"), ("path", shutil.which("python3"))]
    candidates += [(None, p) for p in _extra_pythons()]
    for kind, exe in candidates:
        if not exe or not os.access(exe, os.X_OK):
            continue
        try:
            out = subprocess.run([exe, "-c", _PROBE], capture_output=True, text=True,
                                 timeout=60, env=clean_env()).stdout.split()
        except OSError:
            continue
        if len(out) != 4 or not Path(out[0]).exists():
            continue
        real, major, minor, ft = out[0], int(out[1]), int(out[2]), out[3] == "1"
        if real in (p.exe for p in found.values()):
            continue
        label = "%d.%d%s" % (major, minor, "t" if ft else "")
        if kind:
            label += " " + kind
        found[label] = Python(label, real, (major, minor), ft)
    return found


INTERPRETERS = _interpreters()
# {label: executable}
PYTHONS = {label: p.exe for label, p in INTERPRETERS.items()}


def python_of(exe):
    """The Python record of an executable in PYTHONS."""
    return next(p for p in INTERPRETERS.values() if p.exe == exe)


# ---- program output ------------------------------------------------------

def marker_line(path, marker):
    """The number of the first line of a source file that holds marker."""
    for number, text in enumerate(Path(path).read_text().splitlines(), 1):
        if marker in text:
            return number
    raise AssertionError("no %s in %s" % (marker, path))


# The programs' names for the report's malloc-domain figures.
REPORT_KEYS = {"allocs": "allocs", "frees": "frees", "reallocs": "reallocs",
               "failed": "failed", "bytes": "bytes_allocated"}


def parse_expect(stdout):
    """{who: {field: int}} from the programs' "expect who=X a=1 ..." lines,
    and "inherited ..." lines under the key "inherited"."""
    result = {}
    for line in stdout.splitlines():
        words = line.split()
        if not words or words[0] not in ("expect", "inherited"):
            continue
        fields = dict(w.split("=", 1) for w in words[1:])
        who = fields.pop("who", words[0])
        result[who] = {k: int(v) for k, v in fields.items()}
    return result


# ---- valgrind ----------------------------------------------------------

@dataclasses.dataclass
class Valgrind:
    """One process's HEAP SUMMARY."""
    live_bytes: int
    live_blocks: int
    allocs: int
    frees: int
    bytes: int


_VG_IN_USE = re.compile(r"in use at exit: ([\d,]+) bytes in ([\d,]+) blocks")
_VG_TOTAL = re.compile(
    r"total heap usage: ([\d,]+) allocs, ([\d,]+) frees, ([\d,]+) bytes allocated")


def _vg_int(s):
    return int(s.replace(",", ""))


@dataclasses.dataclass
class ValgrindRun:
    pid: int         # of the process valgrind started
    summaries: dict  # {pid: Valgrind}, one per process (forked ones too)
    stdout: str


def run_valgrind(argv, workdir, expect_rc=0):
    """Runs argv, untraced, under plain memcheck, each process logging on
    its own.  The programs are told they run under valgrind
    (PROGS_UNDER_VALGRIND) for the one call valgrind cannot take, pvalloc."""
    if VALGRIND is None:
        raise unittest.SkipTest("valgrind is not installed")
    logdir = Path(tempfile.mkdtemp(prefix="vg.", dir=workdir))
    env = clean_env(PROGS_UNDER_VALGRIND="1")
    proc = subprocess.Popen(
        [VALGRIND, "--run-libc-freeres=no", "--run-cxx-freeres=no",
         "--log-file=%s/%%p.log" % logdir, *argv],
        env=env, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True)
    stdout, stderr = proc.communicate(timeout=TIMEOUT)
    if proc.returncode != expect_rc:
        raise AssertionError("valgrind %s: exit %d, stderr:\n%s"
                             % (argv, proc.returncode, stderr))
    summaries = {}
    for log in logdir.glob("*.log"):
        text = log.read_text()
        in_use, total = _VG_IN_USE.search(text), _VG_TOTAL.search(text)
        if in_use and total:
            summaries[int(log.stem)] = Valgrind(
                *(_vg_int(g) for g in in_use.groups() + total.groups()))
    return ValgrindRun(proc.pid, summaries, stdout)


# ---- headless Chromium -----------------------------------------------------

CHROMIUM = next((shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome")
                 if shutil.which(n)), None)


def run_chromium(url, workdir, *args):
    """Headless Chromium on url with a fresh profile under workdir and no
    network of its own (no updates, sync, QUIC or extensions); WebGL, if
    the page wants it, is software (SwiftShader).  Returns the finished
    process; its stderr has the page's console lines ("CONSOLE")."""
    profile = tempfile.mkdtemp(prefix="profile.", dir=workdir)
    argv = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
            "--no-first-run", "--disable-background-networking",
            "--disable-component-update", "--disable-sync", "--disable-extensions",
            "--enable-unsafe-swiftshader", "--lang=en-US",
            "--user-data-dir=" + profile, "--enable-logging=stderr", "--v=0", *args, url]
    return subprocess.run(argv, capture_output=True, text=True, timeout=TIMEOUT, cwd=workdir)


# ---- traced runs and reports ---------------------------------------------

@dataclasses.dataclass
class Run:
    returncode: int
    stdout: str
    stderr: str
    pid: int
    traces: list  # Paths of the trace files the run left


CELL_KEYS = ("bucket", "allocs", "bytes", "live_bytes", "temporary_allocs", "temporary_bytes")


def profile_cells(profile):
    """Every site's cells of the report's profile (docs/report-schema.md),
    a list per site of [bucket, allocs, bytes, live bytes, temporary allocs,
    temporary bytes], as running figures (they are written as differences)."""
    columns = [profile["cells"][k] for k in CELL_KEYS]
    out, at = [], 0
    for n in profile["sites"]["cells"]:
        cells, prev = [], [0] * len(CELL_KEYS)
        for c in range(at, at + n):
            prev = [p + col[c] for p, col in zip(prev, columns)]
            cells.append(prev)
        out.append(cells)
        at += n
    return out


def report(trace):
    """(exit status, parsed JSON or None, stderr) of `memtrace report` of
    this trace alone (not the run it belongs to)."""
    proc = subprocess.run([str(CLI), "report", "--trace-only", "--format", "json", str(trace)],
                          capture_output=True, text=True, timeout=TIMEOUT)
    data = None
    if proc.stdout.strip():
        try:
            data = json.loads(proc.stdout)
        except json.JSONDecodeError:
            pass
    return proc.returncode, data, proc.stderr


def trace_blocks(path):
    """[(offset, type, total length)] of the blocks in a trace file, up to
    the first one that is incomplete."""
    data = Path(path).read_bytes()
    blocks, off = [], PREAMBLE_LEN
    while off + BLOCK_HEADER_LEN <= len(data):
        magic, btype, _, _, length = struct.unpack_from("<IBBHI", data, off)
        if magic != BLOCK_MAGIC or off + BLOCK_HEADER_LEN + length > len(data):
            break
        blocks.append((off, btype, BLOCK_HEADER_LEN + length))
        off += BLOCK_HEADER_LEN + length
    return blocks


def _read_terminal(master):
    """What a process wrote to the terminal whose master end this is, once
    every writer has closed it ("\r\n" back to "\n")."""
    chunks = []
    while True:
        try:
            chunk = os.read(master, 65536)
        except OSError:  # EIO: no writer left
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(master)
    return b"".join(chunks).decode(errors="replace").replace("\r\n", "\n")


def run_traced(argv, workdir, env=None, quiet=True, output="%p.trace", cwd=None,
               terminal=False):
    """Runs argv with the tracer.  Its traces go to a fresh directory under
    workdir (output is the MEMTRACE_OUTPUT file name in there, or None to
    leave MEMTRACE_OUTPUT unset) and are all returned, oldest first.  With
    terminal, stderr is a terminal (the tracer says where the trace went
    only to a terminal)."""
    outdir = Path(tempfile.mkdtemp(prefix="run.", dir=workdir))
    settings = {"LD_PRELOAD": str(LIB)}
    if output is not None:
        settings["MEMTRACE_OUTPUT"] = str(outdir / output)
    if quiet:
        settings["MEMTRACE_QUIET"] = "1"
    settings.update(env or {})
    rc, stdout, stderr, pid = run_capturing(argv, clean_env(**settings), cwd or outdir,
                                            terminal)
    traces = sorted(outdir.glob("*.trace"), key=lambda p: p.stat().st_mtime_ns)
    return Run(rc, stdout, stderr, pid, traces)


def run_capturing(argv, env, cwd, terminal=False, timeout=TIMEOUT):
    """Runs argv to its end: (exit status, stdout, stderr, pid), with stderr
    a terminal if asked."""
    master = slave = None
    if terminal:
        master, slave = pty.openpty()
    proc = subprocess.Popen(list(map(str, argv)), env=env, cwd=cwd, stdout=subprocess.PIPE,
                            stderr=slave if terminal else subprocess.PIPE, text=True)
    if terminal:
        os.close(slave)
    stdout, stderr = proc.communicate(timeout=timeout)
    if terminal:
        stderr = _read_terminal(master)
    return proc.returncode, stdout, stderr, proc.pid


class TracerTestCase(unittest.TestCase):
    """Base class: a scratch directory per test and the run/report helpers
    with the assertions on report figures."""

    maxDiff = None

    @classmethod
    def setUpClass(cls):
        for path in (LIB, CLI, PROGS):
            if not path.exists():
                raise AssertionError("%s is missing: build the project first "
                                     "(cmake --build build)" % path)

    def setUp(self):
        tmp = tempfile.TemporaryDirectory(prefix="memtrace-it.")
        self.addCleanup(tmp.cleanup)
        self.tmp = Path(tmp.name)

    # -- running

    def run_plain(self, argv, env=None, cwd=None):
        return subprocess.run(argv, env=clean_env(**(env or {})), cwd=cwd,
                              capture_output=True, text=True, timeout=TIMEOUT)

    def run_traced(self, argv, **kwargs):
        return run_traced(argv, self.tmp, **kwargs)

    def run_traced_ok(self, argv, expect_rc=0, traces=1, **kwargs):
        """run_traced, asserting the exit status and the number of traces."""
        run = self.run_traced(argv, **kwargs)
        self.assertEqual(run.returncode, expect_rc,
                         "%s exited %d; stderr:\n%s" % (argv, run.returncode, run.stderr))
        self.assertEqual(len(run.traces), traces,
                         "%s left traces %s" % (argv, [p.name for p in run.traces]))
        return run

    def valgrind(self, argv, expect_rc=0):
        """The single process's valgrind summary, and the program's stdout."""
        vg = run_valgrind(argv, self.tmp, expect_rc)
        self.assertEqual(list(vg.summaries), [vg.pid], "valgrind summaries: %s" % vg.summaries)
        return vg.summaries[vg.pid], vg.stdout

    def reports(self, run):
        """The reports of all the traces a run left, oldest first."""
        return [self.report_ok(t) for t in run.traces]

    def report_ok(self, trace, expect_rc=REPORT_OK):
        rc, data, stderr = report(trace)
        self.assertEqual(rc, expect_rc, "memtrace report %s: exit %d, stderr:\n%s"
                         % (trace, rc, stderr))
        self.assertIsNotNone(data, "memtrace report %s printed no JSON" % trace)
        return data

    # -- assertions on a report

    def assert_clean_end(self, rep, end_reason="exit"):
        """A trace that was finished properly and lost nothing."""
        self.assertTrue(rep["trace"]["complete"], rep["trace"])
        self.assertEqual(rep["trace"]["end_reason"], end_reason)
        self.assertEqual(rep["events"]["lost"], 0)
        for name, dom in rep["domains"].items():
            self.assertEqual(dom.get("inconsistent", 0), 0,
                             "%s: events the reporter could not place" % name)
        calls = sum(d[k] for d in rep["domains"].values()
                    for k in ("allocs", "reallocs", "frees", "failed"))
        self.assertEqual(rep["events"]["total"], calls,
                         "events.total is not the number of calls in the domains")

    def assert_live(self, dom, live_bytes, live_blocks, what):
        self.assertEqual(
            (dom["live_bytes_at_exit"], dom["live_blocks_at_exit"]),
            (live_bytes, live_blocks),
            "live (bytes, blocks) at exit differ from %s" % what)

    def assert_matches_valgrind(self, dom, vg, totals=True):
        """Live figures equal valgrind's "in use at exit"; with totals, the
        call counts agree with valgrind's "total heap usage" too (only valid
        when both runs made the same calls)."""
        self.assert_live(dom, vg.live_bytes, vg.live_blocks, "valgrind's")
        if totals:
            self.assertEqual(
                {"allocs": dom["allocs"] + dom["reallocs"],
                 "frees": dom["frees"] + dom["reallocs"],
                 "bytes": dom["bytes_allocated"]},
                {"allocs": vg.allocs, "frees": vg.frees, "bytes": vg.bytes},
                "counts differ from valgrind's total heap usage "
                "(valgrind counts a realloc as an alloc and a free)")

    def assert_counts(self, dom, expect):
        """The report's malloc-domain figures equal the program's own."""
        got = {k: dom[r] for k, r in REPORT_KEYS.items()}
        got.update(live_bytes=dom["live_bytes_at_exit"], live_blocks=dom["live_blocks_at_exit"])
        want = {k: expect[k] for k in got}
        self.assertEqual(got, want, "report figures differ from the program's own counts")

    def assert_count_differences(self, dom_a, expect_a, dom_b, expect_b):
        """For programs whose libraries allocate on their own: between two
        runs doing different amounts of work, the report's counts change
        exactly as much as the program's."""
        got = {k: dom_b[r] - dom_a[r] for k, r in REPORT_KEYS.items()}
        want = {k: expect_b[k] - expect_a[k] for k in REPORT_KEYS}
        self.assertEqual(got, want, "report counts do not grow with the program's calls")
