/*
 * strtab.h - a table of distinct strings, each numbered in the order it was
 * first added: the string table of a pprof profile, the frame names of a
 * speedscope file.  Strings are copied, so callers may add temporaries.
 */
#ifndef MEMTRACE_STRTAB_H
#define MEMTRACE_STRTAB_H

#include <stddef.h>
#include <stdint.h>

#include "heapmap.h"

struct mt_strtab {
	char **v;           /* v[i]: string i */
	size_t n, cap;
	struct heapmap map; /* hash (probed on) -> index */
};

/* 0, or -1 when out of memory. */
int mt_strtab_init(struct mt_strtab *t);
void mt_strtab_free(struct mt_strtab *t);
/* The number of s (NULL counts as ""); UINT32_MAX when out of memory. */
uint32_t mt_strtab_add(struct mt_strtab *t, const char *s);

#endif
