/*
 * native.h - native call stacks of allocations (MEMTRACE_NATIVE=1).
 */
#ifndef MEMTRACE_NATIVE_H
#define MEMTRACE_NATIVE_H

#include <stdint.h>

#define MT_NATIVE_DEPTH_MAX 256

struct mt_thread;

/* Nonzero when stacks are recorded. */
extern __attribute__((visibility("hidden"))) int mt_native_on;

/* At start-up: loads libunwind and describes the loaded objects. */
int mt_native_start(int depth);
/* The calling thread's stack, as a node id defined in the trace. */
uint64_t mt_native_stack(void);
/* From the writer: notices objects loaded or unloaded since last time. */
void mt_native_poll(void);
void mt_native_fork_child(void);
/* From the thread-exit hook: the thread's own state goes. */
void mt_native_thread_exit(struct mt_thread *t);
/* At exit: what MEMTRACE_NATIVE_UNWIND=check found, on stderr. */
void mt_native_report(void);

#endif
