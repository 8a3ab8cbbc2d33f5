/*
 * idmap.c - linear-probing hash map for the interning tables (idmap.h).
 * Its slots are the tracer's own mappings (ownmem.h), not heap blocks.
 */
#include "idmap.h"

#include "ownmem.h"

#define DELETED UINT64_MAX

static size_t hash3(uint64_t a, uint64_t b, uint64_t c)
{
	uint64_t h = a * 0x9e3779b97f4a7c15ull;
	h ^= b + 0x632be59bd9b4e019ull + (h << 6) + (h >> 2);
	h ^= c * 0xc2b2ae3d27d4eb4full;
	return (size_t)(h ^ (h >> 29));
}

static struct mt_idmap_slot *find(const struct mt_idmap *m, uint64_t a, uint64_t b, uint64_t c)
{
	if (!m->cap)
		return NULL;
	size_t mask = m->cap - 1;
	for (size_t i = hash3(a, b, c) & mask;; i = (i + 1) & mask) {
		struct mt_idmap_slot *s = &m->slots[i];
		if (s->id == 0)
			return NULL;
		if (s->id != DELETED && s->a == a && s->b == b && s->c == c)
			return s;
	}
}

uint64_t mt_idmap_get(const struct mt_idmap *m, uint64_t a, uint64_t b, uint64_t c)
{
	struct mt_idmap_slot *s = find(m, a, b, c);
	return s ? s->id : 0;
}

static void insert(struct mt_idmap *m, uint64_t a, uint64_t b, uint64_t c, uint64_t id)
{
	size_t mask = m->cap - 1;
	size_t i = hash3(a, b, c) & mask;
	while (m->slots[i].id != 0 && m->slots[i].id != DELETED)
		i = (i + 1) & mask;
	if (m->slots[i].id == 0)
		m->used++;
	m->slots[i] = (struct mt_idmap_slot){a, b, c, id};
}

static int grow(struct mt_idmap *m)
{
	size_t live = 0;
	for (size_t i = 0; i < m->cap; i++)
		live += m->slots[i].id != 0 && m->slots[i].id != DELETED;
	size_t cap = m->cap ? m->cap : 256;
	while (cap < 4 * (live + 1))
		cap *= 2;
	struct mt_idmap_slot *old = m->slots;
	size_t old_cap = m->cap;
	m->slots = mt_own_map(cap * sizeof *m->slots);
	if (!m->slots) {
		m->slots = old;
		return -1;
	}
	m->cap = cap;
	m->used = 0;
	for (size_t i = 0; i < old_cap; i++)
		if (old[i].id != 0 && old[i].id != DELETED)
			insert(m, old[i].a, old[i].b, old[i].c, old[i].id);
	mt_own_unmap(old, old_cap * sizeof *old);
	return 0;
}

int mt_idmap_put(struct mt_idmap *m, uint64_t a, uint64_t b, uint64_t c, uint64_t id)
{
	if (2 * (m->used + 1) > m->cap && grow(m))
		return -1;
	insert(m, a, b, c, id);
	return 0;
}

void mt_idmap_del(struct mt_idmap *m, uint64_t a, uint64_t b, uint64_t c)
{
	struct mt_idmap_slot *s = find(m, a, b, c);
	if (s)
		s->id = DELETED;
}

void mt_idmap_clear(struct mt_idmap *m)
{
	mt_own_unmap(m->slots, m->cap * sizeof *m->slots);
	m->slots = NULL;
	m->cap = m->used = 0;
}
