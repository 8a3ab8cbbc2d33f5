/*
 * sites.c - where memory was allocated.  Keeps the Python definitions of
 * the trace (STRING, CODE, FRAME records) resolved into file, function and
 * line, and one struct mt_site per (innermost frame, domain): allocations,
 * bytes, live bytes, temporaries, and the live bytes at the heap peak.
 *
 * The peak contribution of every site comes out of one pass.  When the heap
 * (malloc + arenas) reaches a new peak it stays there for a while: a new
 * pymalloc arena fills with objects without the heap moving.  The moment
 * that counts is the one of that plateau where the sites hold the most
 * (the arenas are fullest): before anything leaves a site or the heap
 * during the plateau, if the sites hold more than at the plateau's last
 * snapshot, a new snapshot is taken.  A snapshot is an epoch: a site whose
 * live bytes are about to change and whose stamp is older than the current
 * epoch has not changed since that moment, so its current live bytes are
 * its value then: it copies them to peak_bytes and takes the new stamp.
 * At the end every site still stale gets the same fix-up.  Cost: a compare
 * per change.
 */
#define _GNU_SOURCE /* qsort_r */
#include <stdlib.h>
#include <string.h>

#include "analysis.h"
#include "stacks.h"

static uint32_t new_site(struct ctx *c, uint32_t frame, int dom);

int sites_init(struct ctx *c)
{
	struct mt_report *rep = c->rep;
	int err = hm_init(&c->strmap) | hm_init(&c->codemap) | hm_init(&c->framemap) |
		  hm_init(&c->sitemap) | hm_init(&c->thread_sites);
	/* index 0 of strings, frames and codes means "none" */
	err |= mt_grow((void **)&rep->strings, &c->strings_cap, 1, sizeof *rep->strings);
	err |= mt_grow((void **)&rep->frames, &c->frames_cap, 1, sizeof *rep->frames);
	err |= mt_grow((void **)&c->codes, &c->codes_cap, 1, sizeof *c->codes);
	if (err)
		return -1;
	rep->strings[0] = (struct mt_bytes){ 0 };
	rep->frames[0] = (struct mt_frame){ 0 };
	c->codes[0] = (struct code){ 0 };
	rep->nstrings = rep->nframes = c->ncodes = 1;
	for (int d = 0; d < MT_DOM_COUNT; d++)
		c->native[d] = NO_SITE;
	/* site 0 always exists: where to count when a new site cannot be made */
	c->native[MT_DOM_MALLOC] = new_site(c, 0, MT_DOM_MALLOC);
	return c->native[MT_DOM_MALLOC] == 0 ? 0 : -1;
}

void sites_free(struct ctx *c)
{
	hm_free(&c->strmap);
	hm_free(&c->codemap);
	hm_free(&c->framemap);
	hm_free(&c->sitemap);
	hm_free(&c->thread_sites);
	free(c->codes);
	c->codes = NULL;
}

static uint32_t lookup(const struct heapmap *m, uint64_t id)
{
	uint64_t v;
	return id && hm_get(m, id, &v) ? (uint32_t)v : 0;
}

int sites_string(struct ctx *c, uint64_t id, const uint8_t *p, size_t n)
{
	struct mt_report *rep = c->rep;
	uint64_t unused;
	if (rep->nstrings >= UINT32_MAX - 1)
		return 0;
	if (mt_grow((void **)&rep->strings, &c->strings_cap, rep->nstrings + 1, sizeof *rep->strings))
		return -1;
	uint8_t *copy = malloc(n + 1);
	if (!copy)
		return -1;
	memcpy(copy, p, n);
	copy[n] = 0;
	if (hm_put(&c->strmap, id, rep->nstrings, &unused) < 0) {
		free(copy);
		return -1;
	}
	rep->strings[rep->nstrings++] = (struct mt_bytes){ copy, n };
	return 0;
}

int sites_code(struct ctx *c, uint64_t id, uint64_t file, uint64_t name)
{
	uint64_t unused;
	if (c->ncodes >= UINT32_MAX - 1)
		return 0;
	if (mt_grow((void **)&c->codes, &c->codes_cap, c->ncodes + 1, sizeof *c->codes) ||
	    hm_put(&c->codemap, id, c->ncodes, &unused) < 0)
		return -1;
	c->codes[c->ncodes++] = (struct code){ lookup(&c->strmap, file), lookup(&c->strmap, name) };
	return 0;
}

int sites_frame(struct ctx *c, uint64_t id, uint64_t parent, uint64_t code, uint64_t line)
{
	struct mt_report *rep = c->rep;
	uint64_t unused;
	if (rep->nframes >= UINT32_MAX - 1)
		return 0;
	if (mt_grow((void **)&rep->frames, &c->frames_cap, rep->nframes + 1, sizeof *rep->frames) ||
	    hm_put(&c->framemap, id, rep->nframes, &unused) < 0)
		return -1;
	const struct code *co = &c->codes[lookup(&c->codemap, code)];
	rep->frames[rep->nframes] = (struct mt_frame){ .parent = lookup(&c->framemap, parent),
						       .file = co->file,
						       .function = co->name,
						       .line = line };
	/* a frame can only name an earlier one as its parent */
	if (rep->frames[rep->nframes].parent >= rep->nframes)
		rep->frames[rep->nframes].parent = 0;
	rep->nframes++;
	return 0;
}

static uint32_t new_site(struct ctx *c, uint32_t frame, int dom)
{
	struct mt_report *rep = c->rep;
	if (rep->nsites >= MAX_SITES)
		return MAX_SITES - 1; /* folded into the last one: millions of sites */
	if (mt_grow((void **)&rep->sites, &c->sites_cap, rep->nsites + 1, sizeof *rep->sites)) {
		c->oom = true;
		return rep->nsites ? 0 : NO_SITE;
	}
	if (c->grid && grid_site_new(c, rep->nsites)) {
		c->oom = true;
		return rep->nsites ? 0 : NO_SITE;
	}
	/* Its value at a peak still to be fixed is whatever it has then. */
	rep->sites[rep->nsites] = (struct mt_site){
		.frame = frame, .dom = dom, .epoch = c->epoch
	};
	return (uint32_t)rep->nsites++;
}

/* MT_BUILD_PER_THREAD: the current thread's site for the place of site s. */
static uint32_t thread_site(struct ctx *c, uint32_t s)
{
	uint64_t key = (uint64_t)s << 32 | (uint32_t)c->cur, v;
	if (hm_get(&c->thread_sites, key, &v))
		return (uint32_t)v;
	struct mt_site place = c->rep->sites[s];
	uint32_t own = new_site(c, place.frame, place.dom);
	if (own == NO_SITE || own == s || c->oom)
		return s; /* no room for it: counted at the place's */
	c->rep->sites[own].stack = place.stack;
	c->rep->sites[own].tid = c->cur_tid;
	if (hm_put(&c->thread_sites, key, own, &v) < 0)
		c->oom = true;
	return own;
}

uint32_t sites_lookup(struct ctx *c, struct thread *t, int dom)
{
	uint32_t s;
	uint64_t v;
	if (t->stack && (s = stacks_site(c, t, dom)) != NO_SITE) {
		/* native stacks: see stacks.h */
	} else if (dom < MT_DOM_PYMEM || !t->loc) {
		if (c->native[dom] == NO_SITE)
			c->native[dom] = new_site(c, 0, dom);
		s = c->native[dom];
	} else if (t->loc < (1ull << 61) && hm_get(&c->sitemap, t->loc * 4 + (uint64_t)dom, &v)) {
		s = (uint32_t)v;
	} else {
		s = new_site(c, lookup(&c->framemap, t->loc), dom);
		if (s != NO_SITE && t->loc < (1ull << 61) &&
		    hm_put(&c->sitemap, t->loc * 4 + (uint64_t)dom, s, &v) < 0)
			c->oom = true;
	}
	if (s == NO_SITE) {
		c->oom = true;
		return 0;
	}
	if (c->per_thread)
		s = thread_site(c, s);
	t->site[dom] = s;
	return s;
}

void sites_snapshot(struct ctx *c)
{
	struct mt_report *rep = c->rep;
	c->snap_epoch = ++c->epoch;
	c->snapped = true;
	c->snap_total = c->sites_live;
	rep->heap.snapshot_us = c->cnt.time_us;
	rep->pools.at_peak.arena_bytes = rep->pools.arenas_live * rep->pools.arena_size;
	rep->pools.at_peak.object_bytes = rep->pools.object_bytes;
	rep->pools.at_peak.pools = rep->pools.pools_in_use;
	rep->lists.slack_bytes_at_peak = rep->lists.slack_bytes_live;
}

void sites_finish(struct ctx *c)
{
	struct mt_report *rep = c->rep;
	for (size_t i = 0; i < rep->nsites; i++)
		site_touch(c, (uint32_t)i);
}

uint32_t sites_new(struct ctx *c, uint32_t frame, int dom)
{
	return new_site(c, frame, dom);
}

/* ---- for the outputs -------------------------------------------------------- */

const char *mt_report_string(const struct mt_report *rep, uint32_t idx)
{
	if (!idx || idx >= rep->nstrings || !rep->strings[idx].p)
		return "?";
	return (const char *)rep->strings[idx].p;
}

const char *mt_site_file(const struct mt_report *rep, const struct mt_site *s)
{
	struct mt_mframe nf;
	if (s->stack && mt_native_where(rep, s, &nf))
		return nf.file[0] ? nf.file : nf.module ? nf.module : "<native>";
	return s->frame && s->frame < rep->nframes
		       ? mt_report_string(rep, rep->frames[s->frame].file)
		       : "<native>";
}

const char *mt_site_function(const struct mt_report *rep, const struct mt_site *s)
{
	struct mt_mframe nf;
	if (s->stack && mt_native_where(rep, s, &nf))
		return nf.function;
	return s->frame && s->frame < rep->nframes
		       ? mt_report_string(rep, rep->frames[s->frame].function)
		       : "";
}

uint64_t mt_site_line(const struct mt_report *rep, const struct mt_site *s)
{
	struct mt_mframe nf;
	if (s->stack && mt_native_where(rep, s, &nf))
		return nf.line;
	return s->frame && s->frame < rep->nframes ? rep->frames[s->frame].line : 0;
}

static uint64_t key1(const struct mt_site *s, enum mt_site_order order)
{
	switch (order) {
	case MT_BY_PEAK:
	case MT_AT_PEAK:
		return s->peak_bytes;
	case MT_BY_LIVE:
		return s->live_bytes;
	default:
		return s->temp_allocs;
	}
}

static uint64_t key2(const struct mt_site *s, enum mt_site_order order)
{
	switch (order) {
	case MT_BY_LIVE:
		return s->live_blocks;
	case MT_BY_TEMP:
		return s->temp_bytes;
	default:
		return s->bytes;
	}
}

struct sort_ctx {
	const struct mt_report *rep;
	enum mt_site_order order;
};

static int cmp_sites(const void *a, const void *b, void *arg)
{
	const struct sort_ctx *sc = arg;
	const struct mt_site *x = &sc->rep->sites[*(const uint32_t *)a];
	const struct mt_site *y = &sc->rep->sites[*(const uint32_t *)b];
	uint64_t kx = key1(x, sc->order), ky = key1(y, sc->order);
	if (kx != ky)
		return kx < ky ? 1 : -1;
	kx = key2(x, sc->order);
	ky = key2(y, sc->order);
	if (kx != ky)
		return kx < ky ? 1 : -1;
	uint32_t ia = *(const uint32_t *)a, ib = *(const uint32_t *)b;
	return ia < ib ? -1 : ia > ib;
}

static bool wanted(const struct mt_site *s, enum mt_site_order order)
{
	switch (order) {
	case MT_BY_PEAK:
		return s->peak_bytes || s->bytes;
	case MT_AT_PEAK:
		return s->peak_bytes;
	case MT_BY_LIVE:
		return s->live_blocks;
	default:
		return s->temp_allocs;
	}
}

uint32_t *mt_sites_sorted(const struct mt_report *rep, enum mt_site_order order, size_t max,
			  size_t *n)
{
	size_t k = 0;
	*n = 0;
	uint32_t *idx = malloc((rep->nsites ? rep->nsites : 1) * sizeof *idx);
	if (!idx)
		return NULL;
	for (size_t i = 0; i < rep->nsites; i++)
		if (wanted(&rep->sites[i], order))
			idx[k++] = (uint32_t)i;
	struct sort_ctx sc = { rep, order };
	qsort_r(idx, k, sizeof *idx, cmp_sites, &sc);
	*n = k < max ? k : max;
	if (!*n) {
		free(idx);
		return NULL;
	}
	return idx;
}
