/*
 * diff.h - `memtrace diff BASE NEW`: what changed between two runs, as
 * heaptrack's --diff and jeprof --base show it.  The comparison is one
 * JSON object (docs/report-schema.md, "memtrace diff"), which the text and
 * HTML outputs draw (render.h).
 *
 * Sites are matched at the view's grouping (--by) by what stays the same
 * across runs and builds: file, function and line for Python; the
 * function's name for native frames (never an address); "<native>" per
 * domain for allocations without either.
 */
#ifndef MEMTRACE_DIFF_H
#define MEMTRACE_DIFF_H

#include <stdbool.h>

#include <jansson.h>

#include "report.h"

#define MT_DIFF_SCHEMA_VERSION 1

/* A --fail-on limit: METRIC:+N% or METRIC:+N. */
enum mt_metric { MT_M_PEAK, MT_M_ALLOCS, MT_M_BYTES, MT_M_LEAKED, MT_M_COUNT };
struct mt_limit {
	enum mt_metric metric;
	bool percent;
	double value; /* percent, or bytes (allocations for allocs) */
	const char *text;
};

/* "peak:+10%" into *l; false if it is not a limit. */
bool mt_limit_parse(const char *s, struct mt_limit *l);

/* The comparison of base and new, with the limits checked ("fail_on").
 * names title the traces.  NULL only when out of memory. */
json_t *mt_diff_json(const struct mt_report *base, const struct mt_report *new_,
		     const char *base_name, const char *new_name, const struct mt_limit *limits,
		     size_t nlimits);

/* Whether a limit of the diff object was passed. */
bool mt_diff_failed(const json_t *diff);

#endif
