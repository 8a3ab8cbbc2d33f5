/*
 * test_memory.c - the records of format 1.1 (mappings and samples) through
 * the codec, the mmap domain (mappings.c) and the samples (memory.c) on
 * synthetic traces with exact answers: partial munmaps, mremap moves
 * across threads, a failed mremap, MAP_FIXED and MREMAP_DONTUNMAP; the
 * samples at marks, the block holding glibc's heap top, the parts of RSS,
 * and the bounded series.
 */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "output.h"
#include "report.h"
#include "tracegen.h"

#define P 4096ull
#define A 0x7f0000000000ull
#define B 0x7f1000000000ull
#define C 0x7f2000000000ull
#define F 0x7f3000000000ull
#define ANON 0x22u        /* MAP_PRIVATE | MAP_ANONYMOUS */
#define FIXED 0x10u       /* MAP_FIXED */
#define BRK0 0x10000000ull /* the brk heap's start */
#define KIB 1024ull
#define MIB (1024ull * 1024)

static void start(struct tg *t, bool brk)
{
	tg_init(t);
	t->kv_len = tg_header_kv(t->kv, 7);
	t->kv_len = mt_kv_put_u64(t->kv, t->kv_len, MT_H_RSS_MS, 10);
	if (brk)
		t->kv_len = mt_kv_put_u64(t->kv, t->kv_len, MT_H_START_BRK, BRK0);
	t->kv_len = mt_kv_put_u64(t->kv, t->kv_len, MT_H_MALLOC, MT_MALLOC_GLIBC);
	tg_kv_block(t, MT_BLOCK_HEADER);
	tg_thread(t, 1);
}

static struct mt_report build(struct tg *t)
{
	struct mt_report rep;
	tg_flush(t);
	tg_footer(t, 0, 0, MT_END_EXIT);
	FILE *f = tg_file(t->data, t->len);
	assert_int_equal(mt_report_build(f, &rep), MT_REPORT_OK);
	fclose(f);
	tg_free(t);
	return rep;
}

static void mmap_rec(struct tg *t, uint64_t len, uint64_t addr, unsigned prot, unsigned flags)
{
	mt_enc_map(&t->enc, MT_REC_MMAP, len, addr, prot, flags);
}

static void munmap_rec(struct tg *t, uint64_t len, uint64_t addr)
{
	mt_enc_alloc(&t->enc, MT_REC_MUNMAP, 0, len, addr);
}

static void mremap_rec(struct tg *t, uint64_t old_len, uint64_t old, uint64_t len,
		       uint64_t addr, unsigned flags)
{
	mt_enc_alloc(&t->enc, MT_REC_MREMAP_OUT, 0, old_len, old);
	mt_enc_map(&t->enc, MT_REC_MREMAP_IN, len, addr, 0, flags);
}

/* ---- the codec ------------------------------------------------------------ */

static void test_records_round_trip(void **state)
{
	(void)state;
	uint8_t buf[4 * MT_SAMPLE_MAX];
	struct mt_enc e = { .buf = buf };
	uint64_t v[MT_S_COUNT], got[MT_S_COUNT], have;
	for (int f = 0; f < MT_S_COUNT; f++)
		v[f] = (uint64_t)f << 40 | 12345;
	mt_enc_reset(&e);
	mt_enc_map(&e, MT_REC_MMAP, 3 * P + 1, A, 7, ANON | FIXED);
	mt_enc_alloc(&e, MT_REC_MUNMAP, 0, P, A + P);
	mt_enc_alloc(&e, MT_REC_MREMAP_OUT, 0, 2 * P, A);
	mt_enc_map(&e, MT_REC_MREMAP_IN, 9 * P, B, 99, 3);
	mt_enc_sample(&e, 1u << MT_S_RSS_ANON | 1u << MT_S_BRK | 1u << MT_S_OWN_RESIDENT, v);
	/* a sample from a later writer, with a field (bit 13) this reader does
	 * not know: mask 0x2002 as a varint, then the two values */
	static const uint8_t later[] = { MT_TAG(MT_REC_SAMPLE, 0), 0x82, 0x40, 5, 77 };
	memcpy(e.buf + e.len, later, sizeof later);
	e.len += sizeof later;

	struct mt_dec d;
	struct mt_rec r;
	mt_dec_init(&d, buf, e.len);
	assert_int_equal(mt_dec_next(&d, &r), 1);
	assert_int_equal(r.kind, MT_REC_MMAP);
	assert_int_equal(r.size, 3 * P + 1);
	assert_int_equal(r.addr, A);
	assert_int_equal(r.value, 7);
	assert_int_equal(r.ref1, ANON | FIXED);
	assert_int_equal(mt_dec_next(&d, &r), 1);
	assert_int_equal(r.kind, MT_REC_MUNMAP);
	assert_int_equal(r.size, P);
	assert_int_equal(r.addr, A + P);
	assert_int_equal(mt_dec_next(&d, &r), 1);
	assert_int_equal(r.kind, MT_REC_MREMAP_OUT);
	assert_int_equal(r.addr, A);
	assert_int_equal(mt_dec_next(&d, &r), 1);
	assert_int_equal(r.kind, MT_REC_MREMAP_IN);
	assert_int_equal(r.size, 9 * P);
	assert_int_equal(r.addr, B);
	assert_int_equal(r.ref1, 3);
	assert_int_equal(mt_dec_next(&d, &r), 1);
	assert_int_equal(r.kind, MT_REC_SAMPLE);
	mt_dec_sample(&r, got, &have);
	assert_int_equal(have, 1u << MT_S_RSS_ANON | 1u << MT_S_BRK | 1u << MT_S_OWN_RESIDENT);
	assert_int_equal(got[MT_S_BRK], v[MT_S_BRK]);
	assert_int_equal(got[MT_S_OWN_RESIDENT], v[MT_S_OWN_RESIDENT]);
	assert_int_equal(mt_dec_next(&d, &r), 1);
	mt_dec_sample(&r, got, &have);
	assert_int_equal(have, 1u << MT_S_RSS_FILE);
	assert_int_equal(got[MT_S_RSS_FILE], 5);
	assert_int_equal(mt_dec_next(&d, &r), 0);

	/* cut short, a sample is malformed */
	mt_enc_reset(&e);
	mt_enc_sample(&e, 1u << MT_S_RSS_ANON | 1u << MT_S_RSS_FILE, v);
	mt_dec_init(&d, buf, e.len - 1);
	assert_int_equal(mt_dec_next(&d, &r), -1);
}

/* ---- the mmap domain -------------------------------------------------------- */

static void test_mmap_domain_exact(void **state)
{
	(void)state;
	struct tg t;
	start(&t, false);
	mmap_rec(&t, 10 * P, A, 3, ANON);            /* [A, A+10) */
	munmap_rec(&t, 2 * P, A + 4 * P);            /* [A, A+4) [A+6, A+10) */
	/* a move: another thread gets the old pages before the IN arrives */
	mt_enc_alloc(&t.enc, MT_REC_MREMAP_OUT, 0, 4 * P, A);
	tg_thread(&t, 2);
	mmap_rec(&t, P, A, 3, ANON);                 /* [A, A+1) */
	tg_thread(&t, 1);
	mt_enc_map(&t.enc, MT_REC_MREMAP_IN, 8 * P, B, 0, 1); /* [B, B+8) */
	mremap_rec(&t, 8 * P, B, 16 * P, 0, 1);      /* failed: B stays */
	mmap_rec(&t, 3 * P, A + 6 * P, 1, ANON | FIXED); /* replaces A+6..A+9 */
	mmap_rec(&t, 1, B, 3, ANON);                 /* over B's first page, no MAP_FIXED */
	munmap_rec(&t, 100 * P, 0x1000);             /* nothing there */
	mremap_rec(&t, P, A + 9 * P, P, C, 1 | 4);   /* MREMAP_DONTUNMAP: both stay */
	mmap_rec(&t, P, 0, 3, ANON);                 /* failed */
	mmap_rec(&t, 100, F, 1, 0x2);                /* a file, one page */
	struct mt_report rep = build(&t);
	const struct mt_dom_stats *s = &rep.mappings.stats;
	assert_int_equal(s->allocs, 5);
	assert_int_equal(s->frees, 2);
	assert_int_equal(s->reallocs, 2);
	assert_int_equal(s->failed, 2);
	assert_int_equal(s->bytes_allocated, (10 + 1 + 3 + 1 + 1 + 8 + 1) * P);
	/* 15 at the end, as at the peak */
	assert_int_equal(s->peak_bytes, 15 * P);
	/* [A, A+1) [A+6, A+9) [A+9, A+10) [B, B+1) [B+1, B+8) [C, C+1) [F, F+1) */
	assert_int_equal(s->live_bytes, 15 * P);
	assert_int_equal(s->live_blocks, 7);
	assert_int_equal(rep.mappings.anon_bytes, 14 * P);
	assert_int_equal(rep.mappings.file_bytes, P);
	assert_int_equal(s->unmatched_frees, 1);
	assert_int_equal(s->inconsistent, 1);
	assert_int_equal(rep.events.total, 5 + 2 + 2 + 2);
	assert_int_equal(rep.mappings.nlargest, 7);
	assert_int_equal(rep.mappings.largest[0].bytes, 7 * P);
	assert_int_equal(rep.mappings.largest[0].address, B + P);
	assert_int_equal(rep.mappings.largest[1].bytes, 3 * P);
	assert_int_equal(rep.mappings.largest[1].address, A + 6 * P);
	assert_int_equal(rep.mappings.largest[1].prot, 1);
	mt_report_free(&rep);
}

/* A munmap across many mappings, and mappings re-made one page at a time
 * over a large one: the treap stays consistent. */
static void test_mmap_many_pieces(void **state)
{
	(void)state;
	struct tg t;
	start(&t, false);
	mmap_rec(&t, 4096 * P, A, 3, ANON);
	for (uint64_t i = 0; i < 4096; i += 2) {
		if (mt_enc_full(&t.enc)) {
			tg_flush(&t);
			tg_thread(&t, 1);
		}
		mmap_rec(&t, P, A + i * P, 1, ANON | FIXED);
	}
	munmap_rec(&t, 1000 * P, A + 3 * P);
	struct mt_report rep = build(&t);
	assert_int_equal(rep.mappings.stats.live_bytes, (4096 - 1000) * P);
	/* 4,096 one-page pieces, less the 1,000 unmapped */
	assert_int_equal(rep.mappings.stats.live_blocks, 4096 - 1000);
	assert_int_equal(rep.mappings.stats.inconsistent, 0);
	mt_report_free(&rep);
}

/* ---- samples ------------------------------------------------------------- */

static void sample(struct tg *t, uint64_t anon, uint64_t file, uint64_t brk, uint64_t resident,
		   uint64_t used, uint64_t free, uint64_t top)
{
	uint64_t v[MT_S_COUNT] = { 0 };
	v[MT_S_RSS_ANON] = anon;
	v[MT_S_RSS_FILE] = file;
	v[MT_S_RSS_SHMEM] = 4096;
	v[MT_S_BRK] = brk;
	v[MT_S_BRK_RESIDENT] = resident;
	v[MT_S_GLIBC_ARENA] = used + free;
	v[MT_S_GLIBC_MMAP] = 0;
	v[MT_S_GLIBC_USED] = used;
	v[MT_S_GLIBC_FREE] = free;
	v[MT_S_GLIBC_TOP] = top;
	v[MT_S_OWN_MAPPED] = 3 * MIB;
	v[MT_S_OWN_RESIDENT] = 2 * MIB;
	mt_enc_sample(&t->enc, (1u << MT_S_COUNT) - 1, v);
}

static void test_samples_at_marks(void **state)
{
	(void)state;
	struct tg t;
	start(&t, true);
	mt_enc_string(&t.enc, 1, "freed", 5);
	tg_malloc(&t, MT_DOM_MALLOC, 1000, BRK0 + 0x10);
	tg_malloc(&t, MT_DOM_MALLOC, 5 * MIB, BRK0 + 0x1000);
	tg_malloc(&t, MT_DOM_MALLOC, 100, BRK0 + 0x600000);  /* the top's */
	tg_malloc(&t, MT_DOM_MALLOC, 64, BRK0 + 0x700000);   /* above the top chunk: not it */
	mt_enc_value(&t.enc, MT_REC_TIME, 100);
	sample(&t, 20 * MIB, 5 * MIB, BRK0 + 0x620000, 6 * MIB, 6 * MIB, 64 * KIB, 16 * KIB);
	tg_free_rec(&t, MT_DOM_MALLOC, BRK0 + 0x1000);
	mt_enc_value(&t.enc, MT_REC_TIME, 100);
	mt_enc_value(&t.enc, MT_REC_MARK, 1);
	sample(&t, 18 * MIB, 5 * MIB, BRK0 + 0x620000, 3 * MIB, MIB, 5 * MIB + 64 * KIB,
	       64 * KIB);
	struct mt_report rep = build(&t);
	const struct mt_memory *m = &rep.memory;
	assert_int_equal(m->rss_ms, 10);
	assert_int_equal(m->start_brk, BRK0);
	assert_int_equal(m->npoints, 2);
	assert_true(m->have_peak && m->have_exit);
	assert_int_equal(m->peak.time_us, 100);
	assert_int_equal(m->peak.malloc_live, 1000 + 5 * MIB + 100 + 64);
	assert_int_equal(m->exit.time_us, 200);
	/* the mark's sample */
	assert_int_equal(rep.nmarks, 2);
	assert_int_equal(rep.marks[1].mem, 1);
	assert_int_equal(m->nat_marks, 1);
	const struct mt_top_block *tb = &m->marks_top[0];
	assert_true(tb->known && tb->found);
	assert_int_equal(tb->top, BRK0 + 0x620000 - 64 * KIB);
	assert_int_equal(tb->address, BRK0 + 0x600000);
	assert_int_equal(tb->size, 100);
	/* its chunk: 100 bytes and 8 of header rounded to 112, from 16 below */
	assert_int_equal(tb->gap, tb->top - (BRK0 + 0x600000 - 16 + 112));
	assert_int_equal(tb->below_free, 5 * MIB);
	assert_memory_equal(&m->exit_top, tb, sizeof *tb);
	/* the parts add up to RSS */
	struct mt_breakdown b;
	mt_memory_breakdown(&rep, &m->exit, &b);
	assert_true(b.have_rss);
	assert_int_equal(b.rss, 23 * MIB + 4096);
	assert_int_equal(b.requested, 1000 + 100 + 64);
	assert_int_equal(b.bytes[MT_PART_FILE], 5 * MIB + 4096);
	assert_int_equal(b.bytes[MT_PART_GLIBC_TOP], 64 * KIB);
	assert_int_equal(b.bytes[MT_PART_GLIBC_BELOW], 5 * MIB);
	assert_int_equal(b.bytes[MT_PART_GLIBC_EXTRA], (int64_t)MIB - (1000 + 100 + 64));
	assert_int_equal(b.bytes[MT_PART_MEMTRACE], 2 * MIB);
	assert_int_equal(b.bytes[MT_PART_BRK_UNTOUCHED], -(int64_t)(0x620000 - 3 * MIB));
	int64_t sum = (int64_t)b.requested;
	for (int k = 0; k < MT_PART_COUNT; k++) {
		assert_true(b.measured[k]);
		sum += b.bytes[k];
	}
	assert_int_equal(sum, (int64_t)b.rss);
	mt_report_free(&rep);
}

/* On a free-threaded CPython, PyMem/PyObject blocks in no arena and on no
 * malloc block (mimalloc's) are part of the requested heap at a sample. */
static void test_requested_with_mimalloc(void **state)
{
	(void)state;
	struct tg t;
	tg_init(&t);
	t.kv_len = tg_header_kv(t.kv, 8);
	t.kv_len = mt_kv_put_u64(t.kv, t.kv_len, MT_H_PY_VERSION, 0x030d05f0);
	t.kv_len = mt_kv_put_u64(t.kv, t.kv_len, MT_H_PY_FREE_THREADED, 1);
	t.kv_len = mt_kv_put_u64(t.kv, t.kv_len, MT_H_RSS_MS, 10);
	t.kv_len = mt_kv_put_u64(t.kv, t.kv_len, MT_H_START_BRK, BRK0);
	tg_kv_block(&t, MT_BLOCK_HEADER);
	tg_thread(&t, 1);
	tg_malloc(&t, MT_DOM_PYOBJ, 48, 0x200000000ull);
	tg_malloc(&t, MT_DOM_PYMEM, 100, 0x200000100ull);
	tg_malloc(&t, MT_DOM_MALLOC, 1000, BRK0 + 0x10);
	tg_malloc(&t, MT_DOM_PYRAW, 1000, BRK0 + 0x10); /* on the malloc block: once */
	mt_enc_value(&t.enc, MT_REC_TIME, 100);
	sample(&t, 20 * MIB, 5 * MIB, BRK0 + 0x20000, 0x20000, 2000, 0, 0);
	tg_free_rec(&t, MT_DOM_PYOBJ, 0x200000000ull);
	mt_enc_value(&t.enc, MT_REC_TIME, 100);
	sample(&t, 10 * MIB, 5 * MIB, BRK0 + 0x20000, 0x20000, 2000, 0, 0);
	struct mt_report rep = build(&t);
	const struct mt_memory *m = &rep.memory;
	assert_int_equal(m->peak.unpooled, 48 + 100);
	assert_int_equal(mt_mem_requested(&m->peak), 1000 + 48 + 100);
	assert_int_equal(m->exit.unpooled, 100);
	assert_int_equal(mt_mem_requested(&m->exit), 1000 + 100);
	struct mt_breakdown b;
	mt_memory_breakdown(&rep, &m->exit, &b);
	assert_int_equal(b.requested, 1100);
	mt_report_free(&rep);
}

/* A sample without glibc's figures: those parts, and the rest, are not
 * measured, and the JSON says null. */
static void test_sample_without_glibc(void **state)
{
	(void)state;
	struct tg t;
	uint64_t v[MT_S_COUNT] = { [MT_S_RSS_ANON] = MIB, [MT_S_RSS_FILE] = 2 * MIB };
	start(&t, false);
	mt_enc_sample(&t.enc, 1u << MT_S_RSS_ANON | 1u << MT_S_RSS_FILE, v);
	struct mt_report rep = build(&t);
	struct mt_breakdown b;
	mt_memory_breakdown(&rep, &rep.memory.exit, &b);
	assert_true(b.have_rss);
	assert_int_equal(b.rss, 3 * MIB);
	assert_false(b.measured[MT_PART_GLIBC_TOP]);
	assert_false(b.measured[MT_PART_MEMTRACE]);
	assert_false(b.measured[MT_PART_REST]);
	json_t *root = mt_report_to_json(&rep);
	json_t *exit = json_object_get(json_object_get(root, "memory"), "exit");
	json_t *parts = json_object_get(exit, "parts");
	assert_int_equal(json_array_size(parts), MT_PART_COUNT);
	assert_true(json_is_null(json_object_get(json_array_get(parts, MT_PART_GLIBC_TOP), "bytes")));
	assert_true(json_is_null(json_object_get(json_array_get(parts, MT_PART_REST), "bytes")));
	assert_true(json_is_null(json_object_get(json_object_get(exit, "sample"), "glibc_held")));
	assert_int_equal(json_integer_value(json_object_get(exit, "rss")), 3 * MIB);
	json_t *samples = json_object_get(json_object_get(root, "timeline"), "samples");
	assert_int_equal(json_array_size(samples), 1);
	json_decref(root);
	mt_report_free(&rep);
}

/* 5,000 samples: the series keeps at most MT_MEM_POINTS_MAX of them, the
 * highest RSS among them, and the last. */
static void test_series_bounded(void **state)
{
	(void)state;
	struct tg t;
	uint64_t v[MT_S_COUNT] = { 0 };
	start(&t, false);
	for (uint64_t i = 0; i < 5000; i++) {
		if (t.enc.len + MT_SAMPLE_MAX + MT_REC_MAX > MT_BLOCK_MAX_RAW) {
			tg_flush(&t);
			tg_thread(&t, 1);
		}
		v[MT_S_RSS_ANON] = i == 3333 ? 1000 * MIB : (i % 97) * MIB;
		v[MT_S_RSS_FILE] = i;
		mt_enc_value(&t.enc, MT_REC_TIME, 10000);
		mt_enc_sample(&t.enc, 1u << MT_S_RSS_ANON | 1u << MT_S_RSS_FILE, v);
	}
	struct mt_report rep = build(&t);
	const struct mt_memory *m = &rep.memory;
	assert_true(m->npoints <= MT_MEM_POINTS_MAX);
	assert_true(m->npoints >= MT_MEM_POINTS_MAX / 4);
	assert_int_equal(m->peak.v[MT_S_RSS_FILE], 3333);
	bool kept = false;
	for (size_t i = 0; i < m->npoints; i++) {
		kept |= m->points[i].v[MT_S_RSS_FILE] == 3333;
		if (i)
			assert_true(m->points[i].time_us > m->points[i - 1].time_us);
	}
	assert_true(kept);
	assert_int_equal(m->points[m->npoints - 1].v[MT_S_RSS_FILE], 4999);
	mt_report_free(&rep);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_records_round_trip),
		cmocka_unit_test(test_mmap_domain_exact),
		cmocka_unit_test(test_mmap_many_pieces),
		cmocka_unit_test(test_samples_at_marks),
		cmocka_unit_test(test_requested_with_mimalloc),
		cmocka_unit_test(test_sample_without_glibc),
		cmocka_unit_test(test_series_bounded),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
