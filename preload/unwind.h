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
#define MT_UNWIND_LAST_MAX 64     /* frames of a thread's last stack kept */

/* A frame of a thread's last stack: its stack pointer, return address,
 * the rbp it sees and its rule (see unwind.c). */
struct mt_unwind_frame {
	uintptr_t sp, ip, rbp;
	uint64_t rule;
};

/* What one thread keeps between walks; zeroed, it is a fresh start.  The
 * fields belong to unwind.c. */
struct mt_unwind_thread {
	uintptr_t lo, hi; /* the thread's stack; hi 0: not known yet */
	int failed;
	unsigned generation; /* of the shared rules when these were taken */
	struct {
		uintptr_t ip;
		uint64_t rule;
	} rules[MT_UNWIND_LOCAL_RULES];
	struct mt_unwind_frame last[2][MT_UNWIND_LAST_MAX]; /* the last stack, and room */
	int nlast, which;
	int last_whole; /* the last stack ended in its outermost frame */
};

/* Loads libdw; own_start/own_end bound the tracer's text, whose frames
 * (kept with frame pointers) are left out of every stack.  -1 when libdw
 * is not there: then there is no fast way. */
int mt_unwind_start(uintptr_t own_start, uintptr_t own_end);

/* Up to max return addresses, innermost first, starting in the program's
 * code that called into the tracer; -1 when the stack needs libunwind.
 * t is the calling thread's own. */
int mt_unwind_fast(struct mt_unwind_thread *t, void **ips, int max);

/* Under the meta lock, when objects were unloaded: what was learnt about
 * their addresses no longer holds. */
void mt_unwind_forget(void);

#endif
