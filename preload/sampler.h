/*
 * sampler.h - what the OS sees of the process, sampled (sampler.c): the
 * figures of a SAMPLE record (enum mt_sample_field).
 */
#ifndef MEMTRACE_SAMPLER_H
#define MEMTRACE_SAMPLER_H

#include <stddef.h>
#include <stdint.h>

#include <memtrace/trace_format.h>

struct mt_sample {
	uint64_t mask; /* fields taken: bits of enum mt_sample_field */
	uint64_t v[MT_S_COUNT];
};

/* At start-up, before the header is built: the brk heap's start and
 * whose malloc the program reaches. */
void mt_sampler_start(void);
/* Appends the sampling keys to a header under construction. */
size_t mt_sampler_header(uint8_t *buf, size_t len);

/* The writer's schedule: microseconds until the next sample is due at
 * now_us (0: due), or UINT64_MAX when sampling is off. */
uint64_t mt_sampler_wait_us(uint64_t now_us);
/* Takes a sample.  full: every figure (a mark, the end); otherwise the
 * writer's periodic one, whose allocator figures are left out while their
 * cost would exceed 1% of the time between them.  Counts the writer's
 * samples and their cost unless full.  status: the calling thread's
 * MT_PROC_STATUS if it has just read it, else NULL. */
void mt_sampler_take(struct mt_sample *s, uint64_t now_us, int full, const char *status);

/* The calling thread's status: resident memory, and the process's number
 * of threads (the thread group leader's would lack the memory once the
 * leader has exited). */
#define MT_PROC_STATUS "/proc/thread-self/status"
/* A small /proc file into buf, NUL-terminated; its length, 0 on failure. */
size_t mt_proc_read(const char *path, char *buf, size_t cap);
/* Samples taken by the writer, and the CPU microseconds it spent on them. */
void mt_sampler_totals(uint64_t *samples, uint64_t *us);

/* A MARK event with the label's string id and, right behind it in the
 * calling thread's stream, a sample taken at the mark. */
void mt_sampler_mark(uint64_t label);

/* The writer reassembles a mark's sample from its ring events. */
#define MT_SAMPLE_PARTS ((MT_S_COUNT + 2) / 3)
#define MT_SAMPLE_ABSENT UINT64_MAX
void mt_sample_from_part(struct mt_sample *s, int part, uint64_t a, uint64_t b, uint64_t c);

/* A fork child samples on a schedule of its own. */
void mt_sampler_fork_child(void);

#endif
