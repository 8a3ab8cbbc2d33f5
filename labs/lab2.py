"""Lab 2: reference counts.  A second name for an object is a new
reference, not a new object."""
import sys

from _common import mark, show

first = second = None
count_one = count_two = 0

first = "-".join(["memory", "lab", "two"])   # built at run time: a fresh str
count_one = sys.getrefcount(first)
mark("bind a second name")
second = first
mark("report")
count_two = sys.getrefcount(first)
show("text", first)
show("refcount with one name", count_one)
show("refcount with two names", count_two)
show("grew by", count_two - count_one)
show("first is second", first is second)
