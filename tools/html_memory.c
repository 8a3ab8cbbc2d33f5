/*
 * html_memory.c - the HTML report's "memory the OS sees": one chart of RSS,
 * the requested heap and what the allocators hold (glibc, pymalloc's
 * arenas, the mmap domain) over time with the marks, the figures at each
 * mark, and why RSS is higher than the requested heap at the RSS peak and
 * at exit.  Drawn, like the rest of the page, from the JSON report only
 * (timeline.samples, memory, marks[].memory).
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "html_page.h"
#include "json_get.h"

#define C_RSS "#9c755f"
#define C_REQUESTED "#3d5a80"
#define C_GLIBC "#f28e2b"
#define C_MMAP "#b07aa1"

/* The chart's series: key in timeline.samples, legend, colour. */
static const struct {
	const char *key, *name, *color;
} series[] = {
	{ "rss", "RSS", C_RSS },
	{ "requested", "requested heap", C_REQUESTED },
	{ "glibc_held", "glibc held", C_GLIBC },
	{ "arenas", "pymalloc arenas", C_ARENAS },
	{ "mmap", "mmap domain", C_MMAP },
};
#define NSERIES (sizeof series / sizeof *series)

struct columns {
	size_t n;
	double *t, *v[NSERIES];
};

static void columns_free(struct columns *c)
{
	free(c->t);
	for (size_t k = 0; k < NSERIES; k++)
		free(c->v[k]);
}

/* A figure a sample left out (null) holds the last one taken: glibc's are
 * taken less often when they are costly. */
static int columns_read(const json_t *samples, struct columns *c)
{
	memset(c, 0, sizeof *c);
	c->n = jg_len(samples);
	c->t = calloc(c->n + 1, sizeof *c->t);
	for (size_t k = 0; k < NSERIES; k++)
		c->v[k] = calloc(c->n + 1, sizeof *c->v[k]);
	for (size_t k = 0; k < NSERIES; k++)
		if (!c->v[k] || !c->t)
			return -1;
	double last_t = -1e18;
	for (size_t i = 0; i < c->n; i++) {
		const json_t *s = json_array_get(samples, i);
		last_t = c->t[i] = fmax(last_t, hp_num(s, "time_us"));
		for (size_t k = 0; k < NSERIES; k++)
			c->v[k][i] = jg_has_num(s, series[k].key) ? hp_num(s, series[k].key)
						: i ? c->v[k][i - 1] : 0;
	}
	return 0;
}

static void chart(struct page *p, const struct columns *c)
{
	struct svg_series s[NSERIES];
	size_t ns = 0;
	const json_t *peak = jg_obj(jg_obj(p->r, "memory"), "peak");
	for (size_t k = 0; k < NSERIES; k++) {
		bool any = false;
		for (size_t i = 0; i < c->n && !any; i++)
			any = c->v[k][i] != 0;
		if (any || k < 2)
			s[ns++] = (struct svg_series){ series[k].name, series[k].key, series[k].color,
						       c->v[k], k == 0 };
	}
	hp_time_chart(p, &(struct hp_time_chart){ "memory the OS sees over time", "memory", c->t,
						 c->n, s, ns, peak, "rss" });
}

/* A figure, or "–" when the sample did not measure it. */
static void td_maybe(struct page *p, const json_t *o, const char *key, bool sign)
{
	if (!jg_has_num(o, key)) {
		he_raw(&p->e, "<td class=\"n\" data-v=\"0\">–</td>");
		return;
	}
	if (sign)
		hp_td_sbytes(p, hp_num(o, key));
	else
		hp_td_bytes(p, hp_num(o, key));
}

static void sample_row(struct page *p, const char *when, const json_t *label, const json_t *s)
{
	static const char *const keys[] = { "rss", "rss_anon", "rss_file", "requested",
					    "glibc_held", "arenas", "mmap", "memtrace_resident" };
	he_raw(&p->e, "<tr><td>");
	he_textz(&p->e, when);
	if (label) {
		he_raw(&p->e, " ");
		he_jtext(&p->e, label, "");
	}
	he_raw(&p->e, "</td>");
	hp_td_num(p, hp_num(s, "time_us"), hf_time(hp_num(s, "time_us")).s);
	for (size_t i = 0; i < sizeof keys / sizeof *keys; i++)
		td_maybe(p, s, keys[i], false);
	he_raw(&p->e, "</tr>");
}

static void figures(struct page *p)
{
	static const struct hp_col cols[] = {
		{ .head = "When" },
		{ .head = "Time", .num = true },
		{ .head = "RSS", .num = true },
		{ .head = "RssAnon", .num = true },
		{ .head = "RssFile", .num = true, .tip = "file-backed pages: code, libraries, files" },
		{ .head = "Requested", .num = true, .tip = "malloc + CPython's objects" },
		{ .head = "glibc held", .num = true, .tip = "glibc's heaps + chunks it mapped" },
		{ .head = "Arenas", .num = true, .tip = "pymalloc arenas" },
		{ .head = "mmap", .num = true, .tip = "the program's own mappings" },
		{ .head = "memtrace", .num = true, .tip = "memtrace's own, resident" },
	};
	const json_t *mem = jg_obj(p->r, "memory"), *marks = jg_arr(p->r, "marks");
	hp_table_open(p, "", cols, sizeof cols / sizeof *cols);
	if (jg_obj(mem, "peak"))
		sample_row(p, "RSS peak", NULL, jg_obj(jg_obj(mem, "peak"), "sample"));
	for (size_t i = 0; i < jg_len(marks); i++) {
		const json_t *m = json_array_get(marks, i), *at = jg_obj(m, "memory");
		if (at)
			sample_row(p, "mark", jg(m, "label"), jg_obj(at, "sample"));
	}
	if (jg_obj(mem, "exit"))
		sample_row(p, "exit", NULL, jg_obj(jg_obj(mem, "exit"), "sample"));
	hp_table_close(p, 0, 0);
}

static void heap_top(struct page *p, const json_t *b, const char *when)
{
	const json_t *top = jg_obj(b, "heap_top"), *by = jg_obj(top, "held_by");
	if (!by)
		return;
	if (hp_num(top, "gap") > 0) {
		he_fmt(&p->e, "<p class=\"note\">%s, the heap top is held by a chunk the trace "
			      "does not show live (in glibc's caches, or from before tracing), up to "
			      "%s above the highest live block; glibc keeps the %s freed below the "
			      "top.</p>", when, hf_bytes(hp_num(top, "gap")).s,
		       hf_bytes(hp_num(top, "free_below_top")).s);
		return;
	}
	he_fmt(&p->e, "<p class=\"note\">%s, the heap top is held by a live block of %s at "
		      "0x%llx, ", when, hf_bytes(hp_num(by, "size")).s,
	       (unsigned long long)hp_num(by, "address"));
	hp_location(p, by);
	he_raw(&p->e, " <span class=\"fn\">");
	he_jtext(&p->e, jg(by, "function"), "");
	he_fmt(&p->e, "</span>: while it lives, glibc keeps the %s freed below it.</p>",
	       hf_bytes(hp_num(top, "free_below_top")).s);
}

/* The parts of the difference, at the RSS peak and at exit side by side. */
static void breakdown(struct page *p)
{
	static const struct hp_col cols[] = {
		{ .head = "Part" },
		{ .head = "At the RSS peak", .num = true },
		{ .head = "At exit", .num = true },
	};
	const json_t *mem = jg_obj(p->r, "memory");
	const json_t *at[2] = { jg_obj(mem, "peak"), jg_obj(mem, "exit") };
	const json_t *parts = jg_arr(at[1] ? at[1] : at[0], "parts");
	if (!at[0] && !at[1])
		return;
	he_raw(&p->e, "<h3>Why RSS is higher than the requested heap</h3><p class=\"note\">RSS "
		      "minus the requested heap (malloc + CPython's objects), in parts: each is "
		      "measured (the sample's <code>/proc/self/status</code>, glibc's "
		      "<code>mallinfo2</code>, <code>mincore</code> of the brk heap, or the "
		      "trace itself), and a part that could not be is marked “–”, never "
		      "guessed.</p>");
	hp_table_open(p, "", cols, sizeof cols / sizeof *cols);
	static const char *const rows[] = { "rss", "requested", "difference" };
	static const char *const names[] = { "RSS", "requested heap", "difference" };
	for (size_t r = 0; r < 3; r++) {
		he_fmt(&p->e, "<tr class=\"sum\"><td>%s</td>", names[r]);
		for (int k = 0; k < 2; k++)
			td_maybe(p, at[k], rows[r], r == 2);
		he_raw(&p->e, "</tr>");
	}
	for (size_t i = 0; i < jg_len(parts); i++) {
		const json_t *part = json_array_get(parts, i);
		const char *key = jg_str(part, "key");
		bool shown = false;
		for (int k = 0; k < 2; k++) {
			const json_t *q = json_array_get(jg_arr(at[k], "parts"), i);
			shown |= !jg_has_num(q, "bytes") || hp_num(q, "bytes") != 0;
		}
		if (!shown || !key)
			continue;
		he_raw(&p->e, "<tr><td>");
		he_jtext(&p->e, jg(part, "what"), "");
		he_raw(&p->e, "</td>");
		for (int k = 0; k < 2; k++)
			td_maybe(p, json_array_get(jg_arr(at[k], "parts"), i), "bytes", true);
		he_raw(&p->e, "</tr>");
	}
	hp_table_close(p, 0, 0);
	heap_top(p, at[0], "At the RSS peak");
	heap_top(p, at[1], "At exit");
}

void html_memory_section(struct page *p)
{
	const json_t *samples = jg_arr(jg_obj(p->r, "timeline"), "samples");
	const json_t *mem = jg_obj(p->r, "memory");
	struct columns c;
	if (!jg_len(samples))
		return;
	hp_section_open(p, "memory", "Memory the OS sees");
	he_fmt(&p->e, "<p class=\"note\">Resident memory (RSS) sampled every %.0f ms and at "
		      "every mark, beside what the program requested and what the allocators "
		      "hold. glibc's figures are left out of a sample when taking them would cost "
		      "more than 1%% of the time: their line then holds the last value.</p>",
	       hp_num(mem, "interval_ms"));
	if (columns_read(samples, &c))
		p->oom = true;
	else
		chart(p, &c);
	columns_free(&c);
	figures(p);
	breakdown(p);
	hp_section_close(p);
}

void html_memory_data(struct page *p, json_t *data)
{
	const json_t *samples = jg_arr(jg_obj(p->r, "timeline"), "samples");
	struct columns c;
	json_t *o = json_object();
	if (!o || columns_read(samples, &c)) {
		columns_free(&c);
		json_decref(o);
		p->oom = true;
		return;
	}
	json_t *t = json_array();
	for (size_t i = 0; i < c.n; i++)
		json_array_append_new(t, json_real(c.t[i]));
	json_object_set_new(o, "time_us", t);
	for (size_t k = 0; k < NSERIES; k++) {
		json_t *a = json_array();
		for (size_t i = 0; i < c.n; i++)
			json_array_append_new(a, json_real(c.v[k][i]));
		json_object_set_new(o, series[k].key, a);
	}
	columns_free(&c);
	json_object_set_new(data, "memory", o);
}
