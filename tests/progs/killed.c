/*
 * killed - allocates N blocks (sizes 1..64, never freed), sleeps long enough
 * for the tracer's writer to flush them (it does so at least every 100 ms),
 * then kills itself with SIGKILL: no exit path runs at all.
 *
 * usage: killed N
 */
#include <signal.h>
#include <time.h>

#include "progs.h"

int main(int argc, char **argv)
{
	CHECK(argc == 2);
	const unsigned long n = strtoul(argv[1], NULL, 10);

	for (unsigned long i = 0; i < n; i++)
		CHECK(c_malloc(1 + i % 64) != NULL);
	print_counts("killed");

	struct timespec ts = {.tv_sec = 0, .tv_nsec = 500 * 1000 * 1000};
	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
	raise(SIGKILL);
	return 1;
}
