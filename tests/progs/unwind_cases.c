/*
 * unwind_cases - allocations under the frames that a native stack walk
 * finds hard, for comparing memtrace's own walk with libunwind's:
 *   - a deep recursion (the same callers again and again);
 *   - a frame sized at run time (alloca: its CFA follows rbp);
 *   - a frame realigned to 64 bytes (its CFA is a DWARF expression);
 *   - a signal handler (a signal frame in the stack);
 *   - a thread (the stack ends in clone3, not _start);
 *   - with a library path as argument: a library loaded, called, unloaded,
 *     twice (what was learnt about its addresses must be forgotten).
 * Each path allocates PER_PATH blocks of its own size (106 for each round
 * of the library) and frees them.
 */
#define _GNU_SOURCE
#include <alloca.h>
#include <dlfcn.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#define PER_PATH 3

static void *volatile sink;

static __attribute__((noinline)) void allocate(size_t size)
{
	for (int i = 0; i < PER_PATH; i++) {
		sink = malloc(size);
		free(sink);
	}
}

static __attribute__((noinline)) int recurse(int depth)
{
	if (depth == 0) {
		allocate(101);
		return 0;
	}
	return recurse(depth - 1) + 1;
}

static __attribute__((noinline)) void with_alloca(size_t n)
{
	char *buf = alloca(n);
	memset(buf, 1, n);
	allocate(102 + (size_t)buf[n - 1] - 1);
}

static __attribute__((noinline)) void realigned(void)
{
	_Alignas(64) char buf[64];
	memset(buf, 2, sizeof buf);
	allocate(103 + (size_t)buf[5] - 2);
}

static void on_signal(int sig)
{
	(void)sig;
	allocate(104);
}

static void *thread_main(void *arg)
{
	(void)arg;
	recurse(5);
	allocate(105);
	return NULL;
}

static int load_call_unload(const char *path)
{
	void *h = dlopen(path, RTLD_NOW);
	void *(*lib_alloc)(size_t) = h ? (void *(*)(size_t))dlsym(h, "nstack_lib_alloc") : NULL;
	if (!lib_alloc)
		return -1;
	for (int i = 0; i < PER_PATH; i++)
		free(lib_alloc(106));
	return dlclose(h);
}

int main(int argc, char **argv)
{
	recurse(40);
	with_alloca(300);
	realigned();
	signal(SIGUSR1, on_signal);
	raise(SIGUSR1);
	pthread_t t;
	if (pthread_create(&t, NULL, thread_main, NULL) || pthread_join(t, NULL))
		return 1;
	for (int round = 0; argc > 1 && round < 2; round++)
		if (load_call_unload(argv[1]))
			return 1;
	return 0;
}
