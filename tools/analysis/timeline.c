/*
 * timeline.c - the heap over time in at most MT_TIMELINE_MAX points, and
 * the size histogram.
 *
 * Time is cut into intervals; each interval keeps one point, the state at
 * its highest heap, so that no peak is lost to downsampling.  The interval
 * starts at 1 us and doubles whenever the points fill up, merging pairs of
 * intervals (the higher point wins).  Intervals without events make no
 * point.  The last point is the state at the end of the trace.
 */
#include <stdlib.h>
#include <string.h>

#include "analysis.h"

int timeline_init(struct ctx *c)
{
	struct mt_timeline *t = &c->rep->timeline;
	t->points = malloc((MT_TIMELINE_MAX + 1) * sizeof *t->points);
	t->interval_us = 1;
	c->tl.bucket_end = 1;
	return t->points ? 0 : -1;
}

static void snapshot(struct ctx *c, struct mt_tpoint *p)
{
	const struct mt_report *rep = c->rep;
	p->time_us = c->cnt.time_us;
	p->heap = rep->heap.live;
	for (int d = 0; d < MT_DOM_COUNT; d++)
		p->dom[d] = rep->dom[d].live_bytes;
	p->arenas = rep->pools.arenas_live;
	p->pools = rep->pools.pools_in_use;
}

void timeline_high(struct ctx *c)
{
	snapshot(c, &c->tl.cur);
}

/* Doubles the interval until the points fit in half the room. */
static void downsample(struct mt_timeline *t)
{
	while (t->npoints > MT_TIMELINE_MAX / 2) {
		size_t n = 0;
		t->interval_us *= 2;
		for (size_t i = 0; i < t->npoints; i++) {
			struct mt_tpoint *p = &t->points[i];
			uint64_t bucket = p->time_us / t->interval_us;
			if (n && t->points[n - 1].time_us / t->interval_us == bucket) {
				if (p->heap > t->points[n - 1].heap)
					t->points[n - 1] = *p;
			} else {
				t->points[n++] = *p;
			}
		}
		t->npoints = n;
	}
}

static void append(struct mt_timeline *t, const struct mt_tpoint *p)
{
	if (t->npoints == MT_TIMELINE_MAX)
		downsample(t);
	t->points[t->npoints++] = *p;
}

void timeline_time(struct ctx *c)
{
	struct mt_timeline *t = &c->rep->timeline;
	uint64_t now = c->cnt.time_us;
	if (now < c->tl.bucket_end)
		return;
	append(t, &c->tl.cur);
	uint64_t start = now - now % t->interval_us;
	c->tl.bucket_end = start + t->interval_us;
	if (c->tl.bucket_end <= start)
		c->tl.bucket_end = UINT64_MAX;
	snapshot(c, &c->tl.cur);
}

void timeline_reset(struct ctx *c)
{
	struct mt_timeline *t = &c->rep->timeline;
	t->npoints = 0;
	t->interval_us = 1;
	snapshot(c, &c->tl.cur);
	c->tl.bucket_end = c->cnt.time_us; /* the next time stamp keeps this point */
}

void timeline_finish(struct ctx *c)
{
	struct mt_timeline *t = &c->rep->timeline;
	struct mt_tpoint end;
	if (!t->points)
		return;
	append(t, &c->tl.cur);
	snapshot(c, &end);
	struct mt_tpoint *last = &t->points[t->npoints - 1];
	if (memcmp(last, &end, sizeof end))
		append(t, &end);
}

void hist_add(struct mt_report *rep, uint64_t size)
{
	int k = size ? 64 - __builtin_clzll(size) : 0;
	rep->hist[k].allocs++;
	rep->hist[k].bytes += size;
}

void hist_sub(struct mt_report *rep, uint64_t size)
{
	int k = size ? 64 - __builtin_clzll(size) : 0;
	rep->hist[k].allocs--;
	rep->hist[k].bytes -= size;
}
