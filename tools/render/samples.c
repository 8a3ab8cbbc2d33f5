/*
 * samples.c - see samples.h.
 */
#include "samples.h"

#include <stdlib.h>

int mt_samples(const struct mt_report *rep, enum mt_inuse_at at, mt_sample_fn *fn, void *arg)
{
	for (size_t i = 0; i < rep->nsites; i++) {
		const struct mt_site *s = &rep->sites[i];
		struct mt_sample sm = { .site = s };
		bool exit = at == MT_INUSE_EXIT;
		sm.value[MT_ALLOC_OBJECTS] = s->allocs;
		sm.value[MT_ALLOC_SPACE] = s->bytes;
		sm.value[MT_INUSE_OBJECTS] = exit ? s->live_blocks : s->peak_blocks;
		sm.value[MT_INUSE_SPACE] = exit ? s->live_bytes : s->peak_bytes;
		if (!(sm.value[0] | sm.value[1] | sm.value[2] | sm.value[3]))
			continue; /* a place of a per-thread build, or nothing left */
		struct mt_snode *stack;
		sm.depth = mt_site_stack(rep, s, &stack);
		if (!sm.depth && (s->frame || s->stack))
			return -1; /* it has frames: out of memory */
		sm.stack = stack;
		int r = fn(arg, &sm);
		free(stack);
		if (r)
			return r;
	}
	return 0;
}
