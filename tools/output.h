/*
 * output.h - renderings of a struct mt_report: JSON for programs (a stable
 * schema, see output_json.c) and aligned text for people.
 */
#ifndef MEMTRACE_OUTPUT_H
#define MEMTRACE_OUTPUT_H

#include <stdio.h>

#include "report.h"

#define MT_REPORT_SCHEMA_VERSION 1

/* Both return 0, or -1 when writing failed. */
int mt_output_json(const struct mt_report *rep, FILE *out);
/* trace_name titles the report; NULL leaves the title out. */
int mt_output_text(const struct mt_report *rep, const char *trace_name, FILE *out);

#endif
