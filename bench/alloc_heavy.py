"""Allocation-heavy Python workload for the benchmarks (DESIGN.md's
reference workload): a 200k-entry dict of small lists, strings, tuples and
dicts, then a json.dumps / json.loads round trip of it.  About a second
untraced and millions of allocator calls, nearly all in the PyMem domains.

usage: python3 alloc_heavy.py [ENTRIES]
"""

import json
import sys


def build(entries):
    data = {}
    for i in range(entries):
        data["k%d" % i] = [i, "s%d" % i, (i, i + 1), {"v": i}]
    return data


def main():
    entries = int(sys.argv[1]) if len(sys.argv) > 1 else 200_000
    data = build(entries)
    text = json.dumps(data)
    back = json.loads(text)
    # deterministic output, so a traced run can be checked against an
    # untraced one
    print(len(data), len(text), len(back))


if __name__ == "__main__":
    main()
