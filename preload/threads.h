/*
 * threads.h - per-thread tracer state and the registry of event rings.
 *
 * The library has no thread-local storage at all: any TLS segment makes
 * glibc's per-thread bookkeeping (the DTV, a heap block of every thread)
 * larger, and so changes the program's own allocations.  Each thread's
 * state is a struct mt_thread in a mapping of the tracer's own, found
 * through a pthread key (keys below 32 live in the thread descriptor and
 * never allocate).
 *
 * Every event looks the state up, and pthread_getspecific costs some 20
 * instructions an event (measured: 23 on the C benchmark, 75 on the
 * Python one, which looks up three times; the read below costs 4).  So the value is read where
 * glibc keeps it: in the thread descriptor, at an offset found once from
 * the layout glibc publishes for debuggers (libthread_db) and checked by
 * setting the key.  The tracer is never on without it.
 */
#ifndef MEMTRACE_THREADS_H
#define MEMTRACE_THREADS_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "ring.h"
#include "tracer.h"

/* The last Python location a thread looked up (pyframes.c), for the many
 * allocations one instruction makes in a loop. */
struct mt_py_cache {
	const void *code, *instr;
	uint64_t generation, node;
};

/* The thread's last main-script answer (pyframes.c): the code objects of
 * the frames from the innermost one out to the script's frame, that
 * frame's code object, and the script's lines the thread ran.  Zeroed, it
 * keeps nothing. */
#define MT_SCRIPT_CHAIN 64 /* frames out to the main script's, kept */
#define MT_SCRIPT_NODES 64 /* the thread's cache of lines */
struct mt_py_script {
	uint64_t generation;
	int k;             /* frames inside the script's frame */
	int whole;         /* no frame of the script: code[] is every frame */
	const void *main;  /* the code object of the script's frame */
	const void *instr; /* the last line looked up: instruction, node */
	uint64_t node;
	const void *code[MT_SCRIPT_CHAIN];
	struct {
		const void *code, *instr;
		uint64_t node;
	} nodes[MT_SCRIPT_NODES]; /* (code, instruction) -> node */
};

struct mt_thread {
	struct mt_ring *ring; /* NULL until the thread's first event */
	uint32_t internal;    /* >0 while the tracer itself runs: not traced */
	uint32_t state;       /* enum mt_thread_state */
	pthread_t self;       /* finds the struct again once glibc cleared the key */
	pid_t tid;
	struct {
		void *state;  /* native.c's per-thread state, made at the first stack */
		int gone;     /* past its exit, or no memory: no state any more */
	} native;
	struct mt_py_cache py;
	struct mt_py_script script;
	struct mt_thread *next_free;
};

enum mt_thread_state {
	MT_THREAD_FREE = 0,
	MT_THREAD_LIVE = 1,
	MT_THREAD_EXITED = 2, /* past its key destructor: events use the late ring */
};

/* Where every thread descriptor holds the key's value, from the thread
 * pointer; set by mt_threads_init, before the tracer first goes on. */
extern MT_HIDDEN intptr_t mt_thread_slot;

/* The calling thread's state, or NULL when it has none yet, or no more
 * (glibc clears the key before the thread's last frees).  Only once
 * mt_threads_init succeeded. */
static inline struct mt_thread *mt_thread_find(void)
{
	return *(struct mt_thread **)((char *)__builtin_thread_pointer() + mt_thread_slot);
}

/* Slow path of mt_thread_self: finds the state of a thread past its key
 * destructor, or makes one for a new thread.  Never NULL: without memory,
 * a stand-in that records nothing. */
struct mt_thread *mt_thread_adopt(void);

static inline struct mt_thread *mt_thread_self(void)
{
	struct mt_thread *t = mt_thread_find();
	return __builtin_expect(t != NULL, 1) ? t : mt_thread_adopt();
}

/* What the fast path reads of the calling thread: its state, or a zeroed
 * one when it has none yet (reads only: mt_self.internal). */
extern MT_HIDDEN const struct mt_thread mt_thread_none;
static inline const struct mt_thread *mt_thread_view(void)
{
	const struct mt_thread *t = mt_thread_find();
	return t ? t : &mt_thread_none;
}
#define mt_self (*mt_thread_view())

/* Slow path of every event: gives the thread a ring, or NULL when the event
 * must not be recorded here (tracer off or internal).  Exited threads get
 * the shared late ring, already locked: release with mt_thread_release(). */
struct mt_ring *mt_thread_attach(struct mt_thread *t);
static inline struct mt_ring *mt_thread_ring(void)
{
	struct mt_thread *t = mt_thread_find();
	struct mt_ring *r = t ? t->ring : NULL;
	return __builtin_expect(r != NULL, 1) ? r : mt_thread_attach(t);
}
void mt_thread_release_late(struct mt_ring *r);
static inline void mt_thread_release(struct mt_ring *r)
{
	if (__builtin_expect(r->shared, 0))
		mt_thread_release_late(r);
}

/* Brackets the tracer's own work on an application thread (its allocations
 * are not the program's): hides the ring so the fast path falls through to
 * mt_thread_attach, which sees `internal` and records nothing. */
static inline struct mt_ring *mt_internal_enter(void)
{
	struct mt_thread *t = mt_thread_self();
	struct mt_ring *r = t->ring;
	t->ring = NULL;
	t->internal++;
	return r;
}

static inline void mt_internal_leave(struct mt_ring *r)
{
	struct mt_thread *t = mt_thread_self();
	t->internal--;
	t->ring = r;
}

/* Sets up the registry, the thread key and its exit hook, once: 0, or -1
 * when per-thread state cannot be found (said on stderr) and the tracer
 * must stay off.  Called by the first caller of mt_tracer_start only. */
int mt_threads_init(void);

/* The writer's view of the registry: copies the ring list into *arr (grown
 * with realloc as needed) and returns its length. */
size_t mt_threads_snapshot(struct mt_ring ***arr, size_t *cap);
/* Moves rings whose thread exited and that are drained to the free list,
 * and frees the states of threads that are gone.  Only the writer calls
 * this, between two snapshots. */
void mt_threads_recycle(void);
/* A block that self did not make is given back at addr in epoch e: the
 * other threads' tables of the blocks they made forget the address
 * (record.h).  Returns whether another thread has recorded an event in
 * epoch e or later, so that the give-back advances the epoch. */
int mt_threads_given_back(const struct mt_ring *self, const void *addr, uint64_t e);
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
