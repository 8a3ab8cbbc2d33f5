#!/usr/bin/env python3
"""Runs the labs under memtrace with every CPython on the machine and
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

def lab1(rep, py, output):
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


def lab2(rep, py, output):
    s = steps(rep)
    step, seed = s["bind a second name"], s["the seed's constant string"]
    figures = {"allocs": step["allocs"], "frees": step["frees"],
               "seed_allocs": seed["allocs"], "seed_frees": seed["frees"],
               "seed_one": int(printed(output, "seed: refcount of the constant") or -1),
               "seed_two": int(printed(output, "seed: after copy_msg = message") or -1),
               "seed_held_by": (printed(output, "seed: held by") or "").split("; "),
               "seed_compiled": [int(x) for x in
                                 (printed(output, "seed lines after compile()") or "").split()]}
    f = figures
    finding = ("binding a second name: %d allocations, %d frees; the seed's constant: "
               "refcount %d, then %d, %d allocations"
               % (step["allocs"], step["frees"], f["seed_one"], f["seed_two"], f["seed_allocs"]))
    explain = [
        "Binding a second name to an object increments its reference count; the program "
        "prints sys.getrefcount before and after (the call itself holds one more reference "
        "while it runs, which is why it reads one higher than the number of names).",
        "The trace shows that the binding step made %d allocations in any allocator domain: "
        "a new reference is not a new object, and not even a new pointer slot on the heap, "
        "since the module's namespace already had the name." % step["allocs"],
    ]
    if py.free_threaded:
        return figures, finding, explain  # immortal: see the lab's note
    explain.append(
        "%s The string is a constant of the script: the step that binds it made %d "
        "allocations (the trace shows no new string), so it existed before the line ran, "
        "made when the script was parsed. %s gc.get_referrers names the first three in this "
        "run: %s. %s: the same two lines compiled by compile() and run by exec print %s, "
        "one less."
        % (seed_labs.constant_counts(f["seed_one"], f["seed_two"]), f["seed_allocs"],
           seed_labs.CONSTANT_HOLDERS % f["seed_one"], "; ".join(f["seed_held_by"]),
           seed_labs.ARENA_LIFETIME, " then ".join(map(str, f["seed_compiled"]))))
    return figures, finding, explain


def lab3(rep, py, output):
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


def lab4(rep, py, output):
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


# ---- what the OS saw (the samples at marks) ---------------------------------

MIB = 1 << 20


def mib(x):
    return "%.1f MiB" % (x / MIB)


def at_start(rep, label):
    """The memory breakdown at the step's mark: the state when it began."""
    return steps(rep)[label]["memory"]


def at_end(rep, label):
    """The breakdown at the next mark, or at exit: the state when the step
    ended."""
    marks = rep["marks"]
    for i, m in enumerate(marks):
        if m["label"] == label:
            return marks[i + 1]["memory"] if i + 1 < len(marks) else rep["memory"]["exit"]
    raise KeyError(label)


def part(mem, key):
    """One part of "why RSS is higher than the requested heap" (0: none)."""
    return next(p["bytes"] or 0 for p in mem["parts"] if p["key"] == key)


def state(mem):
    """RSS, the requested heap and pymalloc's arenas at a sample."""
    s = mem["sample"]
    arenas = ", %d arenas" % (s["arenas"] // MIB) if s["arenas"] else ""
    return "RSS %s (requested heap %s%s)" % (mib(s["rss"]), mib(s["requested"]), arenas)


def changes(before, after, least=256 * 1024):
    """The parts that moved the most between two breakdowns, as text."""
    moved = [(part(after, p["key"]) - part(before, p["key"]), p["what"])
             for p in after["parts"] if p["key"] != "rest"]
    moved = sorted((m for m in moved if abs(m[0]) >= least), key=lambda m: -abs(m[0]))
    return "; ".join("%s%s: %s" % ("+" if d > 0 else "-", mib(abs(d)), what)
                     for d, what in moved)


def lab5(rep, py, output):
    s = steps(rep)
    build, dele, collect = s["build a list of a million ints"], s["del the list"], s["gc.collect()"]
    site = list_site(rep, "lab5.py", "numbers = [")
    block = 48 if py.free_threaded else 32  # a one-digit int's block
    ints = classes(build).get(block, 0)
    before = at_start(rep, "build a list of a million ints")
    full, after_del = at_end(rep, "build a list of a million ints"), at_end(rep, "del the list")
    after_gc = at_end(rep, "gc.collect()")
    retained = rep["pools"]["arenas_retained"]
    empty = [a for a in retained if not a["live_objects"] and not a["pools_in_use"]]
    held = [a for a in retained if a["live_objects"]]
    figures = {"int_objects": ints, "int_block": block, "build_arenas": build["arenas_delta"],
               "build_pools": build["pools_delta"], "list_resizes": build["list_resizes"],
               "final_capacity": site["final_capacity"] if site else None,
               "bytes_copied": site["bytes_copied"] if site else None,
               "del_frees": dele["frees"], "del_arenas": dele["arenas_delta"],
               "collect_frees": collect["frees"], "collect_arenas": collect["arenas_delta"],
               "arenas_at_exit": rep["arenas"]["live_at_exit"],
               "arenas_peak": rep["arenas"]["peak"],
               "rss_before": before["rss"], "rss_full": full["rss"],
               "rss_after_del": after_del["rss"], "rss_after_gc": after_gc["rss"],
               "del_arena_bytes": full["sample"]["arenas"] - after_del["sample"]["arenas"],
               "untouched_when_full": -part(full, "arenas_untouched"),
               "empty_arena_bytes_after_del": after_del["sample"]["empty_arenas"],
               "empty_arenas_at_exit": len(empty), "arenas_with_objects_at_exit": len(held),
               "glibc_unmapped_at_del": (full["sample"]["glibc_mmapped"] or 0)
               - (after_del["sample"]["glibc_mmapped"] or 0)}
    cap = figures["final_capacity"] or 0
    figures["list_buffer_bytes"] = 8 * cap
    buffer = ("a block glibc had mapped on its own and unmapped when it was freed (glibc's "
              "mapped chunks shrank by %s)" % n(figures["glibc_unmapped_at_del"])
              if figures["glibc_unmapped_at_del"] >= 8 * cap else "freed with it")
    if py.free_threaded:
        return figures, *lab5_mimalloc(figures, dele, collect, (before, full, after_del, after_gc))
    finding = ("%s ints in the %d-byte class; %+d arenas while building, %+d at del, %+d at "
               "gc.collect(); buffer resized %d times to %s slots; RSS %s, %s, %s, %s"
               % (n(ints), block, build["arenas_delta"], dele["arenas_delta"],
                  collect["arenas_delta"], build["list_resizes"], n(cap), mib(before["rss"]),
                  mib(full["rss"]), mib(after_del["rss"]), mib(after_gc["rss"])))
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
        "What the OS saw (RSS: the process's resident memory, memtrace's own included): "
        "before the list, %s; with the list complete, %s; after `del`, %s; after "
        "gc.collect(), %s. `del` gave %s back at once: the %s of arenas pymalloc unmapped "
        "and the list's %s-byte item buffer, %s. gc.collect() changed RSS by %s."
        % (state(before), state(full), state(after_del), state(after_gc),
           mib(full["rss"] - after_del["rss"]), mib(figures["del_arena_bytes"]), n(8 * cap),
           buffer, mib(after_gc["rss"] - after_del["rss"])),
        "After `del`, RSS is %s above where it started. The parts that changed: %s."
        % (mib(after_del["rss"] - before["rss"]), changes(before, after_del)),
        exit_arenas(retained, empty, held),
    ]
    return figures, finding, explain


def lab5_buffer(figures):
    cap = figures["final_capacity"] or 0
    return ("The list's item buffer was resized %d times, following CPython's "
            "over-allocation rule, to a capacity of %s slots for 1,000,000 items (%s slots, "
            "%s bytes of slack); resizes that moved the buffer copied %s bytes."
            % (figures["list_resizes"], n(cap), n(cap - 1_000_000), n(8 * (cap - 1_000_000)),
               n(figures["bytes_copied"] or 0)))


def lab5_mimalloc(figures, dele, collect, seen):
    """Lab 5's finding and explanation on a free-threaded build: the same
    story without pymalloc's arenas.  seen: the breakdowns before the list,
    with it, after del and after gc.collect()."""
    rss = [mem["rss"] for mem in seen]
    finding = ("%s ints in the 48-byte class (mimalloc: no arenas); %s freed at del, %s at "
               "gc.collect(); buffer resized %d times to %s slots; RSS %s"
               % (n(figures["int_objects"]), n(dele["frees"]), n(collect["frees"]),
                  figures["list_resizes"], n(figures["final_capacity"] or 0),
                  ", ".join(mib(r) for r in rss)))
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
        "What the OS saw (RSS, memtrace's own included): before the list, %s; with the "
        "list complete, %s; after `del`, %s; after gc.collect(), %s. The requested heap "
        "fell by %s at `del`, RSS by %s: mimalloc gives the OS back only part of the pages "
        "its freed objects leave, and when. memtrace does not see inside mimalloc's pages, "
        "so the report counts the pages it keeps in the rest of RSS, not told apart."
        % (tuple(state(mem) for mem in seen)
           + (mib(seen[1]["sample"]["requested"] - seen[2]["sample"]["requested"]),
              mib(rss[1] - rss[2]))),
    ]
    return finding, explain


def exit_arenas(retained, empty, held):
    """Lab 5's last paragraph: the arenas still mapped at exit, as the
    figures show them, and the source's reason for an empty one."""
    text = "At exit %d arena(s) remain mapped." % len(retained)
    if held:
        text += (" %d of them hold live objects (%s objects in %s pools): objects the "
                 "interpreter does not free when it finalizes." % (
                     len(held), n(sum(a["live_objects"] for a in held)),
                     n(sum(a["pools_in_use"] for a in held))))
    if empty:
        text += (" %d hold(s) no object and no pool in use: no survivor keeps it. CPython "
                 "3.11's Objects/obmalloc.c (insert_to_freepool, case 1) returns an arena to "
                 "the system when its last pool becomes free only if it is not the last arena "
                 "of usable_arenas (`nf == ao->ntotalpools && ao->nextarena != NULL`); that "
                 "list is sorted by free pools, so the last one is the emptiest, and it is kept "
                 "\"to avoid thrashing\" (bpo-37257): a loop that allocates and frees one "
                 "object would otherwise map and unmap an arena on every iteration. At most "
                 "one wholly free arena stays mapped this way." % len(empty))
    return text


def printed(output, what):
    """The value the lab printed for `what` (_common.show: label in 38
    columns after two spaces, then the value)."""
    for line in output.splitlines():
        if line[2:40].rstrip() == what:
            return line[41:]
    return None


# sys.getsizeof is __sizeof__ plus the type's pre-header (Python/sysmodule.c,
# _PySys_GetSizeOf; Include/internal/pycore_object.h, _PyType_PreHeaderSize):
# PyGC_Head (two pointers) for a GC type, but none on a free-threaded build,
# whose GC state lives in the object header itself.  A list's __sizeof__ is
# the type's basic size plus a pointer per allocated slot (Objects/
# listobject.c, list___sizeof___impl): PyObject_VAR_HEAD then ob_item and
# allocated.  A tuple's is its basic size, PyObject_VAR_HEAD, plus a pointer
# per item (object.__sizeof__ with tp_itemsize).  PyObject_HEAD is 16 bytes
# (reference count, type), on a free-threaded build 32 (Include/object.h:
# ob_tid, flags, mutex, GC bits, ob_ref_local, ob_ref_shared, type), and
# PyObject_VAR_HEAD adds the size.  A free-threaded list's items sit in a
# _PyListArray, its capacity first.  64-bit builds: 8-byte words.
WORD = 8


@dataclasses.dataclass(frozen=True)
class Layout:
    gc_head: int      # the pre-header sys.getsizeof adds
    object_head: int  # PyObject_HEAD
    array_head: int   # bytes before a list's items in its buffer

    @property
    def var_head(self):
        return self.object_head + WORD

    @property
    def list_object(self):
        return self.var_head + 2 * WORD


def layout(py):
    return Layout(0, 32, WORD) if py.free_threaded else Layout(2 * WORD, 2 * WORD, 0)


def lab6(rep, py, output):
    s = steps(rep)
    lst, tup = s["build a list"], s["build a tuple"]
    lay = layout(py)
    length = len(printed(output, "list").split(",")) if printed(output, "list") else 0
    buffer_bytes = lst["by_domain"]["pymem_mem"]["bytes_allocated"]
    capacity = (buffer_bytes - lay.array_head) // WORD
    figures = {"list_allocs": lst["allocs"], "list_mem_allocs": lst["by_domain"]["pymem_mem"]["allocs"],
               "list_classes": classes(lst), "tuple_allocs": tup["allocs"],
               "tuple_mem_allocs": tup["by_domain"]["pymem_mem"]["allocs"],
               "tuple_classes": classes(tup), "length": length,
               "list_buffer_bytes": buffer_bytes, "list_capacity": capacity,
               "slack_slots": capacity - length, "slack_bytes": WORD * (capacity - length),
               "gc_head": lay.gc_head, "list_object": lay.list_object,
               "tuple_head": lay.var_head,
               "getsizeof_list": lay.gc_head + lay.list_object + WORD * capacity,
               "getsizeof_tuple": lay.gc_head + lay.var_head + WORD * length,
               "printed_list": int(printed(output, "sys.getsizeof(list)") or -1),
               "printed_tuple": int(printed(output, "sys.getsizeof(tuple)") or -1)}
    finding = ("list: %d-slot buffer for %d items (%d slot, %d bytes of slack), getsizeof "
               "%d = %d + %d + 8 x %d; tuple: items inline, getsizeof %d = %d + %d + 8 x %d"
               % (capacity, length, capacity - length, WORD * (capacity - length),
                  figures["getsizeof_list"], lay.gc_head, lay.list_object, capacity,
                  figures["getsizeof_tuple"], lay.gc_head, lay.var_head, length))
    header = ("sys.getsizeof adds the 16-byte GC header (PyGC_Head: two pointers) to "
              "__sizeof__" if lay.gc_head else
              "sys.getsizeof adds no GC header on a free-threaded build (_PyType_PreHeaderSize "
              "counts PyGC_Head only without Py_GIL_DISABLED), but every object header is "
              "32 bytes instead of 16 (ob_tid, flags, ob_ref_local, ob_ref_shared, type)")
    explain = [
        "sys.getsizeof reports the list as its object plus its item buffer, and the tuple "
        "as one block with the items inline. The trace shows why: building the list "
        "allocated %d item buffer through PyMem, of %d bytes (the list object itself is a "
        "separate PyObject block, here reused from CPython's free list of lists), while the "
        "tuple step made %d PyMem allocations: a tuple has no separate buffer."
        % (figures["list_mem_allocs"], buffer_bytes, figures["tuple_mem_allocs"]),
        "The buffer's %d bytes are %s%d slots of 8 bytes for %d items: %d slot (%d bytes) of "
        "slack. `[*source]` extends an empty list from an iterator whose length is known; "
        "list_extend then calls list_preallocate_exact, which rounds the length up to an "
        "even number of slots (Objects/listobject.c: the allocator's 16-byte granularity "
        "makes an odd slot free)."
        % (buffer_bytes, "the array's 8-byte capacity and " if lay.array_head else "",
           capacity, length, capacity - length, WORD * (capacity - length)),
        "%s. For the list that is the %d-byte PyListObject (header, size, the buffer "
        "pointer and its capacity) plus 8 bytes per slot of the buffer: "
        "%d + %d + 8 x %d = %d, and the program printed %d. For the tuple it is the %d-byte "
        "variable-size header (header and size) plus 8 bytes per item: "
        "%d + %d + 8 x %d = %d, and it printed %d.%s"
        % (header, lay.list_object, lay.gc_head, lay.list_object, capacity,
           figures["getsizeof_list"], figures["printed_list"], lay.var_head, lay.gc_head,
           lay.var_head, length, figures["getsizeof_tuple"], figures["printed_tuple"],
           " The tuple step allocated no block of that size: the tuple came from CPython's "
           "free list of 5-item tuples, so its size is the source's, not the trace's."
           if figures["getsizeof_tuple"] not in classes(tup) else ""),
    ]
    return figures, finding, explain


def top_holder(mem):
    """(file:line, size) of the live block holding glibc's heap top, or None."""
    by = (mem.get("heap_top") or {}).get("held_by")
    if not by:
        return None
    return "%s:%d" % (Path(by["file"]).name, by["line"]), by["size"]


def lab7(rep, py, output):
    c1 = ("case 1: a million floats", "case 1: keep every hundredth, drop the rest",
          "case 1: drop the survivors")
    c2 = ("case 2: a thousand 64 KiB bytes, then one more", "case 2: drop all but the last",
          "case 2: malloc_trim(0)", "case 2: drop the last")
    before, c2_before = at_start(rep, c1[0]), at_start(rep, c2[0])
    built, kept, dropped = (at_end(rep, label) for label in c1)
    c2_built, c2_freed, trimmed, released = (at_end(rep, label) for label in c2)
    if py.free_threaded:
        return lab7_mimalloc((built, kept, dropped), (c2_built, c2_freed, trimmed, released),
                             output)
    holder = top_holder(c2_freed)
    figures = {
        "c1_objects_before": before["sample"]["pymalloc_objects"],
        "c1_rss_built": built["rss"], "c1_arenas_built": built["sample"]["arenas"],
        "c1_objects_built": built["sample"]["pymalloc_objects"],
        "c1_rss_kept": kept["rss"], "c1_arenas_kept": kept["sample"]["arenas"],
        "c1_objects_kept": kept["sample"]["pymalloc_objects"],
        "c1_pool_space_kept": part(kept, "pymalloc_pools_free"),
        "c1_pools_kept": kept["sample"]["pools"] // rep["pools"]["pool_size"],
        "c1_rss_dropped": dropped["rss"], "c1_arenas_dropped": dropped["sample"]["arenas"],
        "c1_survivors": int(printed(output, "case 1: survivors kept") or -1),
        "c2_rss_built": c2_built["rss"], "c2_glibc_built": c2_built["sample"]["glibc_held"],
        "c2_rss_freed": c2_freed["rss"], "c2_glibc_freed": c2_freed["sample"]["glibc_held"],
        "c2_free_below_top": part(c2_freed, "glibc_free_below_top"),
        "c2_top_holder": holder[0] if holder else None,
        "c2_top_holder_size": holder[1] if holder else None,
        "c2_rss_trimmed": trimmed["rss"], "c2_glibc_trimmed": trimmed["sample"]["glibc_held"],
        "c2_brk_trimmed": trimmed["sample"]["brk_heap"],
        "c2_brk_resident_trimmed": trimmed["sample"]["brk_resident"],
        "c2_brk_freed": c2_freed["sample"]["brk_heap"],
        "c2_brk_before": c2_before["sample"]["brk_heap"],
        "c2_rss_released": released["rss"], "c2_brk_released": released["sample"]["brk_heap"],
        "c2_free_released": part(released, "glibc_free_below_top")
        + part(released, "glibc_free_top"),
        "c2_trim_returned": int(printed(output, "case 2: malloc_trim(0) returned") or -1)}
    f = figures
    finding = ("case 1: 1%% survivors keep %d arenas, RSS %s after del, %s once dropped; "
               "case 2: RSS %s after del, held by %s; %s after malloc_trim(0)"
               % (f["c1_arenas_kept"] // MIB, mib(f["c1_rss_kept"]), mib(f["c1_rss_dropped"]),
                  mib(f["c2_rss_freed"]), f["c2_top_holder"], mib(f["c2_rss_trimmed"])))
    explain = [
        "Case 1. A million floats take %s of objects in %d pymalloc arenas; RSS is %s. "
        "Deleting the list while keeping every hundredth float (%s survivors, %s of objects) "
        "brings RSS only to %s: the list's item buffer went back, but %d arenas are still "
        "mapped. The survivors are spread over %s pools of 16 KiB, a few in each, so those "
        "pools stay in use and their arenas with them: pymalloc can only unmap an arena "
        "whose pools are all free. The report puts %s of RSS on \"pools in use, beyond "
        "their objects\". Dropping the survivors gives it back: %d arenas remain and RSS "
        "falls to %s."
        % (mib(f["c1_objects_built"]), f["c1_arenas_built"] // MIB, mib(f["c1_rss_built"]),
           n(f["c1_survivors"]), mib(f["c1_objects_kept"]), mib(f["c1_rss_kept"]),
           f["c1_arenas_kept"] // MIB, n(f["c1_pools_kept"]), mib(f["c1_pool_space_kept"]),
           f["c1_arenas_dropped"] // MIB, mib(f["c1_rss_dropped"])),
        "Case 2. A thousand 64 KiB bytes objects are blocks of glibc's heap (below its mmap "
        "threshold, 128 KiB or more); the one made after them sits at the heap's top. RSS is "
        "%s and glibc holds %s. Deleting the thousand brings RSS to %s: glibc keeps %s of "
        "freed blocks below the live block at the top (%s, %s bytes), and it can only give "
        "memory back to the system by lowering the program break, which that block "
        "prevents. malloc_trim(0) (through ctypes, it returned %d) releases the pages inside "
        "the free blocks with madvise: RSS falls to %s while glibc still holds %s and the "
        "brk heap keeps its %s, of which %s are resident. Dropping the last block lets glibc "
        "lower the break: the brk heap shrinks to %s%s."
        % (mib(f["c2_rss_built"]), mib(f["c2_glibc_built"]), mib(f["c2_rss_freed"]),
           mib(f["c2_free_below_top"]), f["c2_top_holder"], n(f["c2_top_holder_size"] or 0),
           f["c2_trim_returned"], mib(f["c2_rss_trimmed"]), mib(f["c2_glibc_trimmed"]),
           mib(f["c2_brk_trimmed"]), mib(f["c2_brk_resident_trimmed"]),
           mib(f["c2_brk_released"]),
           ", %s of it free below the highest chunk glibc still holds (one the trace does "
           "not show live: a chunk in glibc's own caches)" % mib(f["c2_free_released"])
           if f["c2_free_released"] >= MIB else ""),
    ]
    return figures, finding, explain


def lab7_mimalloc(case1, case2, output):
    """Lab 7 on a free-threaded build: both cases' objects are mimalloc's,
    neither pymalloc's arenas nor glibc's heap.  case1, case2: the
    breakdowns at the end of each step."""
    rss = [mem["rss"] for mem in case1 + case2]
    req = [mem["sample"]["requested"] for mem in case1 + case2]
    glibc = [mem["sample"]["glibc_held"] for mem in case1 + case2]
    keys = ["c1_built", "c1_kept", "c1_dropped", "c2_built", "c2_freed", "c2_trimmed",
            "c2_released"]
    figures = {"c1_survivors": int(printed(output, "case 1: survivors kept") or -1),
               "c2_trim_returned": int(printed(output, "case 2: malloc_trim(0) returned") or -1)}
    for k, r, q, g in zip(keys, rss, req, glibc):
        figures.update({"rss_" + k: r, "requested_" + k: q, "glibc_" + k: g})
    f = figures
    finding = ("mimalloc's: case 1 RSS %s, %s with 1%% survivors, %s without; case 2 RSS %s, "
               "%s after del, %s after malloc_trim(0), glibc holding %s"
               % (tuple(mib(r) for r in rss[:3]) + (mib(rss[3]), mib(rss[4]), mib(rss[5]),
                                                    mib(f["glibc_c2_built"]))))
    explain = [
        "On a free-threaded build both cases' objects come from mimalloc: there are no "
        "pymalloc arenas, and the 64 KiB bytes objects are not in glibc's heap either "
        "(mimalloc serves blocks of any size itself).",
        "Case 1. A million floats: requested heap %s, RSS %s. Keeping every hundredth "
        "(%s survivors) brings the requested heap to %s and RSS to %s; dropping them, to %s "
        "and %s. The requested heap follows the objects; RSS follows what mimalloc keeps "
        "of its pages, which memtrace does not see inside: the report counts those pages "
        "in the rest of RSS, not told apart."
        % (mib(f["requested_c1_built"]), mib(f["rss_c1_built"]), n(f["c1_survivors"]),
           mib(f["requested_c1_kept"]), mib(f["rss_c1_kept"]), mib(f["requested_c1_dropped"]),
           mib(f["rss_c1_dropped"])),
        "Case 2. A thousand 64 KiB bytes and one more: requested heap %s, RSS %s, while "
        "glibc holds %s: the blocks are mimalloc's. Deleting the thousand brings the "
        "requested heap to %s and RSS to %s. malloc_trim(0) (it returned %d) works on "
        "glibc's heap only: RSS after it is %s. Dropping the last block: RSS %s."
        % (mib(f["requested_c2_built"]), mib(f["rss_c2_built"]), mib(f["glibc_c2_built"]),
           mib(f["requested_c2_freed"]), mib(f["rss_c2_freed"]), f["c2_trim_returned"],
           mib(f["rss_c2_trimmed"]), mib(f["rss_c2_released"])),
    ]
    return figures, finding, explain


@dataclasses.dataclass(frozen=True)
class Lab:
    number: int
    script: str       # in labs/
    title: str
    analyse: object   # (report, Python, output) -> (figures, finding, explanation)
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
            Lab(6, "lab6.py", "sys.getsizeof: list and tuple", lab6),
            Lab(7, "lab7.py", "Why the OS still shows the memory", lab7)] + [
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
        figures, finding, explain = lab.analyse(rep, py, output)
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
