/*
 * output_text.c - the report for people: the summary first (heap peak,
 * when, and the sites that held it; live at exit and leaks; temporaries),
 * then the process, the allocator domains side by side, CPython's pools and
 * arenas, list buffers, the top sites and the marked steps.  Numbers have
 * thousands separators and columns are aligned.  Scripts should read the
 * JSON instead; this layout may change.
 */
#define _GNU_SOURCE /* asprintf */
#include "output.h"
#include "text_table.h"

#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define LABEL_WIDTH 20

static void put_arg(FILE *out, const uint8_t *p, size_t n)
{
	bool quote = n == 0 || memchr(p, ' ', n) || memchr(p, '\'', n);
	if (quote)
		fputc('\'', out);
	put_bytes(out, p, n);
	if (quote)
		fputc('\'', out);
}

static void label(FILE *out, const char *name)
{
	fprintf(out, "  %-*s", LABEL_WIDTH - 2, name);
}

static void line_num(FILE *out, const char *name, uint64_t v)
{
	char buf[27];
	label(out, name);
	fprintf(out, "%s\n", grouped(v, buf));
}

/* An optional header figure; ids are printed without separators. */
static void line_opt(FILE *out, const char *name, bool have, uint64_t v, bool is_id)
{
	char buf[27];
	label(out, name);
	if (!have)
		fputs("-\n", out);
	else if (is_id)
		fprintf(out, "%llu\n", (unsigned long long)v);
	else
		fprintf(out, "%s\n", grouped(v, buf));
}

static void line_bytes(FILE *out, const char *name, const struct mt_bytes *b)
{
	label(out, name);
	if (b->p)
		put_bytes(out, b->p, b->n);
	else
		fputc('-', out);
	fputc('\n', out);
}

static void line_argv(FILE *out, const struct mt_bytes *b)
{
	label(out, "argv");
	if (!b->p)
		fputc('-', out);
	for (size_t i = 0; b->p && i < b->n;) {
		const uint8_t *nul = memchr(b->p + i, 0, b->n - i);
		size_t len = nul ? (size_t)(nul - (b->p + i)) : b->n - i;
		if (i)
			fputc(' ', out);
		put_arg(out, b->p + i, len);
		i += len + 1;
	}
	fputc('\n', out);
}

static void line_start(FILE *out, const struct mt_process *p)
{
	time_t secs = (time_t)(p->start_ns / 1000000000u);
	struct tm tm;
	char buf[64];
	if (!(p->have & MT_HAVE_START) || !gmtime_r(&secs, &tm) ||
	    !strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S", &tm)) {
		line_opt(out, "started (unix ns)", p->have & MT_HAVE_START, p->start_ns, true);
		return;
	}
	label(out, "started");
	fprintf(out, "%s.%03u UTC\n", buf, (unsigned)(p->start_ns % 1000000000u / 1000000u));
}

static void process_section(FILE *out, const struct mt_process *p)
{
	fputs("process\n", out);
	line_opt(out, "pid", p->have & MT_HAVE_PID, p->pid, true);
	line_opt(out, "ppid", p->have & MT_HAVE_PPID, p->ppid, true);
	line_bytes(out, "exe", &p->exe);
	line_argv(out, &p->argv);
	line_start(out, p);
	line_opt(out, "page size", p->have & MT_HAVE_PAGE_SIZE, p->page_size, false);
	line_bytes(out, "memtrace version", &p->version);
}

static void trace_section(FILE *out, const struct mt_report *rep)
{
	char buf[27];
	const char *reason = mt_end_reason_name(rep->trace.end_reason);
	fputs("\ntrace\n", out);
	label(out, "complete");
	if (rep->trace.complete)
		fprintf(out, "yes, ended by %s\n", reason ? reason : "an unrecorded reason");
	else
		fputs("no (no final footer: the process did not finish)\n", out);
	if (rep->trace.exit_status >= 0)
		line_num(out, "exit status", (uint64_t)rep->trace.exit_status);
	line_num(out, "event blocks", rep->trace.blocks);
	label(out, "duration");
	fprintf(out, "%s us (%.3f s)\n", grouped(rep->trace.duration_us, buf),
		(double)rep->trace.duration_us / 1e6);
	line_num(out, "threads", rep->trace.threads);
}

static void events_section(FILE *out, const struct mt_report *rep)
{
	fputs("\nevents\n", out);
	line_num(out, "allocator calls", rep->events.total);
	if (rep->trace.complete) {
		line_num(out, "lost", rep->events.lost);
	} else {
		label(out, "lost");
		fputs("unknown (no footer)\n", out);
	}
	line_num(out, "producer waits", rep->events.producer_waits);
}

static const struct {
	const char *name;
	size_t off;
} rows[] = {
	{ "allocs", offsetof(struct mt_dom_stats, allocs) },
	{ "reallocs", offsetof(struct mt_dom_stats, reallocs) },
	{ "frees", offsetof(struct mt_dom_stats, frees) },
	{ "failed", offsetof(struct mt_dom_stats, failed) },
	{ "bytes allocated", offsetof(struct mt_dom_stats, bytes_allocated) },
	{ "peak bytes", offsetof(struct mt_dom_stats, peak_bytes) },
	{ "live bytes at exit", offsetof(struct mt_dom_stats, live_bytes) },
	{ "live blocks at exit", offsetof(struct mt_dom_stats, live_blocks) },
	{ "unmatched frees", offsetof(struct mt_dom_stats, unmatched_frees) },
	{ "inconsistent", offsetof(struct mt_dom_stats, inconsistent) },
	{ "freed below", offsetof(struct mt_dom_stats, freed_below) },
};
#define NROWS (sizeof rows / sizeof rows[0])

static uint64_t cell(const struct mt_dom_stats *s, size_t row)
{
	uint64_t v;
	memcpy(&v, (const char *)s + rows[row].off, sizeof v);
	return v;
}

static void domains_section(FILE *out, const struct mt_report *rep)
{
	char buf[27];
	int width[MT_DOM_COUNT];
	for (int d = 0; d < MT_DOM_COUNT; d++) {
		width[d] = (int)strlen(mt_domain_name(d));
		for (size_t r = 0; r < NROWS; r++) {
			int w = (int)strlen(grouped(cell(&rep->dom[d], r), buf));
			width[d] = w > width[d] ? w : width[d];
		}
	}
	fprintf(out, "\n%-*s", LABEL_WIDTH + 1, "domains");
	for (int d = 0; d < MT_DOM_COUNT; d++)
		fprintf(out, "  %*s", width[d], mt_domain_name(d));
	fputc('\n', out);
	for (size_t r = 0; r < NROWS; r++) {
		fprintf(out, "  %-*s", LABEL_WIDTH - 1, rows[r].name);
		for (int d = 0; d < MT_DOM_COUNT; d++)
			fprintf(out, "  %*s", width[d], grouped(cell(&rep->dom[d], r), buf));
		fputc('\n', out);
	}
}

/* ---- helpers for the analysis sections ----------------------------------- */

static void line_bytes_val(FILE *out, const char *name, uint64_t v, const char *tail)
{
	char a[27], b[32];
	label(out, name);
	fprintf(out, "%s bytes (%s)%s\n", grouped(v, a), human(v, b), tail ? tail : "");
}

/* "file:line (function)", or "<native>"; a row at the view's grouping:
 * "file (function)" or "file". */
static char *site_name(const struct mt_report *rep, const struct mt_site *s, bool with_dom,
		       bool row)
{
	const char *file, *function, *dom = with_dom ? mt_domain_name(s->dom) : "";
	const char *gap = with_dom ? "  " : "";
	uint64_t line;
	char *p = NULL;
	int n;
	if (row)
		mt_row_where(rep, s, &file, &function, &line);
	else
		file = mt_site_file(rep, s), function = mt_site_function(rep, s),
		line = mt_site_line(rep, s);
	if (!s->frame && !s->stack)
		n = asprintf(&p, "<native>%s%s", gap, dom);
	else if (row && rep->view.by == MT_GROUP_FILE)
		n = asprintf(&p, "%s%s%s", file, gap, dom);
	else if (row && rep->view.by == MT_GROUP_FUNCTION)
		n = asprintf(&p, "%s (%s)%s%s", file, function, gap, dom);
	else
		n = asprintf(&p, "%s:%llu (%s)%s%s", file, (unsigned long long)line, function, gap,
			     dom);
	return n < 0 ? NULL : p;
}

static void memory_summary(FILE *out, const struct mt_report *rep);

/* ---- summary -------------------------------------------------------------- */

#define TEXT_SITES 10

/* The columns of a table of sites sorted by each figure: the sorted one
 * first. */
enum fig { F_PEAK, F_ALLOCS, F_BYTES, F_LIVE, F_BLOCKS, F_TEMP, F_TEMP_BYTES };

static const struct {
	const char *head[4];
	enum fig col[4];
} site_cols[] = {
	[MT_SORT_PEAK] = { { "at peak", "allocs", "bytes", "live at exit" },
			   { F_PEAK, F_ALLOCS, F_BYTES, F_LIVE } },
	[MT_SORT_ALLOCS] = { { "allocs", "bytes", "at peak", "live at exit" },
			     { F_ALLOCS, F_BYTES, F_PEAK, F_LIVE } },
	[MT_SORT_BYTES] = { { "bytes", "allocs", "at peak", "live at exit" },
			    { F_BYTES, F_ALLOCS, F_PEAK, F_LIVE } },
	[MT_SORT_LEAKED] = { { "live bytes", "blocks", "allocs", "bytes" },
			     { F_LIVE, F_BLOCKS, F_ALLOCS, F_BYTES } },
	[MT_SORT_TEMPORARY] = { { "temporary", "temp bytes", "allocs", "bytes" },
				{ F_TEMP, F_TEMP_BYTES, F_ALLOCS, F_BYTES } },
};

static uint64_t fig(const struct mt_site *s, enum fig f)
{
	const uint64_t v[] = { s->peak_bytes, s->allocs,      s->bytes,     s->live_bytes,
			       s->live_blocks, s->temp_allocs, s->temp_bytes };
	return v[f];
}

/* The rows for sort (all: every site with any figure), at most max;
 * returns how many there were in all. */
static size_t sites_table(FILE *out, const struct mt_report *rep, enum mt_sort sort, bool all,
			  size_t max)
{
	const char *head[5];
	struct table t;
	struct mt_rows rows;
	if (mt_site_rows(rep, sort, all, max, &rows)) {
		fputs("    (out of memory)\n", out);
		return 0;
	}
	memcpy(head, site_cols[sort].head, sizeof site_cols[sort].head);
	head[4] = "site";
	table_init(&t, 5, head);
	for (size_t i = 0; i < rows.n; i++) {
		const struct mt_site *s = &rows.v[i];
		char *name = site_name(rep, s, true, true);
		size_t r = table_row(&t, name);
		free(name);
		for (int k = 0; k < 4; k++)
			table_num(&t, r, k, fig(s, site_cols[sort].col[k]));
	}
	size_t total = rows.total;
	mt_rows_free(&rows);
	if (t.nrows)
		table_print(out, &t);
	else
		fputs("    (none)\n", out);
	return total;
}

/* The view, when it is not the whole trace. */
static void view_lines(FILE *out, const struct mt_report *rep)
{
	const struct mt_view *v = &rep->view;
	char a[32], b[32];
	if (v->from.set || v->to.set) {
		label(out, "window");
		if (!rep->window.opened) {
			fputs("never opened\n", out);
		} else {
			seconds(a, sizeof a, rep->window.from_us);
			seconds(b, sizeof b, rep->window.to_us);
			fprintf(out, "%s to %s", a, b);
			if (v->from.mark)
				fprintf(out, ", from mark \"%s\"", v->from.mark);
			if (v->to.mark)
				fprintf(out, ", to mark \"%s\"", v->to.mark);
			fputs(" (every figure is the window's; leaks: blocks it made, live at its "
			      "end)\n", out);
		}
	}
	if (v->domains) {
		label(out, "domains");
		for (int d = 0, first = 1; d < MT_DOM_COUNT; d++)
			if (v->domains & (1u << d)) {
				fprintf(out, "%s%s", first ? "" : ", ", mt_domain_name(d));
				first = 0;
			}
		fputs(" (the heap is their blocks)\n", out);
	}
	if (v->thread_set) {
		label(out, "thread");
		fprintf(out, "%llu (the heap is the blocks it allocated)\n",
			(unsigned long long)v->thread);
	}
}

static void summary_section(FILE *out, const struct mt_report *rep)
{
	char a[27], b[32], tail[96], when[32];
	bool py = rep->process.have & MT_HAVE_PYTHON;
	fputs("summary\n", out);
	view_lines(out, rep);
	seconds(when, sizeof when, rep->heap.peak_time_us);
	snprintf(tail, sizeof tail, " at %s", when);
	line_bytes_val(out, "heap peak", rep->heap.peak, tail);
	label(out, "");
	const char *objects = py ? mt_object_allocator(rep) : "";
	fprintf(out, "heap = malloc%s\n",
		!py ? ""
		: !strcmp(objects, "mimalloc")
			? " + CPython's objects from mimalloc + arena-allocator blocks (frame stacks)"
			: " + CPython arenas (pymalloc arenas, frame stacks)");
	label(out, "live at exit");
	fprintf(out, "%s bytes (%s) in %s blocks\n", grouped(rep->heap.live, a),
		human(rep->heap.live, b), grouped(rep->heap.live_blocks, tail));
	label(out, "temporary");
	fprintf(out, "%s allocations, %s bytes (freed by the same thread before its next "
		"allocation)\n", grouped(rep->temp_allocs, a), grouped(rep->temp_bytes, tail));
	memory_summary(out, rep);
	fputs("\n  top sites at the heap peak (live bytes then)\n", out);
	sites_table(out, rep, MT_SORT_PEAK, false, TEXT_SITES);
	fputs("\n  leaks: sites with blocks live at exit\n", out);
	sites_table(out, rep, MT_SORT_LEAKED, false, TEXT_SITES);
	if (rep->temp_allocs) {
		fputs("\n  temporary allocations by site\n", out);
		sites_table(out, rep, MT_SORT_TEMPORARY, false, 5);
	}
	fputc('\n', out);
}

/* ---- pools ------------------------------------------------------------------ */

static void pools_section(FILE *out, const struct mt_report *rep)
{
	const struct mt_pools *p = &rep->pools;
	char a[27], b[27], c[27], d[27], h[32];
	const char *absent = mt_no_pymalloc_reason(rep);
	fputs("\npython pools and arenas\n", out);
	label(out, "python");
	fprintf(out, "%u.%u.%u%s, %llu frame(s) per location",
		(unsigned)(rep->process.py_version >> 24 & 0xff),
		(unsigned)(rep->process.py_version >> 16 & 0xff),
		(unsigned)(rep->process.py_version >> 8 & 0xff),
		rep->process.have & MT_HAVE_FREE_THREADED ? " free-threaded" : "",
		(unsigned long long)rep->process.py_depth);
	if (!(rep->process.have & MT_HAVE_FREE_THREADED))
		fprintf(out, ", %s-byte pools in %s-byte arenas", grouped(p->pool_size, a),
			grouped(p->arena_size, b));
	fputc('\n', out);
	label(out, "frame stacks");
	fprintf(out, "%s allocated, %s freed, %s bytes at most (other arena-allocator blocks)\n",
		grouped(p->other_allocated, a), grouped(p->other_freed, b),
		grouped(p->other_bytes_peak, c));
	if (absent) {
		label(out, "no arenas");
		fprintf(out, "%s\n", absent);
		return;
	}
	label(out, "arenas");
	fprintf(out, "%s allocated, %s freed, %s at peak, %s at exit\n",
		grouped(p->arenas_allocated, a), grouped(p->arenas_freed, b),
		grouped(p->arenas_peak, c), grouped(p->arenas_live, d));
	label(out, "pools in use");
	fprintf(out, "%s at peak, %s at exit\n", grouped(p->pools_peak, a),
		grouped(p->pools_in_use, b));
	label(out, "at the heap peak");
	fprintf(out, "arenas %s, pools %s, objects %s bytes (%s)\n",
		grouped(p->at_peak.arena_bytes, a), grouped(p->at_peak.pools * p->pool_size, b),
		grouped(p->at_peak.object_bytes, c), human(p->at_peak.object_bytes, h));
	label(out, "at exit");
	fprintf(out, "arenas %s, pools %s, objects %s bytes (%s)\n",
		grouped(p->at_exit.arena_bytes, a), grouped(p->at_exit.pools * p->pool_size, b),
		grouped(p->at_exit.object_bytes, c), human(p->at_exit.object_bytes, h));

	static const char *const head[] = { "size", "allocs", "objects peak", "pools peak",
					    "objects at exit", "pools at exit", "" };
	struct table t;
	table_init(&t, 7, head);
	for (int k = 0; k < MT_SIZE_CLASSES; k++) {
		const struct mt_size_class *sc = &p->classes[k];
		if (!sc->allocs && !sc->live_objects_peak)
			continue;
		size_t r = table_row(&t, "");
		table_num(&t, r, 0, 16u * (unsigned)(k + 1));
		table_num(&t, r, 1, sc->allocs);
		table_num(&t, r, 2, sc->live_objects_peak);
		table_num(&t, r, 3, sc->pools_peak);
		table_num(&t, r, 4, sc->live_objects);
		table_num(&t, r, 5, sc->pools);
	}
	if (t.nrows) {
		fputs("\n  size classes (objects in pools)\n", out);
		table_print(out, &t);
	} else {
		table_drop(&t);
	}
	if (p->nretained) {
		static const char *const rhead[] = { "live objects", "live bytes", "pools in use",
						     "arena" };
		table_init(&t, 4, rhead);
		size_t shown = p->nretained < TEXT_SITES ? p->nretained : TEXT_SITES;
		for (size_t i = 0; i < shown; i++) {
			const struct mt_arena_info *ai = &p->retained[i];
			char addr[32];
			snprintf(addr, sizeof addr, "0x%llx", (unsigned long long)ai->address);
			size_t r = table_row(&t, addr);
			table_num(&t, r, 0, ai->live_objects);
			table_num(&t, r, 1, ai->live_bytes);
			table_num(&t, r, 2, ai->pools_in_use);
		}
		fprintf(out, "\n  arenas mapped at exit, fewest live objects first (%s)\n",
			grouped(p->nretained, a));
		table_print(out, &t);
		if (shown < p->nretained)
			fprintf(out, "    ... and %zu more\n", p->nretained - shown);
	}
}

/* ---- lists ------------------------------------------------------------------- */

/* Lists that cost the most first: bytes copied, then resizes. */
static int cmp_lsite(const void *x, const void *y)
{
	const struct mt_list_site *a = x, *b = y;
	if (a->bytes_copied != b->bytes_copied)
		return a->bytes_copied < b->bytes_copied ? 1 : -1;
	if (a->resizes != b->resizes)
		return a->resizes < b->resizes ? 1 : -1;
	return a->site < b->site ? -1 : a->site > b->site;
}

static void lists_section(FILE *out, const struct mt_report *rep)
{
	const struct mt_lists *l = &rep->lists;
	char a[27], b[27], h[32];
	fputs("\nlists (item buffers)\n", out);
	label(out, "buffers");
	fprintf(out, "%s, %s resizes\n", grouped(l->buffers, a), grouped(l->resizes, b));
	line_bytes_val(out, "bytes copied", l->bytes_copied, " by reallocs that moved");
	label(out, "slack");
	fprintf(out, "%s bytes at the heap peak, %s bytes (%s) at exit\n",
		grouped(l->slack_bytes_at_peak, a), grouped(l->slack_bytes_live, b),
		human(l->slack_bytes_live, h));
	struct mt_list_site *sorted = malloc(l->nsites * sizeof *sorted);
	if (!sorted)
		return;
	memcpy(sorted, l->sites, l->nsites * sizeof *sorted);
	qsort(sorted, l->nsites, sizeof *sorted, cmp_lsite);
	static const char *const head[] = { "resizes", "buffers", "capacity", "slack",
					    "bytes copied", "site" };
	struct table t;
	table_init(&t, 6, head);
	size_t shown = l->nsites < TEXT_SITES ? l->nsites : TEXT_SITES;
	for (size_t i = 0; i < shown; i++) {
		const struct mt_list_site *ls = &sorted[i];
		char *name = site_name(rep, &rep->sites[ls->site], false, false);
		size_t r = table_row(&t, name);
		free(name);
		table_num(&t, r, 0, ls->resizes);
		table_num(&t, r, 1, ls->buffers);
		table_num(&t, r, 2, ls->final_capacity);
		table_num(&t, r, 3, ls->slack_slots);
		table_num(&t, r, 4, ls->bytes_copied);
	}
	fputs("\n  by site of the first resize; capacity and slack (slots) of the longest chain\n",
	      out);
	table_print(out, &t);
	if (shown) {
		const struct mt_list_site *ls = &sorted[0];
		char *name = site_name(rep, &rep->sites[ls->site], false, false);
		fprintf(out, "\n  longest chain at %s: %llu resizes, capacities\n    ",
			name ? name : "?", (unsigned long long)ls->longest);
		free(name);
		for (uint32_t k = 0; k < ls->chain_len; k++) {
			fprintf(out, "%s%s", k ? " " : "", grouped(ls->chain[k], a));
			if (k + 1 == MT_CHAIN_HEAD && ls->chain_skipped)
				fprintf(out, " ... (%s more) ...", grouped(ls->chain_skipped, b));
		}
		fprintf(out, "\n    final capacity %s, slack %s slots (%s bytes)\n",
			grouped(ls->final_capacity, a), grouped(ls->slack_slots, b),
			grouped(ls->slack_slots * 8, h));
	}
	free(sorted);
}

/* ---- marks -------------------------------------------------------------------- */

static void marks_section(FILE *out, const struct mt_report *rep)
{
	static const char *const head[] = { "start", "allocs", "frees", "heap change", "arenas",
					    "pools", "list resizes", "obj allocs", "step" };
	struct table t;
	char buf[32];
	table_init(&t, 9, head);
	for (size_t i = 0; i < rep->nmarks; i++) {
		const struct mt_mark *m = &rep->marks[i];
		const struct mt_counters *s = &m->start, *e = &m->end;
		size_t r = table_row(&t, mt_mark_label(rep, m));
		if (r == SIZE_MAX)
			break;
		seconds(buf, sizeof buf, s->time_us);
		table_str(&t, r, 0, buf);
		table_num(&t, r, 1, e->allocs - s->allocs);
		table_num(&t, r, 2, e->frees - s->frees);
		table_str(&t, r, 3, signed_grouped(e->heap, s->heap, buf));
		table_str(&t, r, 4, signed_grouped(e->arenas, s->arenas, buf));
		table_str(&t, r, 5, signed_grouped(e->pools, s->pools, buf));
		table_num(&t, r, 6, e->list_resizes - s->list_resizes);
		table_num(&t, r, 7, e->dom_allocs[MT_DOM_PYOBJ] - s->dom_allocs[MT_DOM_PYOBJ]);
	}
	fputs("\nsteps (marks)\n", out);
	table_print(out, &t);
	if (rep->marks_total > rep->nmarks)
		fprintf(out, "    (%llu marks; the last step covers the ones past the limit)\n",
			(unsigned long long)rep->marks_total);
}

/* ---- the view's own sections ---------------------------------------------------- */

static const char *const sort_heads[] = {
	[MT_SORT_PEAK] = "live bytes at the heap peak",
	[MT_SORT_ALLOCS] = "allocations (reallocs too)",
	[MT_SORT_BYTES] = "bytes allocated",
	[MT_SORT_LEAKED] = "bytes live at exit",
	[MT_SORT_TEMPORARY] = "temporary allocations",
};

static void top_sites_section(FILE *out, const struct mt_report *rep)
{
	size_t top = rep->view.top ? rep->view.top : 2 * TEXT_SITES;
	char a[27], b[27];
	fprintf(out, "\ntop sites by %s", sort_heads[rep->view.sort]);
	if (rep->view.by != MT_GROUP_LINE)
		fprintf(out, ", per %s", mt_group_name(rep->view.by));
	if (rep->view.threshold)
		fprintf(out, ", %s bytes or more", grouped(rep->view.threshold, a));
	fputc('\n', out);
	size_t total = sites_table(out, rep, rep->view.sort, true, top);
	if (total > top)
		fprintf(out, "    (%s of %s sites; --top N shows more)\n", grouped(top, a),
			grouped(total, b));
}

/* Bucket k's range: [0, 0], [1, 1], [2, 3], [4, 7], ... */
static void bucket_range(int k, uint64_t *lo, uint64_t *hi)
{
	*lo = k ? 1ull << (k - 1) : 0;
	*hi = k == 64 ? UINT64_MAX : k ? (*lo << 1) - 1 : 0;
}

static void histogram_section(FILE *out, const struct mt_report *rep)
{
	static const char *const head[] = { "from", "to", "allocs", "bytes", " " };
	uint64_t most = 0;
	struct table t;
	for (int k = 0; k < MT_HIST_BUCKETS; k++)
		most = rep->hist[k].allocs > most ? rep->hist[k].allocs : most;
	table_init(&t, 5, head);
	for (int k = 0; k < MT_HIST_BUCKETS; k++) {
		const struct mt_hist_bucket *b = &rep->hist[k];
		uint64_t lo, hi;
		char bar[41];
		if (!b->allocs)
			continue;
		bucket_range(k, &lo, &hi);
		size_t w = (size_t)((b->allocs * 40 + most - 1) / most);
		memset(bar, '#', w);
		bar[w] = 0;
		size_t r = table_row(&t, bar);
		table_num(&t, r, 0, lo);
		table_num(&t, r, 1, hi);
		table_num(&t, r, 2, b->allocs);
		table_num(&t, r, 3, b->bytes);
	}
	fputs("\nrequest sizes (each allocation and realloc once, at its topmost domain)\n", out);
	if (t.nrows)
		table_print(out, &t);
	else
		fputs("    (none)\n", out);
}

static void threads_section(FILE *out, const struct mt_report *rep)
{
	static const char *const head[] = { "tid", "allocs", "bytes", "" };
	struct table t;
	char buf[32];
	table_init(&t, 4, head);
	for (size_t i = 0; i < rep->nthreads; i++) {
		size_t r = table_row(&t, "");
		snprintf(buf, sizeof buf, "%llu", (unsigned long long)rep->threads[i].tid);
		table_str(&t, r, 0, buf);
		table_num(&t, r, 1, rep->threads[i].allocs);
		table_num(&t, r, 2, rep->threads[i].bytes);
	}
	fputs("\nthreads (allocations made; --thread TID reports one)\n", out);
	table_print(out, &t);
}

/* ---- the main script, line by line ---------------------------------------------- */

static void lines_section(FILE *out, const struct mt_report *rep)
{
	static const char *const head[] = { "line",   "allocs", "frees",  "net bytes",
					    "at peak", "arenas", "pools", "resizes", "source" };
	struct table t;
	char buf[32];
	for (size_t i = 0; i < rep->nlines;) {
		uint32_t file = rep->lines[i].file;
		table_init(&t, 9, head);
		for (; i < rep->nlines && rep->lines[i].file == file; i++) {
			const struct mt_script_line *l = &rep->lines[i];
			const char *src = mt_line_source(rep, l);
			while (src && (*src == ' ' || *src == '\t'))
				src++;
			size_t r = table_row(&t, src ? src : "?");
			table_num(&t, r, 0, l->line);
			table_num(&t, r, 1, l->allocs);
			table_num(&t, r, 2, l->frees);
			table_str(&t, r, 3, signed_grouped(l->bytes_allocated, l->bytes_freed, buf));
			table_num(&t, r, 4, l->peak_bytes);
			table_str(&t, r, 5, signed_grouped(l->arenas_allocated, l->arenas_freed, buf));
			table_str(&t, r, 6, signed_grouped(l->pools_allocated, l->pools_freed, buf));
			table_num(&t, r, 7, l->list_resizes);
		}
		fputs("\nmain script, line by line: ", out);
		put_bytes(out, (const uint8_t *)mt_report_string(rep, file),
			  strlen(mt_report_string(rep, file)));
		fputs("\n  what each line did, with what the functions it called did; frees count "
		      "at the line\n  that ran when they happened; net bytes: requested bytes "
		      "allocated less freed;\n  arenas and pools: gained less lost\n", out);
		table_print(out, &t);
	}
}

/* ---- what the OS sees, the mmap domain ---------------------------------------- */

/* One line of the summary for a sample: RSS and the requested heap. */
static void memory_line(FILE *out, const char *name, const struct mt_mem_point *p, bool when)
{
	char a[27], b[32], c[27], t[32];
	uint64_t rss;
	if (!mt_mem_rss(p, &rss))
		return;
	seconds(t, sizeof t, p->time_us);
	label(out, name);
	fprintf(out, "%s bytes (%s)%s%s; requested heap then %s bytes\n", grouped(rss, a),
		human(rss, b), when ? " at " : "", when ? t : "",
		grouped(mt_mem_requested(p), c));
}

static void memory_summary(FILE *out, const struct mt_report *rep)
{
	const struct mt_memory *m = &rep->memory;
	if (m->have_peak)
		memory_line(out, "RSS peak", &m->peak, true);
	if (m->have_exit)
		memory_line(out, rep->trace.complete ? "RSS at exit" : "RSS, last sample",
			    &m->exit, !rep->trace.complete);
	if (m->have_peak)
		fprintf(out, "  %-*s(why they differ: \"memory the OS sees\" below)\n",
			LABEL_WIDTH - 2, "");
}

/* A sample's figure for a table cell; "-" when it was not taken. */
static void cell_field(struct table *t, size_t row, int col, const struct mt_mem_point *p,
		       int field, int plus)
{
	if ((p->have >> field & 1) && (plus < 0 || (p->have >> plus & 1)))
		table_num(t, row, col, p->v[field] + (plus < 0 ? 0 : p->v[plus]));
	else
		table_str(t, row, col, "-");
}

static void sample_row(struct table *t, const char *when, const char *text,
		       const struct mt_mem_point *p)
{
	char buf[32];
	uint64_t rss;
	size_t r = table_row(t, text);
	table_str(t, r, 0, when);
	seconds(buf, sizeof buf, p->time_us);
	table_str(t, r, 1, buf);
	if (mt_mem_rss(p, &rss))
		table_num(t, r, 2, rss);
	else
		table_str(t, r, 2, "-");
	cell_field(t, r, 3, p, MT_S_RSS_ANON, -1);
	cell_field(t, r, 4, p, MT_S_RSS_FILE, MT_S_RSS_SHMEM);
	table_num(t, r, 5, mt_mem_requested(p));
	cell_field(t, r, 6, p, MT_S_GLIBC_ARENA, MT_S_GLIBC_MMAP);
	table_num(t, r, 7, p->arenas + p->frame_stacks);
	table_num(t, r, 8, p->mmap_anon + p->mmap_file);
	cell_field(t, r, 9, p, MT_S_OWN_RESIDENT, -1);
}

static const char *part_unmeasured(const struct mt_report *rep, int k)
{
	if (k >= MT_PART_GLIBC_TOP && k <= MT_PART_GLIBC_EXTRA)
		return rep->memory.malloc_kind == MT_MALLOC_OTHER
			       ? "not measured: the program's malloc is not glibc's"
			       : "not measured in this sample (mallinfo2 is taken at most 1% of "
				 "the time)";
	if (k == MT_PART_REST)
		return "not measured: a part above was not";
	return "not measured in this sample";
}

static void top_block_text(FILE *out, const struct mt_report *rep, const struct mt_top_block *tb)
{
	char a[27], b[27], c[27];
	if (!tb->known || !tb->found)
		return;
	const struct mt_site *s = tb->site < rep->nsites ? &rep->sites[tb->site] : NULL;
	char *name = s ? site_name(rep, s, true, false) : NULL;
	if (!tb->gap)
		fprintf(out, "    the heap top is held by a live block of %s bytes at 0x%llx (%s):\n"
			"    while it lives, the %s free bytes below it stay with glibc\n",
			grouped(tb->size, a), (unsigned long long)tb->address, name ? name : "?",
			grouped(tb->below_free, b));
	else
		fprintf(out, "    the heap top is held by a chunk the trace does not show live (in "
			"glibc's caches, or from before tracing),\n    up to %s bytes above the "
			"highest live block (%s bytes at 0x%llx, %s); %s free bytes below the top "
			"stay with glibc\n",
			grouped(tb->gap, a), grouped(tb->size, b), (unsigned long long)tb->address,
			name ? name : "?", grouped(tb->below_free, c));
	free(name);
}

static void breakdown_text(FILE *out, const struct mt_report *rep, const char *when,
			   const struct mt_mem_point *p, const struct mt_top_block *tb)
{
	struct mt_breakdown b;
	char t[32], v[28];
	bool py = rep->process.have & MT_HAVE_PYTHON;
	mt_memory_breakdown(rep, p, &b);
	if (!b.have_rss)
		return;
	seconds(t, sizeof t, p->time_us);
	fprintf(out, "\n  why RSS is higher than the requested heap, %s (%s)\n", when, t);
	fprintf(out, "    %-50s %15s\n", "RSS", grouped(b.rss, v));
	fprintf(out, "    %-50s %15s\n", "requested heap (malloc + CPython's objects)",
		grouped(b.requested, v));
	fprintf(out, "    %-50s %15s\n", "difference", signed_grouped(b.rss, b.requested, v));
	for (int k = 0; k < MT_PART_COUNT; k++) {
		bool pymalloc = k >= MT_PART_POOL_FREE && k <= MT_PART_FRAME_STACKS;
		if ((pymalloc || k == MT_PART_ARENA_UNTOUCHED) && !py)
			continue;
		if (b.measured[k] && !b.bytes[k])
			continue;
		if (b.measured[k])
			fprintf(out, "      %-48s %15s\n", mt_part_label(k),
				signed_grouped(b.bytes[k] > 0 ? (uint64_t)b.bytes[k] : 0,
					       b.bytes[k] < 0 ? (uint64_t)-b.bytes[k] : 0, v));
		else
			fprintf(out, "      %-48s %15s  %s\n", mt_part_label(k), "-",
				part_unmeasured(rep, k));
	}
	top_block_text(out, rep, tb);
}

static void memory_section(FILE *out, const struct mt_report *rep)
{
	static const char *const head[] = { "", "time", "RSS", "RssAnon", "file-backed",
					    "requested", "glibc held", "arenas", "mmap",
					    "memtrace", "mark" };
	const struct mt_memory *m = &rep->memory;
	char a[32];
	struct table t;
	if (!m->npoints) {
		if (m->have_rss_ms && !m->rss_ms)
			fputs("\nmemory the OS sees: not sampled (MEMTRACE_RSS_MS=0)\n", out);
		return;
	}
	seconds(a, sizeof a, m->sample_us);
	fprintf(out, "\nmemory the OS sees (sampled every %llu ms: %llu samples, %s spent "
		"on them; at each mark and at the end too)\n",
		(unsigned long long)m->rss_ms, (unsigned long long)m->samples, a);
	label(out, "malloc");
	fputs(m->malloc_kind == MT_MALLOC_GLIBC   ? "glibc's (mallinfo2: glibc held = its heaps "
						    "+ chunks it mapped)\n"
	      : m->malloc_kind == MT_MALLOC_OTHER ? "not glibc's: glibc's figures not measured\n"
						  : "unknown\n",
	      out);
	table_init(&t, 11, head);
	if (m->have_peak)
		sample_row(&t, "RSS peak", "", &m->peak);
	for (size_t i = 0; i < rep->nmarks; i++)
		if (rep->marks[i].mem)
			sample_row(&t, "mark", mt_mark_label(rep, &rep->marks[i]),
				   &m->at_marks[rep->marks[i].mem - 1]);
	if (m->have_exit)
		sample_row(&t, rep->trace.complete ? "exit" : "last", "", &m->exit);
	table_print(out, &t);
	if (m->have_peak)
		breakdown_text(out, rep, "at the RSS peak", &m->peak, &m->peak_top);
	if (m->have_exit)
		breakdown_text(out, rep, rep->trace.complete ? "at exit" : "at the last sample",
			       &m->exit, &m->exit_top);
}

static void mappings_section(FILE *out, const struct mt_report *rep)
{
	static const char *const head[] = { "bytes", "kind", "prot", "address", "mapped at" };
	const struct mt_mappings *mp = &rep->mappings;
	const struct mt_dom_stats *s = &mp->stats;
	char a[27], b[27], c[27];
	struct table t;
	if (!s->allocs && !s->frees && !s->failed)
		return;
	fputs("\nmappings (mmap domain: the program's own mmap, munmap, mremap)\n", out);
	label(out, "calls");
	fprintf(out, "%s mmap, %s munmap, %s mremap, %s failed\n", grouped(s->allocs, a),
		grouped(s->frees, b), grouped(s->reallocs, c), grouped(s->failed, a));
	line_bytes_val(out, "bytes mapped", s->bytes_allocated, " (whole pages, mremap too)");
	line_bytes_val(out, "peak", s->peak_bytes, NULL);
	label(out, "live at exit");
	fprintf(out, "%s bytes in %s mappings: %s anonymous, %s file-backed\n",
		grouped(s->live_bytes, a), grouped(s->live_blocks, b), grouped(mp->anon_bytes, c),
		grouped(mp->file_bytes, a));
	if (s->unmatched_frees || s->inconsistent)
		fprintf(out, "  %-*s%s munmaps of no mapping the trace saw, %s mmaps over one\n",
			LABEL_WIDTH - 2, "", grouped(s->unmatched_frees, a), grouped(s->inconsistent, b));
	if (!mp->nlargest)
		return;
	table_init(&t, 5, head);
	for (size_t i = 0; i < mp->nlargest; i++) {
		const struct mt_mapping_info *mi = &mp->largest[i];
		char *where = NULL;
		if (mi->frame && mi->frame < rep->nframes &&
		    asprintf(&where, "%s:%llu (%s)", mt_report_string(rep, rep->frames[mi->frame].file),
			     (unsigned long long)rep->frames[mi->frame].line,
			     mt_report_string(rep, rep->frames[mi->frame].function)) < 0)
			where = NULL;
		size_t r = table_row(&t, where ? where : "");
		free(where);
		table_num(&t, r, 0, mi->bytes);
		table_str(&t, r, 1, mi->flags & 0x20 ? "anonymous" : "file");
		snprintf(a, sizeof a, "%c%c%c", mi->prot & 1 ? 'r' : '-', mi->prot & 2 ? 'w' : '-',
			 mi->prot & 4 ? 'x' : '-');
		table_str(&t, r, 2, a);
		snprintf(a, sizeof a, "0x%llx", (unsigned long long)mi->address);
		table_str(&t, r, 3, a);
	}
	fputs("\n  largest mappings live at exit\n", out);
	table_print(out, &t);
}

int mt_output_text(const struct mt_report *rep, const char *trace_name, FILE *out)
{
	if (rep->intro)
		fprintf(out, "%s\n\n", rep->intro);
	if (trace_name)
		fprintf(out, "memtrace report: %s\n\n", trace_name);
	summary_section(out, rep);
	if (rep->nlines)
		lines_section(out, rep);
	process_section(out, &rep->process);
	trace_section(out, rep);
	events_section(out, rep);
	domains_section(out, rep);
	if (rep->nthreads > 1)
		threads_section(out, rep);
	histogram_section(out, rep);
	mappings_section(out, rep);
	memory_section(out, rep);
	if (rep->process.have & MT_HAVE_PYTHON)
		pools_section(out, rep);
	if (rep->lists.nsites)
		lists_section(out, rep);
	top_sites_section(out, rep);
	if (rep->nmarks)
		marks_section(out, rep);
	return ferror(out) ? -1 : 0;
}

int mt_output_text_set(const struct mt_report *const *reps, const char *const *names,
		       size_t n, FILE *out)
{
	static const char *const head[] = { "pid", "events", "heap peak", "live at exit",
					    "duration", "trace" };
	struct table t;
	uint64_t events = 0, lost = 0;
	char buf[32];
	for (size_t i = 0; i < n; i++) {
		if (i)
			fputs("\n\n", out);
		mt_output_text(reps[i], names ? names[i] : NULL, out);
	}
	table_init(&t, 6, head);
	for (size_t i = 0; i < n; i++) {
		const struct mt_report *r = reps[i];
		size_t row = table_row(&t, names && names[i] ? names[i] : "?");
		if (r->process.have & MT_HAVE_PID) {
			snprintf(buf, sizeof buf, "%llu", (unsigned long long)r->process.pid);
			table_str(&t, row, 0, buf);
		} else {
			table_str(&t, row, 0, "-");
		}
		table_num(&t, row, 1, r->events.total);
		table_num(&t, row, 2, r->heap.peak);
		table_num(&t, row, 3, r->heap.live);
		seconds(buf, sizeof buf, r->trace.duration_us);
		table_str(&t, row, 4, buf);
		events += r->events.total;
		lost += r->events.lost;
	}
	fprintf(out, "\n\ncombined: %zu traces\n", n);
	line_num(out, "allocator calls", events);
	line_num(out, "lost events", lost);
	fputs("\n  per process\n", out);
	table_print(out, &t);
	return ferror(out) ? -1 : 0;
}
