/*
 * report.h - the figures memtrace reports about one trace, and the builder
 * that streams a trace file block by block to compute them.  Output
 * formatting lives in output.h; this module knows nothing about it.
 */
#ifndef MEMTRACE_REPORT_H
#define MEMTRACE_REPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <memtrace/trace_format.h>

/* Bytes copied out of the header; p == NULL when the header lacked the key. */
struct mt_bytes {
	uint8_t *p;
	size_t n;
};

struct mt_dom_stats {
	uint64_t allocs, frees, reallocs, failed;
	uint64_t bytes_allocated, peak_bytes;
	uint64_t live_bytes, live_blocks; /* at the end of the trace */
	uint64_t unmatched_frees;         /* frees of addresses never seen live */
	uint64_t inconsistent;            /* allocs of addresses already live */
};

/* Which numeric header keys the trace carried. */
enum mt_have {
	MT_HAVE_PID = 1 << 0,
	MT_HAVE_PPID = 1 << 1,
	MT_HAVE_START = 1 << 2,
	MT_HAVE_PAGE_SIZE = 1 << 3,
};

/* end_reason when no final footer says, or when it names an unknown one. */
#define MT_REASON_NONE (-1)
#define MT_REASON_UNKNOWN (-2)

struct mt_process {
	unsigned have; /* enum mt_have */
	uint64_t pid, ppid, start_ns, page_size;
	struct mt_bytes exe, argv, version; /* argv: NUL-separated */
};

struct mt_report {
	struct mt_process process;
	struct {
		bool complete;  /* the trace ends with a footer */
		int end_reason; /* enum mt_end_reason or MT_REASON_* */
		uint64_t blocks; /* event blocks */
		uint64_t duration_us, threads;
	} trace;
	struct {
		uint64_t total, lost, producer_waits;
	} events;
	struct mt_dom_stats dom[MT_DOM_COUNT];
	char error[200]; /* why the build failed or stopped early */
};

enum mt_report_status {
	MT_REPORT_OK,        /* read to the end; trace.complete tells if it had a footer */
	MT_REPORT_TORN,      /* the last block is torn: figures cover the blocks before */
	MT_REPORT_BAD_TRACE, /* not a trace, a newer format, or corrupt: no figures */
	MT_REPORT_FAILED,    /* read error or out of memory: no figures */
};

/* Streams the trace in f.  rep must be released with mt_report_free whatever
 * the result; on failure rep->error says why. */
enum mt_report_status mt_report_build(FILE *f, struct mt_report *rep);
void mt_report_free(struct mt_report *rep);

/* "malloc", "pymem_raw", ... as used in every output. */
const char *mt_domain_name(int dom);
/* "exit", "exec", "_exit", "unknown", or NULL for MT_REASON_NONE. */
const char *mt_end_reason_name(int reason);

#endif
