"""Allocation-heavy Python workload for the benchmarks (DESIGN.md's
reference workload): a 200k-entry dict of small lists, strings, tuples and
dicts, then a json.dumps / json.loads round trip of it.  About a second
untraced and millions of allocator calls, nearly all in the PyMem domains.
With THREADS, that many threads each do it with ENTRIES / THREADS entries
(in parallel on a free-threaded build).  With --idle, a thread that does
nothing (it waits on an Event until the work is done) starts first: a
program with a second thread that never allocates, as a server's or a
library's background thread is.

usage: python3 alloc_heavy.py [--idle] [ENTRIES [THREADS]]
"""

import json
import sys
import threading


def build(entries):
    data = {}
    for i in range(entries):
        data["k%d" % i] = [i, "s%d" % i, (i, i + 1), {"v": i}]
    return data


def round_trip(entries):
    data = build(entries)
    text = json.dumps(data)
    back = json.loads(text)
    return len(data), len(text), len(back)


def main():
    args = sys.argv[1:]
    idle = None
    if args[:1] == ["--idle"]:
        args = args[1:]
        done = threading.Event()
        idle = threading.Thread(target=done.wait)
        idle.start()
    entries = int(args[0]) if len(args) > 0 else 200_000
    threads = int(args[1]) if len(args) > 1 else 0
    if not threads:
        results = [round_trip(entries)]
    else:
        results = [None] * threads

        def work(i):
            results[i] = round_trip(entries // threads)
        workers = [threading.Thread(target=work, args=(i,)) for i in range(threads)]
        for w in workers:
            w.start()
        for w in workers:
            w.join()
    if idle:
        done.set()
        idle.join()
    # deterministic output, so a traced run can be checked against an
    # untraced one
    for r in results:
        print(*r)


if __name__ == "__main__":
    main()
