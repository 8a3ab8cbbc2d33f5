/*
 * render.h - the renderings drawn from a JSON object (schema in
 * docs/report-schema.md) rather than from struct mt_report: of the report,
 * one self-contained HTML page and the folded stacks of the flame graph;
 * of `memtrace diff` (diff.h), its text and its page.  They read nothing
 * but that object, and read it forgivingly: a key that is missing or of
 * the wrong type shows as absent, so any JSON renders.
 */
#ifndef MEMTRACE_RENDER_H
#define MEMTRACE_RENDER_H

#include <stddef.h>
#include <stdio.h>

#include <jansson.h>

#include "report.h"

/* Each returns 0, or -1 when writing failed (or memory ran out). */

/* The HTML report: one file, the JSON and the script that draws it, no network.
 * trace_name names the trace in the page; NULL leaves it out. */
int mt_render_html(const json_t *report, const char *trace_name, FILE *out);
/* "frame;frame;frame BYTES" lines from the report's "flame" tree. */
int mt_render_folded(const json_t *report, FILE *out);

/* The diff object as text, with at most top sites, and as one page (the
 * same script as the report's draws it). */
int mt_render_diff_text(const json_t *diff, size_t top, FILE *out);
int mt_render_diff_html(const json_t *diff, FILE *out);

/* The same for a built report (turned into its JSON object first). */
int mt_output_html(const struct mt_report *rep, const char *trace_name, FILE *out);
int mt_output_folded(const struct mt_report *rep, FILE *out);

#endif
