/*
 * html_tables.c - the HTML report's tables of allocation sites (top, live
 * at exit, temporary) and of the steps between marks.
 */
#include <stdlib.h>
#include <string.h>

#include "html_page.h"
#include "json_get.h"

/* ---- sites ----------------------------------------------------------------- */


void html_sites_table(struct page *p, const char *id, const char *title, const char *key,
			enum site_view view, const char *note)
{
	const json_t *sites = jg_arr(p->r, key);
	if (!sites && view != BY_PEAK)
		return;
	hp_section_open(p, id, title);
	if (note)
		he_fmt(&p->e, "<p class=\"note\">%s</p>", note);
	if (!jg_len(sites)) {
		he_raw(&p->e, "<p class=\"empty\">None.</p>");
		hp_section_close(p);
		return;
	}
	/* the main table comes in the view's order */
	const char *sort = jg_str(jg_obj(p->r, "view"), "sort");
	bool by = view == BY_PEAK && sort;
	struct hp_col peak_cols[] = {
		{ .head = "Site" },
		{ .head = "Domain" },
		{ .head = "Allocations", .num = true, .sorted = by && !strcmp(sort, "allocs") },
		{ .head = "Bytes",
		  .num = true,
		  .tip = "allocated here",
		  .sorted = by && !strcmp(sort, "bytes") },
		{ .head = "At peak",
		  .num = true,
		  .tip = "live at the heap peak",
		  .sorted = view == BY_PEAK && (!sort || !strcmp(sort, "peak")) },
		{ .head = "Live at exit",
		  .num = true,
		  .sorted = view == BY_LIVE || (by && !strcmp(sort, "leaked")) },
		{ .head = "Live blocks", .num = true },
	};
	static const struct hp_col temp_cols[] = {
		{ .head = "Site" },
		{ .head = "Domain" },
		{ .head = "Temporaries",
		  .num = true,
		  .tip = "allocations freed before the thread allocated again" },
		{ .head = "Temporary bytes", .num = true },
		{ .head = "Allocations", .num = true },
		{ .head = "Bytes", .num = true },
	};
	if (view == BY_TEMP)
		hp_table_open(p, "sortable", temp_cols, sizeof temp_cols / sizeof *temp_cols);
	else
		hp_table_open(p, "sortable", peak_cols, sizeof peak_cols / sizeof *peak_cols);
	size_t rows = 0;
	for (; rows < jg_len(sites) && rows < HP_MAX_ROWS; rows++) {
		const json_t *s = json_array_get(sites, rows);
		hp_tr_site(p, s);
		if (view == BY_TEMP) {
			hp_td_count(p, hp_num(s, "temporary_allocs"));
			hp_td_bytes(p, hp_num(s, "temporary_bytes"));
			hp_td_count(p, hp_num(s, "allocs"));
			hp_td_bytes(p, hp_num(s, "bytes"));
		} else {
			hp_td_count(p, hp_num(s, "allocs"));
			hp_td_bytes(p, hp_num(s, "bytes"));
			hp_td_bytes(p, hp_num(s, "peak_bytes"));
			hp_td_bytes(p, hp_num(s, "live_bytes_at_exit"));
			hp_td_count(p, hp_num(s, "live_blocks_at_exit"));
		}
		he_raw(&p->e, "</tr>");
	}
	hp_table_close(p, rows, jg_len(sites));
	hp_section_close(p);
}

/* ---- marks ------------------------------------------------------------------ */

static void by_domain(struct page *p, const json_t *bd)
{
	static const char *const shortname[4] = { "malloc", "raw", "mem", "obj" };
	he_raw(&p->e, "<td class=\"small\">");
	for (size_t d = 0; d < 4; d++) {
		const json_t *o = jg_obj(bd, hp_domains[d]);
		if (!o || (hp_num(o, "allocs") == 0 && hp_num(o, "frees") == 0))
			continue;
		he_fmt(&p->e, "<div title=\"%s: allocations, frees, net bytes\"><i class=\"sw\" "
			      "style=\"background:%s\"></i>%s +%s −%s · %s</div>",
		       hp_domains[d], hp_domain_colors[d], shortname[d],
		       hf_count(hp_num(o, "allocs")).s, hf_count(hp_num(o, "frees")).s,
		       hf_sbytes(hp_num(o, "net_bytes")).s);
	}
	he_raw(&p->e, "</td>");
}

/* The size classes the step allocated most in. */
static void step_classes(struct page *p, const json_t *sc)
{
	size_t n = jg_len(sc), shown = 0;
	bool *used = calloc(n + 1, sizeof *used);
	he_raw(&p->e, "<td class=\"small\">");
	while (used && shown < 3 && shown < n) {
		size_t best = n;
		for (size_t i = 0; i < n; i++)
			if (!used[i] && (best == n || hp_num(json_array_get(sc, i), "allocs") >
							      hp_num(json_array_get(sc, best), "allocs")))
				best = i;
		used[best] = true;
		const json_t *c = json_array_get(sc, best);
		he_fmt(&p->e, "<div>%.0f B: +%s −%s</div>", hp_num(c, "size"),
		       hf_count(hp_num(c, "allocs")).s, hf_count(hp_num(c, "frees")).s);
		shown++;
	}
	if (n > shown)
		he_fmt(&p->e, "<div class=\"muted\">%zu more</div>", n - shown);
	he_raw(&p->e, "</td>");
	free(used);
}

void html_marks_section(struct page *p)
{
	const json_t *m = jg_arr(p->r, "marks"), *trace = jg_obj(p->r, "trace");
	if (!jg_len(m))
		return;
	hp_section_open(p, "steps", "Steps");
	he_raw(&p->e, "<p class=\"note\">From each mark to the next (or to the end). Numbers "
		      "match the marks on the charts.</p>");
	struct hp_col cols[] = {
		{ .head = "#", .num = true },
		{ .head = "Step" },
		{ .head = "Allocations", .num = true },
		{ .head = "Frees", .num = true },
		{ .head = "Net heap",
		  .num = true,
		  .tip = "change of the heap (malloc + arenas) over the step" },
		{ .head = "Arenas", .num = true, .tip = "change of pymalloc arenas in use" },
		{ .head = "Pools", .num = true, .tip = "change of pymalloc pools in use" },
		{ .head = "List resizes", .num = true },
		{ .head = "By domain", .tip = "allocations, frees and net bytes per domain" },
		{ .head = "Size classes",
		  .tip = "the pymalloc size classes the step allocated most in" },
	};
	size_t ncols = p->python ? 10 : 6;
	if (!p->python)
		cols[5] = cols[8]; /* no arenas, pools, lists or size classes */
	hp_table_open(p, "sortable", cols, ncols);
	size_t number = 0;
	for (size_t i = 0; i < jg_len(m) && i < 10000; i++) {
		const json_t *o = json_array_get(m, i);
		double start = hp_num(o, "time_us");
		double end = jg_has_num(o, "end_us")	 ? hp_num(o, "end_us") :
			     i + 1 < jg_len(m) ? hp_num(json_array_get(m, i + 1), "time_us") :
						  hp_num(trace, "duration_us");
		he_raw(&p->e, "<tr>");
		if (hp_first_step(m, i)) {
			hp_td_num(p, 0, "");
		} else {
			number++;
			hp_td_num(p, (double)number, hf_count((double)number).s);
		}
		he_raw(&p->e, "<td class=\"step\"><b>");
		he_jtext(&p->e, jg(o, "label"), "");
		he_fmt(&p->e, "</b><span class=\"when\">at %s, for %s", hf_time(start).s,
		       hf_time(end - start).s);
		if (hp_num(o, "marks") > 1) /* the builder folds marks past its limit */
			he_fmt(&p->e, "; %s marks", hf_count(hp_num(o, "marks")).s);
		if (jg_has_num(o, "heap_peak"))
			he_fmt(&p->e, "; heap peak %s", hf_bytes(hp_num(o, "heap_peak")).s);
		he_raw(&p->e, "</span></td>");
		hp_td_count(p, hp_num(o, "allocs"));
		hp_td_count(p, hp_num(o, "frees"));
		hp_td_sbytes(p, hp_num(o, "net_bytes"));
		if (p->python) {
			hp_td_scount(p, hp_num(o, "arenas_delta"));
			hp_td_scount(p, hp_num(o, "pools_delta"));
			hp_td_count(p, hp_num(o, "list_resizes"));
		}
		by_domain(p, jg_obj(o, "by_domain"));
		if (p->python)
			step_classes(p, jg_arr(o, "size_classes"));
		he_raw(&p->e, "</tr>");
	}
	hp_table_close(p, 0, 0);
	hp_section_close(p);
}

