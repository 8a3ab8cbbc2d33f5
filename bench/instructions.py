#!/usr/bin/env python3
"""Instructions per event, by thread and by phase: the benchmarks' workloads
(smaller) under callgrind, untraced and traced.

Counts repeat exactly where wall times on a shared machine do not.  Each
workload runs under `valgrind --tool=callgrind --separate-threads=yes`, once
untraced and once with the tracer (LD_PRELOAD in valgrind's own
environment, so the program valgrind starts gets it), and each thread's
instructions are summed by function.  A thread that starts in the tracer's
library is the tracer's (its writer); every other is the program's.
Events are `events.total` of the run's trace.  See bench/README.md.
"""

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections import defaultdict
from pathlib import Path

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
sys.path.insert(0, str(BENCH))
from bench import built_pythons, memtrace_events, real_python  # noqa: E402

# Phases.  A cost counts for the function whose source lines it comes
# from, inlined or not (callgrind gives each cost its file and line; the
# function around that line is read from the source), and the first rule
# whose name pattern matches that function's name, or else whose file
# pattern matches the file, gives its phase.  Only code in the tracer's own
# library is attributed to a phase.
PROGRAM_PHASES = [
    ("time stamp", r"clock_stamp|^stamp", r"preload/tracer\.h$"),
    ("epoch", r"epoch", None),
    ("thread lookup", r"^mt_thread_|^mt_internal_|^mt_threads?_", r"preload/threads\.[ch]$"),
    ("ring", r"^mt_ring_|^mt_record|kick|ring", r"preload/(record|ring)\.[ch]$"),
    ("Python hooks", r"^(hook|arena)_", r"preload/pyshim\.c$"),
    ("Python frames", r"pyframes|pyobj|pydesc|idmap|meta|^(node_id|stack_node|script_|tracing_|"
     r"locate|find)", r"preload/(pyframes|pyobj|pydesc|idmap|meta)\.[ch]$"),
    ("native stacks", r"native|unwind", r"preload/(native|unwind)\.[ch]$"),
    ("wrappers", None, r"preload/interpose\.c$"),
    # what the writer would do, done by the program's thread (the last
    # round, at exit)
    ("writer's work", r"^(ZSTD|HUF|FSE|HIST|XXH)|merge|drain|held|^put_|enc|^seg_|write",
     r"zstd|/lib/(compress|common)/|common/codec\.c$|preload/writer\.c$"),
]
WRITER_PHASES = [
    ("ordering", r"merge|held|barrier|horizon|order|epoch|heads|cursor|busy", None),
    ("definitions", r"meta|definition", r"preload/meta\.c$"),
    ("encoding", r"enc|^put_|flush_events|^seg_|switch_thread|^room$|thread",
     r"common/codec\.c$"),
    ("compression", r"^(ZSTD|HUF|FSE|HIST|XXH)|compress", r"zstd|/lib/(compress|common)/"),
    ("writing", r"write", None),
    ("sampling", r"sampl|resident|counters|own", r"preload/(sampler|ownmem)\.c$"),
    ("the round itself", r"drain|round|writer_main|sleep|kick", None),
]
# libc's own functions the writer calls, by name
WRITER_LIBC = [("writing", r"^(__libc_)?(write|pwrite64|writev|fsync|fdatasync)$"),
               ("ordering", r"membarrier|^syscall$")]


class Profile:
    """Self instructions of one thread, by (object, function, source file,
    line)."""

    def __init__(self):
        self.cost = defaultdict(int)
        self.total = 0
        self.roots = set()  # objects of the functions start_thread calls


def parse_process(files):
    """Parses the per-thread callgrind files of one process, in thread
    order: name compression runs on from one file to the next."""
    names = {"ob": {}, "fl": {}, "fn": {}}
    kinds = {"ob": "ob", "cob": "ob", "fl": "fl", "fi": "fl", "fe": "fl", "cfi": "fl",
             "cfl": "fl", "fn": "fn", "cfn": "fn"}
    out = []
    for path in files:
        prof = Profile()
        ob = fl = fn = cur_file = cob = None
        last = 0
        skip_next = False
        in_start_thread = False
        for line in open(path, errors="replace"):
            line = line.rstrip("\n")
            if not line:
                continue
            c = line[0]
            if c.isdigit() or c in "+-*":
                parts = line.split()
                pos = parts[0]
                last = (last + int(pos) if pos[0] in "+-" else last if pos == "*"
                        else int(pos))
                if skip_next:  # the inclusive cost of a call
                    skip_next = False
                    continue
                if len(parts) > 1:
                    ir = int(parts[1])
                    prof.cost[(ob, fn, cur_file, last)] += ir
                    prof.total += ir
                continue
            key, _, value = line.partition("=")
            if key in kinds:
                m = re.match(r"\((\d+)\)(?: (.*))?$", value)
                table = names[kinds[key]]
                if m:
                    if m.group(2) is not None:
                        table[m.group(1)] = m.group(2)
                    value = table.get(m.group(1), "?")
                if key == "ob":
                    ob = value
                elif key == "fl":
                    fl = cur_file = value
                elif key in ("fi", "fe"):
                    cur_file = value
                elif key == "fn":
                    fn, cur_file = value, fl
                    in_start_thread = value == "start_thread"
                    cob = None
                elif key == "cob":
                    cob = value
                elif key == "cfn" and in_start_thread:
                    prof.roots.add(cob or ob)
            elif key == "calls":
                skip_next = True
                cob = None
        out.append(prof)
    return out


class Sources:
    """The function around a line of a C source file: the project's style
    opens a function's body with a "{" alone on its line, after the
    signature, and closes it with "}" alone."""

    def __init__(self):
        self.files = {}

    def function_at(self, path, line):
        spans = self.files.get(path)
        if spans is None:
            spans = self.files[path] = self._spans(path)
        for first, last, name in spans:
            if first <= line <= last:
                return name
        return None

    @staticmethod
    def _spans(path):
        try:
            lines = Path(path).read_text(errors="replace").splitlines()
        except OSError:
            return []
        spans = []
        for i, text in enumerate(lines):
            if text != "{":
                continue
            head = []
            for j in range(i - 1, max(i - 5, -1), -1):
                t = lines[j].strip()
                if not t or t.endswith((";", "}", "*/")) or t.startswith("#"):
                    break
                head.insert(0, t)
            called = [n for n in re.findall(r"(\w+)\s*\(", " ".join(head))
                      if not n.startswith("__")]
            end = next((k for k in range(i + 1, len(lines)) if lines[k] == "}"), len(lines))
            if called:
                spans.append((i - len(head) + 1, end + 1, called[0]))
        return spans


SOURCES = Sources()


def classify(ob, fn, src, line, phases, lib_name):
    """(phase, function) of a cost; phase None outside the tracer."""
    if ob is None or not ob.endswith(lib_name):
        return None, fn
    inner = (SOURCES.function_at(src, line) if src else None) or fn
    for name, name_re, file_re in phases:
        if name_re and re.search(name_re, inner):
            return name, inner
    for name, name_re, file_re in phases:
        if file_re and src and re.search(file_re, src):
            return name, inner
    return "other", inner


def by_phase(profiles, phases, lib_name, libc_rules=()):
    """Instructions of these threads: in the tracer's library by phase,
    libc functions named in `libc_rules` by phase, and the rest; and the
    tracer's functions (inlined ones apart) by cost, with the functions
    outside it in parentheses when `libc_rules` are given."""
    sums = defaultdict(int)
    top = defaultdict(int)
    for prof in profiles:
        for (ob, fn, src, line), ir in prof.cost.items():
            phase, inner = classify(ob, fn, src, line, phases, lib_name)
            if phase is not None:
                top[inner] += ir
            elif libc_rules:
                top["(%s)" % fn] += ir
                for name, fn_re in libc_rules:
                    if fn and re.search(fn_re, fn):
                        phase = name
                        break
            sums[phase or "outside the tracer"] += ir
    return sums, top


def run_callgrind(argv, outdir, lib, extra_env):
    """Runs argv under callgrind, traced by `lib` unless it is None;
    returns (profiles of its threads, trace file or None, valgrind's
    stderr, exit status)."""
    outdir.mkdir(parents=True, exist_ok=True)
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("MEMTRACE_") and k not in ("LD_PRELOAD", "PYTHONMALLOC")}
    env.update(extra_env)
    if lib:
        # valgrind's launcher is a shell script: trace only the program
        env.update(LD_PRELOAD=str(lib), MEMTRACE_QUIET="1",
                   MEMTRACE_OUTPUT=str(outdir / "run.trace"),
                   MEMTRACE_ONLY=Path(os.path.realpath(shutil.which(argv[0]))).name)
    proc = subprocess.run(["valgrind", "--tool=callgrind", "--separate-threads=yes",
                           "--callgrind-out-file=%s" % (outdir / "cg.%p")] + argv,
                          env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                          text=True)
    files = sorted(outdir.glob("cg.*-*"), key=lambda p: int(p.name.rsplit("-", 1)[1]))
    traces = sorted(outdir.glob("*.trace"))
    return parse_process(files), (traces[0] if traces else None), proc.stderr, proc.returncode


def failure(stderr, rc):
    """What stopped a run under callgrind, in one line."""
    m = re.search(r"unhandled instruction bytes: ([0-9A-Fa-fx ]+)", stderr)
    if m:
        return "valgrind: unhandled instruction %s (exit %d)" % (m.group(1).strip(), rc)
    tail = [l for l in stderr.splitlines() if l.strip("= 0123456789")]
    return "exit %d: %s" % (rc, tail[-1] if tail else "")


def measure(name, argv, env, builds, workdir):
    """One workload: untraced, then with each build's tracer."""
    print("%s: callgrind, untraced ..." % name, file=sys.stderr, flush=True)
    base, _, err, rc = run_callgrind(argv, workdir / name / "untraced", None, env)
    if rc != 0:
        return {"workload": name, "argv": argv, "error": "untraced: " + failure(err, rc)}
    base_ir = sum(p.total for p in base)
    result = {"workload": name, "argv": argv, "untraced": base_ir, "builds": []}
    for label, build in builds:
        print("%s: callgrind, %s ..." % (name, label), file=sys.stderr, flush=True)
        lib = build / "libmemtrace.so"
        profs, trace, err, rc = run_callgrind(argv, workdir / name / label, lib.resolve(), env)
        row = {"build": label}
        result["builds"].append(row)
        if rc != 0 or trace is None:
            row["error"] = failure(err, rc) if rc != 0 else "no trace written"
            continue
        events = memtrace_events(build / "memtrace", trace)
        writer = [p for p in profs if any(r and r.endswith(lib.name) for r in p.roots)]
        program = [p for p in profs if p not in writer]
        prog_ir = sum(p.total for p in program)
        prog_phases, prog_top = by_phase(program, PROGRAM_PHASES, lib.name)
        # the program's own code and libc: what it costs beyond the untraced run
        prog_phases["outside, over untraced"] = prog_phases.pop("outside the tracer", 0) - base_ir
        writer_phases, writer_top = by_phase(writer, WRITER_PHASES, lib.name, WRITER_LIBC)
        row.update(events=events, trace_bytes=trace.stat().st_size,
                   program_threads=len(program), program=prog_ir,
                   program_extra=prog_ir - base_ir,
                   program_phases=dict(prog_phases), program_top=top_n(prog_top),
                   writer_threads=len(writer), writer=sum(p.total for p in writer),
                   writer_phases=dict(writer_phases), writer_top=top_n(writer_top))
    return result


def top_n(costs, n=8):
    return sorted(costs.items(), key=lambda kv: -kv[1])[:n]


def print_result(r):
    print("\n## %s: %s" % (r["workload"], " ".join(Path(a).name if a.startswith("/") and
                                                  Path(a).is_file() else a for a in r["argv"])))
    if "error" in r:
        print("  %s" % r["error"])
        return
    print("  untraced: {:,} instructions".format(r["untraced"]))
    for b in r["builds"]:
        if "error" in b:
            print("  %s: %s" % (b["build"], b["error"]))
            continue
        ev = b["events"]
        print("  {}: {:,} events, {:.2f} bytes/event".format(b["build"], ev,
                                                           b["trace_bytes"] / ev))
        print("    program's threads ({}): {:.1f} instructions/event over the untraced run"
              " ({:,} in all)".format(b["program_threads"], b["program_extra"] / ev,
                                      b["program"]))
        print_phases(b["program_phases"], ev)
        print("      top: " + ", ".join("%s %.1f" % (fn, ir / ev) for fn, ir in b["program_top"]))
        print("    writer ({} thread): {:.1f} instructions/event".format(
            b["writer_threads"], b["writer"] / ev))
        print_phases(b["writer_phases"], ev)
        print("      top: " + ", ".join("%s %.1f" % (fn, ir / ev) for fn, ir in b["writer_top"]))


def print_phases(phases, events):
    for name, ir in sorted(phases.items(), key=lambda kv: -kv[1]):
        print("      %-20s %8.1f" % (name, ir / events))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--build", type=Path, default=REPO / "build",
                    help="build directory (default: build/ in the repository)")
    ap.add_argument("--baseline", type=Path, help="another build directory, counted beside it")
    ap.add_argument("--only", nargs="+", choices=WORKLOADS, metavar="WORKLOAD",
                    help="these workloads only: %s" % ", ".join(WORKLOADS))
    ap.add_argument("--json", type=Path, help="also write the figures to this file")
    args = ap.parse_args()

    builds = [("memtrace", args.build)]
    if args.baseline:
        builds.append(("baseline", args.baseline))
    storm = (args.build / "bench" / "storm").resolve()
    for _, build in builds:
        for path in (build / "libmemtrace.so", build / "memtrace"):
            if not path.exists():
                sys.exit("%s is missing: build the project first" % path)
    alloc_heavy = str(BENCH / "alloc_heavy.py")
    workloads = {
        "storm": ([str(storm), "4", "100000"], {}),
        "storm-1": ([str(storm), "0", "200000"], {}),
        "python": ([real_python(), alloc_heavy, "20000"], {"PYTHONHASHSEED": "0"}),
        "python-idle": ([real_python(), alloc_heavy, "--idle", "20000"],
                        {"PYTHONHASHSEED": "0"}),
        "ripgrep": ([shutil.which("rg") or "rg", "-j2", "alloc", "/usr/include"], {}),
    }
    ft = [exe for exe in built_pythons() if exe.endswith("t")]
    if ft:
        workloads["python-ft"] = ([ft[0], alloc_heavy, "20000", "2"],
                                  {"MEMTRACE_PY_DEPTH": "0", "PYTHONHASHSEED": "0"})
    results = []
    workdir = Path(tempfile.mkdtemp(prefix="memtrace-instructions."))
    try:
        for name in args.only or WORKLOADS:
            if name not in workloads:
                print("%s: skipped (CPython 3.13t is not built)" % name, file=sys.stderr)
                continue
            argv, env = workloads[name]
            results.append(measure(name, argv, env, builds, workdir))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    for r in results:
        print_result(r)
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))


WORKLOADS = ("storm", "storm-1", "python", "python-idle", "python-ft", "ripgrep")

if __name__ == "__main__":
    main()
