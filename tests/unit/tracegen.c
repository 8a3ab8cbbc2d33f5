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

void tg_init(struct tg *t)
{
	uint8_t pre[MT_PREAMBLE_LEN];
	memset(t, 0, sizeof *t);
	t->cctx = ZSTD_createCCtx();
	t->enc.buf = xrealloc(NULL, MT_BLOCK_MAX_RAW + MT_REC_MAX);
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
	free(t->data);
	free(t->ends);
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
	if (t->enc.len)
		tg_block(t, MT_BLOCK_EVENTS, t->enc.buf, t->enc.len);
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
