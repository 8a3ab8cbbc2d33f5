/*
 * grow.h - the growing arrays of the reporter's tables and exports.
 */
#ifndef MEMTRACE_GROW_H
#define MEMTRACE_GROW_H

#include <stddef.h>
#include <stdlib.h>

/* Grows the array *p of *cap elements of `size` bytes to hold `need`,
 * doubling from 64; -1 when out of memory (the array is then unchanged). */
static inline int mt_grow(void **p, size_t *cap, size_t need, size_t size)
{
	if (need <= *cap)
		return 0;
	size_t n = *cap ? *cap : 64;
	while (n < need)
		n *= 2;
	void *q = realloc(*p, n * size);
	if (!q)
		return -1;
	*p = q;
	*cap = n;
	return 0;
}

#endif
