/*
 * output_json.c - the JSON report (docs/report-schema.md).  Key names are a
 * contract with scripts and with the HTML and folded renderers, which draw
 * from mt_report_to_json(): add keys if needed, never rename or remove them
 * without bumping MT_REPORT_SCHEMA_VERSION.  A figure the trace did not
 * carry is null.
 */
#define _GNU_SOURCE /* asprintf, qsort_r */
#include "output.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "stacks.h"

/* JSON integers are signed; only a hostile trace gets near the limit. */
static json_t *num(uint64_t v)
{
	return json_integer(v > INT64_MAX ? INT64_MAX : (json_int_t)v);
}

static json_t *num_if(unsigned have, unsigned bit, uint64_t v)
{
	return have & bit ? num(v) : json_null();
}

/* Paths and arguments are bytes, JSON strings are UTF-8: bytes that do not
 * form UTF-8 are spelled \xNN rather than dropped. */
static json_t *str(const uint8_t *p, size_t n)
{
	json_t *s = json_stringn((const char *)p, n);
	char *buf = s ? NULL : malloc(4 * n + 1);
	if (!buf)
		return s ? s : json_null();
	size_t len = 0;
	for (size_t i = 0; i < n; i++) {
		if (p[i] < 0x80)
			buf[len++] = (char)p[i];
		else
			len += (size_t)sprintf(buf + len, "\\x%02x", p[i]);
	}
	s = json_stringn(buf, len);
	free(buf);
	return s;
}

static json_t *bytes(const struct mt_bytes *b)
{
	return b->p ? str(b->p, b->n) : json_null();
}

static json_t *argv_array(const struct mt_bytes *b)
{
	if (!b->p)
		return json_null();
	json_t *a = json_array();
	for (size_t i = 0; i < b->n;) {
		const uint8_t *nul = memchr(b->p + i, 0, b->n - i);
		size_t len = nul ? (size_t)(nul - (b->p + i)) : b->n - i;
		json_array_append_new(a, str(b->p + i, len));
		i += len + 1;
	}
	return a;
}

static void set(json_t *o, const char *key, json_t *v)
{
	json_object_set_new(o, key, v ? v : json_null());
}

static json_t *snum(int64_t v)
{
	return json_integer((json_int_t)v);
}

/* A difference of two counters, as a signed number. */
static json_t *delta(uint64_t end, uint64_t start)
{
	return end >= start ? num(end - start) : snum(-(int64_t)(start - end));
}

static json_t *cstr(const char *s)
{
	return str((const uint8_t *)s, strlen(s));
}

json_t *mt_json_num(uint64_t v)
{
	return num(v);
}

json_t *mt_json_cstr(const char *s)
{
	return cstr(s);
}

/* object_allocator: how its objects were served, NULL when not known */
static json_t *python_json(const struct mt_process *p, const char *object_allocator)
{
	char v[32];
	static const char level[] = { 'a', 'b', 'c', 'f' };
	uint64_t hex = p->py_version;
	if (!(p->have & MT_HAVE_PYTHON))
		return json_null();
	int n = snprintf(v, sizeof v, "%u.%u.%u", (unsigned)(hex >> 24 & 0xff),
			 (unsigned)(hex >> 16 & 0xff), (unsigned)(hex >> 8 & 0xff));
	unsigned rl = (unsigned)(hex >> 4 & 0xf);
	if (rl >= 0xa && rl <= 0xc) /* alpha, beta, candidate; 0xd, 0xe are not levels */
		snprintf(v + n, sizeof v - (size_t)n, "%c%u", level[rl - 0xa],
			 (unsigned)(hex & 0xf));
	json_t *o = json_object();
	set(o, "version", json_string(v));
	bool ft = p->have & MT_HAVE_FREE_THREADED;
	set(o, "version_hex", num(hex));
	set(o, "free_threaded", json_boolean(ft));
	set(o, "pool_size", ft ? json_null() : num(p->pool_size));
	set(o, "arena_size", ft ? json_null() : num(p->arena_size));
	set(o, "py_depth", num(p->py_depth));
	set(o, "object_allocator", object_allocator ? cstr(object_allocator) : json_null());
	return o;
}

json_t *mt_json_id(uint64_t id)
{
	char buf[17];
	if (!id)
		return json_null();
	snprintf(buf, sizeof buf, "%016llx", (unsigned long long)id);
	return json_string(buf);
}

/* Where the trace sits in its run; null for a trace that names no run. */
static json_t *run_json(const struct mt_process *p)
{
	if (!p->run_id)
		return json_null();
	json_t *o = json_object();
	set(o, "id", mt_json_id(p->run_id));
	set(o, "name", bytes(&p->run_name));
	set(o, "trace_id", mt_json_id(p->trace_id));
	set(o, "parent", mt_json_id(p->parent_trace));
	set(o, "exec_predecessor", mt_json_id(p->exec_pred));
	set(o, "top", json_boolean(p->run_top));
	return o;
}

json_t *mt_process_to_json(const struct mt_process *p, const char *object_allocator)
{
	json_t *o = json_object();
	set(o, "pid", num_if(p->have, MT_HAVE_PID, p->pid));
	set(o, "ppid", num_if(p->have, MT_HAVE_PPID, p->ppid));
	set(o, "exe", bytes(&p->exe));
	set(o, "argv", argv_array(&p->argv));
	set(o, "start_unix_ns", num_if(p->have, MT_HAVE_START, p->start_ns));
	set(o, "page_size", num_if(p->have, MT_HAVE_PAGE_SIZE, p->page_size));
	set(o, "version", bytes(&p->version));
	set(o, "python", python_json(p, object_allocator));
	set(o, "run", run_json(p));
	return o;
}

static json_t *trace_json(const struct mt_report *rep)
{
	const char *reason = mt_end_reason_name(rep->trace.end_reason);
	json_t *o = json_object();
	set(o, "complete", json_boolean(rep->trace.complete));
	set(o, "end_reason", reason ? json_string(reason) : json_null());
	set(o, "blocks", num(rep->trace.blocks));
	set(o, "duration_us", num(rep->trace.duration_us));
	set(o, "threads", num(rep->trace.threads));
	set(o, "exit_status", rep->trace.exit_status >= 0 ? num((uint64_t)rep->trace.exit_status)
							 : json_null());
	return o;
}

static json_t *events_json(const struct mt_report *rep)
{
	json_t *o = json_object();
	set(o, "total", num(rep->events.total));
	/* without a footer, what could not be recorded is not known */
	set(o, "lost", rep->trace.complete ? num(rep->events.lost) : json_null());
	set(o, "producer_waits", num(rep->events.producer_waits));
	return o;
}

static json_t *domain_json(const struct mt_dom_stats *s)
{
	json_t *o = json_object();
	set(o, "allocs", num(s->allocs));
	set(o, "frees", num(s->frees));
	set(o, "reallocs", num(s->reallocs));
	set(o, "failed", num(s->failed));
	set(o, "bytes_allocated", num(s->bytes_allocated));
	set(o, "peak_bytes", num(s->peak_bytes));
	set(o, "live_bytes_at_exit", num(s->live_bytes));
	set(o, "live_blocks_at_exit", num(s->live_blocks));
	set(o, "unmatched_frees", num(s->unmatched_frees));
	set(o, "inconsistent", num(s->inconsistent));
	set(o, "freed_below", num(s->freed_below));
	return o;
}

/* ---- sites ------------------------------------------------------------- */

static json_t *frame_json(const struct mt_report *rep, uint32_t f)
{
	json_t *o = json_object();
	set(o, "file", cstr(mt_report_string(rep, rep->frames[f].file)));
	set(o, "line", num(rep->frames[f].line));
	set(o, "function", cstr(mt_report_string(rep, rep->frames[f].function)));
	return o;
}

static void site_where(json_t *o, const struct mt_report *rep, const struct mt_site *s)
{
	set(o, "file", cstr(mt_site_file(rep, s)));
	set(o, "line", num(mt_site_line(rep, s)));
	set(o, "function", cstr(mt_site_function(rep, s)));
}

/* A row's place at the view's grouping. */
static void row_where(json_t *o, const struct mt_report *rep, const struct mt_site *s)
{
	const char *file, *function;
	uint64_t line;
	mt_row_where(rep, s, &file, &function, &line);
	set(o, "file", cstr(file));
	set(o, "line", num(line));
	set(o, "function", cstr(function));
}

static json_t *stack_json(const struct mt_report *rep, uint32_t frame)
{
	json_t *a = json_array();
	size_t depth = 0;
	for (uint32_t f = frame; f && depth < rep->nframes; f = rep->frames[f].parent)
		depth++;
	/* outermost first */
	for (size_t i = depth; i-- > 0;) {
		uint32_t f = frame;
		for (size_t k = 0; k < i; k++)
			f = rep->frames[f].parent;
		json_array_append_new(a, frame_json(rep, f));
	}
	return a;
}

static json_t *site_json(const struct mt_report *rep, const struct mt_site *s)
{
	json_t *o = json_object();
	row_where(o, rep, s);
	set(o, "stack", s->stack && rep->native ? mt_native_stack_json(rep, s)
							: stack_json(rep, s->frame));
	set(o, "domain", json_string(mt_domain_name(s->dom)));
	if (rep->per_thread)
		set(o, "thread", num(s->tid));
	set(o, "allocs", num(s->allocs));
	set(o, "bytes", num(s->bytes));
	set(o, "peak_bytes", num(s->peak_bytes));
	set(o, "peak_blocks", num(s->peak_blocks));
	set(o, "live_bytes_at_exit", num(s->live_bytes));
	set(o, "live_blocks_at_exit", num(s->live_blocks));
	set(o, "temporary_allocs", num(s->temp_allocs));
	set(o, "temporary_bytes", num(s->temp_bytes));
	return o;
}

static json_t *site_ref_json(const struct mt_report *rep, const struct mt_site *s)
{
	json_t *o = json_object();
	row_where(o, rep, s);
	set(o, "domain", json_string(mt_domain_name(s->dom)));
	set(o, "bytes", num(s->peak_bytes));
	return o;
}

/* The rows for sort (all: every site with any figure), at most max; their
 * number before the cut goes to *total. */
static json_t *sites_json(const struct mt_report *rep, enum mt_sort sort, bool all, size_t max,
			  bool ref, size_t *total)
{
	struct mt_rows rows;
	json_t *a = json_array();
	if (mt_site_rows(rep, sort, all, max, &rows))
		return a;
	for (size_t i = 0; i < rows.n; i++)
		json_array_append_new(a, ref ? site_ref_json(rep, &rows.v[i])
					     : site_json(rep, &rows.v[i]));
	if (total)
		*total = rows.total;
	mt_rows_free(&rows);
	return a;
}

/* ---- summary ------------------------------------------------------------ */

static json_t *histogram_json(const struct mt_report *rep)
{
	json_t *a = json_array();
	for (int k = 0; k < MT_HIST_BUCKETS; k++) {
		const struct mt_hist_bucket *b = &rep->hist[k];
		if (!b->allocs)
			continue;
		uint64_t lo = k ? 1ull << (k - 1) : 0, hi = k ? (lo << 1) - 1 : 0;
		if (k == 64)
			hi = UINT64_MAX;
		json_t *o = json_object();
		set(o, "min", num(lo));
		set(o, "max", num(hi));
		set(o, "allocs", num(b->allocs));
		set(o, "bytes", num(b->bytes));
		json_array_append_new(a, o);
	}
	return a;
}

static json_t *summary_json(const struct mt_report *rep)
{
	json_t *o = json_object(), *peak = json_object(), *live = json_object(),
	       *temp = json_object();
	set(peak, "bytes", num(rep->heap.peak));
	set(peak, "time_us", num(rep->heap.peak_time_us));
	set(peak, "sites_time_us", num(rep->heap.snapshot_us));
	set(peak, "top_sites", sites_json(rep, MT_SORT_PEAK, false, MT_JSON_PEAK_SITES, true, NULL));
	set(o, "heap_peak", peak);
	set(live, "bytes", num(rep->heap.live));
	set(live, "blocks", num(rep->heap.live_blocks));
	set(o, "live_at_exit", live);
	set(temp, "allocs", num(rep->temp_allocs));
	set(temp, "bytes", num(rep->temp_bytes));
	set(o, "temporary", temp);
	set(o, "size_histogram", histogram_json(rep));
	return o;
}

/* ---- pools, arenas, lists ------------------------------------------------ */

/* absent: why there are no arenas or pools, or NULL */
static json_t *arenas_json(const struct mt_pools *p, const char *absent)
{
	json_t *o = json_object(), *other = json_object();
	set(o, "absent", absent ? cstr(absent) : json_null());
	set(o, "arena_size", num(p->arena_size));
	set(o, "allocated", num(p->arenas_allocated));
	set(o, "freed", num(p->arenas_freed));
	set(o, "peak", num(p->arenas_peak));
	set(o, "live_at_exit", num(p->arenas_live));
	set(other, "allocated", num(p->other_allocated));
	set(other, "freed", num(p->other_freed));
	set(other, "bytes_peak", num(p->other_bytes_peak));
	set(other, "bytes_at_exit", num(p->other_bytes));
	set(o, "other_blocks", other);
	return o;
}

static json_t *frag_json(uint64_t arena_bytes, uint64_t object_bytes, uint64_t pools,
			 uint64_t pool_size)
{
	json_t *o = json_object();
	set(o, "arena_bytes", num(arena_bytes));
	set(o, "object_bytes", num(object_bytes));
	set(o, "pools", num(pools));
	set(o, "pool_bytes", num(pools * pool_size));
	return o;
}

static json_t *pools_json(const struct mt_pools *p, const char *absent)
{
	json_t *o = json_object(), *ret = json_array(), *frag = json_object(),
	       *classes = json_array();
	set(o, "absent", absent ? cstr(absent) : json_null());
	set(o, "pool_size", num(p->pool_size));
	set(o, "pools_peak", num(p->pools_peak));
	set(o, "pools_at_exit", num(p->pools_in_use));
	for (size_t i = 0; i < p->nretained; i++) {
		const struct mt_arena_info *a = &p->retained[i];
		json_t *e = json_object();
		set(e, "address", num(a->address));
		set(e, "live_objects", num(a->live_objects));
		set(e, "live_bytes", num(a->live_bytes));
		set(e, "pools_in_use", num(a->pools_in_use));
		json_array_append_new(ret, e);
	}
	set(o, "arenas_retained", ret);
	set(frag, "at_peak", frag_json(p->at_peak.arena_bytes, p->at_peak.object_bytes,
				       p->at_peak.pools, p->pool_size));
	set(frag, "at_exit", frag_json(p->at_exit.arena_bytes, p->at_exit.object_bytes,
				       p->at_exit.pools, p->pool_size));
	set(o, "fragmentation", frag);
	for (int c = 0; c < MT_SIZE_CLASSES; c++) {
		const struct mt_size_class *sc = &p->classes[c];
		if (!sc->allocs && !sc->live_objects_peak)
			continue;
		json_t *e = json_object();
		set(e, "size", num(16u * (unsigned)(c + 1)));
		set(e, "live_objects_peak", num(sc->live_objects_peak));
		set(e, "pools_peak", num(sc->pools_peak));
		set(e, "live_objects_at_exit", num(sc->live_objects));
		set(e, "pools_at_exit", num(sc->pools));
		set(e, "allocs", num(sc->allocs));
		json_array_append_new(classes, e);
	}
	set(o, "size_classes", classes);
	return o;
}

static json_t *lists_json(const struct mt_report *rep)
{
	const struct mt_lists *l = &rep->lists;
	json_t *o = json_object(), *sites = json_array();
	set(o, "resizes", num(l->resizes));
	set(o, "buffers", num(l->buffers));
	set(o, "bytes_copied", num(l->bytes_copied));
	set(o, "slack_bytes_at_exit", num(l->slack_bytes_live));
	set(o, "slack_bytes_at_peak", num(l->slack_bytes_at_peak));
	for (size_t i = 0; i < l->nsites; i++) {
		const struct mt_list_site *ls = &l->sites[i];
		json_t *e = json_object(), *chain = json_array();
		site_where(e, rep, &rep->sites[ls->site]);
		set(e, "resizes", num(ls->resizes));
		set(e, "buffers", num(ls->buffers));
		set(e, "final_capacity", num(ls->final_capacity));
		set(e, "slack_slots", num(ls->slack_slots));
		set(e, "slack_bytes", num(ls->slack_slots * 8));
		set(e, "bytes_copied", num(ls->bytes_copied));
		set(e, "longest_chain_resizes", num(ls->longest));
		for (uint32_t k = 0; k < ls->chain_len; k++)
			json_array_append_new(chain, num(ls->chain[k]));
		set(e, "chain", chain);
		set(e, "chain_skipped", num(ls->chain_skipped));
		json_array_append_new(sites, e);
	}
	set(o, "sites", sites);
	return o;
}

/* ---- timeline, marks ------------------------------------------------------ */

/* The points as columns, an array per figure: a report of many points is
 * read (by JSON.parse, in the page) as a few arrays of numbers rather than
 * an object per point. */
static json_t *timeline_json(const struct mt_timeline *t)
{
	enum { TIME, HEAP, ARENAS = HEAP + 1 + MT_DOM_COUNT, POOLS, NCOL };
	json_t *o = json_object(), *pts = json_object(), *col[NCOL];
	for (int k = 0; k < NCOL; k++)
		col[k] = json_array();
	for (size_t i = 0; i < t->npoints; i++) {
		const struct mt_tpoint *p = &t->points[i];
		json_array_append_new(col[TIME], num(p->time_us));
		json_array_append_new(col[HEAP], num(p->heap));
		for (int d = 0; d < MT_DOM_COUNT; d++)
			json_array_append_new(col[HEAP + 1 + d], num(p->dom[d]));
		json_array_append_new(col[ARENAS], num(p->arenas));
		json_array_append_new(col[POOLS], num(p->pools));
	}
	set(pts, "time_us", col[TIME]);
	set(pts, "heap", col[HEAP]);
	for (int d = 0; d < MT_DOM_COUNT; d++)
		set(pts, mt_domain_name(d), col[HEAP + 1 + d]);
	set(pts, "arenas", col[ARENAS]);
	set(pts, "pools", col[POOLS]);
	set(o, "interval_us", num(t->interval_us));
	set(o, "points", pts);
	return o;
}

static json_t *mark_json(const struct mt_report *rep, const struct mt_mark *m)
{
	const struct mt_counters *a = &m->start, *b = &m->end;
	json_t *o = json_object(), *doms = json_object(), *classes = json_array();
	set(o, "label", cstr(mt_mark_label(rep, m)));
	set(o, "time_us", num(a->time_us));
	set(o, "end_us", num(b->time_us));
	set(o, "marks", num(m->count));
	set(o, "allocs", delta(b->allocs, a->allocs));
	set(o, "frees", delta(b->frees, a->frees));
	set(o, "net_bytes", delta(b->heap, a->heap));
	set(o, "heap_at_start", num(a->heap));
	set(o, "heap_at_end", num(b->heap));
	set(o, "heap_peak", num(m->heap_peak));
	set(o, "arenas_delta", delta(b->arenas, a->arenas));
	set(o, "pools_delta", delta(b->pools, a->pools));
	set(o, "list_resizes", delta(b->list_resizes, a->list_resizes));
	for (int d = 0; d < MT_DOM_COUNT; d++) {
		json_t *e = json_object();
		set(e, "allocs", delta(b->dom_allocs[d], a->dom_allocs[d]));
		set(e, "frees", delta(b->dom_frees[d], a->dom_frees[d]));
		set(e, "reallocs", delta(b->dom_reallocs[d], a->dom_reallocs[d]));
		set(e, "bytes_allocated", delta(b->dom_bytes[d], a->dom_bytes[d]));
		set(e, "bytes_copied", delta(b->dom_copied[d], a->dom_copied[d]));
		set(e, "net_bytes", delta(b->dom_live[d], a->dom_live[d]));
		set(doms, mt_domain_name(d), e);
	}
	set(o, "by_domain", doms);
	for (int c = 0; c < MT_SIZE_CLASSES; c++) {
		uint64_t al = b->class_allocs[c] - a->class_allocs[c];
		uint64_t fr = b->class_frees[c] - a->class_frees[c];
		if (!al && !fr)
			continue;
		json_t *e = json_object();
		set(e, "size", num(16u * (unsigned)(c + 1)));
		set(e, "allocs", num(al));
		set(e, "frees", num(fr));
		json_array_append_new(classes, e);
	}
	set(o, "size_classes", classes);
	return o;
}

static json_t *marks_json(const struct mt_report *rep)
{
	json_t *a = json_array();
	for (size_t i = 0; i < rep->nmarks; i++)
		json_array_append_new(a, mark_json(rep, &rep->marks[i]));
	return a;
}

/* ---- the view, threads, the main script ------------------------------------ */

static json_t *bound_json(const struct mt_bound *b)
{
	if (!b->set)
		return json_null();
	json_t *o = json_object();
	if (b->mark)
		set(o, "mark", cstr(b->mark));
	else
		set(o, "time_us", num(b->us));
	return o;
}

static json_t *view_json(const struct mt_report *rep)
{
	const struct mt_view *v = &rep->view;
	json_t *o = json_object(), *doms = json_array();
	set(o, "sort", json_string(mt_sort_name(v->sort)));
	set(o, "by", json_string(mt_group_name(v->by)));
	set(o, "top", v->top ? num(v->top) : json_null());
	set(o, "threshold", num(v->threshold));
	for (int d = 0; d < MT_DOM_COUNT; d++)
		if (!v->domains || (v->domains & (1u << d)))
			json_array_append_new(doms, json_string(mt_domain_name(d)));
	set(o, "domains", doms);
	set(o, "thread", v->thread_set ? num(v->thread) : json_null());
	set(o, "from", bound_json(&v->from));
	set(o, "to", bound_json(&v->to));
	set(o, "inverted", json_boolean(v->inverted));
	set(o, "flame_value", json_string(mt_sort_name(v->flame_value)));
	set(o, "folded_lines", json_boolean(v->folded_lines));
	return o;
}

static json_t *window_json(const struct mt_report *rep)
{
	if (!rep->view.from.set && !rep->view.to.set)
		return json_null();
	json_t *o = json_object();
	set(o, "opened", json_boolean(rep->window.opened));
	set(o, "from_us", rep->window.opened ? num(rep->window.from_us) : json_null());
	set(o, "to_us", rep->window.opened ? num(rep->window.to_us) : json_null());
	return o;
}

static json_t *threads_json(const struct mt_report *rep)
{
	json_t *a = json_array();
	for (size_t i = 0; i < rep->nthreads; i++) {
		json_t *o = json_object();
		set(o, "tid", num(rep->threads[i].tid));
		set(o, "allocs", num(rep->threads[i].allocs));
		set(o, "bytes", num(rep->threads[i].bytes));
		json_array_append_new(a, o);
	}
	return a;
}

static json_t *script_lines_json(const struct mt_report *rep)
{
	json_t *a = json_array();
	for (size_t i = 0; i < rep->nlines; i++) {
		const struct mt_script_line *l = &rep->lines[i];
		const char *src = mt_line_source(rep, l);
		json_t *o = json_object();
		set(o, "file", cstr(mt_report_string(rep, l->file)));
		set(o, "line", num(l->line));
		set(o, "source", src ? cstr(src) : json_null());
		set(o, "allocs", num(l->allocs));
		set(o, "frees", num(l->frees));
		set(o, "bytes_allocated", num(l->bytes_allocated));
		set(o, "bytes_freed", num(l->bytes_freed));
		set(o, "net_bytes", delta(l->bytes_allocated, l->bytes_freed));
		set(o, "peak_bytes", num(l->peak_bytes));
		set(o, "arenas_allocated", num(l->arenas_allocated));
		set(o, "arenas_freed", num(l->arenas_freed));
		set(o, "pools_allocated", num(l->pools_allocated));
		set(o, "pools_freed", num(l->pools_freed));
		set(o, "list_resizes", num(l->list_resizes));
		json_t *doms = json_object();
		for (int d = 0; d < MT_DOM_COUNT; d++) {
			if (!l->dom_allocs[d])
				continue;
			json_t *e = json_object();
			set(e, "allocs", num(l->dom_allocs[d]));
			set(e, "bytes", num(l->dom_bytes[d]));
			set(doms, mt_domain_name(d), e);
		}
		set(o, "by_domain", doms);
		json_array_append_new(a, o);
	}
	return a;
}

static json_t *script_sources_json(const struct mt_report *rep)
{
	json_t *a = json_array();
	for (size_t i = 0; i < rep->nsources; i++) {
		const struct mt_source *src = &rep->sources[i];
		json_t *o = json_object(), *lines = src->lines ? json_array() : json_null();
		set(o, "file", cstr(mt_report_string(rep, src->file)));
		for (size_t k = 0; src->lines && k < src->nlines; k++)
			json_array_append_new(lines, cstr(src->lines[k]));
		set(o, "lines", lines);
		json_array_append_new(a, o);
	}
	return a;
}

/* ---- what the OS sees, the mmap domain ----------------------------------------- */

static json_t *sample_field(const struct mt_mem_point *p, int field)
{
	return p->have >> field & 1 ? num(p->v[field]) : json_null();
}

static json_t *sample_sum(const struct mt_mem_point *p, int a, int b)
{
	return (p->have >> a & 1) && (p->have >> b & 1) ? num(p->v[a] + p->v[b]) : json_null();
}

/* One sample and the trace's figures at it (docs/report-schema.md). */
static json_t *mem_point_json(const struct mt_report *rep, const struct mt_mem_point *p)
{
	json_t *o = json_object();
	uint64_t rss, start = rep->memory.start_brk;
	bool brk = start && (p->have >> MT_S_BRK & 1) && p->v[MT_S_BRK] >= start;
	set(o, "time_us", num(p->time_us));
	set(o, "rss", mt_mem_rss(p, &rss) ? num(rss) : json_null());
	set(o, "rss_anon", sample_field(p, MT_S_RSS_ANON));
	set(o, "rss_file", sample_field(p, MT_S_RSS_FILE));
	set(o, "rss_shmem", sample_field(p, MT_S_RSS_SHMEM));
	set(o, "requested", num(mt_mem_requested(p)));
	set(o, "malloc", num(p->malloc_live));
	set(o, "pymalloc_objects", num(p->objects));
	set(o, "unpooled_objects", num(p->unpooled));
	set(o, "arenas", num(p->arenas));
	set(o, "pools", num(p->pools));
	set(o, "empty_arenas", num(p->empty_arenas));
	set(o, "arenas_touched", num(p->touched));
	set(o, "frame_stacks", num(p->frame_stacks));
	set(o, "mmap", num(p->mmap_anon + p->mmap_file));
	set(o, "mmap_anonymous", num(p->mmap_anon));
	set(o, "mmap_file", num(p->mmap_file));
	set(o, "glibc_held", sample_sum(p, MT_S_GLIBC_ARENA, MT_S_GLIBC_MMAP));
	set(o, "glibc_heaps", sample_field(p, MT_S_GLIBC_ARENA));
	set(o, "glibc_mmapped", sample_field(p, MT_S_GLIBC_MMAP));
	set(o, "glibc_in_use", sample_field(p, MT_S_GLIBC_USED));
	set(o, "glibc_free", sample_field(p, MT_S_GLIBC_FREE));
	set(o, "glibc_top", sample_field(p, MT_S_GLIBC_TOP));
	set(o, "brk", sample_field(p, MT_S_BRK));
	set(o, "brk_heap", brk ? num(p->v[MT_S_BRK] - start) : json_null());
	set(o, "brk_resident", sample_field(p, MT_S_BRK_RESIDENT));
	set(o, "memtrace_mapped", sample_field(p, MT_S_OWN_MAPPED));
	set(o, "memtrace_resident", sample_field(p, MT_S_OWN_RESIDENT));
	return o;
}

static json_t *top_block_json(const struct mt_report *rep, const struct mt_top_block *t)
{
	if (!t->known)
		return json_null();
	json_t *o = json_object(), *b = json_null();
	set(o, "top_chunk", num(t->top));
	set(o, "free_below_top", num(t->below_free));
	if (t->found) {
		b = json_object();
		set(b, "address", num(t->address));
		set(b, "size", num(t->size));
		if (t->site < rep->nsites) {
			site_where(b, rep, &rep->sites[t->site]);
			set(b, "domain", json_string(mt_domain_name(rep->sites[t->site].dom)));
		}
		set(o, "gap", num(t->gap));
	}
	set(o, "held_by", b);
	return o;
}

static json_t *breakdown_json(const struct mt_report *rep, const struct mt_mem_point *p,
			      const struct mt_top_block *top)
{
	struct mt_breakdown b;
	json_t *o = json_object(), *parts = json_array();
	mt_memory_breakdown(rep, p, &b);
	set(o, "time_us", num(p->time_us));
	set(o, "rss", b.have_rss ? num(b.rss) : json_null());
	set(o, "requested", num(b.requested));
	set(o, "difference", b.have_rss ? snum((int64_t)b.rss - (int64_t)b.requested) : json_null());
	for (int k = 0; k < MT_PART_COUNT; k++) {
		json_t *e = json_object();
		set(e, "key", json_string(mt_part_key(k)));
		set(e, "bytes", b.measured[k] ? snum(b.bytes[k]) : json_null());
		set(e, "what", json_string(mt_part_text(k)));
		json_array_append_new(parts, e);
	}
	set(o, "parts", parts);
	set(o, "heap_top", top ? top_block_json(rep, top) : json_null());
	set(o, "sample", mem_point_json(rep, p));
	return o;
}

static json_t *memory_json(const struct mt_report *rep)
{
	const struct mt_memory *m = &rep->memory;
	static const char *const kinds[] = { NULL, "glibc", "other" };
	json_t *o = json_object();
	set(o, "sampled", json_boolean(m->npoints > 0));
	set(o, "interval_ms", m->have_rss_ms ? num(m->rss_ms) : json_null());
	set(o, "samples", num(m->samples));
	set(o, "sampling_us", num(m->sample_us));
	set(o, "malloc", kinds[m->malloc_kind] ? json_string(kinds[m->malloc_kind]) : json_null());
	set(o, "start_brk", m->start_brk ? num(m->start_brk) : json_null());
	set(o, "peak", m->have_peak ? breakdown_json(rep, &m->peak, &m->peak_top) : json_null());
	set(o, "exit", m->have_exit ? breakdown_json(rep, &m->exit, &m->exit_top) : json_null());
	return o;
}

static json_t *samples_json(const struct mt_report *rep)
{
	json_t *a = json_array();
	for (size_t i = 0; i < rep->memory.npoints; i++)
		json_array_append_new(a, mem_point_json(rep, &rep->memory.points[i]));
	return a;
}

/* Each step's "memory": the breakdown at its mark, null without a sample. */
static void marks_memory(const struct mt_report *rep, json_t *marks)
{
	for (size_t i = 0; i < rep->nmarks && i < json_array_size(marks); i++) {
		uint32_t k = rep->marks[i].mem;
		json_t *v = k && k <= rep->memory.nat_marks
				    ? breakdown_json(rep, &rep->memory.at_marks[k - 1],
						     &rep->memory.marks_top[k - 1])
				    : json_null();
		set(json_array_get(marks, i), "memory", v);
	}
}

static json_t *mappings_json(const struct mt_report *rep)
{
	const struct mt_mappings *mp = &rep->mappings;
	json_t *o = json_object(), *a = json_array();
	set(o, "anonymous_bytes_at_exit", num(mp->anon_bytes));
	set(o, "file_bytes_at_exit", num(mp->file_bytes));
	for (size_t i = 0; i < mp->nlargest; i++) {
		const struct mt_mapping_info *mi = &mp->largest[i];
		json_t *e = json_object();
		set(e, "address", num(mi->address));
		set(e, "bytes", num(mi->bytes));
		set(e, "anonymous", json_boolean(mi->flags & 0x20)); /* MAP_ANONYMOUS */
		set(e, "prot", num(mi->prot));
		set(e, "flags", num(mi->flags));
		set(e, "location", mi->frame && mi->frame < rep->nframes ? frame_json(rep, mi->frame)
									   : json_null());
		json_array_append_new(a, e);
	}
	set(o, "largest_at_exit", a);
	return o;
}

/* ---- the report ----------------------------------------------------------- */

json_t *mt_report_to_json(const struct mt_report *rep)
{
	json_t *root = json_object(), *doms = json_object();
	if (!root || !doms) {
		json_decref(root);
		json_decref(doms);
		return NULL;
	}
	for (int d = 0; d < MT_DOM_COUNT; d++)
		set(doms, mt_domain_name(d), domain_json(&rep->dom[d]));
	set(doms, "mmap", domain_json(&rep->mappings.stats));
	set(root, "format", json_string("memtrace-report"));
	set(root, "schema_version", json_integer(MT_REPORT_SCHEMA_VERSION));
	if (rep->intro)
		set(root, "intro", json_string(rep->intro)); /* null unless UTF-8 */
	set(root, "process", mt_process_to_json(&rep->process, mt_object_allocator(rep)));
	set(root, "view", view_json(rep));
	set(root, "window", window_json(rep));
	set(root, "trace", trace_json(rep));
	set(root, "events", events_json(rep));
	set(root, "domains", doms);
	set(root, "summary", summary_json(rep));
	set(root, "arenas", arenas_json(&rep->pools, mt_no_pymalloc_reason(rep)));
	set(root, "pools", pools_json(&rep->pools, mt_no_pymalloc_reason(rep)));
	set(root, "lists", lists_json(rep));
	size_t top = rep->view.top, nsites = 0, nleaks = 0, ntemp = 0;
	json_t *counts = json_object();
	set(root, "sites", sites_json(rep, rep->view.sort, true, top ? top : SIZE_MAX, false,
				      &nsites));
	set(root, "leaks", sites_json(rep, MT_SORT_LEAKED, false, top ? top : MT_JSON_SITES, false,
				      &nleaks));
	set(root, "temporary_sites", sites_json(rep, MT_SORT_TEMPORARY, false,
						top ? top : MT_JSON_SITES, false, &ntemp));
	set(counts, "sites", num(nsites));
	set(counts, "leaks", num(nleaks));
	set(counts, "temporary_sites", num(ntemp));
	set(root, "site_counts", counts);
	set(root, "timeline", timeline_json(&rep->timeline));
	set(json_object_get(root, "timeline"), "samples", samples_json(rep));
	set(root, "marks", marks_json(rep));
	marks_memory(rep, json_object_get(root, "marks"));
	set(root, "memory", memory_json(rep));
	set(root, "mappings", mappings_json(rep));
	set(root, "flame", mt_flame_json(rep));
	set(root, "threads", threads_json(rep));
	set(root, "script_lines", script_lines_json(rep));
	set(root, "script_sources", script_sources_json(rep));
	if (rep->grid.sites)
		set(root, "profile", mt_profile_json(rep));
	return root;
}

static json_t *combined_json(const struct mt_report *const *reps, const char *const *names,
			     size_t n)
{
	json_t *o = json_object(), *procs = json_array();
	uint64_t events = 0, peak_sum = 0, live = 0, lost = 0;
	bool lost_known = true;
	for (size_t i = 0; i < n; i++) {
		const struct mt_report *r = reps[i];
		json_t *p = json_object();
		set(p, "trace", names && names[i] ? cstr(names[i]) : json_null());
		set(p, "pid", num_if(r->process.have, MT_HAVE_PID, r->process.pid));
		set(p, "ppid", num_if(r->process.have, MT_HAVE_PPID, r->process.ppid));
		set(p, "exe", bytes(&r->process.exe));
		set(p, "events", num(r->events.total));
		set(p, "duration_us", num(r->trace.duration_us));
		set(p, "heap_peak", num(r->heap.peak));
		set(p, "live_at_exit", num(r->heap.live));
		set(p, "complete", json_boolean(r->trace.complete));
		json_array_append_new(procs, p);
		events += r->events.total;
		lost += r->events.lost;
		lost_known &= r->trace.complete;
		peak_sum += r->heap.peak;
		live += r->heap.live;
	}
	set(o, "traces", num(n));
	set(o, "events_total", num(events));
	set(o, "events_lost", lost_known ? num(lost) : json_null());
	set(o, "heap_peak_sum", num(peak_sum));
	set(o, "live_at_exit_sum", num(live));
	set(o, "processes", procs);
	return o;
}

json_t *mt_report_set_to_json(const struct mt_report *const *reps, const char *const *names,
			      size_t n)
{
	json_t *root = json_object(), *a = json_array();
	for (size_t i = 0; i < n; i++) {
		json_t *r = mt_report_to_json(reps[i]);
		if (r && names && names[i])
			set(r, "trace_file", cstr(names[i]));
		json_array_append_new(a, r ? r : json_null());
	}
	set(root, "format", json_string("memtrace-report-set"));
	set(root, "schema_version", json_integer(MT_REPORT_SCHEMA_VERSION));
	set(root, "reports", a);
	set(root, "combined", combined_json(reps, names, n));
	return root;
}

/* json_dumpf writes each token with its own fwrite; a report has millions
 * of tokens (every site), so they go through a buffer instead. */
struct sink {
	FILE *out;
	size_t n;
	char buf[1 << 16];
};

static int sink_flush(struct sink *s)
{
	size_t n = s->n;
	s->n = 0;
	return n && fwrite(s->buf, 1, n, s->out) != n ? -1 : 0;
}

static int sink_put(const char *p, size_t n, void *arg)
{
	struct sink *s = arg;
	if (n > sizeof s->buf - s->n && sink_flush(s))
		return -1;
	if (n > sizeof s->buf)
		return fwrite(p, 1, n, s->out) == n ? 0 : -1;
	memcpy(s->buf + s->n, p, n);
	s->n += n;
	return 0;
}

int mt_json_write(const json_t *root, FILE *out)
{
	struct sink *s = malloc(sizeof *s);
	if (!s)
		return -1;
	s->out = out;
	s->n = 0;
	/* flame trees nest deep: no indentation */
	int r = json_dump_callback(root, sink_put, s, JSON_COMPACT) | sink_put("\n", 1, s) |
		sink_flush(s);
	free(s);
	return r ? -1 : 0;
}

int mt_json_dump(json_t *root, FILE *out)
{
	if (!root)
		return -1;
	int r = mt_json_write(root, out);
	json_decref(root);
	return r;
}

int mt_output_json(const struct mt_report *rep, FILE *out)
{
	return mt_json_dump(mt_report_to_json(rep), out);
}

int mt_output_json_set(const struct mt_report *const *reps, const char *const *names,
		       size_t n, FILE *out)
{
	return mt_json_dump(mt_report_set_to_json(reps, names, n), out);
}
