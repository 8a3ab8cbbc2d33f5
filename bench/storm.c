/*
 * storm - a multi-threaded malloc/free storm for measuring tracer overhead.
 *
 * usage: storm THREADS ITERATIONS
 *
 * Each thread keeps a window of 64 live blocks; every iteration frees the
 * oldest and allocates a new one of a small pseudo-random size (16..527
 * bytes), so glibc's fast paths dominate, as in real allocation-heavy code.
 * Each thread makes exactly ITERATIONS mallocs and ITERATIONS frees, and
 * leaks nothing.  Prints "allocs=N frees=N" with its own totals.
 *
 * THREADS 0 makes the same storm in the main thread alone: a program with
 * one thread, whose every event a tracer records in that thread.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define WINDOW 64

static unsigned long iterations;

static void *run(void *arg)
{
	void *window[WINDOW] = {0};
	uint32_t x = 2463534242u + (uint32_t)(uintptr_t)arg; /* xorshift32 */

	for (unsigned long i = 0; i < iterations; i++) {
		x ^= x << 13;
		x ^= x >> 17;
		x ^= x << 5;
		size_t size = 16 + x % 512;
		unsigned slot = i % WINDOW;
		free(window[slot]);
		window[slot] = malloc(size);
		if (window[slot] == NULL)
			abort();
		/* touch it, as a real program would, and keep the compiler
		 * from dropping the pair */
		*(volatile char *)window[slot] = (char)i;
	}
	for (unsigned i = 0; i < WINDOW; i++)
		free(window[i]);
	return NULL;
}

int main(int argc, char **argv)
{
	if (argc != 3) {
		fprintf(stderr, "usage: storm THREADS ITERATIONS\n");
		return 2;
	}
	int threads = atoi(argv[1]);
	iterations = strtoul(argv[2], NULL, 10);
	if (threads < 0 || threads > 256)
		return 2;
	if (threads == 0) {
		run(NULL);
		printf("allocs=%lu frees=%lu\n", iterations, iterations);
		return 0;
	}

	pthread_t tids[256];
	for (int i = 0; i < threads; i++)
		if (pthread_create(&tids[i], NULL, run, (void *)(uintptr_t)i) != 0)
			return 1;
	for (int i = 0; i < threads; i++)
		pthread_join(tids[i], NULL);

	unsigned long total = (unsigned long)threads * iterations;
	printf("allocs=%lu frees=%lu\n", total, total);
	return 0;
}
