"""Lab 5: a million ints, del, and gc.collect()."""
import gc

from _common import mark, show

numbers = None
found = None

mark("build a list of a million ints")
numbers = [i for i in range(1_000_000)]
mark("del the list")
del numbers
mark("gc.collect()")
found = gc.collect()
mark("report")
show("gc.collect() found", found)
