/*
 * codec.h - encoding and decoding of trace records, key/value lists and
 * compressed blocks (see include/memtrace/trace_format.h).  Used by the
 * preload library's writer and by the tools; nothing here allocates on the
 * encode path except through the buffers the caller hands in.
 */
#ifndef MEMTRACE_CODEC_H
#define MEMTRACE_CODEC_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <memtrace/trace_format.h>

/* ---- records ---------------------------------------------------------- */

/* An event block under construction.  `buf` has room for MT_BLOCK_MAX_RAW
 * bytes plus MT_REC_MAX; callers flush when mt_enc_full() says so. */
#define MT_REC_MAX 64
struct mt_enc {
	uint8_t *buf;
	size_t len;
	uint64_t prev_addr;
};

void mt_enc_reset(struct mt_enc *e);
static inline int mt_enc_full(const struct mt_enc *e)
{
	return e->len + MT_REC_MAX > MT_BLOCK_MAX_RAW;
}

void mt_enc_alloc(struct mt_enc *e, int kind, int dom, uint64_t size, uint64_t addr);
void mt_enc_aligned(struct mt_enc *e, int dom, int fn, uint64_t align, uint64_t size,
		    uint64_t addr);
void mt_enc_realloc(struct mt_enc *e, int dom, uint64_t old, uint64_t size, uint64_t addr);
void mt_enc_addr_only(struct mt_enc *e, int kind, int dom, uint64_t addr);
void mt_enc_value(struct mt_enc *e, int kind, uint64_t value);
/* Definitions: they need more room than MT_REC_MAX (see mt_enc_def_size). */
size_t mt_enc_def_size(size_t string_len);
void mt_enc_string(struct mt_enc *e, uint64_t id, const void *s, size_t n);
void mt_enc_code(struct mt_enc *e, uint64_t id, uint64_t file, uint64_t name, uint64_t line);
void mt_enc_frame(struct mt_enc *e, uint64_t id, uint64_t parent, uint64_t code, uint64_t line);
void mt_enc_native_frame(struct mt_enc *e, uint64_t id, uint64_t parent, uint64_t ip);
void mt_enc_module(struct mt_enc *e, uint64_t id, uint64_t start, uint64_t end, uint64_t bias,
		   uint64_t path, uint64_t build_id);
/* MMAP (prot, flags) and MREMAP_IN (flags only: prot is ignored). */
void mt_enc_map(struct mt_enc *e, int kind, uint64_t size, uint64_t addr, uint64_t prot,
		uint64_t flags);
/* A SAMPLE of the fields in mask (bits of enum mt_sample_field); needs up
 * to MT_SAMPLE_MAX bytes, more than MT_REC_MAX. */
#define MT_SAMPLE_MAX (1 + 10 + 10 * MT_S_COUNT)
void mt_enc_sample(struct mt_enc *e, uint64_t mask, const uint64_t v[MT_S_COUNT]);

/* The STREAM record that opens a segment of `len` bytes of stream
 * `stream`, written to p; returns its length, at most MT_STREAM_MAX. */
#define MT_STREAM_MAX (1 + 10 + 10)
size_t mt_enc_stream(uint8_t *p, uint64_t stream, uint64_t len);

/* One decoded record.  Fields not used by a kind are zero. */
struct mt_rec {
	int kind, dom;
	uint64_t addr, old, size;
	/* THREAD tid, TIME delta, LOST count, EPOCH and HORIZON advance,
	 * STREAM number (size: its length), ALIGNED alignment, LOC, STACK
	 * and SCRIPT frame id, MARK string id, MODULE_GONE module id; STRING, CODE, FRAME,
	 * NATIVE_FRAME and MODULE: the id they define.  NATIVE_FRAME: addr is
	 * the ip.  MODULE: addr the start, size the length, old the load bias.
	 * MMAP: prot.  SAMPLE: the mask (values: mt_dec_sample). */
	uint64_t value;
	int fn;             /* ALIGNED: enum mt_aligned_fn */
	uint64_t ref1;      /* CODE: filename string; FRAME, NATIVE_FRAME: parent;
			       MODULE: path string; MMAP, MREMAP_IN: flags */
	uint64_t ref2;      /* CODE: name string id; FRAME: code id;
			       MODULE: build-id string (0: none) */
	uint64_t line;      /* CODE: first line; FRAME: line */
	const uint8_t *bytes; /* STRING: its bytes, SAMPLE: its values (in the
				 block buffer) */
	size_t n;
};

struct mt_dec {
	const uint8_t *p, *end;
	uint64_t prev_addr;
};

void mt_dec_init(struct mt_dec *d, const uint8_t *buf, size_t len);
/* 1: a record, 0: end of block, -1: malformed.  Padding (zero bytes) is
 * skipped.  EPOCH and HORIZON give their advance in value; STREAM its
 * stream number in value and its byte length in size. */
int mt_dec_next(struct mt_dec *d, struct mt_rec *r);
/* The next segment of an event payload read by top: its stream number, and
 * seg set to its bytes (seg->prev_addr is left alone: it is the stream's).
 * 1: a segment, 0: end of the payload, -1: not a STREAM record, or a
 * length past the payload. */
int mt_dec_segment(struct mt_dec *top, uint64_t *stream, struct mt_dec *seg);
/* Whether a record kind is a definition (STRING, CODE, FRAME, MODULE,
 * MODULE_GONE, NATIVE_FRAME): stream 0's, before its first use. */
static inline int mt_rec_defines(int kind)
{
	return kind == MT_REC_STRING || kind == MT_REC_CODE || kind == MT_REC_FRAME ||
	       kind == MT_REC_MODULE || kind == MT_REC_MODULE_GONE || kind == MT_REC_NATIVE_FRAME;
}
/* The values of a SAMPLE record: v[f] for each field f the sample holds
 * (bits of *have); the others are left alone.  Fields this reader does not
 * know are skipped. */
void mt_dec_sample(const struct mt_rec *r, uint64_t v[MT_S_COUNT], uint64_t *have);

/* ---- key/value lists (header and footer) ------------------------------ */

/* Writes into buf (at least len + 10 + n bytes free); returns new length. */
size_t mt_kv_put_u64(uint8_t *buf, size_t len, uint64_t key, uint64_t v);
size_t mt_kv_put_bytes(uint8_t *buf, size_t len, uint64_t key, const void *p, size_t n);

struct mt_kv {
	uint64_t key, u64;
	const uint8_t *bytes;
	size_t n;
};
/* 1: an entry, 0: end, -1: malformed.  *pos advances. */
int mt_kv_next(const uint8_t *buf, size_t len, size_t *pos, struct mt_kv *kv);

/* ---- blocks ----------------------------------------------------------- */

/* Bound on a whole block (header plus frame) for a raw payload of len. */
size_t mt_block_bound(size_t len);
/* Compresses raw into out as one block; returns its size or 0 on error.
 * cctx is a ZSTD_CCtx*, kept by the caller to avoid reallocating it. */
size_t mt_block_encode(void *cctx, int type, const void *raw, size_t len, void *out,
		       size_t cap);

/* ---- reading a trace file --------------------------------------------- */

enum mt_read_status {
	MT_READ_OK = 0,
	MT_READ_END = 1,       /* clean end of file */
	MT_READ_TRUNCATED = 2, /* file ends inside a block: use what came before */
	MT_READ_CORRUPT = 3,
	MT_READ_FOREIGN = 4,   /* not a memtrace file */
	MT_READ_VERSION = 5,   /* another major version of the format */
	MT_READ_IO = 6,
};

struct mt_reader {
	FILE *f;
	void *dctx;
	uint8_t *zbuf, *raw;
	size_t raw_len;
	int major, minor;
	uint64_t blocks, offset;
	char error[160];
};

/* Checks the preamble.  Returns MT_READ_OK or an error with r->error set. */
int mt_reader_open(struct mt_reader *r, FILE *f);
/* Next block: *type and r->raw/r->raw_len.  Errors set r->error. */
int mt_reader_next(struct mt_reader *r, int *type);
void mt_reader_close(struct mt_reader *r);

/* Writes the 16-byte preamble to buf. */
void mt_preamble(uint8_t buf[MT_PREAMBLE_LEN]);

#endif
