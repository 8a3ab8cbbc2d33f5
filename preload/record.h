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

static inline uint64_t mt_record_stamp(int early)
{
	if (mt_likely(!__atomic_load_n(&mt_multi, __ATOMIC_RELAXED)))
		return 0;
	return early ? mt_clock_stamp_early() : mt_clock_stamp();
}

static inline void mt_record_put(struct mt_ring *r, uint64_t i, uint64_t ts, uint64_t op,
				 uint64_t size, const void *addr, uint64_t aux)
{
	struct mt_event *e = mt_ring_slot(r, i);
	e->ts = ts;
	e->addr = (uint64_t)(uintptr_t)addr;
	e->size = MT_EV_PACK(op, size);
	e->aux = aux;
}

static inline void mt_record_end(struct mt_ring *r, uint64_t n)
{
	mt_ring_publish(r, n);
	mt_ring_busy(r, 0);
	if (mt_unlikely((r->head & r->kick_mask) < n))
		mt_writer_kick(r);
	mt_thread_release(r);
}

/* One event.  `early` stamps it before the caller's next stores (frees,
 * recorded before the block is released); otherwise after everything the
 * call did (allocations, recorded after they return). */
static inline __attribute__((always_inline)) void
mt_record(uint64_t op, uint64_t size, const void *addr, uint64_t aux, int early)
{
	struct mt_ring *r = mt_record_begin(1);
	if (!r)
		return;
	mt_record_put(r, 0, mt_record_stamp(early), op, size, addr, aux);
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
	uint64_t ts = mt_record_stamp(0), n = 0;
	if (native && stack != r->native_stack) {
		mt_record_put(r, n++, ts, MT_EV_OP(MT_REC_STACK, 0, 0), 0,
			      (const void *)(uintptr_t)stack, 0);
		r->native_stack = stack;
	}
	if (with_loc && loc != r->py_loc) {
		mt_record_put(r, n++, ts, MT_EV_OP(MT_REC_LOC, 0, 0), 0, (const void *)(uintptr_t)loc,
			      0);
		r->py_loc = loc;
	}
	mt_record_put(r, n++, ts, op, size, p, aux);
	mt_record_end(r, n);
}

/*
 * A realloc is two events: REALLOC_OUT(old) stamped before the call, as for
 * a free, since another thread may get the old block once the call has
 * released it; and REALLOC_IN(size, result) after it returns.  No lock or
 * busy flag is held across the call, which may itself allocate (pymalloc
 * falls back to PyMem_RawRealloc).  The writer joins the two into one
 * REALLOC record when nothing came between them.
 */
static inline void mt_record_realloc_out(int dom, const void *old)
{
	if (old)
		mt_record(MT_EV_OP(MT_REC_REALLOC_OUT, dom, 0), 0, old, 0, 1);
}

static inline void mt_record_realloc_in(int dom, uint64_t size, const void *res)
{
	mt_record_alloc(MT_EV_OP(MT_REC_REALLOC_IN, dom, 0), size, res, 0, 0, 0);
}

#endif
