/*
 * ring.c - allocation, reuse and the slow (full-ring) path of the per-thread
 * event rings.  Rings live in the tracer's own mappings (ownmem.h), never
 * on the heap, so that creating one cannot recurse into the allocator
 * being traced.
 */
#define _GNU_SOURCE
#include "ring.h"

#include <errno.h>
#include <string.h>
#include <time.h>

#include "ownmem.h"
#include "tracer.h"
#include "writer.h"

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
	/* Until a second thread records, the first one's events are unstamped,
	 * and so may be its event in flight. */
	r->start_ts = __atomic_load_n(&mt_multi, __ATOMIC_ACQUIRE) ? mt_clock_stamp() : 0;
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
