/*
 * threads.h - per-thread tracer state and the registry of event rings.
 */
#ifndef MEMTRACE_THREADS_H
#define MEMTRACE_THREADS_H

#include <stddef.h>
#include <stdint.h>

#include "ring.h"

struct mt_thread {
	struct mt_ring *ring; /* NULL until the thread's first event */
	uint32_t internal;    /* >0 while the tracer itself runs: not traced */
	uint32_t state;       /* enum mt_thread_state */
};

enum mt_thread_state {
	MT_THREAD_NEW = 0,
	MT_THREAD_ACTIVE = 1,
	MT_THREAD_EXITED = 2, /* past its destructor: events use the late ring */
};

extern __thread struct mt_thread mt_self __attribute__((tls_model("initial-exec")));

/* Slow path of every event: gives the thread a ring, or NULL when the event
 * must not be recorded here (tracer off or internal).  Exited threads get
 * the shared late ring, already locked: release with mt_thread_release(). */
struct mt_ring *mt_thread_attach(void);
static inline struct mt_ring *mt_thread_ring(void)
{
	struct mt_ring *r = mt_self.ring;
	return __builtin_expect(r != NULL, 1) ? r : mt_thread_attach();
}
void mt_thread_release(struct mt_ring *r);

/* Brackets the tracer's own work on an application thread (its allocations
 * are not the program's): hides the ring so the fast path falls through to
 * mt_thread_attach, which sees `internal` and records nothing. */
static inline struct mt_ring *mt_internal_enter(void)
{
	struct mt_ring *r = mt_self.ring;
	mt_self.ring = NULL;
	mt_self.internal++;
	return r;
}

static inline void mt_internal_leave(struct mt_ring *r)
{
	mt_self.internal--;
	mt_self.ring = r;
}

/* Sets up the registry and the thread-exit hook; idempotent. */
void mt_threads_init(void);

/* The writer's view of the registry: copies the ring list into *arr (grown
 * with realloc as needed) and returns its length. */
size_t mt_threads_snapshot(struct mt_ring ***arr, size_t *cap);
/* Moves rings whose thread exited and that are drained to the free list.
 * Only the writer calls this, between two snapshots. */
void mt_threads_recycle(void);
/* Lost events, producer waits and threads, over all rings ever used. */
void mt_threads_totals(uint64_t *lost, uint64_t *waits, uint64_t *threads);

/* Makes every other thread's earlier stores visible to the caller and its
 * later loads see the caller's stores: an asymmetric full barrier. */
void mt_barrier_all(void);

/* fork(): the registry lock is held across it; in the child only the
 * forking thread's ring survives, holding only events from after the fork. */
void mt_threads_fork_prepare(void);
void mt_threads_fork_parent(void);
void mt_threads_fork_child(void);

#endif
