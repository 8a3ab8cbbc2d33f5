/*
 * mappings.c - the mmap domain: the program's own mappings (MMAP, MUNMAP,
 * MREMAP_OUT/IN records), exact to the page.  Mappings are kept as address
 * ranges in a treap ordered by start, so that a munmap of any range (part
 * of one mapping, several at once, or none) costs a logarithmic search
 * plus the mappings it touches.  Lengths are rounded up to whole pages, as
 * the kernel does.
 *
 * A munmap in the middle of a mapping leaves two; a MAP_FIXED mmap
 * replaces what it covers; mremap works like realloc: its OUT takes the
 * old range off (kept aside, per thread), its IN maps the new one, or puts
 * the old one back when the call failed.  MREMAP_DONTUNMAP keeps the old
 * range mapped.
 */
#define _GNU_SOURCE /* MAP_ANONYMOUS, MREMAP_DONTUNMAP */
#include <linux/mman.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "analysis.h"
#include "codec.h"

#ifndef MREMAP_DONTUNMAP
#define MREMAP_DONTUNMAP 4
#endif

#define NIL 0u

int mappings_init(struct ctx *c)
{
	struct mappings_state *m = &c->maps;
	m->cap = 64;
	m->v = calloc(m->cap, sizeof *m->v);
	m->n = 1; /* node 0 is nil */
	m->free_head = NIL;
	m->seed = 0x9e3779b9u;
	m->page_mask = 4095;
	return m->v ? 0 : -1;
}

void mappings_free(struct ctx *c)
{
	free(c->maps.v);
	c->maps.v = NULL;
}

/* ---- the treap ------------------------------------------------------------ */

static uint32_t node_new(struct ctx *c, uint64_t start, uint64_t end, uint32_t prot,
			 uint32_t flags, uint32_t frame)
{
	struct mappings_state *m = &c->maps;
	uint32_t i = m->free_head;
	if (i != NIL) {
		m->free_head = m->v[i].left;
	} else {
		if (m->n == m->cap) {
			struct map_node *v = m->cap < UINT32_MAX / 2 ? realloc(m->v, 2 * m->cap * sizeof *v)
								      : NULL;
			if (!v) {
				c->oom = true;
				return NIL;
			}
			m->v = v;
			m->cap *= 2;
		}
		i = m->n++;
	}
	m->seed ^= m->seed << 13;
	m->seed ^= m->seed >> 17;
	m->seed ^= m->seed << 5;
	m->v[i] = (struct map_node){ start, end, NIL, NIL, m->seed, prot, flags, frame };
	return i;
}

static void node_drop(struct ctx *c, uint32_t i)
{
	c->maps.v[i].left = c->maps.free_head;
	c->maps.free_head = i;
}

/* Splits t into the nodes starting before key (*l) and the rest (*r). */
static void split(struct map_node *v, uint32_t t, uint64_t key, uint32_t *l, uint32_t *r)
{
	if (t == NIL) {
		*l = *r = NIL;
	} else if (v[t].start < key) {
		split(v, v[t].right, key, &v[t].right, r);
		*l = t;
	} else {
		split(v, v[t].left, key, l, &v[t].left);
		*r = t;
	}
}

/* Joins l and r, every start in l below every start in r. */
static uint32_t join(struct map_node *v, uint32_t l, uint32_t r)
{
	if (l == NIL || r == NIL)
		return l != NIL ? l : r;
	if (v[l].prio > v[r].prio) {
		v[l].right = join(v, v[l].right, r);
		return l;
	}
	v[r].left = join(v, l, v[r].left);
	return r;
}

static uint32_t rightmost(const struct map_node *v, uint32_t t)
{
	while (t != NIL && v[t].right != NIL)
		t = v[t].right;
	return t;
}

static uint32_t tree_count(const struct map_node *v, uint32_t t)
{
	uint32_t n = 0;
	for (; t != NIL; t = v[t].right)
		n += 1 + tree_count(v, v[t].left);
	return n;
}

/* ---- the domain's figures ----------------------------------------------------- */

static void live_add(struct ctx *c, const struct map_node *n, int sign)
{
	struct mt_mappings *mp = &c->rep->mappings;
	uint64_t len = n->end - n->start;
	uint64_t *kind = n->flags & MAP_ANONYMOUS ? &mp->anon_bytes : &mp->file_bytes;
	if (sign > 0) {
		mp->stats.live_bytes += len;
		*kind += len;
		if (mp->stats.live_bytes > mp->stats.peak_bytes)
			mp->stats.peak_bytes = mp->stats.live_bytes;
	} else {
		mp->stats.live_bytes -= len;
		*kind -= len;
	}
}

static void tree_live(struct ctx *c, uint32_t t, int sign)
{
	for (; t != NIL; t = c->maps.v[t].right) {
		tree_live(c, c->maps.v[t].left, sign);
		live_add(c, &c->maps.v[t], sign);
	}
}

static void tree_drop(struct ctx *c, uint32_t t)
{
	while (t != NIL) {
		uint32_t right = c->maps.v[t].right;
		tree_drop(c, c->maps.v[t].left);
		node_drop(c, t);
		t = right;
	}
}

/* Inserts node i (its range is free). */
static void insert(struct ctx *c, uint32_t i)
{
	struct map_node *v = c->maps.v;
	uint32_t l, r;
	split(v, c->maps.root, v[i].start, &l, &r);
	c->maps.root = join(v, join(v, l, i), r);
	live_add(c, &v[i], +1);
}

/* Splits node i at addr: i keeps [start, addr), the node returned holds
 * [addr, end) (NIL when out of memory: i stays whole).  The live bytes
 * do not change. */
static uint32_t split_node(struct ctx *c, uint32_t i, uint64_t addr)
{
	struct map_node n = c->maps.v[i];
	uint32_t k = node_new(c, addr, n.end, n.prot, n.flags, n.frame);
	if (k != NIL)
		c->maps.v[i].end = addr;
	return k;
}

/* Takes [start, end) off the mappings and returns it as a tree of its own:
 * the pieces of the mappings it covered, their bytes no longer live. */
static uint32_t cut(struct ctx *c, uint64_t start, uint64_t end)
{
	uint32_t l, mid, r, tail = NIL;
	split(c->maps.v, c->maps.root, start, &l, &r);
	/* a mapping from before the range may reach into it */
	uint32_t last = rightmost(c->maps.v, l);
	if (last != NIL && c->maps.v[last].end > start)
		r = join(c->maps.v, split_node(c, last, start), r);
	split(c->maps.v, r, end, &mid, &r);
	/* and the last one in it may reach past it */
	last = rightmost(c->maps.v, mid);
	if (last != NIL && c->maps.v[last].end > end)
		tail = split_node(c, last, end);
	tree_live(c, mid, -1);
	c->maps.root = join(c->maps.v, l, join(c->maps.v, tail, r));
	return mid;
}

/* ---- records -------------------------------------------------------------------- */

static uint64_t pages(const struct ctx *c, uint64_t len)
{
	uint64_t n = (len + c->maps.page_mask) & ~c->maps.page_mask;
	return n >= len ? n : ~c->maps.page_mask; /* saturates */
}

static uint32_t frame_of(struct ctx *c)
{
	uint64_t idx;
	uint64_t loc = cur_thread(c)->loc;
	return loc && hm_get(&c->framemap, loc, &idx) ? (uint32_t)idx : 0;
}

/* A new mapping; replace: it may cover live ones (MAP_FIXED, mremap),
 * else covering one means the trace missed its munmap. */
static void map(struct ctx *c, uint64_t addr, uint64_t len, uint32_t prot, uint32_t flags,
		uint32_t frame, bool replace)
{
	struct mt_dom_stats *s = &c->rep->mappings.stats;
	uint64_t end = addr + len;
	if (end < addr)
		end = UINT64_MAX & ~c->maps.page_mask;
	uint32_t old = cut(c, addr, end);
	if (old != NIL && !replace)
		s->inconsistent++;
	tree_drop(c, old);
	uint32_t i = node_new(c, addr, end, prot, flags, frame);
	if (i != NIL)
		insert(c, i);
}

static void on_mmap(struct ctx *c, const struct mt_rec *r)
{
	struct mt_dom_stats *s = &c->rep->mappings.stats;
	if (!r->addr) {
		s->failed++;
		return;
	}
	uint64_t len = pages(c, r->size);
	s->allocs++;
	s->bytes_allocated += len;
	map(c, r->addr, len, (uint32_t)r->value, (uint32_t)r->ref1, frame_of(c),
	    r->ref1 & MAP_FIXED);
}

static void on_munmap(struct ctx *c, const struct mt_rec *r)
{
	struct mt_dom_stats *s = &c->rep->mappings.stats;
	uint64_t end = r->addr + pages(c, r->size);
	uint32_t gone = cut(c, r->addr, end > r->addr ? end : UINT64_MAX);
	s->frees++;
	if (gone == NIL)
		s->unmatched_frees++;
	tree_drop(c, gone);
}

static void on_remap_out(struct ctx *c, const struct mt_rec *r)
{
	struct thread *t = cur_thread(c);
	uint64_t end = r->addr + pages(c, r->size);
	if (t->remap.active) /* an OUT without its IN: that call's effect is unknown */
		tree_drop(c, t->remap.taken);
	t->remap.active = true;
	t->remap.taken = cut(c, r->addr, end > r->addr ? end : UINT64_MAX);
}

/* Puts every node of tree t back, over whatever a damaged trace put
 * there meanwhile. */
static void restore(struct ctx *c, uint32_t t)
{
	while (t != NIL) {
		uint32_t left = c->maps.v[t].left, right = c->maps.v[t].right;
		restore(c, left);
		c->maps.v[t].left = c->maps.v[t].right = NIL;
		tree_drop(c, cut(c, c->maps.v[t].start, c->maps.v[t].end));
		insert(c, t);
		t = right;
	}
}

static void on_remap_in(struct ctx *c, const struct mt_rec *r)
{
	struct mt_dom_stats *s = &c->rep->mappings.stats;
	struct thread *t = cur_thread(c);
	uint32_t taken = t->remap.active ? t->remap.taken : NIL;
	t->remap.active = false;
	if (!r->addr) {
		s->failed++;
		restore(c, taken);
		return;
	}
	/* the new mapping keeps the old one's protection and kind (unknown
	 * when the trace never saw the old one: taken as anonymous) */
	struct map_node old = { .flags = MAP_PRIVATE | MAP_ANONYMOUS, .prot = PROT_READ | PROT_WRITE };
	uint32_t first = taken;
	while (first != NIL && c->maps.v[first].left != NIL)
		first = c->maps.v[first].left;
	if (first != NIL)
		old = c->maps.v[first];
	uint64_t len = pages(c, r->size);
	s->reallocs++;
	s->bytes_allocated += len;
	if (r->ref1 & MREMAP_DONTUNMAP)
		restore(c, taken);
	else
		tree_drop(c, taken);
	map(c, r->addr, len, old.prot, old.flags, old.frame, true);
}

void mappings_record(struct ctx *c, const struct mt_rec *r)
{
	uint64_t page = c->rep->process.page_size;
	if (page && !(page & (page - 1)))
		c->maps.page_mask = page - 1;
	switch (r->kind) {
	case MT_REC_MMAP:
		on_mmap(c, r);
		break;
	case MT_REC_MUNMAP:
		on_munmap(c, r);
		break;
	case MT_REC_MREMAP_OUT:
		on_remap_out(c, r);
		break;
	default:
		on_remap_in(c, r);
	}
}

/* ---- at the end ---------------------------------------------------------------------- */

static int by_size(const void *x, const void *y)
{
	const struct mt_mapping_info *a = x, *b = y;
	if (a->bytes != b->bytes)
		return a->bytes < b->bytes ? 1 : -1;
	return a->address < b->address ? -1 : a->address > b->address;
}

/* Keeps the MT_MAPPINGS_SHOWN largest in out[0..*n) (sorted at the end). */
static void collect(struct ctx *c, uint32_t t, struct mt_mapping_info *out, size_t *n)
{
	for (; t != NIL; t = c->maps.v[t].right) {
		const struct map_node *p = &c->maps.v[t];
		collect(c, p->left, out, n);
		struct mt_mapping_info mi = { p->start, p->end - p->start, p->prot, p->flags, p->frame };
		if (*n < MT_MAPPINGS_SHOWN) {
			out[(*n)++] = mi;
			continue;
		}
		size_t small = 0;
		for (size_t k = 1; k < *n; k++)
			if (by_size(&out[k], &out[small]) > 0)
				small = k;
		if (by_size(&mi, &out[small]) < 0)
			out[small] = mi;
	}
}

void mappings_finish(struct ctx *c)
{
	struct mt_mappings *mp = &c->rep->mappings;
	mp->stats.live_blocks = tree_count(c->maps.v, c->maps.root);
	if (!mp->stats.live_blocks)
		return;
	mp->largest = malloc(MT_MAPPINGS_SHOWN * sizeof *mp->largest);
	if (!mp->largest) {
		c->oom = true;
		return;
	}
	collect(c, c->maps.root, mp->largest, &mp->nlargest);
	qsort(mp->largest, mp->nlargest, sizeof *mp->largest, by_size);
}
