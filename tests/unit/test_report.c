/*
 * test_report.c - the report builder on traces synthesised with known
 * events: exact figures for every kind of call and its corner cases, moved
 * reallocs paired per thread across interleaving and blocks, the four
 * domains kept apart, incomplete, torn and broken traces, and the JSON and
 * text renderings.
 */
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

enum { A = 0x1000, B = 0x2000, C = 0x3000, D = 0x4000, E = 0x5000, Q = 0x6000 };

static enum mt_report_status build_bytes(const uint8_t *data, size_t len,
					 struct mt_report *rep)
{
	FILE *f = tg_file(data, len);
	enum mt_report_status st = mt_report_build(f, rep);
	fclose(f);
	return st;
}

static enum mt_report_status build(const struct tg *t, struct mt_report *rep)
{
	return build_bytes(t->data, t->len, rep);
}

static void expect_dom(const struct mt_dom_stats *s, uint64_t allocs, uint64_t reallocs,
		       uint64_t frees, uint64_t failed, uint64_t bytes, uint64_t peak,
		       uint64_t live, uint64_t blocks, uint64_t unmatched, uint64_t inconsistent)
{
	assert_int_equal(s->allocs, allocs);
	assert_int_equal(s->reallocs, reallocs);
	assert_int_equal(s->frees, frees);
	assert_int_equal(s->failed, failed);
	assert_int_equal(s->bytes_allocated, bytes);
	assert_int_equal(s->peak_bytes, peak);
	assert_int_equal(s->live_bytes, live);
	assert_int_equal(s->live_blocks, blocks);
	assert_int_equal(s->unmatched_frees, unmatched);
	assert_int_equal(s->inconsistent, inconsistent);
}

static void expect_idle(const struct mt_report *rep, int dom)
{
	expect_dom(&rep->dom[dom], 0, 0, 0, 0, 0, 0, 0, 0, 0, 0);
}

/* Enough live 1-byte blocks, from a thread of their own, for the live map
 * to outgrow the cache, which switches the reporter to its prefetching
 * loop: the figures of the events that follow must not change. */
#define BIG_HEAP 40000
#define PREFILL_BASE 0x10000000u

static void prefill(struct tg *t, uint64_t n)
{
	if (!n)
		return;
	tg_thread(t, 99);
	for (uint64_t i = 0; i < n; i++)
		tg_malloc(t, 0, 1, PREFILL_BASE + 16 * i);
	tg_flush(t);
}

/* Adds what prefill(n) did to expected figures. */
static void expect_prefill(struct mt_report *rep, uint64_t blocks_before, uint64_t n)
{
	struct mt_dom_stats *s = &rep->dom[0];
	if (!n)
		return;
	assert_int_equal(rep->trace.blocks, blocks_before + 1);
	rep->trace.blocks--;
	rep->trace.threads--;
	rep->events.total -= n;
	s->allocs -= n;
	s->bytes_allocated -= n;
	s->peak_bytes -= n;
	s->live_bytes -= n;
	s->live_blocks -= n;
}

/* One thread, every malloc-domain call and corner case; see the comments
 * for live bytes after each event. */
static void single_thread_trace(struct tg *t, uint64_t prefilled)
{
	struct mt_enc *e = &t->enc;
	tg_init(t);
	tg_header(t, 42);
	prefill(t, prefilled);
	tg_thread(t, 7);
	mt_enc_value(e, MT_REC_TIME, 100);
	tg_malloc(t, 0, 100, A);                                     /* 100 */
	mt_enc_alloc(e, MT_REC_CALLOC, 0, 200, B);                   /* 300 */
	mt_enc_aligned(e, 0, MT_FN_POSIX_MEMALIGN, 64, 300, C);      /* 600 */
	tg_free_rec(t, 0, A);                                        /* 500 */
	tg_realloc(t, 0, B, 500, B); /* in place */                  /* 800 */
	tg_realloc(t, 0, 0, 50, D);  /* realloc(NULL, 50) */          /* 850 peak */
	tg_realloc(t, 0, D, 0, 0);   /* realloc(D, 0) frees D */      /* 800 */
	tg_malloc(t, 0, 1000, 0);    /* failed */
	tg_realloc(t, 0, C, 1000, 0); /* failed, C kept */
	mt_enc_alloc(e, MT_REC_CALLOC, 0, 10, 0); /* failed */
	tg_free_rec(t, 0, 0x9990);   /* unmatched */
	tg_malloc(t, 0, 40, C);      /* C already live: inconsistent */ /* 540 */
	mt_enc_value(e, MT_REC_TIME, 50);
	mt_enc_value(e, MT_REC_LOST, 3);
	tg_flush(t);
	tg_footer(t, 2, 5, MT_END_EXIT);
}

static void test_single_thread_figures(void **state)
{
	(void)state;
	static const uint64_t prefills[] = { 0, BIG_HEAP };
	for (size_t i = 0; i < 2; i++) {
		struct tg t;
		struct mt_report rep;
		single_thread_trace(&t, prefills[i]);
		assert_int_equal(build(&t, &rep), MT_REPORT_OK);
		expect_prefill(&rep, 1, prefills[i]);
		expect_dom(&rep.dom[0], 5, 1, 3, 3, 100 + 200 + 300 + 500 + 50 + 40, 850, 540, 2,
			   1, 1);
		for (int d = 1; d < MT_DOM_COUNT; d++)
			expect_idle(&rep, d);
		assert_int_equal(rep.events.total, 12);
		assert_int_equal(rep.events.lost, 2 + 3);
		assert_int_equal(rep.events.producer_waits, 5);
		assert_true(rep.trace.complete);
		assert_int_equal(rep.trace.end_reason, MT_END_EXIT);
		assert_int_equal(rep.trace.blocks, 1);
		assert_int_equal(rep.trace.duration_us, 150);
		assert_int_equal(rep.trace.threads, 1);
		mt_report_free(&rep);
		tg_free(&t);
	}
}

/* Moved reallocs: OUT and IN of one thread with other threads' records in
 * between, across block boundaries, failing, freeing, and of an unknown
 * block.  Live bytes after each event in the comments. */
static void threaded_trace(struct tg *t, uint64_t prefilled)
{
	tg_init(t);
	tg_header(t, 43);
	prefill(t, prefilled);
	tg_thread(t, 1);
	tg_malloc(t, 0, 100, A); /* 100 */
	tg_thread(t, 2);
	tg_malloc(t, 0, 10, Q); /* 110 */
	tg_thread(t, 1);
	mt_enc_addr_only(&t->enc, MT_REC_REALLOC_OUT, 0, A); /* 10: A is free now */
	tg_thread(t, 2);
	tg_malloc(t, 0, 40, A); /* 50: thread 2 gets A; not inconsistent */
	tg_flush(t);

	tg_thread(t, 2);
	tg_free_rec(t, 0, Q); /* 40 */
	tg_thread(t, 1);
	mt_enc_alloc(&t->enc, MT_REC_REALLOC_IN, 0, 200, B); /* 240: A moved to B */
	tg_thread(t, 3);
	mt_enc_addr_only(&t->enc, MT_REC_REALLOC_OUT, 0, A); /* 200 */
	tg_thread(t, 1);
	mt_enc_addr_only(&t->enc, MT_REC_REALLOC_OUT, 0, B); /* 0 */
	mt_enc_alloc(&t->enc, MT_REC_REALLOC_IN, 0, 400, 0);  /* 200: failed, B stays */
	tg_thread(t, 3);
	mt_enc_alloc(&t->enc, MT_REC_REALLOC_IN, 0, 0, 0); /* 200: realloc(A, 0) freed A */
	tg_flush(t);

	tg_thread(t, 4);
	mt_enc_addr_only(&t->enc, MT_REC_REALLOC_OUT, 0, 0x7770); /* never seen */
	mt_enc_alloc(&t->enc, MT_REC_REALLOC_IN, 0, 64, E);       /* 264 */
	tg_flush(t);
}

static void test_moved_realloc_across_threads(void **state)
{
	(void)state;
	static const uint64_t prefills[] = { 0, BIG_HEAP };
	for (size_t i = 0; i < 2; i++) {
		struct tg t;
		struct mt_report rep;
		threaded_trace(&t, prefills[i]);
		assert_int_equal(build(&t, &rep), MT_REPORT_OK);
		expect_prefill(&rep, 3, prefills[i]);
		expect_dom(&rep.dom[0], 3, 2, 2, 1, 100 + 10 + 40 + 200 + 64, 264, 264, 2, 0, 0);
		assert_int_equal(rep.events.total, 8); /* 3 mallocs, 1 free, 4 INs */
		assert_int_equal(rep.trace.threads, 4);
		assert_int_equal(rep.trace.blocks, 3);
		assert_false(rep.trace.complete); /* no footer: killed */
		assert_int_equal(rep.trace.end_reason, MT_REASON_NONE);
		assert_int_equal(rep.events.lost, 0);
		mt_report_free(&rep);
		tg_free(&t);
	}
}

static void test_domains_are_separate(void **state)
{
	(void)state;
	struct tg t;
	struct mt_report rep;
	tg_init(&t);
	tg_header(&t, 44);
	tg_thread(&t, 1);
	tg_malloc(&t, MT_DOM_MALLOC, 8, A);
	tg_malloc(&t, MT_DOM_PYRAW, 16, A);
	tg_malloc(&t, MT_DOM_PYMEM, 32, A);
	tg_malloc(&t, MT_DOM_PYOBJ, 64, A);
	tg_free_rec(&t, MT_DOM_PYMEM, A);
	tg_realloc(&t, MT_DOM_PYOBJ, A, 128, A);
	tg_free_rec(&t, MT_DOM_PYRAW, B); /* B is live nowhere */
	mt_enc_addr_only(&t.enc, MT_REC_REALLOC_OUT, MT_DOM_PYOBJ, A);
	mt_enc_alloc(&t.enc, MT_REC_REALLOC_IN, MT_DOM_PYOBJ, 256, C);
	tg_free_rec(&t, MT_DOM_MALLOC, C); /* C is live in pymem_obj only */
	tg_flush(&t);
	tg_footer(&t, 0, 0, MT_END__EXIT);
	assert_int_equal(build(&t, &rep), MT_REPORT_OK);
	expect_dom(&rep.dom[MT_DOM_MALLOC], 1, 0, 1, 0, 8, 8, 8, 1, 1, 0);
	expect_dom(&rep.dom[MT_DOM_PYRAW], 1, 0, 1, 0, 16, 16, 16, 1, 1, 0);
	expect_dom(&rep.dom[MT_DOM_PYMEM], 1, 0, 1, 0, 32, 32, 0, 0, 0, 0);
	expect_dom(&rep.dom[MT_DOM_PYOBJ], 1, 2, 0, 0, 64 + 128 + 256, 256, 256, 1, 0, 0);
	assert_int_equal(rep.events.total, 9);
	assert_int_equal(rep.trace.end_reason, MT_END__EXIT);
	mt_report_free(&rep);
	tg_free(&t);
}

static void test_header_fields(void **state)
{
	(void)state;
	static const char argv[] = "prog\0--flag\0two words";
	struct tg t;
	struct mt_report rep;
	tg_init(&t);
	t.kv_len = tg_header_kv(t.kv, 4242);
	t.kv_len = mt_kv_put_bytes(t.kv, t.kv_len, MT_KEY_BYTES(77), "future", 6);
	t.kv_len = mt_kv_put_u64(t.kv, t.kv_len, MT_KEY_VARINT(78), 9);
	tg_kv_block(&t, MT_BLOCK_HEADER);
	assert_int_equal(build(&t, &rep), MT_REPORT_OK);
	const struct mt_process *p = &rep.process;
	assert_int_equal(p->have,
			 MT_HAVE_PID | MT_HAVE_PPID | MT_HAVE_START | MT_HAVE_PAGE_SIZE);
	assert_int_equal(p->pid, 4242);
	assert_int_equal(p->ppid, 1);
	assert_int_equal(p->start_ns, 1700000000123456789ull);
	assert_int_equal(p->page_size, 4096);
	assert_int_equal(p->exe.n, 13);
	assert_memory_equal(p->exe.p, "/usr/bin/prog", 13);
	assert_int_equal(p->version.n, 5);
	assert_memory_equal(p->version.p, "0.1.0", 5);
	assert_int_equal(p->argv.n, sizeof argv);
	assert_memory_equal(p->argv.p, argv, sizeof argv);
	assert_false(rep.trace.complete);
	assert_int_equal(rep.trace.blocks, 0);
	assert_int_equal(rep.trace.threads, 0);
	mt_report_free(&rep);
	tg_free(&t);
}

static void expect_bad(const uint8_t *data, size_t len, const char *why)
{
	struct mt_report rep;
	assert_int_equal(build_bytes(data, len, &rep), MT_REPORT_BAD_TRACE);
	if (!strstr(rep.error, why))
		fail_msg("error \"%s\" does not say \"%s\"", rep.error, why);
	mt_report_free(&rep);
}

/* Empty event blocks, and a block of stream 0's definitions alone, are
 * read without fuss; events need a thread's stream. */
static void test_empty_blocks_and_no_thread(void **state)
{
	(void)state;
	struct tg t;
	struct mt_report rep;
	tg_init(&t);
	tg_header(&t, 49);
	tg_block(&t, MT_BLOCK_EVENTS, "", 0);
	mt_enc_string(&t.enc, 1, "main.py", 7);
	tg_flush(&t);
	tg_thread(&t, 3);
	tg_malloc(&t, 0, 10, A);
	mt_enc_addr_only(&t.enc, MT_REC_REALLOC_OUT, 0, A);
	mt_enc_alloc(&t.enc, MT_REC_REALLOC_IN, 0, 30, B);
	mt_enc_alloc(&t.enc, MT_REC_ARENA_ALLOC, MT_DOM_PYOBJ, 262144, C); /* not counted */
	tg_flush(&t);
	tg_block(&t, MT_BLOCK_EVENTS, "", 0);
	tg_footer(&t, 0, 0, MT_END_EXIT);
	assert_int_equal(build(&t, &rep), MT_REPORT_OK);
	assert_int_equal(rep.trace.blocks, 4);
	assert_int_equal(rep.trace.threads, 1);
	assert_int_equal(rep.events.total, 2);
	expect_dom(&rep.dom[0], 1, 1, 0, 0, 40, 30, 30, 1, 0, 0);
	expect_idle(&rep, MT_DOM_PYOBJ);
	assert_true(rep.trace.complete);
	mt_report_free(&rep);
	tg_free(&t);

	/* Before any THREAD, tracegen puts an event in stream 0. */
	tg_init(&t);
	tg_header(&t, 49);
	tg_malloc(&t, 0, 10, A);
	tg_flush(&t);
	expect_bad(t.data, t.len, "a record of kind 1 in stream 0");
	tg_free(&t);
}

/* A failed exec leaves a footer followed by more blocks; the last footer
 * holds the final totals. */
static void test_footer_then_more_blocks(void **state)
{
	(void)state;
	struct tg t;
	struct mt_report rep;
	tg_init(&t);
	tg_header(&t, 45);
	tg_thread(&t, 1);
	tg_malloc(&t, 0, 10, A);
	tg_flush(&t);
	tg_footer(&t, 1, 1, MT_END_EXEC);
	tg_thread(&t, 1);
	tg_malloc(&t, 0, 20, B);
	tg_flush(&t);
	size_t killed_len = t.len;
	tg_footer(&t, 4, 6, MT_END_EXIT);

	assert_int_equal(build(&t, &rep), MT_REPORT_OK);
	assert_true(rep.trace.complete);
	assert_int_equal(rep.trace.end_reason, MT_END_EXIT);
	assert_int_equal(rep.events.lost, 4);
	assert_int_equal(rep.events.producer_waits, 6);
	assert_int_equal(rep.trace.blocks, 2);
	expect_dom(&rep.dom[0], 2, 0, 0, 0, 30, 30, 30, 2, 0, 0);
	mt_report_free(&rep);

	/* Killed after the failed exec: the first footer does not make it
	 * complete, but its counts are the best there are. */
	assert_int_equal(build_bytes(t.data, killed_len, &rep), MT_REPORT_OK);
	assert_false(rep.trace.complete);
	assert_int_equal(rep.trace.end_reason, MT_REASON_NONE);
	assert_int_equal(rep.events.lost, 1);
	expect_dom(&rep.dom[0], 2, 0, 0, 0, 30, 30, 30, 2, 0, 0);
	mt_report_free(&rep);
	tg_free(&t);
}

static void test_torn_last_block(void **state)
{
	(void)state;
	struct tg t;
	struct mt_report rep;
	tg_init(&t);
	tg_header(&t, 46);
	tg_thread(&t, 1);
	tg_malloc(&t, 0, 10, A);
	tg_flush(&t);
	tg_thread(&t, 1);
	tg_malloc(&t, 0, 20, B);
	tg_flush(&t);
	size_t first_events_end = t.ends[1], torn_at = (t.ends[1] + t.ends[2]) / 2;

	assert_int_equal(build_bytes(t.data, torn_at, &rep), MT_REPORT_TORN);
	expect_dom(&rep.dom[0], 1, 0, 0, 0, 10, 10, 10, 1, 0, 0);
	assert_false(rep.trace.complete);
	assert_int_equal(rep.trace.blocks, 1);
	assert_non_null(strstr(rep.error, "ends inside a block"));
	mt_report_free(&rep);

	/* Torn inside the block header itself. */
	assert_int_equal(build_bytes(t.data, first_events_end + 5, &rep), MT_REPORT_TORN);
	assert_int_equal(rep.dom[0].allocs, 1);
	mt_report_free(&rep);
	tg_free(&t);
}

static void test_broken_traces(void **state)
{
	(void)state;
	struct tg t;
	single_thread_trace(&t, 0);
	uint8_t *copy = malloc(t.len + 64);
	memcpy(copy, t.data, t.len);
	copy[t.ends[1] - 3] ^= 0x55; /* inside the event block's frame */
	expect_bad(copy, t.len, "block 1, offset");
	memcpy(copy, t.data, t.len);
	copy[t.ends[0]] = 'X';
	expect_bad(copy, t.len, "bad block magic (block 1");
	expect_bad((const uint8_t *)"", 0, "empty file");
	expect_bad((const uint8_t *)"#!/bin/sh\necho hello\n", 21, "not a memtrace");
	memcpy(copy, t.data, t.len);
	copy[8] = 9;
	copy[10] = 0;
	expect_bad(copy, t.len, "9.0 is not supported");
	/* Garbage after a complete trace is corruption, not a torn end. */
	memcpy(copy, t.data, t.len);
	memset(copy + t.len, 0xee, 64);
	expect_bad(copy, t.len + 64, "bad block magic");
	tg_free(&t);

	/* Blocks that pass their checksum but hold malformed payloads. */
	static const uint8_t bad_record[] = { MT_TAG(MT_REC_THREAD, 1), 1 };
	static const uint8_t bad_kv[] = { MT_H_EXE, 50, 'x' };
	tg_init(&t);
	tg_header(&t, 47);
	tg_block(&t, MT_BLOCK_EVENTS, bad_record, sizeof bad_record);
	char want[160];
	snprintf(want, sizeof want, "not a STREAM record, or a STREAM longer than its block "
		 "(at offset 0 of 2) (block 1, offset %zu)", t.ends[0]);
	expect_bad(t.data, t.len, want);
	tg_free(&t);
	tg_init(&t);
	tg_block(&t, MT_BLOCK_HEADER, bad_kv, sizeof bad_kv);
	expect_bad(t.data, t.len, "malformed header (block 0, offset 16)");
	tg_free(&t);
	tg_init(&t);
	tg_header(&t, 47);
	tg_block(&t, MT_BLOCK_FOOTER, bad_kv, sizeof bad_kv);
	expect_bad(t.data, t.len, "malformed footer (block 1");
	free(copy);
	tg_free(&t);
}

/* Enough events to span many blocks, as the preload writes them. */
static void test_many_blocks(void **state)
{
	(void)state;
	enum { N = 300000 };
	struct tg t;
	struct mt_report rep;
	tg_init(&t);
	tg_header(&t, 48);
	tg_thread(&t, 1);
	for (uint64_t i = 0; i < 2 * N; i++) {
		uint64_t k = i < N ? i : 2 * N - 1 - i;
		uint64_t addr = 0x555555559000ull + 48 * (k * 7919 % N);
		if (i < N)
			tg_malloc(&t, 0, k + 1, addr);
		else
			tg_free_rec(&t, 0, addr);
		if (mt_enc_full(&t.enc)) {
			tg_flush(&t);
			tg_thread(&t, 1);
		}
	}
	tg_flush(&t);
	tg_footer(&t, 0, 0, MT_END_EXIT);
	assert_true(t.nblocks > 3);
	assert_int_equal(build(&t, &rep), MT_REPORT_OK);
	uint64_t bytes = (uint64_t)N * (N + 1) / 2;
	expect_dom(&rep.dom[0], N, 0, N, 0, bytes, bytes, 0, 0, 0, 0);
	assert_int_equal(rep.trace.blocks, t.nblocks - 2);
	assert_int_equal(rep.trace.threads, 1);
	mt_report_free(&rep);
	tg_free(&t);
}

/* ---- renderings -------------------------------------------------------- */

static json_t *render_json(const struct mt_report *rep)
{
	json_error_t err;
	FILE *f = tmpfile();
	assert_int_equal(mt_output_json(rep, f), 0);
	rewind(f);
	json_t *root = json_loadf(f, 0, &err);
	if (!root)
		fail_msg("invalid JSON: %s", err.text);
	fclose(f);
	return root;
}

static json_int_t jint(json_t *root, const char *path)
{
	json_t *v = json_object_get(root, path);
	assert_true(json_is_integer(v));
	return json_integer_value(v);
}

static void test_json_output(void **state)
{
	(void)state;
	static const char *const keys[] = {
		"allocs",     "frees",           "reallocs",           "failed",
		"bytes_allocated", "peak_bytes", "live_bytes_at_exit", "live_blocks_at_exit",
		"unmatched_frees", "inconsistent", "freed_below",
	};
	struct tg t;
	struct mt_report rep;
	single_thread_trace(&t, 0);
	assert_int_equal(build(&t, &rep), MT_REPORT_OK);
	json_t *root = render_json(&rep);
	assert_string_equal(json_string_value(json_object_get(root, "format")), "memtrace-report");
	assert_int_equal(jint(root, "schema_version"), 3);

	json_t *proc = json_object_get(root, "process");
	assert_int_equal(jint(proc, "pid"), 42);
	assert_int_equal(jint(proc, "ppid"), 1);
	assert_int_equal(jint(proc, "start_unix_ns"), 1700000000123456789ll);
	assert_int_equal(jint(proc, "page_size"), 4096);
	assert_string_equal(json_string_value(json_object_get(proc, "exe")), "/usr/bin/prog");
	assert_string_equal(json_string_value(json_object_get(proc, "version")), "0.1.0");
	json_t *argv = json_object_get(proc, "argv");
	assert_int_equal(json_array_size(argv), 3);
	assert_string_equal(json_string_value(json_array_get(argv, 2)), "two words");

	json_t *tr = json_object_get(root, "trace");
	assert_true(json_is_true(json_object_get(tr, "complete")));
	assert_string_equal(json_string_value(json_object_get(tr, "end_reason")), "exit");
	assert_int_equal(jint(tr, "blocks"), 1);
	assert_int_equal(jint(tr, "duration_us"), 150);
	assert_int_equal(jint(tr, "threads"), 1);

	json_t *ev = json_object_get(root, "events");
	assert_int_equal(jint(ev, "total"), 12);
	assert_int_equal(jint(ev, "lost"), 5);
	assert_int_equal(jint(ev, "producer_waits"), 5);

	json_t *doms = json_object_get(root, "domains");
	assert_int_equal(json_object_size(doms), MT_DOM_COUNT + 1); /* and mmap */
	for (int d = 0; d < MT_DOM_COUNT; d++) {
		json_t *o = json_object_get(doms, mt_domain_name(d));
		assert_int_equal(json_object_size(o), sizeof keys / sizeof keys[0]);
		for (size_t k = 0; k < sizeof keys / sizeof keys[0]; k++)
			assert_int_equal(jint(o, keys[k]), d ? 0 : jint(o, keys[k]));
	}
	json_t *m = json_object_get(doms, "malloc");
	assert_int_equal(jint(m, "peak_bytes"), 850);
	assert_int_equal(jint(m, "live_bytes_at_exit"), 540);
	assert_int_equal(jint(m, "bytes_allocated"), 1190);
	assert_non_null(json_object_get(doms, "pymem_raw"));
	assert_non_null(json_object_get(doms, "pymem_mem"));
	assert_non_null(json_object_get(doms, "pymem_obj"));
	json_decref(root);
	mt_report_free(&rep);
	tg_free(&t);
}

/* What the trace did not say is null, and bytes that are not UTF-8 survive. */
static void test_json_nulls_and_raw_bytes(void **state)
{
	(void)state;
	static const uint8_t exe[] = { '/', 0xff, 'x', 0xc3, 0xa9 };
	struct tg t;
	struct mt_report rep;
	tg_init(&t);
	t.kv_len = mt_kv_put_bytes(t.kv, 0, MT_H_EXE, exe, sizeof exe);
	tg_kv_block(&t, MT_BLOCK_HEADER);
	assert_int_equal(build(&t, &rep), MT_REPORT_OK);
	json_t *root = render_json(&rep);
	json_t *proc = json_object_get(root, "process");
	assert_true(json_is_null(json_object_get(proc, "pid")));
	assert_true(json_is_null(json_object_get(proc, "argv")));
	assert_true(json_is_null(json_object_get(proc, "version")));
	assert_string_equal(json_string_value(json_object_get(proc, "exe")),
			    "/\\xffx\\xc3\\xa9");
	json_t *tr = json_object_get(root, "trace");
	assert_true(json_is_false(json_object_get(tr, "complete")));
	assert_true(json_is_null(json_object_get(tr, "end_reason")));
	json_decref(root);
	mt_report_free(&rep);
	tg_free(&t);
}

/* The row's malloc and pymem_obj figures, read back without separators. */
static void expect_row(const char *text, const char *name, uint64_t malloc_v, uint64_t obj_v)
{
	char head[64], digits[4][32];
	uint64_t v[4];
	snprintf(head, sizeof head, "\n  %s  ", name);
	const char *line = strstr(text, head);
	assert_non_null(line);
	assert_int_equal(sscanf(line + strlen(head), "%31s %31s %31s %31s", digits[0], digits[1],
				digits[2], digits[3]),
			 4);
	for (int d = 0; d < 4; d++) {
		char plain[32];
		size_t n = 0;
		for (const char *c = digits[d]; *c; c++)
			if (*c != ',')
				plain[n++] = *c;
		plain[n] = 0;
		v[d] = strtoull(plain, NULL, 10);
	}
	assert_int_equal(v[0], malloc_v);
	assert_int_equal(v[1], 0);
	assert_int_equal(v[2], 0);
	assert_int_equal(v[3], obj_v);
}

static void test_text_output(void **state)
{
	(void)state;
	struct tg t;
	struct mt_report rep;
	char text[8192];
	single_thread_trace(&t, 0);
	assert_int_equal(build(&t, &rep), MT_REPORT_OK);
	rep.dom[3].bytes_allocated = 1234567890123ull; /* to see the separators */
	FILE *f = tmpfile();
	assert_int_equal(mt_output_text(&rep, "x.trace", f), 0);
	rewind(f);
	size_t n = fread(text, 1, sizeof text - 1, f);
	text[n] = 0;
	fclose(f);
	assert_non_null(strstr(text, "memtrace report: x.trace\n"));
	assert_non_null(strstr(text, "argv              prog --flag 'two words'\n"));
	assert_non_null(strstr(text, "started           2023-11-14 22:13:20.123 UTC\n"));
	assert_non_null(strstr(text, "complete          yes, ended by exit\n"));
	assert_non_null(strstr(text, "allocator calls   12\n"));
	assert_non_null(strstr(text, "1,234,567,890,123\n"));
	expect_row(text, "peak bytes", 850, 0);
	expect_row(text, "bytes allocated", 1190, 1234567890123ull);
	expect_row(text, "live blocks at exit", 2, 0);

	/* The domain table's rows all end in the same column (the table ends
	 * at the next blank line). */
	const char *table = strstr(text, "\ndomains");
	assert_non_null(table);
	size_t width = strcspn(table + 1, "\n");
	for (const char *l = strchr(table + 1, '\n'); l && l[1] && l[1] != '\n';
	     l = strchr(l + 1, '\n'))
		assert_int_equal(strcspn(l + 1, "\n"), width);
	mt_report_free(&rep);
	tg_free(&t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_single_thread_figures),
		cmocka_unit_test(test_moved_realloc_across_threads),
		cmocka_unit_test(test_domains_are_separate),
		cmocka_unit_test(test_header_fields),
		cmocka_unit_test(test_empty_blocks_and_no_thread),
		cmocka_unit_test(test_footer_then_more_blocks),
		cmocka_unit_test(test_torn_last_block),
		cmocka_unit_test(test_broken_traces),
		cmocka_unit_test(test_many_blocks),
		cmocka_unit_test(test_json_output),
		cmocka_unit_test(test_json_nulls_and_raw_bytes),
		cmocka_unit_test(test_text_output),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
