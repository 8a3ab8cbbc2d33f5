/*
 * timegrid.c - every site's figures over time (MT_BUILD_TIME_GRID), for
 * the HTML page's time window: a coarse grid of at most MT_GRID_MAX
 * buckets (report.h), each site keeping a cell only for the buckets in
 * which its figures changed.
 *
 * A cell holds the site's running figures at the end of its bucket, so
 * the page gets a window's figures by subtracting the cell before the
 * window from the one at its end, and a site's live bytes at any bucket
 * end from one cell.  The cell of a bucket is written lazily: before a
 * site changes (site_touch) in a bucket later than its last change, its
 * figures are still those of that bucket's end.  A new bucket moves the
 * builder's epoch on, so site_touch's one compare serves both this and
 * the peak (sites.c): without a grid, reading costs nothing more; with
 * one, a cell per site and busy bucket.
 *
 * With a time window (--from), the grid starts again where the window
 * opens, when the sites' figures start afresh too: its cells are the
 * window's alone, and its buckets cut the window, not the whole trace.
 */
#include <string.h>

#include "analysis.h"

int grid_init(struct ctx *c)
{
	c->rep->grid.bucket_us = 1;
	c->grid_bucket = 0;
	return 0;
}

void grid_open(struct ctx *c)
{
	struct mt_grid *g = &c->rep->grid;
	grid_init(c);
	g->from_us = c->cnt.time_us;
	for (size_t i = 0; i < g->nsites; i++)
		g->sites[i] = (struct mt_site_times){ .cells = g->sites[i].cells,
						      .cap = g->sites[i].cap };
	c->epoch++; /* every site looks at its bucket when it next changes */
}

int grid_site_new(struct ctx *c, size_t idx)
{
	struct mt_grid *g = &c->rep->grid;
	if (mt_grow((void **)&g->sites, &c->grid_cap, idx + 1, sizeof *g->sites))
		return -1;
	/* a new site's figures are zeros, until they change in this bucket */
	g->sites[idx] = (struct mt_site_times){ .bucket = c->grid_bucket };
	g->nsites = idx + 1;
	return 0;
}

/* The site's figures as the cell of bucket b: the latest cell of a bucket
 * wins (the grid coarsens between two changes of a site).  Zeros before
 * the first cell go without saying. */
static void push_cell(struct ctx *c, struct mt_site_times *t, const struct mt_site *s,
		      uint64_t b)
{
	struct mt_tcell cell = { b, s->allocs, s->bytes, s->live_bytes, s->temp_allocs,
				 s->temp_bytes };
	if (!t->n && !(cell.allocs | cell.bytes | cell.live_bytes | cell.temp_allocs))
		return;
	if (t->n && t->cells[t->n - 1].bucket == b) {
		t->cells[t->n - 1] = cell;
		return;
	}
	size_t cap = t->cap;
	if (mt_grow((void **)&t->cells, &cap, t->n + 1, sizeof *t->cells)) {
		c->oom = true;
		return;
	}
	t->cap = (uint32_t)cap;
	t->cells[t->n++] = cell;
}

void grid_change(struct ctx *c, uint32_t idx)
{
	struct mt_site_times *t = &c->rep->grid.sites[idx];
	push_cell(c, t, &c->rep->sites[idx], t->bucket);
	t->bucket = c->grid_bucket;
}

/* Buckets twice as wide: pairs of cells merge, the later one's figures
 * standing for both. */
static void coarsen(struct ctx *c)
{
	struct mt_grid *g = &c->rep->grid;
	g->bucket_us *= 2;
	for (size_t i = 0; i < c->rep->nsites; i++) {
		struct mt_site_times *t = &g->sites[i];
		uint32_t n = 0;
		for (uint32_t k = 0; k < t->n; k++) {
			struct mt_tcell cell = t->cells[k];
			cell.bucket /= 2;
			if (n && t->cells[n - 1].bucket == cell.bucket)
				n--;
			t->cells[n++] = cell;
		}
		t->n = n;
		t->bucket /= 2;
	}
}

void grid_time(struct ctx *c)
{
	struct mt_grid *g = &c->rep->grid;
	uint64_t was = c->grid_bucket;
	uint64_t t = c->cnt.time_us - g->from_us;
	while (t / g->bucket_us >= MT_GRID_MAX)
		coarsen(c);
	c->grid_bucket = t / g->bucket_us;
	if (c->grid_bucket != was)
		c->epoch++; /* every site looks at its bucket when it next changes */
}

void grid_finish(struct ctx *c)
{
	struct mt_grid *g = &c->rep->grid;
	for (size_t i = 0; i < c->rep->nsites; i++)
		push_cell(c, &g->sites[i], &c->rep->sites[i], g->sites[i].bucket);
	g->nbuckets = c->grid_bucket + 1;
}

/* dst's cells and src's added up: at each bucket of either, the sum of
 * each one's running figures then. */
static int add_cells(struct mt_site_times *dst, struct mt_site_times *src)
{
	if (!dst->n) {
		struct mt_site_times t = *dst;
		*dst = *src;
		*src = t;
		return 0;
	}
	struct mt_tcell *out = malloc((dst->n + src->n) * sizeof *out), a = { 0 }, b = { 0 };
	if (!out)
		return -1;
	uint32_t i = 0, j = 0, k = 0;
	while (i < dst->n || j < src->n) {
		uint64_t at = i < dst->n ? dst->cells[i].bucket : UINT64_MAX;
		if (j < src->n && src->cells[j].bucket < at)
			at = src->cells[j].bucket;
		if (i < dst->n && dst->cells[i].bucket == at)
			a = dst->cells[i++];
		if (j < src->n && src->cells[j].bucket == at)
			b = src->cells[j++];
		out[k++] = (struct mt_tcell){ at, a.allocs + b.allocs, a.bytes + b.bytes,
					     a.live_bytes + b.live_bytes, a.temp_allocs + b.temp_allocs,
					     a.temp_bytes + b.temp_bytes };
	}
	free(dst->cells);
	dst->cells = out;
	dst->n = dst->cap = k;
	return 0;
}

void grid_remap(struct ctx *c, const uint32_t *map)
{
	struct mt_grid *g = &c->rep->grid;
	size_t n = c->rep->nsites;
	struct mt_site_times *to = calloc(n ? n : 1, sizeof *to);
	if (!to) {
		c->oom = true;
		return;
	}
	for (size_t i = 0; i < g->nsites; i++) {
		if (map[i] < n && add_cells(&to[map[i]], &g->sites[i]))
			c->oom = true;
		free(g->sites[i].cells);
	}
	free(g->sites);
	g->sites = to;
	g->nsites = n;
	c->grid_cap = n;
}

void mt_grid_free(struct mt_grid *g)
{
	for (size_t i = 0; g->sites && i < g->nsites; i++)
		free(g->sites[i].cells);
	free(g->sites);
	g->sites = NULL;
	g->nsites = 0;
}
