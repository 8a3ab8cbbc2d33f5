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
	t->run.buf = xrealloc(NULL, MT_BLOCK_MAX_RAW + MT_REC_MAX);
	t->payload = xrealloc(NULL, MT_BLOCK_MAX_RAW + MT_REC_MAX);
	t->streams = xrealloc(NULL, sizeof *t->streams);
	t->streams[0] = (struct tg_stream){ .opened = true };
	t->nstreams = 1;
	t->run_stream = NO_RUN;
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
	free(t->run.buf);
	free(t->payload);
	free(t->streams);
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
	switch (kind) {
	case MT_REC_STRING:
	case MT_REC_CODE:
	case MT_REC_FRAME:
	case MT_REC_MODULE:
	case MT_REC_MODULE_GONE:
	case MT_REC_NATIVE_FRAME:
	case MT_REC_TIME:
	case MT_REC_LOST:
		return true;
	default:
		return false;
	}
}

static size_t stream_of_tid(struct tg *t, uint64_t tid)
{
	for (size_t i = 1; i < t->nstreams; i++)
		if (t->streams[i].tid == tid)
			return i;
	t->streams = xrealloc(t->streams, (t->nstreams + 1) * sizeof *t->streams);
	t->streams[t->nstreams] = (struct tg_stream){ .tid = tid };
	return t->nstreams++;
}

static void end_run(struct tg *t)
{
	if (t->run_stream == NO_RUN)
		return;
	t->payload_len = tg_segment(t->payload, t->payload_len, t->run_stream, t->run.buf,
				    t->run.len);
	t->streams[t->run_stream].prev_addr = t->run.prev_addr;
	t->run_stream = NO_RUN;
}

/* Each run of one stream's records is an epoch of its own. */
static void start_run(struct tg *t, size_t s)
{
	struct tg_stream *st = &t->streams[s];
	t->run_stream = s;
	t->run.len = 0;
	t->run.prev_addr = st->prev_addr;
	if (!st->opened)
		mt_enc_value(&t->run, MT_REC_THREAD, st->tid);
	st->opened = true;
	mt_enc_value(&t->run, MT_REC_EPOCH, ++t->epoch - st->announced);
	st->announced = t->epoch;
}

/* The block so far, with a HORIZON past its last epoch. */
static void end_block(struct tg *t)
{
	uint8_t h[16];
	struct mt_enc e = { .buf = h };
	end_run(t);
	mt_enc_value(&e, MT_REC_HORIZON, t->epoch + 1 - t->horizon);
	t->horizon = t->epoch + 1;
	t->payload_len = tg_segment(t->payload, t->payload_len, 0, h, e.len);
	tg_block(t, MT_BLOCK_EVENTS, t->payload, t->payload_len);
	t->payload_len = 0;
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

void tg_flush(struct tg *t)
{
	struct mt_dec d;
	struct mt_rec r;
	int st;
	if (!t->enc.len)
		return;
	mt_dec_init(&d, t->enc.buf, t->enc.len);
	while ((st = mt_dec_next(&d, &r)) == 1) {
		if (r.kind == MT_REC_THREAD) {
			t->cur = stream_of_tid(t, r.value);
			continue;
		}
		size_t s = process_kind(r.kind) ? 0 : t->cur;
		/* room for the record, the run's header and the HORIZON */
		if (t->payload_len + t->run.len + mt_enc_def_size(r.n) + MT_SAMPLE_MAX +
			    3 * MT_REC_MAX >
		    MT_BLOCK_MAX_RAW)
			end_block(t);
		if (s != t->run_stream) {
			end_run(t);
			start_run(t, s);
		}
		tg_put(&t->run, &r);
	}
	if (st < 0)
		abort();
	end_block(t);
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
