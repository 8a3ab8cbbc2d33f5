/*
 * marks.c - the steps a program marked (MARK records, memtrace_mark() and
 * python/memtrace.py's mark()).  A step runs from its mark to the next
 * one or to the end of the trace; what happened in it is the difference of
 * the running counters (struct mt_counters) at its two ends, so the steps
 * cost nothing per event.  When the trace starts with events before its
 * first mark, they make a step "(before first mark)".
 *
 * A program may mark in a loop: past MT_MARKS_MAX steps, further marks
 * extend the last step (its count says how many marks it covers), so that
 * memory never follows the trace length.
 */
#include <stdlib.h>
#include <string.h>

#include "analysis.h"

#define MT_MARKS_MAX 10000

void counters_now(struct ctx *c, struct mt_counters *out)
{
	const struct mt_report *rep = c->rep;
	*out = c->cnt;
	out->heap = rep->heap.live;
	out->arenas = rep->pools.arenas_live;
	out->pools = rep->pools.pools_in_use;
	for (int d = 0; d < MT_DOM_COUNT; d++) {
		out->dom_live[d] = rep->dom[d].live_bytes;
		out->dom_reallocs[d] = rep->dom[d].reallocs;
		out->dom_bytes[d] = rep->dom[d].bytes_allocated;
	}
}

static struct mt_mark *add_step(struct ctx *c, uint32_t label, const struct mt_counters *start)
{
	struct mt_report *rep = c->rep;
	if (rep->nmarks == c->marks.cap) {
		size_t cap = c->marks.cap ? c->marks.cap * 2 : 16;
		struct mt_mark *p = realloc(rep->marks, cap * sizeof *p);
		if (!p)
			return NULL;
		rep->marks = p;
		c->marks.cap = cap;
	}
	struct mt_mark *m = &rep->marks[rep->nmarks++];
	memset(m, 0, sizeof *m);
	m->label = label;
	m->count = 1;
	m->start = *start;
	m->heap_peak = start->heap;
	return m;
}

int marks_mark(struct ctx *c, uint64_t label_id)
{
	struct mt_report *rep = c->rep;
	struct mt_counters now;
	uint64_t v;
	uint32_t label = label_id && hm_get(&c->strmap, label_id, &v) ? (uint32_t)v : 0;
	rep->marks_total++;
	counters_now(c, &now);
	if (c->marks.open) {
		struct mt_mark *last = &rep->marks[rep->nmarks - 1];
		if (rep->nmarks >= MT_MARKS_MAX) {
			last->count++;
			return 0;
		}
		last->end = now;
	} else if (rep->events.total) {
		struct mt_mark *m = add_step(c, UINT32_MAX, &c->marks.base);
		if (!m)
			return -1;
		m->count = 0;
		m->end = now;
		m->heap_peak = rep->heap.peak;
	}
	if (!add_step(c, label, &now))
		return -1;
	c->marks.open = true;
	return 0;
}

void marks_window(struct ctx *c, bool at_mark)
{
	struct mt_report *rep = c->rep;
	counters_now(c, &c->marks.base);
	if (at_mark || !c->marks.open) {
		rep->nmarks = 0;
		c->marks.open = false;
		return;
	}
	/* the step under way goes on, from now */
	struct mt_mark *m = &rep->marks[0];
	*m = rep->marks[rep->nmarks - 1];
	m->start = c->marks.base;
	m->heap_peak = m->start.heap;
	rep->nmarks = 1;
}

void marks_finish(struct ctx *c)
{
	struct mt_report *rep = c->rep;
	if (c->marks.open)
		counters_now(c, &rep->marks[rep->nmarks - 1].end);
}

const char *mt_mark_label(const struct mt_report *rep, const struct mt_mark *m)
{
	if (m->label == UINT32_MAX)
		return "(before first mark)";
	return mt_report_string(rep, m->label);
}
