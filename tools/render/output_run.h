/*
 * output_run.h - the report of a run of several processes (runtree.h), as
 * text and as JSON (docs/report-schema.md, "memtrace-run").
 */
#ifndef MEMTRACE_OUTPUT_RUN_H
#define MEMTRACE_OUTPUT_RUN_H

#include <stdio.h>

#include "runtree.h"

/* Both return 0, or -1 when writing failed (or memory ran out). */
int mt_output_run_text(const struct mt_run *run, FILE *out);
int mt_output_run_json(const struct mt_run *run, FILE *out);

#endif
