#!/usr/bin/env python3
"""Runs the six labs under memtrace with every CPython on the machine and
writes reports/labN.{txt,html,json}, then prints a one-screen overview.

Each lab's headline figures are read from its JSON report, step by step
(the labs mark their steps), never typed in: if the tracer or the reporter
got something wrong, the figures here show it.  Where an interpreter's
figures differ from another's by design (3.11 against 3.13, the
free-threaded build against the default one), the report says so and why,
from CPython's source (NOTES below).  The seed's own scripts (labs/seed/,
verbatim, no marks) are run too and reported from the line-by-line view of
the main script alone, into reports/seed/ (see seed_labs.py).

    labs/run_labs.py [--build DIR] [--out DIR] [--python PY ...] [--only-given]
"""

import argparse
import dataclasses
import json
import shutil
import subprocess
import sys
from pathlib import Path

import seed_labs

LABS = Path(__file__).resolve().parent
REPO = LABS.parent
CLASS = 16  # pymalloc size classes are multiples of 16 bytes


@dataclasses.dataclass(frozen=True)
class Python:
    exe: str
    version: str          # "3.13.5"
    free_threaded: bool   # a --disable-gil build

    @property
    def name(self):
        return self.version + (" free-threaded" if self.free_threaded else "")

    @property
    def minor(self):
        return tuple(int(x) for x in self.version.split(".")[:2])


_PROBE = ("import sys, sysconfig, platform; print(sys.executable); "
          "print(platform.python_version()); "
          "print(int(bool(sysconfig.get_config_var('Py_GIL_DISABLED'))))")


def interpreters(given, only_given):
    """The interpreters to run the labs with: the ones given, then (unless
    only_given) Debian's /usr/bin/python3, the real interpreter behind
    `python3` on PATH (pyenv's `python3` is a shell script) and those
    scripts/pythons.sh has built (3.13, 3.13t), without duplicates."""
    cands = list(given)
    if not only_given:
        cands += ["/usr/bin/python3", shutil.which("python3")]
        built = subprocess.run([str(REPO / "scripts" / "pythons.sh"), "--cached"],
                               capture_output=True, text=True)
        cands += built.stdout.split() if built.returncode == 0 else []
    found = []
    for cand in cands:
        if not cand:
            continue
        out = subprocess.run([cand, "-c", _PROBE], capture_output=True, text=True)
        if out.returncode != 0:
            continue
        exe, version, ft = out.stdout.split()
        if exe not in [f.exe for f in found]:
            found.append(Python(exe, version, ft == "1"))
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

def lab1(rep, py):
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
        "calls to int('9999') allocate %s, %s." % (
            const, n(obj_allocs(runtime)),
            "each 28 bytes of object data rounded up to pymalloc's 32-byte size class"
            if not py.free_threaded else
            "each a 48-byte block from mimalloc (a free-threaded build's object header "
            "is 16 bytes longer)"),
    ]
    return figures, finding, explain


def lab2(rep, py):
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


def lab3(rep, py):
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


def lab4(rep, py):
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


def lab5(rep, py):
    s = steps(rep)
    build, dele, collect = s["build a list of a million ints"], s["del the list"], s["gc.collect()"]
    site = list_site(rep, "lab5.py", "numbers = [")
    block = 48 if py.free_threaded else 32  # a one-digit int's block
    ints = classes(build).get(block, 0)
    figures = {"int_objects": ints, "int_block": block, "build_arenas": build["arenas_delta"],
               "build_pools": build["pools_delta"], "list_resizes": build["list_resizes"],
               "final_capacity": site["final_capacity"] if site else None,
               "bytes_copied": site["bytes_copied"] if site else None,
               "del_frees": dele["frees"], "del_arenas": dele["arenas_delta"],
               "collect_frees": collect["frees"], "collect_arenas": collect["arenas_delta"],
               "arenas_at_exit": rep["arenas"]["live_at_exit"],
               "arenas_peak": rep["arenas"]["peak"]}
    cap = figures["final_capacity"] or 0
    if py.free_threaded:
        return figures, *lab5_mimalloc(figures, dele, collect)
    finding = ("%s ints in the %d-byte class; %+d arenas while building, %+d at del, %+d at "
               "gc.collect(); buffer resized %d times to %s slots"
               % (n(ints), block, build["arenas_delta"], dele["arenas_delta"],
                  collect["arenas_delta"], build["list_resizes"], n(cap)))
    explain = [
        "Building the list allocated %s int objects in pymalloc's 32-byte class (a 28-byte "
        "int rounded up), which took %d new arenas of 1 MiB and %s new pools of 16 KiB."
        % (n(ints), build["arenas_delta"], n(build["pools_delta"])),
        lab5_buffer(figures),
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


def lab5_buffer(figures):
    cap = figures["final_capacity"] or 0
    return ("The list's item buffer was resized %d times, following CPython's "
            "over-allocation rule, to a capacity of %s slots for 1,000,000 items (%s slots, "
            "%s bytes of slack); resizes that moved the buffer copied %s bytes."
            % (figures["list_resizes"], n(cap), n(cap - 1_000_000), n(8 * (cap - 1_000_000)),
               n(figures["bytes_copied"] or 0)))


def lab5_mimalloc(figures, dele, collect):
    """Lab 5's finding and explanation on a free-threaded build: the same
    story without pymalloc's arenas."""
    finding = ("%s ints in the 48-byte class (mimalloc: no arenas); %s freed at del, %s at "
               "gc.collect(); buffer resized %d times to %s slots"
               % (n(figures["int_objects"]), n(dele["frees"]), n(collect["frees"]),
                  figures["list_resizes"], n(figures["final_capacity"] or 0)))
    explain = [
        "Building the list allocated %s int objects of 48 bytes from mimalloc: a "
        "free-threaded build has no pymalloc, so there are no arenas or pools to show, and "
        "the report counts every object in the heap by itself." % n(figures["int_objects"]),
        lab5_buffer(figures),
        "The common explanation says gc.collect() frees the memory. The trace says "
        "otherwise: `del` dropped the last reference and reference counting freed %s blocks "
        "at once (%s bytes); gc.collect() then freed %s blocks. The garbage collector only "
        "breaks reference cycles, and this list had none."
        % (n(dele["frees"]), n(-dele["net_bytes"]), n(collect["frees"])),
    ]
    return finding, explain


def lab6(rep, py):
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


@dataclasses.dataclass(frozen=True)
class Lab:
    number: int
    script: str       # in labs/
    title: str
    analyse: object   # (report, Python) -> (figures, finding, explanation)
    group: str = ""   # the seed's scripts: "seed", reported in a folder of that name

    @property
    def what(self):
        return "%s lab %d" % (self.group, self.number) if self.group else "lab %d" % self.number


# The labs, in order.  The seed's verbatim scripts join this list (with a
# number of their own and a script name) and add their NOTES below.
LAB_LIST = [Lab(1, "lab1.py", "Interning: is it the same object?", lab1),
            Lab(2, "lab2.py", "Reference counts", lab2),
            Lab(3, "lab3.py", "Mutable and immutable identity", lab3),
            Lab(4, "lab4.py", "Shallow and deep copies", lab4),
            Lab(5, "lab5.py", "Forcing the garbage collector", lab5),
            Lab(6, "lab6.py", "sys.getsizeof: list and tuple", lab6)] + [
            Lab(n, "seed/lab%d.py" % n, title, finder, "seed")
            for n, title, finder in zip(range(1, 7), seed_labs.TITLES, seed_labs.FINDERS)]


# ---- what differs by interpreter, and why ---------------------------------

def free_threaded(py):
    return py.free_threaded


def inline_comprehensions(py):
    return py.minor >= (3, 12)


@dataclasses.dataclass(frozen=True)
class Note:
    labs: tuple       # the numbers of the labs it is about; () for every lab
    applies: object   # Python -> bool
    text: str         # the difference and its reason, from CPython's source


NOTES = [
    Note((), free_threaded,
         "Free-threaded build: there is no pymalloc (Objects/obmalloc.c: \"Py_GIL_DISABLED "
         "requires using mimalloc for 'mem' and 'obj' domains\"), so the report shows no "
         "arenas or pools and counts every object in the heap by itself; and every object "
         "header is 16 bytes longer (Include/object.h: ob_tid, ob_ref_local and "
         "ob_ref_shared where the default build has ob_refcnt), so a small int is a 48-byte "
         "block, not a 32-byte one."),
    Note((3, 4), free_threaded,
         "list_resize() on a free-threaded build does not realloc the item buffer: it "
         "allocates a new array (_PyListArray: the capacity, then the items) and frees the "
         "old one, so that a thread reading the list without a lock never sees a buffer "
         "move under it (Objects/listobject.c).  A list that grows therefore shows an "
         "allocation and a free where the default build shows a realloc: the append of lab 3 "
         "counts one allocation, and deepcopy's keep-alive list in lab 4 one more of each; "
         "the array's 8 bytes of capacity put the slice copy's 2-slot buffer (24 bytes) in "
         "the 32-byte class."),
    Note((3,), free_threaded,
         "The growing string never reaches the raw allocator: mimalloc serves blocks of any "
         "size itself, where pymalloc hands requests over 512 bytes to PyMem_RawMalloc "
         "(Objects/obmalloc.c)."),
    Note((2,), free_threaded,
         "A string literal such as the seed's \"DevSecOps\" is interned, and on the "
         "free-threaded build every interned string is immortal (Objects/unicodeobject.c, "
         "intern_common: \"In the free-threaded build, all interned strings are immortal\"): "
         "sys.getrefcount of such a string reads 4294967295 (_Py_IMMORTAL_REFCNT, UINT_MAX, "
         "Include/object.h) whatever the number of names, where 3.11 and 3.13 count 4, then "
         "5.  This lab builds its string at run time, so that its count is a real one on "
         "every build."),
    Note((5,), free_threaded,
         "The item buffer shows one resize less than on the default build: the first array "
         "is an allocation (list_allocate_array), not a realloc from NULL; the capacities are "
         "the same, 4, 8, 16, ... 1,056,084."),
    Note((5,), free_threaded,
         "gc.collect() finds a few objects here and frees some dozen blocks, where the "
         "default build finds none: the free-threaded collector is not generational and "
         "starts only once the new objects outnumber a quarter of the live ones "
         "(gc_should_collect in Python/gc_free_threading.c), so cycles that start-up left "
         "were still waiting; the default build's generation-0 collections had freed them. "
         "The million ints still go at `del`, not at gc.collect()."),
    Note((5,), inline_comprehensions,
         "3.12 and later run a list comprehension inline, in the function that contains it "
         "(PEP 709): its allocations are reported at the module's line in <module>, where "
         "3.11 reports them in a function of its own, <listcomp>."),
]


def notes_for(lab, py):
    return [note.text for note in NOTES if not lab.group and
            (not note.labs or lab.number in note.labs) and note.applies(py)]


# ---- running -------------------------------------------------------------------

def memtrace(build, *args, **kw):
    return subprocess.run([str(build / "memtrace"), *args], capture_output=True, text=True, **kw)


def run_lab(build, out, lab, python, tag):
    trace = out / "traces" / tag / lab.group / ("lab%d.trace" % lab.number)
    trace.parent.mkdir(parents=True, exist_ok=True)
    run = memtrace(build, "run", "--quiet", "-o", str(trace), "--", python,
                   str(LABS / lab.script))
    if run.returncode != 0:
        sys.exit("%s with %s failed:\n%s" % (lab.what, python, run.stderr))
    rep = memtrace(build, "report", "--format", "json", str(trace))
    if rep.returncode != 0:
        sys.exit("memtrace report %s: %s" % (trace, rep.stderr))
    return trace, run.stdout, json.loads(rep.stdout)


def write_lab(build, out, lab, runs):
    """runs: [(Python, trace, output, report)], the first one shown in full."""
    title = "Lab %d: %s" % (lab.number, lab.title)
    entries, text = [], [title, "=" * len(title), ""]
    for py, trace, output, rep in runs:
        figures, finding, explain = lab.analyse(rep, py)
        entries.append({"python": py.exe, "version": py.version,
                        "free_threaded": py.free_threaded, "trace": str(trace),
                        "output": output, "finding": finding, "figures": figures,
                        "explanation": explain, "notes": notes_for(lab, py),
                        "report": rep})
    first = entries[0]
    text += [p + "\n" for p in first["explanation"]]
    for (py, *_), e in zip(runs, entries):
        text += ["Python %s (%s):" % (py.name, e["python"]), e["output"].rstrip(),
                 "  finding: " + e["finding"]]
        text += ["  note: " + note for note in e["notes"]]
        text.append("")
    report_text = memtrace(build, "report", str(runs[0][1])).stdout
    text += ["Full report (Python %s)" % runs[0][0].name, "", report_text]
    name = "lab%d" % lab.number
    out = out / lab.group
    out.mkdir(exist_ok=True)
    (out / (name + ".txt")).write_text("\n".join(text))
    (out / (name + ".json")).write_text(json.dumps(
        {"lab": lab.number, "title": title, "interpreters": entries}, indent=1))
    intro = out / "traces" / (name + ".intro.txt")
    intro.parent.mkdir(parents=True, exist_ok=True)
    intro.write_text(title + "\n\n" + "\n\n".join(first["explanation"]) + "\n")
    html = memtrace(build, "report", "--format", "html", "--intro", str(intro),
                    "-o", str(out / (name + ".html")), str(runs[0][1]))
    if html.returncode != 0:
        sys.exit("memtrace report --format html: %s" % html.stderr)
    return entries


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--build", type=Path, default=REPO / "build")
    ap.add_argument("--out", type=Path, default=REPO / "reports")
    ap.add_argument("--python", action="append", default=[],
                    help="an interpreter to use besides the ones found")
    ap.add_argument("--only-given", action="store_true",
                    help="use the --python interpreters only")
    args = ap.parse_args()
    pythons = interpreters(args.python, args.only_given)
    if not pythons:
        sys.exit("no Python interpreter found")
    args.out.mkdir(parents=True, exist_ok=True)
    overview = []
    for lab in LAB_LIST:
        runs = []
        for i, py in enumerate(pythons):
            tag = "python%d-%s%s" % (i + 1, py.version, "t" if py.free_threaded else "")
            runs.append((py, *run_lab(args.build, args.out, lab, py.exe, tag)))
        for (py, *_), e in zip(runs, write_lab(args.build, args.out, lab, runs)):
            overview.append("%s, Python %-20s %s" % (lab.what, py.name, e["finding"]))
    print("\n".join(overview))
    print("\nreports: %s/lab*.{txt,html,json}, and the seed's scripts in %s/seed/"
          % (args.out, args.out))


if __name__ == "__main__":
    main()
