/*
 * views.c - known figures for the report's views (test_views.py), with
 * native stacks so that every function is a site of its own:
 *
 *   step "temporaries": temporaries() makes 100,000 blocks of 1,000 bytes,
 *                       each freed at once (100 MB allocated, never more
 *                       than 1,000 bytes live)
 *   step "peak":        peak() holds 3 blocks of 1,500,000 bytes and one of
 *                       40,000,000, then frees them all: the heap's peak
 *   step "small":       small() holds 4,000,000 bytes (two of 2,000,000),
 *                       then frees them: the step's own peak
 *   step "thread":      a thread makes 10 blocks of 300,000 bytes and frees
 *                       them; the main thread waits
 *   step "end"          kept() leaves 7 blocks of 24 bytes live
 *
 * With argument "extra", extra() also keeps one block of 777,777 bytes (the
 * diff tests).  Marks go through memtrace_mark, found with dlsym.  Built
 * with -fno-optimize-sibling-calls: every function keeps its frame.
 */
#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "progs.h"

static void (*mark)(const char *);

static void step(const char *label)
{
	if (mark)
		mark(label);
}

__attribute__((noinline)) static void temporaries(void)
{
	for (int i = 0; i < 100000; i++) {
		void *p = malloc(opaque(1000));
		escape(p);
		free(p);
	}
}

__attribute__((noinline)) static void peak(void)
{
	void *p[4];
	for (int i = 0; i < 3; i++)
		escape(p[i] = malloc(opaque(1500000)));
	escape(p[3] = malloc(opaque(40000000)));
	for (int i = 0; i < 4; i++)
		free(p[i]);
}

__attribute__((noinline)) static void small(void)
{
	void *a = malloc(opaque(2000000)), *b = malloc(opaque(2000000));
	escape(a);
	escape(b);
	free(a);
	free(b);
}

__attribute__((noinline)) static void *worker(void *unused)
{
	void *p[10];
	(void)unused;
	for (int i = 0; i < 10; i++)
		escape(p[i] = malloc(opaque(300000)));
	for (int i = 0; i < 10; i++)
		free(p[i]);
	return NULL;
}

static void *volatile keep[8];

__attribute__((noinline)) static void kept(void)
{
	for (int i = 0; i < 7; i++)
		keep[i] = malloc(opaque(24));
}

__attribute__((noinline)) static void extra(void)
{
	keep[7] = malloc(opaque(777777));
}

int main(int argc, char **argv)
{
	pthread_t t;
	mark = (void (*)(const char *))dlsym(RTLD_DEFAULT, "memtrace_mark");
	step("temporaries");
	temporaries();
	step("peak");
	peak();
	step("small");
	small();
	step("thread");
	if (pthread_create(&t, NULL, worker, NULL) || pthread_join(t, NULL))
		return 1;
	step("end");
	kept();
	if (argc > 1 && !strcmp(argv[1], "extra"))
		extra();
	write_all(1, "done\n", 5);
	return 0;
}
