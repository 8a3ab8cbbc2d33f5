/*
 * heapmap.c - linear probing with Fibonacci hashing and backward-shift
 * deletion.  A trace is mostly malloc/free churn: tombstones would pile up
 * and force periodic rehashes, while backward shifting keeps every probe
 * sequence as short as the live keys alone make it.  The table grows past
 * 1/2 load (linear probing slows sharply above that) and shrinks below
 * 1/32 (to 1/4 load), so its size follows the live key count.
 */
#include "heapmap.h"

#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#define HM_MIN_CAP 64

/* Tables of this size and more come straight from mmap, asking for huge
 * pages: a table of millions of slots is touched all over, and with 4 KiB
 * pages every first touch is a page fault (a quarter of the reporter's
 * time on large Python traces). */
#define HM_BIG_BYTES (2u << 20)

static struct hm_slot *table_new(size_t cap)
{
	size_t bytes = cap * sizeof(struct hm_slot);
	if (bytes < HM_BIG_BYTES)
		return calloc(cap, sizeof(struct hm_slot));
	void *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		return NULL;
#ifdef MADV_HUGEPAGE
	(void)madvise(p, bytes, MADV_HUGEPAGE);
#endif
	return p;
}

static void table_free(struct hm_slot *slots, size_t cap)
{
	size_t bytes = cap * sizeof(struct hm_slot);
	if (!slots)
		return;
	if (bytes < HM_BIG_BYTES)
		free(slots);
	else
		munmap(slots, bytes);
}

static int alloc_table(struct heapmap *m, size_t cap)
{
	struct hm_slot *slots = table_new(cap);
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

int hm_clear(struct heapmap *m)
{
	m->has_zero = false;
	m->zero_val = 0;
	if (!m->used)
		return 0;
	size_t cap = m->mask + 1;
	if (cap * sizeof *m->slots <= (64u << 10)) {
		memset(m->slots, 0, cap * sizeof *m->slots);
		m->used = 0;
		return 0;
	}
	hm_free(m);
	return hm_init(m);
}

void hm_free(struct heapmap *m)
{
	if (m->slots)
		table_free(m->slots, m->mask + 1);
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
	table_free(old.slots, old.mask + 1);
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

uint64_t *hm_ref(struct heapmap *m, uint64_t key)
{
	if (key == 0)
		return m->has_zero ? &m->zero_val : NULL;
	struct hm_slot *s = &m->slots[find(m, key)];
	return s->key ? &s->val : NULL;
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
	/* Failing to shrink only costs memory, so the error is ignored.  The
	 * new table is filled to a quarter: a heap that is being freed
	 * shrinks its map in a few steps, not one halving after another. */
	if (m->mask + 1 > HM_MIN_CAP && m->used * 32 < m->mask + 1) {
		size_t cap = HM_MIN_CAP;
		while (cap < m->used * 4)
			cap *= 2;
		(void)resize(m, cap);
	}
	return true;
}
