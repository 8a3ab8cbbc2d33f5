/*
 * test_codec.c - the trace codec (common/codec.c): record, key/value and
 * block round trips at edge values, and the reader's behaviour on every
 * truncation and every single-byte corruption of a small trace.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <zstd.h>

#include "codec.h"
#include "tracegen.h"

static const uint64_t sizes[] = {
	0, 1, 127, 128, 16383, 16384, UINT32_MAX, 1ull << 63, UINT64_MAX - 1, UINT64_MAX,
};

/* Up, down, wrapping both ways, tiny and huge steps. */
static const uint64_t addrs[] = {
	0x555555559010ull, 0x555555559030ull, 0x555555559000ull, 0,
	UINT64_MAX,        1,                 0x8000000000000000ull, 0x7fffffffffffffffull,
	0x7ffff7dd1000ull, 0x10,              UINT64_MAX - 15,       0x555555559010ull,
};

#define NSIZES (sizeof sizes / sizeof sizes[0])
#define NADDRS (sizeof addrs / sizeof addrs[0])

/* Decodes exactly len bytes from their own heap copy, so that ASan catches
 * any read past the end. */
struct exact {
	uint8_t *p;
	struct mt_dec d;
};

static void exact_init(struct exact *x, const uint8_t *buf, size_t len)
{
	x->p = malloc(len ? len : 1);
	assert_non_null(x->p);
	memcpy(x->p, buf, len);
	mt_dec_init(&x->d, x->p, len);
}

static void expect_rec(const struct mt_rec *got, const struct mt_rec *want)
{
	assert_int_equal(got->kind, want->kind);
	assert_int_equal(got->dom, want->dom);
	assert_int_equal(got->addr, want->addr);
	assert_int_equal(got->old, want->old);
	assert_int_equal(got->size, want->size);
	assert_int_equal(got->value, want->value);
	assert_int_equal(got->fn, want->fn);
	assert_int_equal(got->ref1, want->ref1);
	assert_int_equal(got->ref2, want->ref2);
	assert_int_equal(got->line, want->line);
	assert_int_equal(got->n, want->n);
	if (want->n)
		assert_memory_equal(got->bytes, want->bytes, want->n);
	else
		assert_true(got->bytes == NULL || got->kind == MT_REC_STRING);
}

struct recs {
	struct mt_rec *v;
	size_t n, cap;
};

static struct mt_rec *add(struct recs *r, int kind, int dom)
{
	if (r->n == r->cap) {
		r->cap = r->cap ? 2 * r->cap : 256;
		r->v = realloc(r->v, r->cap * sizeof *r->v);
		assert_non_null(r->v);
	}
	struct mt_rec *x = &r->v[r->n++];
	memset(x, 0, sizeof *x);
	x->kind = kind;
	x->dom = dom;
	return x;
}

/* Encodes every address-carrying record kind for one (dom, size, addr, old). */
static void encode_all(struct mt_enc *e, struct recs *want, int dom, uint64_t size,
		       uint64_t addr, uint64_t old, int fn)
{
	static const int alloc_kinds[] = { MT_REC_MALLOC, MT_REC_CALLOC, MT_REC_REALLOC_IN,
					   MT_REC_ARENA_ALLOC, MT_REC_ARENA_FREE };
	for (size_t k = 0; k < sizeof alloc_kinds / sizeof alloc_kinds[0]; k++) {
		mt_enc_alloc(e, alloc_kinds[k], dom, size, addr);
		struct mt_rec *r = add(want, alloc_kinds[k], dom);
		r->size = size;
		r->addr = addr;
	}
	mt_enc_aligned(e, dom, fn, size ^ 0xff, size, addr);
	struct mt_rec *r = add(want, MT_REC_ALIGNED, dom);
	r->fn = fn;
	r->value = size ^ 0xff;
	r->size = size;
	r->addr = addr;
	mt_enc_realloc(e, dom, old, size, addr);
	r = add(want, MT_REC_REALLOC, dom);
	r->old = old;
	r->size = size;
	r->addr = addr;
	mt_enc_addr_only(e, MT_REC_REALLOC_OUT, dom, old);
	add(want, MT_REC_REALLOC_OUT, dom)->addr = old;
	mt_enc_addr_only(e, MT_REC_FREE, dom, addr);
	add(want, MT_REC_FREE, dom)->addr = addr;
}
#define ADDR_RECS 9 /* records encode_all writes */

/* Encodes every domain-less record kind with v in each of its integers. */
static void encode_plain(struct mt_enc *e, struct recs *want, uint64_t v, const char *text)
{
	static const int value_kinds[] = { MT_REC_THREAD, MT_REC_TIME, MT_REC_LOST, MT_REC_LOC,
					   MT_REC_MARK };
	size_t n = strlen(text);
	for (size_t k = 0; k < sizeof value_kinds / sizeof value_kinds[0]; k++) {
		mt_enc_value(e, value_kinds[k], v);
		add(want, value_kinds[k], 0)->value = v;
	}
	mt_enc_string(e, v, text, n);
	struct mt_rec *r = add(want, MT_REC_STRING, 0);
	r->value = v;
	r->bytes = (const uint8_t *)text;
	r->n = n;
	mt_enc_code(e, v, ~v, v >> 3, v ^ 1);
	r = add(want, MT_REC_CODE, 0);
	r->value = v;
	r->ref1 = ~v;
	r->ref2 = v >> 3;
	r->line = v ^ 1;
	mt_enc_frame(e, ~v, v, 0, UINT64_MAX);
	r = add(want, MT_REC_FRAME, 0);
	r->value = ~v;
	r->ref1 = v;
	r->line = UINT64_MAX;
}
#define PLAIN_RECS 8 /* records encode_plain writes */

static void decode_and_check(const uint8_t *buf, size_t len, const struct recs *want,
			     size_t from, size_t to)
{
	struct exact x;
	struct mt_rec got;
	exact_init(&x, buf, len);
	for (size_t i = from; i < to; i++) {
		assert_int_equal(mt_dec_next(&x.d, &got), 1);
		expect_rec(&got, &want->v[i]);
	}
	assert_int_equal(mt_dec_next(&x.d, &got), 0);
	free(x.p);
}

static void test_record_round_trip(void **state)
{
	(void)state;
	struct mt_enc e = { .buf = malloc(MT_BLOCK_MAX_RAW + MT_REC_MAX) };
	struct recs want = { 0 };
	size_t block_start = 0, blocks = 0;
	assert_non_null(e.buf);
	mt_enc_reset(&e);
	for (int dom = 0; dom < MT_DOM_COUNT; dom++) {
		for (size_t s = 0; s < NSIZES; s++) {
			for (size_t a = 0; a < NADDRS; a++) {
				uint64_t old = addrs[(a + 5) % NADDRS];
				encode_all(&e, &want, dom, sizes[s], addrs[a], old,
					   (int)((s + a) % (MT_FN_PVALLOC + 1)));
			}
			encode_plain(&e, &want, sizes[s], s % 2 ? "" : "<module> in a.py");
			assert_false(mt_enc_full(&e));
		}
		/* A block per domain: each must restart the address deltas. */
		decode_and_check(e.buf, e.len, &want, block_start, want.n);
		block_start = want.n;
		mt_enc_reset(&e);
		blocks++;
	}
	assert_int_equal(blocks, MT_DOM_COUNT);
	assert_int_equal(want.n, MT_DOM_COUNT * NSIZES * (NADDRS * ADDR_RECS + PLAIN_RECS));
	free(want.v);
	free(e.buf);
}

/* The sizes the format's comments promise: small deltas stay small. */
static void test_record_sizes(void **state)
{
	(void)state;
	uint8_t buf[MT_REC_MAX * 8];
	struct mt_enc e = { .buf = buf };
	mt_enc_reset(&e);
	mt_enc_alloc(&e, MT_REC_MALLOC, 0, 24, 0x555555559010ull);
	size_t first = e.len;
	mt_enc_alloc(&e, MT_REC_MALLOC, 0, 24, 0x555555559030ull);
	assert_int_equal(e.len - first, 3); /* tag, size, +32 as zigzag */
	size_t second = e.len;
	mt_enc_addr_only(&e, MT_REC_FREE, 0, 0x555555559010ull);
	assert_int_equal(e.len - second, 2); /* tag, -32 as zigzag */
	size_t third = e.len;
	mt_enc_alloc(&e, MT_REC_MALLOC, 3, UINT64_MAX, 0x555555559010ull);
	assert_int_equal(e.len - third, 1 + 10 + 1);
	assert_int_equal(buf[third], MT_TAG(MT_REC_MALLOC, 3));
	assert_int_equal(first, 1 + 1 + 7); /* 47-bit address from zero: 7 bytes */
}

static void expect_malformed(const uint8_t *buf, size_t len)
{
	struct exact x;
	struct mt_rec r;
	exact_init(&x, buf, len);
	assert_int_equal(mt_dec_next(&x.d, &r), -1);
	free(x.p);
}

/* One record of the kind with every integer at its widest. */
static void encode_largest(struct mt_enc *e, int kind)
{
	switch (kind) {
	case MT_REC_ALIGNED:
		mt_enc_aligned(e, 1, MT_FN_MEMALIGN, UINT64_MAX, UINT64_MAX, UINT64_MAX);
		break;
	case MT_REC_REALLOC:
		mt_enc_realloc(e, 2, UINT64_MAX, UINT64_MAX, 1);
		break;
	case MT_REC_REALLOC_OUT:
	case MT_REC_FREE:
		mt_enc_addr_only(e, kind, 3, 1ull << 62);
		break;
	case MT_REC_STRING:
		mt_enc_string(e, UINT64_MAX, "abc", 3);
		break;
	case MT_REC_CODE:
		mt_enc_code(e, UINT64_MAX, UINT64_MAX, UINT64_MAX, UINT64_MAX);
		break;
	case MT_REC_FRAME:
		mt_enc_frame(e, UINT64_MAX, UINT64_MAX, UINT64_MAX, UINT64_MAX);
		break;
	case MT_REC_THREAD:
	case MT_REC_TIME:
	case MT_REC_LOST:
	case MT_REC_LOC:
	case MT_REC_MARK:
		mt_enc_value(e, kind, UINT64_MAX);
		break;
	default: /* MALLOC, CALLOC, REALLOC_IN, ARENA_ALLOC, ARENA_FREE */
		mt_enc_alloc(e, kind, 1, UINT64_MAX, 1ull << 62);
	}
}

static void test_decoder_rejects_malformed(void **state)
{
	(void)state;
	uint8_t buf[128] = { 0 };
	struct mt_enc e = { .buf = buf };
	struct mt_rec r;
	struct mt_dec d;
	mt_dec_init(&d, buf, 0);
	assert_int_equal(mt_dec_next(&d, &r), 0);

	const uint8_t kind0[] = { MT_TAG(0, 1), 1, 1 }, kind18[] = { 18, 1, 1 },
		      kind31[] = { 31, 0 };
	const uint8_t thread_dom1[] = { MT_TAG(MT_REC_THREAD, 1), 5 };
	const uint8_t time_dom3[] = { MT_TAG(MT_REC_TIME, 3), 5 };
	const uint8_t code_dom2[] = { MT_TAG(MT_REC_CODE, 2), 1, 1, 1, 1 };
	const uint8_t string_dom1[] = { MT_TAG(MT_REC_STRING, 1), 1, 1, 'x' };
	const uint8_t string_long[] = { MT_TAG(MT_REC_STRING, 0), 1, 3, 'x', 'y' };
	const uint8_t bad_fn[] = { MT_TAG(MT_REC_ALIGNED, 0), MT_FN_PVALLOC + 1, 16, 16, 2 };
	const uint8_t long_varint[] = { MT_TAG(MT_REC_TIME, 0), 0x80, 0x80, 0x80, 0x80, 0x80,
					0x80, 0x80, 0x80, 0x80, 0x80, 0x01 };
	expect_malformed(kind0, sizeof kind0);
	expect_malformed(kind18, sizeof kind18);
	expect_malformed(kind31, sizeof kind31);
	expect_malformed(thread_dom1, sizeof thread_dom1);
	expect_malformed(time_dom3, sizeof time_dom3);
	expect_malformed(code_dom2, sizeof code_dom2);
	expect_malformed(string_dom1, sizeof string_dom1);
	expect_malformed(string_long, sizeof string_long);
	expect_malformed(bad_fn, sizeof bad_fn);
	expect_malformed(long_varint, sizeof long_varint);

	/* Every record cut anywhere after its tag is malformed, not misread. */
	for (int kind = MT_REC_MALLOC; kind <= MT_REC_MARK; kind++) {
		mt_enc_reset(&e);
		encode_largest(&e, kind);
		for (size_t cut = 1; cut < e.len; cut++)
			expect_malformed(buf, cut);
		struct exact x;
		exact_init(&x, buf, e.len);
		assert_int_equal(mt_dec_next(&x.d, &r), 1);
		assert_int_equal(r.kind, kind);
		assert_int_equal(mt_dec_next(&x.d, &r), 0);
		free(x.p);
	}
}

/* Format 2's payload: segments of streams, padding, epochs. */
static void test_segments_and_padding(void **state)
{
	(void)state;
	uint8_t rec[64], payload[256];
	struct mt_enc e = { .buf = rec };
	struct mt_dec top, seg;
	struct mt_rec r;
	uint64_t stream;
	size_t len = 0;
	mt_enc_reset(&e);
	mt_enc_value(&e, MT_REC_EPOCH, 300);
	mt_enc_alloc(&e, MT_REC_MALLOC, 0, 24, 0x555555559010ull);
	rec[e.len++] = 0; /* padding inside a segment */
	rec[e.len++] = 0;
	mt_enc_value(&e, MT_REC_HORIZON, 7);
	len = tg_segment(payload, len, 5, rec, e.len);
	payload[len++] = 0; /* and between segments */
	len = tg_segment(payload, len, 1ull << 40, "", 0);
	payload[len++] = 0;

	struct exact x;
	exact_init(&x, payload, len);
	top = x.d;
	assert_int_equal(mt_dec_segment(&top, &stream, &seg), 1);
	assert_int_equal(stream, 5);
	assert_int_equal(seg.end - seg.p, e.len);
	seg.prev_addr = 0x555555559000ull; /* the stream's, from before */
	assert_int_equal(mt_dec_next(&seg, &r), 1);
	assert_int_equal(r.kind, MT_REC_EPOCH);
	assert_int_equal(r.value, 300);
	assert_int_equal(mt_dec_next(&seg, &r), 1);
	assert_int_equal(r.addr, 0x555555559000ull + 0x555555559010ull);
	assert_int_equal(mt_dec_next(&seg, &r), 1);
	assert_int_equal(r.kind, MT_REC_HORIZON);
	assert_int_equal(r.value, 7);
	assert_int_equal(mt_dec_next(&seg, &r), 0);
	assert_int_equal(mt_dec_segment(&top, &stream, &seg), 1);
	assert_int_equal(stream, 1ull << 40);
	assert_true(seg.p == seg.end);
	assert_int_equal(mt_dec_segment(&top, &stream, &seg), 0);
	free(x.p);

	/* A STREAM longer than what is left, a record that is not one, a
	 * STREAM with a domain, cut short. */
	const uint8_t too_long[] = { MT_TAG(MT_REC_STREAM, 0), 1, 3, 1, 2 };
	const uint8_t not_stream[] = { MT_TAG(MT_REC_TIME, 0), 1 };
	const uint8_t with_dom[] = { MT_TAG(MT_REC_STREAM, 1), 1, 0 };
	const uint8_t cut[] = { MT_TAG(MT_REC_STREAM, 0), 1 };
	const uint8_t *bad[] = { too_long, not_stream, with_dom, cut };
	const size_t bad_len[] = { sizeof too_long, sizeof not_stream, sizeof with_dom,
				   sizeof cut };
	for (size_t i = 0; i < 4; i++) {
		exact_init(&x, bad[i], bad_len[i]);
		assert_int_equal(mt_dec_segment(&x.d, &stream, &seg), -1);
		free(x.p);
	}
	/* Only padding: the end. */
	memset(payload, 0, sizeof payload);
	exact_init(&x, payload, sizeof payload);
	assert_int_equal(mt_dec_segment(&x.d, &stream, &seg), 0);
	free(x.p);
}

/* ---- key/value lists --------------------------------------------------- */

static void test_kv_round_trip(void **state)
{
	(void)state;
	static const uint8_t bin[] = { 0, 1, 0xff, 0, 0x80, 'x' };
	uint8_t buf[512];
	size_t n = 0, pos = 0;
	struct mt_kv kv;
	n = mt_kv_put_u64(buf, n, MT_H_PID, 0);
	n = mt_kv_put_u64(buf, n, MT_KEY_VARINT(1000), UINT64_MAX); /* unknown */
	n = mt_kv_put_bytes(buf, n, MT_KEY_BYTES(1001), bin, sizeof bin); /* unknown */
	n = mt_kv_put_bytes(buf, n, MT_H_EXE, "", 0);
	n = mt_kv_put_u64(buf, n, UINT64_MAX - 1, 7); /* largest varint key */
	n = mt_kv_put_bytes(buf, n, MT_H_ARGV, bin, sizeof bin);

	assert_int_equal(mt_kv_next(buf, n, &pos, &kv), 1);
	assert_int_equal(kv.key, MT_H_PID);
	assert_int_equal(kv.u64, 0);
	assert_null(kv.bytes);
	assert_int_equal(mt_kv_next(buf, n, &pos, &kv), 1);
	assert_int_equal(kv.key, MT_KEY_VARINT(1000));
	assert_int_equal(kv.u64, UINT64_MAX);
	assert_int_equal(mt_kv_next(buf, n, &pos, &kv), 1);
	assert_int_equal(kv.key, MT_KEY_BYTES(1001));
	assert_int_equal(kv.n, sizeof bin);
	assert_memory_equal(kv.bytes, bin, sizeof bin);
	assert_int_equal(mt_kv_next(buf, n, &pos, &kv), 1);
	assert_int_equal(kv.key, MT_H_EXE);
	assert_int_equal(kv.n, 0);
	assert_int_equal(mt_kv_next(buf, n, &pos, &kv), 1);
	assert_int_equal(kv.key, UINT64_MAX - 1);
	assert_int_equal(kv.u64, 7);
	assert_int_equal(mt_kv_next(buf, n, &pos, &kv), 1);
	assert_int_equal(kv.key, MT_H_ARGV);
	assert_memory_equal(kv.bytes, bin, sizeof bin);
	assert_int_equal(mt_kv_next(buf, n, &pos, &kv), 0);
	assert_int_equal(pos, n);

	/* Every cut either falls between entries (a clean, shorter list) or
	 * is malformed; none reads past the cut. */
	size_t entries_at_cut = 0;
	for (size_t cut = 0; cut < n; cut++) {
		uint8_t *copy = malloc(cut ? cut : 1);
		int st, entries = 0;
		memcpy(copy, buf, cut);
		pos = 0;
		while ((st = mt_kv_next(copy, cut, &pos, &kv)) == 1)
			entries++;
		assert_true(st == 0 || st == -1);
		entries_at_cut += st == 0;
		free(copy);
	}
	assert_int_equal(entries_at_cut, 6); /* cut == 0 and after each of five entries */

	uint8_t too_long[] = { MT_H_EXE, 5, 'a', 'b' };
	pos = 0;
	assert_int_equal(mt_kv_next(too_long, sizeof too_long, &pos, &kv), -1);
	assert_int_equal(pos, 0);
}

/* ---- blocks and the reader --------------------------------------------- */

static void test_block_round_trip(void **state)
{
	(void)state;
	struct tg t;
	uint8_t *noise = malloc(MT_BLOCK_MAX_RAW), *zeros = calloc(1, MT_BLOCK_MAX_RAW);
	static const char text[] = "a small payload";
	struct mt_reader r;
	int type;
	assert_non_null(noise);
	assert_non_null(zeros);
	srand(7);
	for (size_t i = 0; i < MT_BLOCK_MAX_RAW; i++)
		noise[i] = (uint8_t)(rand() >> 7);
	tg_init(&t);
	tg_block(&t, MT_BLOCK_HEADER, text, sizeof text);
	tg_block(&t, MT_BLOCK_EVENTS, "", 0);
	tg_block(&t, MT_BLOCK_EVENTS, noise, MT_BLOCK_MAX_RAW);
	tg_block(&t, MT_BLOCK_EVENTS, zeros, MT_BLOCK_MAX_RAW);
	tg_block(&t, MT_BLOCK_FOOTER, text, 3);

	FILE *f = tg_file(t.data, t.len);
	assert_int_equal(mt_reader_open(&r, f), MT_READ_OK);
	assert_int_equal(r.major, MT_FORMAT_MAJOR);
	assert_int_equal(mt_reader_next(&r, &type), MT_READ_OK);
	assert_int_equal(type, MT_BLOCK_HEADER);
	assert_int_equal(r.raw_len, sizeof text);
	assert_memory_equal(r.raw, text, sizeof text);
	assert_int_equal(mt_reader_next(&r, &type), MT_READ_OK);
	assert_int_equal(type, MT_BLOCK_EVENTS);
	assert_int_equal(r.raw_len, 0);
	assert_int_equal(mt_reader_next(&r, &type), MT_READ_OK);
	assert_int_equal(r.raw_len, MT_BLOCK_MAX_RAW);
	assert_memory_equal(r.raw, noise, MT_BLOCK_MAX_RAW);
	assert_int_equal(mt_reader_next(&r, &type), MT_READ_OK);
	assert_memory_equal(r.raw, zeros, MT_BLOCK_MAX_RAW);
	assert_int_equal(mt_reader_next(&r, &type), MT_READ_OK);
	assert_int_equal(type, MT_BLOCK_FOOTER);
	assert_memory_equal(r.raw, text, 3);
	assert_int_equal(mt_reader_next(&r, &type), MT_READ_END);
	assert_int_equal(r.blocks, 5);
	assert_int_equal(r.offset, t.len);
	mt_reader_close(&r);
	fclose(f);

	uint8_t small[MT_BLOCK_HEADER_LEN + 4];
	assert_int_equal(mt_block_encode(t.cctx, MT_BLOCK_EVENTS, noise, 4096, small, sizeof small),
			 0);
	tg_free(&t);
	free(noise);
	free(zeros);
}

/* A small but complete trace and the payloads of its blocks. */
struct sample {
	struct tg t;
	uint8_t *raw[8];
	size_t raw_len[8];
};

static void sample_block(struct sample *s, int type, const void *raw, size_t len)
{
	size_t i = s->t.nblocks;
	s->raw[i] = malloc(len ? len : 1);
	memcpy(s->raw[i], raw, len);
	s->raw_len[i] = len;
	tg_block(&s->t, type, raw, len);
}

static void sample_build(struct sample *s)
{
	uint8_t head[4096];
	tg_init(&s->t);
	sample_block(s, MT_BLOCK_HEADER, head, tg_header_kv(head, 42));
	for (int b = 0; b < 3; b++) {
		mt_enc_reset(&s->t.enc);
		tg_thread(&s->t, 100 + (uint64_t)b);
		for (uint64_t i = 0; i < 6; i++)
			tg_malloc(&s->t, b, 16 * i + 1, 0x5000 + 64 * i + (uint64_t)b);
		tg_realloc(&s->t, b, 0x5000, 100, 0x9000);
		tg_free_rec(&s->t, b, 0x5040);
		sample_block(s, MT_BLOCK_EVENTS, s->t.enc.buf, s->t.enc.len);
	}
	uint8_t foot[32];
	size_t n = mt_kv_put_u64(foot, 0, MT_F_LOST, 3);
	n = mt_kv_put_u64(foot, n, MT_F_REASON, MT_END_EXIT);
	sample_block(s, MT_BLOCK_FOOTER, foot, n);
}

static void sample_free(struct sample *s)
{
	for (size_t i = 0; i < s->t.nblocks; i++)
		free(s->raw[i]);
	tg_free(&s->t);
}

/* Runs the decoders of every kind over a payload: any answer but a crash. */
static void decode_anyhow(const uint8_t *raw, size_t len)
{
	struct exact x;
	struct mt_rec r;
	struct mt_kv kv;
	size_t pos = 0;
	int st;
	exact_init(&x, raw, len);
	while ((st = mt_dec_next(&x.d, &r)) == 1)
		assert_in_range(r.kind, MT_REC_MALLOC, MT_REC_MARK);
	assert_true(st == 0 || st == -1);
	while ((st = mt_kv_next(x.p, len, &pos, &kv)) == 1)
		assert_in_range(pos, 1, len);
	assert_true(st == 0 || st == -1);
	free(x.p);
}

/* Reads a whole file; returns the final status and the number of blocks
 * read.  *identical says whether their payloads all equal the sample's. */
static int read_all(const struct sample *s, const uint8_t *data, size_t len, size_t *blocks,
		    bool *identical)
{
	FILE *f = tg_file(data, len);
	struct mt_reader r;
	int st = mt_reader_open(&r, f), type;
	*blocks = 0;
	*identical = true;
	while (st == MT_READ_OK && (st = mt_reader_next(&r, &type)) == MT_READ_OK) {
		size_t i = (*blocks)++;
		decode_anyhow(r.raw, r.raw_len);
		if (i >= s->t.nblocks || r.raw_len != s->raw_len[i] ||
		    memcmp(r.raw, s->raw[i], r.raw_len))
			*identical = false;
	}
	if (st != MT_READ_OK && st != MT_READ_END)
		assert_true(r.error[0]);
	mt_reader_close(&r);
	fclose(f);
	return st;
}

static void test_truncation_every_offset(void **state)
{
	(void)state;
	struct sample s;
	size_t blocks;
	bool identical;
	sample_build(&s);
	for (size_t cut = 0; cut <= s.t.len; cut++) {
		int st = read_all(&s, s.t.data, cut, &blocks, &identical);
		size_t complete = 0;
		bool at_boundary = cut == MT_PREAMBLE_LEN;
		while (complete < s.t.nblocks && s.t.ends[complete] <= cut)
			at_boundary |= s.t.ends[complete++] == cut;
		if (cut < MT_FILE_MAGIC_LEN)
			assert_int_equal(st, MT_READ_FOREIGN);
		else if (cut < MT_PREAMBLE_LEN)
			assert_int_equal(st, MT_READ_TRUNCATED);
		else
			assert_int_equal(st, at_boundary ? MT_READ_END : MT_READ_TRUNCATED);
		if (cut >= MT_PREAMBLE_LEN)
			assert_int_equal(blocks, complete);
		assert_true(identical);
	}
	sample_free(&s);
}

/* Changes a reader may not notice: to the minor version and reserved bytes
 * of the preamble, to each block's type and reserved bytes, and to the
 * bit of the zstd frame header that decoders must ignore. */
static bool may_pass(const struct sample *s, size_t off, uint8_t mask)
{
	if (off >= 10 && off < MT_PREAMBLE_LEN)
		return true;
	for (size_t b = 0; b < s->t.nblocks; b++) {
		size_t start = b ? s->t.ends[b - 1] : MT_PREAMBLE_LEN;
		if (off >= start + 4 && off < start + 8)
			return true;
		if (off == start + MT_BLOCK_HEADER_LEN + 4 && mask == 0x10)
			return true;
	}
	return false;
}

static void test_corruption_every_byte(void **state)
{
	(void)state;
	static const uint8_t masks[] = { 0x01, 0x10, 0x80, 0xff };
	struct sample s;
	size_t blocks;
	bool identical;
	sample_build(&s);
	uint8_t *copy = malloc(s.t.len);
	for (size_t off = 0; off < s.t.len; off++) {
		for (size_t m = 0; m < sizeof masks; m++) {
			memcpy(copy, s.t.data, s.t.len);
			copy[off] ^= masks[m];
			int st = read_all(&s, copy, s.t.len, &blocks, &identical);
			if (off < MT_FILE_MAGIC_LEN)
				assert_int_equal(st, MT_READ_FOREIGN);
			else if (off < 10)
				assert_int_equal(st, MT_READ_VERSION);
			if (st == MT_READ_END) {
				/* Accepted: then nothing but a block's type may differ. */
				if (!may_pass(&s, off, masks[m]))
					fail_msg("flip 0x%02x at %zu went unnoticed", masks[m], off);
				assert_int_equal(blocks, s.t.nblocks);
				assert_true(identical);
			} else {
				assert_true(st == MT_READ_TRUNCATED || st == MT_READ_CORRUPT ||
					    st == MT_READ_FOREIGN || st == MT_READ_VERSION);
			}
		}
	}
	free(copy);
	sample_free(&s);
}

static int open_bytes(const void *bytes, size_t len, struct mt_reader *r)
{
	FILE *f = tg_file(bytes, len);
	int st = mt_reader_open(r, f);
	mt_reader_close(r);
	fclose(f);
	return st;
}

static void test_foreign_files(void **state)
{
	(void)state;
	struct mt_reader r;
	static const char text[] = "just some text, not a trace at all";
	static const uint8_t elf[] = { 0x7f, 'E', 'L', 'F', 2, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0 };
	assert_int_equal(open_bytes(text, sizeof text, &r), MT_READ_FOREIGN);
	assert_non_null(strstr(r.error, "not a memtrace"));
	assert_int_equal(open_bytes(elf, sizeof elf, &r), MT_READ_FOREIGN);
	assert_int_equal(open_bytes("", 0, &r), MT_READ_FOREIGN);
	assert_int_equal(open_bytes("MEMTRAC", 7, &r), MT_READ_FOREIGN);
	assert_int_equal(open_bytes("MEMTRACE\1\0", 10, &r), MT_READ_TRUNCATED);
}

static void test_future_major_version(void **state)
{
	(void)state;
	struct mt_reader r;
	struct sample s;
	sample_build(&s);
	s.t.data[8] = MT_FORMAT_MAJOR + 1;
	s.t.data[10] = 0;
	assert_int_equal(open_bytes(s.t.data, s.t.len, &r), MT_READ_VERSION);
	assert_non_null(strstr(r.error, "3.0 is not supported"));
	/* Format 1 is no longer read, and the message says which is. */
	s.t.data[8] = 1;
	s.t.data[10] = 1;
	assert_int_equal(open_bytes(s.t.data, s.t.len, &r), MT_READ_VERSION);
	assert_non_null(strstr(r.error, "format 1 (1.1); this memtrace reads format 2"));
	s.t.data[8] = MT_FORMAT_MAJOR;
	s.t.data[10] = MT_FORMAT_MINOR + 1; /* a newer minor is readable */
	assert_int_equal(open_bytes(s.t.data, s.t.len, &r), MT_READ_OK);
	assert_int_equal(r.minor, MT_FORMAT_MINOR + 1);
	sample_free(&s);
}

static void test_bad_block_headers(void **state)
{
	(void)state;
	struct sample s;
	size_t blocks;
	bool identical;
	sample_build(&s);
	size_t b1 = s.t.ends[0]; /* the first event block's header */
	uint8_t *copy = malloc(s.t.len);
	const struct {
		size_t off;
		uint8_t val;
	} cases[] = {
		{ b1 + 0, 'X' },  /* magic */
		{ b1 + 4, 0 },    /* type below range */
		{ b1 + 4, 4 },    /* type above range */
		{ b1 + 11, 0x7f }, /* length beyond MT_BLOCK_MAX_LEN */
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		memcpy(copy, s.t.data, s.t.len);
		copy[cases[i].off] = cases[i].val;
		assert_int_equal(read_all(&s, copy, s.t.len, &blocks, &identical), MT_READ_CORRUPT);
		assert_int_equal(blocks, 1);
	}
	/* A frame that does not record its content size is refused. */
	ZSTD_CCtx *cctx = ZSTD_createCCtx();
	uint8_t frame[MT_BLOCK_HEADER_LEN + 64];
	ZSTD_CCtx_setParameter(cctx, ZSTD_c_contentSizeFlag, 0);
	ZSTD_CCtx_setParameter(cctx, ZSTD_c_checksumFlag, 1);
	size_t z = ZSTD_compress2(cctx, frame + MT_BLOCK_HEADER_LEN, 64, "abc", 3);
	assert_false(ZSTD_isError(z));
	memcpy(frame, s.t.data + b1, MT_BLOCK_HEADER_LEN);
	frame[8] = (uint8_t)z;
	frame[9] = frame[10] = frame[11] = 0;
	memcpy(copy, s.t.data, b1);
	memcpy(copy + b1, frame, MT_BLOCK_HEADER_LEN + z);
	assert_int_equal(read_all(&s, copy, b1 + MT_BLOCK_HEADER_LEN + z, &blocks, &identical),
			 MT_READ_CORRUPT);
	assert_int_equal(blocks, 1);
	ZSTD_freeCCtx(cctx);
	free(copy);
	sample_free(&s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_record_round_trip),
		cmocka_unit_test(test_record_sizes),
		cmocka_unit_test(test_decoder_rejects_malformed),
		cmocka_unit_test(test_segments_and_padding),
		cmocka_unit_test(test_kv_round_trip),
		cmocka_unit_test(test_block_round_trip),
		cmocka_unit_test(test_truncation_every_offset),
		cmocka_unit_test(test_corruption_every_byte),
		cmocka_unit_test(test_foreign_files),
		cmocka_unit_test(test_future_major_version),
		cmocka_unit_test(test_bad_block_headers),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
