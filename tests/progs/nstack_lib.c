/*
 * nstack_lib.c - a shared library for the native stack tests: loaded with
 * dlopen by native_stacks.c and with ctypes by a Python script.
 */
#include <stdlib.h>
#include <string.h>

__attribute__((noinline)) void *nstack_lib_alloc(size_t n)
{
	void *p = malloc(n); /* SITE_LIB */
	if (p)
		memset(p, 3, n);
	return p;
}
