/*
 * tracegen.c - see tracegen.h.  Test helpers abort on allocation failure:
 * a test that cannot build its input has nothing to check.
 */
#include "tracegen.h"

#include <stdlib.h>
#include <string.h>
#include <zstd.h>

static void *xrealloc(void *p, size_t n)
{
	p = realloc(p, n);
	if (!p)
		abort();
	return p;
}

static void append(struct tg *t, const void *p, size_t n)
{
	if (t->len + n > t->cap) {
		t->cap = (t->len + n) * 2;
		t->data = xrealloc(t->data, t->cap);
	}
	memcpy(t->data + t->len, p, n);
	t->len += n;
}

#define NO_RUN SIZE_MAX

void tg_init(struct tg *t)
{
	uint8_t pre[MT_PREAMBLE_LEN];
	memset(t, 0, sizeof *t);
	t->cctx = ZSTD_createCCtx();
	t->enc.buf = xrealloc(NULL, MT_BLOCK_MAX_RAW + MT_REC_MAX);
	tg_streams_init(&t->streams);
	if (!t->cctx)
		abort();
	mt_enc_reset(&t->enc);
	mt_preamble(pre);
	append(t, pre, sizeof pre);
}

void tg_free(struct tg *t)
{
	ZSTD_freeCCtx(t->cctx);
	free(t->enc.buf);
	tg_streams_free(&t->streams);
	free(t->data);
	free(t->ends);
}

static size_t put_varint(uint8_t *p, uint64_t v)
{
	size_t n = 0;
	for (; v >= 0x80; v >>= 7)
		p[n++] = (uint8_t)(v | 0x80);
	p[n++] = (uint8_t)v;
	return n;
}

size_t tg_segment(uint8_t *buf, size_t len, uint64_t stream, const void *p, size_t n)
{
	buf[len++] = MT_TAG(MT_REC_STREAM, 0);
	len += put_varint(buf + len, stream);
	len += put_varint(buf + len, n);
	memcpy(buf + len, p, n);
	return len + n;
}

void tg_put(struct mt_enc *e, const struct mt_rec *r)
{
	uint64_t v[MT_S_COUNT] = { 0 }, have;
	switch (r->kind) {
	case MT_REC_MALLOC:
	case MT_REC_CALLOC:
	case MT_REC_REALLOC_IN:
	case MT_REC_ARENA_ALLOC:
	case MT_REC_ARENA_FREE:
	case MT_REC_MUNMAP:
	case MT_REC_MREMAP_OUT:
		mt_enc_alloc(e, r->kind, r->dom, r->size, r->addr);
		break;
	case MT_REC_ALIGNED:
		mt_enc_aligned(e, r->dom, r->fn, r->value, r->size, r->addr);
		break;
	case MT_REC_REALLOC:
		mt_enc_realloc(e, r->dom, r->old, r->size, r->addr);
		break;
	case MT_REC_REALLOC_OUT:
	case MT_REC_FREE:
		mt_enc_addr_only(e, r->kind, r->dom, r->addr);
		break;
	case MT_REC_STRING:
		mt_enc_string(e, r->value, r->bytes, r->n);
		break;
	case MT_REC_CODE:
		mt_enc_code(e, r->value, r->ref1, r->ref2, r->line);
		break;
	case MT_REC_FRAME:
		mt_enc_frame(e, r->value, r->ref1, r->ref2, r->line);
		break;
	case MT_REC_NATIVE_FRAME:
		mt_enc_native_frame(e, r->value, r->ref1, r->addr);
		break;
	case MT_REC_MODULE:
		mt_enc_module(e, r->value, r->addr, r->addr + r->size, r->old, r->ref1, r->ref2);
		break;
	case MT_REC_MMAP:
		mt_enc_map(e, r->kind, r->size, r->addr, r->value, r->ref1);
		break;
	case MT_REC_MREMAP_IN:
		mt_enc_map(e, r->kind, r->size, r->addr, 0, r->ref1);
		break;
	case MT_REC_SAMPLE:
		mt_dec_sample(r, v, &have);
		mt_enc_sample(e, have, v);
		break;
	default: /* one value */
		mt_enc_value(e, r->kind, r->value);
		break;
	}
}

/* The process's records, which format 2 puts in stream 0. */
static bool process_kind(int kind)
{
	return mt_rec_defines(kind) || kind == MT_REC_TIME || kind == MT_REC_LOST;
}

void tg_streams_init(struct tg_streams *v)
{
	memset(v, 0, sizeof *v);
	v->run.buf = xrealloc(NULL, MT_BLOCK_MAX_RAW + MT_REC_MAX);
	v->payload = xrealloc(NULL, MT_BLOCK_MAX_RAW + MT_REC_MAX);
	v->v = xrealloc(NULL, sizeof *v->v);
	v->v[0] = (struct tg_stream){ .opened = true };
	v->n = 1;
	v->run_stream = NO_RUN;
}

void tg_streams_free(struct tg_streams *v)
{
	free(v->run.buf);
	free(v->payload);
	free(v->v);
}

static size_t stream_of_tid(struct tg_streams *v, uint64_t tid)
{
	for (size_t i = 1; i < v->n; i++)
		if (v->v[i].tid == tid)
			return i;
	v->v = xrealloc(v->v, (v->n + 1) * sizeof *v->v);
	v->v[v->n] = (struct tg_stream){ .tid = tid };
	return v->n++;
}

static void end_run(struct tg_streams *v)
{
	if (v->run_stream == NO_RUN)
		return;
	v->payload_len = tg_segment(v->payload, v->payload_len, v->run_stream, v->run.buf,
				    v->run.len);
	v->v[v->run_stream].prev_addr = v->run.prev_addr;
	v->run_stream = NO_RUN;
}

/* Each run of one stream's records is an epoch of its own. */
static void start_run(struct tg_streams *v, size_t s)
{
	struct tg_stream *st = &v->v[s];
	v->run_stream = s;
	v->run.len = 0;
	v->run.prev_addr = st->prev_addr;
	if (!st->opened)
		mt_enc_value(&v->run, MT_REC_THREAD, st->tid);
	st->opened = true;
	mt_enc_value(&v->run, MT_REC_EPOCH, ++v->epoch - st->announced);
	st->announced = v->epoch;
}

/* The block so far, with a HORIZON past its last epoch. */
static void end_block(struct tg_streams *v, tg_emit_fn *emit, void *arg)
{
	uint8_t h[16];
	struct mt_enc e = { .buf = h };
	end_run(v);
	mt_enc_value(&e, MT_REC_HORIZON, v->epoch + 1 - v->horizon);
	v->horizon = v->epoch + 1;
	v->payload_len = tg_segment(v->payload, v->payload_len, 0, h, e.len);
	emit(arg, v->payload, v->payload_len);
	v->payload_len = 0;
}

void tg_streams_block(struct tg_streams *v, const uint8_t *records, size_t len, tg_emit_fn *emit,
		      void *arg)
{
	struct mt_dec d;
	struct mt_rec r;
	int st;
	mt_dec_init(&d, records, len);
	while ((st = mt_dec_next(&d, &r)) == 1) {
		if (r.kind == MT_REC_THREAD) {
			v->cur = stream_of_tid(v, r.value);
			continue;
		}
		size_t s = process_kind(r.kind) ? 0 : v->cur;
		/* room for the record, the run's header and the HORIZON */
		if (v->payload_len + v->run.len + mt_enc_def_size(r.n) + MT_SAMPLE_MAX +
			    3 * MT_REC_MAX >
		    MT_BLOCK_MAX_RAW)
			end_block(v, emit, arg);
		if (s != v->run_stream) {
			end_run(v);
			start_run(v, s);
		}
		tg_put(&v->run, &r);
	}
	if (st < 0)
		abort();
	end_block(v, emit, arg);
}

void tg_block(struct tg *t, int type, const void *raw, size_t len)
{
	size_t cap = mt_block_bound(len);
	uint8_t *out = xrealloc(NULL, cap);
	size_t n = mt_block_encode(t->cctx, type, raw, len, out, cap);
	if (!n)
		abort();
	append(t, out, n);
	free(out);
	t->ends = xrealloc(t->ends, (t->nblocks + 1) * sizeof *t->ends);
	t->ends[t->nblocks++] = t->len;
}

static void emit_block(void *arg, const uint8_t *payload, size_t len)
{
	tg_block(arg, MT_BLOCK_EVENTS, payload, len);
}

void tg_flush(struct tg *t)
{
	if (t->enc.len)
		tg_streams_block(&t->streams, t->enc.buf, t->enc.len, emit_block, t);
	mt_enc_reset(&t->enc);
}

void tg_kv_block(struct tg *t, int type)
{
	tg_block(t, type, t->kv, t->kv_len);
	t->kv_len = 0;
}

void tg_thread(struct tg *t, uint64_t tid)
{
	mt_enc_value(&t->enc, MT_REC_THREAD, tid);
}

void tg_malloc(struct tg *t, int dom, uint64_t size, uint64_t addr)
{
	mt_enc_alloc(&t->enc, MT_REC_MALLOC, dom, size, addr);
}

void tg_free_rec(struct tg *t, int dom, uint64_t addr)
{
	mt_enc_addr_only(&t->enc, MT_REC_FREE, dom, addr);
}

void tg_realloc(struct tg *t, int dom, uint64_t old, uint64_t size, uint64_t addr)
{
	mt_enc_realloc(&t->enc, dom, old, size, addr);
}

void tg_value(struct tg *t, int kind, uint64_t value)
{
	mt_enc_value(&t->enc, kind, value);
}

void tg_string(struct tg *t, uint64_t id, const char *s)
{
	mt_enc_string(&t->enc, id, s, strlen(s));
}

size_t tg_header_kv(uint8_t *buf, uint64_t pid)
{
	static const char argv[] = "prog\0--flag\0two words";
	size_t n = 0;
	n = mt_kv_put_u64(buf, n, MT_H_PID, pid);
	n = mt_kv_put_u64(buf, n, MT_H_PPID, 1);
	n = mt_kv_put_u64(buf, n, MT_H_START_NS, 1700000000123456789ull);
	n = mt_kv_put_u64(buf, n, MT_H_PAGE_SIZE, 4096);
	n = mt_kv_put_bytes(buf, n, MT_H_VERSION, "0.1.0", 5);
	n = mt_kv_put_bytes(buf, n, MT_H_EXE, "/usr/bin/prog", 13);
	n = mt_kv_put_bytes(buf, n, MT_H_ARGV, argv, sizeof argv);
	return n;
}

void tg_header(struct tg *t, uint64_t pid)
{
	t->kv_len = tg_header_kv(t->kv, pid);
	tg_kv_block(t, MT_BLOCK_HEADER);
}

void tg_footer(struct tg *t, uint64_t lost, uint64_t waits, uint64_t reason)
{
	size_t n = 0;
	n = mt_kv_put_u64(t->kv, n, MT_F_EVENTS, 0);
	n = mt_kv_put_u64(t->kv, n, MT_F_LOST, lost);
	n = mt_kv_put_u64(t->kv, n, MT_F_WAITS, waits);
	n = mt_kv_put_u64(t->kv, n, MT_F_REASON, reason);
	t->kv_len = n;
	tg_kv_block(t, MT_BLOCK_FOOTER);
}

FILE *tg_file(const uint8_t *bytes, size_t len)
{
	FILE *f = tmpfile();
	if (!f || fwrite(bytes, 1, len, f) != len || fflush(f))
		abort();
	rewind(f);
	return f;
}

void tg_py_header(struct tg *t, uint64_t pid, uint64_t py_depth)
{
	t->kv_len = tg_header_kv(t->kv, pid);
	t->kv_len = mt_kv_put_u64(t->kv, t->kv_len, MT_H_PY_VERSION, 0x030b07f0);
	t->kv_len = mt_kv_put_u64(t->kv, t->kv_len, MT_H_POOL_SIZE, 16384);
	t->kv_len = mt_kv_put_u64(t->kv, t->kv_len, MT_H_ARENA_SIZE, 1 << 20);
	t->kv_len = mt_kv_put_u64(t->kv, t->kv_len, MT_H_PY_DEPTH, py_depth);
	tg_kv_block(t, MT_BLOCK_HEADER);
	tg_thread(t, 1);
}

FILE *tg_finish(struct tg *t)
{
	tg_flush(t);
	tg_footer(t, 0, 0, MT_END_EXIT);
	FILE *f = tg_file(t->data, t->len);
	tg_free(t);
	return f;
}
