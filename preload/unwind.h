/*
 * unwind.h - the fast way to a native stack: return addresses from the
 * DWARF call-frame rules of each address, learnt once with libdw and kept
 * in tables, then applied without a general unwinder.  Anything the rules
 * cannot describe (signal frames, code without CFI, a rule beyond "CFA =
 * register + offset") makes the caller fall back to libunwind.
 */
#ifndef MEMTRACE_UNWIND_H
#define MEMTRACE_UNWIND_H

#include <stdint.h>

#define MT_UNWIND_LOCAL_RULES 256 /* a thread's cache of rules */
#define MT_UNWIND_MAX 256         /* frames in a stack, at most */

/* A frame of a walked stack: its stack pointer, return address, the rbp
 * it sees, its rule (see unwind.c), and a hash of its return address and
 * its callers' (mt_unwind_hash). */
struct mt_unwind_frame {
	uintptr_t sp, ip, rbp;
	uint64_t rule, hash;
};

/* What one thread keeps between walks; zeroed, it is a fresh start.  The
 * fields belong to unwind.c, but for stack and n. */
struct mt_unwind_thread {
	uintptr_t lo, hi; /* the thread's stack; hi 0: not known yet */
	int failed;
	unsigned generation; /* of the shared rules when these were taken */
	struct {
		uintptr_t ip;
		uint64_t rule;
	} rules[MT_UNWIND_LOCAL_RULES];
	struct mt_unwind_frame stack[MT_UNWIND_MAX];   /* the last stack, outermost first */
	struct mt_unwind_frame walked[MT_UNWIND_MAX];  /* this walk's new frames */
	int n;     /* frames in stack */
	int whole; /* stack[0] is the outermost frame, not one cut at a depth */
};

#define MT_UNWIND_HASH_SEED 0x9e3779b97f4a7c15ull

/* A stack's hash, frame by frame from the outermost: h is its callers'. */
static inline uint64_t mt_unwind_hash(uint64_t h, uintptr_t ip)
{
	h = (h ^ ip) * 0xbf58476d1ce4e5b9ull;
	return h ^ h >> 31;
}

/* Loads libdw; own_start/own_end bound the tracer's text, whose frames
 * (kept with frame pointers) are left out of every stack.  -1 when libdw
 * is not there: then there is no fast way. */
int mt_unwind_start(uintptr_t own_start, uintptr_t own_end);

/* The stack of the program's code that called into the tracer, up to max
 * frames, outermost first in t->stack[0..n); n, or -1 when the stack needs
 * libunwind.  t is the calling thread's own. */
int mt_unwind_fast(struct mt_unwind_thread *t, int max);

/* Under the meta lock, when objects were unloaded: what was learnt about
 * their addresses no longer holds. */
void mt_unwind_forget(void);

#endif
