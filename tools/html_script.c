/*
 * html_script.c - the HTML report's main script, line by line: its source
 * (from "script_sources") with each line's figures from "script_lines" in
 * a gutter, and a bar per line for the bytes it allocated and freed.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "html_page.h"
#include "json_get.h"

/* A longer script shows only the lines with figures. */
#define SCRIPT_MAX_LINES 20000

/* The figures of line `line` of file, or NULL.  Lines are asked for in
 * file order, as script_lines holds them: *at is where to look on. */
static const json_t *figures(const json_t *lines, const char *file, double line, size_t *at)
{
	for (; *at < jg_len(lines); ++*at) {
		const json_t *l = json_array_get(lines, *at);
		const char *f = jg_str(l, "file");
		if (f && !strcmp(f, file) && hp_num(l, "line") >= line)
			return hp_num(l, "line") == line ? l : NULL;
	}
	return NULL;
}

static double line_max(const json_t *lines, const char *file)
{
	double most = 0;
	for (size_t i = 0; i < jg_len(lines); i++) {
		const json_t *l = json_array_get(lines, i);
		const char *f = jg_str(l, "file");
		if (f && !strcmp(f, file))
			most = fmax(most, fmax(hp_num(l, "bytes_allocated"), hp_num(l, "bytes_freed")));
	}
	return most;
}

static void td_delta(struct page *p, const json_t *l, const char *gained, const char *lost)
{
	double g = hp_num(l, gained), f = hp_num(l, lost);
	if (!g && !f) {
		he_raw(&p->e, "<td class=\"n\"></td>");
		return;
	}
	he_fmt(&p->e, "<td class=\"n\" title=\"%s gained, %s lost\">", hf_count(g).s, hf_count(f).s);
	he_textz(&p->e, hf_scount(g - f).s);
	he_raw(&p->e, "</td>");
}

static void row(struct page *p, double number, const json_t *l, const json_t *text, double most)
{
	he_fmt(&p->e, "<tr%s><td class=\"n ln\">%.0f</td>", l ? " class=\"hot\"" : "", number);
	if (l) {
		double a = hp_num(l, "bytes_allocated"), f = hp_num(l, "bytes_freed");
		hp_td_count(p, hp_num(l, "allocs"));
		hp_td_count(p, hp_num(l, "frees"));
		hp_td_sbytes(p, hp_num(l, "net_bytes"));
		hp_td_bytes(p, hp_num(l, "peak_bytes"));
		td_delta(p, l, "arenas_allocated", "arenas_freed");
		td_delta(p, l, "pools_allocated", "pools_freed");
		he_fmt(&p->e, "<td title=\"%s allocated, %s freed\"><span class=\"lbar\">"
			      "<span class=\"a\" style=\"width:%.1f%%\"></span><span class=\"f\" "
			      "style=\"width:%.1f%%\"></span></span></td>",
		       hf_bytes(a).s, hf_bytes(f).s, most > 0 ? 100 * a / most : 0,
		       most > 0 ? 100 * f / most : 0);
	} else {
		he_raw(&p->e, "<td></td><td></td><td></td><td></td><td></td><td></td><td></td>");
	}
	he_raw(&p->e, "<td class=\"src\">");
	he_jtext(&p->e, text, "");
	he_raw(&p->e, "</td></tr>");
}

static void script(struct page *p, const json_t *src, const json_t *lines)
{
	static const struct hp_col cols[] = {
		{ .head = "Line", .num = true },
		{ .head = "Allocs", .num = true },
		{ .head = "Frees", .num = true },
		{ .head = "Net", .num = true, .tip = "bytes allocated less bytes freed" },
		{ .head = "At peak", .num = true, .tip = "its bytes live at the heap peak" },
		{ .head = "Arenas", .num = true, .tip = "pymalloc arenas gained less lost" },
		{ .head = "Pools", .num = true, .tip = "pymalloc pools gained less lost" },
		{ .head = "Allocated / freed" },
		{ .head = "Source" },
	};
	const char *file = jg_str(src, "file");
	const json_t *text = jg_arr(src, "lines");
	if (!file)
		return;
	double most = line_max(lines, file);
	he_raw(&p->e, "<h3 class=\"mono\">");
	he_textz(&p->e, file);
	he_raw(&p->e, "</h3>");
	if (!text)
		he_raw(&p->e, "<p class=\"note\">The file could not be read when the report was "
			      "made: the lines' figures without their text.</p>");
	hp_table_open(p, "script", cols, sizeof cols / sizeof *cols);
	if (text && jg_len(text) <= SCRIPT_MAX_LINES) {
		size_t at = 0;
		for (size_t i = 0; i < jg_len(text); i++)
			row(p, (double)(i + 1), figures(lines, file, (double)(i + 1), &at),
			    json_array_get(text, i), most);
	} else {
		for (size_t i = 0; i < jg_len(lines); i++) {
			const json_t *l = json_array_get(lines, i);
			const char *f = jg_str(l, "file");
			if (f && !strcmp(f, file))
				row(p, hp_num(l, "line"), l, jg(l, "source"), most);
		}
	}
	hp_table_close(p, 0, 0);
}

void html_script_section(struct page *p)
{
	const json_t *sources = jg_arr(p->r, "script_sources"), *lines = jg_arr(p->r, "script_lines");
	if (!jg_len(lines))
		return;
	hp_section_open(p, "script", "The main script, line by line");
	he_raw(&p->e, "<p class=\"note\">What each line of the script run as "
		      "<code>__main__</code> did, with what the functions it called did. Frees "
		      "count at the line that ran when they happened. Bars: bytes allocated "
		      "(green) and freed (red), against the line that moved the most.</p>");
	for (size_t i = 0; i < jg_len(sources); i++)
		script(p, json_array_get(sources, i), lines);
	hp_section_close(p);
}
