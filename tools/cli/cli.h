/*
 * cli.h - what the subcommands of the memtrace command share: exit codes
 * and the step that turns a trace file into a printed report.
 */
#ifndef MEMTRACE_CLI_H
#define MEMTRACE_CLI_H

#include <stddef.h>

/* Exit codes of `memtrace report`; `memtrace run` passes the command's on. */
enum mt_exit {
	MT_EXIT_OK = 0,
	MT_EXIT_USAGE = 1,     /* bad usage, missing file, I/O error */
	MT_EXIT_BAD_TRACE = 2, /* not a trace, newer format, corrupt */
	MT_EXIT_TORN = 3,      /* last block torn: report of the blocks before it */
};

enum mt_format { MT_FMT_TEXT, MT_FMT_JSON, MT_FMT_HTML, MT_FMT_FOLDED, MT_FMT_PPROF,
		 MT_FMT_SPEEDSCOPE };

/* `memtrace diff`: a --fail-on limit was passed. */
#define MT_EXIT_LIMIT 4

/* Reports on the trace at path, to out_path (stdout when NULL); diagnostics
 * go to stderr.  Returns an enum mt_exit. */
int report_trace(const char *path, enum mt_format fmt, const char *out_path);
/* The same for several traces: each report and a combined summary. */
int report_traces(char *const *paths, size_t n, enum mt_format fmt, const char *out_path);
/* The text report of the run of arg (a trace of it, or its name) on
 * stdout: as report_trace when the run has one trace. */
int report_run_of(const char *arg);

/* Builds the report of the trace at path with view v, saying on stderr
 * what went wrong; returns an enum mt_exit (OK or TORN: *rep holds the
 * figures).  Free *rep with mt_report_free whatever the result. */
struct mt_report;
struct mt_view;
int report_load(const char *path, const struct mt_view *v, struct mt_report *rep);

int cmd_report(int argc, char **argv);
int cmd_diff(int argc, char **argv);
int cmd_run(int argc, char **argv);

#endif
