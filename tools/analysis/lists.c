/*
 * lists.c - list item buffers.  CPython's list_resize() asks PyMem_Realloc
 * for 8 * capacity bytes, capacity = (n + (n >> 3) + 6) & ~3 for n items
 * (or (n + 3) & ~3 when one call adds many), so capacities are multiples
 * of 4.  A chain starts at a PYMEM realloc from NULL (a list's first
 * append) or at the first realloc of a PyMem block of 8 * k bytes (a list
 * made at its size, PyList_New), and goes on with the reallocs of that
 * block while the sizes stay multiples of 32; anything else ends it.
 *
 * Per chain: resizes, the capacities (the first MT_CHAIN_HEAD and the
 * latest ones, MT_CHAIN_MAX in all), bytes
 * copied by reallocs that moved the buffer (min of old and new size), and
 * the slack after the last resize: capacity - n for the smallest n that
 * gives the capacity (above the old capacity when growing: a list grows
 * only when full).  For appends that is exact; after an extend it is an
 * upper bound, since the allocation sizes do not tell how many items came.
 * Chains are reported per site of their first resize.  A buffer whose only
 * resize so far was from NULL carries TAG_CHAIN alone (its size says the
 * rest); a second resize gives it a record (TAG_CHAINREC) in a map by
 * address.
 */
#include <stdlib.h>
#include <string.h>

#include "analysis.h"

int lists_init(struct ctx *c)
{
	c->lists.free_head = UINT32_MAX;
	return hm_init(&c->lists.chains);
}

void lists_free(struct ctx *c)
{
	struct lists_state *ls = &c->lists;
	for (uint32_t i = 0; i < ls->n; i++)
		free(ls->v[i].caps);
	free(ls->v);
	ls->v = NULL;
	hm_free(&ls->chains);
}

static inline uint64_t grow_rule(uint64_t n)
{
	return (n + (n >> 3) + 6) & ~(uint64_t)3;
}

/* The smallest item count that list_resize turns into cap, above old when
 * the list grew. */
static uint64_t items_for(uint64_t old, uint64_t cap)
{
	uint64_t lo = cap > old ? old + 1 : 1;
	uint64_t n = cap / 9 * 8;
	n = n > 8 ? n - 8 : 0;
	if (n < lo)
		n = lo;
	while (n < cap && grow_rule(n) < cap)
		n++;
	if (n <= cap && grow_rule(n) == cap)
		return n;
	n = cap >= 3 ? cap - 3 : 0; /* (n + 3) & ~3 */
	return n < lo ? (lo <= cap ? lo : cap) : n;
}

static uint32_t list_site(struct ctx *c, uint32_t site)
{
	struct lists_state *ls = &c->lists;
	struct mt_lists *rl = &c->rep->lists;
	struct mt_site *st = &c->rep->sites[site];
	if (st->list)
		return st->list - 1;
	if (rl->nsites == ls->sites_cap) {
		size_t cap = ls->sites_cap ? ls->sites_cap * 2 : 16;
		struct mt_list_site *p = realloc(rl->sites, cap * sizeof *p);
		if (!p)
			return UINT32_MAX;
		rl->sites = p;
		ls->sites_cap = cap;
	}
	st->list = (uint32_t)rl->nsites + 1;
	memset(&rl->sites[rl->nsites], 0, sizeof rl->sites[0]);
	rl->sites[rl->nsites].site = site;
	return (uint32_t)rl->nsites++;
}

static uint32_t chain_new(struct ctx *c)
{
	struct lists_state *ls = &c->lists;
	uint32_t i = ls->free_head;
	if (i != UINT32_MAX) {
		ls->free_head = ls->v[i].next_free;
	} else {
		if (ls->n == ls->cap) {
			uint32_t cap = ls->cap ? ls->cap * 2 : 64;
			struct chain *p = cap > ls->cap ? realloc(ls->v, cap * sizeof *p) : NULL;
			if (!p)
				return UINT32_MAX;
			ls->v = p;
			ls->cap = cap;
		}
		i = ls->n++;
		ls->v[i].caps = NULL;
		ls->v[i].caps_alloc = 0;
	}
	struct chain *ch = &ls->v[i];
	ch->used = true;
	ch->ncaps = 0;
	ch->resizes = ch->capacity = ch->slack = ch->skipped = 0;
	return i;
}

static void chain_drop(struct ctx *c, uint32_t i)
{
	struct lists_state *ls = &c->lists;
	struct chain *ch = &ls->v[i];
	c->rep->lists.slack_bytes_live -= ch->slack * 8;
	ch->used = false;
	ch->next_free = ls->free_head;
	ls->free_head = i;
}

/* Keeps the first MT_CHAIN_HEAD capacities and the latest ones. */
static void push_cap(struct chain *ch, uint64_t cap)
{
	if (ch->ncaps == MT_CHAIN_MAX) {
		memmove(ch->caps + MT_CHAIN_HEAD, ch->caps + MT_CHAIN_HEAD + 1,
			(MT_CHAIN_MAX - MT_CHAIN_HEAD - 1) * sizeof *ch->caps);
		ch->caps[MT_CHAIN_MAX - 1] = cap;
		ch->skipped++;
		return;
	}
	if (ch->ncaps == ch->caps_alloc) {
		uint32_t n = ch->caps_alloc ? ch->caps_alloc * 2 : 4;
		uint64_t *p = realloc(ch->caps, n * sizeof *p);
		if (!p)
			return; /* the capacities are an illustration: keep going */
		ch->caps = p;
		ch->caps_alloc = n;
	}
	ch->caps[ch->ncaps++] = cap;
}

/* A resize of chain i to cap at the new address. */
static void resize(struct ctx *c, uint32_t i, uint64_t cap, uint64_t copied)
{
	struct chain *ch = &c->lists.v[i];
	struct mt_lists *rl = &c->rep->lists;
	struct mt_list_site *s = &rl->sites[ch->lsite];
	uint64_t slack = cap - items_for(ch->capacity, cap);
	rl->slack_bytes_live += slack * 8;
	rl->slack_bytes_live -= ch->slack * 8;
	ch->slack = slack;
	ch->capacity = cap;
	ch->resizes++;
	push_cap(ch, cap);
	rl->resizes++;
	rl->bytes_copied += copied;
	c->cnt.list_resizes++;
	lines_resize(c);
	s->resizes++;
	s->bytes_copied += copied;
	if (ch->resizes > s->longest) {
		s->longest = ch->resizes;
		s->chain_len = ch->ncaps;
		s->chain_skipped = ch->skipped;
		if (ch->ncaps)
			memcpy(s->chain, ch->caps, ch->ncaps * sizeof *ch->caps);
		s->final_capacity = cap;
		s->slack_slots = slack;
	}
}

/* The slack of a buffer whose only resize was from NULL: its size says it
 * all, so such a buffer (most lists never grow past their first resize)
 * needs no chain record. */
static uint64_t first_slack(uint64_t size)
{
	uint64_t cap = size / 8;
	return cap - items_for(0, cap);
}

static bool list_size(uint64_t size)
{
	return size && size % 32 == 0;
}

/* The first resize of a buffer, from NULL, at site. */
static uint32_t first_resize(struct ctx *c, uint64_t size, uint32_t site)
{
	struct mt_lists *rl = &c->rep->lists;
	uint32_t lsite = list_site(c, site);
	if (lsite == UINT32_MAX) {
		c->oom = true;
		return 0;
	}
	struct mt_list_site *s = &rl->sites[lsite];
	uint64_t cap = size / 8, slack = first_slack(size);
	rl->buffers++;
	rl->resizes++;
	rl->slack_bytes_live += slack * 8;
	c->cnt.list_resizes++;
	lines_resize(c);
	s->buffers++;
	s->resizes++;
	if (!s->longest) {
		s->longest = 1;
		s->chain[0] = cap;
		s->chain_len = 1;
		s->final_capacity = cap;
		s->slack_slots = slack;
	}
	return TAG_CHAIN;
}

/* A chain record for a buffer of old_size bytes made at `site`;
 * UINT32_MAX when out of memory. */
static uint32_t chain_start(struct ctx *c, uint32_t site, uint64_t old_size)
{
	uint32_t lsite = list_site(c, site);
	uint32_t idx = lsite == UINT32_MAX ? UINT32_MAX : chain_new(c);
	if (idx == UINT32_MAX) {
		c->oom = true;
		return UINT32_MAX;
	}
	struct chain *ch = &c->lists.v[idx];
	ch->lsite = lsite;
	ch->capacity = old_size / 8;
	push_cap(ch, ch->capacity);
	return idx;
}

uint32_t lists_realloc(struct ctx *c, uint64_t old, uint32_t old_tag, uint64_t old_size,
		       uint64_t new_addr, uint64_t size, uint32_t site)
{
	struct lists_state *ls = &c->lists;
	uint64_t idx, unused;
	bool moved = old && new_addr != old;
	uint64_t copied = moved ? (old_size < size ? old_size : size) : 0;
	if (!old)
		return list_size(size) ? first_resize(c, size, site) : 0;
	if (old_tag & TAG_CHAINREC) {
		if (!hm_del(&ls->chains, old, &idx))
			return 0;
		if (!list_size(size)) {
			chain_drop(c, (uint32_t)idx);
			return 0;
		}
	} else if (old_tag & TAG_CHAIN) {
		/* the second resize: the chain gets its record */
		if (!list_size(size)) {
			lists_end(c, old, old_tag, old_size);
			return 0;
		}
		if ((idx = chain_start(c, val_site(old_tag), old_size)) == UINT32_MAX)
			return 0;
		ls->v[idx].slack = first_slack(old_size);
		ls->v[idx].resizes = 1;
	} else {
		/* a buffer made at its size (PyList_New) grows */
		if (!list_size(size) || !old_size || old_size % 8)
			return 0;
		if ((idx = chain_start(c, site, old_size)) == UINT32_MAX)
			return 0;
		c->rep->lists.buffers++;
		c->rep->lists.sites[ls->v[idx].lsite].buffers++;
	}
	resize(c, (uint32_t)idx, size / 8, copied);
	if (hm_put(&ls->chains, new_addr, idx, &unused) < 0) {
		c->oom = true;
		return 0;
	}
	return TAG_CHAIN | TAG_CHAINREC;
}

/* list_resize() on a free-threaded build: a new item array of 8 bytes of
 * header and 8 per slot (_PyListArray) from PyMem_Malloc, then PyMem_Free
 * of the old one, with nothing in between on that thread.  (A list that
 * another thread resized frees its old array later, when no thread can
 * still read it: that resize is not seen.) */
void lists_moved(struct ctx *c, struct thread *t, uint64_t old, uint64_t *old_val,
		 uint64_t old_size)
{
	uint64_t *v = hm_ref(&c->live[MT_DOM_PYMEM], t->fresh);
	if (!v || val_size_field(*v) == SIZE_BIG || !site_counts(val_site(*v)))
		return; /* out of the view's filters: no list site */
	uint64_t size = val_size_field(*v);
	if (old_size < 8 || (old_size - 8) % 8 || size < 8 || !list_size(size - 8))
		return;
	uint32_t flags = lists_realloc(c, old, val_tag(*old_val), old_size - 8, t->fresh,
				       size - 8, val_site(*v));
	v = hm_ref(&c->live[MT_DOM_PYMEM], t->fresh);
	if (v)
		*v |= flags;
	*old_val &= ~(uint64_t)(TAG_CHAIN | TAG_CHAINREC);
}

void lists_end(struct ctx *c, uint64_t addr, uint32_t tag, uint64_t size)
{
	uint64_t idx;
	if (!(tag & TAG_CHAINREC))
		c->rep->lists.slack_bytes_live -= first_slack(size) * 8;
	else if (hm_del(&c->lists.chains, addr, &idx))
		chain_drop(c, (uint32_t)idx);
}

/* Adds list site b's figures to a: sums, and the longer chain. */
static void lsite_merge(struct mt_list_site *a, const struct mt_list_site *b)
{
	a->resizes += b->resizes;
	a->buffers += b->buffers;
	a->bytes_copied += b->bytes_copied;
	if (b->longest > a->longest) {
		uint32_t site = a->site;
		uint64_t resizes = a->resizes, buffers = a->buffers, copied = a->bytes_copied;
		*a = *b;
		a->site = site;
		a->resizes = resizes;
		a->buffers = buffers;
		a->bytes_copied = copied;
	}
}

void lists_remap(struct ctx *c, const uint32_t *map)
{
	struct mt_report *rep = c->rep;
	struct mt_lists *l = &rep->lists;
	size_t n = 0;
	for (size_t i = 0; i < rep->nsites; i++)
		rep->sites[i].list = 0;
	for (size_t k = 0; k < l->nsites; k++) {
		struct mt_list_site ls = l->sites[k];
		ls.site = map[ls.site];
		struct mt_site *s = &rep->sites[ls.site];
		if (s->list) {
			lsite_merge(&l->sites[s->list - 1], &ls);
		} else {
			l->sites[n] = ls;
			s->list = (uint32_t)++n;
		}
	}
	l->nsites = n;
}
