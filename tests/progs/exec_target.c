/*
 * exec_target - what exec runs: leaks 4321 bytes in one block, after a few
 * allocations and reallocs that it frees.
 */
#include "progs.h"

int main(int argc, char **argv)
{
	CHECK(argc == 2 && strcmp(argv[1], "from-exec") == 0);
	void *p = c_malloc(8);
	CHECK(p != NULL);
	for (size_t n = 16; n <= 4096; n *= 2) {
		p = c_realloc(p, n / 2, n);
		CHECK(p != NULL);
	}
	c_free(p, 4096);
	CHECK(c_malloc(4321) != NULL);
	print_counts("exec_target");
	return 0;
}
