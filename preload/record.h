/*
 * record.h - the producer's fast path: turning one allocator call into
 * events in the calling thread's ring.  Every wrapper (malloc family, and
 * later the Python allocator hooks) goes through these few inline functions.
 */
#ifndef MEMTRACE_RECORD_H
#define MEMTRACE_RECORD_H

#include <stdint.h>

#include <memtrace/trace_format.h>

#include "lifecycle.h"
#include "native.h"
#include "ring.h"
#include "threads.h"
#include "tracer.h"
#include "writer.h"

/* The fast path is inlined into every wrapper, as it was before its
 * per-thread lookup made it too large for the compiler's own choice. */
#define mt_likely(x) __builtin_expect(!!(x), 1)
#define mt_unlikely(x) __builtin_expect(!!(x), 0)

/* Takes the thread's ring for one call that will publish up to `need`
 * events, with `busy` set; NULL when nothing is to be recorded. */
static inline __attribute__((always_inline)) struct mt_ring *
mt_record_begin(uint64_t need)
{
	/* Off, or not decided yet: nothing about threads is known then. */
	if (mt_unlikely(!__atomic_load_n(&mt_active, __ATOMIC_RELAXED)) && !mt_tracer_start())
		return NULL;
	struct mt_ring *r = mt_thread_ring();
	if (mt_unlikely(!r))
		return NULL;
	if (mt_unlikely(r->busy)) {
		/* A signal handler interrupted this thread inside the tracer. */
		r->lost++;
		return NULL;
	}
	mt_ring_busy(r, 1);
	if (mt_unlikely(mt_ring_reserve(r, need))) {
		mt_ring_busy(r, 0);
		mt_thread_release(r);
		return NULL;
	}
	return r;
}

/* The epoch of the event about to be recorded in r: see tracer.h for
 * where the caller reads it. */
static inline uint64_t mt_record_epoch(struct mt_ring *r)
{
	uint64_t e = mt_epoch_read();
	r->epoch = e;
	return e;
}

static inline void mt_record_put(struct mt_ring *r, uint64_t i, uint64_t epoch, uint64_t op,
				 uint64_t size, const void *addr, uint64_t aux)
{
	struct mt_event *e = mt_ring_slot(r, i);
	e->epoch = epoch;
	e->addr = (uint64_t)(uintptr_t)addr;
	e->size = MT_EV_PACK(op, size);
	e->aux = aux;
}

/* Publishes n events.  Every MT_EPOCH_EVENTS of them the thread may advance
 * the epoch itself, and every kick_mask + 1 it calls the writer: both
 * powers of two, checked at once. */
static inline void mt_record_end(struct mt_ring *r, uint64_t n)
{
	mt_ring_publish(r, n);
	mt_ring_busy(r, 0);
	if (mt_unlikely((r->head & r->kick_mask & (MT_EPOCH_EVENTS - 1)) < n))
		mt_ring_crossed(r, n);
	mt_thread_release(r);
}

/*
 * A block passes from one thread to another only through the allocator:
 * one thread gives it back, the allocator makes it again for another.
 * Each thread keeps the addresses of the blocks it made and has not given
 * back.  A thread that gives back any other block (made by another
 * thread, or before tracing) clears the address from the other threads'
 * tables: the thread that made the block there does not own the next
 * block the allocator makes there, even if it comes back to it.  And
 * unless no other thread has recorded an event in the epoch it read, it
 * advances the epoch for the give-back, so that the records order every
 * hand-over between threads (docs/ordering.md).  While one thread
 * records there is no hand-over, and no advance.
 */

static inline int mt_op_gives_back(uint64_t op)
{
	int kind = MT_EV_OP_KIND(op);
	return kind == MT_REC_FREE || kind == MT_REC_REALLOC_OUT || kind == MT_REC_ARENA_FREE ||
	       kind == MT_REC_MUNMAP || kind == MT_REC_MREMAP_OUT;
}

static inline int mt_op_makes(uint64_t op)
{
	int kind = MT_EV_OP_KIND(op);
	return kind == MT_REC_ARENA_ALLOC || kind == MT_REC_MMAP || kind == MT_REC_MREMAP_IN;
}

/*
 * Under the GIL, Python's threads take turns, and pymalloc hands a block
 * one thread freed to the next thread that asks, with no give-back of a
 * foreign block to tell.  So the first Python event of a thread's turn
 * advances the epoch: no epoch then holds two threads' Python events.
 */
static inline int mt_record_new_turn(struct mt_ring *r, uint64_t op)
{
	if (MT_EV_OP_DOM(op) < MT_DOM_PYMEM && MT_EV_OP_KIND(op) != MT_REC_ARENA_ALLOC &&
	    MT_EV_OP_KIND(op) != MT_REC_ARENA_FREE)
		return 0;
	if (mt_likely(__atomic_load_n(&mt_epoch.turn, __ATOMIC_RELAXED) == r) ||
	    !__atomic_load_n(&mt_epoch.turns, __ATOMIC_RELAXED))
		return 0;
	__atomic_store_n(&mt_epoch.turn, r, __ATOMIC_RELAXED);
	return 1;
}

static inline int mt_several_threads(void)
{
	return __atomic_load_n(&mt_epoch.threads, __ATOMIC_RELAXED) != 0;
}

/* A block the thread made, once two threads record (until then its
 * table stays empty: an empty table only costs advances later). */
static inline void mt_record_made(struct mt_ring *r, const void *addr)
{
	if (addr && mt_several_threads())
		__atomic_store_n(mt_own_slot(r, addr), (uintptr_t)addr, __ATOMIC_RELAXED);
}

/* The epoch of a block given back: see above. */
static inline uint64_t mt_record_give_back(struct mt_ring *r, const void *addr)
{
	if (mt_likely(!mt_several_threads()))
		return mt_record_epoch(r);
	uint64_t *own = mt_own_slot(r, addr);
	if (__atomic_load_n(own, __ATOMIC_RELAXED) == (uintptr_t)addr) {
		__atomic_store_n(own, 0, __ATOMIC_RELAXED);
		return mt_record_epoch(r);
	}
	uint64_t e = mt_record_epoch(r);
	return mt_threads_given_back(r, addr, e) ? (r->epoch = mt_epoch_advance()) : e;
}

/* One event: a free before the real call releases the block, an
 * allocation after it returns (tracer.h). */
static inline __attribute__((always_inline)) void
mt_record(uint64_t op, uint64_t size, const void *addr, uint64_t aux)
{
	struct mt_ring *r = mt_record_begin(1);
	if (!r)
		return;
	uint64_t epoch;
	if (mt_op_gives_back(op)) {
		epoch = mt_record_give_back(r, addr);
	} else {
		epoch = mt_record_epoch(r);
		if (mt_op_makes(op))
			mt_record_made(r, addr);
	}
	if (mt_record_new_turn(r, op))
		epoch = r->epoch = mt_epoch_advance();
	mt_record_put(r, 0, epoch, op, size, addr, aux);
	mt_record_end(r, 1);
}

/* An allocation, with the thread's native stack and (for the PyMem and
 * PyObject domains) its Python location, each published only when it
 * differs from what this thread published last. */
static inline __attribute__((always_inline)) void
mt_record_alloc(uint64_t op, uint64_t size, const void *p, uint64_t aux,
				   int with_loc, uint64_t loc)
{
	int native = mt_unlikely(mt_native_on) && !mt_self.internal;
	uint64_t stack = native ? mt_native_stack() : 0;
	struct mt_ring *r = mt_record_begin(3);
	if (!r)
		return;
	uint64_t epoch = mt_record_new_turn(r, op) ? (r->epoch = mt_epoch_advance())
						   : mt_record_epoch(r), n = 0;
	if (native && stack != r->native_stack) {
		mt_record_put(r, n++, epoch, MT_EV_OP(MT_REC_STACK, 0, 0), 0,
			      (const void *)(uintptr_t)stack, 0);
		r->native_stack = stack;
	}
	if (with_loc && loc != r->py_loc) {
		mt_record_put(r, n++, epoch, MT_EV_OP(MT_REC_LOC, 0, 0), 0, (const void *)(uintptr_t)loc,
			      0);
		r->py_loc = loc;
	}
	mt_record_made(r, p);
	mt_record_put(r, n++, epoch, op, size, p, aux);
	mt_record_end(r, n);
}

/*
 * A realloc is two events: REALLOC_OUT(old) before the call, as for a
 * free, since another thread may get the old block once the call has
 * released it; and REALLOC_IN(size, result) after it returns.  No lock or
 * busy flag is held across the call, which may itself allocate (pymalloc
 * falls back to PyMem_RawRealloc).  The writer joins the two into one
 * REALLOC record when nothing came between them in the thread's ring and
 * the epoch did not move.
 */
static inline void mt_record_realloc_out(int dom, const void *old)
{
	if (old)
		mt_record(MT_EV_OP(MT_REC_REALLOC_OUT, dom, 0), 0, old, 0);
}

static inline void mt_record_realloc_in(int dom, uint64_t size, const void *res)
{
	mt_record_alloc(MT_EV_OP(MT_REC_REALLOC_IN, dom, 0), size, res, 0, 0, 0);
}

#endif
