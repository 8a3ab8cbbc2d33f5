/*
 * trace_format.h - the memtrace trace file format, shared by the preload
 * library (which writes it) and the tools (which read it).  This is the only
 * place the format is defined.
 *
 * A trace is a file preamble followed by blocks:
 *
 *   preamble  "MEMTRACE" u16 major u16 minor u32 reserved    (16 bytes, LE)
 *   block     u32 MT_BLOCK_MAGIC  u8 type  u8 0  u16 0  u32 len   (12 bytes)
 *             followed by `len` bytes: one zstd frame with its content size
 *             and checksum, so every block is verified on its own.
 *
 * The first block is MT_BLOCK_HEADER, then MT_BLOCK_EVENTS blocks, then a
 * MT_BLOCK_FOOTER.  A process killed mid-run leaves no footer and possibly a
 * torn last block; readers use every complete block before it.  A footer may
 * be followed by more blocks (an exec that failed, a vfork child that
 * returned); the last footer holds the final totals.
 *
 * Header and footer payloads are key/value lists.  Each key is a varint whose
 * low bit gives the value type (0: varint, 1: length-prefixed bytes), so a
 * reader skips keys it does not know.
 *
 * Event payloads are a sequence of segments (format 2).  A segment is a
 * STREAM record (stream number, byte length) followed by that many bytes of
 * the stream's records; zero bytes between records are padding.  Stream 0
 * is the process's own: definitions, the writer's epochs, times and
 * samples, LOST and HORIZON.  Every other stream holds one thread's records
 * in the order the thread made them, and its first segment opens with a
 * THREAD record; a stream number is never reused within a trace (a thread
 * that starts later, even with the same tid, gets a new stream).
 *
 * Each record starts with a tag byte: the low five bits are the record
 * kind, bits 5-6 the allocator domain.  Integers are LEB128 varints;
 * addresses are zigzag varints of the difference to the previous address
 * of the same stream (the first of a stream is relative to zero): the
 * difference runs on across a stream's segments and blocks, which keeps
 * a thread's heap-local traffic to 2-3 bytes before compression.
 *
 * Order.  No record carries a time stamp of its own.  The process keeps an
 * epoch counter that only grows; an event record belongs to the epoch the
 * last EPOCH record of its stream announced (0 before the first).  When
 * event a happens before event b (in one thread's program order, or across
 * threads through any synchronization, the allocator's own included),
 * epoch(a) <= epoch(b).  Events of different epochs are therefore ordered by
 * their epochs; within one epoch, each thread's records are in stream order,
 * and records of different threads on one address follow from its life (an
 * allocation, then its free, then the next allocation at that address).
 * docs/ordering.md shows why that order gives the figures of a global
 * order, and what breaks the remaining ties.  A HORIZON record (stream 0)
 * promises that every event record after it in the file belongs to an
 * epoch at or above its value, so a reader settles the order of all
 * earlier epochs there and keeps only the records of one writer round.
 */
#ifndef MEMTRACE_TRACE_FORMAT_H
#define MEMTRACE_TRACE_FORMAT_H

#include <stdint.h>

#define MT_FILE_MAGIC "MEMTRACE"
#define MT_FILE_MAGIC_LEN 8
#define MT_FORMAT_MAJOR 2 /* readers refuse any other major: 2.0 made the
			    * streams per thread, and format 1 is no longer read */
#define MT_FORMAT_MINOR 0 /* new header and footer keys are skipped by any
			    * reader of the major, new record kinds stop it */
#define MT_PREAMBLE_LEN 16

#define MT_BLOCK_MAGIC 0x4b42544du /* "MTBK" little-endian */
#define MT_BLOCK_HEADER_LEN 12
#define MT_BLOCK_MAX_RAW (1u << 20)  /* uncompressed payload bound */
#define MT_BLOCK_MAX_LEN (2u << 20)  /* compressed payload bound */

enum mt_block_type {
	MT_BLOCK_HEADER = 1,
	MT_BLOCK_EVENTS = 2,
	MT_BLOCK_FOOTER = 3,
};

/* Allocator domains: plain malloc, then CPython's three PyMem domains. */
enum mt_domain {
	MT_DOM_MALLOC = 0,
	MT_DOM_PYRAW = 1,
	MT_DOM_PYMEM = 2,
	MT_DOM_PYOBJ = 3,
	MT_DOM_COUNT = 4,
};

/*
 * Record kinds.  Sizes are the requested sizes; an address of 0 means the
 * call failed (and the program saw NULL).
 *
 *   MALLOC, CALLOC            size, addr
 *   ALIGNED                   fn (enum mt_aligned_fn), alignment, size, addr
 *   REALLOC                   old, size, addr: in place, from NULL, failed
 *                             (addr 0, old kept) or realloc(p, 0) freeing p
 *                             (size 0, addr 0)
 *   REALLOC_OUT, REALLOC_IN   a realloc that moved: OUT(old) is stamped
 *                             before the call and IN(size, addr) after it, so
 *                             another thread may reuse `old` in between.
 *                             Pair them per thread.
 *   FREE                      addr (free(NULL) is not recorded)
 *   THREAD                    tid: the first record of a thread's stream
 *   TIME                      stream 0: microseconds since the previous TIME
 *                             (the first is since the header's start time),
 *                             read by the writer in stream 0's current epoch
 *   LOST                      stream 0: count of events threads could not
 *                             record (re-entered from a signal handler)
 *   EPOCH                     the epoch counter's advance since the
 *                             stream's previous EPOCH: the stream's
 *                             following records belong to that epoch
 *   HORIZON                   stream 0: the advance since the previous
 *                             HORIZON (see "Order" above)
 *   STREAM                    stream number, byte length: opens a segment;
 *                             only at the top level of an event payload
 *
 * CPython (written only in Python processes):
 *   ARENA_ALLOC, ARENA_FREE   size, addr: a block of CPython's arena
 *                             allocator (domain PYOBJ): pymalloc arenas (the
 *                             header's MT_H_ARENA_SIZE) and, since 3.11, the
 *                             interpreter's frame stack chunks (other sizes)
 *   STRING                    id, length, bytes: defines string `id`
 *   CODE                      id, filename string id, name string id,
 *                             first line: defines code object `id`
 *   FRAME                     id, parent frame id (0: outermost), code id,
 *                             line: defines Python stack node `id`
 *   LOC                       frame id: the thread's current Python location
 *                             (0: none); PYMEM and PYOBJ allocations of the
 *                             thread are attributed to it until the next LOC
 *   MARK                      string id: the program marked a step here
 *   SCRIPT                    frame id: the thread's innermost frame of the
 *                             main script (the file run as __main__), a
 *                             node with no parent (0: none on the stack);
 *                             written when it changed, before the thread's
 *                             next PYMEM or PYOBJ event or arena event, so
 *                             that every event of the thread, frees too,
 *                             happens while that line runs
 *
 * Native stacks (MEMTRACE_NATIVE=1):
 *   MODULE                    id, start, end, load bias, path string id,
 *                             build-id string id (hex, 0: none): a loaded
 *                             object's address range
 *   MODULE_GONE               id: that object was unloaded
 *   NATIVE_FRAME              id, parent frame id (0: outermost), ip: a node
 *                             of the stack tree; ips are return addresses
 *                             (the innermost one is the caller of the
 *                             allocator)
 *   STACK                     frame id: the thread's current native stack;
 *                             its allocation records are attributed to it
 *                             until the next STACK
 *
 * The program's own mappings: mmap, munmap and mremap calls
 * that reach libc through the program's or a library's PLT.  glibc's
 * internal mappings (large malloc chunks, thread stacks, the loader) never
 * do, and CPython's arena allocator is recorded as ARENA_* instead.
 * Lengths are as passed; the kernel works in whole pages.
 *   MMAP                      size, addr (0: failed), prot, flags
 *   MUNMAP                    size, addr: recorded before the call, as
 *                             for FREE, and only when the kernel cannot
 *                             refuse it for its arguments
 *   MREMAP_OUT, MREMAP_IN     as REALLOC_OUT/IN: OUT(old size, old addr)
 *                             before the call, IN(new size, new addr,
 *                             flags) after it (addr 0: failed, the old
 *                             mapping stays)
 *
 * What the OS sees:
 *   SAMPLE                    mask, then one varint per set bit of mask,
 *                             lowest first (enum mt_sample_field): resident
 *                             memory and the C allocator's figures at this
 *                             point of the stream.  A reader skips values
 *                             of bits it does not know.
 *
 * Definitions (STRING, CODE, FRAME, MODULE, MODULE_GONE, NATIVE_FRAME) are
 * stream 0's and precede their first use in the file.  MARK, LOC, STACK,
 * SCRIPT and a mark's SAMPLE are in the marking or allocating thread's
 * stream; the writer's periodic SAMPLEs in stream 0.
 */
enum mt_rec_kind {
	MT_REC_MALLOC = 1,
	MT_REC_CALLOC = 2,
	MT_REC_ALIGNED = 3,
	MT_REC_REALLOC = 4,
	MT_REC_REALLOC_OUT = 5,
	MT_REC_REALLOC_IN = 6,
	MT_REC_FREE = 7,
	MT_REC_THREAD = 8,
	MT_REC_TIME = 9,
	MT_REC_LOST = 10,
	MT_REC_ARENA_ALLOC = 11,
	MT_REC_ARENA_FREE = 12,
	MT_REC_STRING = 13,
	MT_REC_CODE = 14,
	MT_REC_FRAME = 15,
	MT_REC_LOC = 16,
	MT_REC_MARK = 17,
	MT_REC_MODULE = 18,
	MT_REC_MODULE_GONE = 19,
	MT_REC_NATIVE_FRAME = 20,
	MT_REC_STACK = 21,
	MT_REC_MMAP = 22,
	MT_REC_MUNMAP = 23,
	MT_REC_MREMAP_OUT = 24,
	MT_REC_MREMAP_IN = 25,
	MT_REC_SAMPLE = 26,
	MT_REC_SCRIPT = 27,
	MT_REC_EPOCH = 28,
	MT_REC_HORIZON = 29,
	MT_REC_STREAM = 30,
	MT_REC_KIND_MAX = 31,
};

#define MT_TAG(kind, dom) ((uint8_t)((kind) | ((dom) << 5)))
#define MT_TAG_KIND(tag) ((tag) & 0x1f)
#define MT_TAG_DOM(tag) (((tag) >> 5) & 0x3)

/*
 * The figures of a SAMPLE, in bytes (BRK: an address).  The writer thread
 * takes one every MEMTRACE_RSS_MS, a marking thread one right after its
 * MARK, and the writer a last one before each footer.  The glibc figures
 * are mallinfo2()'s, left out while their cost would exceed the writer's
 * budget for them, and always when malloc is not glibc's.
 */
enum mt_sample_field {
	MT_S_RSS_ANON = 0,     /* /proc/self/status RssAnon */
	MT_S_RSS_FILE = 1,     /* RssFile: file-backed pages (code, libraries, files) */
	MT_S_RSS_SHMEM = 2,    /* RssShmem */
	MT_S_BRK = 3,          /* the program break */
	MT_S_BRK_RESIDENT = 4, /* resident bytes of [MT_H_START_BRK, BRK), mincore */
	MT_S_GLIBC_ARENA = 5,  /* mallinfo2 arena: bytes of glibc's heaps (brk and thread arenas) */
	MT_S_GLIBC_MMAP = 6,   /* hblkhd: bytes of chunks glibc mapped on their own */
	MT_S_GLIBC_USED = 7,   /* uordblks: bytes in use in the heaps */
	MT_S_GLIBC_FREE = 8,   /* fordblks: bytes free in the heaps */
	MT_S_GLIBC_TOP = 9,    /* keepcost: the main heap's top chunk, which trimming gives back */
	MT_S_OWN_MAPPED = 10,  /* memtrace's own mappings (rings, buffers, compressor) */
	MT_S_OWN_RESIDENT = 11,/* their resident bytes */
	MT_S_COUNT = 12,
};

enum mt_aligned_fn {
	MT_FN_POSIX_MEMALIGN = 0,
	MT_FN_ALIGNED_ALLOC = 1,
	MT_FN_MEMALIGN = 2,
	MT_FN_VALLOC = 3,
	MT_FN_PVALLOC = 4,
};

/* Header keys (low bit: 0 varint, 1 bytes). */
#define MT_KEY_VARINT(n) ((uint64_t)(n) << 1)
#define MT_KEY_BYTES(n) (((uint64_t)(n) << 1) | 1)
enum mt_header_key {
	MT_H_PID = MT_KEY_VARINT(1),
	MT_H_PPID = MT_KEY_VARINT(2),
	MT_H_START_NS = MT_KEY_VARINT(3), /* CLOCK_REALTIME at start */
	MT_H_PAGE_SIZE = MT_KEY_VARINT(4),
	MT_H_POOL_SIZE = MT_KEY_VARINT(5), /* pymalloc pool size, if Python */
	MT_H_VERSION = MT_KEY_BYTES(6),    /* library version string */
	MT_H_EXE = MT_KEY_BYTES(7),
	MT_H_ARGV = MT_KEY_BYTES(8),       /* NUL-separated */
	MT_H_PY_VERSION = MT_KEY_VARINT(9), /* PY_VERSION_HEX, if Python */
	MT_H_PY_DEPTH = MT_KEY_VARINT(10),  /* Python frames kept per location */
	MT_H_ARENA_SIZE = MT_KEY_VARINT(11), /* pymalloc arena size, if Python */
	MT_H_NATIVE_DEPTH = MT_KEY_VARINT(12), /* native frames kept, if any */
	MT_H_PY_FREE_THREADED = MT_KEY_VARINT(13), /* 1: a free-threaded CPython (no
						    * pymalloc: no pool or arena size) */
	/* The run: the tree of processes one traced command made.  Trace ids
	 * are random and unique in their run; 0 stands for none. */
	MT_H_TRACE_ID = MT_KEY_VARINT(14),
	MT_H_PARENT_TRACE = MT_KEY_VARINT(15), /* the parent process's trace */
	MT_H_EXEC_PRED = MT_KEY_VARINT(16),    /* the image this one's exec replaced */
	MT_H_RUN_ID = MT_KEY_VARINT(17),
	MT_H_RUN_TOP = MT_KEY_VARINT(18),      /* 1: an image of the run's top process */
	MT_H_RUN_NAME = MT_KEY_BYTES(19),      /* the file name NAME.trace of the run's
	                                          first trace; the others are
	                                          NAME.PID.trace, NAME.PID.N.trace */
	MT_H_RSS_MS = MT_KEY_VARINT(20),     /* MEMTRACE_RSS_MS (0: no samples) */
	MT_H_START_BRK = MT_KEY_VARINT(21),  /* the initial program break: start of the brk heap */
	MT_H_MALLOC = MT_KEY_VARINT(22),     /* enum mt_malloc_kind */
};

/* Whose malloc the program's calls reach after the tracer's. */
enum mt_malloc_kind {
	MT_MALLOC_GLIBC = 1, /* glibc's: mallinfo2() describes the program's heap */
	MT_MALLOC_OTHER = 2, /* another allocator: glibc's figures would describe nothing */
};

/* Footer keys. */
enum mt_footer_key {
	MT_F_EVENTS = MT_KEY_VARINT(1),  /* records of allocator events */
	MT_F_LOST = MT_KEY_VARINT(2),    /* events that could not be recorded */
	MT_F_WAITS = MT_KEY_VARINT(3),   /* times a producer found its ring full */
	MT_F_THREADS = MT_KEY_VARINT(4), /* threads that recorded events */
	MT_F_END_US = MT_KEY_VARINT(5),  /* microseconds since start */
	MT_F_REASON = MT_KEY_VARINT(6),  /* enum mt_end_reason */
	MT_F_BLOCKS = MT_KEY_VARINT(7),  /* event blocks before this footer */
	MT_F_EXIT_STATUS = MT_KEY_VARINT(8), /* exit status, when the program called exit or _exit */
	MT_F_SAMPLES = MT_KEY_VARINT(9), /* SAMPLE records written */
	MT_F_SAMPLE_US = MT_KEY_VARINT(10), /* the writer's CPU microseconds for them */
};

enum mt_end_reason {
	MT_END_EXIT = 0,
	MT_END_EXEC = 1,  /* written before exec; more blocks if it failed */
	MT_END__EXIT = 2, /* _exit or _Exit */
};

#endif
