/*
 * report.c - builds a struct mt_report by streaming a trace: one block in
 * memory at a time (read and decompressed ahead on a second thread), live
 * blocks in per-domain hash maps or, inside pymalloc arenas, in the
 * arenas' own tables, so memory follows the live allocations (and the
 * number of sites) and never the trace length.  This file does the
 * per-domain accounting and hands every block that enters or leaves the
 * heap to the analyses of analysis.h.
 */
#include "report.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "analysis.h"
#include "codec.h"
#include "stacks.h"

const char *mt_domain_name(int dom)
{
	static const char *const names[MT_DOM_COUNT] = { "malloc", "pymem_raw", "pymem_mem",
							  "pymem_obj" };
	return names[dom];
}

const char *mt_end_reason_name(int reason)
{
	switch (reason) {
	case MT_REASON_NONE:
		return NULL;
	case MT_END_EXIT:
		return "exit";
	case MT_END_EXEC:
		return "exec";
	case MT_END__EXIT:
		return "_exit";
	default:
		return "unknown";
	}
}

/* ---- live blocks ----------------------------------------------------------- */

static inline uint64_t unpack_size(struct ctx *c, int dom, uint64_t addr, uint64_t val,
				   bool take);

uint64_t block_size(struct ctx *c, int dom, uint64_t addr, uint64_t val)
{
	return unpack_size(c, dom, addr, val, false);
}

static inline uint64_t pack(struct ctx *c, int dom, uint64_t addr, uint64_t size, uint32_t tag)
{
	uint64_t unused;
	if (__builtin_expect(size >= SIZE_BIG, 0)) {
		if (hm_put(&c->big[dom], addr, size, &unused) < 0)
			c->oom = true;
		return SIZE_BIG << TAG_BITS | tag;
	}
	return size << TAG_BITS | tag;
}

/* The size of a packed value; take: the block leaves the map. */
static inline uint64_t unpack_size(struct ctx *c, int dom, uint64_t addr, uint64_t val, bool take)
{
	uint64_t size = val_size_field(val);
	if (__builtin_expect(size == SIZE_BIG, 0)) {
		bool ok = take ? hm_del(&c->big[dom], addr, &size)
			       : hm_get(&c->big[dom], addr, &size);
		if (!ok)
			size = SIZE_BIG;
	}
	return size;
}

/* Where a PyMem/PyObject block lives: inside a pymalloc arena (its table
 * entry and its pool) or not (w->a NULL: in the domain's live map). */
struct where {
	struct arena_slot *a;
	uint64_t *pool;
	uint64_t g;
};

static inline bool in_arena(struct ctx *c, int dom, uint64_t addr, struct where *w)
{
	w->a = NULL;
	if (dom < MT_DOM_PYMEM || (addr & ((1u << GRANULE_SHIFT) - 1)) || !c->pools.pools.used)
		return false;
	uint64_t *pool = pools_ref(c, addr);
	if (!pool)
		return false;
	struct arena_slot *a = &c->pools.slots[pool_slot(*pool)];
	if (!a->tags && pools_tables(c, a))
		return false;
	w->a = a;
	w->pool = pool;
	w->g = (addr - a->base) >> GRANULE_SHIFT;
	return true;
}

/* The accounting of a block entering the heap (its entry is in place). */
static inline __attribute__((always_inline)) void
account_in(struct ctx *c, int dom, uint64_t size, uint32_t tag, const struct where *w,
	   bool keep_class)
{
	struct mt_dom_stats *s = &c->rep->dom[dom];
	s->live_bytes += size;
	if (s->live_bytes > s->peak_bytes)
		s->peak_bytes = s->live_bytes;
	if (c->heap_doms & (1u << dom))
		heap_up(c, size);
	if (tag & TAG_OWN) {
		c->own_live++;
		c->own_bytes += size;
		c->rep->heap.own_in++;
		if (c->heap_arenas) /* unfiltered: the heap is malloc's, arenas, these */
			heap_up(c, size);
	}
	if (site_counts(val_site(tag)))
		site_add(c, val_site(tag), size);
	if (w->a)
		pools_block_add(c, w->pool, w->a, w->a->base + (w->g << GRANULE_SHIFT), size,
				keep_class);
}

/* The accounting of a block leaving the heap (its entry is gone). */
static inline __attribute__((always_inline)) void
account_out(struct ctx *c, int dom, uint64_t size, uint32_t tag, const struct where *w)
{
	c->rep->dom[dom].live_bytes -= size;
	if (c->heap_doms & (1u << dom))
		heap_down(c, size);
	if (tag & TAG_OWN) {
		c->own_live--;
		c->own_bytes -= size;
		if (c->heap_arenas)
			heap_down(c, size);
	}
	if (site_counts(val_site(tag))) {
		site_sub(c, val_site(tag), size);
		if (__builtin_expect(tag & TAG_OLD, 0))
			view_old_gone(c, val_site(tag), size);
	}
	if (w->a)
		pools_block_del(c, w->pool, w->a, size);
}

/* An address already live: the block before was never freed in the
 * trace.  It leaves the heap in favour of the new one. */
static void evict(struct ctx *c, int dom, int odom, uint64_t addr, uint64_t osize, uint32_t otag,
		  const struct where *w)
{
	c->rep->dom[dom].inconsistent++;
	account_out(c, odom, osize, otag, w);
	if (otag & TAG_CHAIN)
		lists_end(c, addr, otag, osize);
}

/* Puts a block into its arena table or live map, and into the heap. */
static void attach(struct ctx *c, int dom, uint64_t addr, uint64_t size, uint32_t tag,
		   bool keep_class)
{
	struct where w;
	uint64_t old;
	if (size <= UINT16_MAX && in_arena(c, dom, addr, &w)) {
		uint32_t *t = &w.a->tags[w.g];
		tag &= ~TAG_OWN; /* the arena is in the heap */
		if (__builtin_expect(*t & ATAG_LIVE, 0)) {
			int odom = *t & ATAG_OBJ ? MT_DOM_PYOBJ : MT_DOM_PYMEM;
			c->pools.table_blocks[odom]--;
			evict(c, dom, odom, addr, w.a->sizes[w.g], *t & ((1u << TAG_BITS) - 1), &w);
		}
		*t = tag | ATAG_LIVE | (dom == MT_DOM_PYOBJ ? ATAG_OBJ : 0);
		w.a->sizes[w.g] = (uint16_t)size;
		c->pools.table_blocks[dom]++;
		account_in(c, dom, size, tag, &w, keep_class);
		return;
	}
	w.a = NULL;
	int r = hm_put(&c->live[dom], addr, pack(c, dom, addr, size, tag), &old);
	if (__builtin_expect(r != 0, 0)) {
		if (r < 0) {
			c->oom = true;
			return;
		}
		uint64_t osize = val_size_field(old);
		if (osize == SIZE_BIG && size < SIZE_BIG && !hm_del(&c->big[dom], addr, &osize))
			osize = SIZE_BIG; /* else the new size replaced it: a hostile trace */
		evict(c, dom, dom, addr, osize, val_tag(old), &w);
	}
	account_in(c, dom, size, tag, &w, keep_class);
}

/* Takes a block out of its table or map and the heap; false if it was not
 * live. */
static bool detach(struct ctx *c, int dom, uint64_t addr, uint64_t *val, uint64_t *size)
{
	struct where w;
	if (in_arena(c, dom, addr, &w)) {
		uint32_t t = w.a->tags[w.g];
		if ((t & ATAG_LIVE) && !(t & ATAG_OBJ) == (dom == MT_DOM_PYMEM)) {
			w.a->tags[w.g] = 0;
			*size = w.a->sizes[w.g];
			*val = *size << TAG_BITS | (t & ((1u << TAG_BITS) - 1));
			c->pools.table_blocks[dom]--;
			account_out(c, dom, *size, val_tag(*val), &w);
			return true;
		}
	}
	if (!hm_del(&c->live[dom], addr, val))
		return false;
	w.a = NULL;
	*size = unpack_size(c, dom, addr, *val, true);
	account_out(c, dom, *size, val_tag(*val), &w);
	return true;
}

/* ---- what every new block goes through ---------------------------------------- */

/* A new block of a domain above malloc at the address the thread's
 * previous allocation got from a lower domain: that one is its layer, and
 * its bytes are the new block's from now on. */
static void layer_found(struct ctx *c, struct thread *t, int low, uint64_t addr)
{
	uint64_t val, unused;
	if (!hm_get(&c->live[low], addr, &val) || val_site(val) == SITE_LAYERED)
		return;
	uint32_t site = val_site(val);
	if (site_counts(site)) {
		uint64_t size = unpack_size(c, low, addr, val, false);
		struct mt_site *s = &c->rep->sites[site];
		site_unlayer(c, site, size);
		s->allocs--;
		s->bytes -= size;
		hist_sub(c->rep, size);
		c->cnt.allocs--;
		t->allocs--;
		t->bytes -= size;
	}
	hm_put(&c->live[low], addr, (val & ~(uint64_t)(SITE_MASK | TAG_OLD)) | SITE_LAYERED,
	       &unused);
}

static inline void layer_below(struct ctx *c, struct thread *t, int dom, uint64_t addr)
{
	int low = t->last_dom;
	/* PyMem and PyObject blocks are never under another one */
	if (low < 0 || low >= dom || low > MT_DOM_PYRAW || t->last_addr != addr || !addr)
		return;
	layer_found(c, t, low, addr);
}

/* A block counted at site (in view): in the site, the histogram and the
 * thread's figures (a line's allocations are its sites' copies': lines.c). */
static inline void count_alloc(struct ctx *c, struct thread *t, uint32_t site, uint64_t size)
{
	struct mt_site *st = &c->rep->sites[site];
	st->allocs++;
	st->bytes += size;
	hist_add(c->rep, size);
	t->allocs++;
	t->bytes += size;
}

/* Whether a new PyMem/PyObject block lies inside the block the thread's
 * previous allocation got from a lower domain: its bytes are that block's
 * (pymalloc handing a large request to PyMem_RawMalloc, debug hooks adding
 * guard bytes around it).  From 3.13 on, a block that is in neither such a
 * block nor a pymalloc arena (attach) comes from an allocator whose memory
 * the trace does not see, mimalloc: it is TAG_OWN, in the heap by itself.
 * Before 3.13 there was no such allocator. */
static inline bool from_below(const struct thread *t, int dom, uint64_t addr)
{
	return t->last_dom >= 0 && t->last_dom <= MT_DOM_PYRAW && t->last_dom < dom &&
	       addr - t->last_addr < t->last_size;
}

static inline uint32_t own_tag(const struct ctx *c, const struct thread *t, int dom,
			       uint64_t addr)
{
	return c->mimalloc && dom >= MT_DOM_PYMEM && !from_below(t, dom, addr) ? TAG_OWN : 0;
}

static inline void class_count(uint64_t *counts, int dom, uint64_t size)
{
	if (dom >= MT_DOM_PYMEM && size - 1 < 16 * MT_SIZE_CLASSES)
		counts[(size - 1) >> 4]++;
}

/* A new block from malloc, calloc, the aligned family or realloc(NULL)
 * (list_start: a PYMEM realloc(NULL), which may start a list buffer). */
static void allocated(struct ctx *c, int dom, uint64_t size, uint64_t addr, bool list_start)
{
	struct mt_dom_stats *s = &c->rep->dom[dom];
	struct thread *t = cur_thread(c);
	if (!addr) {
		s->failed++;
		return;
	}
	s->allocs++;
	s->bytes_allocated += size;
	c->cnt.dom_allocs[dom]++;
	class_count(c->cnt.class_allocs, dom, size);
	uint32_t site = site_of(c, t, dom), tag = site | own_tag(c, t, dom, addr);
	if (dom > MT_DOM_MALLOC)
		layer_below(c, t, dom, addr);
	bool counts = site_counts(site);
	if (list_start && counts)
		tag |= lists_realloc(c, 0, 0, 0, addr, size, site);
	attach(c, dom, addr, size, tag, false);
	if (counts) {
		count_alloc(c, t, site, size);
		c->cnt.allocs++;
	}
	t->last_addr = addr;
	t->last_size = size;
	t->last_dom = dom;
	if (c->free_threaded)
		t->fresh = dom == MT_DOM_PYMEM ? addr : 0;
}

/* The end of a block: free, realloc(p, 0).  The block is already detached
 * (found: it was live, with val and size). */
static void released(struct ctx *c, int dom, uint64_t addr, bool found, uint64_t val,
		     uint64_t size)
{
	struct mt_dom_stats *s = &c->rep->dom[dom];
	struct thread *t = cur_thread(c);
	s->frees++;
	c->cnt.dom_frees[dom]++;
	if (!found) {
		s->unmatched_frees++;
		return;
	}
	class_count(c->cnt.class_frees, dom, size);
	uint32_t tag = val_tag(val);
	if (tag & TAG_CHAIN)
		lists_end(c, addr, tag, size);
	if (!site_counts(val_site(tag)))
		return;
	c->cnt.frees++;
	struct mt_script_line *l = line_of(c, t->line);
	if (l) {
		l->frees++;
		l->bytes_freed += size;
	}
	if (t->last_dom == dom && t->last_addr == addr) {
		/* freed before the thread allocated anything else */
		struct mt_site *st = &c->rep->sites[val_site(tag)];
		st->temp_allocs++;
		st->temp_bytes += size;
		c->rep->temp_allocs++;
		c->rep->temp_bytes += size;
		t->last_dom = -1;
	}
}

/* A layered block was freed: the blocks above it at its address are gone
 * with it, whether or not the trace showed their frees.  CPython frees
 * some blocks of its start-up and shutdown through the default raw
 * allocator it switches to for a moment, not through the one that
 * allocated them; with the tracer's hook on the raw domain that free is
 * seen only in malloc. */
static void free_layers_above(struct ctx *c, int dom, uint64_t addr)
{
	uint64_t val, size;
	for (int up = MT_DOM_PYOBJ; up > dom; up--)
		if (detach(c, up, addr, &val, &size)) {
			c->rep->dom[up].freed_below++;
			if (val_tag(val) & TAG_CHAIN)
				lists_end(c, addr, val_tag(val), size);
		}
}

/* Free-threaded builds: a PyMem free right after the thread's last
 * allocation may be list_resize() moving a list (lists.c). */
static uint64_t freed_fresh(struct ctx *c, int dom, uint64_t addr, bool found, uint64_t val,
			    uint64_t size)
{
	struct thread *t = cur_thread(c);
	if (t->fresh && found && dom == MT_DOM_PYMEM)
		lists_moved(c, t, addr, &val, size);
	t->fresh = 0;
	return val;
}

static inline void freed(struct ctx *c, int dom, uint64_t addr)
{
	uint64_t val = 0, size = 0;
	bool found = detach(c, dom, addr, &val, &size);
	if (__builtin_expect(found && val_site(val) == SITE_LAYERED, 0))
		free_layers_above(c, dom, addr);
	if (c->free_threaded)
		val = freed_fresh(c, dom, addr, found, val, size);
	released(c, dom, addr, found, val, size);
}

/* The new block of a successful realloc; the old one (old_val, old_size,
 * when found) is already detached. */
static void resized(struct ctx *c, int dom, uint64_t old, bool found, uint64_t old_val,
		    uint64_t old_size, uint64_t size, uint64_t addr)
{
	struct thread *t = cur_thread(c);
	struct mt_dom_stats *s = &c->rep->dom[dom];
	s->reallocs++;
	s->bytes_allocated += size;
	if (found && addr != old)
		c->cnt.dom_copied[dom] += old_size < size ? old_size : size;
	uint32_t otag = found ? val_tag(old_val) : 0;
	bool layered = found && val_site(otag) == SITE_LAYERED;
	uint32_t site = layered ? SITE_LAYERED : site_of(c, t, dom), tag = site;
	bool counts = site_counts(site);
	tag |= own_tag(c, t, dom, addr);
	if (dom > MT_DOM_MALLOC && !layered)
		layer_below(c, t, dom, addr);
	if (dom == MT_DOM_PYMEM && counts && !c->free_threaded)
		tag |= lists_realloc(c, found ? old : 0, otag, old_size, addr, size, site);
	else if (otag & TAG_CHAIN)
		lists_end(c, old, otag, old_size);
	attach(c, dom, addr, size, tag, found && addr == old);
	if (counts) {
		struct mt_script_line *l = line_of(c, t->line);
		count_alloc(c, t, site, size);
		if (l && found && site_counts(val_site(otag)))
			l->bytes_freed += old_size;
	}
	t->last_addr = addr;
	t->last_size = size;
	t->last_dom = dom;
	if (c->free_threaded)
		t->fresh = 0;
}

/* An old block that is not live (a fork child's inherited heap) has no
 * size to give back; the new block is tracked from here on all the same. */
static void on_realloc(struct ctx *c, const struct mt_rec *r)
{
	uint64_t val = 0, size = 0;
	if (!r->old) {
		allocated(c, r->dom, r->size, r->addr,
			  r->dom == MT_DOM_PYMEM && !c->free_threaded);
	} else if (r->addr) {
		bool found = detach(c, r->dom, r->old, &val, &size);
		resized(c, r->dom, r->old, found, val, size, r->size, r->addr);
	} else if (r->size) {
		c->rep->dom[r->dom].failed++; /* the old block stays */
	} else {
		freed(c, r->dom, r->old); /* realloc(p, 0) */
	}
}

/* OUT takes the old block off the live map at once: another thread may be
 * handed the same address before this thread's IN arrives. */
static void on_realloc_out(struct ctx *c, const struct mt_rec *r)
{
	struct pending *p = &cur_thread(c)->pend[r->dom];
	p->active = true;
	p->old = r->addr;
	p->val = p->size = 0;
	p->found = detach(c, r->dom, r->addr, &p->val, &p->size);
}

static void on_realloc_in(struct ctx *c, const struct mt_rec *r)
{
	struct pending out = cur_thread(c)->pend[r->dom];
	struct mt_dom_stats *s = &c->rep->dom[r->dom];
	cur_thread(c)->pend[r->dom].active = false;
	if (r->addr) {
		/* without its OUT (lost): a new block */
		resized(c, r->dom, out.old, out.active && out.found, out.val, out.size, r->size,
			r->addr);
	} else if (r->size || !out.active) {
		s->failed++;
		if (out.active && out.found) /* the old block stays */
			attach(c, r->dom, out.old, out.size, val_tag(out.val), true);
	} else {
		released(c, r->dom, out.old, out.found, out.val, out.size); /* realloc(p, 0) */
	}
}

static void thread_init(struct ctx *c, struct thread *t, uint64_t tid)
{
	*t = (struct thread){ .last_dom = -1, .tid = tid };
	t->out = c->rep->view.thread_set && c->rep->view.thread != tid;
	memset(t->site, 0xff, sizeof t->site);
}

static void on_thread(struct ctx *c, uint64_t tid)
{
	uint64_t idx, unused;
	if (hm_get(&c->tids, tid, &idx)) {
		c->cur = &c->threads[idx];
		return;
	}
	if (c->nthreads == c->threads_cap) {
		struct thread *p = realloc(c->threads, 2 * c->threads_cap * sizeof *p);
		if (!p) {
			c->oom = true;
			return;
		}
		c->cur = p + (c->cur - c->threads);
		c->threads = p;
		c->threads_cap *= 2;
	}
	if (hm_put(&c->tids, tid, c->nthreads, &unused) < 0) {
		c->oom = true;
		return;
	}
	thread_init(c, &c->threads[c->nthreads], tid);
	c->cur = &c->threads[c->nthreads++];
}

static void on_loc(struct ctx *c, uint64_t frame)
{
	struct thread *t = cur_thread(c);
	if (t->loc == frame)
		return;
	t->loc = frame;
	t->site[MT_DOM_PYMEM] = t->site[MT_DOM_PYOBJ] = NO_SITE;
	if (t->stack) /* native sites are per (stack, location): stacks.c */
		t->site[MT_DOM_MALLOC] = t->site[MT_DOM_PYRAW] = NO_SITE;
}

static void on_arena(struct ctx *c, const struct mt_rec *r)
{
	if (!r->addr)
		return; /* a failed arena allocation */
	if (r->kind == MT_REC_ARENA_ALLOC) {
		pools_arena_alloc(c, r->size, r->addr);
	} else {
		pools_arena_free(c, r->size, r->addr);
	}
}

static void apply(struct ctx *c, const struct mt_rec *r)
{
	struct mt_report *rep = c->rep;
	switch (r->kind) {
	case MT_REC_MALLOC:
	case MT_REC_CALLOC:
	case MT_REC_ALIGNED:
		rep->events.total++;
		allocated(c, r->dom, r->size, r->addr, false);
		break;
	case MT_REC_REALLOC:
		rep->events.total++;
		on_realloc(c, r);
		break;
	case MT_REC_REALLOC_OUT:
		on_realloc_out(c, r);
		break;
	case MT_REC_REALLOC_IN:
		rep->events.total++;
		on_realloc_in(c, r);
		break;
	case MT_REC_FREE:
		rep->events.total++;
		freed(c, r->dom, r->addr);
		break;
	case MT_REC_THREAD:
		on_thread(c, r->value);
		break;
	case MT_REC_TIME:
		rep->trace.duration_us += r->value;
		c->cnt.time_us = rep->trace.duration_us;
		if (__builtin_expect(c->vs.timed, 0))
			view_time(c);
		timeline_time(c);
		if (c->grid)
			grid_time(c);
		break;
	case MT_REC_LOST:
		c->lost_records += r->value;
		break;
	case MT_REC_LOC:
		on_loc(c, r->value);
		break;
	case MT_REC_ARENA_ALLOC:
	case MT_REC_ARENA_FREE:
		on_arena(c, r);
		break;
	case MT_REC_STRING:
		if (sites_string(c, r->value, r->bytes, r->n))
			c->oom = true;
		break;
	case MT_REC_CODE:
		if (sites_code(c, r->value, r->ref1, r->ref2, r->line))
			c->oom = true;
		break;
	case MT_REC_FRAME:
		if (sites_frame(c, r->value, r->ref1, r->ref2, r->line))
			c->oom = true;
		break;
	case MT_REC_MARK:
		if (c->vs.marked && view_mark(c, r->value))
			break;
		if (marks_mark(c, r->value))
			c->oom = true;
		memory_mark(c);
		break;
	case MT_REC_MMAP:
	case MT_REC_MUNMAP:
	case MT_REC_MREMAP_IN:
		rep->events.total++;
		mappings_record(c, r);
		break;
	case MT_REC_MREMAP_OUT:
		mappings_record(c, r);
		break;
	case MT_REC_SAMPLE:
		memory_sample(c, r);
		break;
	case MT_REC_SCRIPT:
		if (c->lines_on)
			lines_script(c, r->value);
		break;
	case MT_REC_MODULE:
	case MT_REC_MODULE_GONE:
	case MT_REC_NATIVE_FRAME:
	case MT_REC_STACK:
		if (stacks_record(c, r))
			c->oom = true;
		break;
	default:
		break;
	}
}

/* ---- blocks ------------------------------------------------------------ */

static int keep_bytes(struct ctx *c, struct mt_bytes *b, const struct mt_kv *kv)
{
	uint8_t *p = malloc(kv->n ? kv->n : 1);
	if (!p) {
		c->oom = true;
		return -1;
	}
	memcpy(p, kv->bytes, kv->n);
	free(b->p);
	b->p = p;
	b->n = kv->n;
	return 0;
}

static int header_entry(struct ctx *c, const struct mt_kv *kv)
{
	struct mt_process *p = &c->rep->process;
	switch (kv->key) {
	case MT_H_PID:
		p->pid = kv->u64;
		p->have |= MT_HAVE_PID;
		return 0;
	case MT_H_PPID:
		p->ppid = kv->u64;
		p->have |= MT_HAVE_PPID;
		return 0;
	case MT_H_START_NS:
		p->start_ns = kv->u64;
		p->have |= MT_HAVE_START;
		return 0;
	case MT_H_PAGE_SIZE:
		p->page_size = kv->u64;
		p->have |= MT_HAVE_PAGE_SIZE;
		return 0;
	case MT_H_VERSION:
		return keep_bytes(c, &p->version, kv);
	case MT_H_EXE:
		return keep_bytes(c, &p->exe, kv);
	case MT_H_ARGV:
		return keep_bytes(c, &p->argv, kv);
	case MT_H_PY_VERSION:
		p->py_version = kv->u64;
		p->have |= MT_HAVE_PYTHON;
		c->mimalloc = kv->u64 >= 0x030d0000; /* CPython has mimalloc since 3.13 */
		return 0;
	case MT_H_POOL_SIZE:
		p->pool_size = kv->u64;
		return 0;
	case MT_H_ARENA_SIZE:
		p->arena_size = kv->u64;
		return 0;
	case MT_H_PY_DEPTH:
		p->py_depth = kv->u64;
		return 0;
	case MT_H_PY_FREE_THREADED:
		if (kv->u64)
			p->have |= MT_HAVE_FREE_THREADED;
		c->free_threaded = kv->u64 != 0;
		return 0;
	case MT_H_TRACE_ID:
		p->trace_id = kv->u64;
		return 0;
	case MT_H_PARENT_TRACE:
		p->parent_trace = kv->u64;
		return 0;
	case MT_H_EXEC_PRED:
		p->exec_pred = kv->u64;
		return 0;
	case MT_H_RUN_ID:
		p->run_id = kv->u64;
		return 0;
	case MT_H_RUN_TOP:
		p->run_top = kv->u64 != 0;
		return 0;
	case MT_H_RUN_NAME:
		return keep_bytes(c, &p->run_name, kv);
	case MT_H_RSS_MS:
		c->rep->memory.rss_ms = kv->u64;
		c->rep->memory.have_rss_ms = true;
		return 0;
	case MT_H_START_BRK:
		c->rep->memory.start_brk = kv->u64;
		return 0;
	case MT_H_MALLOC:
		c->rep->memory.malloc_kind = kv->u64 <= MT_MALLOC_OTHER ? (int)kv->u64 : 0;
		return 0;
	default:
		return 0; /* a key from a later minor version */
	}
}

/* Footers are cumulative: the last one holds the final totals. */
static void footer_entry(struct ctx *c, const struct mt_kv *kv)
{
	switch (kv->key) {
	case MT_F_LOST:
		c->lost_footer = kv->u64;
		break;
	case MT_F_WAITS:
		c->rep->events.producer_waits = kv->u64;
		break;
	case MT_F_REASON:
		c->rep->trace.end_reason =
			kv->u64 <= MT_END__EXIT ? (int)kv->u64 : MT_REASON_UNKNOWN;
		break;
	case MT_F_EXIT_STATUS:
		c->rep->trace.exit_status = kv->u64 <= 255 ? (int)kv->u64 : -1;
		break;
	case MT_F_SAMPLES:
		c->rep->memory.samples = kv->u64;
		break;
	case MT_F_SAMPLE_US:
		c->rep->memory.sample_us = kv->u64;
		break;
	}
}

void report_apply(struct ctx *c, const struct mt_rec *r)
{
	apply(c, r);
}

/* Whether a (domain, address) holds a live block, in an arena's table or
 * the domain's map. */
static bool live(struct ctx *c, int dom, uint64_t addr)
{
	struct where w;
	uint64_t unused;
	if (in_arena(c, dom, addr, &w)) {
		uint32_t t = w.a->tags[w.g];
		if ((t & ATAG_LIVE) && !(t & ATAG_OBJ) == (dom == MT_DOM_PYMEM))
			return true;
	}
	return hm_get(&c->live[dom], addr, &unused);
}

bool report_applicable(struct ctx *c, const struct mt_rec *r)
{
	uint64_t unused;
	switch (r->kind) {
	case MT_REC_MALLOC:
	case MT_REC_CALLOC:
	case MT_REC_ALIGNED:
	case MT_REC_REALLOC_IN:
		return !r->addr || !live(c, r->dom, r->addr);
	case MT_REC_REALLOC:
		if (r->old && !live(c, r->dom, r->old))
			return false;
		return !r->addr || r->addr == r->old || !live(c, r->dom, r->addr);
	case MT_REC_FREE:
	case MT_REC_REALLOC_OUT:
		return live(c, r->dom, r->addr);
	case MT_REC_ARENA_ALLOC:
		return !r->addr || !hm_get(&c->pools.blocks, r->addr, &unused);
	case MT_REC_ARENA_FREE:
		return !r->addr || hm_get(&c->pools.blocks, r->addr, &unused);
	default:
		return true;
	}
}

/* Once the live blocks outgrow the cache, every map operation is a cache
 * miss.  Records are then decoded this far ahead of their accounting, so
 * that the slots they will touch are already on their way in; below the
 * threshold (1 MB of slots) the lookahead costs more than it saves. */
#define LOOKAHEAD 8
#define PREFETCH_MIN_SLOTS (1u << 16)

static bool maps_outgrow_cache(const struct ctx *c)
{
	for (int d = 0; d < MT_DOM_COUNT; d++)
		if (c->live[d].mask + 1 >= PREFETCH_MIN_SLOTS)
			return true;
	return false;
}

/* The records order.c takes itself. */
#define ORDER_KINDS                                                                         \
	(1u << MT_REC_THREAD | 1u << MT_REC_EPOCH | 1u << MT_REC_HORIZON | 1u << MT_REC_STREAM)

static inline bool order_kind(int kind)
{
	return ORDER_KINDS >> kind & 1;
}

/* Both return as report_run does. */
static int run_direct(struct ctx *c, struct mt_dec *d, struct mt_rec *stop)
{
	int st;
	while ((st = mt_dec_next(d, stop)) == 1 && !c->oom) {
		if (order_kind(stop->kind))
			return 2;
		apply(c, stop);
	}
	return st;
}

static int run_prefetched(struct ctx *c, struct mt_dec *d, struct mt_rec *stop)
{
	struct mt_rec ahead[LOOKAHEAD];
	size_t decoded = 0;
	int st = 1;
	for (size_t done = 0; !c->oom && c->vs.win != WIN_CLOSED; done++) {
		while (st == 1 && decoded < done + LOOKAHEAD) {
			struct mt_rec *r = &ahead[decoded % LOOKAHEAD];
			if ((st = mt_dec_next(d, r)) != 1)
				break;
			if (order_kind(r->kind)) {
				*stop = *r;
				st = 2;
				break;
			}
			/* Inline on purpose: GCC takes a function holding only
			 * prefetches for pure and drops its calls. */
			hm_prefetch(&c->live[r->dom], r->addr);
			hm_prefetch(&c->live[r->dom], r->old);
			decoded++;
		}
		if (done == decoded)
			break;
		apply(c, &ahead[done % LOOKAHEAD]);
	}
	return st;
}

int report_run(struct ctx *c, struct mt_dec *d, struct mt_rec *stop)
{
	c->vs.dec = d; /* the window's end cuts it short: view.c */
	int st = maps_outgrow_cache(c) ? run_prefetched(c, d, stop) : run_direct(c, d, stop);
	c->vs.dec = NULL;
	return c->oom || c->vs.win == WIN_CLOSED ? 1 : st;
}

/* 0, or -1 when the payload is malformed (or memory ran out: c->oom). */
static int read_block(struct ctx *c, int type, const uint8_t *raw, size_t len)
{
	struct mt_kv kv;
	size_t pos = 0;
	int st;
	if (type == MT_BLOCK_EVENTS) {
		c->rep->trace.blocks++;
		return order_block(c, raw, len);
	}
	if (type == MT_BLOCK_FOOTER) {
		if (order_settle_all(c))
			return -1;
		c->rep->trace.end_reason = MT_REASON_NONE;
		c->rep->trace.exit_status = -1;
	}
	while ((st = mt_kv_next(raw, len, &pos, &kv)) == 1) {
		if (type == MT_BLOCK_FOOTER)
			footer_entry(c, &kv);
		else if (header_entry(c, &kv))
			return -1;
	}
	if (type == MT_BLOCK_HEADER)
		pools_geometry(c);
	return st;
}

static enum mt_report_status block_error(struct ctx *c, int type, uint64_t index,
					 uint64_t offset)
{
	static const char *const what[] = { [MT_BLOCK_HEADER] = "malformed header",
					    [MT_BLOCK_EVENTS] = "malformed event record",
					    [MT_BLOCK_FOOTER] = "malformed footer" };
	const char *why = order_error(c);
	snprintf(c->rep->error, sizeof c->rep->error, "%s%s%s (block %llu, offset %llu)",
		 c->oom ? "out of memory" : what[type], why && !c->oom ? ": " : "",
		 why && !c->oom ? why : "", (unsigned long long)index,
		 (unsigned long long)offset);
	return c->oom ? MT_REPORT_FAILED : MT_REPORT_BAD_TRACE;
}

static enum mt_report_status read_end(struct ctx *c, int st, const char *error)
{
	if (st == MT_READ_END)
		return MT_REPORT_OK;
	snprintf(c->rep->error, sizeof c->rep->error, "%s", error);
	if (st == MT_READ_TRUNCATED)
		return MT_REPORT_TORN;
	return st == MT_READ_CORRUPT ? MT_REPORT_BAD_TRACE : MT_REPORT_FAILED;
}

/* One thread: read, decompress, account, in turn. */
static enum mt_report_status read_blocks(struct ctx *c, struct mt_reader *rd,
					 mt_progress_fn *progress, void *arg)
{
	int type, st;
	uint64_t offset = rd->offset;
	while ((st = mt_reader_next(rd, &type)) == MT_READ_OK) {
		if (read_block(c, type, rd->raw, rd->raw_len))
			return block_error(c, type, rd->blocks - 1, offset);
		c->last_type = type;
		offset = rd->offset;
		if (progress)
			progress(arg, offset);
	}
	return read_end(c, st, rd->error);
}

/* ---- reading ahead on a second thread -------------------------------------- */

/* Decompressing a block takes a sixth of the time its accounting does; a
 * reader thread does it for the next blocks meanwhile.  It hands over
 * copies of the raw payloads through a small ring. */
#define AHEAD 4

struct ahead_block {
	int type;
	uint8_t *raw;
	size_t len, cap;
	uint64_t index, offset_before, offset_after;
};

struct ahead {
	struct mt_reader *rd;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct ahead_block ring[AHEAD];
	size_t head, count; /* ring[head] is the oldest */
	bool done, stop;    /* the reader ended (with status); the consumer quit */
	int status;
	char error[sizeof ((struct mt_reader *)0)->error];
};

static void *ahead_main(void *arg)
{
	struct ahead *a = arg;
	struct mt_reader *rd = a->rd;
	int type, st;
	uint64_t offset = rd->offset;
	for (;;) {
		st = mt_reader_next(rd, &type);
		pthread_mutex_lock(&a->mu);
		while (st == MT_READ_OK && a->count == AHEAD && !a->stop)
			pthread_cond_wait(&a->cv, &a->mu);
		if (a->stop) {
			pthread_mutex_unlock(&a->mu);
			return NULL;
		}
		if (st == MT_READ_OK) {
			struct ahead_block *b = &a->ring[(a->head + a->count) % AHEAD];
			pthread_mutex_unlock(&a->mu);
			/* the slot is ours until it is counted */
			if (b->cap < rd->raw_len || !b->raw) { /* never NULL, even if empty */
				uint8_t *p = realloc(b->raw, rd->raw_len ? rd->raw_len : 1);
				if (!p) {
					st = MT_READ_IO;
					snprintf(rd->error, sizeof rd->error, "out of memory");
					pthread_mutex_lock(&a->mu);
					goto end;
				}
				b->raw = p;
				b->cap = rd->raw_len;
			}
			if (rd->raw_len)
				memcpy(b->raw, rd->raw, rd->raw_len);
			b->len = rd->raw_len;
			b->type = type;
			b->index = rd->blocks - 1;
			b->offset_before = offset;
			b->offset_after = offset = rd->offset;
			pthread_mutex_lock(&a->mu);
			a->count++;
			pthread_cond_broadcast(&a->cv);
			pthread_mutex_unlock(&a->mu);
			continue;
		}
end:
		a->done = true;
		a->status = st;
		snprintf(a->error, sizeof a->error, "%s", rd->error);
		pthread_cond_broadcast(&a->cv);
		pthread_mutex_unlock(&a->mu);
		return NULL;
	}
}

/* The same as read_blocks, with the reading on a thread of its own; -1 if
 * that thread could not be started (nothing was read). */
static int read_blocks_ahead(struct ctx *c, struct mt_reader *rd, mt_progress_fn *progress,
			     void *arg, enum mt_report_status *result)
{
	struct ahead a = { .rd = rd };
	pthread_t thread;
	enum mt_report_status st = MT_REPORT_OK;
	bool failed = false;
	pthread_mutex_init(&a.mu, NULL);
	pthread_cond_init(&a.cv, NULL);
	if (pthread_create(&thread, NULL, ahead_main, &a)) {
		pthread_mutex_destroy(&a.mu);
		pthread_cond_destroy(&a.cv);
		return -1;
	}
	pthread_mutex_lock(&a.mu);
	for (;;) {
		while (!a.count && !a.done)
			pthread_cond_wait(&a.cv, &a.mu);
		if (!a.count)
			break;
		struct ahead_block *b = &a.ring[a.head];
		pthread_mutex_unlock(&a.mu);
		if (read_block(c, b->type, b->raw, b->len)) {
			st = block_error(c, b->type, b->index, b->offset_before);
			failed = true;
			pthread_mutex_lock(&a.mu);
			break;
		}
		c->last_type = b->type;
		if (progress)
			progress(arg, b->offset_after);
		pthread_mutex_lock(&a.mu);
		a.head = (a.head + 1) % AHEAD;
		a.count--;
		pthread_cond_broadcast(&a.cv);
	}
	a.stop = true;
	pthread_cond_broadcast(&a.cv);
	pthread_mutex_unlock(&a.mu);
	pthread_join(thread, NULL);
	if (!failed)
		st = read_end(c, a.status, a.error);
	for (int i = 0; i < AHEAD; i++)
		free(a.ring[i].raw);
	pthread_mutex_destroy(&a.mu);
	pthread_cond_destroy(&a.cv);
	*result = st;
	return 0;
}

/* ---- the builder ------------------------------------------------------- */

static int ctx_init(struct ctx *c, struct mt_report *rep, unsigned flags)
{
	int err = 0;
	memset(c, 0, sizeof *c);
	c->rep = rep;
	c->per_thread = rep->per_thread;
	c->grid = rep->per_thread && (flags & MT_BUILD_TIME_GRID);
	for (int d = 0; d < MT_DOM_COUNT; d++) {
		err |= hm_init(&c->live[d]);
		err |= hm_init(&c->big[d]);
	}
	err |= hm_init(&c->tids);
	c->threads_cap = 16;
	c->nthreads = 1;
	c->threads = calloc(c->threads_cap, sizeof *c->threads);
	c->cur = c->threads;
	if (c->threads) /* records before any THREAD record (none in a sound trace) */
		thread_init(c, &c->threads[0], 0);
	err |= sites_init(c);
	err |= pools_init(c);
	err |= lists_init(c);
	err |= timeline_init(c);
	if (c->grid)
		err |= grid_init(c);
	err |= lines_init(c);
	err |= mappings_init(c);
	err |= order_init(c);
	view_init(c);
	return err || !c->threads ? -1 : 0;
}

static void ctx_free(struct ctx *c)
{
	for (int d = 0; d < MT_DOM_COUNT; d++) {
		hm_free(&c->live[d]);
		hm_free(&c->big[d]);
	}
	hm_free(&c->tids);
	free(c->threads);
	sites_free(c);
	stacks_free(c);
	pools_free(c);
	lists_free(c);
	lines_free(c);
	mappings_free(c);
	order_free(c);
}

/* The threads' allocations, in the order their first records came. */
static void threads_finish(struct ctx *c)
{
	struct mt_report *rep = c->rep;
	rep->threads = calloc(c->nthreads, sizeof *rep->threads);
	if (!rep->threads) {
		c->oom = true;
		return;
	}
	for (size_t i = 0; i < c->nthreads; i++) {
		const struct thread *t = &c->threads[i];
		if (i || t->allocs)
			rep->threads[rep->nthreads++] =
				(struct mt_thread_stats){ t->tid, t->allocs, t->bytes };
	}
}

static void finish(struct ctx *c, enum mt_report_status st)
{
	struct mt_report *rep = c->rep;
	rep->trace.complete = st == MT_REPORT_OK && c->last_type == MT_BLOCK_FOOTER;
	if (!rep->trace.complete) {
		rep->trace.end_reason = MT_REASON_NONE;
		rep->trace.exit_status = -1;
	}
	rep->trace.threads = hm_count(&c->tids);
	rep->events.lost = c->lost_footer + c->lost_records;
	for (int d = 0; d < MT_DOM_COUNT; d++)
		rep->dom[d].live_blocks = hm_count(&c->live[d]) + c->pools.table_blocks[d];
	/* the order matters: the peak's last moment first */
	peak_moment(c);
	marks_finish(c);
	pools_finish(c);
	rep->heap.live_blocks =
		rep->dom[MT_DOM_MALLOC].live_blocks + hm_count(&c->pools.blocks) + c->own_live;
	mappings_finish(c);
	memory_finish(c); /* names the sites of live blocks: before sites merge */
	sites_finish(c);
	if (c->grid)
		grid_finish(c);
	view_finish(c);   /* after the sites' peaks are fixed */
	lines_finish(c);  /* merges sites: after everything that counts in them */
	stacks_finish(c); /* merges sites again, by their native identity */
	timeline_finish(c);
	threads_finish(c);
}

/* The records still kept when the trace ends without a footer. */
static enum mt_report_status settle_end(struct ctx *c, enum mt_report_status st)
{
	if ((st != MT_REPORT_OK && st != MT_REPORT_TORN) || !order_settle_all(c) || c->oom)
		return st;
	snprintf(c->rep->error, sizeof c->rep->error,
		 "malformed event record: %s (at the end of the trace)", order_error(c));
	return MT_REPORT_BAD_TRACE;
}

static enum mt_report_status open_error(struct mt_report *rep, struct mt_reader *rd, int st,
					FILE *f)
{
	bool empty = st == MT_READ_FOREIGN && feof(f) && ftell(f) == 0;
	snprintf(rep->error, sizeof rep->error, "%s", empty ? "empty file" : rd->error);
	return st == MT_READ_IO ? MT_REPORT_FAILED : MT_REPORT_BAD_TRACE;
}

enum mt_report_status mt_report_build_flags(FILE *f, struct mt_report *rep,
					    const struct mt_view *view, unsigned flags,
					    mt_progress_fn *progress, void *arg)
{
	struct mt_reader rd;
	struct ctx c;
	enum mt_report_status st;
	int rst;
	memset(rep, 0, sizeof *rep);
	if (view)
		rep->view = *view;
	else
		mt_view_default(&rep->view);
	rep->trace.end_reason = MT_REASON_NONE;
	rep->trace.exit_status = -1;
	rep->per_thread = flags & MT_BUILD_PER_THREAD;
	rst = mt_reader_open(&rd, f);
	if (rst != MT_READ_OK) {
		st = open_error(rep, &rd, rst, f);
	} else if (ctx_init(&c, rep, flags)) {
		snprintf(rep->error, sizeof rep->error, "out of memory");
		st = MT_REPORT_FAILED;
		ctx_free(&c);
	} else {
		if (read_blocks_ahead(&c, &rd, progress, arg, &st))
			st = read_blocks(&c, &rd, progress, arg);
		st = settle_end(&c, st);
		finish(&c, st);
		if (c.oom && st != MT_REPORT_FAILED) {
			snprintf(rep->error, sizeof rep->error, "out of memory");
			st = MT_REPORT_FAILED;
		}
		ctx_free(&c);
	}
	mt_reader_close(&rd);
	return st;
}

enum mt_report_status mt_report_build(FILE *f, struct mt_report *rep)
{
	return mt_report_build_flags(f, rep, NULL, 0, NULL, NULL);
}

int mt_report_read_header(FILE *f, struct mt_process *p)
{
	struct mt_reader rd;
	struct mt_report rep;
	struct ctx c = { .rep = &rep };
	int type, rc = -1;
	memset(&rep, 0, sizeof rep);
	if (mt_reader_open(&rd, f) == MT_READ_OK && mt_reader_next(&rd, &type) == MT_READ_OK &&
	    type == MT_BLOCK_HEADER) {
		struct mt_kv kv;
		size_t pos = 0;
		int st;
		while ((st = mt_kv_next(rd.raw, rd.raw_len, &pos, &kv)) == 1 && !header_entry(&c, &kv))
			;
		rc = st == 0 ? 0 : -1;
	}
	mt_reader_close(&rd);
	*p = rep.process;
	if (rc)
		mt_process_free(p);
	return rc;
}

void mt_process_free(struct mt_process *p)
{
	free(p->exe.p);
	free(p->argv.p);
	free(p->version.p);
	free(p->run_name.p);
	p->exe.p = p->argv.p = p->version.p = p->run_name.p = NULL;
}

void mt_report_free(struct mt_report *rep)
{
	mt_process_free(&rep->process);
	for (size_t i = 0; i < rep->nstrings; i++)
		free(rep->strings[i].p);
	free(rep->strings);
	free(rep->frames);
	free(rep->sites);
	free(rep->pools.retained);
	free(rep->lists.sites);
	free(rep->timeline.points);
	free(rep->marks);
	mt_grid_free(&rep->grid);
	free(rep->threads);
	free(rep->lines);
	for (size_t i = 0; i < rep->nsources; i++) {
		for (size_t k = 0; k < rep->sources[i].nlines; k++)
			free(rep->sources[i].lines[k]);
		free(rep->sources[i].lines);
	}
	free(rep->sources);
	rep->threads = NULL;
	rep->lines = NULL;
	rep->sources = NULL;
	rep->nthreads = rep->nlines = rep->nsources = 0;
	free(rep->mappings.largest);
	free(rep->memory.points);
	free(rep->memory.at_marks);
	free(rep->memory.marks_top);
	rep->mappings.largest = NULL;
	rep->memory.points = rep->memory.at_marks = NULL;
	rep->memory.marks_top = NULL;
	rep->mappings.nlargest = rep->memory.npoints = rep->memory.nat_marks = 0;
	mt_native_free(rep->native);
	rep->native = NULL;
	rep->strings = NULL;
	rep->frames = NULL;
	rep->sites = NULL;
	rep->pools.retained = NULL;
	rep->lists.sites = NULL;
	rep->timeline.points = NULL;
	rep->marks = NULL;
	rep->nstrings = rep->nframes = rep->nsites = rep->pools.nretained = 0;
	rep->lists.nsites = rep->timeline.npoints = rep->nmarks = 0;
}
