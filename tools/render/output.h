/*
 * output.h - renderings of a struct mt_report: JSON for programs (a stable
 * schema, docs/report-schema.md, built by output_json.c) and aligned text
 * for people.  Other renderers (HTML, folded stacks) draw from the same
 * JSON object, mt_report_to_json(), so every output shows the same figures.
 */
#ifndef MEMTRACE_OUTPUT_H
#define MEMTRACE_OUTPUT_H

#include <stdio.h>

#include <jansson.h>

#include "report.h"

#define MT_REPORT_SCHEMA_VERSION 3

/* How many sites the lists of leaks and temporaries, and the summary's
 * sites at the peak, hold at most unless the view says --top ("sites"
 * holds every site then). */
#define MT_JSON_SITES 50
#define MT_JSON_PEAK_SITES 10

/* The report as the JSON object of docs/report-schema.md (a new reference;
 * json_decref it).  NULL only when out of memory. */
json_t *mt_report_to_json(const struct mt_report *rep);
/* Its "process" member alone; object_allocator ("pymalloc", "mimalloc",
 * "malloc") is known from a whole trace only, NULL otherwise. */
json_t *mt_process_to_json(const struct mt_process *p, const char *object_allocator);
/* A trace or run id as 16 hex digits (JSON numbers lose 64-bit ids); null
 * for 0. */
json_t *mt_json_id(uint64_t id);

/* The "profile" key: every site of a build with MT_BUILD_PER_THREAD and
 * MT_BUILD_TIME_GRID, with its stack and figures over time (the HTML
 * page's data).  mt_report_to_json adds it when the report has a grid.
 * NULL only when out of memory. */
json_t *mt_profile_json(const struct mt_report *rep);

/* A JSON number of a count, and a string from a C string whose bytes need
 * not be UTF-8 (they are spelled \xNN then). */
json_t *mt_json_num(uint64_t v);
json_t *mt_json_cstr(const char *s);
/* The flame graph of the view (flame.c): {"name", "function", "value",
 * "children"} nodes under a root named "all". */
json_t *mt_flame_json(const struct mt_report *rep);

/* Several reports: {"format": "memtrace-report-set", "reports": [...],
 * "combined": {...}}.  names[i] titles reps[i] (may be NULL). */
json_t *mt_report_set_to_json(const struct mt_report *const *reps, const char *const *names,
			      size_t n);

/* root compact on one line, then a newline; 0, or -1 when writing failed. */
int mt_json_write(const json_t *root, FILE *out);
/* Writes a JSON value on one line and releases it: 0, or -1 when writing
 * failed (or root is NULL: out of memory). */
int mt_json_dump(json_t *root, FILE *out);

/* Both return 0, or -1 when writing failed. */
int mt_output_json(const struct mt_report *rep, FILE *out);
/* trace_name titles the report; NULL leaves the title out. */
int mt_output_text(const struct mt_report *rep, const char *trace_name, FILE *out);

/* Several traces: each report, then a combined summary. */
int mt_output_json_set(const struct mt_report *const *reps, const char *const *names,
		       size_t n, FILE *out);
int mt_output_text_set(const struct mt_report *const *reps, const char *const *names,
		       size_t n, FILE *out);

#endif
