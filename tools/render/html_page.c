/*
 * html_page.c - shared pieces of the HTML report (see html_page.h).
 */
#include "html_page.h"

#include <string.h>

#include "html_assets.h"
#include "json_get.h"

/* Figures beyond this are treated as damage, not measurements. */
#define FIGURE_MAX 1e18

const char *const hp_domains[4] = { "malloc", "pymem_raw", "pymem_mem", "pymem_obj" };
const char *const hp_domain_colors[4] = { C_MALLOC, C_RAW, C_MEM, C_OBJ };
const char *const hp_timeline_keys[HP_SERIES] = { "heap",      "malloc", "pymem_raw", "pymem_mem",
						  "pymem_obj", "arenas", "pools" };

double hp_clamp(double v)
{
	return v > FIGURE_MAX ? FIGURE_MAX : v < -FIGURE_MAX ? -FIGURE_MAX : v;
}

double hp_num(const json_t *o, const char *key)
{
	return hp_clamp(jg_num(o, key));
}

/* ---- small pieces ---------------------------------------------------------- */

void hp_td_num(struct page *p, double v, const char *shown)
{
	he_fmt(&p->e, "<td class=\"n\" data-v=\"%.17g\">", v);
	he_textz(&p->e, shown);
	he_raw(&p->e, "</td>");
}

void hp_td_count(struct page *p, double v)
{
	hp_td_num(p, v, hf_count(v).s);
}

void hp_td_bytes(struct page *p, double v)
{
	hp_td_num(p, v, hf_bytes(v).s);
}

void hp_td_sbytes(struct page *p, double v)
{
	hp_td_num(p, v, hf_sbytes(v).s);
}

void hp_td_scount(struct page *p, double v)
{
	hp_td_num(p, v, hf_scount(v).s);
}

void hp_table_open(struct page *p, const char *cls, const struct hp_col *cols, size_t n)
{
	he_fmt(&p->e, "<div class=\"tw\"><table class=\"%s\"><thead><tr>", cls);
	for (size_t i = 0; i < n; i++) {
		he_fmt(&p->e, "<th%s", cols[i].num ? " class=\"n\" data-sort=\"num\"" :
						      " data-sort=\"text\"");
		if (cols[i].tip)
			he_fmt(&p->e, " title=\"%s\"", cols[i].tip);
		if (cols[i].sorted)
			he_raw(&p->e, " aria-sort=\"descending\"");
		he_fmt(&p->e, ">%s</th>", cols[i].head);
	}
	he_raw(&p->e, "</tr></thead><tbody>");
}

void hp_table_close(struct page *p, size_t rows, size_t total)
{
	he_raw(&p->e, "</tbody></table></div>");
	if (total > rows)
		he_fmt(&p->e, "<p class=\"note\">The first %zu of %zu rows.</p>", rows, total);
}

/* "dir/" muted, then "file:line" (no line for "<native>" or line 0). */
void hp_location(struct page *p, const json_t *o)
{
	const json_t *file = jg(o, "file");
	double line = hp_num(o, "line");
	const char *s = json_is_string(file) ? json_string_value(file) : "?";
	size_t n = json_is_string(file) ? json_string_length(file) : 1;
	const char *slash = NULL;
	for (size_t i = 0; i + 1 < n; i++)
		if (s[i] == '/')
			slash = s + i;
	he_raw(&p->e, "<span class=\"loc\">");
	if (slash) {
		he_raw(&p->e, "<span class=\"dir\">");
		he_text(&p->e, s, (size_t)(slash - s) + 1);
		he_raw(&p->e, "</span>");
		n -= (size_t)(slash + 1 - s);
		s = slash + 1;
	}
	he_text(&p->e, s, n);
	if (line > 0)
		he_fmt(&p->e, ":%.0f", line);
	he_raw(&p->e, "</span>");
}

void hp_td_site(struct page *p, const json_t *o)
{
	const json_t *stack = jg_arr(o, "stack"), *fn = jg(o, "function");
	he_raw(&p->e, "<td class=\"where\">");
	if (json_is_string(fn) && json_string_length(fn)) {
		he_raw(&p->e, "<span class=\"fn\">");
		he_jtext(&p->e, fn, "");
		he_raw(&p->e, "</span> ");
	}
	hp_location(p, o);
	if (jg_len(stack) > 1) {
		he_fmt(&p->e, "<details><summary>%zu frames</summary><ol class=\"stack\">",
		       jg_len(stack));
		for (size_t i = 0; i < jg_len(stack) && i < 256; i++) {
			const json_t *f = json_array_get(stack, i);
			he_raw(&p->e, "<li><span class=\"fn\">");
			he_jtext(&p->e, jg(f, "function"), "?");
			he_raw(&p->e, "</span> ");
			hp_location(p, f);
			he_raw(&p->e, "</li>");
		}
		he_raw(&p->e, "</ol></details>");
	}
	he_raw(&p->e, "</td>");
}

void hp_tr_site(struct page *p, const json_t *o)
{
	he_raw(&p->e, "<tr>");
	hp_td_site(p, o);
	hp_td_jtext(p, jg(o, "domain"), "dom");
}

void hp_td_jtext(struct page *p, const json_t *s, const char *cls)
{
	if (cls)
		he_fmt(&p->e, "<td class=\"%s\">", cls);
	else
		he_raw(&p->e, "<td>");
	he_jtext(&p->e, s, "");
	he_raw(&p->e, "</td>");
}

void hp_section_open(struct page *p, const char *id, const char *title)
{
	he_fmt(&p->e, "<section id=\"%s\"><h2>%s</h2>", id, title);
}

void hp_time_chart(struct page *p, const struct hp_time_chart *c)
{
	struct svg_line_chart lc = {
		.title = c->title,
		.data = c->data,
		.x = c->x,
		.n = c->n,
		.series = c->series,
		.nseries = c->nseries,
		.marks = p->marks,
		.nmarks = p->nmarks,
		.unit = SVG_BYTES,
		.have_peak = hp_num(c->peak, c->peak_key) > 0,
		.peak_x = hp_num(c->peak, "time_us"),
		.peak_y = hp_num(c->peak, c->peak_key),
		.width = 1100,
		.height = 360,
	};
	he_raw(&p->e, "<figure class=\"wide\">");
	svg_line_chart(&p->e, &lc);
	he_raw(&p->e, "</figure>");
}

void hp_section_close(struct page *p)
{
	he_raw(&p->e, "</section>");
}

void hp_stat(struct page *p, const char *name, const char *value)
{
	he_raw(&p->e, "<div class=\"stat\"><span>");
	he_textz(&p->e, name);
	he_raw(&p->e, "</span><b>");
	he_textz(&p->e, value);
	he_raw(&p->e, "</b></div>");
}
bool hp_first_step(const json_t *marks, size_t i)
{
	const char *l = jg_str(json_array_get(marks, i), "label");
	return i == 0 && l && !strcmp(l, "(before first mark)");
}


void hp_head(struct page *p)
{
	he_raw(&p->e, "<!DOCTYPE html>\n<html lang=\"en\" data-memtrace=\"loading\"><head>"
		      "<meta charset=\"utf-8\">"
		      "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
		      "<meta name=\"color-scheme\" content=\"light\">"
		      "<meta name=\"generator\" content=\"memtrace\">"
		      "<title>memtrace: ");
}

void hp_head_end(struct page *p)
{
	he_raw(&p->e, "</title><style>");
	he_raw(&p->e, mt_html_css);
	he_raw(&p->e, "</style></head><body>\n");
}

void hp_scripts(struct page *p, const json_t *data)
{
	he_raw(&p->e, "<script type=\"application/json\" id=\"mt-data\">");
	he_json(&p->e, data);
	he_raw(&p->e, "</script>\n<script>");
	he_raw(&p->e, mt_html_js);
	he_raw(&p->e, "</script>\n");
}
