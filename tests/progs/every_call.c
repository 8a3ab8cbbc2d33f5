/*
 * every_call - calls every malloc-family function once or more, edge cases
 * included, checks what libc returned, and prints its own counts.
 *
 * Leaks exactly four blocks on purpose: 0 bytes (malloc), 100 (malloc),
 * 200 (calloc) and 300 (posix_memalign): 600 bytes in 4 blocks.
 *
 * valgrind 3.19 aborts the program on pvalloc, so when the harness sets
 * PROGS_UNDER_VALGRIND the pvalloc call is skipped.  Its block is freed at
 * once, so the figures at exit are the same either way.  valgrind's calloc
 * also leaves errno alone on overflow, hence the same switch there.
 */
#include "progs.h"

static void *freed_at_exit;

/* Runs after main returns: a tracer must still record this free. */
static void free_at_exit(void)
{
	c_free(freed_at_exit, 64);
	print_counts("every_call");
}

int main(void)
{
	const int under_valgrind = getenv("PROGS_UNDER_VALGRIND") != NULL;
	const size_t page = (size_t)sysconf(_SC_PAGESIZE);
	void *p, *q;
	int rc;

	/* plain malloc and free, malloc(0), free(NULL) */
	p = c_malloc(1000);
	CHECK(p != NULL && malloc_usable_size(p) >= 1000);
	memset(p, 1, 1000);
	c_free(p, 1000);
	c_free(NULL, 0); /* not an event */
	CHECK(c_malloc(0) != NULL); /* leaked: a live block of 0 bytes */
	CHECK(c_malloc(100) != NULL); /* leaked */

	/* calloc, calloc(0, n), calloc overflow */
	p = c_calloc(10, 20);
	CHECK(p != NULL);
	for (int i = 0; i < 200; i++)
		CHECK(((unsigned char *)p)[i] == 0);
	c_free(p, 200);
	p = c_calloc(0, 16);
	CHECK(p != NULL);
	c_free(p, 0);
	CHECK(c_calloc(2, 100) != NULL); /* leaked */
	errno = 0;
	CHECK(c_calloc(opaque(SIZE_MAX / 2), 4) == NULL);
	CHECK(under_valgrind || errno == ENOMEM);

	/* malloc failure */
	errno = 0;
	CHECK(c_malloc(opaque((size_t)PTRDIFF_MAX + 1)) == NULL);
	CHECK(errno == ENOMEM);

	/* realloc: from NULL, growing (moves), shrinking, failing, to zero */
	p = c_realloc(NULL, 0, 16);
	CHECK(p != NULL);
	memset(p, 7, 16);
	p = c_realloc(p, 16, 100000);
	CHECK(p != NULL && ((unsigned char *)p)[15] == 7);
	p = c_realloc(p, 100000, 50);
	CHECK(p != NULL && ((unsigned char *)p)[15] == 7);
	errno = 0;
	q = c_realloc(p, 50, opaque(SIZE_MAX - 4096));
	CHECK(q == NULL && errno == ENOMEM); /* p stays live */
	CHECK(((unsigned char *)p)[15] == 7);
	CHECK(c_realloc(p, 50, 0) == NULL); /* glibc frees p */
	p = c_realloc(NULL, 0, 0); /* malloc(0): a unique pointer */
	CHECK(p != NULL);
	c_free(p, 0);

	/* reallocarray: from NULL, growing, overflow */
	p = reallocarray(NULL, 10, 10);
	note_alloc(p, 100);
	CHECK(p != NULL);
	q = reallocarray(p, 20, 10);
	CHECK(q != NULL);
	COUNT(reallocs, 1);
	COUNT(bytes, 200);
	COUNT(live_bytes, 100);
	escape(q);
	p = q;
	errno = 0;
	q = reallocarray(p, opaque(SIZE_MAX / 2), 4);
	CHECK(q == NULL && errno == ENOMEM);
	COUNT(failed, 1);
	c_free(p, 200);

	/* the aligned family */
	rc = posix_memalign(&p, 64, 200);
	CHECK(rc == 0 && (uintptr_t)p % 64 == 0);
	note_alloc(p, 200);
	c_free(p, 200);
	rc = posix_memalign(&p, 32, 300);
	CHECK(rc == 0 && (uintptr_t)p % 32 == 0);
	note_alloc(p, 300); /* leaked */
	q = (void *)0x1;
	rc = posix_memalign(&q, opaque(24), 10); /* not a power of two */
	CHECK(rc == EINVAL && q == (void *)0x1);
	COUNT(failed, 1);

	p = aligned_alloc(256, 512);
	CHECK(p != NULL && (uintptr_t)p % 256 == 0);
	note_alloc(p, 512);
	c_free(p, 512);

	p = memalign(4096, 100);
	CHECK(p != NULL && (uintptr_t)p % 4096 == 0);
	note_alloc(p, 100);
	c_free(p, 100);

	p = valloc(300);
	CHECK(p != NULL && (uintptr_t)p % page == 0);
	note_alloc(p, 300);
	c_free(p, 300);

	if (!under_valgrind) {
		p = pvalloc(100);
		CHECK(p != NULL && (uintptr_t)p % page == 0);
		CHECK(malloc_usable_size(p) >= page);
		note_alloc(p, page); /* pvalloc's block is whole pages */
		c_free(p, page);
	}

	freed_at_exit = c_malloc(64);
	CHECK(freed_at_exit != NULL);
	CHECK(atexit(free_at_exit) == 0);
	return 0;
}
