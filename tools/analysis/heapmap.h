/*
 * heapmap.h - open-addressing hash map from u64 keys to u64 values.  The
 * reporter keeps one per allocator domain (live block address -> size) and
 * one for thread ids, so it must stay fast at tens of millions of operations
 * and its memory must follow the number of live keys, not the trace length.
 */
#ifndef MEMTRACE_HEAPMAP_H
#define MEMTRACE_HEAPMAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct hm_slot {
	uint64_t key, val;
};

struct heapmap {
	struct hm_slot *slots; /* key 0 marks an empty slot */
	size_t mask;           /* capacity - 1; capacity is a power of two */
	size_t used;           /* occupied slots */
	unsigned shift;        /* 64 - log2(capacity), for the hash */
	bool has_zero;         /* key 0 cannot live in a slot, so it lives here */
	uint64_t zero_val;
};

/* 0, or -1 when out of memory. */
int hm_init(struct heapmap *m);
void hm_free(struct heapmap *m);
/* Empties the map for reuse: it keeps a table of up to 64 KiB. */
int hm_clear(struct heapmap *m);

/* Inserts or replaces.  1: replaced (*old gets the previous value), 0:
 * inserted, -1: out of memory (the map is unchanged). */
int hm_put(struct heapmap *m, uint64_t key, uint64_t val, uint64_t *old);
bool hm_get(const struct heapmap *m, uint64_t key, uint64_t *val);
/* Where key's value is kept, to change it in place; NULL if key is absent.
 * Valid until the next hm_put or hm_del. */
uint64_t *hm_ref(struct heapmap *m, uint64_t key);
/* Removes key, returning its value through *val; false if it was absent. */
bool hm_del(struct heapmap *m, uint64_t key, uint64_t *val);

static inline size_t hm_count(const struct heapmap *m)
{
	return m->used + m->has_zero;
}

/* The slot where key's probe sequence starts.  Heap addresses differ
 * mostly in their middle bits; the multiply spreads them all into the top
 * bits that pick the slot. */
static inline size_t hm_home(const struct heapmap *m, uint64_t key)
{
	return (size_t)((key * 0x9e3779b97f4a7c15ull) >> m->shift);
}

/* Starts loading key's slot into the cache: a large map is a cache miss per
 * operation, and callers that know their next keys can overlap them. */
static inline void hm_prefetch(const struct heapmap *m, uint64_t key)
{
	__builtin_prefetch(&m->slots[hm_home(m, key)], 1);
}

#endif
