/*
 * memory.c - what the OS saw of the process (SAMPLE records) beside what
 * the trace says the program asked for.  Each sample is taken with the
 * trace's own figures at its place in the stream (struct mt_mem_point):
 * the requested heap, pymalloc's arenas, pools and objects, and the mmap
 * domain.  The report keeps a series of them (per interval the one with
 * the highest RSS, the interval doubling as it fills, like timeline.c),
 * the samples taken at marks, the highest RSS and the last sample.
 *
 * Where glibc's figures show freed memory held below the heap top, the
 * live block that holds the top is found by a scan of the live malloc
 * blocks; scans are bounded (MAX_SCANS) so that a long trace costs no
 * more than a few passes over its live blocks.
 */
#include <stdlib.h>
#include <string.h>

#include "analysis.h"
#include "codec.h"

#define MAX_SCANS 64
#define SCAN_MIN_FREE (1u << 20) /* free below the top worth a scan */

static bool have(const struct mt_mem_point *p, int field)
{
	return p->have >> field & 1;
}

bool mt_mem_rss(const struct mt_mem_point *p, uint64_t *rss)
{
	if (!have(p, MT_S_RSS_ANON) || !have(p, MT_S_RSS_FILE))
		return false;
	*rss = p->v[MT_S_RSS_ANON] + p->v[MT_S_RSS_FILE] +
	       (have(p, MT_S_RSS_SHMEM) ? p->v[MT_S_RSS_SHMEM] : 0);
	return true;
}

uint64_t mt_mem_requested(const struct mt_mem_point *p)
{
	return p->malloc_live + p->objects + p->unpooled;
}

static void point_now(struct ctx *c, const struct mt_rec *r, struct mt_mem_point *p)
{
	const struct mt_report *rep = c->rep;
	memset(p, 0, sizeof *p);
	mt_dec_sample(r, p->v, &p->have);
	p->time_us = c->cnt.time_us;
	p->malloc_live = rep->dom[MT_DOM_MALLOC].live_bytes;
	p->objects = rep->pools.object_bytes;
	p->unpooled = c->own_bytes;
	p->arenas = rep->pools.arenas_live * rep->pools.arena_size;
	p->pools = rep->pools.pools_in_use * rep->pools.pool_size;
	p->empty_arenas = rep->pools.arenas_empty * rep->pools.arena_size;
	p->touched = rep->pools.pools_touched * rep->pools.pool_size;
	p->frame_stacks = rep->pools.other_bytes;
	p->mmap_anon = rep->mappings.anon_bytes;
	p->mmap_file = rep->mappings.file_bytes;
}

/* ---- the block at the heap top ----------------------------------------------- */

/* glibc's chunk for a request of n bytes on 64-bit: n plus its size
 * field, rounded up to 16, at least 32. */
static uint64_t chunk_size(uint64_t n)
{
	uint64_t s = (n + 8 + 15) & ~(uint64_t)15;
	return s < 32 ? 32 : s;
}

/* The site a malloc block is counted at: its own, or the one of the block
 * a higher domain made of it. */
static uint32_t block_site(struct ctx *c, uint64_t addr, uint64_t val)
{
	uint64_t v;
	for (int d = MT_DOM_PYRAW; val_site(val) == SITE_LAYERED && d < MT_DOM_COUNT; d++)
		if (hm_get(&c->live[d], addr, &v))
			val = v;
	return val_site(val) == SITE_LAYERED ? NO_SITE : val_site(val);
}

static void top_block(struct ctx *c, const struct mt_mem_point *p, struct mt_top_block *tb)
{
	uint64_t start = c->rep->memory.start_brk;
	memset(tb, 0, sizeof *tb);
	if (!start || !have(p, MT_S_BRK) || !have(p, MT_S_GLIBC_TOP) || !have(p, MT_S_GLIBC_FREE))
		return;
	uint64_t keep = p->v[MT_S_GLIBC_TOP], brk = p->v[MT_S_BRK];
	tb->top = brk >= keep ? brk - keep : 0;
	tb->below_free = p->v[MT_S_GLIBC_FREE] >= keep ? p->v[MT_S_GLIBC_FREE] - keep : 0;
	tb->known = true;
	const struct heapmap *m = &c->live[MT_DOM_MALLOC];
	uint64_t best = 0, val = 0;
	for (size_t i = 0; m->slots && i <= m->mask; i++) {
		uint64_t k = m->slots[i].key;
		if (k >= start && k < tb->top && k > best) {
			best = k;
			val = m->slots[i].val;
		}
	}
	if (!best)
		return;
	tb->found = true;
	tb->address = best;
	tb->size = block_size(c, MT_DOM_MALLOC, best, val);
	tb->site = block_site(c, best, val);
	uint64_t end = best - 16 + chunk_size(tb->size);
	tb->gap = tb->top > end ? tb->top - end : 0;
}

/* Only where glibc holds enough freed memory below the top to matter. */
static void top_block_if_held(struct ctx *c, const struct mt_mem_point *p,
			      struct mt_top_block *tb)
{
	memset(tb, 0, sizeof *tb);
	if (!have(p, MT_S_GLIBC_FREE) || !have(p, MT_S_GLIBC_TOP) ||
	    p->v[MT_S_GLIBC_FREE] < p->v[MT_S_GLIBC_TOP] + SCAN_MIN_FREE ||
	    c->mem.scans >= MAX_SCANS)
		return;
	c->mem.scans++;
	top_block(c, p, tb);
}

/* ---- the series ---------------------------------------------------------------- */

static uint64_t rss_of(const struct mt_mem_point *p)
{
	uint64_t rss = 0;
	mt_mem_rss(p, &rss);
	return rss;
}

/* Halves the points by doubling the interval, the higher RSS of a pair
 * kept. */
static void halve(struct mt_memory *m)
{
	size_t n = 0;
	m->interval_us *= 2;
	for (size_t i = 0; i < m->npoints; i++) {
		struct mt_mem_point *p = &m->points[i];
		if (n && m->points[n - 1].time_us / m->interval_us == p->time_us / m->interval_us) {
			if (rss_of(p) > rss_of(&m->points[n - 1]))
				m->points[n - 1] = *p;
		} else {
			m->points[n++] = *p;
		}
	}
	m->npoints = n;
}

static void series_add(struct ctx *c, const struct mt_mem_point *p)
{
	struct mt_memory *m = &c->rep->memory;
	if (m->npoints && p->time_us < c->mem.bucket_end) {
		if (rss_of(p) > rss_of(&m->points[m->npoints - 1]))
			m->points[m->npoints - 1] = *p;
		return;
	}
	while (m->npoints >= MT_MEM_POINTS_MAX)
		halve(m);
	m->points[m->npoints++] = *p;
	uint64_t start = p->time_us - p->time_us % m->interval_us;
	c->mem.bucket_end = start + m->interval_us > start ? start + m->interval_us : UINT64_MAX;
}

/* ---- samples and marks ------------------------------------------------------------ */

static void at_mark(struct ctx *c, const struct mt_mem_point *p)
{
	struct mt_memory *m = &c->rep->memory;
	/* a step keeps the sample of its first mark (past MT_MARKS_MAX, marks
	 * extend the last step) */
	if (!c->rep->nmarks || c->rep->marks[c->rep->nmarks - 1].mem)
		return;
	if (m->nat_marks == c->mem.marks_cap) {
		size_t cap = c->mem.marks_cap;
		if (mt_grow((void **)&m->at_marks, &cap, m->nat_marks + 1, sizeof *m->at_marks) ||
		    mt_grow((void **)&m->marks_top, &c->mem.marks_cap, m->nat_marks + 1,
			    sizeof *m->marks_top)) {
			c->oom = true;
			return;
		}
	}
	m->at_marks[m->nat_marks] = *p;
	top_block_if_held(c, p, &m->marks_top[m->nat_marks]);
	c->rep->marks[c->rep->nmarks - 1].mem = (uint32_t)++m->nat_marks;
}

void memory_mark(struct ctx *c)
{
	c->mem.after_mark = true;
}

void memory_sample(struct ctx *c, const struct mt_rec *r)
{
	struct mt_memory *m = &c->rep->memory;
	struct mt_mem_point p;
	if (!m->points) {
		m->points = malloc(MT_MEM_POINTS_MAX * sizeof *m->points);
		m->interval_us = 1;
		if (!m->points) {
			c->oom = true;
			return;
		}
	}
	point_now(c, r, &p);
	series_add(c, &p);
	if (c->mem.after_mark)
		at_mark(c, &p);
	c->mem.after_mark = false;
	uint64_t rss;
	if (mt_mem_rss(&p, &rss) && (!m->have_peak || rss > rss_of(&m->peak))) {
		m->peak = p;
		m->have_peak = true;
		top_block_if_held(c, &p, &m->peak_top);
	}
	m->exit = p;
	m->have_exit = true;
	m->exit_top.known = false;
	c->mem.exit_events = c->rep->events.total;
}

void memory_finish(struct ctx *c)
{
	struct mt_memory *m = &c->rep->memory;
	if (!m->have_exit)
		return;
	/* the exit sample must be the series' last point */
	if (m->points[m->npoints - 1].time_us != m->exit.time_us ||
	    memcmp(&m->points[m->npoints - 1], &m->exit, sizeof m->exit)) {
		if (m->npoints >= MT_MEM_POINTS_MAX)
			halve(m);
		m->points[m->npoints++] = m->exit;
	}
	/* the live blocks are the exit sample's only if no event came after it */
	if (c->mem.exit_events == c->rep->events.total)
		top_block(c, &m->exit, &m->exit_top);
}

static void top_block_remap(struct mt_top_block *tb, const uint32_t *map)
{
	if (tb->found && site_counts(tb->site))
		tb->site = map[tb->site];
}

void memory_remap(struct ctx *c, const uint32_t *map)
{
	struct mt_memory *m = &c->rep->memory;
	top_block_remap(&m->peak_top, map);
	top_block_remap(&m->exit_top, map);
	for (size_t i = 0; i < m->nat_marks; i++)
		top_block_remap(&m->marks_top[i], map);
}

/* ---- why RSS is higher than the requested heap ---------------------------------------- */

static const char *const part_keys[MT_PART_COUNT] = {
	"file_backed", "glibc_free_top", "glibc_free_below_top", "glibc_overhead",
	"pymalloc_pools_free", "pymalloc_empty_pools", "pymalloc_empty_arenas",
	"frame_stacks", "mmap_anonymous", "memtrace", "brk_not_resident", "arenas_untouched",
	"rest",
};

static const char *const part_texts[MT_PART_COUNT] = {
	"file-backed pages: code, libraries, mapped files (RssFile + RssShmem)",
	"glibc: free at the top of its heap (malloc_trim or a later free gives it back)",
	"glibc: freed blocks it keeps below live ones",
	"glibc: in use beyond the requests (chunk headers and rounding, blocks in its "
	"caches, blocks from before tracing)",
	"pymalloc: pools in use, beyond their objects (free blocks, size-class rounding)",
	"pymalloc: empty pools in arenas that still hold objects",
	"pymalloc: arenas without a pool in use",
	"CPython's frame stacks",
	"the program's anonymous mappings (mmap domain)",
	"memtrace's own memory (rings, buffers, compressor)",
	"minus: brk heap pages not resident (never touched, or given back by malloc_trim)",
	"minus: pymalloc arena pages never touched (pools it has not used yet)",
	"the rest of RssAnon: thread stacks, static data, the interpreter's own mappings "
	"(mimalloc's pages beyond its objects, when CPython uses it), less pages never "
	"touched outside the brk heap (not told apart)",
};

/* Short, for text tables. */
static const char *const part_labels[MT_PART_COUNT] = {
	"file-backed pages (code, libraries, files)",
	"glibc: free at its heap top",
	"glibc: freed blocks kept below live ones",
	"glibc: chunk headers, caches, pre-trace blocks",
	"pymalloc: free space in pools in use",
	"pymalloc: empty pools in arenas with objects",
	"pymalloc: arenas with no pool in use",
	"CPython's frame stacks",
	"the program's anonymous mappings",
	"memtrace's own (rings, buffers, compressor)",
	"minus: brk heap pages not resident",
	"minus: arena pools never touched",
	"the rest (stacks, data, mimalloc: not told apart)",
};

const char *mt_part_label(int part)
{
	return part_labels[part];
}

const char *mt_part_key(int part)
{
	return part_keys[part];
}

const char *mt_part_text(int part)
{
	return part_texts[part];
}

static void part(struct mt_breakdown *b, int k, bool measured, int64_t v)
{
	b->measured[k] = measured;
	b->bytes[k] = measured ? v : 0;
}

void mt_memory_breakdown(const struct mt_report *rep, const struct mt_mem_point *p,
			 struct mt_breakdown *b)
{
	const uint64_t *v = p->v;
	memset(b, 0, sizeof *b);
	b->have_rss = mt_mem_rss(p, &b->rss);
	b->anon = v[MT_S_RSS_ANON];
	b->file = v[MT_S_RSS_FILE];
	b->shmem = have(p, MT_S_RSS_SHMEM) ? v[MT_S_RSS_SHMEM] : 0;
	b->requested = mt_mem_requested(p);
	bool glibc = have(p, MT_S_GLIBC_ARENA) && have(p, MT_S_GLIBC_MMAP) &&
		     have(p, MT_S_GLIBC_USED) && have(p, MT_S_GLIBC_FREE) && have(p, MT_S_GLIBC_TOP);
	part(b, MT_PART_FILE, b->have_rss, (int64_t)(b->file + b->shmem));
	part(b, MT_PART_GLIBC_TOP, glibc, (int64_t)v[MT_S_GLIBC_TOP]);
	part(b, MT_PART_GLIBC_BELOW, glibc, (int64_t)(v[MT_S_GLIBC_FREE] - v[MT_S_GLIBC_TOP]));
	part(b, MT_PART_GLIBC_EXTRA, glibc,
	     (int64_t)(v[MT_S_GLIBC_USED] + v[MT_S_GLIBC_MMAP]) - (int64_t)p->malloc_live);
	part(b, MT_PART_POOL_FREE, true, (int64_t)p->pools - (int64_t)p->objects);
	part(b, MT_PART_EMPTY_POOLS, true,
	     (int64_t)p->arenas - (int64_t)p->empty_arenas - (int64_t)p->pools);
	part(b, MT_PART_EMPTY_ARENAS, true, (int64_t)p->empty_arenas);
	part(b, MT_PART_FRAME_STACKS, true, (int64_t)p->frame_stacks);
	part(b, MT_PART_MMAP, true, (int64_t)p->mmap_anon);
	part(b, MT_PART_MEMTRACE, have(p, MT_S_OWN_RESIDENT), (int64_t)v[MT_S_OWN_RESIDENT]);
	uint64_t start = rep->memory.start_brk, page = rep->process.page_size;
	bool brk = start && have(p, MT_S_BRK) && have(p, MT_S_BRK_RESIDENT) && v[MT_S_BRK] >= start;
	if (brk) {
		uint64_t mask = page && !(page & (page - 1)) ? page - 1 : 4095;
		uint64_t size = ((v[MT_S_BRK] + mask) & ~mask) - start;
		part(b, MT_PART_BRK_UNTOUCHED, true, -(int64_t)(size - v[MT_S_BRK_RESIDENT]));
	}
	part(b, MT_PART_ARENA_UNTOUCHED, true, (int64_t)p->touched - (int64_t)p->arenas);
	bool all = b->have_rss;
	int64_t rest = (int64_t)b->anon - (int64_t)b->requested;
	for (int k = MT_PART_GLIBC_TOP; k < MT_PART_REST; k++) {
		all = all && b->measured[k];
		rest -= b->bytes[k];
	}
	part(b, MT_PART_REST, all, rest);
}
