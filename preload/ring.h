/*
 * ring.h - the per-thread event ring: one producer (its thread), one
 * consumer (the writer).  Lock-free; the producer only ever waits when the
 * ring is full, and never drops an event.
 *
 * Epoch protocol (see writer.c for the consumer side): the producer sets
 * `busy` before it reads the epoch counter for an event (tracer.h) and
 * clears it after the event is published; `epoch` is the last one it read.
 * The writer advances the counter, issues an asymmetric barrier
 * (membarrier) and then reads `busy`: a ring that is not busy can only
 * publish events of the new epoch or later, and a busy one only events of
 * its `epoch` or later.  That bounds the epochs still to come (the
 * trace's HORIZON) without any fence on the producer's fast path.
 */
#ifndef MEMTRACE_RING_H
#define MEMTRACE_RING_H

#include <stdint.h>

/* One recorded call.  The record kind, domain and aligned-function code sit
 * in the top ten bits of `size` so that an event fills half a cache line;
 * larger sizes can only be failed requests and saturate. */
struct mt_event {
	uint64_t epoch; /* the epoch counter read for it (tracer.h) */
	uint64_t addr;
	uint64_t size; /* MT_EV_PACK(op, size) */
	uint64_t aux;  /* old address (realloc) or alignment */
};

/* op: kind (5 bits), domain (2 bits), aligned-function code (3 bits). */
#define MT_EV_OP(kind, dom, fn) ((uint64_t)(kind) | (uint64_t)(dom) << 5 | (uint64_t)(fn) << 7)
#define MT_EV_OP_KIND(op) ((int)((op) & 0x1f))
#define MT_EV_OP_DOM(op) ((int)(((op) >> 5) & 0x3))
#define MT_EV_OP_FN(op) ((int)(((op) >> 7) & 0x7))
#define MT_EV_SIZE_MASK ((1ull << 54) - 1)
#define MT_EV_PACK(op, size)                                                           \
	(((size) > MT_EV_SIZE_MASK ? MT_EV_SIZE_MASK : (size)) | ((uint64_t)(op) << 54))
#define MT_EV_OPBITS(packed) ((packed) >> 54)
#define MT_EV_SIZE(packed) ((packed) & MT_EV_SIZE_MASK)

/* What the writer keeps of one stream of the trace between its segments:
 * a ring's (one thread's), or the process's own (stream 0). */
struct mt_stream {
	uint64_t number;
	uint64_t prev_addr; /* the encoder's address state */
	uint64_t epoch;     /* the epoch its last EPOCH announced */
	uint32_t tid;       /* its THREAD */
	uint32_t opened;    /* numbered, with its THREAD written */
};

#define MT_OWN_SLOTS 1024

struct mt_ring {
	/* producer's cache line */
	uint64_t head;       /* next slot to fill; published with release */
	uint64_t tail_seen;  /* producer's cached copy of tail */
	uint32_t busy;       /* see the protocol above */
	uint32_t tid;
	uint64_t epoch;      /* the epoch of the event published last, or in flight */
	uint64_t lost;       /* events dropped by re-entry (signal handlers) */
	uint64_t waits;      /* times the producer found the ring full */
	uint64_t py_loc;     /* Python location last published (pyshim.c) */
	uint64_t native_stack; /* native stack last published (native.c) */
	/* consumer's cache line */
	uint64_t tail;       /* next slot to consume; written by the writer */
	uint32_t exited;     /* the owning thread is gone */
	uint32_t shared;     /* the late-events ring: producers take `lock` */
	uint32_t lock;
	uint32_t out_open;   /* writer: domains with a REALLOC_OUT written alone */
	struct mt_ring *next;/* registry list: changed under the registry lock,
				walked without it (mt_threads_given_back) */
	uint64_t mask;       /* capacity - 1 */
	uint64_t kick_mask;  /* the producer calls the writer each time head
				crosses a multiple of kick_mask + 1 (writer.h) */
	uint64_t stop_head;  /* head when the writer stopped for its thread's fork */
	struct mt_stream stream; /* the writer's: the stream its events go to */
	char pad2[40];
	/* producer's, written only when the thread's main-script line changes */
	uint64_t py_script;  /* main-script frame last published (pyshim.c) */
	char pad3[56];
	/* producer's: the blocks the thread made and has not given back, by
	 * address (record.h) */
	uint64_t own[MT_OWN_SLOTS];
	struct mt_event ev[];
};

/* The slot of r's table an address goes to.  Another thread clears a slot
 * that holds the address of a block it gives back (record.h), so the
 * slots are read and written atomically. */
static inline uint64_t *mt_own_slot(struct mt_ring *r, const void *addr)
{
	uintptr_t a = (uintptr_t)addr;
	return &r->own[((a >> 4) ^ (a >> 12)) & (MT_OWN_SLOTS - 1)];
}

/* mmap()s a ring of `capacity` (a power of two) events; NULL on failure. */
struct mt_ring *mt_ring_new(uint64_t capacity, uint32_t tid);
void mt_ring_delete(struct mt_ring *r);
/* Resets a drained ring for reuse by another thread. */
void mt_ring_reuse(struct mt_ring *r, uint32_t tid);

static inline uint64_t mt_ring_free_slots(struct mt_ring *r)
{
	return r->mask + 1 - (r->head - r->tail_seen);
}

/* Blocks (politely) until `need` slots are free; returns 0, or -1 if the
 * tracer was switched off meanwhile.  Counts the wait. */
int mt_ring_wait_space(struct mt_ring *r, uint64_t need);

static inline int mt_ring_reserve(struct mt_ring *r, uint64_t need)
{
	if (__builtin_expect(mt_ring_free_slots(r) >= need, 1))
		return 0;
	r->tail_seen = __atomic_load_n(&r->tail, __ATOMIC_ACQUIRE);
	if (mt_ring_free_slots(r) >= need)
		return 0;
	return mt_ring_wait_space(r, need);
}

/* The producer's head crossed a multiple of MT_EPOCH_EVENTS or of
 * kick_mask + 1 with its last n events: advances the epoch, or calls the
 * writer (writer.h), or both. */
void mt_ring_crossed(struct mt_ring *r, uint64_t n);

static inline void mt_ring_busy(struct mt_ring *r, uint32_t v)
{
	__atomic_signal_fence(__ATOMIC_SEQ_CST);
	__atomic_store_n(&r->busy, v, __ATOMIC_RELAXED);
	__atomic_signal_fence(__ATOMIC_SEQ_CST);
}

static inline struct mt_event *mt_ring_slot(struct mt_ring *r, uint64_t i)
{
	return &r->ev[(r->head + i) & r->mask];
}

static inline void mt_ring_publish(struct mt_ring *r, uint64_t n)
{
	__atomic_store_n(&r->head, r->head + n, __ATOMIC_RELEASE);
}

#endif
