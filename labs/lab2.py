"""Lab 2: reference counts.  A second name for an object is a new
reference, not a new object.  Then the seed's own two lines, whose string
is a constant of the script: who holds its references."""
import gc
import sys

from _common import mark, show

first = second = None
count_one = count_two = 0
message = copy_msg = None
seed_one = seed_two = 0

first = "-".join(["memory", "lab", "two"])   # built at run time: a fresh str
count_one = sys.getrefcount(first)
mark("bind a second name")
second = first
mark("report")
count_two = sys.getrefcount(first)
mark("the seed's constant string")
message = "DevSecOps"
seed_one = sys.getrefcount(message)
copy_msg = message
seed_two = sys.getrefcount(message)
mark("who holds it")


def holder(ref, consts):
    """What a referrer of the constant is (consts: the module code's)."""
    if ref is globals():
        return "the module's globals"
    if ref is consts:
        return "the module code's constants (%d)" % len(ref)
    if isinstance(ref, list) and b'"DevSecOps"' in ref:
        return "the parser's arena (a list of %d objects)" % len(ref)
    return type(ref).__name__


module_consts = sys._getframe().f_code.co_consts
holders = sorted(holder(ref, module_consts) for ref in gc.get_referrers(message))
# The same two lines compiled by compile(), whose parser arena is freed
# before exec runs them (another name-like string: "DevSecOps" itself is
# interned, and this module's references would count too).
counts = []
exec(compile('message = "SecDevOps"\ncounts.append(sys.getrefcount(message))\n'
             'copy_msg = message\ncounts.append(sys.getrefcount(message))\n',
             "seed-lines", "exec"), {"sys": sys, "counts": counts})
show("text", first)
show("refcount with one name", count_one)
show("refcount with two names", count_two)
show("grew by", count_two - count_one)
show("first is second", first is second)
show("seed: refcount of the constant", seed_one)
show("seed: after copy_msg = message", seed_two)
show("seed: held by", "; ".join(holders))
show("seed lines after compile()", " ".join(map(str, counts)))
