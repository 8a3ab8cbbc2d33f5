/*
 * tracer.h - process-wide tracer state shared by the preload modules: the
 * on/off switches and the epoch counter read on every event, settings and
 * diagnostics.
 */
#ifndef MEMTRACE_TRACER_H
#define MEMTRACE_TRACER_H

#include <stddef.h>
#include <stdint.h>

/* For the globals the fast path reads: without it, each read goes through
 * the GOT (an extern declaration may be another object's). */
#define MT_HIDDEN __attribute__((visibility("hidden")))

/* Nonzero while events are recorded.  Cleared for good when the trace
 * cannot be written or the process is finishing. */
extern MT_HIDDEN int mt_active;

/* The status the program passed to exit or _exit; -1 until then. */
extern MT_HIDDEN int mt_exit_status;

/*
 * The process's epoch counter (trace_format.h, "Order"), alone on its cache
 * line since every event reads it.  It only grows: the writer advances it
 * each round, and each thread every MT_EPOCH_EVENTS of its events while
 * several threads record (the reader's work on an epoch grows with the
 * events of its threads; one thread's epoch costs it nothing).  A
 * producer reads it inside its record path, with its ring busy (ring.h):
 * after the real call for an allocation, before it for a free.  Loads of one
 * location are ordered by coherence, so an event that happens before
 * another never reads a later epoch than it.
 */
struct mt_epoch_counter {
	_Alignas(64) uint64_t now;
	uint32_t threads;   /* nonzero once a second thread records (threads.c) */
	uint32_t turns;     /* nonzero in a CPython with a GIL (pyshim.c) */
	const void *turn;   /* the ring of the last Python event (record.h) */
	uint32_t several;   /* nonzero while the writer's last round took the
			       events of more than one thread (writer.c) */
	char pad[64 - 2 * sizeof(uint64_t) - 3 * sizeof(uint32_t)];
};
extern MT_HIDDEN struct mt_epoch_counter mt_epoch;
#define MT_EPOCH_EVENTS 256

static inline uint64_t mt_epoch_read(void)
{
	/* The real call is not to move across the read, nor the read across
	 * the ring's busy flag. */
	__atomic_signal_fence(__ATOMIC_SEQ_CST);
	uint64_t e = __atomic_load_n(&mt_epoch.now, __ATOMIC_RELAXED);
	__atomic_signal_fence(__ATOMIC_SEQ_CST);
	return e;
}

static inline uint64_t mt_epoch_advance(void)
{
	return __atomic_add_fetch(&mt_epoch.now, 1, __ATOMIC_RELAXED);
}

/* How native stacks are walked: by the rules of unwind.c where they do
 * (falling back to libunwind), by libunwind only, or both, counting the
 * stacks where they differ (a check of unwind.c, reported at exit). */
enum mt_unwinder { MT_UNWIND_RULES = 0, MT_UNWIND_LIBUNWIND = 1, MT_UNWIND_CHECK = 2 };

/* Which processes of a run are traced (MEMTRACE_FOLLOW). */
enum mt_follow { MT_FOLLOW_ALL = 0, MT_FOLLOW_EXEC = 1, MT_FOLLOW_NONE = 2 };

#define MT_ONLY_MAX 1024

struct mt_config {
	char output[4096];    /* this process's trace file */
	int quiet;            /* MEMTRACE_QUIET */
	int follow;           /* MEMTRACE_FOLLOW: enum mt_follow */
	char only[MT_ONLY_MAX]; /* MEMTRACE_ONLY: comma-separated globs; "": all */
	uint64_t ring_events; /* MEMTRACE_RING_EVENTS */
	unsigned flush_ms;    /* MEMTRACE_FLUSH_MS */
	int zstd_level;       /* MEMTRACE_ZSTD_LEVEL */
	int py_depth;         /* MEMTRACE_PY_DEPTH: Python frames per location */
	int native_depth;     /* MEMTRACE_NATIVE_DEPTH if MEMTRACE_NATIVE, else 0 */
	int unwinder;         /* MEMTRACE_NATIVE_UNWIND: enum mt_unwinder */
	unsigned rss_ms;      /* MEMTRACE_RSS_MS: sampling interval, 0: no samples */
};
extern MT_HIDDEN struct mt_config mt_cfg;

/* Reads and validates the MEMTRACE_* environment; a bad value falls back
 * to the default, and with `warn` (the run's top process: once per run)
 * says so on stderr. */
void mt_config_load(int warn);
/* MEMTRACE_OUTPUT as the environment gives it ("" when unset). */
const char *mt_config_output_setting(void);
/* The trace path MEMTRACE_OUTPUT names for this process (%p: its pid),
 * absolute, into out; -1 when too long. */
int mt_config_expand_output(char *out, size_t cap);
/* Whether an executable's base name matches MEMTRACE_ONLY. */
int mt_config_only_matches(const char *name);

/* One line on stderr, prefixed "memtrace: ", unless MEMTRACE_QUIET=1; never
 * allocates. */
void mt_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* The calling thread's descriptor table is its own, without the program's. */
void mt_log_own_table(void);
/* Whether stderr is a terminal (errno is kept). */
int mt_stderr_is_terminal(void);

#endif
