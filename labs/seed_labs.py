"""The seed's six lab scripts, verbatim (labs/seed/labN.py): plain scripts
with no marks, as a user would run their own.  Their findings come from
the report's line-by-line view of the main script ("script_lines") alone:
what each line allocated and freed, the arenas and pools it gained or lost,
its list resizes, and its allocations by domain.

Each finder takes a JSON report and returns (figures, finding, explanation
paragraphs).  labs/run_labs.py runs the scripts and writes their reports;
tests/integration/test_labs.py asserts the figures.
"""

from pathlib import Path

SEED = Path(__file__).resolve().parent / "seed"

TITLES = ["Interning: is it the same object?", "Reference counts",
          "Mutable and immutable identity", "Shallow and deep copies",
          "Forcing the garbage collector", "sys.getsizeof: list and tuple"]

NOTHING = {"allocs": 0, "frees": 0, "bytes_allocated": 0, "bytes_freed": 0,
           "net_bytes": 0, "arenas_allocated": 0, "arenas_freed": 0,
           "pools_allocated": 0, "pools_freed": 0, "list_resizes": 0, "by_domain": {}}


def line(rep, number, text):
    """The figures of the lab script's line holding `text` (the first such
    line), all zero when the line allocated and freed nothing."""
    source = (SEED / ("lab%d.py" % number)).read_text().splitlines()
    at = next(i + 1 for i, s in enumerate(source) if text in s)
    for entry in rep["script_lines"]:
        if entry["line"] == at and entry["file"].endswith("seed/lab%d.py" % number):
            return dict(NOTHING, **entry)
    return dict(NOTHING, line=at, source=source[at - 1])


def dom(entry, name):
    """(allocations, bytes) of one domain on a line."""
    d = entry["by_domain"].get(name, {})
    return d.get("allocs", 0), d.get("bytes", 0)


def n(x):
    return "{:,}".format(x)


# The module's namespace grows its keys table (to 16 entries, a 400-byte
# block) on the line that binds its sixth name or so.  3.11 takes dict keys
# from PyObject_Malloc, 3.12 on from PyMem_Malloc (Objects/dictobject.c,
# new_keys_object), where list item buffers are too.
NAMESPACE_GROWTH = 400


def namespace_domain(py):
    return "pymem_obj" if py.minor < (3, 12) else "pymem_mem"


def item_buffer(entry, py):
    """(bytes, slots) of the list item buffer a line made: its PyMem bytes,
    less the namespace's growth when that is PyMem's too, less the 8-byte
    capacity field before the items on a free-threaded build (_PyListArray
    in Objects/listobject.c)."""
    allocs, size = dom(entry, "pymem_mem")
    if namespace_domain(py) == "pymem_mem" and allocs == 2:
        size -= NAMESPACE_GROWTH
    header = 8 if py.free_threaded else 0
    return size, (size - header) // 8


# Why the seed's constant string counts 4 references where the seed's lab
# says 2 (lab 2 shows each holder: gc.get_referrers, and compile()).
CONSTANT_HOLDERS = (
    "Its %d references: (1) the module's globals, where `message` is bound; (2) the "
    "module code's constants tuple (co_consts), which the compiler filled from the parse "
    "tree; (3) the parser's arena, a list of every object the parse tree made, which keeps "
    "them alive until the tree is freed (Python/pyarena.c: a_objects); (4) "
    "sys.getrefcount's own argument.")
ARENA_LIFETIME = (
    "The arena outlives the parse because the interpreter runs a script file with its "
    "tree still allocated: Python/pythonrun.c, pyrun_file, calls _PyArena_Free(arena) only "
    "after run_mod returns. compile() frees its arena before it returns the code")


def constant_counts(one, two):
    """The first sentence on the seed's counts: what it says, what runs."""
    return ("The seed's lab says `message = \"DevSecOps\"` gives a count of 2; run, it prints "
            "%d, then %d after `copy_msg = message`." % (one, two))


def said(entry):
    """What a line did, in a few words."""
    if not (entry["allocs"] or entry["frees"] or entry["list_resizes"]):
        return "nothing"
    return "%s allocations, %s frees, %+d bytes" % (n(entry["allocs"]), n(entry["frees"]),
                                                   entry["net_bytes"])


def seed1(rep, py, output):
    x, y = line(rep, 1, "x = 100"), line(rep, 1, "y = 100")
    a, b = line(rep, 1, "a = 9999"), line(rep, 1, "b = 9999")
    figures = {"x_allocs": x["allocs"], "y_allocs": y["allocs"], "y_frees": y["frees"],
               "y_namespace": dom(y, namespace_domain(py)), "a_allocs": a["allocs"], "b_allocs": b["allocs"]}
    finding = ("x = 100: %s; y = 100: %s; a = 9999: %s; b = 9999: %s"
               % (said(x), said(y), said(a), said(b)))
    explain = [
        "`x = 100` and `y = 100` allocate no int: CPython keeps one object for each int "
        "from -5 to 256, and both names are bound to it. The one block `y = 100` made is "
        "not an int: it is the module's namespace growing for a new name (%s bytes, while "
        "the old %s-byte table was freed)." % (n(y["bytes_allocated"]), n(y["bytes_freed"])),
        "The seed says large numbers are separate objects, so `a is b` would be False. "
        "The run prints True, and the lines show why: `a = 9999` and `b = 9999` made %d "
        "and %d allocations. Both load the same constant of the module's code object, "
        "which was made when the script was compiled. Only ints built at run time (for "
        "example int('9999')) are new objects." % (a["allocs"], b["allocs"]),
    ]
    return figures, finding, explain


def seed2(rep, py, output):
    bind = line(rep, 2, 'message = "DevSecOps"')
    second = line(rep, 2, "copy_msg = message")
    figures = {"second_allocs": second["allocs"], "second_frees": second["frees"],
               "first_namespace": dom(bind, namespace_domain(py))}
    counts = [int(x) for x in output.split() if x.isdigit()]
    figures["printed"] = counts
    finding = "copy_msg = message: %s" % said(second)
    explain = [
        "Binding a second name to the string allocates nothing: the line "
        "`copy_msg = message` made %d allocations and %d frees. A new reference is a "
        "reference count going up, not a new object." % (second["allocs"], second["frees"]),
        "The string itself is a constant of the module's code: `message = \"DevSecOps\"` "
        "allocated no string, only the namespace's growth for a new name (%s bytes)."
        % n(bind["bytes_allocated"]),
    ]
    if len(counts) != 2:
        return figures, finding, explain
    if py.free_threaded:
        explain.append(
            "It prints %d twice: on a free-threaded build every interned string, as this "
            "literal is, is immortal (Objects/unicodeobject.c, intern_common), and its count "
            "is fixed whatever the names (lab 2's note)." % counts[0])
        return figures, finding, explain
    explain.append(
        "%s The string is a constant of the script, made when the script was parsed. %s "
        "%s: the same two lines compiled by compile() and run by exec print one less "
        "(lab 2 runs both, and names the first three holders with gc.get_referrers)."
        % (constant_counts(*counts), CONSTANT_HOLDERS % counts[0], ARENA_LIFETIME))
    return figures, finding, explain


def seed3(rep, py, output):
    plus = line(rep, 3, "x = x + 1")
    make = line(rep, 3, 'servers = ["Web-01", "Web-02"]')
    append = line(rep, 3, 'servers.append("Web-03")')
    figures = {"plus_allocs": plus["allocs"], "make_mem": dom(make, "pymem_mem"),
               "append_allocs": append["allocs"], "append_frees": append["frees"],
               "append_resizes": append["list_resizes"], "append_mem": dom(append, "pymem_mem"),
               "append_bytes": append["bytes_allocated"], "append_freed": append["bytes_freed"]}
    finding = ("x = x + 1: %s; servers.append: %d resize of the item buffer, %s -> %s bytes"
               % (said(plus), append["list_resizes"], n(append["bytes_freed"]),
                  n(append["bytes_allocated"])))
    explain = [
        "`x = x + 1` makes 101, one of the cached small ints: the id changes, yet the line "
        "made %d allocations." % plus["allocs"],
        "The list's id does not change when it grows, because the list object never moves: "
        "the append line made %d allocation and %d free, a realloc of the separate item "
        "buffer from %s to %s bytes (%d to %d slots of 8 bytes), counted as %d list "
        "resize." % (append["allocs"], append["frees"], n(append["bytes_freed"]),
                     n(append["bytes_allocated"]), append["bytes_freed"] // 8,
                     append["bytes_allocated"] // 8, append["list_resizes"]),
    ]
    return figures, finding, explain


def seed4(rep, py, output):
    alias = line(rep, 4, "alias_rules = firewall_rules")
    shallow = line(rep, 4, "firewall_rules[:]")
    deep = line(rep, 4, "copy.deepcopy")
    append = line(rep, 4, "append(22)")
    figures = {"alias_allocs": alias["allocs"], "shallow_allocs": shallow["allocs"],
               "shallow_mem": dom(shallow, "pymem_mem"), "shallow_obj": dom(shallow, "pymem_obj"),
               "deep_allocs": deep["allocs"], "deep_frees": deep["frees"],
               "deep_resizes": deep["list_resizes"], "append_resizes": append["list_resizes"],
               "append_allocs": append["allocs"]}
    finding = ("alias: %s; slice: %s; deepcopy: %s; append(22): %d resize"
               % (said(alias), said(shallow), said(deep), append["list_resizes"]))
    explain = [
        "The alias is a second name for the same list: %d allocations." % alias["allocs"],
        "The slice copy makes one new outer list and nothing else: %d allocations, %s "
        "bytes of PyObject (the list object) and %s bytes of PyMem (its item buffer, two "
        "slots). The inner list is not copied, so appending 22 through the original shows "
        "in the shallow copy." % (shallow["allocs"], n(dom(shallow, "pymem_obj")[1]),
                                  n(dom(shallow, "pymem_mem")[1])),
        "copy.deepcopy copies the inner list too, and pays for its bookkeeping (the memo "
        "dict, temporary tuples): %d allocations, %d of them freed again on the same line."
        % (deep["allocs"], deep["frees"]),
        "The append grows the inner list's item buffer: %d resize." % append["list_resizes"],
    ]
    return figures, finding, explain


def seed5(rep, py, output):
    build = line(rep, 5, "big_data = [")
    dele = line(rep, 5, "del big_data")
    collect = line(rep, 5, "gc.collect()")
    figures = {"build_allocs": build["allocs"], "build_arenas": build["arenas_allocated"],
               "build_resizes": build["list_resizes"], "del_frees": dele["frees"],
               "del_bytes": dele["bytes_freed"], "del_arenas": dele["arenas_freed"],
               "del_pools": dele["pools_freed"], "collect_allocs": collect["allocs"],
               "collect_frees": collect["frees"], "collect_bytes": collect["bytes_freed"],
               "collect_arenas": collect["arenas_freed"], "collect_pools": collect["pools_freed"]}
    finding = ("del big_data: %s blocks and %d arenas freed; gc.collect(): %s blocks "
               "(%s bytes), %d arenas"
               % (n(dele["frees"]), dele["arenas_freed"], n(collect["frees"]),
                  n(collect["bytes_freed"]), collect["arenas_freed"]))
    explain = [
        "Building the list made %s allocations (an int object per item above 256, and the "
        "item buffer %d times resized) and took %d arenas of 1 MiB." % (
            n(build["allocs"]), build["list_resizes"], build["arenas_allocated"]),
        "The seed expects gc.collect() to free the memory. The lines say otherwise: `del "
        "big_data` freed %s blocks (%s bytes) and gave %d arenas back to the operating "
        "system, because reference counting frees the list and its ints the moment the "
        "last name goes." % (n(dele["frees"]), n(dele["bytes_freed"]), dele["arenas_freed"]),
        "gc.collect() found nothing to collect: it frees objects in reference cycles, and "
        "there were none. Its line freed %s small blocks (%s bytes) and no arena: a full "
        "collection also empties CPython's free lists, where the deleted list object "
        "itself was kept for reuse." % (n(collect["frees"]), n(collect["bytes_freed"])),
    ]
    return figures, finding, explain


def seed6(rep, py, output):
    lst = line(rep, 6, "my_list = [")
    tup = line(rep, 6, "my_tuple = (")
    mem_bytes, slots = item_buffer(lst, py)
    figures = {"list_mem": list(dom(lst, "pymem_mem")), "list_buffer": mem_bytes,
               "list_slots": slots, "tuple_allocs": tup["allocs"]}
    finding = ("my_list: an item buffer of %d bytes (%d slots for 5 items); my_tuple: %s"
               % (mem_bytes, slots, said(tup)))
    obj_allocs, obj_bytes = dom(lst, "pymem_obj")
    figures["list_obj"] = [obj_allocs, obj_bytes]
    where = ("its 56-byte object came from CPython's free list of lists: the line's only "
             "PyObject block (%s bytes) is the module's namespace growing for a new name"
             % n(obj_bytes) if obj_allocs == 1 else
             "its object came from CPython's free list of lists (the line made no PyObject "
             "block; the namespace's growth is a PyMem block here)" if obj_allocs == 0 else
             "its object took %s more PyObject block(s)" % n(obj_allocs))
    explain = [
        "The list is two blocks, the tuple one: `my_list = [1, 2, 3, 4, 5]` allocated a "
        "separate item buffer through PyMem of %d bytes, room for %d pointers (5 items "
        "rounded up to an even count), and %s. sys.getsizeof(my_list) is 56 + %d = %d "
        "bytes, not 56 + 40." % (mem_bytes, slots, where, mem_bytes, 56 + mem_bytes),
        "`my_tuple = (1, 2, 3, 4, 5)` made %d allocations: a tuple of constants is itself "
        "a constant of the code, made when the script was compiled, with its five item "
        "pointers inline after a 40-byte header: sys.getsizeof gives 40 + 5 x 8 = 80."
        % tup["allocs"],
    ]
    return figures, finding, explain


FINDERS = [seed1, seed2, seed3, seed4, seed5, seed6]
