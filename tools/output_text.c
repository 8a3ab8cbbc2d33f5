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
#include "text.h"

#include <ctype.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define LABEL_WIDTH 20

/* v with thousands separators; buf must hold 27 bytes. */
const char *grouped(uint64_t v, char *buf)
{
	char digits[21];
	int n = snprintf(digits, sizeof digits, "%llu", (unsigned long long)v), o = 0;
	for (int i = 0; i < n; i++) {
		if (i && (n - i) % 3 == 0)
			buf[o++] = ',';
		buf[o++] = digits[i];
	}
	buf[o] = 0;
	return buf;
}

/* Header bytes come from the traced process: keep control characters off
 * the terminal. */
void put_bytes(FILE *out, const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (p[i] < 0x80 && !isprint(p[i]))
			fprintf(out, "\\x%02x", p[i]);
		else
			fputc(p[i], out);
	}
}

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

/* Bytes for people: "12.3 MiB"; buf must hold 32 bytes. */
static const char *human(uint64_t v, char *buf)
{
	static const char *const units[] = { "B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB" };
	double d = (double)v;
	int u = 0;
	while (d >= 1024 && u < 6) {
		d /= 1024;
		u++;
	}
	if (u == 0)
		snprintf(buf, 32, "%llu B", (unsigned long long)v);
	else
		snprintf(buf, 32, "%.1f %s", d, units[u]);
	return buf;
}

/* A signed difference with separators and its sign. */
static const char *signed_grouped(uint64_t end, uint64_t start, char *buf)
{
	char tmp[27];
	if (end >= start) {
		snprintf(buf, 28, "%s%s", end > start ? "+" : "", grouped(end - start, tmp));
	} else {
		snprintf(buf, 28, "-%s", grouped(start - end, tmp));
	}
	return buf;
}

static void line_bytes_val(FILE *out, const char *name, uint64_t v, const char *tail)
{
	char a[27], b[32];
	label(out, name);
	fprintf(out, "%s bytes (%s)%s\n", grouped(v, a), human(v, b), tail ? tail : "");
}

void table_init(struct table *t, int ncols, const char *const *head)
{
	memset(t, 0, sizeof *t);
	t->ncols = ncols;
	for (int i = 0; i < ncols; i++)
		t->head[i] = head[i];
}

/* Adds a row; the caller fills t->cells[row][0..ncols-2] and sets the text. */
size_t table_row(struct table *t, const char *text)
{
	if (t->nrows == t->cap) {
		size_t cap = t->cap ? t->cap * 2 : 16;
		void *c = realloc(t->cells, cap * sizeof *t->cells);
		if (!c)
			return SIZE_MAX;
		t->cells = c;
		void *x = realloc(t->text, cap * sizeof *t->text);
		if (!x)
			return SIZE_MAX;
		t->text = x;
		t->cap = cap;
	}
	memset(t->cells[t->nrows], 0, sizeof t->cells[0]);
	t->text[t->nrows] = strdup(text ? text : "");
	return t->nrows++;
}

void table_num(struct table *t, size_t row, int col, uint64_t v)
{
	char buf[27];
	if (row != SIZE_MAX)
		snprintf(t->cells[row][col], TCELL, "%s", grouped(v, buf));
}

void table_str(struct table *t, size_t row, int col, const char *s)
{
	if (row != SIZE_MAX)
		snprintf(t->cells[row][col], TCELL, "%s", s);
}

void table_print(FILE *out, struct table *t)
{
	int width[TCOLS];
	int last = t->ncols - 1;
	for (int c = 0; c < last; c++) {
		width[c] = (int)strlen(t->head[c]);
		for (size_t r = 0; r < t->nrows; r++) {
			int w = (int)strlen(t->cells[r][c]);
			width[c] = w > width[c] ? w : width[c];
		}
	}
	bool text = *t->head[last];
	fputs("   ", out);
	for (int c = 0; c < last; c++)
		fprintf(out, " %*s", width[c], t->head[c]);
	fprintf(out, "%s%s\n", text ? "  " : "", t->head[last]);
	for (size_t r = 0; r < t->nrows; r++) {
		fputs("   ", out);
		for (int c = 0; c < last; c++)
			fprintf(out, " %*s", width[c], t->cells[r][c]);
		if (text) {
			fputs("  ", out);
			put_bytes(out, (const uint8_t *)t->text[r], strlen(t->text[r]));
		}
		fputc('\n', out);
	}
	for (size_t r = 0; r < t->nrows; r++)
		free(t->text[r]);
	free(t->cells);
	free(t->text);
	memset(t, 0, sizeof *t);
}

/* "file:line (function)", or "<native>". */
static char *site_name(const struct mt_report *rep, const struct mt_site *s, bool with_dom)
{
	char *p = NULL;
	int n;
	if (!s->frame && !s->stack)
		n = asprintf(&p, "<native>%s%s", with_dom ? "  " : "",
			     with_dom ? mt_domain_name(s->dom) : "");
	else
		n = asprintf(&p, "%s:%llu (%s)%s%s", mt_site_file(rep, s),
			     (unsigned long long)mt_site_line(rep, s), mt_site_function(rep, s),
			     with_dom ? "  " : "", with_dom ? mt_domain_name(s->dom) : "");
	return n < 0 ? NULL : p;
}

/* A time since the start, in the unit that suits it. */
void seconds(char *buf, size_t n, uint64_t us)
{
	if (us < 1000)
		snprintf(buf, n, "%llu us", (unsigned long long)us);
	else if (us < 1000000)
		snprintf(buf, n, "%.3f ms", (double)us / 1e3);
	else
		snprintf(buf, n, "%.3f s", (double)us / 1e6);
}

static void memory_summary(FILE *out, const struct mt_report *rep);

/* ---- summary -------------------------------------------------------------- */

#define TEXT_SITES 10

static void sites_table(FILE *out, const struct mt_report *rep, enum mt_site_order order,
			size_t max)
{
	static const char *const head_peak[] = { "at peak", "allocs", "bytes", "live at exit",
						 "site" };
	static const char *const head_live[] = { "live bytes", "blocks", "allocs", "bytes",
						 "site" };
	static const char *const head_temp[] = { "temporary", "temp bytes", "allocs", "bytes",
						 "site" };
	struct table t;
	size_t n;
	uint32_t *idx = mt_sites_sorted(rep, order, max, &n);
	table_init(&t, 5, order == MT_BY_LIVE ? head_live
			  : order == MT_BY_TEMP ? head_temp
						: head_peak);
	for (size_t i = 0; i < n; i++) {
		const struct mt_site *s = &rep->sites[idx[i]];
		char *name = site_name(rep, s, true);
		size_t r = table_row(&t, name);
		free(name);
		if (order == MT_BY_LIVE) {
			table_num(&t, r, 0, s->live_bytes);
			table_num(&t, r, 1, s->live_blocks);
		} else if (order == MT_BY_TEMP) {
			table_num(&t, r, 0, s->temp_allocs);
			table_num(&t, r, 1, s->temp_bytes);
		} else {
			table_num(&t, r, 0, s->peak_bytes);
			table_num(&t, r, 3, s->live_bytes);
		}
		if (order != MT_BY_PEAK && order != MT_AT_PEAK) {
			table_num(&t, r, 2, s->allocs);
			table_num(&t, r, 3, s->bytes);
		} else {
			table_num(&t, r, 1, s->allocs);
			table_num(&t, r, 2, s->bytes);
		}
	}
	free(idx);
	if (t.nrows)
		table_print(out, &t);
	else
		fputs("    (none)\n", out);
}

static void summary_section(FILE *out, const struct mt_report *rep)
{
	char a[27], b[32], tail[96], when[32];
	bool py = rep->process.have & MT_HAVE_PYTHON;
	fputs("summary\n", out);
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
	sites_table(out, rep, MT_AT_PEAK, TEXT_SITES);
	fputs("\n  leaks: sites with blocks live at exit\n", out);
	sites_table(out, rep, MT_BY_LIVE, TEXT_SITES);
	if (rep->temp_allocs) {
		fputs("\n  temporary allocations by site\n", out);
		sites_table(out, rep, MT_BY_TEMP, 5);
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
		table_print(out, &t);
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
		char *name = site_name(rep, &rep->sites[ls->site], false);
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
		char *name = site_name(rep, &rep->sites[ls->site], false);
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
	char *name = s ? site_name(rep, s, true) : NULL;
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
	process_section(out, &rep->process);
	trace_section(out, rep);
	events_section(out, rep);
	domains_section(out, rep);
	mappings_section(out, rep);
	memory_section(out, rep);
	if (rep->process.have & MT_HAVE_PYTHON)
		pools_section(out, rep);
	if (rep->lists.nsites)
		lists_section(out, rep);
	fputs("\ntop sites: live bytes at the heap peak, allocations (reallocs too), bytes\n", out);
	sites_table(out, rep, MT_BY_PEAK, 2 * TEXT_SITES);
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
