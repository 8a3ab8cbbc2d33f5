/*
 * trim - memory freed but kept by glibc, and given back.  Mallocs 100 MB
 * in 1,000 blocks of 100,000 bytes (below glibc's 128 KiB mmap threshold,
 * so all from the brk heap), writes them, frees all but the last (which
 * holds the heap top), calls malloc_trim(0), then frees the last.  Marks
 * each step (memtrace_mark, found with dlsym: without the tracer the marks
 * do nothing) and prints its own counts.
 */
#include "progs.h" /* first: _GNU_SOURCE */

#include <dlfcn.h>

#define BLOCKS 1000
#define BLOCK 100000

static void (*mark)(const char *);

static void step(const char *label)
{
	if (mark)
		mark(label);
}

int main(void)
{
	static char *block[BLOCKS];
	mark = (void (*)(const char *))dlsym(RTLD_DEFAULT, "memtrace_mark");
	step("start");
	for (int i = 0; i < BLOCKS; i++) {
		block[i] = c_malloc(BLOCK);
		CHECK(block[i]);
		memset(block[i], i, BLOCK);
	}
	step("allocated");
	for (int i = 0; i < BLOCKS - 1; i++)
		c_free(block[i], BLOCK);
	step("freed all but the last");
	put_str(1, "malloc_trim(0) = ");
	put_num(1, malloc_trim(0));
	put_str(1, "\n");
	step("trimmed");
	c_free(block[BLOCKS - 1], BLOCK);
	step("freed the last");
	print_counts("trim");
	return 0;
}
