/*
 * html_svg.h - the HTML report's charts as inline SVG, drawn in C so the
 * page shows them even with scripts off: a line chart over time (with an
 * optional filled series, labelled vertical marks and a peak dot) and a bar
 * chart with one or two bars per category.  The page's script adds hover
 * read-outs on top, from the data-* attributes the charts carry.
 */
#ifndef MEMTRACE_HTML_SVG_H
#define MEMTRACE_HTML_SVG_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#include "html_emit.h"

enum svg_unit { SVG_BYTES, SVG_COUNT };

struct svg_series {
	const char *name;  /* legend text */
	const char *key;   /* the series' key in the page data, for the hover read-out */
	const char *color; /* a CSS colour */
	const double *y;   /* n values */
	bool area;         /* filled below the line */
};

/* A vertical line at x, labelled with a string from the trace. */
struct svg_vline {
	double x;
	const json_t *label;
};

struct svg_line_chart {
	const char *title; /* accessible name of the chart */
	const char *data;  /* which page data the hover read-out uses, or NULL */
	const double *x;   /* n ascending times in microseconds */
	size_t n;
	const struct svg_series *series;
	size_t nseries;
	const struct svg_vline *marks;
	size_t nmarks;
	bool mark_numbers; /* label marks with their numbers only */
	enum svg_unit unit;
	bool have_peak; /* a labelled dot at (peak_x, peak_y) */
	double peak_x, peak_y;
	int width, height;
};

/* A legend, then the chart. */
void svg_line_chart(struct he *e, const struct svg_line_chart *c);

struct svg_bar_chart {
	const char *title;
	size_t n;
	const char *const *names; /* n category labels, written by this program */
	const double *v[2];       /* n values each; v[1] may be NULL */
	const char *series[2];    /* legend text of v[0] and v[1] */
	const char *color[2];
	enum svg_unit unit;
	const char *xtitle; /* under the axis, or NULL */
	int width, height;
};

void svg_bar_chart(struct he *e, const struct svg_bar_chart *c);

#endif
