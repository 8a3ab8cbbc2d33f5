/*
 * native_stacks.c - known call paths for the native stack tests
 * (tests/integration/test_native.py): main -> level_a -> level_b -> malloc,
 * main -> level_a -> inlined_c (always inlined into level_a) -> malloc, and
 * main -> nstack_lib_alloc in a library loaded with dlopen (argv[1]).  The
 * tests find the lines by the SITE_* markers.  Built with
 * -fno-optimize-sibling-calls so that no frame is a tail call.
 */
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void *volatile keep[8];

__attribute__((noinline)) static void *level_b(size_t n)
{
	void *p = malloc(n); /* SITE_B */
	memset(p, 1, n);
	return p;
}

__attribute__((always_inline)) static inline void *inlined_c(size_t n)
{
	void *p = malloc(n); /* SITE_C */
	memset(p, 2, n);
	return p;
}

__attribute__((noinline)) static void *level_a(size_t n, int inl)
{
	void *p = inl ? inlined_c(n) : level_b(n); /* SITE_A */
	keep[inl] = p;
	return p;
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: native_stacks LIB\n");
		return 2;
	}
	void *h = dlopen(argv[1], RTLD_NOW);
	if (!h) {
		fprintf(stderr, "%s\n", dlerror());
		return 1;
	}
	void *(*lib_alloc)(size_t) = (void *(*)(size_t))dlsym(h, "nstack_lib_alloc");
	if (!lib_alloc)
		return 1;
	keep[2] = level_a(100000, 0); /* SITE_MAIN_B */
	keep[3] = level_a(200000, 1); /* SITE_MAIN_C */
	keep[4] = lib_alloc(300000); /* SITE_MAIN_LIB */
	printf("done\n");
	return 0;
}
