"""Marks for memtrace traces.

    from memtrace import mark
    mark("build the list")

Under the tracer (LD_PRELOAD=libmemtrace.so) each call writes a mark event
into the trace, so the report can summarise every step on its own.  A mark
is an audit event (sys.audit("memtrace.mark", label)), which the tracer
hooks: nothing is allocated between the mark and the code after it, and
without the tracer it costs next to nothing.
"""
import sys

__all__ = ["mark", "active"]


def mark(label):
    """Record that the program starts the step called `label`."""
    sys.audit("memtrace.mark", str(label))


def active():
    """True when this process runs under the memtrace preload library."""
    import ctypes
    try:
        ctypes.CDLL(None).memtrace_mark
    except (AttributeError, OSError):
        return False
    return True
