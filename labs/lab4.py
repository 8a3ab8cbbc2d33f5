"""Lab 4: shallow and deep copies of a list holding an int and a list."""
import copy

from _common import mark, show

original = alias = shallow = deep = None

original = [1, [80, 443]]
mark("alias")
alias = original
mark("slice copy")
shallow = original[:]
mark("deep copy")
deep = copy.deepcopy(original)
mark("append through the original")
original[1].append(8080)
mark("report")
show("original", original)
show("alias", alias)
show("slice copy", shallow)
show("deep copy", deep)
show("slice copy shares the inner list", shallow[1] is original[1])
show("deep copy shares the inner list", deep[1] is original[1])
