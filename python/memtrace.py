"""Marks for memtrace traces.

    from memtrace import mark
    mark("build the list")

Under the tracer (LD_PRELOAD=libmemtrace.so) each call writes a mark event
into the trace, so the report can summarise every step on its own.  Without
the tracer, mark() does nothing.
"""
import ctypes

__all__ = ["mark", "active"]


def _find_mark():
    try:
        fn = ctypes.CDLL(None).memtrace_mark
    except (AttributeError, OSError):
        return None
    fn.argtypes = [ctypes.c_char_p]
    fn.restype = None
    return fn


_mark = _find_mark()


def active():
    """True when this process runs under the memtrace preload library."""
    return _mark is not None


def mark(label):
    """Record that the program starts the step called `label`."""
    if _mark is not None:
        _mark(str(label).encode("utf-8", "replace"))
