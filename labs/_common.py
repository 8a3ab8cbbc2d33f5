"""Shared by the labs: mark() from python/memtrace.py, found relative to
this directory, so each lab runs the same with or without the tracer."""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "python"))

from memtrace import mark  # noqa: E402  (needs the path above)

__all__ = ["mark", "show"]


def show(label, value):
    """One observation, aligned."""
    print("  %-38s %s" % (label, value))
