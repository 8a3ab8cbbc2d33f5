#!/usr/bin/env python3
"""Runs the six labs under memtrace with every CPython on the machine and
writes reports/labN.{txt,html,json}, then prints a one-screen overview.

Each lab's headline figures are read from its JSON report, step by step
(the labs mark their steps), never typed in: if the tracer or the reporter
got something wrong, the figures here show it.  The seed's own scripts
(labs/seed/, verbatim, no marks) are run too and reported from the
line-by-line view alone, into reports/seed/ (see seed_labs.py).

    labs/run_labs.py [--build DIR] [--out DIR] [--python PY ...]
"""

import argparse
import json
import shutil
import subprocess
import sys
from pathlib import Path

import seed_labs

LABS = Path(__file__).resolve().parent
REPO = LABS.parent
CLASS = 16  # pymalloc size classes are multiples of 16 bytes


def interpreters(extra):
    """Debian's /usr/bin/python3 and the real interpreter behind `python3`
    on PATH (pyenv's `python3` is a shell script), without duplicates."""
    found = []
    for cand in list(extra) + ["/usr/bin/python3", shutil.which("python3")]:
        if not cand:
            continue
        out = subprocess.run([cand, "-c", "import sys, platform; print(sys.executable);"
                              "print(platform.python_version())"],
                             capture_output=True, text=True)
        if out.returncode != 0:
            continue
        exe, version = out.stdout.split()
        if exe not in [f[0] for f in found]:
            found.append((exe, version))
    return found


# ---- reading a report ------------------------------------------------------

def steps(rep):
    """{label: step} for the marked steps (the first of equal labels)."""
    result = {}
    for step in rep["marks"]:
        result.setdefault(step["label"], step)
    return result


def obj_allocs(step):
    return step["by_domain"]["pymem_obj"]["allocs"]


def classes(step):
    """{size class: allocations} of the step's PyObject/PyMem blocks."""
    return {c["size"]: c["allocs"] for c in step["size_classes"] if c["allocs"]}


def list_site(rep, lab, line_text):
    """The list-growth site at the lab's line containing line_text."""
    source = (LABS / lab).read_text().splitlines()
    lines = [i + 1 for i, text in enumerate(source) if line_text in text]
    for site in rep["lists"]["sites"]:
        if site["file"].endswith(lab) and site["line"] in lines:
            return site
    return None


def n(x):
    return "{:,}".format(x)


# ---- the labs ----------------------------------------------------------------
# Each returns (headline figures, one-line finding, explanation paragraphs).

def lab1(rep):
    s = steps(rep)
    small, const = obj_allocs(s["small ints"]), obj_allocs(s["big ints, constants"])
    runtime = s["big ints, built at run time"]
    figures = {"small_int_objects": small, "constant_objects": const,
               "runtime_objects": obj_allocs(runtime), "runtime_classes": classes(runtime)}
    size = ", ".join("%s in the %d-byte class" % (n(c), k)
                     for k, c in sorted(figures["runtime_classes"].items()))
    finding = ("100 twice: %d int objects; 9999 as constants: %d; int('9999') twice: %s"
               % (small, const, size or "none"))
    explain = [
        "CPython keeps one object for every int from -5 to 256, so `a = 100; b = 100` binds "
        "both names to the same preallocated object: the trace shows %d allocations in that "
        "step." % small,
        "The usual explanation stops there and says large ints are always separate objects. "
        "They are not: `a = 9999; b = 9999` in one code object loads the same constant twice, "
        "and the trace shows %d allocations. Only ints made at run time are new objects: two "
        "calls to int('9999') allocate %s, each %s bytes of object data rounded up to a "
        "pymalloc size class." % (const, n(obj_allocs(runtime)),
                                  "28" if 32 in figures["runtime_classes"] else "?"),
    ]
    return figures, finding, explain


def lab2(rep):
    step = steps(rep)["bind a second name"]
    figures = {"allocs": step["allocs"], "frees": step["frees"]}
    finding = "binding a second name: %d allocations, %d frees" % (step["allocs"], step["frees"])
    explain = [
        "Binding a second name to an object increments its reference count; the program "
        "prints sys.getrefcount before and after (the call itself holds one more reference "
        "while it runs, which is why it reads one higher than the number of names).",
        "The trace shows that the binding step made %d allocations in any allocator domain: "
        "a new reference is not a new object, and not even a new pointer slot on the heap, "
        "since the module's namespace already had the name." % step["allocs"],
    ]
    return figures, finding, explain


def lab3(rep):
    s = steps(rep)
    small, big = s["small int plus one"], s["big int plus one"]
    append, grow = s["append to a list"], s["grow a string"]
    site = list_site(rep, "lab3.py", "servers.append")
    figures = {"small_int_objects": obj_allocs(small), "big_int_objects": obj_allocs(big),
               "big_int_classes": classes(big), "append_allocs": append["allocs"],
               "append_resizes": append["list_resizes"],
               "append_chain": site["chain"] if site else [],
               "append_slack_slots": site["slack_slots"] if site else None,
               "string_obj_allocs": obj_allocs(grow),
               "string_raw_allocs": grow["by_domain"]["pymem_raw"]["allocs"]}
    chain = " -> ".join(str(c) for c in figures["append_chain"])
    finding = ("x+1 on 100: %d objects, on 1000: %d; append: %d allocation, %d resize "
               "(capacity %s)" % (figures["small_int_objects"], figures["big_int_objects"],
                                  append["allocs"], append["list_resizes"], chain))
    explain = [
        "`x = x + 1` with x = 100 gives 101, itself one of the cached small ints: the id "
        "changes, yet the trace shows %d allocations. With 1000 the result 1001 is a new "
        "object: %d allocation(s) (%s)." % (
            figures["small_int_objects"], figures["big_int_objects"],
            ", ".join("%d-byte class" % k for k in sorted(figures["big_int_classes"]))),
        "Appending to the list keeps its id because the list object never moves: the "
        "append step made %d new objects and resized only the separate item buffer, "
        "%d time(s), with capacities %s; %s slot(s) of slack are left for the next "
        "appends." % (append["allocs"], append["list_resizes"], chain or "(none seen)",
                      figures["append_slack_slots"]),
        "`s = s + 'x'` looks like it builds a new string every time. CPython resizes the "
        "string in place when nothing else refers to it; the trace shows %s PyObject "
        "allocator calls for 2,000 steps, and once the string outgrows pymalloc's 512 "
        "bytes, %s calls that reach the raw allocator (realloc of a malloc'd block)."
        % (n(figures["string_obj_allocs"]), n(figures["string_raw_allocs"])),
    ]
    return figures, finding, explain


def lab4(rep):
    s = steps(rep)
    alias, shallow, deep = s["alias"], s["slice copy"], s["deep copy"]
    append = s["append through the original"]
    figures = {"alias_allocs": alias["allocs"], "slice_allocs": shallow["allocs"],
               "slice_classes": classes(shallow), "deep_allocs": deep["allocs"],
               "deep_frees": deep["frees"], "deep_classes": classes(deep),
               "append_allocs": append["allocs"], "append_resizes": append["list_resizes"]}
    finding = ("alias: %d allocations; slice copy: %d; deepcopy: %d (%d freed again); "
               "append: %d resize" % (alias["allocs"], shallow["allocs"], deep["allocs"],
                                      deep["frees"], append["list_resizes"]))
    explain = [
        "An alias is a second name: %d allocations." % alias["allocs"],
        "The slice copy makes one new outer list whose items are the same objects, so the "
        "inner list is shared and the append shows through it. The trace is more exact "
        "than the usual 'one new list': the step made %d allocation(s) (%s). The list "
        "object itself came from CPython's free list of list objects, and only its item "
        "buffer was allocated." % (shallow["allocs"], ", ".join(
            "%d in the %d-byte class" % (c, k) for k, c in sorted(figures["slice_classes"].items()))),
        "copy.deepcopy copies the inner list too, and pays for its bookkeeping: %d "
        "allocations (the memo dict, its entries, temporary tuples and the copies), %d of "
        "them freed again before it returned." % (deep["allocs"], deep["frees"]),
    ]
    return figures, finding, explain


def lab5(rep):
    s = steps(rep)
    build, dele, collect = s["build a list of a million ints"], s["del the list"], s["gc.collect()"]
    site = list_site(rep, "lab5.py", "numbers = [")
    ints = classes(build).get(32, 0)
    figures = {"int_objects_32": ints, "build_arenas": build["arenas_delta"],
               "build_pools": build["pools_delta"], "list_resizes": build["list_resizes"],
               "final_capacity": site["final_capacity"] if site else None,
               "bytes_copied": site["bytes_copied"] if site else None,
               "del_frees": dele["frees"], "del_arenas": dele["arenas_delta"],
               "collect_frees": collect["frees"], "collect_arenas": collect["arenas_delta"],
               "arenas_at_exit": rep["arenas"]["live_at_exit"],
               "arenas_peak": rep["arenas"]["peak"]}
    cap = figures["final_capacity"] or 0
    finding = ("%s ints in the 32-byte class; %+d arenas while building, %+d at del, %+d at "
               "gc.collect(); buffer resized %d times to %s slots"
               % (n(ints), build["arenas_delta"], dele["arenas_delta"], collect["arenas_delta"],
                  build["list_resizes"], n(cap)))
    explain = [
        "Building the list allocated %s int objects in pymalloc's 32-byte class (a 28-byte "
        "int rounded up), which took %d new arenas of 1 MiB and %s new pools of 16 KiB."
        % (n(ints), build["arenas_delta"], n(build["pools_delta"])),
        "The list's item buffer grew by reallocation %d times, following CPython's "
        "over-allocation rule, to a capacity of %s slots for 1,000,000 items (%s slots, "
        "%s bytes of slack); reallocations that moved the buffer copied %s bytes."
        % (build["list_resizes"], n(cap), n(cap - 1_000_000), n(8 * (cap - 1_000_000)),
           n(figures["bytes_copied"] or 0)),
        "The common explanation says gc.collect() frees the memory. The trace says "
        "otherwise: `del` dropped the last reference, reference counting freed %s blocks "
        "at once and %d arenas went back to the operating system in that step; "
        "gc.collect() then freed %s blocks and changed the arena count by %+d. The garbage "
        "collector only breaks reference cycles, and this list had none."
        % (n(dele["frees"]), -dele["arenas_delta"], n(collect["frees"]),
           collect["arenas_delta"]),
        "At exit %d arena(s) remain mapped: pymalloc can only return an arena when every "
        "pool in it is empty, so a few surviving objects keep a whole MiB alive (see the "
        "retained arenas in the report)." % figures["arenas_at_exit"],
    ]
    return figures, finding, explain


def lab6(rep):
    s = steps(rep)
    lst, tup = s["build a list"], s["build a tuple"]
    figures = {"list_allocs": lst["allocs"], "list_mem_allocs": lst["by_domain"]["pymem_mem"]["allocs"],
               "list_classes": classes(lst), "tuple_allocs": tup["allocs"],
               "tuple_mem_allocs": tup["by_domain"]["pymem_mem"]["allocs"],
               "tuple_classes": classes(tup)}
    finding = ("list: %d item buffer (PyMem) + object; tuple: %d PyMem allocations, items inline"
               % (figures["list_mem_allocs"], figures["tuple_mem_allocs"]))
    explain = [
        "sys.getsizeof reports the list as its object plus its item buffer, and the tuple "
        "as one block with the items inline. The trace shows why: building the list "
        "allocated %d item buffer through PyMem (the list object itself is a separate "
        "PyObject block, here reused from CPython's free list of lists), while the tuple "
        "step made %d PyMem allocations: a tuple has no separate buffer."
        % (figures["list_mem_allocs"], figures["tuple_mem_allocs"]),
        "The list's buffer has room for more items than it holds: its capacity minus its "
        "length is the slack, which is what makes the list's getsizeof larger than the "
        "item count alone explains.",
    ]
    return figures, finding, explain


LAB_FUNCS = [lab1, lab2, lab3, lab4, lab5, lab6]
TITLES = ["Interning: is it the same object?", "Reference counts",
          "Mutable and immutable identity", "Shallow and deep copies",
          "Forcing the garbage collector", "sys.getsizeof: list and tuple"]


# ---- running -------------------------------------------------------------------

def memtrace(build, *args, **kw):
    return subprocess.run([str(build / "memtrace"), *args], capture_output=True, text=True, **kw)


def run_lab(build, out, script, python, tag):
    trace = out / "traces" / tag / (script.stem + ".trace")
    trace.parent.mkdir(parents=True, exist_ok=True)
    run = memtrace(build, "run", "--quiet", "-o", str(trace), "--", python, str(script))
    if run.returncode != 0:
        sys.exit("%s with %s failed:\n%s" % (script, python, run.stderr))
    rep = memtrace(build, "report", "--format", "json", str(trace))
    if rep.returncode != 0:
        sys.exit("memtrace report %s: %s" % (trace, rep.stderr))
    return trace, run.stdout, json.loads(rep.stdout)


def write_lab(build, out, number, runs, titles=TITLES, finders=LAB_FUNCS):
    """runs: [(python, version, trace, output, report)], first one shown in full."""
    title = "Lab %d: %s" % (number, titles[number - 1])
    entries, text = [], [title, "=" * len(title), ""]
    for python, version, trace, output, rep in runs:
        figures, finding, explain = finders[number - 1](rep)
        entries.append({"python": python, "version": version, "trace": str(trace),
                        "output": output, "finding": finding, "figures": figures,
                        "explanation": explain, "report": rep})
    first = entries[0]
    text += [p + "\n" for p in first["explanation"]]
    for e in entries:
        text += ["Python %s (%s):" % (e["version"], e["python"]), e["output"].rstrip(),
                 "  finding: " + e["finding"], ""]
    report_text = memtrace(build, "report", str(runs[0][2])).stdout
    text += ["Full report (Python %s)" % first["version"], "", report_text]
    (out / ("lab%d.txt" % number)).write_text("\n".join(text))
    (out / ("lab%d.json" % number)).write_text(json.dumps(
        {"lab": number, "title": title, "interpreters": entries}, indent=1))
    intro = out / "traces" / ("lab%d.intro.txt" % number)
    intro.write_text(title + "\n\n" + "\n\n".join(first["explanation"]) + "\n")
    html = memtrace(build, "report", "--format", "html", "--intro", str(intro),
                    "-o", str(out / ("lab%d.html" % number)), str(runs[0][2]))
    if html.returncode != 0:
        sys.exit("memtrace report --format html: %s" % html.stderr)
    return entries


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--build", type=Path, default=REPO / "build")
    ap.add_argument("--out", type=Path, default=REPO / "reports")
    ap.add_argument("--python", action="append", default=[],
                    help="an interpreter to use besides the ones found")
    args = ap.parse_args()
    pythons = interpreters(args.python)
    if not pythons:
        sys.exit("no Python interpreter found")
    args.out.mkdir(parents=True, exist_ok=True)
    overview = []
    seed_out = args.out / "seed"
    seed_out.mkdir(exist_ok=True)
    for labs, out, titles, finders, what in (
            (LABS, args.out, TITLES, LAB_FUNCS, "lab"),
            (seed_labs.SEED, seed_out, seed_labs.TITLES, seed_labs.FINDERS, "seed lab")):
        for number in range(1, 7):
            runs = []
            for i, (python, version) in enumerate(pythons):
                tag = "python%d-%s" % (i + 1, version)
                trace, output, rep = run_lab(args.build, out, labs / ("lab%d.py" % number),
                                             python, tag)
                runs.append((python, version, trace, output, rep))
            for e in write_lab(args.build, out, number, runs, titles, finders):
                overview.append("%s %d, Python %-7s %s" % (what, number, e["version"],
                                                          e["finding"]))
    print("\n".join(overview))
    print("\nreports: %s/lab1..6.{txt,html,json}, and the seed's scripts in %s/"
          % (args.out, seed_out))


if __name__ == "__main__":
    main()
