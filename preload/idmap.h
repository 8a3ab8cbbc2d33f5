/*
 * idmap.h - a small open-addressing hash map from a three-word key to an
 * id, for the tracer's own interning tables (code objects, Python stack
 * nodes, strings).  Writers (put, del, clear) are serialised by the
 * caller; mt_idmap_get may run at the same time as a put or del, from any
 * thread, without a lock.  Its tables are the tracer's own mappings
 * (ownmem.h).
 */
#ifndef MEMTRACE_IDMAP_H
#define MEMTRACE_IDMAP_H

#include <stddef.h>
#include <stdint.h>

#define MT_IDMAP_RETIRED 48 /* enough for every doubling of a size_t */

struct mt_idmap_slot {
	uint64_t a, b, c;
	uint64_t id; /* 0: empty, UINT64_MAX: deleted */
};

/* One array of slots with its size, published as a whole. */
struct mt_idmap_table {
	size_t cap; /* a power of two */
	struct mt_idmap_slot slots[];
};

struct mt_idmap {
	struct mt_idmap_table *table; /* NULL while empty */
	size_t used;                  /* slots taken, deleted ones too */
	/* tables a grow replaced: a reader may still be in one, so they are
	 * unmapped only by mt_idmap_clear (their sizes add up to less than the
	 * current one's) */
	struct mt_idmap_table *retired[MT_IDMAP_RETIRED];
	int nretired;
};

/* The id stored for the key, or 0. */
uint64_t mt_idmap_get(const struct mt_idmap *m, uint64_t a, uint64_t b, uint64_t c);
/* Stores id (non-zero) for a key not in the map; -1 when out of memory. */
int mt_idmap_put(struct mt_idmap *m, uint64_t a, uint64_t b, uint64_t c, uint64_t id);
void mt_idmap_del(struct mt_idmap *m, uint64_t a, uint64_t b, uint64_t c);
/* Empties the map; no reader may be in it. */
void mt_idmap_clear(struct mt_idmap *m);

#endif
