/*
 * strtab.c - see strtab.h.  A string's 64-bit FNV-1a hash is its key in the
 * map; on the rare collision the next key is tried.
 */
#include "strtab.h"

#include <stdlib.h>
#include <string.h>

int mt_strtab_init(struct mt_strtab *t)
{
	memset(t, 0, sizeof *t);
	return hm_init(&t->map);
}

void mt_strtab_free(struct mt_strtab *t)
{
	for (size_t i = 0; i < t->n; i++)
		free(t->v[i]);
	free(t->v);
	hm_free(&t->map);
	memset(t, 0, sizeof *t);
}

static uint64_t fnv1a(const char *s)
{
	uint64_t h = 0xcbf29ce484222325ull;
	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 0x100000001b3ull;
	return h;
}

uint32_t mt_strtab_add(struct mt_strtab *t, const char *s)
{
	uint64_t h, v, unused;
	if (!s)
		s = "";
	for (h = fnv1a(s); hm_get(&t->map, h, &v); h++)
		if (!strcmp(t->v[v], s))
			return (uint32_t)v;
	if (t->n >= UINT32_MAX - 1)
		return UINT32_MAX;
	if (t->n == t->cap) {
		size_t cap = t->cap ? 2 * t->cap : 256;
		char **p = realloc(t->v, cap * sizeof *p);
		if (!p)
			return UINT32_MAX;
		t->v = p;
		t->cap = cap;
	}
	char *copy = strdup(s);
	if (!copy || hm_put(&t->map, h, t->n, &unused) < 0) {
		free(copy);
		return UINT32_MAX;
	}
	t->v[t->n] = copy;
	return (uint32_t)t->n++;
}
