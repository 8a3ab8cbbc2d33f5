/*
 * runtree.h - a run's traces as a tree of processes.  Given any of its
 * traces, its name or a directory that holds it, finds the traces of the
 * run (their headers name the run and link each trace to its parent's
 * and to the image its exec replaced), reads each, and picks the process
 * that did the work: the last program of the top process's exec chain,
 * unless it did little (a shell or make whose children did the work),
 * then the process with the most allocator calls.
 */
#ifndef MEMTRACE_RUNTREE_H
#define MEMTRACE_RUNTREE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "report.h"

/* The lead gives way when another process made this many times as many
 * allocator calls. */
#define MT_RUN_LEAD_FACTOR 10

struct mt_run_proc {
	char *path;                /* its trace file */
	struct mt_process process; /* from the header */
	enum mt_report_status status;
	char error[200];           /* when status is not OK */
	/* from the report */
	uint64_t events, heap_peak, live;
	const char *object_allocator; /* a Python process's, else NULL */
	bool complete;
	int end_reason, exit_status;
	/* links: indexes into mt_run.procs, -1 for none */
	int parent, pred, succ;
	bool chosen;               /* its full report is wanted */
	struct mt_report *report;  /* kept when chosen */
};

enum mt_lead_reason { MT_LEAD_LAST_PROGRAM, MT_LEAD_BUSIEST };

struct mt_run {
	uint64_t id;
	char *name;                /* path of the run's first trace (NAME.trace) */
	struct mt_run_proc *procs; /* in the order they started */
	size_t n;
	int lead;                  /* index, -1: none readable */
	enum mt_lead_reason lead_reason;
};

/* Which processes get their full report besides the lead (or instead of
 * it: with any selector, only the selected ones). */
struct mt_run_select {
	long pid;          /* -1: none */
	const char *exe;   /* a glob on the executable's base name; NULL: none */
	bool all;
};

/* Fills run from `arg` (a trace, a run's name, or a directory holding one
 * run).  0, or -1 with a message in err. */
int mt_run_find(const char *arg, struct mt_run *run, char *err, size_t errlen);
/* Builds the report of the trace in f, opened from path. */
typedef enum mt_report_status mt_run_build_fn(FILE *f, const char *path, struct mt_report *rep,
					      void *arg);

/* Reads every trace of the run, sets the lead and keeps the reports of
 * the chosen processes: the lead, or with selectors the selected ones.
 * 0, or -1 when a selector matched no readable trace (err says). */
int mt_run_load(struct mt_run *run, const struct mt_run_select *sel, mt_run_build_fn *build,
		void *arg, char *err, size_t errlen);
void mt_run_free(struct mt_run *run);

/* The executable's base name ("?" when the header lacked it). */
const char *mt_run_proc_exe(const struct mt_run_proc *p, char *buf, size_t cap);
/* How the process ended, in a word: its exit status, "exec", "exit"
 * (status not known), "no footer" (killed?) or "unreadable". */
const char *mt_run_proc_end(const struct mt_run_proc *p, char *buf, size_t cap);

#endif
