/*
 * deep - allocations under a deep call stack, as in large C and C++
 * programs: the cost of native stacks grows with the number of frames.
 *
 * usage: deep DEPTH ITERATIONS
 *
 * A recursion DEPTH frames deep, then ITERATIONS rounds, each calling one
 * of eight leaf paths (two frames of their own) that mallocs and frees a
 * block.  Prints "allocs=N frees=N".
 */
#include <stdio.h>
#include <stdlib.h>

static void *volatile sink;

static __attribute__((noinline)) void leaf(size_t size)
{
	sink = malloc(size);
	if (!sink)
		abort();
	free(sink);
}

/* eight call sites, so that successive stacks differ in their last frames */
static __attribute__((noinline)) void branch(unsigned long i)
{
	switch (i % 8) {
	case 0: leaf(16); break;
	case 1: leaf(32); break;
	case 2: leaf(48); break;
	case 3: leaf(64); break;
	case 4: leaf(80); break;
	case 5: leaf(96); break;
	case 6: leaf(112); break;
	default: leaf(128); break;
	}
}

static __attribute__((noinline)) int descend(int depth, unsigned long iterations)
{
	if (depth == 0) {
		for (unsigned long i = 0; i < iterations; i++)
			branch(i);
		return 0;
	}
	int r = descend(depth - 1, iterations);
	__asm__ volatile("" ::: "memory"); /* no tail call: every level keeps its frame */
	return r + 1;
}

int main(int argc, char **argv)
{
	if (argc != 3) {
		fprintf(stderr, "usage: deep DEPTH ITERATIONS\n");
		return 2;
	}
	int depth = atoi(argv[1]);
	unsigned long iterations = strtoul(argv[2], NULL, 10);
	if (depth < 0 || depth > 10000)
		return 2;
	descend(depth, iterations);
	printf("allocs=%lu frees=%lu\n", iterations, iterations);
	return 0;
}
