/*
 * tracer.h - process-wide tracer state shared by the preload modules: the
 * on/off switches read on every event, the clock, settings and diagnostics.
 */
#ifndef MEMTRACE_TRACER_H
#define MEMTRACE_TRACER_H

#include <stdint.h>
#include <x86intrin.h>

/* Nonzero while events are recorded.  Cleared for good when the trace
 * cannot be written or the process is finishing. */
extern int mt_active;

/* Nonzero once a second thread records events.  Until then the only
 * producer's order is the global order and events carry no time stamp. */
extern int mt_multi;

/* A time stamp no earlier than every memory access before it: used after
 * an allocation returns. */
static inline uint64_t mt_clock_stamp(void)
{
	unsigned aux;
	return __rdtscp(&aux);
}

/* A time stamp no later than the stores after it become visible: used
 * before a free, where any later reuse of the block must sort after it. */
static inline uint64_t mt_clock_stamp_early(void)
{
	return __rdtsc();
}

/* How native stacks are walked: by the rules of unwind.c where they do
 * (falling back to libunwind), by libunwind only, or both, counting the
 * stacks where they differ (a check of unwind.c, reported at exit). */
enum mt_unwinder { MT_UNWIND_RULES = 0, MT_UNWIND_LIBUNWIND = 1, MT_UNWIND_CHECK = 2 };

struct mt_config {
	char output[4096];    /* MEMTRACE_OUTPUT with %p expanded */
	int quiet;            /* MEMTRACE_QUIET */
	uint64_t ring_events; /* MEMTRACE_RING_EVENTS */
	unsigned flush_ms;    /* MEMTRACE_FLUSH_MS */
	int zstd_level;       /* MEMTRACE_ZSTD_LEVEL */
	int py_depth;         /* MEMTRACE_PY_DEPTH: Python frames per location */
	int native_depth;     /* MEMTRACE_NATIVE_DEPTH if MEMTRACE_NATIVE, else 0 */
	int unwinder;         /* MEMTRACE_NATIVE_UNWIND: enum mt_unwinder */
};
extern struct mt_config mt_cfg;

/* Reads and validates the MEMTRACE_* environment; complains once per bad
 * value and falls back to the default. */
void mt_config_load(void);
/* Expands %p in MEMTRACE_OUTPUT for the current process into mt_cfg.output. */
int mt_config_expand_output(void);

/* One line on stderr, prefixed "memtrace: ", unless MEMTRACE_QUIET=1; never
 * allocates. */
void mt_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Whether stderr is a terminal (errno is kept). */
int mt_stderr_is_terminal(void);

#endif
