/*
 * view.c - what a report counts (struct mt_view): a time window and the
 * domain and thread filters.  They are applied while the trace streams,
 * since they change what the figures are: the peak of a window is the
 * highest heap during it, its leaks are the blocks made in it and still
 * live at its end, its temporaries are its own.
 *
 * Before the window opens, the events are read as usual, so that every
 * block live when it opens is known (and counts in the heap and at the
 * peak); the window's opening then starts every counter afresh and tags
 * the live blocks TAG_OLD, so that the leaks can leave them out.  Once it
 * closes, nothing more is counted.
 *
 * Filters: a block of another domain or thread is OUT (see analysis.h): it
 * counts in no site.  With --domain, the heap is the live bytes of the
 * domains asked for (each its own, as the domains' figures count them),
 * rather than the malloc domain and the arenas; with --thread, the live
 * bytes of the blocks the thread made.  The domains' own figures, pools
 * and arenas stay the whole process's.
 */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "analysis.h"
#include "codec.h"

void view_init(struct ctx *c)
{
	struct mt_report *rep = c->rep;
	const struct mt_view *v = &rep->view;
	c->filtered = v->domains || v->thread_set;
	c->heap_sites = v->thread_set;
	c->heap_doms = v->thread_set ? 0 : v->domains ? v->domains : 1u << MT_DOM_MALLOC;
	c->heap_arenas = !c->filtered;
	c->lines_on = !v->no_lines;
	bool later = v->from.set && (v->from.mark || v->from.us > 0);
	c->vs.win = later ? WIN_BEFORE : WIN_OPEN;
	c->vs.timed = (v->from.set && !v->from.mark) || (v->to.set && !v->to.mark);
	c->vs.marked = (v->from.set && v->from.mark) || (v->to.set && v->to.mark);
	rep->window.opened = !later;
}

/* Blocks live now were made before the window. */
static void tag_old(struct ctx *c)
{
	for (int d = 0; d < MT_DOM_COUNT; d++) {
		struct heapmap *m = &c->live[d];
		for (size_t i = 0; m->slots && i <= m->mask; i++)
			if (m->slots[i].key && site_counts(val_site(m->slots[i].val)))
				m->slots[i].val |= TAG_OLD;
		if (m->has_zero && site_counts(val_site(m->zero_val)))
			m->zero_val |= TAG_OLD;
	}
	for (uint32_t i = 0; i < c->pools.nslots; i++) {
		struct arena_slot *a = &c->pools.slots[i];
		for (uint64_t g = 0; a->used && a->tags && g <= a->size >> GRANULE_SHIFT; g++)
			if ((a->tags[g] & ATAG_LIVE) && site_counts(val_site(a->tags[g])))
				a->tags[g] |= TAG_OLD;
	}
	for (size_t i = 0; i < c->rep->nsites; i++) {
		struct mt_site *s = &c->rep->sites[i];
		s->old_bytes = s->live_bytes;
		s->old_blocks = s->live_blocks;
	}
}

/* Every counter starts afresh; levels (live bytes, arenas, pools) stay,
 * and the highest ones start from where they are. */
static void reset_counters(struct ctx *c)
{
	struct mt_report *rep = c->rep;
	rep->events.total = 0;
	for (int d = 0; d < MT_DOM_COUNT; d++) {
		struct mt_dom_stats *s = &rep->dom[d];
		uint64_t live = s->live_bytes;
		*s = (struct mt_dom_stats){ .live_bytes = live, .peak_bytes = live };
	}
	for (size_t i = 0; i < rep->nsites; i++) {
		struct mt_site *s = &rep->sites[i];
		s->allocs = s->bytes = s->temp_allocs = s->temp_bytes = 0;
	}
	rep->temp_allocs = rep->temp_bytes = 0;
	memset(rep->hist, 0, sizeof rep->hist);
	for (size_t i = 0; i < c->nthreads; i++) {
		c->threads[i].allocs = c->threads[i].bytes = 0;
		c->threads[i].last_dom = -1;
	}
	struct mt_pools *p = &rep->pools;
	p->arenas_allocated = p->arenas_freed = p->other_allocated = p->other_freed = 0;
	p->arenas_peak = p->arenas_live;
	p->other_bytes_peak = p->other_bytes;
	p->pools_peak = p->pools_in_use;
	for (int k = 0; k < MT_SIZE_CLASSES; k++) {
		struct mt_size_class *sc = &p->classes[k];
		sc->allocs = 0;
		sc->live_objects_peak = sc->live_objects;
		sc->pools_peak = sc->pools;
	}
	struct mt_lists *l = &rep->lists;
	l->resizes = l->buffers = l->bytes_copied = 0;
	for (size_t i = 0; i < l->nsites; i++) {
		struct mt_list_site *ls = &l->sites[i];
		ls->resizes = ls->buffers = ls->bytes_copied = ls->longest = 0;
		ls->chain_len = 0;
	}
	for (size_t i = 0; i < rep->nlines; i++) {
		struct mt_script_line *sl = &rep->lines[i];
		*sl = (struct mt_script_line){ .file = sl->file, .line = sl->line };
	}
}

static void open_window(struct ctx *c, bool at_mark)
{
	struct mt_report *rep = c->rep;
	c->vs.win = WIN_OPEN;
	rep->window.opened = true;
	rep->window.from_us = c->cnt.time_us;
	tag_old(c);
	reset_counters(c);
	/* the heap as it is is the window's first candidate for its peak */
	rep->heap.peak = rep->heap.live;
	rep->heap.peak_time_us = c->cnt.time_us;
	c->in_plateau = true;
	c->snapped = false;
	timeline_reset(c);
	if (c->grid)
		grid_open(c);
	marks_window(c, at_mark);
}

static void close_window(struct ctx *c)
{
	c->vs.win = WIN_CLOSED;
	if (c->vs.dec) /* the block's later records are not the window's */
		c->vs.dec->end = c->vs.dec->p;
	c->rep->window.closed = true;
	c->rep->window.to_us = c->cnt.time_us;
}

void view_time(struct ctx *c)
{
	const struct mt_view *v = &c->rep->view;
	bool from = v->from.set && !v->from.mark, to = v->to.set && !v->to.mark;
	if (c->vs.win == WIN_BEFORE && from && c->cnt.time_us >= v->from.us)
		open_window(c, false);
	if (c->vs.win == WIN_OPEN && to && c->cnt.time_us >= v->to.us) {
		/* the events before this time stamp were the window's last */
		c->cnt.time_us = v->to.us;
		close_window(c);
	}
	c->vs.timed = c->vs.win == WIN_BEFORE ? from || to : c->vs.win == WIN_OPEN && to;
}

static bool is_label(const struct ctx *c, uint64_t label_id, const char *want)
{
	uint64_t v;
	if (!want || !label_id || !hm_get(&c->strmap, label_id, &v))
		return false;
	const struct mt_bytes *b = &c->rep->strings[v];
	return b->p && b->n == strlen(want) && !memcmp(b->p, want, b->n);
}

bool view_mark(struct ctx *c, uint64_t label_id)
{
	const struct mt_view *v = &c->rep->view;
	if (c->vs.win == WIN_OPEN && v->to.set && is_label(c, label_id, v->to.mark)) {
		close_window(c);
		return true;
	}
	if (c->vs.win == WIN_BEFORE && v->from.set && is_label(c, label_id, v->from.mark))
		open_window(c, true);
	return false;
}

void view_finish(struct ctx *c)
{
	struct mt_report *rep = c->rep;
	if (rep->window.opened && !rep->window.closed)
		rep->window.to_us = c->cnt.time_us;
	if (c->filtered) { /* the heap is the blocks in view */
		rep->heap.live_blocks = 0;
		for (int d = 0; d < MT_DOM_COUNT && !c->heap_sites; d++)
			if (c->heap_doms & (1u << d))
				rep->heap.live_blocks += rep->dom[d].live_blocks;
		for (size_t i = 0; i < rep->nsites && c->heap_sites; i++)
			rep->heap.live_blocks += rep->sites[i].live_blocks;
	}
	/* the leaks of a window are the blocks it made */
	for (size_t i = 0; i < rep->nsites; i++) {
		struct mt_site *s = &rep->sites[i];
		s->live_bytes -= s->old_bytes;
		s->live_blocks -= s->old_blocks;
		s->old_bytes = s->old_blocks = 0;
	}
}

/* ---- names -------------------------------------------------------------------- */

static const char *const sort_names[] = { "peak", "allocs", "bytes", "leaked", "temporary" };
static const char *const group_names[] = { "line", "function", "file" };

const char *mt_sort_name(enum mt_sort sort)
{
	return sort_names[sort];
}

const char *mt_group_name(enum mt_group by)
{
	return group_names[by];
}

static int find(const char *const *names, int n, const char *name)
{
	for (int i = 0; i < n; i++)
		if (!strcmp(names[i], name))
			return i;
	return -1;
}

int mt_sort_parse(const char *name)
{
	return find(sort_names, 5, name);
}

int mt_group_parse(const char *name)
{
	return find(group_names, 3, name);
}

bool mt_bytes_parse(const char *s, uint64_t *out)
{
	char *end;
	errno = 0;
	if (!*s || *s == '-' || *s == '+')
		return false;
	double v = strtod(s, &end);
	if (errno || end == s || !isfinite(v) || v < 0)
		return false;
	static const char units[] = "KMGT";
	const char *u = *end ? strchr(units, *end == 'k' ? 'K' : *end) : NULL;
	if (u && *u) {
		v *= pow(1024, (double)(u - units + 1));
		end++;
		if (!strcmp(end, "iB") || !strcmp(end, "B"))
			end += strlen(end);
	} else if (!strcmp(end, "B")) {
		end++;
	}
	if (*end || v >= 0x1p64 || v != floor(v))
		return false;
	*out = (uint64_t)v;
	return true;
}

void mt_view_default(struct mt_view *v)
{
	*v = (struct mt_view){ .sort = MT_SORT_PEAK, .by = MT_GROUP_LINE,
			       .flame_value = MT_SORT_BYTES };
}
