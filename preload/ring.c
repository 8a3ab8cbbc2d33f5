/*
 * ring.c - allocation, reuse and the slow (full-ring) path of the per-thread
 * event rings.  Rings live in the tracer's own mappings (ownmem.h), never
 * on the heap, so that creating one cannot recurse into the allocator
 * being traced.
 */
#define _GNU_SOURCE
#include "ring.h"

#include <errno.h>
#include <stddef.h>
#include <string.h>
#include <time.h>

#include "ownmem.h"
#include "tracer.h"
#include "writer.h"

_Static_assert(offsetof(struct mt_ring, py_script) % 64 == 0 && sizeof(struct mt_ring) % 64 == 0,
	       "the producer's and the writer's fields on cache lines of their own");

struct mt_ring *mt_ring_new(uint64_t capacity, uint32_t tid)
{
	size_t bytes = sizeof(struct mt_ring) + capacity * sizeof(struct mt_event);
	void *p = mt_own_map(bytes);
	if (!p)
		return NULL;
	struct mt_ring *r = p;
	r->mask = capacity - 1;
	mt_ring_reuse(r, tid);
	return r;
}

void mt_ring_delete(struct mt_ring *r)
{
	mt_own_unmap(r, sizeof(struct mt_ring) + (r->mask + 1) * sizeof(struct mt_event));
}

void mt_ring_reuse(struct mt_ring *r, uint32_t tid)
{
	r->head = r->tail_seen = r->tail = 0;
	r->busy = r->exited = r->shared = r->lock = r->out_open = 0;
	r->lost = r->waits = r->py_loc = r->native_stack = r->py_script = 0;
	r->tid = tid;
	r->next = NULL;
	r->kick_mask = r->mask >> 2;
	r->stop_head = 0;
	r->stream = (struct mt_stream){.tid = tid};
	memset(r->own, 0, sizeof r->own);
	/* No event of the ring can read an earlier epoch. */
	r->epoch = mt_epoch_read();
}

void mt_ring_crossed(struct mt_ring *r, uint64_t n)
{
	if ((r->head & (MT_EPOCH_EVENTS - 1)) < n &&
	    __atomic_load_n(&mt_epoch.several, __ATOMIC_RELAXED))
		mt_epoch_advance();
	if ((r->head & r->kick_mask) < n)
		mt_writer_kick(r);
}

int mt_ring_wait_space(struct mt_ring *r, uint64_t need)
{
	int saved = errno;
	r->waits++;
	for (;;) {
		if (!__atomic_load_n(&mt_active, __ATOMIC_RELAXED)) {
			errno = saved;
			return -1;
		}
		mt_writer_kick(r);
		struct timespec ts = {0, 50 * 1000};
		nanosleep(&ts, NULL);
		r->tail_seen = __atomic_load_n(&r->tail, __ATOMIC_ACQUIRE);
		if (mt_ring_free_slots(r) >= need) {
			errno = saved;
			return 0;
		}
	}
}
