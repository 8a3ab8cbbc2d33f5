/*
 * export.h - a report as a profile for the tools people already use:
 * pprof's profile.proto, gzipped (go tool pprof, Pyroscope, Parca, Grafana,
 * Cloud Profiler), and speedscope's JSON file format.  Both draw from the
 * report's sites as samples (samples.h) of a report built with
 * MT_BUILD_PER_THREAD (report.h), so whatever restricted the build
 * restricts them too.  docs/exports.md describes what they hold.
 */
#ifndef MEMTRACE_EXPORT_H
#define MEMTRACE_EXPORT_H

#include <stdio.h>

#include "report.h"
#include "samples.h"

struct mt_export_opts {
	enum mt_inuse_at at;   /* what inuse_* and "live" mean */
	const char *exporter;  /* "memtrace@VERSION" */
	const char *trace;     /* the trace file's name; NULL: none */
};

/* Both return 0, or -1 when writing failed or memory ran out. */
int mt_export_pprof(const struct mt_report *rep, const struct mt_export_opts *o, FILE *out);
int mt_export_speedscope(const struct mt_report *rep, const struct mt_export_opts *o, FILE *out);

#endif
