/*
 * heapmap.c - linear probing with Fibonacci hashing and backward-shift
 * deletion.  A trace is mostly malloc/free churn: tombstones would pile up
 * and force periodic rehashes, while backward shifting keeps every probe
 * sequence as short as the live keys alone make it.  The table grows past
 * 1/2 load (linear probing slows sharply above that) and shrinks below 1/8,
 * so its size follows the live key count.
 */
#include "heapmap.h"

#include <stdlib.h>

#define HM_MIN_CAP 64

static int alloc_table(struct heapmap *m, size_t cap)
{
	struct hm_slot *slots = calloc(cap, sizeof *slots);
	if (!slots)
		return -1;
	m->slots = slots;
	m->mask = cap - 1;
	m->used = 0;
	m->shift = 64 - (unsigned)__builtin_ctzll(cap);
	return 0;
}

int hm_init(struct heapmap *m)
{
	m->has_zero = false;
	m->zero_val = 0;
	return alloc_table(m, HM_MIN_CAP);
}

void hm_free(struct heapmap *m)
{
	free(m->slots);
	m->slots = NULL;
}

/* The slot holding key, or the empty slot that ends its probe sequence. */
static inline size_t find(const struct heapmap *m, uint64_t key)
{
	size_t i = hm_home(m, key);
	while (m->slots[i].key != key && m->slots[i].key != 0)
		i = (i + 1) & m->mask;
	return i;
}

static int resize(struct heapmap *m, size_t cap)
{
	struct heapmap old = *m;
	if (alloc_table(m, cap))
		return -1;
	for (size_t i = 0; i <= old.mask; i++) {
		if (old.slots[i].key) {
			m->slots[find(m, old.slots[i].key)] = old.slots[i];
			m->used++;
		}
	}
	free(old.slots);
	return 0;
}

int hm_put(struct heapmap *m, uint64_t key, uint64_t val, uint64_t *old)
{
	if (key == 0) {
		bool had = m->has_zero;
		*old = m->zero_val;
		m->has_zero = true;
		m->zero_val = val;
		return had;
	}
	size_t i = find(m, key);
	if (m->slots[i].key) {
		*old = m->slots[i].val;
		m->slots[i].val = val;
		return 1;
	}
	if ((m->used + 1) * 2 > m->mask + 1) {
		if (resize(m, (m->mask + 1) * 2))
			return -1;
		i = find(m, key);
	}
	m->slots[i] = (struct hm_slot){ key, val };
	m->used++;
	return 0;
}

bool hm_get(const struct heapmap *m, uint64_t key, uint64_t *val)
{
	if (key == 0) {
		if (m->has_zero)
			*val = m->zero_val;
		return m->has_zero;
	}
	const struct hm_slot *s = &m->slots[find(m, key)];
	if (!s->key)
		return false;
	*val = s->val;
	return true;
}

/* Fills the hole at i by pulling back later entries of the cluster that
 * may live there (their home is cyclically at or before i). */
static void close_hole(struct heapmap *m, size_t i)
{
	for (size_t j = (i + 1) & m->mask; m->slots[j].key; j = (j + 1) & m->mask) {
		size_t home = hm_home(m, m->slots[j].key);
		if (((j - home) & m->mask) >= ((j - i) & m->mask)) {
			m->slots[i] = m->slots[j];
			i = j;
		}
	}
	m->slots[i].key = 0;
}

bool hm_del(struct heapmap *m, uint64_t key, uint64_t *val)
{
	if (key == 0) {
		bool had = m->has_zero;
		*val = m->zero_val;
		m->has_zero = false;
		return had;
	}
	size_t i = find(m, key);
	if (!m->slots[i].key)
		return false;
	*val = m->slots[i].val;
	close_hole(m, i);
	m->used--;
	/* Failing to shrink only costs memory, so the error is ignored. */
	if (m->mask + 1 > HM_MIN_CAP && m->used * 8 < m->mask + 1)
		(void)resize(m, (m->mask + 1) / 2);
	return true;
}
