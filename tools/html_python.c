/*
 * html_python.c - the HTML report's CPython sections: pymalloc arenas and
 * pools (over time, per size class, arenas retained at exit) and list
 * over-allocation (growth chains and slack).
 */
#include <math.h>
#include <inttypes.h>
#include <stdlib.h>

#include "html_page.h"
#include "json_get.h"

/* ---- pymalloc ---------------------------------------------------------------- */

static void fragmentation(struct page *p, const json_t *f, const char *when)
{
	double arena = hp_num(f, "arena_bytes"), obj = hp_num(f, "object_bytes");
	char buf[160];
	snprintf(buf, sizeof buf, "%s of %s (%s)", hf_bytes(obj).s, hf_bytes(arena).s,
		 arena > 0 ? hf_percent(obj, arena).s : "no arenas");
	hp_stat(p, when, buf);
}

static void size_classes(struct page *p, const json_t *pools)
{
	const json_t *sc = jg_arr(pools, "size_classes");
	size_t n = jg_len(sc);
	if (!n)
		return;
	char (*names)[24] = calloc(n, sizeof *names);
	const char **np = calloc(n, sizeof *np);
	double *peak = calloc(n, sizeof *peak), *exit_ = calloc(n, sizeof *exit_);
	if (names && np && peak && exit_) {
		for (size_t i = 0; i < n; i++) {
			const json_t *c = json_array_get(sc, i);
			snprintf(names[i], sizeof names[i], "%.0f", hp_num(c, "size"));
			np[i] = names[i];
			peak[i] = hp_num(c, "live_objects_peak");
			exit_[i] = hp_num(c, "live_objects_at_exit");
		}
		he_raw(&p->e, "<h3>Live objects per size class</h3><p class=\"note\">pymalloc "
			      "rounds small requests up to 16-byte classes; each pool serves one "
			      "class. Hover a bar for its figures.</p><figure>");
		struct svg_bar_chart c = {
			.title = "live objects per pymalloc size class",
			.n = n,
			.names = np,
			.v = { peak, exit_ },
			.series = { "at the heap peak", "at exit" },
			.color = { C_PEAK, C_EXIT },
			.unit = SVG_COUNT,
			.xtitle = "size class (bytes)",
			.width = 1100,
			.height = 260,
		};
		svg_bar_chart(&p->e, &c);
		he_raw(&p->e, "</figure>");
		static const struct hp_col cols[] = {
			{ .head = "Size class", .num = true },
			{ .head = "Allocations", .num = true },
			{ .head = "Live at peak", .num = true },
			{ .head = "Pools at peak", .num = true },
			{ .head = "Live at exit", .num = true },
			{ .head = "Pools at exit", .num = true },
		};
		he_raw(&p->e, "<details class=\"more\"><summary>Size classes as a table</summary>");
		hp_table_open(p, "sortable", cols, sizeof cols / sizeof *cols);
		for (size_t i = 0; i < n; i++) {
			const json_t *c = json_array_get(sc, i);
			he_raw(&p->e, "<tr>");
			hp_td_num(p, hp_num(c, "size"), names[i]);
			hp_td_count(p, hp_num(c, "allocs"));
			hp_td_count(p, peak[i]);
			hp_td_count(p, hp_num(c, "pools_peak"));
			hp_td_count(p, exit_[i]);
			hp_td_count(p, hp_num(c, "pools_at_exit"));
			he_raw(&p->e, "</tr>");
		}
		hp_table_close(p, 0, 0);
		he_raw(&p->e, "</details>");
	} else {
		p->oom = true;
	}
	free(names);
	free(np);
	free(peak);
	free(exit_);
}

static void retained(struct page *p, const json_t *pools)
{
	const json_t *ret = jg_arr(pools, "arenas_retained");
	if (!jg_len(ret))
		return;
	static const struct hp_col cols[] = {
		{ .head = "Arena" },
		{ .head = "Live objects", .num = true },
		{ .head = "Live bytes", .num = true },
		{ .head = "Pools in use", .num = true },
	};
	he_raw(&p->e, "<h3>Arenas still mapped at exit</h3><p class=\"note\">An arena goes back "
		      "to the system only when its last object is freed: a few survivors keep a "
		      "whole arena.</p>");
	hp_table_open(p, "sortable", cols, sizeof cols / sizeof *cols);
	size_t rows = 0;
	for (; rows < jg_len(ret) && rows < HP_MAX_ROWS; rows++) {
		const json_t *a = json_array_get(ret, rows), *addr = jg(a, "address");
		he_raw(&p->e, "<tr><td class=\"mono\">");
		if (json_is_integer(addr))
			he_fmt(&p->e, "0x%" PRIx64, (uint64_t)json_integer_value(addr));
		else
			he_jtext(&p->e, addr, "?");
		he_raw(&p->e, "</td>");
		hp_td_count(p, hp_num(a, "live_objects"));
		hp_td_bytes(p, hp_num(a, "live_bytes"));
		hp_td_count(p, hp_num(a, "pools_in_use"));
		he_raw(&p->e, "</tr>");
	}
	hp_table_close(p, rows, jg_len(ret));
}

/* No pymalloc in this process (a free-threaded build, PYTHONMALLOC): why,
 * and the arena allocator's frame stacks, which are there all the same. */
static void no_pymalloc(struct page *p, const json_t *absent, const json_t *other)
{
	char buf[160];
	he_raw(&p->e, "<p class=\"note\">");
	he_jtext(&p->e, absent, "");
	he_raw(&p->e, ".</p><div class=\"stats\">");
	snprintf(buf, sizeof buf, "%s, peak %s", hf_count(hp_num(other, "allocated")).s,
		 hf_bytes(hp_num(other, "bytes_peak")).s);
	hp_stat(p, "frame stack chunks", buf);
	he_raw(&p->e, "</div>");
	hp_section_close(p);
}

void html_pools_section(struct page *p, const struct hp_timeline *tl)
{
	const json_t *arenas = jg_obj(p->r, "arenas"), *pools = jg_obj(p->r, "pools"),
		     *frag = jg_obj(pools, "fragmentation"), *other = jg_obj(arenas, "other_blocks");
	const json_t *absent = json_object_get(arenas, "absent");
	hp_section_open(p, "pools", "pymalloc arenas and pools");
	if (json_is_string(absent)) {
		no_pymalloc(p, absent, other);
		return;
	}
	he_raw(&p->e, "<div class=\"stats\">");
	hp_stat(p, "arena size", hf_bytes(hp_num(arenas, "arena_size")).s);
	hp_stat(p, "pool size", hf_bytes(hp_num(pools, "pool_size")).s);
	hp_stat(p, "arenas allocated", hf_count(hp_num(arenas, "allocated")).s);
	hp_stat(p, "arenas freed", hf_count(hp_num(arenas, "freed")).s);
	hp_stat(p, "arenas at peak", hf_count(hp_num(arenas, "peak")).s);
	hp_stat(p, "arenas at exit", hf_count(hp_num(arenas, "live_at_exit")).s);
	hp_stat(p, "pools at peak", hf_count(hp_num(pools, "pools_peak")).s);
	hp_stat(p, "pools at exit", hf_count(hp_num(pools, "pools_at_exit")).s);
	fragmentation(p, jg_obj(frag, "at_peak"), "objects in arenas at peak");
	fragmentation(p, jg_obj(frag, "at_exit"), "objects in arenas at exit");
	if (hp_num(other, "allocated") > 0) {
		char buf[160];
		snprintf(buf, sizeof buf, "%s, peak %s", hf_count(hp_num(other, "allocated")).s,
			 hf_bytes(hp_num(other, "bytes_peak")).s);
		hp_stat(p, "frame stack chunks", buf);
	}
	he_raw(&p->e, "</div>");
	if (tl->n) {
		struct svg_series sa = { "arenas in use", "arenas", C_ARENAS, tl->v[5], true };
		struct svg_series sp = { "pools in use", "pools", C_POOLS, tl->v[6], true };
		struct svg_line_chart c = {
			.title = "arenas in use over time",
			.data = "timeline",
			.x = tl->t,
			.n = tl->n,
			.series = &sa,
			.nseries = 1,
			.marks = p->marks,
			.nmarks = p->nmarks,
			.mark_numbers = true,
			.unit = SVG_COUNT,
			.width = 540,
			.height = 260,
		};
		he_raw(&p->e, "<div class=\"pair\"><figure>");
		svg_line_chart(&p->e, &c);
		he_raw(&p->e, "</figure><figure>");
		c.title = "pools in use over time";
		c.series = &sp;
		svg_line_chart(&p->e, &c);
		he_raw(&p->e, "</figure></div>");
	}
	size_classes(p, pools);
	retained(p, pools);
	hp_section_close(p);
}

/* ---- lists ----------------------------------------------------------------- */

/* The capacities of a chain, long ones shortened in the middle. */
static void chain(struct page *p, const json_t *c)
{
	size_t n = jg_len(c);
	he_raw(&p->e, "<td class=\"chain\">");
	for (size_t i = 0; i < n; i++) {
		if (n > 9 && i == 4) {
			he_fmt(&p->e, " → …%zu more…", n - 7);
			i = n - 4;
			continue;
		}
		he_fmt(&p->e, "%s%s", i ? " → " : "", hf_count(jv_num(json_array_get(c, i))).s);
	}
	he_raw(&p->e, "</td>");
}

struct list_row {
	double capacity, resizes;
	size_t index;
};

/* Biggest buffers first, then the busiest; ties keep report order. */
static int by_capacity(const void *a, const void *b)
{
	const struct list_row *x = a, *y = b;
	if (x->capacity != y->capacity)
		return x->capacity < y->capacity ? 1 : -1;
	if (x->resizes != y->resizes)
		return x->resizes < y->resizes ? 1 : -1;
	return x->index < y->index ? -1 : x->index > y->index;
}

static void list_sites(struct page *p, const json_t *sites)
{
	static const struct hp_col cols[] = {
		{ .head = "Site" },
		{ .head = "Resizes", .num = true },
		{ .head = "Buffers", .num = true },
		{ .head = "Final capacity",
		  .num = true,
		  .tip = "slots, of the longest chain",
		  .sorted = true },
		{ .head = "Slack", .num = true, .tip = "unused slots after its last resize" },
		{ .head = "Slack bytes", .num = true },
		{ .head = "Bytes copied", .num = true, .tip = "by reallocs that moved the buffer" },
		{ .head = "Capacity chain", .tip = "capacities of the longest chain" },
	};
	size_t n = jg_len(sites), rows = n < HP_MAX_ROWS ? n : HP_MAX_ROWS;
	struct list_row *order = calloc(n, sizeof *order);
	if (!order) {
		p->oom = true;
		return;
	}
	for (size_t i = 0; i < n; i++) {
		const json_t *s = json_array_get(sites, i);
		order[i] = (struct list_row){ hp_num(s, "final_capacity"), hp_num(s, "resizes"), i };
	}
	qsort(order, n, sizeof *order, by_capacity);
	hp_table_open(p, "sortable", cols, sizeof cols / sizeof *cols);
	for (size_t r = 0; r < rows; r++) {
		const json_t *s = json_array_get(sites, order[r].index);
		he_raw(&p->e, "<tr>");
		hp_td_site(p, s);
		hp_td_count(p, hp_num(s, "resizes"));
		hp_td_count(p, hp_num(s, "buffers"));
		hp_td_count(p, hp_num(s, "final_capacity"));
		hp_td_count(p, hp_num(s, "slack_slots"));
		hp_td_bytes(p, hp_num(s, "slack_bytes"));
		hp_td_bytes(p, hp_num(s, "bytes_copied"));
		chain(p, jg_arr(s, "chain"));
		he_raw(&p->e, "</tr>");
	}
	hp_table_close(p, rows, n);
	free(order);
}

void html_lists_section(struct page *p)
{
	const json_t *l = jg_obj(p->r, "lists"), *sites = jg_arr(l, "sites");
	hp_section_open(p, "lists", "List over-allocation");
	he_raw(&p->e, "<p class=\"note\">A list's item buffer grows by PyMem_Realloc to "
		      "8 × capacity bytes, with capacity <code>(n + (n &gt;&gt; 3) + 6) &amp; ~3"
		      "</code>; the spare slots are slack.</p><div class=\"stats\">");
	hp_stat(p, "resizes", hf_count(hp_num(l, "resizes")).s);
	hp_stat(p, "buffers", hf_count(hp_num(l, "buffers")).s);
	hp_stat(p, "bytes copied", hf_bytes(hp_num(l, "bytes_copied")).s);
	hp_stat(p, "slack at peak", hf_bytes(hp_num(l, "slack_bytes_at_peak")).s);
	hp_stat(p, "slack at exit", hf_bytes(hp_num(l, "slack_bytes_at_exit")).s);
	he_raw(&p->e, "</div>");
	if (jg_len(sites)) {
		list_sites(p, sites);
	} else {
		he_raw(&p->e, "<p class=\"empty\">No list buffer was resized.</p>");
	}
	hp_section_close(p);
}

