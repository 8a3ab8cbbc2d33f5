#!/usr/bin/env python3
"""Tracer overhead, side by side: untraced vs memtrace vs heaptrack (and
tracemalloc for Python) on allocation-heavy workloads.

Every repetition runs every mode once, in turn, so that slow drift of the
machine (thermal, other load) hits all modes alike; the table shows medians.
See bench/README.md.
"""

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
WORKLOADS = ("storm", "deep", "forks", "python", "python-idle", "python-ft", "ripgrep",
             "versions", "startup")


class Mode:
    """One way of running a workload.  `tracer` is "memtrace", "heaptrack"
    or None; its output files (`files` of them; None: any number) are
    measured after the run, a memtrace trace read by `cli` (None: the
    build's).  `stdout` is "text" (compared with the untraced run's) or
    "size" (the timed runs write it to /dev/null; a first run of each mode
    writes it to a file, and its size and exit status are compared)."""

    def __init__(self, name, argv, env=None, tracer=None, check_stdout=True, files=1,
                 cli=None, stdout="text"):
        self.name, self.argv, self.env, self.tracer = name, argv, env or {}, tracer
        self.check_stdout, self.files, self.cli, self.stdout = check_stdout, files, cli, stdout
        self.times, self.cpus, self.sizes = [], [], []
        self.events = None


def real_python():
    """The interpreter `python3` on PATH really is.  pyenv's python3 is a
    shell script that execs it; tracing the script would trace the shell
    (heaptrack does not follow the exec at all)."""
    out = subprocess.run(["python3", "-c", "import sys; print(sys.executable)"],
                         capture_output=True, text=True, check=True)
    return out.stdout.strip()


def built_pythons():
    """CPython 3.13 and 3.13t, if scripts/pythons.sh has built them."""
    out = subprocess.run([str(REPO / "scripts" / "pythons.sh"), "--cached"],
                         capture_output=True, text=True)
    return out.stdout.split() if out.returncode == 0 else []


def memtrace_events(cli, trace):
    out = subprocess.run([str(cli), "report", "--format", "json", str(trace)],
                         capture_output=True, text=True)
    if out.returncode not in (0, 3):
        raise RuntimeError("memtrace report %s: %s" % (trace, out.stderr.strip()))
    return json.loads(out.stdout)["events"]["total"]


def children_cpu():
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_once(mode, workdir, cli, expected_stdout, stdout_file=None):
    """Runs a mode once; records its wall time, the CPU time of its
    processes and threads (user + system: on a loaded machine it moves
    less than the wall time) and its output's size.  Returns what the
    program printed: its text, or for a "size" mode the size of what it
    wrote to `stdout_file` (None: to /dev/null)."""
    outdir = Path(tempfile.mkdtemp(dir=workdir))
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("MEMTRACE_") and k not in ("LD_PRELOAD", "PYTHONMALLOC")}
    env.update(mode.env)
    argv = list(mode.argv)
    if mode.tracer == "memtrace":
        env["MEMTRACE_OUTPUT"] = str(outdir / "run.%p.trace")
        env["MEMTRACE_QUIET"] = "1"
    elif mode.tracer == "heaptrack":
        argv = ["heaptrack", "-o", str(outdir / "run")] + argv

    sink = subprocess.PIPE
    if mode.stdout == "size":
        sink = open(stdout_file, "w") if stdout_file else subprocess.DEVNULL
    start, cpu = time.perf_counter(), children_cpu()
    proc = subprocess.run(argv, env=env, stdout=sink, stderr=subprocess.PIPE, text=True)
    mode.times.append(time.perf_counter() - start)
    mode.cpus.append(children_cpu() - cpu)
    if proc.returncode != 0:
        sys.exit("%s failed (exit %d):\n%s" % (mode.name, proc.returncode, proc.stderr))
    printed = proc.stdout
    if mode.stdout == "size":
        printed = None
        if stdout_file:
            sink.close()
            printed = Path(stdout_file).stat().st_size
    if (mode.check_stdout and expected_stdout is not None and printed is not None
            and printed != expected_stdout):
        sys.exit("%s: output differs from the untraced run:\n%s" % (mode.name, printed))

    files = [p for p in outdir.iterdir() if p.is_file()]
    if mode.tracer:
        if mode.files is not None and len(files) != mode.files:
            sys.exit("%s left %d files, expected %d" % (mode.name, len(files), mode.files))
        mode.sizes.append(sum(p.stat().st_size for p in files))
        if mode.tracer == "memtrace" and mode.events is None and mode.files == 1:
            mode.events = memtrace_events(mode.cli or cli, files[0])
    shutil.rmtree(outdir)
    return printed


def measure(workload, modes, reps, workdir, cli):
    print("%s: %d repetitions of %d modes ..." % (workload, reps, len(modes)),
          file=sys.stderr, flush=True)
    if modes[0].stdout == "size":
        # each mode once with its output in a file, checked against the
        # untraced run's size; not timed
        stdout_file = Path(workdir) / "stdout"
        expected = run_once(modes[0], workdir, cli, None, stdout_file)
        for mode in modes:
            run_once(mode, workdir, cli, expected, stdout_file)
            mode.times.clear(), mode.cpus.clear(), mode.sizes.clear()
        expected = None
    else:
        expected = run_once(modes[0], workdir, cli, None)  # warm-up, and the reference output
    modes[0].times.clear()
    modes[0].cpus.clear()
    for _ in range(reps):
        for mode in modes:
            run_once(mode, workdir, cli, expected)


def reporter_speed(builds, workload, workdir):
    """For each (name, cli, lib) of `builds`: (name, events, seconds, CPU
    seconds) for its `memtrace report` to read its tracer's trace of the
    Python workload, best of three, the builds' reads in turn."""
    outdir = Path(tempfile.mkdtemp(dir=workdir))
    traces = []
    for i, (_, _, lib) in enumerate(builds):
        trace = outdir / ("t%d.trace" % i)
        env = dict(os.environ, LD_PRELOAD=str(lib), MEMTRACE_QUIET="1",
                   MEMTRACE_OUTPUT=str(trace))
        subprocess.run(workload, env=env, stdout=subprocess.DEVNULL, check=True)
        traces.append(trace)
    best = [[None, None, None] for _ in builds]
    for _ in range(3):
        for (_, cli, _), trace, b in zip(builds, traces, best):
            start, cpu = time.perf_counter(), children_cpu()
            b[0] = memtrace_events(cli, trace)
            elapsed, cpu = time.perf_counter() - start, children_cpu() - cpu
            b[1] = elapsed if b[1] is None else min(b[1], elapsed)
            b[2] = cpu if b[2] is None else min(b[2], cpu)
    shutil.rmtree(outdir)
    return [(name, *b) for (name, _, _), b in zip(builds, best)]


def fmt_size(n):
    return "%.1f MB" % (n / 1e6) if n >= 1e5 else "%.1f kB" % (n / 1e3)


def print_table(results):
    header = ("workload", "mode", "median s", "vs untraced", "cpu s", "cpu vs untraced",
              "output", "bytes/event", "events")
    rows = []
    for workload, modes in results:
        base = statistics.median(modes[0].times)
        base_cpu = statistics.median(modes[0].cpus)
        for mode in modes:
            t, cpu = statistics.median(mode.times), statistics.median(mode.cpus)
            size = statistics.median(mode.sizes) if mode.sizes else None
            rows.append((
                workload, mode.name, "%.3f" % t, "%.2fx" % (t / base),
                "%.3f" % cpu, "%.2fx" % (cpu / base_cpu),
                fmt_size(size) if size is not None else "-",
                "%.2f" % (size / mode.events) if size and mode.events else "-",
                "{:,}".format(mode.events) if mode.events else "-"))
    widths = [max(len(r[i]) for r in rows + [header]) for i in range(len(header))]
    line = "  ".join("%%-%ds" % w for w in widths)
    for row in [header, tuple("-" * w for w in widths)] + rows:
        print((line % row).rstrip())


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=5, help="repetitions per mode (default 5)")
    ap.add_argument("--build", type=Path, default=REPO / "build",
                    help="build directory (default: build/ in the repository)")
    ap.add_argument("--threads", type=int, default=4, help="storm threads (default 4)")
    ap.add_argument("--iterations", type=int, default=1_500_000,
                    help="storm malloc/free pairs per thread (default 1500000)")
    ap.add_argument("--depth", type=int, default=40, help="deep's call depth (default 40)")
    ap.add_argument("--only", nargs="+", choices=WORKLOADS, metavar="WORKLOAD",
                    help="run these workloads only: %s" % ", ".join(WORKLOADS))
    ap.add_argument("--no-heaptrack", action="store_true", help="skip heaptrack")
    ap.add_argument("--lean", action="store_true",
                    help="only the untraced run, memtrace (and --baseline's) and heaptrack")
    ap.add_argument("--baseline", type=Path,
                    help="another build directory whose memtrace runs beside this one's")
    args = ap.parse_args()
    only = set(args.only or WORKLOADS)

    lib = (args.build / "libmemtrace.so").resolve()
    cli = (args.build / "memtrace").resolve()
    base_lib = base_cli = None
    if args.baseline:
        base_lib = (args.baseline / "libmemtrace.so").resolve()
        base_cli = (args.baseline / "memtrace").resolve()
        for path in (base_lib, base_cli):
            if not path.exists():
                sys.exit("%s is missing: build the baseline first" % path)
    storm_bin = (args.build / "bench" / "storm").resolve()
    deep_bin = (args.build / "bench" / "deep").resolve()
    forks_bin = (args.build / "bench" / "forks").resolve()
    needed = [lib, cli] + [path for name, path in (("storm", storm_bin), ("deep", deep_bin),
                                                   ("forks", forks_bin)) if name in only]
    for path in needed:
        if not path.exists():
            sys.exit("%s is missing: build the project first (cmake --build %s)"
                     % (path, args.build))
    heaptrack = None if args.no_heaptrack else shutil.which("heaptrack")
    if heaptrack is None and not args.no_heaptrack:
        print("heaptrack is not installed: its rows are skipped", file=sys.stderr)
    preload = {"LD_PRELOAD": str(lib)}
    no_samples = {**preload, "MEMTRACE_RSS_MS": "0"}  # what sampling the OS's view costs
    native = {"MEMTRACE_NATIVE": "1"}
    # the same stacks, all of them walked by libunwind (see README: Native stacks)
    native_lu = {**native, "MEMTRACE_NATIVE_UNWIND": "libunwind"}

    def traced(argv, env=None, stdout="text"):
        """memtrace's run of a workload, and the baseline build's beside it."""
        modes = [Mode("memtrace", argv, {**preload, **(env or {})}, tracer="memtrace",
                      stdout=stdout)]
        if base_lib:
            modes.append(Mode("memtrace, baseline", argv,
                              {"LD_PRELOAD": str(base_lib), **(env or {})},
                              tracer="memtrace", cli=base_cli, stdout=stdout))
        return modes

    def python_modes(py, env=None, variants=(), with_heaptrack=True):
        """A Python workload: untraced, memtrace with `env`, the `variants`
        (name, env) unless --lean, and heaptrack, which sees pymalloc's
        objects only with PYTHONMALLOC=malloc, beside that setting's own
        untraced run."""
        modes = [Mode("untraced", py)] + traced(py, env)
        if not args.lean:
            modes += [Mode(name, py, {**preload, **v}, tracer="memtrace") for name, v in variants]
        if heaptrack and with_heaptrack:
            sysmalloc = {"PYTHONMALLOC": "malloc"}
            modes += [Mode("untraced, PYTHONMALLOC=malloc", py, sysmalloc),
                      Mode("heaptrack, PYTHONMALLOC=malloc", py, sysmalloc,
                           tracer="heaptrack", check_stdout=False)]
        return modes

    results = []
    workdir = tempfile.mkdtemp(prefix="memtrace-bench.")
    try:
        def c_modes(argv):
            modes = [Mode("untraced", argv)] + traced(argv)
            if not args.lean:
                modes += [Mode("memtrace, no RSS samples", argv, no_samples, tracer="memtrace"),
                          Mode("memtrace, native stacks", argv, {**preload, **native},
                               tracer="memtrace"),
                          Mode("memtrace, native, libunwind", argv, {**preload, **native_lu},
                               tracer="memtrace")]
            if heaptrack:
                modes.append(Mode("heaptrack", argv, tracer="heaptrack", check_stdout=False))
            return modes

        if "storm" in only:
            modes = c_modes([str(storm_bin), str(args.threads), str(args.iterations)])
            measure("storm", modes, args.reps, workdir, cli)
            results.append(("storm %dx%d" % (args.threads, args.iterations), modes))

        if "deep" in only:
            modes = c_modes([str(deep_bin), str(args.depth), "2000000"])
            measure("deep", modes, args.reps, workdir, cli)
            results.append(("deep %dx2000000" % args.depth, modes))

        if "forks" in only:
            # every fork stops the writer thread, which starts again later
            argv = [str(forks_bin), "200", "1000"]
            modes = [Mode("untraced", argv),
                     Mode("memtrace", argv, preload, tracer="memtrace", files=201)]
            measure("forks", modes, args.reps, workdir, cli)
            results.append(("forks 200x1000", modes))

        if "python" in only:
            py = [real_python(), str(BENCH / "alloc_heavy.py")]
            sysmalloc = {"PYTHONMALLOC": "malloc"}
            modes = python_modes(py, variants=[
                ("memtrace, no RSS samples", no_samples),
                ("memtrace, no Python lines", {"MEMTRACE_PY_DEPTH": "0"}),
                ("memtrace, native stacks", native),
                ("memtrace, native, libunwind", native_lu),
                ("memtrace, PYTHONMALLOC=malloc", sysmalloc)])
            if not args.lean:
                modes.append(Mode("tracemalloc, 1 frame",
                                  [py[0], "-X", "tracemalloc=1", py[1]]))
            measure("python", modes, args.reps, workdir, cli)
            results.append(("alloc_heavy.py", modes))

        if "python-idle" in only:
            # one thread works, another waits on an Event from before the
            # work starts to its end
            py = [real_python(), str(BENCH / "alloc_heavy.py"), "--idle"]
            modes = python_modes(py, variants=[
                ("memtrace, no Python lines", {"MEMTRACE_PY_DEPTH": "0"})])
            measure("python-idle", modes, args.reps, workdir, cli)
            results.append(("alloc_heavy.py --idle", modes))

        if "python-ft" in only:
            # the free-threaded build: two threads in parallel, sizes only.
            # No heaptrack: this build's objects come from mimalloc's own
            # mappings, and it refuses PYTHONMALLOC=malloc
            ft = [exe for exe in built_pythons() if exe.endswith("t")]
            if not ft:
                sys.exit("python-ft needs CPython 3.13t: run scripts/pythons.sh")
            py = [ft[0], str(BENCH / "alloc_heavy.py"), "200000", "2"]
            modes = python_modes(py, {"MEMTRACE_PY_DEPTH": "0"},
                                 variants=[("memtrace, Python lines", {})],
                                 with_heaptrack=False)
            measure("python-ft", modes, args.reps, workdir, cli)
            results.append(("alloc_heavy.py 200000 2, 3.13t, sizes only", modes))

        if "ripgrep" in only:
            # a real multi-threaded program; what it prints (in an order
            # that varies from run to run) goes to /dev/null
            rg = shutil.which("rg")
            if rg is None:
                sys.exit("ripgrep is missing: scripts/install-deps.sh --test installs it")
            argv = [rg, "-j2", "alloc", "/usr/share/doc", "/usr/include"]
            modes = [Mode("untraced", argv, stdout="size")] + traced(argv, stdout="size")
            if heaptrack:
                modes.append(Mode("heaptrack", argv, tracer="heaptrack", stdout="size",
                                  check_stdout=False))
            measure("ripgrep", modes, args.reps, workdir, cli)
            results.append(("rg -j2 alloc /usr/share/doc /usr/include", modes))

        if "versions" in only:
            # Python lines on every CPython here, each against its own
            # untraced run; the free-threaded one also with 4 threads
            for exe in [real_python()] + built_pythons():
                version = subprocess.run([exe, "-c", "import sys; print(sys.version.split()[0] "
                                          "+ ('t' if not sys._is_gil_enabled() else '') "
                                          "if hasattr(sys, '_is_gil_enabled') else "
                                          "sys.version.split()[0])"],
                                         capture_output=True, text=True).stdout.strip()
                runs = [("", [])]
                if version.endswith("t"):
                    runs.append((", 4 threads", ["200000", "4"]))
                for suffix, extra in runs:
                    py = [exe, str(BENCH / "alloc_heavy.py"), *extra]
                    modes = [Mode("untraced", py),
                             Mode("memtrace", py, preload, tracer="memtrace"),
                             Mode("memtrace, no Python lines", py,
                                  {**preload, "MEMTRACE_PY_DEPTH": "0"}, tracer="memtrace")]
                    name = "alloc_heavy.py, %s%s" % (version, suffix)
                    measure(name, modes, args.reps, workdir, cli)
                    results.append((name, modes))

        if "startup" in only:
            # a shell starting 200 short programs: what a process pays for
            # the tracer's check when MEMTRACE_ONLY leaves it untraced
            loop = ["bash", "-c", "for i in $(seq 200); do /bin/true; done"]
            modes = [Mode("untraced", loop),
                     Mode("memtrace, MEMTRACE_ONLY not matching", loop,
                          {**preload, "MEMTRACE_ONLY": "no-such-program"}, tracer="memtrace",
                          files=0),
                     Mode("memtrace, every process", loop, preload, tracer="memtrace",
                          files=None)]
            measure("startup", modes, args.reps, workdir, cli)
            results.append(("200 x /bin/true", modes))

        speeds = []
        if "python" in only:
            builds = [("memtrace", cli, lib)]
            if base_lib:
                builds.append(("memtrace, baseline", base_cli, base_lib))
            speeds = reporter_speed(builds, [real_python(), str(BENCH / "alloc_heavy.py")],
                                    workdir)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)

    print()
    print_table(results)
    for name, events, secs, cpu in speeds:
        print("\n%s report: %.1f million events/s (%s events of the Python trace in %.2f s,"
              " %.2f s CPU)" % (name, events / secs / 1e6, "{:,}".format(events), secs, cpu),
              end="")
    print()


if __name__ == "__main__":
    main()
