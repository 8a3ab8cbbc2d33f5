/*
 * pools.c - CPython's pymalloc, exactly, from addresses.  ARENA_ALLOC and
 * ARENA_FREE give the blocks of the arena allocator: those of the header's
 * arena size are pymalloc arenas, the others (since 3.11, the interpreter's
 * frame-stack chunks) are counted apart.  Every pool-aligned pool inside a
 * live arena goes into a map, so that a PyMem/PyObject block finds its pool
 * with one lookup of address & ~(pool_size - 1) (the last one is cached);
 * a block whose pool is not there lives elsewhere (PYTHONMALLOC=malloc, a
 * large object) and is not a pool's.  The blocks inside an arena are kept
 * in the arena's own tables (struct arena_slot), not in the live maps.
 *
 * A pool is in use while it holds a live block; its size class is set by
 * its first block (the request rounded up to 16 bytes) and kept while it
 * is in use.  Per class: objects and pools now and at their highest; per
 * arena: live objects, bytes and pools, for the arenas still mapped at exit
 * (few survivors keeping a whole arena is what keeps memory high), and how
 * many mapped arenas have no pool in use at all.
 */
#include <stdlib.h>
#include <string.h>

#include "analysis.h"

int pools_init(struct ctx *c)
{
	c->pools.free_head = UINT32_MAX;
	return hm_init(&c->pools.blocks) | hm_init(&c->pools.pools);
}

static void drop_tables(struct arena_slot *a)
{
	free(a->tags);
	free(a->sizes);
	a->tags = NULL;
	a->sizes = NULL;
}

void pools_free(struct ctx *c)
{
	hm_free(&c->pools.blocks);
	hm_free(&c->pools.pools);
	for (uint32_t i = 0; i < c->pools.nslots; i++)
		drop_tables(&c->pools.slots[i]);
	free(c->pools.slots);
	c->pools.slots = NULL;
}

int pools_tables(struct ctx *c, struct arena_slot *a)
{
	size_t n = (size_t)(a->size >> GRANULE_SHIFT) + 1;
	a->tags = calloc(n, sizeof *a->tags);
	a->sizes = malloc(n * sizeof *a->sizes);
	if (a->tags && a->sizes)
		return 0;
	drop_tables(a);
	c->oom = true;
	return -1;
}

void pools_geometry(struct ctx *c)
{
	struct mt_process *p = &c->rep->process;
	struct pools_state *ps = &c->pools;
	/* a free-threaded build has no pymalloc: the arena allocator's blocks
	 * are the frame stacks, and objects come from mimalloc */
	if (!(p->have & MT_HAVE_PYTHON) || (p->have & MT_HAVE_FREE_THREADED))
		return;
	/* obmalloc.c: 16 KiB pools in 1 MiB arenas on 64-bit builds since
	 * 3.10, 4 KiB pools in 256 KiB arenas before. */
	bool large = p->py_version >= 0x030a0000;
	if (!p->pool_size)
		p->pool_size = large ? 16384 : 4096;
	if (!p->arena_size)
		p->arena_size = large ? 1 << 20 : 256 << 10;
	c->rep->pools.pool_size = p->pool_size;
	c->rep->pools.arena_size = p->arena_size;
	/* pools are tracked only with a sane geometry */
	if (p->pool_size & (p->pool_size - 1) || p->pool_size < 256 ||
	    p->arena_size < p->pool_size || p->arena_size > (1ull << 32))
		return;
	ps->pool_size = p->pool_size;
	ps->pool_mask = ~(p->pool_size - 1);
	ps->arena_size = p->arena_size;
	c->python = true;
}

static uint32_t slot_new(struct ctx *c)
{
	struct pools_state *ps = &c->pools;
	uint32_t i = ps->free_head;
	if (i != UINT32_MAX) {
		ps->free_head = ps->slots[i].next_free;
		return i;
	}
	if (ps->nslots == ps->cap) {
		uint32_t cap = ps->cap ? ps->cap * 2 : 64;
		struct arena_slot *s = cap > ps->cap ? realloc(ps->slots, cap * sizeof *s) : NULL;
		if (!s) {
			c->oom = true;
			return UINT32_MAX;
		}
		ps->slots = s;
		ps->cap = cap;
	}
	return ps->nslots++;
}

static void for_each_pool(struct ctx *c, const struct arena_slot *a,
			  void (*fn)(struct ctx *, uint64_t pool, uint32_t slot), uint32_t slot)
{
	uint64_t ps = c->pools.pool_size;
	uint64_t first = (a->base + ps - 1) & c->pools.pool_mask;
	for (uint64_t p = first; p >= a->base && p + ps <= a->base + a->size && p + ps > p; p += ps)
		fn(c, p, slot);
}

static void pool_add(struct ctx *c, uint64_t pool, uint32_t slot)
{
	uint64_t old;
	int r = hm_put(&c->pools.pools, pool, pool_val(slot, POOL_NO_CLASS, 0), &old);
	if (r < 0)
		c->oom = true;
}

/* A pool that goes with its arena; a live block in it means the trace
 * missed its free: the counts forget it. */
static void pool_remove(struct ctx *c, uint64_t pool, uint32_t slot)
{
	struct mt_pools *rp = &c->rep->pools;
	uint64_t v;
	(void)slot;
	if (!hm_del(&c->pools.pools, pool, &v) || !pool_count(v))
		return;
	unsigned cls = pool_class(v);
	if (cls < MT_SIZE_CLASSES) {
		struct mt_size_class *sc = &rp->classes[cls];
		uint64_t n = pool_count(v);
		sc->live_objects -= n <= sc->live_objects ? n : sc->live_objects;
		sc->pools -= sc->pools > 0;
	}
	rp->pools_in_use -= rp->pools_in_use > 0;
}

void pools_arena_alloc(struct ctx *c, uint64_t size, uint64_t addr)
{
	struct mt_pools *rp = &c->rep->pools;
	uint64_t unused;
	if (hm_get(&c->pools.blocks, addr, &unused)) /* the trace missed its free */
		pools_arena_free(c, 0, addr);
	c->pools.cache_pool = 0;
	c->pools.cache_ref = NULL;
	uint32_t i = slot_new(c);
	if (i == UINT32_MAX)
		return;
	struct arena_slot *a = &c->pools.slots[i];
	*a = (struct arena_slot){ .base = addr, .size = size, .used = true, .next_free = 0 };
	a->is_arena = c->python && size == c->pools.arena_size;
	if (hm_put(&c->pools.blocks, addr, i, &unused) < 0) {
		c->oom = true;
		return;
	}
	rp->arena_bytes_live += size;
	if (a->is_arena) {
		rp->arenas_allocated++;
		rp->arenas_empty++;
		if (++rp->arenas_live > rp->arenas_peak)
			rp->arenas_peak = rp->arenas_live;
		for_each_pool(c, a, pool_add, i);
	} else {
		rp->other_allocated++;
		rp->other_bytes += size;
		if (rp->other_bytes > rp->other_bytes_peak)
			rp->other_bytes_peak = rp->other_bytes;
	}
	if (c->heap_arenas)
		heap_up(c, size);
	if (a->is_arena)
		lines_arena(c, true);
}

/* An arena freed with blocks in it: the trace missed their frees.  They
 * leave the domains' figures with it. */
static void forget_blocks(struct ctx *c, struct arena_slot *a)
{
	for (uint64_t g = 0; g <= a->size >> GRANULE_SHIFT; g++) {
		uint32_t t = a->tags[g];
		if (!(t & ATAG_LIVE))
			continue;
		int dom = t & ATAG_OBJ ? MT_DOM_PYOBJ : MT_DOM_PYMEM;
		c->rep->dom[dom].live_bytes -= a->sizes[g];
		c->pools.table_blocks[dom]--;
	}
}

void pools_arena_free(struct ctx *c, uint64_t size, uint64_t addr)
{
	struct mt_pools *rp = &c->rep->pools;
	uint64_t i;
	(void)size;
	if (!hm_del(&c->pools.blocks, addr, &i))
		return; /* allocated before the hooks were in */
	struct arena_slot *a = &c->pools.slots[i];
	c->pools.cache_pool = 0;
	c->pools.cache_ref = NULL;
	if (c->heap_arenas)
		heap_down(c, a->size);
	if (a->live_objects && a->tags)
		forget_blocks(c, a);
	drop_tables(a);
	rp->arena_bytes_live -= a->size;
	if (a->is_arena) {
		lines_arena(c, false);
		rp->arenas_freed++;
		rp->arenas_live--;
		rp->arenas_empty -= !a->pools_in_use;
		rp->pools_touched -= a->pools_touched;
		rp->object_bytes -= a->live_bytes; /* none, unless frees were missed */
		for_each_pool(c, a, pool_remove, (uint32_t)i);
	} else {
		rp->other_freed++;
		rp->other_bytes -= a->size;
	}
	a->used = false;
	a->next_free = c->pools.free_head;
	c->pools.free_head = (uint32_t)i;
}

/* pymalloc carves an arena's pools in address order and writes a pool
 * only when it first uses it: the pools above the highest one ever used
 * were never touched. */
static void pool_touched(struct ctx *c, struct arena_slot *a, uint64_t addr)
{
	uint64_t first = (a->base + c->pools.pool_size - 1) & c->pools.pool_mask;
	uint64_t n = ((addr & c->pools.pool_mask) - first) / c->pools.pool_size + 1;
	if (n > a->pools_touched) {
		c->rep->pools.pools_touched += n - a->pools_touched;
		a->pools_touched = n;
	}
}

void pools_block_add(struct ctx *c, uint64_t *pool, struct arena_slot *a, uint64_t addr,
		     uint64_t size, bool keep_class)
{
	struct mt_pools *rp = &c->rep->pools;
	uint64_t count = pool_count(*pool);
	unsigned cls = pool_class(*pool);
	if (!count) {
		if (!keep_class || cls >= MT_SIZE_CLASSES)
			cls = size - 1 < 16 * MT_SIZE_CLASSES ? (unsigned)((size - 1) >> 4)
							      : POOL_NO_CLASS;
		if (cls < MT_SIZE_CLASSES) {
			struct mt_size_class *sc = &rp->classes[cls];
			if (++sc->pools > sc->pools_peak)
				sc->pools_peak = sc->pools;
		}
		if (++rp->pools_in_use > rp->pools_peak)
			rp->pools_peak = rp->pools_in_use;
		rp->arenas_empty -= !a->pools_in_use++;
		pool_touched(c, a, addr);
		lines_pool(c, true);
	}
	*pool = pool_val(pool_slot(*pool), cls, count + 1);
	if (cls < MT_SIZE_CLASSES) {
		struct mt_size_class *sc = &rp->classes[cls];
		if (++sc->live_objects > sc->live_objects_peak)
			sc->live_objects_peak = sc->live_objects;
		sc->allocs += !keep_class;
	}
	a->live_objects++;
	a->live_bytes += size;
	rp->object_bytes += size;
}

void pools_block_del(struct ctx *c, uint64_t *pool, struct arena_slot *a, uint64_t size)
{
	struct mt_pools *rp = &c->rep->pools;
	if (!pool_count(*pool))
		return;
	uint64_t count = pool_count(*pool) - 1;
	unsigned cls = pool_class(*pool);
	*pool = pool_val(pool_slot(*pool), cls, count);
	if (cls < MT_SIZE_CLASSES) {
		struct mt_size_class *sc = &rp->classes[cls];
		sc->live_objects--;
		if (!count)
			sc->pools--;
	}
	if (!count) {
		rp->pools_in_use--;
		rp->arenas_empty += !--a->pools_in_use;
		lines_pool(c, false);
	}
	a->live_objects--;
	a->live_bytes -= size;
	rp->object_bytes -= size;
}

static int cmp_retained(const void *x, const void *y)
{
	const struct mt_arena_info *a = x, *b = y;
	if (a->live_objects != b->live_objects)
		return a->live_objects < b->live_objects ? -1 : 1;
	return a->address < b->address ? -1 : a->address > b->address;
}

const char *mt_object_allocator(const struct mt_report *rep)
{
	if (rep->pools.arenas_allocated)
		return "pymalloc";
	return rep->heap.own_in ? "mimalloc" : "malloc";
}

const char *mt_no_pymalloc_reason(const struct mt_report *rep)
{
	if (!(rep->process.have & MT_HAVE_PYTHON) || rep->pools.arenas_allocated)
		return NULL;
	if (rep->process.have & MT_HAVE_FREE_THREADED)
		return "A free-threaded CPython has no pymalloc: its objects come from mimalloc, "
		       "so there are no arenas or pools, and every PyObject and PyMem block "
		       "counts in the heap by itself";
	if (rep->heap.own_in)
		return "pymalloc was not in use (PYTHONMALLOC=mimalloc): objects came from "
		       "mimalloc, and every PyObject and PyMem block counts in the heap by itself";
	return "pymalloc was not in use (PYTHONMALLOC=malloc): objects are malloc blocks";
}

void pools_finish(struct ctx *c)
{
	struct mt_pools *rp = &c->rep->pools;
	rp->at_exit.arena_bytes = rp->arenas_live * rp->arena_size;
	rp->at_exit.object_bytes = rp->object_bytes;
	rp->at_exit.pools = rp->pools_in_use;
	if (!rp->arenas_live)
		return;
	rp->retained = malloc(rp->arenas_live * sizeof *rp->retained);
	if (!rp->retained) {
		c->oom = true;
		return;
	}
	for (uint32_t i = 0; i < c->pools.nslots && rp->nretained < rp->arenas_live; i++) {
		const struct arena_slot *a = &c->pools.slots[i];
		if (a->used && a->is_arena)
			rp->retained[rp->nretained++] = (struct mt_arena_info){
				a->base, a->live_objects, a->live_bytes, a->pools_in_use
			};
	}
	qsort(rp->retained, rp->nretained, sizeof *rp->retained, cmp_retained);
}
