/*
 * exit_now - leaks 10 + 20 + 30 bytes in 3 blocks, then leaves with
 * _exit(7): no atexit handlers, no destructors, so a tracer that flushes
 * only from those would lose the trace.
 */
#include "progs.h"

int main(void)
{
	for (size_t n = 10; n <= 30; n += 10)
		CHECK(c_malloc(n) != NULL);
	void *p = c_calloc(4, 4);
	CHECK(p != NULL);
	c_free(p, 16);
	print_counts("exit_now");
	_exit(7);
}
