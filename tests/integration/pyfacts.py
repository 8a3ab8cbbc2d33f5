"""What CPython allocates for the Python tests' scripts, per interpreter
(harness.Python), each figure with the reason from CPython's source.

The interpreters differ in three ways that show in the figures:
  * object sizes: a free-threaded build's object header is 16 bytes longer
    (Include/object.h: ob_tid, the flags, ob_ref_local and ob_ref_shared
    instead of ob_refcnt), so object() is 32 bytes instead of 16 and a
    one-digit int 48 instead of 32;
  * comprehensions: 3.12 and later run them inline (PEP 709), so the
    objects the comprehension's line makes around the loop (the range or
    repeat object, its iterator) count at that line too, in the enclosing
    function; 3.11 runs them in a function of their own, <listcomp>;
  * allocators: a free-threaded build has no pymalloc (Objects/obmalloc.c:
    "Py_GIL_DISABLED requires using mimalloc for "mem" and "obj" domains"),
    and accepts only default, debug, mimalloc and mimalloc_debug for
    PYTHONMALLOC; list_resize() there allocates a new item array and frees
    the old one (Objects/listobject.c) where the default build reallocs.
"""

MILLION = 1_000_000
CACHED_INTS = 257   # 0..256 are preallocated (_PY_NSMALLPOSINTS); range(n) starts at 0


def object_size(py):
    """sys.getsizeof(object()): PyObject_HEAD."""
    return 32 if py.free_threaded else 16


def int_block(py):
    """The block of a one-digit int: _PyLong_New asks PyObject_Malloc for
    sizeof(PyLongObject), the header plus one 30-bit digit, 8-aligned."""
    return 48 if py.free_threaded else 32


def inline(py):
    """Comprehensions run inline (PEP 709, 3.12)."""
    return py.version >= (3, 12)


def comprehension_function(py, enclosing):
    """The function name a comprehension's allocations are reported in."""
    return enclosing if inline(py) else (
        "<listcomp>" if enclosing == "<module>" else enclosing + ".<locals>.<listcomp>")


def range_iterator_size(py):
    """A range iterator: a PyObject_HEAD and three longs."""
    return object_size(py) + 24


def range_loop_objects(py):
    """(objects, bytes) that `[... for i in range(n)]` makes at its line
    around the loop when comprehensions are inline: the range object (a
    PyObject_HEAD and four pointers), the int holding its length
    (compute_range_length) and the range iterator."""
    if not inline(py):
        return 0, 0
    return 3, (object_size(py) + 32) + int_block(py) + range_iterator_size(py)


def list_capacities(n):
    """The capacities list_resize() gives a list grown from empty by n
    appends: (n + (n >> 3) + 6) & ~3 whenever n passes the capacity."""
    caps, cap = [], 0
    for size in range(1, n + 1):
        if size > cap:
            cap = (size + (size >> 3) + 6) & ~3
            caps.append(cap)
    return caps


def comprehension_peak(py, n):
    """The live bytes of `[i for i in range(n)]`'s objects at the heap's
    peak.  On the default build that is the end, with every int made (the
    range and its iterator are gone by then).  On a free-threaded build the
    last resize may be higher: the old and the new item arrays are both
    alive then (8 bytes of header and 8 per slot each), with the ints made
    so far and the iterator."""
    block = int_block(py)
    end = (n - CACHED_INTS) * block
    if not py.free_threaded:
        return end
    caps = list_capacities(n)
    items = caps[-2] + 1  # the append that made the last resize
    at_resize = (items - CACHED_INTS) * block + range_iterator_size(py)
    return at_resize if 8 * caps[-2] > end - at_resize else end


def list_resizes(py, n):
    """Resizes the report counts for a list grown by n appends.  On the
    default build the first append reallocs the item buffer from NULL (a
    resize); on a free-threaded one it mallocs the first array, which is
    no resize: the chain starts at the first array that replaces another."""
    caps = list_capacities(n)
    return len(caps) - 1 if py.free_threaded else len(caps)


def allocator_modes(py):
    """{mode: (extra argv, environment, what serves PyObject_Malloc)} for
    every way of starting the interpreter the shim must survive."""
    default = "mimalloc" if py.free_threaded else "pymalloc"
    modes = {
        "default": ([], {}, default),
        "PYTHONMALLOC=debug": ([], {"PYTHONMALLOC": "debug"}, default),
        "-X dev": (["-X", "dev"], {}, default),
        "-X tracemalloc": (["-X", "tracemalloc"], {}, default),
        "PYTHONTRACEMALLOC=1": ([], {"PYTHONTRACEMALLOC": "1"}, default),
    }
    if py.free_threaded:
        modes["PYTHONMALLOC=mimalloc_debug"] = ([], {"PYTHONMALLOC": "mimalloc_debug"},
                                                "mimalloc")
    else:
        modes["PYTHONMALLOC=pymalloc"] = ([], {"PYTHONMALLOC": "pymalloc"}, "pymalloc")
        modes["PYTHONMALLOC=malloc"] = ([], {"PYTHONMALLOC": "malloc"}, "malloc")
        modes["PYTHONMALLOC=malloc -X tracemalloc"] = (
            ["-X", "tracemalloc"], {"PYTHONMALLOC": "malloc"}, "malloc")
    if py.version >= (3, 13) and not py.free_threaded:
        modes["PYTHONMALLOC=mimalloc"] = ([], {"PYTHONMALLOC": "mimalloc"}, "mimalloc")
    return modes
