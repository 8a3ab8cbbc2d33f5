"""Lab 1: interning.  Are two names bound to 100 the same object?  And two
bound to 9999?"""
from _common import mark, show

# Every name exists before the measured steps, so that binding it later
# only replaces a value and never grows the module's namespace.
a = b = c = d = text = None

mark("small ints")
a = 100
b = 100
mark("report")
print("small ints, 100 and 100:")
show("id(a) == id(b)", id(a) == id(b))
show("a is b", a is b)

mark("big ints, constants")
a = 9999
b = 9999
mark("report")
print("big ints written as constants, 9999 and 9999:")
show("a is b", a is b)

text = "9999"
mark("big ints, built at run time")
c = int(text)
d = int(text)
mark("report")
print("big ints built at run time, int('9999') twice:")
show("c == d", c == d)
show("c is d", c is d)
