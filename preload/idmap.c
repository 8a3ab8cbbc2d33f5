/*
 * idmap.c - linear-probing hash map for the interning tables (idmap.h).
 *
 * Readers take no lock.  A slot is written once: its key first, then its
 * id with release order, and a deleted slot stays deleted until a grow
 * drops it, so a reader that sees an id sees the key that goes with it.  A
 * grow fills a new table before it publishes it, with its size, through
 * one pointer; a reader works in the table it loaded, which holds every
 * key put before it was loaded.  Tables are the tracer's own mappings
 * (ownmem.h), not heap blocks.
 */
#include "idmap.h"

#include "ownmem.h"

#define DELETED UINT64_MAX

static size_t hash3(uint64_t a, uint64_t b, uint64_t c)
{
	uint64_t h = a * 0x9e3779b97f4a7c15ull;
	h ^= b + 0x632be59bd9b4e019ull + (h << 6) + (h >> 2);
	h ^= c * 0xc2b2ae3d27d4eb4full;
	/* the low bits index the table: fold the high ones in (c is often a
	 * multiple of 2, as bytecode offsets are) */
	h ^= h >> 32;
	h *= 0xd6e8feb86659fd93ull;
	return (size_t)(h ^ (h >> 32));
}

/* The slot of the key, and in *id the id it held when found: a second load
 * could see it deleted meanwhile. */
static struct mt_idmap_slot *find(const struct mt_idmap *m, uint64_t a, uint64_t b, uint64_t c,
				  uint64_t *id_found)
{
	struct mt_idmap_table *t = __atomic_load_n(&m->table, __ATOMIC_ACQUIRE);
	if (!t)
		return NULL;
	size_t mask = t->cap - 1;
	for (size_t i = hash3(a, b, c) & mask;; i = (i + 1) & mask) {
		struct mt_idmap_slot *s = &t->slots[i];
		uint64_t id = __atomic_load_n(&s->id, __ATOMIC_ACQUIRE);
		if (id == 0)
			return NULL;
		if (id != DELETED && s->a == a && s->b == b && s->c == c) {
			*id_found = id;
			return s;
		}
	}
}

uint64_t mt_idmap_get(const struct mt_idmap *m, uint64_t a, uint64_t b, uint64_t c)
{
	uint64_t id;
	return find(m, a, b, c, &id) ? id : 0;
}

static void insert(struct mt_idmap_table *t, uint64_t a, uint64_t b, uint64_t c, uint64_t id)
{
	size_t mask = t->cap - 1;
	size_t i = hash3(a, b, c) & mask;
	while (t->slots[i].id != 0)
		i = (i + 1) & mask;
	t->slots[i].a = a;
	t->slots[i].b = b;
	t->slots[i].c = c;
	__atomic_store_n(&t->slots[i].id, id, __ATOMIC_RELEASE);
}

static size_t table_bytes(size_t cap)
{
	return sizeof(struct mt_idmap_table) + cap * sizeof(struct mt_idmap_slot);
}

static int grow(struct mt_idmap *m)
{
	struct mt_idmap_table *old = m->table;
	size_t old_cap = old ? old->cap : 0, live = 0;
	if (m->nretired == MT_IDMAP_RETIRED)
		return -1;
	for (size_t i = 0; i < old_cap; i++)
		live += old->slots[i].id != 0 && old->slots[i].id != DELETED;
	size_t cap = old_cap ? old_cap : 256;
	while (cap < 4 * (live + 1))
		cap *= 2;
	struct mt_idmap_table *t = mt_own_map(table_bytes(cap));
	if (!t)
		return -1;
	t->cap = cap;
	for (size_t i = 0; i < old_cap; i++)
		if (old->slots[i].id != 0 && old->slots[i].id != DELETED)
			insert(t, old->slots[i].a, old->slots[i].b, old->slots[i].c,
			       old->slots[i].id);
	if (old)
		m->retired[m->nretired++] = old;
	__atomic_store_n(&m->table, t, __ATOMIC_RELEASE);
	m->used = live;
	return 0;
}

int mt_idmap_put(struct mt_idmap *m, uint64_t a, uint64_t b, uint64_t c, uint64_t id)
{
	if ((!m->table || 2 * (m->used + 1) > m->table->cap) && grow(m))
		return -1;
	insert(m->table, a, b, c, id);
	m->used++;
	return 0;
}

void mt_idmap_del(struct mt_idmap *m, uint64_t a, uint64_t b, uint64_t c)
{
	uint64_t id;
	struct mt_idmap_slot *s = find(m, a, b, c, &id);
	if (s)
		__atomic_store_n(&s->id, DELETED, __ATOMIC_RELEASE);
}

void mt_idmap_clear(struct mt_idmap *m)
{
	for (int i = 0; i < m->nretired; i++)
		mt_own_unmap(m->retired[i], table_bytes(m->retired[i]->cap));
	if (m->table)
		mt_own_unmap(m->table, table_bytes(m->table->cap));
	*m = (struct mt_idmap){ 0 };
}
