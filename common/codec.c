/*
 * codec.c - varints, records, key/value lists and zstd-framed blocks of the
 * trace format.  The writer in the preload library and every reader share
 * this file, so the two sides cannot drift apart.
 */
#include "codec.h"

#include <stdlib.h>
#include <string.h>
#include <zstd.h>

/* ---- varints ---------------------------------------------------------- */

static inline uint8_t *put_varint(uint8_t *p, uint64_t v)
{
	while (v >= 0x80) {
		*p++ = (uint8_t)(v | 0x80);
		v >>= 7;
	}
	*p++ = (uint8_t)v;
	return p;
}

/* Returns 0 on success, -1 when the varint is cut short or too long. */
static inline int get_varint(const uint8_t **pp, const uint8_t *end, uint64_t *out)
{
	const uint8_t *p = *pp;
	uint64_t v = 0;
	for (int shift = 0; shift < 64; shift += 7) {
		if (p >= end)
			return -1;
		uint8_t b = *p++;
		v |= (uint64_t)(b & 0x7f) << shift;
		if (!(b & 0x80)) {
			*pp = p;
			*out = v;
			return 0;
		}
	}
	return -1;
}

static inline uint64_t zigzag(int64_t v)
{
	return ((uint64_t)v << 1) ^ (uint64_t)(v >> 63);
}

static inline int64_t unzigzag(uint64_t v)
{
	return (int64_t)(v >> 1) ^ -(int64_t)(v & 1);
}

/* ---- encoding --------------------------------------------------------- */

void mt_enc_reset(struct mt_enc *e)
{
	e->len = 0;
	e->prev_addr = 0;
}

static inline uint8_t *put_addr(struct mt_enc *e, uint8_t *p, uint64_t addr)
{
	p = put_varint(p, zigzag((int64_t)(addr - e->prev_addr)));
	e->prev_addr = addr;
	return p;
}

void mt_enc_alloc(struct mt_enc *e, int kind, int dom, uint64_t size, uint64_t addr)
{
	uint8_t *p = e->buf + e->len;
	*p++ = MT_TAG(kind, dom);
	p = put_varint(p, size);
	p = put_addr(e, p, addr);
	e->len = (size_t)(p - e->buf);
}

void mt_enc_aligned(struct mt_enc *e, int dom, int fn, uint64_t align, uint64_t size,
		    uint64_t addr)
{
	uint8_t *p = e->buf + e->len;
	*p++ = MT_TAG(MT_REC_ALIGNED, dom);
	p = put_varint(p, (uint64_t)fn);
	p = put_varint(p, align);
	p = put_varint(p, size);
	p = put_addr(e, p, addr);
	e->len = (size_t)(p - e->buf);
}

void mt_enc_realloc(struct mt_enc *e, int dom, uint64_t old, uint64_t size, uint64_t addr)
{
	uint8_t *p = e->buf + e->len;
	*p++ = MT_TAG(MT_REC_REALLOC, dom);
	p = put_addr(e, p, old);
	p = put_varint(p, size);
	p = put_addr(e, p, addr);
	e->len = (size_t)(p - e->buf);
}

void mt_enc_addr_only(struct mt_enc *e, int kind, int dom, uint64_t addr)
{
	uint8_t *p = e->buf + e->len;
	*p++ = MT_TAG(kind, dom);
	p = put_addr(e, p, addr);
	e->len = (size_t)(p - e->buf);
}

void mt_enc_value(struct mt_enc *e, int kind, uint64_t value)
{
	uint8_t *p = e->buf + e->len;
	*p++ = MT_TAG(kind, 0);
	p = put_varint(p, value);
	e->len = (size_t)(p - e->buf);
}

size_t mt_enc_def_size(size_t string_len)
{
	return 1 + 4 * 10 + string_len;
}

void mt_enc_string(struct mt_enc *e, uint64_t id, const void *s, size_t n)
{
	uint8_t *p = e->buf + e->len;
	*p++ = MT_TAG(MT_REC_STRING, 0);
	p = put_varint(p, id);
	p = put_varint(p, n);
	memcpy(p, s, n);
	e->len = (size_t)(p + n - e->buf);
}

static void enc_4(struct mt_enc *e, int kind, uint64_t a, uint64_t b, uint64_t c, uint64_t d)
{
	uint8_t *p = e->buf + e->len;
	*p++ = MT_TAG(kind, 0);
	p = put_varint(p, a);
	p = put_varint(p, b);
	p = put_varint(p, c);
	p = put_varint(p, d);
	e->len = (size_t)(p - e->buf);
}

void mt_enc_code(struct mt_enc *e, uint64_t id, uint64_t file, uint64_t name, uint64_t line)
{
	enc_4(e, MT_REC_CODE, id, file, name, line);
}

void mt_enc_frame(struct mt_enc *e, uint64_t id, uint64_t parent, uint64_t code, uint64_t line)
{
	enc_4(e, MT_REC_FRAME, id, parent, code, line);
}

void mt_enc_native_frame(struct mt_enc *e, uint64_t id, uint64_t parent, uint64_t ip)
{
	uint8_t *p = e->buf + e->len;
	*p++ = MT_TAG(MT_REC_NATIVE_FRAME, 0);
	p = put_varint(p, id);
	p = put_varint(p, parent);
	p = put_varint(p, ip);
	e->len = (size_t)(p - e->buf);
}

void mt_enc_module(struct mt_enc *e, uint64_t id, uint64_t start, uint64_t end, uint64_t bias,
		   uint64_t path, uint64_t build_id)
{
	uint8_t *p = e->buf + e->len;
	*p++ = MT_TAG(MT_REC_MODULE, 0);
	p = put_varint(p, id);
	p = put_varint(p, start);
	p = put_varint(p, end - start);
	p = put_varint(p, bias);
	p = put_varint(p, path);
	p = put_varint(p, build_id);
	e->len = (size_t)(p - e->buf);
}

void mt_enc_map(struct mt_enc *e, int kind, uint64_t size, uint64_t addr, uint64_t prot,
		uint64_t flags)
{
	uint8_t *p = e->buf + e->len;
	*p++ = MT_TAG(kind, 0);
	p = put_varint(p, size);
	p = put_addr(e, p, addr);
	if (kind == MT_REC_MMAP)
		p = put_varint(p, prot);
	p = put_varint(p, flags);
	e->len = (size_t)(p - e->buf);
}

void mt_enc_sample(struct mt_enc *e, uint64_t mask, const uint64_t v[MT_S_COUNT])
{
	uint8_t *p = e->buf + e->len;
	*p++ = MT_TAG(MT_REC_SAMPLE, 0);
	mask &= (1u << MT_S_COUNT) - 1;
	p = put_varint(p, mask);
	for (int f = 0; f < MT_S_COUNT; f++)
		if (mask >> f & 1)
			p = put_varint(p, v[f]);
	e->len = (size_t)(p - e->buf);
}

size_t mt_enc_stream(uint8_t *p, uint64_t stream, uint64_t len)
{
	uint8_t *q = p;
	*q++ = MT_TAG(MT_REC_STREAM, 0);
	q = put_varint(q, stream);
	q = put_varint(q, len);
	return (size_t)(q - p);
}

/* ---- decoding --------------------------------------------------------- */

void mt_dec_init(struct mt_dec *d, const uint8_t *buf, size_t len)
{
	d->p = buf;
	d->end = buf + len;
	d->prev_addr = 0;
}

static int get_addr(struct mt_dec *d, uint64_t *out)
{
	uint64_t z;
	if (get_varint(&d->p, d->end, &z))
		return -1;
	d->prev_addr += (uint64_t)unzigzag(z);
	*out = d->prev_addr;
	return 0;
}

/* A SAMPLE's mask and values; the values stay in the block for
 * mt_dec_sample. */
static int get_sample(struct mt_dec *d, struct mt_rec *r)
{
	uint64_t v;
	if (get_varint(&d->p, d->end, &r->value))
		return -1;
	r->bytes = d->p;
	for (uint64_t m = r->value; m; m &= m - 1)
		if (get_varint(&d->p, d->end, &v))
			return -1;
	r->n = (size_t)(d->p - r->bytes);
	return 1;
}

void mt_dec_sample(const struct mt_rec *r, uint64_t v[MT_S_COUNT], uint64_t *have)
{
	const uint8_t *p = r->bytes, *end = r->bytes + r->n;
	uint64_t x;
	*have = 0;
	for (int f = 0; f < 64 && (r->value >> f); f++) {
		if (!(r->value >> f & 1))
			continue;
		if (get_varint(&p, end, &x))
			return;
		if (f < MT_S_COUNT) {
			v[f] = x;
			*have |= 1ull << f;
		}
	}
}

int mt_dec_next(struct mt_dec *d, struct mt_rec *r)
{
	if (d->p >= d->end)
		return 0;
	uint8_t tag = *d->p++;
	uint64_t fn;
	memset(r, 0, sizeof *r);
	r->kind = MT_TAG_KIND(tag);
	r->dom = MT_TAG_DOM(tag);
	switch (r->kind) {
	case MT_REC_MALLOC:
	case MT_REC_CALLOC:
	case MT_REC_REALLOC_IN:
	case MT_REC_ARENA_ALLOC:
	case MT_REC_ARENA_FREE:
		return get_varint(&d->p, d->end, &r->size) || get_addr(d, &r->addr) ? -1 : 1;
	case MT_REC_ALIGNED:
		if (get_varint(&d->p, d->end, &fn) || fn > MT_FN_PVALLOC)
			return -1;
		r->fn = (int)fn;
		return get_varint(&d->p, d->end, &r->value) ||
				       get_varint(&d->p, d->end, &r->size) || get_addr(d, &r->addr)
			       ? -1
			       : 1;
	case MT_REC_REALLOC:
		return get_addr(d, &r->old) || get_varint(&d->p, d->end, &r->size) ||
				       get_addr(d, &r->addr)
			       ? -1
			       : 1;
	case MT_REC_REALLOC_OUT:
	case MT_REC_FREE:
		return get_addr(d, &r->addr) ? -1 : 1;
	case MT_REC_THREAD:
	case MT_REC_TIME:
	case MT_REC_LOST:
	case MT_REC_LOC:
	case MT_REC_MARK:
	case MT_REC_STACK:
	case MT_REC_MODULE_GONE:
	case MT_REC_EPOCH:
	case MT_REC_HORIZON:
	value:
		if (r->dom != 0)
			return -1;
		return get_varint(&d->p, d->end, &r->value) ? -1 : 1;
	case MT_REC_STRING:
		if (r->dom != 0 || get_varint(&d->p, d->end, &r->value) ||
		    get_varint(&d->p, d->end, &fn) || fn > (uint64_t)(d->end - d->p))
			return -1;
		r->bytes = d->p;
		r->n = (size_t)fn;
		d->p += fn;
		return 1;
	case MT_REC_NATIVE_FRAME:
		return r->dom != 0 || get_varint(&d->p, d->end, &r->value) ||
				       get_varint(&d->p, d->end, &r->ref1) ||
				       get_varint(&d->p, d->end, &r->addr)
			       ? -1
			       : 1;
	case MT_REC_MODULE:
		return r->dom != 0 || get_varint(&d->p, d->end, &r->value) ||
				       get_varint(&d->p, d->end, &r->addr) ||
				       get_varint(&d->p, d->end, &r->size) ||
				       get_varint(&d->p, d->end, &r->old) ||
				       get_varint(&d->p, d->end, &r->ref1) ||
				       get_varint(&d->p, d->end, &r->ref2)
			       ? -1
			       : 1;
	case MT_REC_MMAP:
		return r->dom != 0 || get_varint(&d->p, d->end, &r->size) || get_addr(d, &r->addr) ||
				       get_varint(&d->p, d->end, &r->value) ||
				       get_varint(&d->p, d->end, &r->ref1)
			       ? -1
			       : 1;
	case MT_REC_MREMAP_IN:
		return r->dom != 0 || get_varint(&d->p, d->end, &r->size) || get_addr(d, &r->addr) ||
				       get_varint(&d->p, d->end, &r->ref1)
			       ? -1
			       : 1;
	case MT_REC_MUNMAP:
	case MT_REC_MREMAP_OUT:
		return r->dom != 0 || get_varint(&d->p, d->end, &r->size) || get_addr(d, &r->addr)
			       ? -1
			       : 1;
	case MT_REC_SAMPLE:
		return r->dom != 0 ? -1 : get_sample(d, r);
	case MT_REC_CODE:
	case MT_REC_FRAME:
		return r->dom != 0 || get_varint(&d->p, d->end, &r->value) ||
				       get_varint(&d->p, d->end, &r->ref1) ||
				       get_varint(&d->p, d->end, &r->ref2) ||
				       get_varint(&d->p, d->end, &r->line)
			       ? -1
			       : 1;
	default:
		/* out of the switch, which stays one jump table for the kinds
		 * that make up nearly every record */
		if (r->kind == MT_REC_SCRIPT)
			goto value;
		if (tag == 0) { /* padding, up to the next record */
			while (d->p < d->end && !*d->p)
				d->p++;
			return mt_dec_next(d, r);
		}
		if (r->kind == MT_REC_STREAM)
			return r->dom != 0 || get_varint(&d->p, d->end, &r->value) ||
					       get_varint(&d->p, d->end, &r->size)
				       ? -1
				       : 1;
		return -1;
	}
}

int mt_dec_segment(struct mt_dec *top, uint64_t *stream, struct mt_dec *seg)
{
	struct mt_rec r;
	int st = mt_dec_next(top, &r);
	if (st != 1)
		return st;
	if (r.kind != MT_REC_STREAM || r.size > (uint64_t)(top->end - top->p))
		return -1;
	*stream = r.value;
	seg->p = top->p;
	seg->end = top->p + r.size;
	top->p = seg->end;
	return 1;
}

/* ---- key/value lists -------------------------------------------------- */

size_t mt_kv_put_u64(uint8_t *buf, size_t len, uint64_t key, uint64_t v)
{
	uint8_t *p = put_varint(buf + len, key);
	p = put_varint(p, v);
	return (size_t)(p - buf);
}

size_t mt_kv_put_bytes(uint8_t *buf, size_t len, uint64_t key, const void *src, size_t n)
{
	uint8_t *p = put_varint(buf + len, key);
	p = put_varint(p, n);
	memcpy(p, src, n);
	return (size_t)(p + n - buf);
}

int mt_kv_next(const uint8_t *buf, size_t len, size_t *pos, struct mt_kv *kv)
{
	const uint8_t *p = buf + *pos, *end = buf + len;
	if (p >= end)
		return 0;
	memset(kv, 0, sizeof *kv);
	if (get_varint(&p, end, &kv->key) || get_varint(&p, end, &kv->u64))
		return -1;
	if (kv->key & 1) {
		if (kv->u64 > (uint64_t)(end - p))
			return -1;
		kv->bytes = p;
		kv->n = (size_t)kv->u64;
		p += kv->n;
	}
	*pos = (size_t)(p - buf);
	return 1;
}

/* ---- blocks ----------------------------------------------------------- */

static void put_le32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static uint32_t get_le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
	       (uint32_t)p[3] << 24;
}

size_t mt_block_bound(size_t len)
{
	return MT_BLOCK_HEADER_LEN + ZSTD_compressBound(len);
}

size_t mt_block_encode(void *cctx, int type, const void *raw, size_t len, void *out,
		       size_t cap)
{
	uint8_t *o = out;
	if (cap < MT_BLOCK_HEADER_LEN)
		return 0;
	ZSTD_CCtx_setParameter(cctx, ZSTD_c_checksumFlag, 1);
	ZSTD_CCtx_setParameter(cctx, ZSTD_c_contentSizeFlag, 1);
	size_t z = ZSTD_compress2(cctx, o + MT_BLOCK_HEADER_LEN, cap - MT_BLOCK_HEADER_LEN, raw,
				  len);
	if (ZSTD_isError(z) || z > MT_BLOCK_MAX_LEN)
		return 0;
	put_le32(o, MT_BLOCK_MAGIC);
	o[4] = (uint8_t)type;
	o[5] = o[6] = o[7] = 0;
	put_le32(o + 8, (uint32_t)z);
	return MT_BLOCK_HEADER_LEN + z;
}

void mt_preamble(uint8_t buf[MT_PREAMBLE_LEN])
{
	memcpy(buf, MT_FILE_MAGIC, MT_FILE_MAGIC_LEN);
	buf[8] = MT_FORMAT_MAJOR;
	buf[9] = 0;
	buf[10] = MT_FORMAT_MINOR;
	buf[11] = 0;
	memset(buf + 12, 0, 4);
}

/* ---- reading ---------------------------------------------------------- */

static int fail(struct mt_reader *r, int status, const char *msg)
{
	snprintf(r->error, sizeof r->error, "%s (block %llu, offset %llu)", msg,
		 (unsigned long long)r->blocks, (unsigned long long)r->offset);
	return status;
}

int mt_reader_open(struct mt_reader *r, FILE *f)
{
	uint8_t pre[MT_PREAMBLE_LEN];
	memset(r, 0, sizeof *r);
	r->f = f;
	size_t n = fread(pre, 1, sizeof pre, f);
	if (n == 0 && ferror(f))
		return fail(r, MT_READ_IO, "read error");
	if (n < MT_FILE_MAGIC_LEN || memcmp(pre, MT_FILE_MAGIC, MT_FILE_MAGIC_LEN))
		return fail(r, MT_READ_FOREIGN, "not a memtrace trace file");
	if (n < sizeof pre)
		return fail(r, MT_READ_TRUNCATED, "trace file cut short in its preamble");
	r->major = pre[8] | pre[9] << 8;
	r->minor = pre[10] | pre[11] << 8;
	if (r->major == 1) {
		snprintf(r->error, sizeof r->error,
			 "trace written by memtrace format 1 (%d.%d); this memtrace reads format %d: "
			 "trace the program again",
			 r->major, r->minor, MT_FORMAT_MAJOR);
		return MT_READ_VERSION;
	}
	if (r->major != MT_FORMAT_MAJOR) {
		snprintf(r->error, sizeof r->error,
			 "trace format version %d.%d is not supported (this memtrace reads format %d)",
			 r->major, r->minor, MT_FORMAT_MAJOR);
		return MT_READ_VERSION;
	}
	r->offset = sizeof pre;
	r->dctx = ZSTD_createDCtx();
	r->zbuf = malloc(MT_BLOCK_MAX_LEN);
	r->raw = malloc(MT_BLOCK_MAX_RAW);
	if (!r->dctx || !r->zbuf || !r->raw)
		return fail(r, MT_READ_IO, "out of memory");
	return MT_READ_OK;
}

int mt_reader_next(struct mt_reader *r, int *type)
{
	uint8_t hdr[MT_BLOCK_HEADER_LEN];
	size_t n = fread(hdr, 1, sizeof hdr, r->f);
	if (n == 0 && feof(r->f))
		return MT_READ_END;
	if (n < sizeof hdr)
		return ferror(r->f) ? fail(r, MT_READ_IO, "read error")
				    : fail(r, MT_READ_TRUNCATED, "trace ends inside a block header");
	if (get_le32(hdr) != MT_BLOCK_MAGIC)
		return fail(r, MT_READ_CORRUPT, "bad block magic");
	uint32_t len = get_le32(hdr + 8);
	if (len > MT_BLOCK_MAX_LEN || hdr[4] < MT_BLOCK_HEADER || hdr[4] > MT_BLOCK_FOOTER)
		return fail(r, MT_READ_CORRUPT, "bad block header");
	if (fread(r->zbuf, 1, len, r->f) != len)
		return ferror(r->f) ? fail(r, MT_READ_IO, "read error")
				    : fail(r, MT_READ_TRUNCATED, "trace ends inside a block");
	unsigned long long raw = ZSTD_getFrameContentSize(r->zbuf, len);
	if (raw == ZSTD_CONTENTSIZE_ERROR || raw == ZSTD_CONTENTSIZE_UNKNOWN ||
	    raw > MT_BLOCK_MAX_RAW)
		return fail(r, MT_READ_CORRUPT, "bad block frame");
	size_t got = ZSTD_decompressDCtx(r->dctx, r->raw, MT_BLOCK_MAX_RAW, r->zbuf, len);
	if (ZSTD_isError(got) || got != raw)
		return fail(r, MT_READ_CORRUPT, "block fails its checksum");
	*type = hdr[4];
	r->raw_len = got;
	r->blocks++;
	r->offset += sizeof hdr + len;
	return MT_READ_OK;
}

void mt_reader_close(struct mt_reader *r)
{
	ZSTD_freeDCtx(r->dctx);
	free(r->zbuf);
	free(r->raw);
	r->dctx = r->zbuf = r->raw = NULL;
}
