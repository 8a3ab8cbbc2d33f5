/*
 * test_analysis.c - the report's analyses on synthetic traces with exact
 * answers: pymalloc pools and arenas from addresses, list buffer chains,
 * Python sites with their stacks and peak contributions, temporaries,
 * blocks layered over lower domains, marks, the bounded timeline, the size
 * histogram, the JSON and text renderings of all of it, and the pprof and
 * speedscope exports (pprof's read back with protobuf-c).
 */
#define _GNU_SOURCE /* open_memstream */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>
#include <zlib.h>

#include "export.h"
#include "output.h"
#include "profile.pb-c.h"
#include "report.h"
#include "tracegen.h"

#define KIB 1024ull
#define MIB (1024ull * 1024)
#define POOL (16 * KIB)
#define ARENA0 0x7f0000000000ull      /* 1 MiB aligned: 64 pools */
#define ARENA1 0x7f0000201000ull      /* page aligned: 63 whole pools */
#define HEAP 0x5550000000ull          /* malloc'd blocks */

/* ---- building traces ------------------------------------------------------ */

/* A trace of a CPython 3.11 process: 16 KiB pools in 1 MiB arenas. */
static void py_trace(struct tg *t)
{
	tg_init(t);
	tg_py_header(t, 77, 2);
}

/* A trace of a free-threaded CPython 3.13: no pymalloc, so no pool or
 * arena size. */
static void ft_trace(struct tg *t)
{
	tg_init(t);
	t->kv_len = tg_header_kv(t->kv, 78);
	t->kv_len = mt_kv_put_u64(t->kv, t->kv_len, MT_H_PY_VERSION, 0x030d05f0);
	t->kv_len = mt_kv_put_u64(t->kv, t->kv_len, MT_H_PY_DEPTH, 1);
	t->kv_len = mt_kv_put_u64(t->kv, t->kv_len, MT_H_PY_FREE_THREADED, 1);
	tg_kv_block(t, MT_BLOCK_HEADER);
	tg_thread(t, 1);
}

/* Keeps the event block from overflowing (a new block restates the thread). */
static void room(struct tg *t, uint64_t tid)
{
	if (mt_enc_full(&t->enc)) {
		tg_flush(t);
		tg_thread(t, tid);
	}
}

static void arena(struct tg *t, int kind, uint64_t size, uint64_t addr)
{
	mt_enc_alloc(&t->enc, kind, MT_DOM_PYOBJ, size, addr);
}

static void string(struct tg *t, uint64_t id, const char *s)
{
	tg_string(t, id, s);
}

static void loc(struct tg *t, uint64_t frame)
{
	tg_value(t, MT_REC_LOC, frame);
}

static void mark(struct tg *t, uint64_t string_id)
{
	tg_value(t, MT_REC_MARK, string_id);
}

static void time_us(struct tg *t, uint64_t delta)
{
	tg_value(t, MT_REC_TIME, delta);
}

static struct mt_report build_flags(struct tg *t, unsigned flags)
{
	struct mt_report rep;
	FILE *f = tg_finish(t);
	assert_int_equal(mt_report_build_flags(f, &rep, NULL, flags, NULL, NULL), MT_REPORT_OK);
	fclose(f);
	return rep;
}

static struct mt_report build(struct tg *t)
{
	return build_flags(t, 0);
}

/* The address of object j of pool k of an arena (pools start past a
 * 48-byte header, as pymalloc's do). */
static uint64_t obj_addr(uint64_t arena_base, unsigned k, unsigned j, unsigned size)
{
	uint64_t first = (arena_base + POOL - 1) & ~(POOL - 1);
	return first + k * POOL + 48 + (uint64_t)j * size;
}

static const struct mt_site *find_site(const struct mt_report *rep, const char *file,
				       uint64_t line, int dom)
{
	for (size_t i = 0; i < rep->nsites; i++) {
		const struct mt_site *s = &rep->sites[i];
		if (s->dom == dom && !strcmp(mt_site_file(rep, s), file) &&
		    mt_site_line(rep, s) == line)
			return s;
	}
	return NULL;
}

static json_int_t jint(const json_t *o, const char *key)
{
	json_t *v = json_object_get(o, key);
	assert_true(json_is_integer(v));
	return json_integer_value(v);
}

/* ---- pools ---------------------------------------------------------------- */

/* 1000 objects of 32 bytes: 510 fit a pool after its header, so two
 * pools; a second, page-aligned arena keeps one survivor; a frame-stack
 * chunk is not an arena. */
static void test_pools_exact(void **state)
{
	(void)state;
	struct tg t;
	py_trace(&t);
	arena(&t, MT_REC_ARENA_ALLOC, MIB, ARENA0);
	arena(&t, MT_REC_ARENA_ALLOC, 16 * KIB, HEAP + 0x100000); /* frame stack */
	for (unsigned i = 0; i < 1000; i++) {
		room(&t, 1);
		tg_malloc(&t, MT_DOM_PYOBJ, 32, obj_addr(ARENA0, i / 510, i % 510, 32));
	}
	/* one 48-byte and one 20-byte (class 32) object in the second arena */
	arena(&t, MT_REC_ARENA_ALLOC, MIB, ARENA1);
	tg_malloc(&t, MT_DOM_PYMEM, 48, obj_addr(ARENA1, 62, 0, 48));
	tg_malloc(&t, MT_DOM_PYOBJ, 20, obj_addr(ARENA1, 0, 0, 32));
	/* no pool before the first whole pool of ARENA1: not counted */
	tg_malloc(&t, MT_DOM_PYOBJ, 20, ARENA1 + 64);
	tg_free_rec(&t, MT_DOM_PYOBJ, ARENA1 + 64);
	/* a large object: not a pool's, even when its address is in a pool's range */
	tg_malloc(&t, MT_DOM_PYOBJ, 600, HEAP);
	for (unsigned i = 0; i < 1000; i++) {
		room(&t, 1);
		tg_free_rec(&t, MT_DOM_PYOBJ, obj_addr(ARENA0, i / 510, i % 510, 32));
	}
	tg_free_rec(&t, MT_DOM_PYOBJ, HEAP);
	arena(&t, MT_REC_ARENA_FREE, MIB, ARENA0);
	arena(&t, MT_REC_ARENA_FREE, 16 * KIB, HEAP + 0x100000);
	tg_free_rec(&t, MT_DOM_PYMEM, obj_addr(ARENA1, 62, 0, 48));
	struct mt_report rep = build(&t);
	const struct mt_pools *p = &rep.pools;

	assert_int_equal(p->pool_size, POOL);
	assert_int_equal(p->arena_size, MIB);
	assert_int_equal(p->arenas_allocated, 2);
	assert_int_equal(p->arenas_freed, 1);
	assert_int_equal(p->arenas_peak, 2);
	assert_int_equal(p->arenas_live, 1);
	assert_int_equal(p->other_allocated, 1);
	assert_int_equal(p->other_freed, 1);
	assert_int_equal(p->other_bytes_peak, 16 * KIB);
	assert_int_equal(p->pools_peak, 4); /* 2 + the two in ARENA1 */
	assert_int_equal(p->pools_in_use, 1);

	const struct mt_size_class *c32 = &p->classes[1], *c48 = &p->classes[2];
	assert_int_equal(c32->allocs, 1001);
	assert_int_equal(c32->live_objects_peak, 1001);
	assert_int_equal(c32->pools_peak, 3);
	assert_int_equal(c32->live_objects, 1);
	assert_int_equal(c32->pools, 1);
	assert_int_equal(c48->allocs, 1);
	assert_int_equal(c48->live_objects_peak, 1);
	assert_int_equal(c48->pools_peak, 1);
	assert_int_equal(c48->live_objects, 0);
	for (int k = 3; k < MT_SIZE_CLASSES; k++)
		assert_int_equal(p->classes[k].allocs, 0);

	/* the arena kept by one survivor */
	assert_int_equal(p->nretained, 1);
	assert_int_equal(p->retained[0].address, ARENA1);
	assert_int_equal(p->retained[0].live_objects, 1);
	assert_int_equal(p->retained[0].live_bytes, 20);
	assert_int_equal(p->retained[0].pools_in_use, 1);

	/* heap = arenas + the 16 KiB chunk; the objects sit inside the arenas */
	assert_int_equal(rep.heap.peak, 2 * MIB + 16 * KIB);
	assert_int_equal(rep.heap.live, MIB);
	assert_int_equal(p->at_exit.arena_bytes, MIB);
	assert_int_equal(p->at_exit.object_bytes, 20);
	assert_int_equal(p->at_peak.arena_bytes, 2 * MIB);
	/* the sites held the most just before the first free; the large
	 * object is not in an arena */
	assert_int_equal(p->at_peak.object_bytes, 1000 * 32 + 48 + 20);
	assert_int_equal(rep.dom[MT_DOM_PYOBJ].live_blocks, 1);
	assert_int_equal(rep.dom[MT_DOM_PYOBJ].live_bytes, 20);
	assert_int_equal(rep.dom[MT_DOM_PYOBJ].peak_bytes, 1000 * 32 + 20 + 600);
	mt_report_free(&rep);
}

/* Frees of blocks in arenas, reallocs in place and between pools, an
 * address reused after its free, and a block of the wrong domain. */
static void test_pools_reallocs(void **state)
{
	(void)state;
	struct tg t;
	uint64_t a = obj_addr(ARENA0, 0, 0, 128), b = obj_addr(ARENA0, 1, 0, 64);
	py_trace(&t);
	arena(&t, MT_REC_ARENA_ALLOC, MIB, ARENA0);
	tg_malloc(&t, MT_DOM_PYOBJ, 128, a);
	tg_realloc(&t, MT_DOM_PYOBJ, a, 100, a); /* in place: the pool stays class 128 */
	mt_enc_addr_only(&t.enc, MT_REC_REALLOC_OUT, MT_DOM_PYOBJ, a);
	mt_enc_alloc(&t.enc, MT_REC_REALLOC_IN, MT_DOM_PYOBJ, 50, b); /* moved: class 64 */
	tg_free_rec(&t, MT_DOM_PYMEM, b); /* not PYMEM's: unmatched */
	tg_malloc(&t, MT_DOM_PYOBJ, 30, a);     /* the empty pool of class 128 reused */
	struct mt_report rep = build(&t);
	const struct mt_pools *p = &rep.pools;
	assert_int_equal(p->classes[7].allocs, 1);   /* 128 */
	assert_int_equal(p->classes[7].pools_peak, 1);
	assert_int_equal(p->classes[7].live_objects, 0);
	assert_int_equal(p->classes[3].allocs, 1);   /* 64 */
	assert_int_equal(p->classes[3].live_objects, 1);
	assert_int_equal(p->classes[1].allocs, 1);   /* 32 */
	assert_int_equal(p->classes[1].live_objects, 1);
	assert_int_equal(p->pools_in_use, 2);
	assert_int_equal(p->pools_peak, 2);
	assert_int_equal(rep.dom[MT_DOM_PYMEM].unmatched_frees, 1);
	assert_int_equal(rep.dom[MT_DOM_PYOBJ].live_bytes, 80);
	assert_int_equal(rep.dom[MT_DOM_PYOBJ].live_blocks, 2);
	assert_int_equal(rep.dom[MT_DOM_PYOBJ].reallocs, 2);
	assert_int_equal(rep.dom[MT_DOM_PYOBJ].inconsistent, 0);
	mt_report_free(&rep);
}

/* ---- lists ---------------------------------------------------------------- */

static void test_list_chains(void **state)
{
	(void)state;
	static const uint64_t caps[] = { 4, 8, 16, 24, 32, 40, 52, 64, 76, 92 };
	struct tg t;
	uint64_t addr = HEAP, prev = 0, copied = 0;
	py_trace(&t);
	string(&t, 1, "l.py");
	string(&t, 2, "grow");
	mt_enc_code(&t.enc, 1, 1, 2, 1);
	mt_enc_frame(&t.enc, 1, 0, 1, 3);
	mt_enc_frame(&t.enc, 2, 0, 1, 7);
	loc(&t, 1);
	/* appends from empty: every resize moves the buffer */
	for (size_t i = 0; i < sizeof caps / sizeof caps[0]; i++) {
		tg_realloc(&t, MT_DOM_PYMEM, prev, 8 * caps[i], addr);
		if (prev)
			copied += 8 * caps[i - 1];
		prev = addr;
		addr += 0x1000;
	}
	/* a list made at its size, then one append: capacity 2 -> 8 */
	loc(&t, 2);
	mt_enc_alloc(&t.enc, MT_REC_CALLOC, MT_DOM_PYMEM, 16, HEAP + 0x100000);
	tg_realloc(&t, MT_DOM_PYMEM, HEAP + 0x100000, 64, HEAP + 0x100000);
	/* not lists: a size that is not 8 * a multiple of 4; the OBJ domain */
	tg_realloc(&t, MT_DOM_PYMEM, 0, 40, HEAP + 0x200000);
	tg_realloc(&t, MT_DOM_PYOBJ, 0, 64, HEAP + 0x300000);
	/* a one-resize buffer that is freed */
	tg_realloc(&t, MT_DOM_PYMEM, 0, 32, HEAP + 0x400000);
	tg_free_rec(&t, MT_DOM_PYMEM, HEAP + 0x400000);
	struct mt_report rep = build(&t);
	const struct mt_lists *l = &rep.lists;

	assert_int_equal(l->buffers, 3);
	assert_int_equal(l->resizes, 10 + 1 + 1);
	assert_int_equal(l->bytes_copied, copied);
	/* live at exit: the 92 (n = 77: slack 15) and the 8 (n = 3: slack 5) */
	assert_int_equal(l->slack_bytes_live, (15 + 5) * 8);
	assert_int_equal(l->nsites, 2);
	const struct mt_list_site *s = &l->sites[0];
	assert_int_equal(mt_site_line(&rep, &rep.sites[s->site]), 3);
	assert_int_equal(s->resizes, 10);
	assert_int_equal(s->buffers, 1);
	assert_int_equal(s->longest, 10);
	assert_int_equal(s->final_capacity, 92);
	assert_int_equal(s->slack_slots, 15);
	assert_int_equal(s->chain_len, 10);
	assert_int_equal(s->chain_skipped, 0);
	for (size_t i = 0; i < 10; i++)
		assert_int_equal(s->chain[i], caps[i]);
	s = &l->sites[1];
	assert_int_equal(mt_site_line(&rep, &rep.sites[s->site]), 7);
	assert_int_equal(s->resizes, 2);
	assert_int_equal(s->buffers, 2);
	assert_int_equal(s->chain_len, 2);
	assert_int_equal(s->chain[0], 2);
	assert_int_equal(s->chain[1], 8);
	assert_int_equal(s->final_capacity, 8);
	assert_int_equal(s->slack_slots, 5);
	mt_report_free(&rep);
}

/* A long chain keeps its first and its latest capacities. */
static void test_long_chain(void **state)
{
	(void)state;
	struct tg t;
	uint64_t cap = 0, prev = 0, n = 0, resizes = 0;
	uint64_t all[200];
	py_trace(&t);
	while (resizes < 100) {
		/* appends: list_resize(n + 1) when full */
		uint64_t want = n + 1;
		if (want > cap) {
			uint64_t nc = (want + (want >> 3) + 6) & ~3ull;
			uint64_t addr = HEAP + (resizes % 2) * 0x10000000;
			tg_realloc(&t, MT_DOM_PYMEM, prev, 8 * nc, addr);
			prev = addr;
			all[resizes++] = cap = nc;
		}
		n = want;
	}
	struct mt_report rep = build(&t);
	const struct mt_list_site *s = &rep.lists.sites[0];
	assert_int_equal(s->longest, 100);
	assert_int_equal(s->chain_len, MT_CHAIN_MAX);
	assert_int_equal(s->chain_skipped, 100 - MT_CHAIN_MAX);
	for (int i = 0; i < MT_CHAIN_HEAD; i++)
		assert_int_equal(s->chain[i], all[i]);
	for (int i = MT_CHAIN_HEAD; i < MT_CHAIN_MAX; i++)
		assert_int_equal(s->chain[i], all[100 - MT_CHAIN_MAX + i]);
	assert_int_equal(s->final_capacity, all[99]);
	mt_report_free(&rep);
}

/* ---- sites, peak, temporaries, layering ---------------------------------- */

static void define_frames(struct tg *t)
{
	string(t, 1, "a.py");
	string(t, 2, "f");
	string(t, 3, "g");
	mt_enc_code(&t->enc, 1, 1, 2, 1);
	mt_enc_code(&t->enc, 2, 1, 3, 10);
	mt_enc_frame(&t->enc, 1, 0, 1, 5);  /* f at a.py:5 */
	mt_enc_frame(&t->enc, 2, 1, 2, 12); /* g at a.py:12, called from there */
}

/* g (a.py:12, called from f at a.py:5) in thread 1 holds 300 bytes in 3
 * blocks at the heap peak; f in thread 2 holds 50; the malloc block of the
 * peak, 2000 bytes; "<native>" objects come after it. */
static void sites_trace(struct tg *t)
{
	enum { A1 = 0x1000, A2 = 0x2000, A3 = 0x3000, A4 = 0x4000, M1 = 0x9000, M2 = 0xa000 };
	py_trace(t);
	define_frames(t);
	loc(t, 2);
	tg_malloc(t, MT_DOM_PYOBJ, 100, A1);
	tg_malloc(t, MT_DOM_PYOBJ, 100, A2);
	time_us(t, 10);
	tg_malloc(t, MT_DOM_MALLOC, 1000, M1); /* heap peak 1000 */
	tg_malloc(t, MT_DOM_PYOBJ, 100, A3);   /* the heap stays: the sites grow */
	tg_free_rec(t, MT_DOM_PYOBJ, A1);      /* the moment: g holds 300 */
	tg_free_rec(t, MT_DOM_MALLOC, M1);
	tg_thread(t, 2);                       /* another thread, its own place */
	loc(t, 1);
	tg_malloc(t, MT_DOM_PYOBJ, 50, A4);
	tg_thread(t, 1);
	tg_malloc(t, MT_DOM_PYOBJ, 100, A1);   /* still at g */
	time_us(t, 10);
	tg_malloc(t, MT_DOM_MALLOC, 2000, M2); /* heap peak 2000 */
	tg_free_rec(t, MT_DOM_PYOBJ, A2);      /* the moment: g 300, f 50 */
	tg_free_rec(t, MT_DOM_MALLOC, M2);
	loc(t, 0);
	tg_malloc(t, MT_DOM_PYOBJ, 10, 0x5000); /* no location: native */
}

static void test_sites_and_peak(void **state)
{
	(void)state;
	struct tg t;
	sites_trace(&t);
	struct mt_report rep = build(&t);

	assert_int_equal(rep.heap.peak, 2000);
	assert_int_equal(rep.heap.peak_time_us, 20);
	const struct mt_site *g = find_site(&rep, "a.py", 12, MT_DOM_PYOBJ);
	const struct mt_site *f = find_site(&rep, "a.py", 5, MT_DOM_PYOBJ);
	const struct mt_site *n = find_site(&rep, "<native>", 0, MT_DOM_PYOBJ);
	assert_non_null(g);
	assert_non_null(f);
	assert_non_null(n);
	assert_string_equal(mt_site_function(&rep, g), "g");
	assert_string_equal(mt_site_function(&rep, f), "f");
	assert_int_equal(g->allocs, 4);
	assert_int_equal(g->bytes, 400);
	assert_int_equal(g->live_bytes, 200);
	assert_int_equal(g->live_blocks, 2);
	assert_int_equal(g->peak_bytes, 300);
	assert_int_equal(g->peak_blocks, 3);
	assert_int_equal(f->allocs, 1);
	assert_int_equal(f->peak_bytes, 50);
	assert_int_equal(f->live_bytes, 50);
	assert_int_equal(n->allocs, 1);
	assert_int_equal(n->peak_bytes, 0);
	/* native malloc site: the two peaks' blocks, gone at the moment */
	const struct mt_site *m = find_site(&rep, "<native>", 0, MT_DOM_MALLOC);
	assert_non_null(m);
	assert_int_equal(m->allocs, 2);
	assert_int_equal(m->peak_bytes, 2000);

	/* JSON: stacks outermost first, the top sites at the peak, the flame */
	json_t *root = mt_report_to_json(&rep);
	json_t *top = json_object_get(json_object_get(json_object_get(root, "summary"),
						      "heap_peak"), "top_sites");
	assert_int_equal(json_array_size(top), 3);
	assert_int_equal(jint(json_array_get(top, 0), "bytes"), 2000);
	assert_int_equal(jint(json_array_get(top, 1), "bytes"), 300);
	assert_string_equal(json_string_value(json_object_get(json_array_get(top, 1), "function")),
			    "g");
	json_t *sites = json_object_get(root, "sites"), *gs = NULL;
	for (size_t i = 0; i < json_array_size(sites); i++)
		if (jint(json_array_get(sites, i), "line") == 12)
			gs = json_array_get(sites, i);
	assert_non_null(gs);
	json_t *stack = json_object_get(gs, "stack");
	assert_int_equal(json_array_size(stack), 2);
	assert_int_equal(jint(json_array_get(stack, 0), "line"), 5);
	assert_int_equal(jint(json_array_get(stack, 1), "line"), 12);
	assert_string_equal(json_string_value(json_object_get(gs, "domain")), "pymem_obj");
	json_t *flame = json_object_get(root, "flame");
	assert_int_equal(jint(flame, "value"), 400 + 50 + 10 + 3000);
	json_t *kids = json_object_get(flame, "children");
	assert_int_equal(json_array_size(kids), 2); /* by name: "<native>" first */
	json_t *fnode = json_array_get(kids, 1), *nat = json_array_get(kids, 0);
	assert_string_equal(json_string_value(json_object_get(fnode, "name")), "f (a.py:5)");
	assert_int_equal(jint(fnode, "value"), 450);
	json_t *gnode = json_array_get(json_object_get(fnode, "children"), 0);
	assert_string_equal(json_string_value(json_object_get(gnode, "name")), "g (a.py:12)");
	assert_int_equal(jint(gnode, "value"), 400);
	assert_string_equal(json_string_value(json_object_get(nat, "name")), "<native>");
	assert_int_equal(jint(nat, "value"), 3010);
	json_decref(root);
	mt_report_free(&rep);
}

/* The malloc and raw blocks under a large PyObject_Malloc are the
 * object's: one allocation at its site, counted once. */
static void test_layered_blocks(void **state)
{
	(void)state;
	struct tg t;
	py_trace(&t);
	define_frames(&t);
	tg_malloc(&t, MT_DOM_MALLOC, 1000, HEAP);
	tg_malloc(&t, MT_DOM_PYRAW, 1000, HEAP);
	loc(&t, 1);
	tg_malloc(&t, MT_DOM_PYOBJ, 1000, HEAP);
	/* grows: all three move */
	mt_enc_addr_only(&t.enc, MT_REC_REALLOC_OUT, MT_DOM_PYOBJ, HEAP);
	mt_enc_addr_only(&t.enc, MT_REC_REALLOC_OUT, MT_DOM_PYRAW, HEAP);
	tg_realloc(&t, MT_DOM_MALLOC, HEAP, 3000, HEAP + 0x10000);
	mt_enc_alloc(&t.enc, MT_REC_REALLOC_IN, MT_DOM_PYRAW, 3000, HEAP + 0x10000);
	mt_enc_alloc(&t.enc, MT_REC_REALLOC_IN, MT_DOM_PYOBJ, 3000, HEAP + 0x10000);
	/* a native block of its own */
	tg_malloc(&t, MT_DOM_MALLOC, 7, HEAP + 0x20000);
	struct mt_report rep = build(&t);
	const struct mt_site *f = find_site(&rep, "a.py", 5, MT_DOM_PYOBJ);
	const struct mt_site *m = find_site(&rep, "<native>", 0, MT_DOM_MALLOC);
	const struct mt_site *r = find_site(&rep, "<native>", 0, MT_DOM_PYRAW);
	assert_non_null(f);
	assert_int_equal(f->allocs, 2);
	assert_int_equal(f->bytes, 4000);
	assert_int_equal(f->live_bytes, 3000);
	assert_int_equal(f->peak_bytes, 3000);
	assert_int_equal(m->allocs, 1);
	assert_int_equal(m->live_bytes, 7);
	assert_true(!r || (r->allocs == 0 && r->live_bytes == 0));
	/* the domains still count every block */
	assert_int_equal(rep.dom[MT_DOM_MALLOC].live_bytes, 3007);
	assert_int_equal(rep.dom[MT_DOM_PYRAW].live_bytes, 3000);
	assert_int_equal(rep.heap.live, 3007);
	assert_int_equal(rep.heap.peak, 3007);
	/* the histogram holds each allocation once */
	uint64_t allocs = 0;
	for (int k = 0; k < MT_HIST_BUCKETS; k++)
		allocs += rep.hist[k].allocs;
	assert_int_equal(allocs, 3);
	assert_int_equal(rep.hist[10].allocs, 1); /* 1000: 512..1023 */
	assert_int_equal(rep.hist[12].allocs, 1); /* 3000 */
	assert_int_equal(rep.hist[3].allocs, 1);  /* 7 */
	mt_report_free(&rep);
}

/* A raw block freed past the tracer's hook (through CPython's default raw
 * allocator): its malloc block's free ends it, and the address can be
 * handed out again without an inconsistency. */
static void test_freed_below(void **state)
{
	(void)state;
	struct tg t;
	py_trace(&t);
	tg_malloc(&t, MT_DOM_MALLOC, 80, HEAP);
	tg_malloc(&t, MT_DOM_PYRAW, 80, HEAP);
	tg_free_rec(&t, MT_DOM_MALLOC, HEAP);
	tg_malloc(&t, MT_DOM_MALLOC, 16, HEAP);
	tg_malloc(&t, MT_DOM_PYRAW, 16, HEAP);
	struct mt_report rep = build(&t);
	const struct mt_dom_stats *raw = &rep.dom[MT_DOM_PYRAW];
	assert_int_equal(raw->freed_below, 1);
	assert_int_equal(raw->inconsistent, 0);
	assert_int_equal(raw->frees, 0);
	assert_int_equal(raw->live_bytes, 16);
	assert_int_equal(raw->live_blocks, 1);
	assert_int_equal(rep.heap.live, 16);
	mt_report_free(&rep);
}

/* A free-threaded list_resize: a new array (8 bytes of capacity, then the
 * items) and, with nothing between in the thread, the old one's free. */
static void test_free_threaded_lists(void **state)
{
	(void)state;
	static const uint64_t caps[] = { 4, 8, 16, 24 };
	struct tg t;
	ft_trace(&t);
	define_frames(&t);
	loc(&t, 1);
	uint64_t addr = HEAP;
	for (size_t i = 0; i < sizeof caps / sizeof caps[0]; i++) {
		tg_malloc(&t, MT_DOM_PYMEM, 8 + 8 * caps[i], addr);
		if (i)
			tg_free_rec(&t, MT_DOM_PYMEM, addr - 0x1000);
		addr += 0x1000;
	}
	/* not a resize: something else happened in between */
	tg_malloc(&t, MT_DOM_PYMEM, 8 + 8 * 8, HEAP + 0x100000);
	tg_malloc(&t, MT_DOM_PYOBJ, 32, HEAP + 0x200000);
	tg_free_rec(&t, MT_DOM_PYMEM, addr - 0x1000);
	struct mt_report rep = build(&t);
	const struct mt_lists *l = &rep.lists;
	assert_int_equal(l->buffers, 1);
	assert_int_equal(l->resizes, 3); /* the first array is no resize */
	assert_int_equal(l->bytes_copied, 8 * (4 + 8 + 16));
	assert_int_equal(l->nsites, 1);
	const struct mt_list_site *s = &l->sites[0];
	assert_int_equal(s->chain_len, 4);
	for (size_t i = 0; i < 4; i++)
		assert_int_equal(s->chain[i], caps[i]);
	assert_int_equal(s->final_capacity, 24);
	assert_int_equal(s->slack_slots, 24 - 17);
	/* no pymalloc: every block counts in the heap by itself */
	assert_false(rep.pools.arenas_allocated);
	assert_int_equal(rep.heap.live, 8 + 8 * 8 + 32);
	assert_int_equal(rep.heap.peak, (8 + 8 * 16) + (8 + 8 * 24));
	mt_report_free(&rep);
}

/* PyMem/PyObject blocks that are in no arena and on no block below them
 * (mimalloc's) are in the heap by themselves; blocks on a malloc block,
 * at its address or inside it (debug hooks' guard bytes), are not counted
 * again. */
static void test_heap_without_pymalloc(void **state)
{
	(void)state;
	struct tg t;
	ft_trace(&t);
	define_frames(&t);
	loc(&t, 1);
	tg_malloc(&t, MT_DOM_PYOBJ, 48, 0x200000000ull);        /* mimalloc's */
	tg_malloc(&t, MT_DOM_PYMEM, 100, 0x200000100ull);       /* mimalloc's */
	tg_realloc(&t, MT_DOM_PYMEM, 0x200000100ull, 60, 0x200000100ull);
	tg_malloc(&t, MT_DOM_MALLOC, 1000, HEAP);               /* a large object ... */
	tg_malloc(&t, MT_DOM_PYRAW, 1000, HEAP);
	tg_malloc(&t, MT_DOM_PYOBJ, 1000, HEAP);                /* ... on malloc */
	tg_malloc(&t, MT_DOM_MALLOC, 524, HEAP + 0x1000);       /* debug hooks ... */
	tg_malloc(&t, MT_DOM_PYRAW, 508, HEAP + 0x1008);
	tg_malloc(&t, MT_DOM_PYOBJ, 492, HEAP + 0x1010);        /* ... inside it */
	struct mt_report rep = build(&t);
	assert_int_equal(rep.heap.live, 48 + 60 + 1000 + 524);
	assert_int_equal(rep.heap.peak, rep.heap.live);
	assert_int_equal(rep.heap.live_blocks, 2 + 2);
	assert_int_equal(rep.heap.own_in, 3); /* the two allocations and the realloc */
	assert_string_equal(mt_object_allocator(&rep), "mimalloc");
	assert_non_null(strstr(mt_no_pymalloc_reason(&rep), "free-threaded"));
	mt_report_free(&rep);
}

static void test_temporaries(void **state)
{
	(void)state;
	struct tg t;
	py_trace(&t);
	define_frames(&t);
	loc(&t, 1);
	tg_malloc(&t, MT_DOM_PYOBJ, 10, 0x100);
	tg_free_rec(&t, MT_DOM_PYOBJ, 0x100);   /* temporary */
	tg_malloc(&t, MT_DOM_PYOBJ, 20, 0x200);
	tg_malloc(&t, MT_DOM_PYOBJ, 30, 0x300);
	tg_free_rec(&t, MT_DOM_PYOBJ, 0x200);   /* not: another allocation came between */
	tg_free_rec(&t, MT_DOM_PYOBJ, 0x300);   /* temporary */
	tg_malloc(&t, MT_DOM_MALLOC, 40, 0x400);
	tg_thread(&t, 2);
	tg_free_rec(&t, MT_DOM_MALLOC, 0x400);  /* not: another thread frees it */
	tg_malloc(&t, MT_DOM_MALLOC, 50, 0x500);
	tg_realloc(&t, MT_DOM_MALLOC, 0x500, 60, 0x600);
	tg_free_rec(&t, MT_DOM_MALLOC, 0x600);  /* temporary: the realloc's block */
	struct mt_report rep = build(&t);
	assert_int_equal(rep.temp_allocs, 3);
	assert_int_equal(rep.temp_bytes, 10 + 30 + 60);
	const struct mt_site *f = find_site(&rep, "a.py", 5, MT_DOM_PYOBJ);
	assert_int_equal(f->temp_allocs, 2);
	assert_int_equal(f->temp_bytes, 40);
	json_t *root = mt_report_to_json(&rep);
	json_t *temp = json_object_get(json_object_get(root, "summary"), "temporary");
	assert_int_equal(jint(temp, "allocs"), 3);
	assert_int_equal(jint(temp, "bytes"), 100);
	json_t *ts = json_object_get(root, "temporary_sites");
	assert_int_equal(json_array_size(ts), 2);
	assert_int_equal(jint(json_array_get(ts, 0), "temporary_allocs"), 2);
	json_decref(root);
	mt_report_free(&rep);
}

/* ---- marks -------------------------------------------------------------------- */

static void test_marks(void **state)
{
	(void)state;
	struct tg t;
	py_trace(&t);
	string(&t, 1, "build");
	string(&t, 2, "drop");
	tg_malloc(&t, MT_DOM_MALLOC, 5, 0x10);          /* before the first mark */
	time_us(&t, 100);
	mark(&t, 1);
	arena(&t, MT_REC_ARENA_ALLOC, MIB, ARENA0);
	for (unsigned i = 0; i < 10; i++)
		tg_malloc(&t, MT_DOM_PYOBJ, 32, obj_addr(ARENA0, 0, i, 32));
	tg_realloc(&t, MT_DOM_PYMEM, 0, 32, HEAP);      /* a list's first resize */
	time_us(&t, 50);
	mark(&t, 2);
	for (unsigned i = 0; i < 10; i++)
		tg_free_rec(&t, MT_DOM_PYOBJ, obj_addr(ARENA0, 0, i, 32));
	arena(&t, MT_REC_ARENA_FREE, MIB, ARENA0);
	tg_free_rec(&t, MT_DOM_MALLOC, 0x10);
	struct mt_report rep = build(&t);
	assert_int_equal(rep.nmarks, 3);
	assert_string_equal(mt_mark_label(&rep, &rep.marks[0]), "(before first mark)");
	assert_string_equal(mt_mark_label(&rep, &rep.marks[1]), "build");
	assert_string_equal(mt_mark_label(&rep, &rep.marks[2]), "drop");

	json_t *root = mt_report_to_json(&rep);
	json_t *marks = json_object_get(root, "marks");
	json_t *m0 = json_array_get(marks, 0), *m1 = json_array_get(marks, 1),
	       *m2 = json_array_get(marks, 2);
	assert_int_equal(jint(m0, "allocs"), 1);
	assert_int_equal(jint(m0, "net_bytes"), 5);
	assert_int_equal(jint(m1, "time_us"), 100);
	assert_int_equal(jint(m1, "allocs"), 11);
	assert_int_equal(jint(m1, "frees"), 0);
	assert_int_equal(jint(m1, "net_bytes"), MIB);
	assert_int_equal(jint(m1, "arenas_delta"), 1);
	assert_int_equal(jint(m1, "pools_delta"), 1);
	assert_int_equal(jint(m1, "list_resizes"), 1);
	json_t *obj = json_object_get(json_object_get(m1, "by_domain"), "pymem_obj");
	assert_int_equal(jint(obj, "allocs"), 10);
	assert_int_equal(jint(obj, "net_bytes"), 320);
	json_t *classes = json_object_get(m1, "size_classes");
	assert_int_equal(json_array_size(classes), 1); /* 32: ten objects and the buffer */
	assert_int_equal(jint(json_array_get(classes, 0), "size"), 32);
	assert_int_equal(jint(json_array_get(classes, 0), "allocs"), 11);
	assert_int_equal(jint(m2, "time_us"), 150);
	assert_int_equal(jint(m2, "frees"), 11);
	assert_int_equal(jint(m2, "net_bytes"), -(json_int_t)(MIB + 5));
	assert_int_equal(jint(m2, "arenas_delta"), -1);
	assert_int_equal(jint(m2, "pools_delta"), -1);
	obj = json_object_get(json_object_get(m2, "by_domain"), "pymem_obj");
	assert_int_equal(jint(obj, "frees"), 10);
	assert_int_equal(jint(obj, "net_bytes"), -320);
	json_decref(root);
	mt_report_free(&rep);
}

/* A program that marks in a loop: the steps stay bounded. */
static void test_many_marks(void **state)
{
	(void)state;
	struct tg t;
	py_trace(&t);
	string(&t, 1, "tick");
	for (unsigned i = 0; i < 20000; i++) {
		room(&t, 1);
		mark(&t, 1);
		tg_malloc(&t, MT_DOM_MALLOC, 1, 0x1000 + 16 * (uint64_t)i);
	}
	struct mt_report rep = build(&t);
	assert_true(rep.nmarks <= 10000);
	assert_int_equal(rep.marks_total, 20000);
	uint64_t allocs = 0;
	for (size_t i = 0; i < rep.nmarks; i++)
		allocs += rep.marks[i].end.allocs - rep.marks[i].start.allocs;
	assert_int_equal(allocs, 20000);
	mt_report_free(&rep);
}

/* ---- timeline, histogram ------------------------------------------------------- */

static void test_timeline_bounded(void **state)
{
	(void)state;
	struct tg t;
	py_trace(&t);
	/* 5000 steps of 1 ms: the heap climbs to 2500 blocks, then falls */
	for (unsigned i = 0; i < 5000; i++) {
		room(&t, 1);
		time_us(&t, 1000);
		if (i < 2500)
			tg_malloc(&t, MT_DOM_MALLOC, 100, HEAP + 16 * (uint64_t)i);
		else
			tg_free_rec(&t, MT_DOM_MALLOC, HEAP + 16 * (uint64_t)(i - 2500));
	}
	struct mt_report rep = build(&t);
	const struct mt_timeline *tl = &rep.timeline;
	assert_true(tl->npoints <= MT_TIMELINE_MAX);
	assert_true(tl->npoints >= MT_TIMELINE_MAX / 4);
	uint64_t high = 0, last_time = 0;
	for (size_t i = 0; i < tl->npoints; i++) {
		high = tl->points[i].heap > high ? tl->points[i].heap : high;
		assert_true(tl->points[i].time_us >= last_time);
		last_time = tl->points[i].time_us;
		assert_int_equal(tl->points[i].heap, tl->points[i].dom[MT_DOM_MALLOC]);
	}
	assert_int_equal(high, rep.heap.peak);
	assert_int_equal(rep.heap.peak, 250000);
	assert_int_equal(tl->points[tl->npoints - 1].heap, 0);
	assert_int_equal(tl->points[tl->npoints - 1].time_us, 5000000);
	mt_report_free(&rep);
}

static void test_histogram(void **state)
{
	(void)state;
	static const uint64_t sizes[] = { 0, 1, 2, 3, 4, 1000, 1024, 1u << 20 };
	struct tg t;
	py_trace(&t);
	for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++)
		tg_malloc(&t, i % 2 ? MT_DOM_MALLOC : MT_DOM_PYOBJ, sizes[i], HEAP + 0x10000 * i);
	struct mt_report rep = build(&t);
	assert_int_equal(rep.hist[0].allocs, 1);
	assert_int_equal(rep.hist[1].allocs, 1);
	assert_int_equal(rep.hist[2].allocs, 2);
	assert_int_equal(rep.hist[2].bytes, 5);
	assert_int_equal(rep.hist[3].allocs, 1);
	assert_int_equal(rep.hist[10].allocs, 1);
	assert_int_equal(rep.hist[11].allocs, 1);
	assert_int_equal(rep.hist[21].allocs, 1);
	json_t *root = mt_report_to_json(&rep);
	json_t *h = json_object_get(json_object_get(root, "summary"), "size_histogram");
	assert_int_equal(json_array_size(h), 7);
	assert_int_equal(jint(json_array_get(h, 2), "min"), 2);
	assert_int_equal(jint(json_array_get(h, 2), "max"), 3);
	assert_int_equal(jint(json_array_get(h, 6), "min"), 1 << 20);
	json_decref(root);
	mt_report_free(&rep);
}

/* ---- renderings ------------------------------------------------------------------ */

/* Every key of docs/report-schema.md is there, with its type. */
static void test_json_schema_keys(void **state)
{
	(void)state;
	static const char *const top[] = { "format", "schema_version", "process", "trace",
					   "events", "domains", "summary", "arenas", "pools",
					   "lists", "sites", "leaks", "temporary_sites", "timeline",
					   "marks", "flame" };
	static const char *const site_keys[] = { "file", "line", "function", "stack", "domain",
						 "allocs", "bytes", "peak_bytes",
						 "live_bytes_at_exit", "live_blocks_at_exit" };
	struct tg t;
	py_trace(&t);
	define_frames(&t);
	string(&t, 4, "step");
	mark(&t, 4);
	arena(&t, MT_REC_ARENA_ALLOC, MIB, ARENA0);
	loc(&t, 2);
	tg_malloc(&t, MT_DOM_PYOBJ, 32, obj_addr(ARENA0, 0, 0, 32));
	tg_realloc(&t, MT_DOM_PYMEM, 0, 32, HEAP);
	tg_malloc(&t, MT_DOM_MALLOC, 10, HEAP + 0x1000);
	struct mt_report rep = build(&t);
	json_t *root = mt_report_to_json(&rep);
	for (size_t i = 0; i < sizeof top / sizeof top[0]; i++)
		assert_non_null(json_object_get(root, top[i]));
	assert_int_equal(jint(root, "schema_version"), 3);
	json_t *py = json_object_get(json_object_get(root, "process"), "python");
	assert_string_equal(json_string_value(json_object_get(py, "version")), "3.11.7");
	assert_int_equal(jint(py, "pool_size"), POOL);
	assert_int_equal(jint(py, "arena_size"), MIB);
	assert_int_equal(jint(py, "py_depth"), 2);
	json_t *site = json_array_get(json_object_get(root, "sites"), 0);
	for (size_t i = 0; i < sizeof site_keys / sizeof site_keys[0]; i++)
		assert_non_null(json_object_get(site, site_keys[i]));
	json_t *pools = json_object_get(root, "pools");
	assert_int_equal(jint(pools, "pools_peak"), 1);
	json_t *frag = json_object_get(json_object_get(pools, "fragmentation"), "at_exit");
	assert_int_equal(jint(frag, "arena_bytes"), MIB);
	assert_int_equal(jint(frag, "object_bytes"), 32);
	json_t *sc = json_array_get(json_object_get(pools, "size_classes"), 0);
	assert_int_equal(jint(sc, "size"), 32);
	assert_int_equal(jint(sc, "pools_at_exit"), 1);
	json_t *lists = json_object_get(root, "lists");
	assert_int_equal(jint(lists, "slack_bytes_at_exit"), 24);
	json_t *ls = json_array_get(json_object_get(lists, "sites"), 0);
	assert_int_equal(jint(ls, "final_capacity"), 4);
	assert_int_equal(json_array_size(json_object_get(ls, "chain")), 1);
	/* the timeline's points as columns of one length, point i the i-th of each */
	json_t *pts = json_object_get(json_object_get(root, "timeline"), "points");
	static const char *const cols[] = { "time_us", "heap", "malloc", "pymem_raw",
					    "pymem_mem", "pymem_obj", "arenas", "pools" };
	assert_int_equal(json_object_size(pts), 8);
	assert_true(rep.timeline.npoints > 0);
	for (size_t i = 0; i < rep.timeline.npoints; i++) {
		const struct mt_tpoint *p = &rep.timeline.points[i];
		uint64_t want[] = { p->time_us, p->heap, p->dom[0], p->dom[1], p->dom[2], p->dom[3],
				    p->arenas, p->pools };
		for (size_t k = 0; k < 8; k++) {
			json_t *col = json_object_get(pts, cols[k]);
			assert_int_equal(json_array_size(col), rep.timeline.npoints);
			assert_int_equal(json_integer_value(json_array_get(col, i)), want[k]);
		}
	}
	json_t *ar = json_object_get(root, "arenas");
	assert_int_equal(jint(ar, "live_at_exit"), 1);
	assert_int_equal(jint(json_object_get(json_object_get(root, "summary"), "live_at_exit"),
			      "blocks"),
			 2);
	json_decref(root);

	/* the text report has every section, and the set renderings work */
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);
	const struct mt_report *reps[2] = { &rep, &rep };
	const char *names[2] = { "a.trace", "b.trace" };
	assert_int_equal(mt_output_text_set(reps, names, 2, f), 0);
	fclose(f);
	assert_non_null(strstr(text, "summary\n"));
	assert_non_null(strstr(text, "python pools and arenas"));
	assert_non_null(strstr(text, "lists (item buffers)"));
	assert_non_null(strstr(text, "steps (marks)"));
	assert_non_null(strstr(text, "combined: 2 traces"));
	assert_non_null(strstr(text, "a.py:12 (g)"));
	free(text);
	json_t *set = mt_report_set_to_json(reps, names, 2);
	assert_string_equal(json_string_value(json_object_get(set, "format")),
			    "memtrace-report-set");
	assert_int_equal(json_array_size(json_object_get(set, "reports")), 2);
	json_decref(set);
	mt_report_free(&rep);
}

/* ---- exports ---------------------------------------------------------------- */

typedef Perftools__Profiles__Profile Profile;
typedef Perftools__Profiles__Sample Sample;

/* The pprof export of rep, gunzipped and unpacked. */
static Profile *pprof_of(const struct mt_report *rep, enum mt_inuse_at at)
{
	struct mt_export_opts o = { at, "memtrace@test", "t.trace" };
	char *gz;
	size_t gz_len, len = 0;
	FILE *f = open_memstream(&gz, &gz_len);
	assert_int_equal(mt_export_pprof(rep, &o, f), 0);
	fclose(f);
	assert_memory_equal(gz, "\x1f\x8b", 2);
	static uint8_t raw[1 << 16];
	z_stream z = { .next_in = (Bytef *)gz, .avail_in = (uInt)gz_len,
		       .next_out = raw, .avail_out = sizeof raw };
	assert_int_equal(inflateInit2(&z, 15 + 16), Z_OK);
	assert_int_equal(inflate(&z, Z_FINISH), Z_STREAM_END);
	len = sizeof raw - z.avail_out;
	inflateEnd(&z);
	free(gz);
	Profile *p = perftools__profiles__profile__unpack(NULL, len, raw);
	assert_non_null(p);
	return p;
}

/* The string of a label of s ("" when it has none). */
static const char *label_of(const Profile *p, const Sample *s, const char *key)
{
	for (size_t i = 0; i < s->n_label; i++)
		if (!strcmp(p->string_table[s->label[i]->key], key))
			return p->string_table[s->label[i]->str];
	return "";
}

/* "function file:line" of a location with one line, or of its last. */
static const char *where(const Profile *p, uint64_t location_id)
{
	static char buf[8][128];
	static int k;
	const Perftools__Profiles__Location *l = p->location[location_id - 1];
	assert_int_equal(l->id, location_id);
	assert_int_equal(l->n_line, 1);
	const Perftools__Profiles__Function *fn = p->function[l->line[0]->function_id - 1];
	k = (k + 1) % 8;
	snprintf(buf[k], sizeof buf[k], "%s %s:%lld", p->string_table[fn->name],
		 p->string_table[fn->filename], (long long)l->line[0]->line);
	return buf[k];
}

/* The sample of thread tid whose innermost frame is at `innermost`, in dom. */
static const Sample *find_sample(const Profile *p, const char *innermost, const char *dom,
				 const char *tid)
{
	for (size_t i = 0; i < p->n_sample; i++) {
		const Sample *s = p->sample[i];
		if (!strcmp(where(p, s->location_id[0]), innermost) &&
		    !strcmp(label_of(p, s, "domain"), dom) && !strcmp(label_of(p, s, "thread"), tid))
			return s;
	}
	fail_msg("no sample at %s in %s, thread %s", innermost, dom, tid);
	return NULL;
}

static void assert_values(const Sample *s, int64_t allocs, int64_t bytes, int64_t inuse_objects,
			  int64_t inuse_space)
{
	assert_int_equal(s->n_value, 4);
	assert_int_equal(s->value[0], allocs);
	assert_int_equal(s->value[1], bytes);
	assert_int_equal(s->value[2], inuse_objects);
	assert_int_equal(s->value[3], inuse_space);
}

static void test_export_pprof(void **state)
{
	(void)state;
	struct tg t;
	sites_trace(&t);
	struct mt_report rep = build_flags(&t, MT_BUILD_PER_THREAD);
	Profile *p = pprof_of(&rep, MT_INUSE_PEAK);
	static const char *const types[][2] = { { "alloc_objects", "count" },
						{ "alloc_space", "bytes" },
						{ "inuse_objects", "count" },
						{ "inuse_space", "bytes" } };
	assert_int_equal(p->n_sample_type, 4);
	for (int i = 0; i < 4; i++) {
		assert_string_equal(p->string_table[p->sample_type[i]->type], types[i][0]);
		assert_string_equal(p->string_table[p->sample_type[i]->unit], types[i][1]);
	}
	assert_string_equal(p->string_table[p->default_sample_type], "inuse_space");
	assert_string_equal(p->string_table[0], "");
	assert_int_equal(p->period, 1);
	assert_int_equal(p->duration_nanos, 20000);
	/* one sample per (stack, domain, thread), innermost frame first */
	assert_int_equal(p->n_sample, 4);
	const Sample *g = find_sample(p, "g a.py:12", "pymem_obj", "1");
	assert_values(g, 4, 400, 3, 300);
	assert_int_equal(g->n_location_id, 2);
	assert_string_equal(where(p, g->location_id[1]), "f a.py:5");
	const Sample *f = find_sample(p, "f a.py:5", "pymem_obj", "2");
	assert_values(f, 1, 50, 1, 50);
	assert_int_equal(f->n_location_id, 1);
	assert_int_equal(f->location_id[0], g->location_id[1]); /* one location each */
	assert_values(find_sample(p, "<native> :0", "malloc", "1"), 2, 3000, 1, 2000);
	assert_values(find_sample(p, "<native> :0", "pymem_obj", "1"), 1, 10, 0, 0);
	/* f, g and <native>: no mapping, one function each */
	assert_int_equal(p->n_mapping, 0);
	assert_int_equal(p->n_function, 3);
	assert_int_equal(p->n_location, 3);
	perftools__profiles__profile__free_unpacked(p, NULL);

	p = pprof_of(&rep, MT_INUSE_EXIT);
	assert_values(find_sample(p, "g a.py:12", "pymem_obj", "1"), 4, 400, 2, 200);
	assert_values(find_sample(p, "<native> :0", "malloc", "1"), 2, 3000, 0, 0);
	perftools__profiles__profile__free_unpacked(p, NULL);
	mt_report_free(&rep);
}

static void test_export_speedscope(void **state)
{
	(void)state;
	struct tg t;
	sites_trace(&t);
	struct mt_report rep = build_flags(&t, MT_BUILD_PER_THREAD);
	struct mt_export_opts o = { MT_INUSE_PEAK, "memtrace@test", "t.trace" };
	char *text;
	size_t len;
	FILE *f = open_memstream(&text, &len);
	assert_int_equal(mt_export_speedscope(&rep, &o, f), 0);
	fclose(f);
	json_error_t err;
	json_t *root = json_loads(text, 0, &err);
	assert_non_null(root);
	free(text);
	assert_string_equal(json_string_value(json_object_get(root, "$schema")),
			    "https://www.speedscope.app/file-format-schema.json");
	assert_string_equal(json_string_value(json_object_get(root, "exporter")), "memtrace@test");
	json_t *frames = json_object_get(json_object_get(root, "shared"), "frames");
	assert_int_equal(json_array_size(frames), 3); /* f, g, <native> */
	static const struct {
		const char *name, *unit;
		json_int_t total, samples;
	} want[] = {
		{ "bytes allocated", "bytes", 400 + 50 + 3000 + 10, 4 },
		{ "allocations", "none", 4 + 1 + 2 + 1, 4 },
		{ "bytes live at the heap peak", "bytes", 300 + 50 + 2000, 3 },
	};
	json_t *profiles = json_object_get(root, "profiles");
	assert_int_equal(json_array_size(profiles), 3);
	for (size_t i = 0; i < 3; i++) {
		json_t *pr = json_array_get(profiles, i);
		json_t *samples = json_object_get(pr, "samples"), *weights = json_object_get(pr, "weights");
		assert_string_equal(json_string_value(json_object_get(pr, "type")), "sampled");
		assert_string_equal(json_string_value(json_object_get(pr, "name")), want[i].name);
		assert_string_equal(json_string_value(json_object_get(pr, "unit")), want[i].unit);
		assert_int_equal(jint(pr, "endValue"), want[i].total);
		assert_int_equal(json_array_size(samples), want[i].samples);
		assert_int_equal(json_array_size(weights), want[i].samples);
		json_int_t sum = 0;
		for (size_t k = 0; k < json_array_size(weights); k++)
			sum += json_integer_value(json_array_get(weights, k));
		assert_int_equal(sum, want[i].total);
	}
	/* g's stack, outermost first: f then g */
	json_t *first = json_array_get(json_object_get(json_array_get(profiles, 0), "samples"), 0);
	assert_int_equal(json_array_size(first), 2);
	json_t *outer = json_array_get(frames, json_integer_value(json_array_get(first, 0)));
	json_t *inner = json_array_get(frames, json_integer_value(json_array_get(first, 1)));
	assert_string_equal(json_string_value(json_object_get(outer, "name")), "f");
	assert_string_equal(json_string_value(json_object_get(inner, "name")), "g");
	assert_string_equal(json_string_value(json_object_get(inner, "file")), "a.py");
	json_decref(root);
	mt_report_free(&rep);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_pools_exact),
		cmocka_unit_test(test_pools_reallocs),
		cmocka_unit_test(test_list_chains),
		cmocka_unit_test(test_long_chain),
		cmocka_unit_test(test_sites_and_peak),
		cmocka_unit_test(test_layered_blocks),
		cmocka_unit_test(test_freed_below),
		cmocka_unit_test(test_free_threaded_lists),
		cmocka_unit_test(test_heap_without_pymalloc),
		cmocka_unit_test(test_temporaries),
		cmocka_unit_test(test_marks),
		cmocka_unit_test(test_many_marks),
		cmocka_unit_test(test_timeline_bounded),
		cmocka_unit_test(test_histogram),
		cmocka_unit_test(test_json_schema_keys),
		cmocka_unit_test(test_export_pprof),
		cmocka_unit_test(test_export_speedscope),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
