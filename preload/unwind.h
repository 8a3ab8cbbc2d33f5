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

/* Loads libdw; own_start/own_end bound the tracer's text, whose frames
 * (kept with frame pointers) are left out of every stack.  -1 when libdw
 * is not there: then there is no fast way. */
int mt_unwind_start(uintptr_t own_start, uintptr_t own_end);

/* Up to max return addresses, innermost first, starting in the program's
 * code that called into the tracer; -1 when the stack needs libunwind. */
int mt_unwind_fast(void **ips, int max);

/* Under the meta lock, when objects were unloaded: what was learnt about
 * their addresses no longer holds. */
void mt_unwind_forget(void);

#endif
