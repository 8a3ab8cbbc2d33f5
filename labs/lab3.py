"""Lab 3: mutable and immutable identity.  Adding to an int makes a new
object (or picks a cached one); appending to a list keeps the list."""
from _common import mark, show

x = y = before = after = s = None
servers = None

x = 100
before = id(x)
mark("small int plus one")
x = x + 1
mark("report")
after = id(x)
print("x = 100; x = x + 1:")
show("value", x)
show("id changed", before != after)

y = int("1000")
before = id(y)
mark("big int plus one")
y = y + 1
mark("report")
after = id(y)
print("y = 1000; y = y + 1:")
show("value", y)
show("id changed", before != after)

servers = ["alpha", "beta"]
before = id(servers)
mark("append to a list")
servers.append("gamma")
mark("report")
after = id(servers)
print("servers.append('gamma'):")
show("servers", servers)
show("id changed", before != after)

mark("grow a string")
s = ""
for _ in range(2000):
    s = s + "x"
mark("report")
print("s = s + 'x', 2000 times:")
show("len(s)", len(s))
