/*
 * analysis.h - the state the report builder (report.c) shares with the
 * analyses it feeds while it streams a trace: sites.c, pools.c, lists.c,
 * timeline.c, marks.c, lines.c (the main script line by line), view.c
 * (the window and filters of struct mt_view), mappings.c and memory.c
 * (what the OS sees); order.c puts the trace's streams in one order for
 * it.  Internal to tools/analysis/; the
 * results go into struct mt_report (report.h).
 *
 * Every live block sits in its domain's map as address -> packed value
 * (or, inside a pymalloc arena, in the arena's table: pools.c): the
 * requested size in the top 40 bits and a tag in the low 24: the site the
 * block is counted at and the list flags of lists.c.  A block that a
 * higher domain handed out again (the malloc block under a
 * PyMem_RawMalloc, the raw block under a large PyObject_Malloc) is
 * LAYERED: it counts in its domain's figures but its bytes belong to the
 * site of the topmost block, so that no byte is counted twice in sites,
 * temporaries and the histogram.  A block out of the view's filters
 * (another domain or thread) is OUT: it is tracked, but counts in no site,
 * and layers as any other.
 */
#ifndef MEMTRACE_ANALYSIS_H
#define MEMTRACE_ANALYSIS_H

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>

#include "grow.h"
#include "heapmap.h"
#include "report.h"

/* ---- packed live values -------------------------------------------------- */

#define TAG_BITS 24
#define SITE_MASK 0xfffffu              /* site index */
#define SITE_LAYERED SITE_MASK          /* counted at a higher domain's block */
#define SITE_OUT (SITE_MASK - 1)        /* out of the view's filters */
#define MAX_SITES SITE_OUT              /* later sites fold into the last one */
#define TAG_CHAINREC (1u << 20)         /* a list buffer with a chain record */
#define TAG_CHAIN (1u << 21)            /* a list buffer (lists.c) */
#define TAG_OLD (1u << 22)              /* made before the window opened (view.c) */
#define TAG_OWN (1u << 23)              /* a PyMem/PyObject block in the heap by itself */
#define SIZE_BIG ((1ull << 40) - 1)     /* size field escape: see ctx.big */

static inline uint64_t val_size_field(uint64_t v)
{
	return v >> TAG_BITS;
}
static inline uint32_t val_tag(uint64_t v)
{
	return (uint32_t)(v & ((1u << TAG_BITS) - 1));
}
static inline uint32_t val_site(uint64_t v)
{
	return (uint32_t)(v & SITE_MASK);
}
/* Whether the site's figures count the block: not layered, not out. */
static inline bool site_counts(uint32_t site)
{
	return site < MAX_SITES;
}

#define NO_SITE UINT32_MAX

/* ---- per thread ------------------------------------------------------------ */

/* A moved realloc's OUT half, waiting for the IN half of the same thread
 * and domain. */
struct pending {
	bool active, found;
	uint64_t old, val, size; /* the block OUT took off the live map */
};

struct thread {
	struct pending pend[MT_DOM_COUNT];
	uint64_t loc;                 /* LOC: the current Python frame id */
	uint32_t site[MT_DOM_COUNT];  /* site of loc per domain, NO_SITE: look up */
	uint64_t last_addr;           /* the last block allocated ... */
	uint64_t last_size;
	int last_dom;                 /* ... and its domain; -1: none */
	uint64_t fresh;               /* free-threaded lists: the PyMem block the
				       * thread's last event allocated, else 0 */
	uint32_t stack;               /* STACK: native stack node (stacks.c), 0: none */
	uint32_t script;              /* SCRIPT: the main script's frame (index), 0: none */
	uint32_t line;                /* 1 + its line in rep->lines */
	uint64_t tid, allocs, bytes;  /* its allocations in view */
	bool out;                     /* not the view's thread */
	struct {
		bool active;          /* a MREMAP_OUT waits for its IN */
		uint32_t taken;       /* mappings.c: the mappings it took off */
	} remap;
};

/* ---- pools.c ----------------------------------------------------------------- */

/* A block of CPython's arena allocator.  A pymalloc arena also holds the
 * live blocks inside it, one entry per 16-byte granule: most events of a
 * Python trace are small objects, and a table indexed by address is much
 * faster (and, for a full arena, smaller) than a hash map entry each. */
struct arena_slot {
	uint64_t base, size;
	uint64_t live_objects, live_bytes, pools_in_use;
	uint64_t pools_touched; /* pymalloc uses an arena's pools in address order:
				   those below this one have been written to */
	uint32_t *tags;   /* per granule: tag | ATAG_* (0: no block there) */
	uint16_t *sizes;  /* per granule: the requested size */
	bool is_arena, used;
	uint32_t next_free;
};

#define ATAG_OBJ (1u << 24)  /* the block is PYOBJ's, else PYMEM's */
#define ATAG_LIVE (1u << 25)
#define GRANULE_SHIFT 4

struct pools_state {
	struct heapmap blocks;   /* arena-allocator block address -> slot index */
	struct heapmap pools;    /* pool address -> packed pool state */
	struct arena_slot *slots;
	uint32_t nslots, cap, free_head;
	uint64_t pool_size, pool_mask, arena_size;
	uint64_t cache_pool;     /* the pool looked up last, and its value */
	uint64_t *cache_ref;
	uint64_t table_blocks[MT_DOM_COUNT]; /* live blocks held in arena tables */
};

/* A pool's value: arena slot | size class << 32 | live blocks << 40. */
#define POOL_NO_CLASS 0xffu

static inline uint64_t pool_val(uint32_t slot, unsigned cls, uint64_t count)
{
	return (uint64_t)slot | (uint64_t)cls << 32 | count << 40;
}
static inline uint32_t pool_slot(uint64_t v)
{
	return (uint32_t)v;
}
static inline unsigned pool_class(uint64_t v)
{
	return (unsigned)(v >> 32) & 0xff;
}
static inline uint64_t pool_count(uint64_t v)
{
	return v >> 40;
}

/* ---- lists.c -------------------------------------------------------------------- */

struct chain {
	uint32_t lsite;      /* index into rep->lists.sites */
	uint32_t ncaps, caps_alloc;
	uint64_t *caps;      /* capacities: see push_cap */
	uint64_t resizes, capacity, slack, skipped;
	uint32_t next_free;
	bool used;
};

struct lists_state {
	struct heapmap chains;   /* buffer address -> chain index */
	struct chain *v;
	uint32_t n, cap, free_head;
	size_t sites_cap;
};

/* ---- timeline.c ----------------------------------------------------------------- */

struct tl_state {
	struct mt_tpoint cur;    /* the highest heap seen in the current interval */
	uint64_t bucket_end;
	bool started;
};

/* ---- marks.c ----------------------------------------------------------------------- */

struct marks_state {
	size_t cap;
	bool open; /* rep->marks[rep->nmarks - 1] is the current step */
	struct mt_counters base; /* where "(before first mark)" starts */
};

/* ---- lines.c ------------------------------------------------------------------------ */

struct lines_state {
	struct heapmap ids;    /* SCRIPT frame id -> 1 + line index | frame index << 32 */
	struct heapmap places; /* file string << 32 | line -> line index */
	size_t cap;
};

/* ---- view.c ------------------------------------------------------------------------- */

enum window_state { WIN_BEFORE, WIN_OPEN, WIN_CLOSED };

struct mt_dec;
struct mt_rec;
struct view_state {
	enum window_state win;
	bool timed;       /* a time bound is still to come: check at TIME records */
	bool marked;      /* a mark bound is still to come: check at MARK records */
	struct mt_dec *dec; /* the block being read, which the window's end cuts */
};

/* ---- mappings.c ------------------------------------------------------------------------ */

/* The program's mappings, a treap by start address: node 0 is nil. */
struct map_node {
	uint64_t start, end;
	uint32_t left, right, prio;
	uint32_t prot, flags, frame;
};

struct mappings_state {
	struct map_node *v;
	uint32_t n, cap, free_head, root;
	uint32_t seed;
	uint64_t page_mask;
};

/* ---- memory.c --------------------------------------------------------------------------- */

struct memory_state {
	uint64_t bucket_end;   /* of the series' current interval */
	bool after_mark;       /* the next SAMPLE is the last MARK's */
	size_t marks_cap;
	unsigned scans;        /* top-block scans so far (bounded) */
	uint64_t exit_events;  /* events.total at the last sample */
};

/* ---- the builder's context --------------------------------------------------------- */

struct code {
	uint32_t file, name, first_line;
};

struct ctx {
	struct mt_report *rep;
	struct heapmap live[MT_DOM_COUNT]; /* address -> packed value */
	struct heapmap big[MT_DOM_COUNT];  /* address -> size, for sizes >= SIZE_BIG */
	struct heapmap tids;               /* tid -> index in threads */
	struct thread *threads; /* threads[0] serves records before any THREAD */
	size_t nthreads, threads_cap;
	struct thread *cur;     /* the thread the records belong to */
	uint64_t lost_records, lost_footer;
	int last_type;
	bool oom;
	bool python;            /* arena geometry known: pools are tracked */
	bool free_threaded;     /* lists grow by malloc and free (lists.c) */
	bool mimalloc;          /* 3.13 on: PyMem/PyObject blocks may be TAG_OWN */
	uint64_t own_live;      /* live TAG_OWN blocks */
	uint64_t own_bytes;     /* their requested bytes */

	/* heap = malloc domain + arena blocks + TAG_OWN blocks; the sites are
	 * taken at the fullest moment of the plateau at its peak (sites.c) */
	bool in_plateau, snapped;
	uint64_t epoch;         /* moves on at each snapshot and grid bucket */
	uint64_t snap_epoch;    /* the epoch the last snapshot began */
	uint64_t sites_live;    /* live bytes of all sites */
	uint64_t snap_total;    /* sites_live at the last snapshot */
	struct mt_counters cnt; /* running counters: marks.c takes differences */

	/* definitions and sites (sites.c) */
	struct heapmap strmap, codemap, framemap; /* trace id -> index */
	struct heapmap sitemap;                   /* frame id * 4 + domain -> site */
	struct heapmap scriptmap;                 /* site << 32 | script -> its copy */
	struct code *codes;
	size_t ncodes, codes_cap, strings_cap, frames_cap, sites_cap;
	uint32_t native[MT_DOM_COUNT];            /* the "<native>" site of each domain */
	/* MT_BUILD_PER_THREAD: the sites above name places; each thread
	 * counts at a site of its own for each, site << 32 | thread -> site */
	bool per_thread;
	struct heapmap thread_sites;

	struct pools_state pools;
	struct lists_state lists;
	struct tl_state tl;
	struct marks_state marks;
	struct stacks_state *stacks; /* stacks.c; NULL until a native record */
	/* MT_BUILD_TIME_GRID (timegrid.c): the bucket time is in now */
	bool grid;
	uint64_t grid_bucket;
	size_t grid_cap;
	struct lines_state lines;
	struct view_state vs;

	/* What the heap is: the live bytes of the domains in heap_doms (a bit
	 * each), and the arenas when heap_arenas; with a thread filter, the
	 * live bytes of the blocks in view (heap_sites). */
	unsigned heap_doms;
	bool heap_arenas, heap_sites;
	bool filtered;      /* some blocks are OUT */
	bool lines_on;      /* the per-line view is made */
	struct mappings_state maps;
	struct memory_state mem;
	struct order *order;    /* order.c: the streams read and not yet applied */
};

static inline struct thread *cur_thread(struct ctx *c)
{
	return c->cur;
}

/* ---- sites.c --------------------------------------------------------------------------- */

int sites_init(struct ctx *c);
void sites_free(struct ctx *c);
/* Definitions; -1 when out of memory. */
int sites_string(struct ctx *c, uint64_t id, const uint8_t *p, size_t n);
int sites_code(struct ctx *c, uint64_t id, uint64_t file, uint64_t name, uint64_t first_line);
int sites_frame(struct ctx *c, uint64_t id, uint64_t parent, uint64_t code, uint64_t line);
/* The site of a new block of dom in thread t (a slow path: a lookup). */
uint32_t sites_lookup(struct ctx *c, struct thread *t, int dom);
/* The peak figures are taken now (lazily, see site_touch). */
void sites_snapshot(struct ctx *c);
void sites_finish(struct ctx *c);
/* Adds the figures of s to g (merging sites). */
void sites_sum(struct mt_site *g, const struct mt_site *s);

static inline uint32_t site_of(struct ctx *c, struct thread *t, int dom)
{
	uint32_t s = t->site[dom];
	return s != NO_SITE ? s : sites_lookup(c, t, dom);
}

/* ---- timegrid.c ------------------------------------------------------------------------ */

int grid_init(struct ctx *c);
/* Site idx was made; -1 when out of memory. */
int grid_site_new(struct ctx *c, size_t idx);
/* The window opens: the grid starts again from now, with no cells. */
void grid_open(struct ctx *c);
/* Site idx changes in a bucket later than its last change. */
void grid_change(struct ctx *c, uint32_t idx);
/* Time moved on to c->cnt.time_us. */
void grid_time(struct ctx *c);
void grid_finish(struct ctx *c);
/* The sites were merged: site i's cells add up into site map[i]'s. */
void grid_remap(struct ctx *c, const uint32_t *map);

/* Before a site's figures change (every change comes after a call to
 * this): if they have not been looked at since the last snapshot, they
 * still hold the value they had then; with a time grid, if they have not
 * changed in this bucket, they are those of the end of their bucket.  One
 * compare: the epoch moves on at both. */
static inline struct mt_site *site_touch(struct ctx *c, uint32_t idx)
{
	struct mt_site *s = &c->rep->sites[idx];
	if (s->epoch != c->epoch) {
		if (s->epoch < c->snap_epoch) {
			s->peak_bytes = s->live_bytes;
			s->peak_blocks = s->live_blocks;
		}
		if (c->grid && c->rep->grid.sites[idx].bucket != c->grid_bucket)
			grid_change(c, idx);
		s->epoch = c->epoch;
	}
	return s;
}

/* Before anything leaves the heap or a site at the heap's peak: if the
 * sites hold more now than at the plateau's last snapshot, this is the
 * moment to keep. */
static inline void peak_moment(struct ctx *c)
{
	if (c->in_plateau && (!c->snapped || c->sites_live > c->snap_total))
		sites_snapshot(c);
}

/* A block's bytes pass to the block a higher domain made of it: they leave
 * its site but not the heap, so this is no moment of the peak. */
static inline void site_unlayer(struct ctx *c, uint32_t idx, uint64_t size)
{
	struct mt_site *s = site_touch(c, idx);
	s->live_bytes -= size;
	s->live_blocks--;
	c->sites_live -= size;
	if (c->heap_sites)
		c->rep->heap.live -= size;
}

/* ---- heap level -------------------------------------------------------------------------- */

void timeline_high(struct ctx *c);

static inline void heap_up(struct ctx *c, uint64_t n)
{
	struct mt_report *rep = c->rep;
	rep->heap.live += n;
	if (rep->heap.live > rep->heap.peak) {
		rep->heap.peak = rep->heap.live;
		rep->heap.peak_time_us = c->cnt.time_us;
		c->in_plateau = true;
		c->snapped = false;
	}
	if (rep->heap.live > c->tl.cur.heap)
		timeline_high(c);
	if (c->marks.open && rep->heap.live > rep->marks[rep->nmarks - 1].heap_peak)
		rep->marks[rep->nmarks - 1].heap_peak = rep->heap.live;
}

/* Before any site changes with it. */
static inline void heap_down(struct ctx *c, uint64_t n)
{
	peak_moment(c);
	c->in_plateau = false;
	c->rep->heap.live -= n;
}

static inline void site_add(struct ctx *c, uint32_t idx, uint64_t size)
{
	struct mt_site *s = site_touch(c, idx);
	s->live_bytes += size;
	s->live_blocks++;
	c->sites_live += size;
	if (__builtin_expect(c->heap_sites, 0))
		heap_up(c, size);
}

static inline void site_sub(struct ctx *c, uint32_t idx, uint64_t size)
{
	if (__builtin_expect(c->heap_sites, 0))
		heap_down(c, size);
	peak_moment(c);
	struct mt_site *s = site_touch(c, idx);
	s->live_bytes -= size;
	s->live_blocks--;
	c->sites_live -= size;
}

/* ---- pools.c ------------------------------------------------------------------------------- */

int pools_init(struct ctx *c);
void pools_free(struct ctx *c);
/* Sets the geometry from the header (after it has been read). */
void pools_geometry(struct ctx *c);
void pools_arena_alloc(struct ctx *c, uint64_t size, uint64_t addr);
void pools_arena_free(struct ctx *c, uint64_t size, uint64_t addr);
/* A block enters or leaves pool *pool (a pools_ref() result) of arena a;
 * keep_class: an in-place realloc, the pool keeps its size class. */
void pools_block_add(struct ctx *c, uint64_t *pool, struct arena_slot *a, uint64_t addr,
		     uint64_t size, bool keep_class);
void pools_block_del(struct ctx *c, uint64_t *pool, struct arena_slot *a, uint64_t size);
/* Makes the tables of a; -1 when out of memory. */
int pools_tables(struct ctx *c, struct arena_slot *a);
void pools_finish(struct ctx *c);

/* The value of the pool holding addr, NULL when addr is in no pool.  Valid
 * until the next arena event. */
static inline uint64_t *pools_ref(struct ctx *c, uint64_t addr)
{
	uint64_t pool = addr & c->pools.pool_mask;
	if (pool == c->pools.cache_pool)
		return c->pools.cache_ref;
	uint64_t *v = hm_ref(&c->pools.pools, pool);
	if (v) {
		c->pools.cache_pool = pool;
		c->pools.cache_ref = v;
	}
	return v;
}

/* ---- lists.c ------------------------------------------------------------------------------- */

int lists_init(struct ctx *c);
void lists_free(struct ctx *c);
/* A PYMEM realloc at site: from old (0: NULL, or not live) with old_tag
 * and old_size to new_addr of size.  Returns the TAG_CHAIN* flags of the
 * new block: 0 when it is not (or no longer) a list's item buffer. */
uint32_t lists_realloc(struct ctx *c, uint64_t old, uint32_t old_tag, uint64_t old_size,
		       uint64_t new_addr, uint64_t size, uint32_t site);
/* A block with TAG_CHAIN is gone (freed, or not a list buffer any more). */
void lists_end(struct ctx *c, uint64_t addr, uint32_t tag, uint64_t size);
/* Free-threaded builds: the PyMem block at old (live value *old_val, size
 * old_size) is freed right after its thread allocated t->fresh.  If that
 * is list_resize() moving a list's items, the chain moves to the new block
 * and *old_val loses its list flags. */
void lists_moved(struct ctx *c, struct thread *t, uint64_t old, uint64_t *old_val,
		 uint64_t old_size);

/* ---- timeline.c ---------------------------------------------------------------------------- */

int timeline_init(struct ctx *c);
/* Time moved on to c->cnt.time_us. */
void timeline_time(struct ctx *c);
/* The window opens: the points start again from now. */
void timeline_reset(struct ctx *c);
void timeline_finish(struct ctx *c);
void hist_add(struct mt_report *rep, uint64_t size);
void hist_sub(struct mt_report *rep, uint64_t size);

/* ---- marks.c ------------------------------------------------------------------------------- */

int marks_mark(struct ctx *c, uint64_t label_id);
void marks_finish(struct ctx *c);
/* The window opens (at_mark: at a mark, which starts the first step):
 * the steps start again from now. */
void marks_window(struct ctx *c, bool at_mark);
/* The running counters with the levels filled in. */
void counters_now(struct ctx *c, struct mt_counters *out);

/* ---- lines.c ------------------------------------------------------------------------------- */

int lines_init(struct ctx *c);
void lines_free(struct ctx *c);
/* SCRIPT: the thread's main-script frame is now trace frame id. */
void lines_script(struct ctx *c, uint64_t id);
/* After sites_finish: the lines' peak bytes from their sites, whose
 * per-line copies are then merged; the lines in file order, with their
 * source.  Remaps lists.sites. */
void lines_finish(struct ctx *c);

static inline struct mt_script_line *line_of(struct ctx *c, uint32_t line)
{
	return line ? &c->rep->lines[line - 1] : NULL;
}

/* Arenas and pools that came or went while the current thread ran a line. */
static inline void lines_arena(struct ctx *c, bool gained)
{
	struct mt_script_line *l = line_of(c, cur_thread(c)->line);
	if (l)
		gained ? l->arenas_allocated++ : l->arenas_freed++;
}
static inline void lines_pool(struct ctx *c, bool gained)
{
	struct mt_script_line *l = line_of(c, cur_thread(c)->line);
	if (l)
		gained ? l->pools_allocated++ : l->pools_freed++;
}
static inline void lines_resize(struct ctx *c)
{
	struct mt_script_line *l = line_of(c, cur_thread(c)->line);
	if (l)
		l->list_resizes++;
}

/* ---- view.c -------------------------------------------------------------------------------- */

/* Sets the filters and the window up from rep->view (before the trace). */
void view_init(struct ctx *c);
/* Time moved on: the window may open or close. */
void view_time(struct ctx *c);
/* A mark with string id: the window may open or close; true when the
 * mark closed it (the mark is then out of the window). */
bool view_mark(struct ctx *c, uint64_t label_id);
/* Whether a new block of dom by thread t is in view. */
static inline bool view_in(const struct ctx *c, const struct thread *t, int dom)
{
	unsigned doms = c->rep->view.domains;
	return !t->out && (!doms || (doms & (1u << dom)));
}
/* A live block made before the window opened leaves (view.c keeps what
 * the sites had then apart, for the leaks of the window). */
static inline void view_old_gone(struct ctx *c, uint32_t site, uint64_t size)
{
	struct mt_site *s = &c->rep->sites[site];
	s->old_bytes -= size;
	s->old_blocks--;
}
/* Before the figures are read: the leaks of the window. */
void view_finish(struct ctx *c);

/* ---- the list of sites' remapping (lists.c) --------------------------------------------- */

/* The sites were merged (rep->nsites is their new number): site i is now
 * map[i].  List sites that now share a site are merged too. */
void lists_remap(struct ctx *c, const uint32_t *map);
/* ---- mappings.c ----------------------------------------------------------------------------- */

struct mt_rec;

int mappings_init(struct ctx *c);
void mappings_free(struct ctx *c);
/* MMAP, MUNMAP, MREMAP_OUT and MREMAP_IN records. */
void mappings_record(struct ctx *c, const struct mt_rec *r);
void mappings_finish(struct ctx *c);

/* ---- memory.c -------------------------------------------------------------------------------- */

void memory_sample(struct ctx *c, const struct mt_rec *r);
void memory_mark(struct ctx *c);
void memory_finish(struct ctx *c);
/* The sites were merged: the heap top's blocks name site map[i] for i. */
void memory_remap(struct ctx *c, const uint32_t *map);

/* Both, for whoever merges sites (lines.c, stacks.c). */
static inline void sites_remap(struct ctx *c, const uint32_t *map)
{
	lists_remap(c, map);
	memory_remap(c, map);
	if (c->grid)
		grid_remap(c, map);
}
/* report.c: the requested size of a live block of dom (val: its packed value). */
uint64_t block_size(struct ctx *c, int dom, uint64_t addr, uint64_t val);
/* report.c: one record of the process's ordered record stream. */
void report_apply(struct ctx *c, const struct mt_rec *r);
/* report.c: applies d's records in order up to the end of its bytes (0), a
 * record only order.c takes (2, *stop holds it: EPOCH, THREAD, HORIZON,
 * STREAM), the window's end or memory running out (1), or a malformed
 * record (-1). */
int report_run(struct ctx *c, struct mt_dec *d, struct mt_rec *stop);
/* report.c: whether r fits the heap as it is: an allocation at an address
 * that is not live, a free of one that is (anything else always fits). */
bool report_applicable(struct ctx *c, const struct mt_rec *r);

/* ---- order.c --------------------------------------------------------------------------------- */

int order_init(struct ctx *c);
void order_free(struct ctx *c);
/* An event block's payload: its segments are kept (stream 0's definitions
 * applied at once), and each HORIZON settles the epochs below it.  0, or
 * -1 when the payload is malformed (order_error says why) or memory ran
 * out (c->oom). */
int order_block(struct ctx *c, const uint8_t *raw, size_t len);
/* Applies everything kept: at a footer, and at the end of the trace. */
int order_settle_all(struct ctx *c);
/* What was wrong with the streams, NULL if nothing. */
const char *order_error(const struct ctx *c);

#endif
