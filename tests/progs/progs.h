/*
 * progs.h - helpers shared by the test programs.
 *
 * Each program counts the malloc-family calls it makes itself and prints the
 * totals as one "expect ..." line, which the integration tests compare with
 * what `memtrace report` says.  The counting rules are those of the report:
 *
 *   allocs    successful malloc, calloc, aligned calls, realloc(NULL, n)
 *   reallocs  successful realloc(p, n) with p != NULL and n != 0
 *   frees     free(p) with p != NULL, and realloc(p, 0)
 *   failed    allocating calls that returned NULL (or an error code)
 *   bytes     requested sizes of allocs and reallocs
 *
 * Nothing here uses stdio: its buffers are allocated lazily by libc and would
 * blur the counts.  Output goes through write(2) only.
 *
 * Every pointer is passed through escape() so that the compiler cannot prove
 * an allocation unused and delete it (GCC removes malloc/free pairs).
 */
#ifndef MEMTRACE_TEST_PROGS_H
#define MEMTRACE_TEST_PROGS_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <malloc.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct counts {
	unsigned long allocs, frees, reallocs, failed, bytes;
	long live_bytes, live_blocks;
};

/* One set of counters per process; atomics because threads share it. */
static struct counts counts;

#define COUNT(field, n) __atomic_add_fetch(&counts.field, (n), __ATOMIC_RELAXED)

static inline void escape(void *p)
{
	__asm__ volatile("" : : "g"(p) : "memory");
}

/* Hides a constant from the optimiser, which otherwise folds or warns about
 * the deliberately absurd sizes some programs pass. */
static inline size_t opaque(size_t x)
{
	__asm__ volatile("" : "+r"(x));
	return x;
}

static inline void write_all(int fd, const char *s, size_t n)
{
	while (n > 0) {
		ssize_t w = write(fd, s, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return;
		s += w;
		n -= (size_t)w;
	}
}

static inline void put_str(int fd, const char *s)
{
	write_all(fd, s, strlen(s));
}

static inline void put_num(int fd, long v)
{
	char buf[24], *p = buf + sizeof buf;
	unsigned long u = v < 0 ? -(unsigned long)v : (unsigned long)v;
	do
		*--p = (char)('0' + u % 10);
	while ((u /= 10) != 0);
	if (v < 0)
		*--p = '-';
	write_all(fd, p, (size_t)(buf + sizeof buf - p));
}

/* Exits with status 99 naming the failed check, so that a broken tracer
 * (or libc surprise) is not mistaken for a counting mismatch. */
#define CHECK(cond)                                                          \
	do {                                                                 \
		if (!(cond)) {                                               \
			put_str(2, __FILE__ ": check failed: " #cond "\n"); \
			_exit(99);                                           \
		}                                                            \
	} while (0)

/* "expect who=<who> allocs=.. frees=.. ..." on stdout. */
static inline void print_counts(const char *who)
{
	/* called once all threads are joined: plain reads are enough */
	struct counts c = counts;
	put_str(1, "expect who=");
	put_str(1, who);
	put_str(1, " allocs=");
	put_num(1, (long)c.allocs);
	put_str(1, " frees=");
	put_num(1, (long)c.frees);
	put_str(1, " reallocs=");
	put_num(1, (long)c.reallocs);
	put_str(1, " failed=");
	put_num(1, (long)c.failed);
	put_str(1, " bytes=");
	put_num(1, (long)c.bytes);
	put_str(1, " live_bytes=");
	put_num(1, c.live_bytes);
	put_str(1, " live_blocks=");
	put_num(1, c.live_blocks);
	put_str(1, "\n");
}

static inline void note_alloc(void *p, size_t n)
{
	if (p == NULL) {
		COUNT(failed, 1);
		return;
	}
	escape(p);
	COUNT(allocs, 1);
	COUNT(bytes, n);
	COUNT(live_bytes, (long)n);
	COUNT(live_blocks, 1);
}

static inline void *c_malloc(size_t n)
{
	void *p = malloc(n);
	note_alloc(p, n);
	return p;
}

static inline void *c_calloc(size_t nmemb, size_t size)
{
	void *p = calloc(nmemb, size);
	note_alloc(p, nmemb * size);
	return p;
}

/* Callers pass the size they allocated: the program knows it, and the
 * counters then track live bytes without asking the allocator. */
static inline void c_free(void *p, size_t n)
{
	escape(p);
	free(p);
	if (p == NULL)
		return;
	COUNT(frees, 1);
	COUNT(live_bytes, -(long)n);
	COUNT(live_blocks, -1);
}

static inline void *c_realloc(void *old, size_t old_n, size_t n)
{
	void *p = realloc(old, n);
	if (old == NULL) {
		note_alloc(p, n);
	} else if (n == 0) {
		/* glibc frees the block and returns NULL */
		COUNT(frees, 1);
		COUNT(live_bytes, -(long)old_n);
		COUNT(live_blocks, -1);
	} else if (p == NULL) {
		COUNT(failed, 1);
	} else {
		escape(p);
		COUNT(reallocs, 1);
		COUNT(bytes, n);
		COUNT(live_bytes, (long)n - (long)old_n);
	}
	return p;
}

#endif
