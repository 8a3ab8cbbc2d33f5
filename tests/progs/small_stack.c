/*
 * small_stack - a thread with the smallest stack POSIX allows.  glibc puts
 * every thread's static TLS on its stack, so a tracer with much TLS would
 * make pthread_create fail here with EINVAL.  The thread makes ALLOCS
 * allocations of 40 bytes and frees them; prints "create=RC".
 */
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

#define ALLOCS 7

static void *run(void *arg)
{
	(void)arg;
	for (int i = 0; i < ALLOCS; i++) {
		void *volatile p = malloc(40);
		free(p);
	}
	return NULL;
}

int main(void)
{
	pthread_attr_t attr;
	pthread_t t;
	if (pthread_attr_init(&attr) || pthread_attr_setstacksize(&attr, PTHREAD_STACK_MIN))
		return 2;
	int rc = pthread_create(&t, &attr, run, NULL);
	printf("create=%d\n", rc);
	if (rc == 0)
		pthread_join(t, NULL);
	return rc ? 1 : 0;
}
