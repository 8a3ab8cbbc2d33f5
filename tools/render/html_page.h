/*
 * html_page.h - what the modules of the HTML report share: the page being
 * written, its colours, and helpers for sections, stats and tables whose
 * cells carry the figures they show (data-v) so that the page's script can
 * sort them.  output_html.c writes the page; html_python.c the pymalloc
 * and list sections; html_tables.c the sites and steps; html_script.c the
 * main script line by line; html_memory.c what the OS sees.
 */
#ifndef MEMTRACE_HTML_PAGE_H
#define MEMTRACE_HTML_PAGE_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#include "html_emit.h"
#include "html_svg.h"

/* Rows per table: the report's lists are short already (their top sites). */
#define HP_MAX_ROWS 200

#define C_HEAP "#3d5a80"
#define C_MALLOC "#4e79a7"
#define C_RAW "#f28e2b"
#define C_MEM "#59a14f"
#define C_OBJ "#e15759"
#define C_ARENAS "#76b7b2"
#define C_POOLS "#b07aa1"
#define C_PEAK "#4e79a7"
#define C_EXIT "#a0cbe8"
#define C_ALLOCS "#59a14f"
#define C_BYTES "#edc948"

/* The domains in report order, and their colours in every chart. */
extern const char *const hp_domains[4];
extern const char *const hp_domain_colors[4];

struct page {
	struct he e;
	const json_t *r; /* the report */
	bool python;     /* process.python is set */
	/* real marks (not the "(before first mark)" step), for the charts */
	struct svg_vline *marks;
	size_t nmarks;
	bool oom;
};

/* The timeline's points as columns: time, then heap, the four domains,
 * arenas and pools (hp_timeline_keys). */
#define HP_SERIES 7
struct hp_timeline {
	size_t n;
	double *t;
	double *v[HP_SERIES];
};
extern const char *const hp_timeline_keys[HP_SERIES];

/* A number member, clamped to what a real trace can hold (1e18): beyond
 * that a report is damaged, and charts would break. */
double hp_clamp(double v);
double hp_num(const json_t *o, const char *key);

/* The page's head: hp_head, then the title's text, then hp_head_end
 * (the stylesheet; the body starts).  hp_scripts: the data for the page's
 * script, and the script. */
void hp_head(struct page *p);
void hp_head_end(struct page *p);
void hp_scripts(struct page *p, const json_t *data);
/* A wide chart of bytes over the trace's time, with the marks, and a dot
 * at the peak the report gives (its peak_key and time_us members). */
struct hp_time_chart {
	const char *title, *data;
	const double *x;
	size_t n;
	const struct svg_series *series;
	size_t nseries;
	const json_t *peak;
	const char *peak_key;
};
void hp_time_chart(struct page *p, const struct hp_time_chart *c);

void hp_section_open(struct page *p, const char *id, const char *title);
void hp_section_close(struct page *p);
/* A labelled figure in a row of stats. */
void hp_stat(struct page *p, const char *name, const char *value);

struct hp_col {
	const char *head;
	bool num; /* sorts by number, right-aligned */
	const char *tip;
	bool sorted; /* the rows come sorted by this column, largest first */
};

/* A table whose columns sort when the class includes "sortable".  After
 * the rows, hp_table_close notes when only `rows` of `total` were shown. */
void hp_table_open(struct page *p, const char *cls, const struct hp_col *cols, size_t n);
void hp_table_close(struct page *p, size_t rows, size_t total);

/* Cells: a figure shown as `shown` and sorted by v; counts, bytes, and
 * signed changes of either. */
void hp_td_num(struct page *p, double v, const char *shown);
void hp_td_count(struct page *p, double v);
void hp_td_bytes(struct page *p, double v);
void hp_td_sbytes(struct page *p, double v);
void hp_td_scount(struct page *p, double v);
/* A string from the report (escaped), with a class or none. */
void hp_td_jtext(struct page *p, const json_t *s, const char *cls);
/* "dir/file:line" of an object with "file" and "line". */
void hp_location(struct page *p, const json_t *o);
/* The cell of a site: function and location, with its stack folded away
 * when it has more than one frame. */
void hp_td_site(struct page *p, const json_t *o);
/* A row's start: the site's cell and its domain's. */
void hp_tr_site(struct page *p, const json_t *o);

/* Whether marks[i] is the builder's "(before first mark)" step. */
bool hp_first_step(const json_t *marks, size_t i);

/* The sections other modules write. */
void html_pools_section(struct page *p, const struct hp_timeline *tl);
void html_lists_section(struct page *p);
enum site_view { BY_PEAK, BY_LIVE, BY_TEMP };
void html_sites_table(struct page *p, const char *id, const char *title, const char *key,
		      enum site_view view, const char *note);
void html_marks_section(struct page *p);
void html_script_section(struct page *p);
/* html_memory.c: the section, and its columns for the page's script. */
void html_memory_section(struct page *p);
void html_memory_data(struct page *p, json_t *data);

#endif
