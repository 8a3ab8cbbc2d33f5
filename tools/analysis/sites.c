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
#include <sys/types.h>

#include "analysis.h"
#include "stacks.h"

static uint32_t new_site(struct ctx *c, uint32_t frame, int dom);

int sites_init(struct ctx *c)
{
	struct mt_report *rep = c->rep;
	int err = hm_init(&c->strmap) | hm_init(&c->codemap) | hm_init(&c->framemap) |
		  hm_init(&c->sitemap) | hm_init(&c->scriptmap) | hm_init(&c->thread_sites);
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
	hm_free(&c->scriptmap);
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

int sites_code(struct ctx *c, uint64_t id, uint64_t file, uint64_t name, uint64_t first_line)
{
	uint64_t unused;
	if (c->ncodes >= UINT32_MAX - 1)
		return 0;
	if (mt_grow((void **)&c->codes, &c->codes_cap, c->ncodes + 1, sizeof *c->codes) ||
	    hm_put(&c->codemap, id, c->ncodes, &unused) < 0)
		return -1;
	c->codes[c->ncodes++] = (struct code){ lookup(&c->strmap, file), lookup(&c->strmap, name),
					       first_line > UINT32_MAX ? 0 : (uint32_t)first_line };
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
						       .first_line = co->first_line,
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

/* The copy of site s for the blocks made under main-script frame script
 * (lines.c takes the lines' peak bytes from them, then merges them). */
static uint32_t script_variant(struct ctx *c, uint32_t s, uint32_t script)
{
	uint64_t key = (uint64_t)s << 32 | script, v;
	if (hm_get(&c->scriptmap, key, &v))
		return (uint32_t)v;
	const struct mt_site *base = &c->rep->sites[s];
	uint32_t k = new_site(c, base->frame, base->dom);
	if (k == NO_SITE || k == s)
		return s;
	struct mt_site *copy = &c->rep->sites[k];
	base = &c->rep->sites[s]; /* new_site may have moved the array */
	if (copy->stack || copy->script || copy->frame != base->frame || copy->dom != base->dom)
		return k; /* folded into the last site: too many of them */
	copy->stack = base->stack;
	copy->tid = base->tid;
	copy->script = script;
	if (hm_put(&c->scriptmap, key, k, &v) < 0)
		c->oom = true;
	return k;
}

/* MT_BUILD_PER_THREAD: the current thread's site for the place of site s. */
static uint32_t thread_site(struct ctx *c, uint32_t s)
{
	uint64_t key = (uint64_t)s << 32 | (uint32_t)(c->cur - c->threads), v;
	if (hm_get(&c->thread_sites, key, &v))
		return (uint32_t)v;
	struct mt_site place = c->rep->sites[s];
	uint32_t own = new_site(c, place.frame, place.dom);
	if (own == NO_SITE || own == s || c->oom)
		return s; /* no room for it: counted at the place's */
	c->rep->sites[own].stack = place.stack;
	c->rep->sites[own].tid = c->cur->tid;
	if (hm_put(&c->thread_sites, key, own, &v) < 0)
		c->oom = true;
	return own;
}

uint32_t sites_lookup(struct ctx *c, struct thread *t, int dom)
{
	uint32_t s;
	uint64_t v;
	if (__builtin_expect(c->filtered, 0) && !view_in(c, t, dom))
		return t->site[dom] = SITE_OUT;
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
	if (t->script)
		s = script_variant(c, s, t->script);
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

void sites_sum(struct mt_site *g, const struct mt_site *s)
{
	g->allocs += s->allocs;
	g->bytes += s->bytes;
	g->live_bytes += s->live_bytes;
	g->live_blocks += s->live_blocks;
	g->peak_bytes += s->peak_bytes;
	g->peak_blocks += s->peak_blocks;
	g->temp_allocs += s->temp_allocs;
	g->temp_bytes += s->temp_bytes;
}

uint64_t mt_site_key(const struct mt_site *s, enum mt_sort sort)
{
	switch (sort) {
	case MT_SORT_PEAK:
		return s->peak_bytes;
	case MT_SORT_ALLOCS:
		return s->allocs;
	case MT_SORT_BYTES:
		return s->bytes;
	case MT_SORT_LEAKED:
		return s->live_bytes;
	default:
		return s->temp_allocs;
	}
}

/* The figure --threshold compares: the sorted one in bytes. */
static uint64_t threshold_key(const struct mt_site *s, enum mt_sort sort)
{
	switch (sort) {
	case MT_SORT_PEAK:
		return s->peak_bytes;
	case MT_SORT_LEAKED:
		return s->live_bytes;
	case MT_SORT_TEMPORARY:
		return s->temp_bytes;
	default:
		return s->bytes;
	}
}

/* The figure that breaks ties of the sorted one. */
static uint64_t second_key(const struct mt_site *s, enum mt_sort sort)
{
	switch (sort) {
	case MT_SORT_LEAKED:
		return s->live_blocks;
	case MT_SORT_TEMPORARY:
		return s->temp_bytes;
	case MT_SORT_BYTES:
		return s->allocs;
	default:
		return s->bytes;
	}
}

static bool any_figure(const struct mt_site *s)
{
	return s->allocs || s->bytes || s->peak_bytes || s->live_bytes || s->live_blocks ||
	       s->temp_allocs;
}

/* ---- rows: sites grouped by line, function or file ---------------------------- */

struct member {
	uint32_t site;
	const char *file, *function;
	uint64_t line;
};

struct group_ctx {
	const struct mt_report *rep;
	enum mt_group by;
};

static int cmp_member(const void *a, const void *b, void *arg)
{
	const struct group_ctx *g = arg;
	const struct member *x = a, *y = b;
	int dx = g->rep->sites[x->site].dom, dy = g->rep->sites[y->site].dom;
	if (dx != dy)
		return dx < dy ? -1 : 1;
	int r = strcmp(x->file, y->file);
	if (!r && g->by != MT_GROUP_FILE)
		r = strcmp(x->function, y->function);
	if (!r && g->by == MT_GROUP_LINE && x->line != y->line)
		r = x->line < y->line ? -1 : 1;
	if (!r) /* members in site order: a group's first site leads it */
		r = x->site < y->site ? -1 : x->site > y->site;
	return r;
}

static bool same_group(const struct group_ctx *g, const struct member *x, const struct member *y)
{
	return g->rep->sites[x->site].dom == g->rep->sites[y->site].dom &&
	       !strcmp(x->file, y->file) &&
	       (g->by == MT_GROUP_FILE || !strcmp(x->function, y->function)) &&
	       (g->by != MT_GROUP_LINE || x->line == y->line);
}

struct row_sort {
	enum mt_sort sort;
	const uint32_t *first; /* per row: its first site, the last tie-break */
	const struct mt_site *v;
};

static int cmp_rows(const void *a, const void *b, void *arg)
{
	const struct row_sort *rs = arg;
	uint32_t ia = *(const uint32_t *)a, ib = *(const uint32_t *)b;
	const struct mt_site *x = &rs->v[ia], *y = &rs->v[ib];
	uint64_t kx = mt_site_key(x, rs->sort), ky = mt_site_key(y, rs->sort);
	if (kx != ky)
		return kx < ky ? 1 : -1;
	kx = second_key(x, rs->sort);
	ky = second_key(y, rs->sort);
	if (kx != ky)
		return kx < ky ? 1 : -1;
	return rs->first[ia] < rs->first[ib] ? -1 : rs->first[ia] > rs->first[ib];
}

/* The sites with any figure, grouped: rows[i] sums a group, first[i] is
 * its first site.  Returns the number of rows, or -1 when out of memory. */
static ssize_t group_sites(const struct mt_report *rep, struct mt_site *rows, uint32_t *first)
{
	struct group_ctx g = { rep, rep->view.by };
	struct member *m = malloc((rep->nsites ? rep->nsites : 1) * sizeof *m);
	uint64_t *best = malloc((rep->nsites ? rep->nsites : 1) * sizeof *best);
	size_t n = 0, nrows = 0;
	if (!m || !best) {
		free(m);
		free(best);
		return -1;
	}
	for (size_t i = 0; i < rep->nsites; i++) {
		const struct mt_site *s = &rep->sites[i];
		if (any_figure(s))
			m[n++] = (struct member){ (uint32_t)i, mt_site_file(rep, s),
						  mt_site_function(rep, s), mt_site_line(rep, s) };
	}
	qsort_r(m, n, sizeof *m, cmp_member, &g);
	for (size_t i = 0; i < n; i++) {
		const struct mt_site *s = &rep->sites[m[i].site];
		if (i && same_group(&g, &m[i - 1], &m[i])) {
			struct mt_site *r = &rows[nrows - 1];
			sites_sum(r, s);
			if (s->bytes > best[nrows - 1]) { /* its stack is the one shown */
				best[nrows - 1] = s->bytes;
				r->frame = s->frame;
				r->stack = s->stack;
			}
			continue;
		}
		rows[nrows] = *s;
		best[nrows] = s->bytes;
		first[nrows++] = m[i].site;
	}
	free(m);
	free(best);
	return (ssize_t)nrows;
}

int mt_site_rows(const struct mt_report *rep, enum mt_sort sort, bool all, size_t max,
		 struct mt_rows *out)
{
	size_t cap = rep->nsites ? rep->nsites : 1;
	struct mt_site *rows = malloc(cap * sizeof *rows);
	uint32_t *first = malloc(cap * sizeof *first), *order = malloc(cap * sizeof *order);
	ssize_t n = rows && first && order ? group_sites(rep, rows, first) : -1;
	memset(out, 0, sizeof *out);
	if (n < 0) {
		free(rows);
		free(first);
		free(order);
		return -1;
	}
	size_t k = 0;
	for (size_t i = 0; i < (size_t)n; i++)
		if ((all || mt_site_key(&rows[i], sort)) &&
		    threshold_key(&rows[i], sort) >= rep->view.threshold)
			order[k++] = (uint32_t)i;
	struct row_sort rs = { sort, first, rows };
	qsort_r(order, k, sizeof *order, cmp_rows, &rs);
	out->total = k;
	out->n = k < max ? k : max;
	out->v = malloc((out->n ? out->n : 1) * sizeof *out->v);
	if (out->v)
		for (size_t i = 0; i < out->n; i++)
			out->v[i] = rows[order[i]];
	free(rows);
	free(first);
	free(order);
	return out->v ? 0 : -1;
}

void mt_row_where(const struct mt_report *rep, const struct mt_site *s, const char **file,
		  const char **function, uint64_t *line)
{
	struct mt_mframe nf;
	bool python = s->frame && s->frame < rep->nframes && !(s->stack && mt_native_where(rep, s, &nf));
	*file = mt_site_file(rep, s);
	*function = rep->view.by == MT_GROUP_FILE ? "" : mt_site_function(rep, s);
	if (rep->view.by == MT_GROUP_LINE)
		*line = mt_site_line(rep, s);
	else if (rep->view.by == MT_GROUP_FUNCTION && python)
		*line = rep->frames[s->frame].first_line;
	else
		*line = 0;
}

void mt_rows_free(struct mt_rows *r)
{
	free(r->v);
	r->v = NULL;
	r->n = r->total = 0;
}
