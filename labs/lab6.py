"""Lab 6: sys.getsizeof of a five-element list and tuple."""
import sys

from _common import mark, show

items = values = None
source = range(1, 6)

mark("build a list")
items = [*source]
mark("build a tuple")
values = tuple(source)
mark("report")
show("list", items)
show("tuple", values)
show("sys.getsizeof(list)", sys.getsizeof(items))
show("sys.getsizeof(tuple)", sys.getsizeof(values))
