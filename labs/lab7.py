"""Lab 7: del ran, yet the OS still shows the memory.  Why, and what gives
it back."""
import ctypes

from _common import mark, show

BLOB = 64 * 1024          # below glibc's mmap threshold (128 KiB or more): from its heap
libc = ctypes.CDLL(None)  # glibc's malloc_trim, loaded before the first mark
values = survivors = blobs = keeper = trimmed = None

mark("case 1: a million floats")
values = [float(i) for i in range(1_000_000)]
mark("case 1: keep every hundredth, drop the rest")
survivors = values[::100]
del values
mark("case 1: drop the survivors")
kept = len(survivors)
del survivors
mark("case 2: a thousand 64 KiB bytes, then one more")
blobs = [b"x" * BLOB for _ in range(1000)]
keeper = b"k" * BLOB
mark("case 2: drop all but the last")
del blobs
mark("case 2: malloc_trim(0)")
trimmed = libc.malloc_trim(0)
mark("case 2: drop the last")
del keeper
mark("report")
show("case 1: survivors kept", kept)
show("case 2: malloc_trim(0) returned", trimmed)
