/*
 * samples.h - a report's allocation sites as the samples of a profile, for
 * the exports (export.h): each site that allocated or held anything, with
 * the stack the flame graph shows for it (stacks.h: native stack nodes and
 * Python frames) and four values.  A report built with MT_BUILD_PER_THREAD
 * gives one sample per (stack, domain, thread).
 */
#ifndef MEMTRACE_SAMPLES_H
#define MEMTRACE_SAMPLES_H

#include <stddef.h>
#include <stdint.h>

#include "report.h"
#include "stacks.h"

/* What "in use" means: live at the heap peak (the moment the sites are
 * taken, heap.snapshot_us), or at the end of the trace. */
enum mt_inuse_at { MT_INUSE_PEAK, MT_INUSE_EXIT };

/* The values of a sample, in pprof's order for heap profiles. */
enum mt_value {
	MT_ALLOC_OBJECTS, /* allocations and reallocs made here */
	MT_ALLOC_SPACE,   /* their bytes */
	MT_INUSE_OBJECTS, /* blocks live at the peak or at exit */
	MT_INUSE_SPACE,   /* their bytes */
	MT_VALUES
};

struct mt_sample {
	const struct mt_site *site;  /* its domain, thread, ... */
	const struct mt_snode *stack; /* outermost first */
	size_t depth;                /* 0: no frames known */
	uint64_t value[MT_VALUES];
};

/* Calls fn for the sample of each site with a nonzero value, in site
 * order.  Returns 0, fn's first nonzero return (and stops there), or -1
 * when out of memory. */
typedef int mt_sample_fn(void *arg, const struct mt_sample *s);
int mt_samples(const struct mt_report *rep, enum mt_inuse_at at, mt_sample_fn *fn, void *arg);

#endif
