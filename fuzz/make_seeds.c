/*
 * make_seeds.c - seed inputs for the fuzz targets, and the known-bad traces
 * of tests/integration/bad_traces.
 *
 *   make_seeds seeds OUTDIR [TRACE...]
 *       OUTDIR/trace/    synthetic traces (Python-like, malloc only, no
 *                        footer, exec, many blocks) and the given real
 *                        traces, cut to their first blocks
 *       OUTDIR/records/  the same as fuzz_records inputs: the blocks'
 *                        payloads, uncompressed
 *   make_seeds bad OUTDIR
 *       known-bad traces, and OUTDIR/expected.txt: each file's name and the
 *       exit status `memtrace report` must give it
 *
 * Traces are written through the real codec, as the preload library would.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <zstd.h>

#include "codec.h"
#include "tracegen.h"

/* Seeds stay small: libFuzzer mutates faster, and the interesting
 * structure is in the first blocks. */
#define SEED_MAX_BYTES (64 * 1024)
#define RECORD_BLOCKS_MAX 8
/* Of a real events block, the first segments up to this many bytes, then
 * only stream 0's (up to three times that). */
#define EVENTS_KEEP 12000
#define RECORD_CHUNK_MAX 0xffff /* the length field of fuzz_records */

static void *xmalloc(size_t n)
{
	void *p = malloc(n ? n : 1);
	if (!p) {
		perror("make_seeds");
		exit(1);
	}
	return p;
}

struct buf {
	uint8_t *p;
	size_t len, cap;
};

static void put(struct buf *b, const void *p, size_t n)
{
	if (b->len + n > b->cap) {
		b->cap = (b->len + n) * 2;
		b->p = realloc(b->p, b->cap);
		if (!b->p) {
			perror("make_seeds");
			exit(1);
		}
	}
	memcpy(b->p + b->len, p, n);
	b->len += n;
}

static void write_file(const char *dir, const char *name, const void *p, size_t n)
{
	char path[4096];
	snprintf(path, sizeof path, "%s/%s", dir, name);
	FILE *f = fopen(path, "wb");
	if (!f || fwrite(p, 1, n, f) != n || fclose(f)) {
		fprintf(stderr, "make_seeds: %s: %s\n", path, strerror(errno));
		exit(1);
	}
}

static void make_dir(const char *path)
{
	if (mkdir(path, 0755) && errno != EEXIST) {
		fprintf(stderr, "make_seeds: %s: %s\n", path, strerror(errno));
		exit(1);
	}
}

/* ---- a trace under construction ---------------------------------------- */

struct trace {
	struct buf file;    /* the trace file */
	struct buf records; /* the same as a fuzz_records input */
	ZSTD_CCtx *cctx;
	struct mt_enc enc;  /* records in the process's one order ... */
	struct tg_streams streams; /* ... written as format 2's streams */
	uint8_t kv[4096];
	size_t kv_len;
};

static void trace_init(struct trace *t)
{
	uint8_t pre[MT_PREAMBLE_LEN];
	memset(t, 0, sizeof *t);
	t->cctx = ZSTD_createCCtx();
	t->enc.buf = xmalloc(MT_BLOCK_MAX_RAW + MT_REC_MAX);
	mt_enc_reset(&t->enc);
	tg_streams_init(&t->streams);
	mt_preamble(pre);
	put(&t->file, pre, sizeof pre);
}

static void trace_free(struct trace *t)
{
	ZSTD_freeCCtx(t->cctx);
	free(t->enc.buf);
	tg_streams_free(&t->streams);
	free(t->file.p);
	free(t->records.p);
}

static void record_chunk(struct buf *rec, int type, const uint8_t *raw, size_t n)
{
	uint8_t hdr[3];
	if (n > RECORD_CHUNK_MAX)
		n = RECORD_CHUNK_MAX;
	hdr[0] = (uint8_t)(type - MT_BLOCK_HEADER);
	hdr[1] = (uint8_t)n;
	hdr[2] = (uint8_t)(n >> 8);
	put(rec, hdr, sizeof hdr);
	put(rec, raw, n);
}

static void block(struct trace *t, int type, const uint8_t *raw, size_t n)
{
	size_t cap = mt_block_bound(n);
	uint8_t *out = xmalloc(cap);
	size_t got = mt_block_encode(t->cctx, type, raw, n, out, cap);
	if (!got) {
		fprintf(stderr, "make_seeds: cannot encode a block\n");
		exit(1);
	}
	put(&t->file, out, got);
	free(out);
	record_chunk(&t->records, type, raw, n);
}

static void events_block(void *t, const uint8_t *payload, size_t len)
{
	block(t, MT_BLOCK_EVENTS, payload, len);
}

static void flush(struct trace *t)
{
	if (t->enc.len)
		tg_streams_block(&t->streams, t->enc.buf, t->enc.len, events_block, t);
	mt_enc_reset(&t->enc);
}

static void kv_u64(struct trace *t, uint64_t key, uint64_t v)
{
	t->kv_len = mt_kv_put_u64(t->kv, t->kv_len, key, v);
}

static void kv_bytes(struct trace *t, uint64_t key, const void *p, size_t n)
{
	t->kv_len = mt_kv_put_bytes(t->kv, t->kv_len, key, p, n);
}

static void kv_block(struct trace *t, int type)
{
	block(t, type, t->kv, t->kv_len);
	t->kv_len = 0;
}

static void header(struct trace *t, bool python)
{
	static const char argv[] = "python3\0lab.py\0--n\0" "1000";
	kv_u64(t, MT_H_PID, 4242);
	kv_u64(t, MT_H_PPID, 1);
	kv_u64(t, MT_H_START_NS, 1700000000000000000ull);
	kv_u64(t, MT_H_PAGE_SIZE, 4096);
	kv_bytes(t, MT_H_VERSION, "0.1.0", 5);
	kv_bytes(t, MT_H_EXE, "/usr/bin/python3.11", 19);
	kv_bytes(t, MT_H_ARGV, argv, sizeof argv - 1);
	if (python) {
		kv_u64(t, MT_H_PY_VERSION, 0x030b07f0);
		kv_u64(t, MT_H_PY_DEPTH, 4);
		kv_u64(t, MT_H_POOL_SIZE, 16384);
		kv_u64(t, MT_H_ARENA_SIZE, 1 << 20);
	}
	kv_block(t, MT_BLOCK_HEADER);
}

static void footer(struct trace *t, uint64_t events, uint64_t reason)
{
	kv_u64(t, MT_F_EVENTS, events);
	kv_u64(t, MT_F_LOST, 1);
	kv_u64(t, MT_F_WAITS, 2);
	kv_u64(t, MT_F_THREADS, 2);
	kv_u64(t, MT_F_END_US, 5000);
	kv_u64(t, MT_F_REASON, reason);
	kv_u64(t, MT_F_BLOCKS, 3);
	kv_block(t, MT_BLOCK_FOOTER);
}

/* ---- synthetic traces ---------------------------------------------------- */

#define ARENA 0x7f0000000000ull
#define POOL 16384
#define OBJECT(i) (ARENA + POOL * ((i) / 40) + 32 * ((i) % 40)) /* 40 per pool */

static void str(struct trace *t, uint64_t id, const char *s)
{
	mt_enc_string(&t->enc, id, s, strlen(s));
}

/* A Python process: code and frames, marks, an arena filled with 32-byte
 * objects and emptied again, a list buffer growing by reallocs, a moved
 * realloc split over two threads' records, and plain mallocs. */
static void python_events(struct trace *t)
{
	struct mt_enc *e = &t->enc;
	mt_enc_value(e, MT_REC_THREAD, 1);
	mt_enc_value(e, MT_REC_TIME, 10);
	str(t, 1, "lab.py");
	str(t, 2, "<module>");
	str(t, 3, "build");
	str(t, 4, "<listcomp>");
	str(t, 5, "build the list");
	str(t, 6, "free it");
	mt_enc_code(e, 1, 1, 2, 1);
	mt_enc_code(e, 2, 1, 3, 10);
	mt_enc_code(e, 3, 1, 4, 12);
	mt_enc_frame(e, 1, 0, 1, 20);
	mt_enc_frame(e, 2, 1, 2, 12);
	mt_enc_frame(e, 3, 2, 3, 12);
	mt_enc_alloc(e, MT_REC_MALLOC, MT_DOM_MALLOC, 4000, 0x5000);
	mt_enc_alloc(e, MT_REC_MALLOC, MT_DOM_PYRAW, 4000, 0x5000);
	mt_enc_value(e, MT_REC_MARK, 5);
	uint64_t sample[MT_S_COUNT] = {4 << 20, 8 << 20, 0, 0x10000 + (1 << 20), 1 << 19,
				       1 << 20, 0, 1 << 19, 1 << 19, 4096, 1 << 21, 1 << 20};
	mt_enc_sample(e, (1u << MT_S_COUNT) - 1, sample);
	/* a mapping cut in two, moved by mremap, and a file mapping */
	mt_enc_map(e, MT_REC_MMAP, 10 << 12, 0x40000000, 3, 0x22);
	mt_enc_alloc(e, MT_REC_MUNMAP, 0, 2 << 12, 0x40004000);
	mt_enc_alloc(e, MT_REC_MREMAP_OUT, 0, 4 << 12, 0x40000000);
	mt_enc_map(e, MT_REC_MREMAP_IN, 8 << 12, 0x50000000, 0, 1);
	mt_enc_map(e, MT_REC_MMAP, 100, 0x60000000, 1, 0x2);
	mt_enc_value(e, MT_REC_LOC, 3);
	mt_enc_alloc(e, MT_REC_ARENA_ALLOC, MT_DOM_PYOBJ, 1 << 20, ARENA);
	mt_enc_alloc(e, MT_REC_ARENA_ALLOC, MT_DOM_PYOBJ, 16384, 0x9000000);
	for (uint64_t i = 0; i < 120; i++) {
		mt_enc_alloc(e, MT_REC_MALLOC, MT_DOM_PYOBJ, 28, OBJECT(i));
		if (i % 30 == 0)
			mt_enc_value(e, MT_REC_TIME, 7);
	}
	/* the list: NULL -> 4 -> 8 -> 16 -> 24 -> 32 slots, moving twice */
	mt_enc_realloc(e, MT_DOM_PYMEM, 0, 32, 0x6000);
	mt_enc_realloc(e, MT_DOM_PYMEM, 0x6000, 64, 0x6000);
	mt_enc_addr_only(e, MT_REC_REALLOC_OUT, MT_DOM_PYMEM, 0x6000);
	mt_enc_alloc(e, MT_REC_REALLOC_IN, MT_DOM_PYMEM, 128, 0x7000);
	mt_enc_realloc(e, MT_DOM_PYMEM, 0x7000, 192, 0x7000);
	mt_enc_addr_only(e, MT_REC_REALLOC_OUT, MT_DOM_PYMEM, 0x7000);
	mt_enc_value(e, MT_REC_THREAD, 2); /* another thread in between */
	mt_enc_alloc(e, MT_REC_MALLOC, MT_DOM_MALLOC, 64, 0x7000);
	mt_enc_value(e, MT_REC_LOST, 1);
	mt_enc_value(e, MT_REC_THREAD, 1);
	mt_enc_alloc(e, MT_REC_REALLOC_IN, MT_DOM_PYMEM, 256, 0x8000);
	mt_enc_value(e, MT_REC_TIME, 100);
	/* temporaries */
	for (uint64_t i = 0; i < 5; i++) {
		mt_enc_alloc(e, MT_REC_MALLOC, MT_DOM_PYMEM, 100, 0xa000);
		mt_enc_addr_only(e, MT_REC_FREE, MT_DOM_PYMEM, 0xa000);
	}
	flush(t);
	mt_enc_value(e, MT_REC_THREAD, 1);
	mt_enc_value(e, MT_REC_MARK, 6);
	mt_enc_value(e, MT_REC_LOC, 1);
	for (uint64_t i = 0; i < 119; i++)
		mt_enc_addr_only(e, MT_REC_FREE, MT_DOM_PYOBJ, OBJECT(i));
	mt_enc_addr_only(e, MT_REC_FREE, MT_DOM_PYMEM, 0x8000);
	mt_enc_alloc(e, MT_REC_ARENA_FREE, MT_DOM_PYOBJ, 16384, 0x9000000);
	mt_enc_aligned(e, MT_DOM_MALLOC, MT_FN_POSIX_MEMALIGN, 64, 1000, 0xb000);
	mt_enc_alloc(e, MT_REC_CALLOC, MT_DOM_MALLOC, 10, 0);
	mt_enc_addr_only(e, MT_REC_FREE, MT_DOM_MALLOC, 0xdead0);
	mt_enc_value(e, MT_REC_TIME, 4000);
	flush(t);
}

static void malloc_events(struct trace *t)
{
	struct mt_enc *e = &t->enc;
	for (uint64_t tid = 1; tid <= 2; tid++) {
		mt_enc_value(e, MT_REC_THREAD, tid);
		mt_enc_value(e, MT_REC_TIME, 5);
		mt_enc_alloc(e, MT_REC_MALLOC, 0, 100, 0x1000 * tid);
		mt_enc_alloc(e, MT_REC_CALLOC, 0, 200, 0x1100 * tid);
		mt_enc_aligned(e, 0, MT_FN_ALIGNED_ALLOC, 4096, 8192, 0x10000 * tid);
		mt_enc_aligned(e, 0, MT_FN_PVALLOC, 4096, 1, 0x20000 * tid);
		mt_enc_realloc(e, 0, 0x1000 * tid, 300, 0x1000 * tid);
		mt_enc_realloc(e, 0, 0x1100 * tid, 0, 0);
		mt_enc_realloc(e, 0, 0x1000 * tid, 1u << 30, 0);
		mt_enc_alloc(e, MT_REC_MALLOC, 0, 1ull << 40, 0);
		mt_enc_addr_only(e, MT_REC_FREE, 0, 0x10000 * tid);
		mt_enc_addr_only(e, MT_REC_FREE, 0, 0x99999);
		mt_enc_alloc(e, MT_REC_MALLOC, 0, 40, 0x20000 * tid);
	}
	flush(t);
}

static void seed(const char *dir, const char *name, struct trace *t)
{
	char path[4096];
	snprintf(path, sizeof path, "%s/trace", dir);
	write_file(path, name, t->file.p, t->file.len);
	snprintf(path, sizeof path, "%s/records", dir);
	write_file(path, name, t->records.p, t->records.len);
}

static void synthetic(const char *dir)
{
	struct trace t;

	trace_init(&t);
	header(&t, true);
	python_events(&t);
	footer(&t, 400, MT_END_EXIT);
	seed(dir, "python.trace", &t);
	trace_free(&t);

	trace_init(&t);
	header(&t, true);
	python_events(&t);
	seed(dir, "python_no_footer.trace", &t);
	trace_free(&t);

	trace_init(&t);
	header(&t, false);
	malloc_events(&t);
	footer(&t, 22, MT_END_EXEC);
	malloc_events(&t);
	footer(&t, 44, MT_END__EXIT);
	seed(dir, "malloc_exec.trace", &t);
	trace_free(&t);

	trace_init(&t);
	header(&t, false);
	for (int i = 0; i < 6; i++) {
		mt_enc_value(&t.enc, MT_REC_THREAD, 1);
		mt_enc_alloc(&t.enc, MT_REC_MALLOC, 0, 10 + i, 0x100 + 16 * i);
		flush(&t);
	}
	footer(&t, 6, MT_END_EXIT);
	seed(dir, "many_blocks.trace", &t);
	trace_free(&t);
}

/* Whole segments of an events block: the first EVENTS_KEEP bytes of
 * them, then stream 0's (definitions, times, horizons) up to three times
 * that.  A stream's addresses are relative to its previous one, so a
 * stream's segments are kept from its first on or not at all. */
static void select_segments(struct buf *out, const uint8_t *raw, size_t len)
{
	struct mt_dec top, seg;
	uint64_t stream;
	bool all = true;
	mt_dec_init(&top, raw, len);
	for (const uint8_t *start = top.p; mt_dec_segment(&top, &stream, &seg) == 1; start = top.p) {
		size_t n = (size_t)(top.p - start);
		all = all && out->len + n <= EVENTS_KEEP;
		if (all || (!stream && out->len + n <= 3 * EVENTS_KEEP))
			put(out, start, n);
	}
}

/* A real trace as seeds: its first blocks (whole, so the cut trace reads
 * like a killed process's) and its last block, the footer. */
static void real(const char *dir, const char *path, int index)
{
	FILE *f = fopen(path, "rb");
	struct mt_reader rd;
	struct trace t;
	int type;
	char name[64];
	if (!f) {
		fprintf(stderr, "make_seeds: %s: %s\n", path, strerror(errno));
		exit(1);
	}
	trace_init(&t);
	if (mt_reader_open(&rd, f) != MT_READ_OK) {
		fprintf(stderr, "make_seeds: %s: %s\n", path, rd.error);
		exit(1);
	}
	size_t blocks = 0;
	uint8_t *last = NULL;
	size_t last_len = 0;
	int last_type = 0;
	while (mt_reader_next(&rd, &type) == MT_READ_OK) {
		if (blocks < RECORD_BLOCKS_MAX && t.file.len < SEED_MAX_BYTES) {
			if (type == MT_BLOCK_EVENTS) {
				struct buf kept = { 0 };
				select_segments(&kept, rd.raw, rd.raw_len);
				block(&t, type, kept.p, kept.len);
				free(kept.p);
			} else {
				size_t n = rd.raw_len < RECORD_CHUNK_MAX ? rd.raw_len : RECORD_CHUNK_MAX;
				block(&t, type, rd.raw, n);
			}
			blocks++;
		}
		free(last);
		last = xmalloc(rd.raw_len);
		memcpy(last, rd.raw, rd.raw_len);
		last_len = rd.raw_len;
		last_type = type;
	}
	if (last && last_type == MT_BLOCK_FOOTER)
		block(&t, last_type, last, last_len);
	free(last);
	mt_reader_close(&rd);
	fclose(f);
	snprintf(name, sizeof name, "real%d.trace", index);
	seed(dir, name, &t);
	trace_free(&t);
}

/* ---- known-bad traces ------------------------------------------------------ */

struct expect {
	FILE *f;
	const char *dir;
};

static void bad(struct expect *x, const char *name, const void *p, size_t n, int status)
{
	write_file(x->dir, name, p, n);
	fprintf(x->f, "%s %d\n", name, status);
}

static void bad_traces(const char *dir)
{
	char path[4096];
	struct expect x = { NULL, dir };
	struct trace t;
	snprintf(path, sizeof path, "%s/expected.txt", dir);
	x.f = fopen(path, "w");
	if (!x.f) {
		fprintf(stderr, "make_seeds: %s: %s\n", path, strerror(errno));
		exit(1);
	}
	fprintf(x.f, "# file, and the exit status of `memtrace report` on it "
		     "(0 ok, 2 not a readable trace, 3 torn); written by fuzz/make_seeds\n");

	/* a good trace to damage: header, two event blocks, footer */
	trace_init(&t);
	header(&t, true);
	python_events(&t);
	footer(&t, 400, MT_END_EXIT);
	const uint8_t *g = t.file.p;
	size_t glen = t.file.len;
	/* where the blocks start */
	size_t at[8], nb = 0;
	for (size_t off = MT_PREAMBLE_LEN; off + MT_BLOCK_HEADER_LEN <= glen && nb < 8;) {
		at[nb++] = off;
		off += MT_BLOCK_HEADER_LEN + (g[off + 8] | g[off + 9] << 8 | (size_t)g[off + 10] << 16 |
					      (size_t)g[off + 11] << 24);
	}
	uint8_t *d = xmalloc(glen + 64);

	bad(&x, "empty.trace", "", 0, 2);
	bad(&x, "foreign_elf.trace", "\x7f" "ELF\x02\x01\x01\0\0\0\0\0\0\0\0\0\x03\0>\0", 20, 2);
	bad(&x, "foreign_text.trace", "MEMTRACX is not a trace\n", 24, 2);
	bad(&x, "short_preamble.trace", g, 10, 2);
	bad(&x, "preamble_only.trace", g, MT_PREAMBLE_LEN, 0);
	memcpy(d, g, glen);
	d[8] = MT_FORMAT_MAJOR + 1;
	bad(&x, "future_version.trace", d, glen, 2);
	memcpy(d, g, glen);
	d[8] = 1; /* format 1.1, no longer read */
	d[10] = 1;
	bad(&x, "format1_version.trace", d, glen, 2);
	bad(&x, "cut_in_header_block.trace", g, at[0] + 20, 3);
	bad(&x, "cut_in_block_header.trace", g, at[2] + 5, 3);
	bad(&x, "cut_in_events_block.trace", g, at[2] + 30, 3);
	bad(&x, "cut_at_block_boundary.trace", g, at[2], 0);
	memcpy(d, g, glen);
	d[at[1]] ^= 0xff;
	bad(&x, "bad_block_magic.trace", d, glen, 2);
	memcpy(d, g, glen);
	d[at[1] + 4] = 9;
	bad(&x, "unknown_block_type.trace", d, glen, 2);
	memcpy(d, g, glen);
	d[at[1] + 11] = 0x7f; /* length far beyond the bound */
	bad(&x, "huge_block_length.trace", d, glen, 2);
	memcpy(d, g, glen);
	d[at[1] + MT_BLOCK_HEADER_LEN + 20] ^= 0x55;
	bad(&x, "bad_checksum.trace", d, glen, 2);
	trace_free(&t);

	/* well-formed blocks with malformed payloads: records in a stream
	 * (stream number, then its bytes), or the payload as it is (stream
	 * NONE) */
	enum { NONE = 99 };
	static const uint8_t bad_record[] = { MT_TAG(MT_REC_THREAD, 0), 1, 31, 0, 0 };
	static const uint8_t cut_record[] = { MT_TAG(MT_REC_THREAD, 0), 1,
					      MT_TAG(MT_REC_MALLOC, 0), 0x80 };
	static const uint8_t bad_domain[] = { MT_TAG(MT_REC_THREAD, 0), 1, MT_TAG(MT_REC_MARK, 2), 1 };
	static const uint8_t long_string[] = { MT_TAG(MT_REC_STRING, 0), 1, 0xff, 0x7f, 'x' };
	static const uint8_t bad_kv[] = { 2, 0x80 };
	static const uint8_t bad_kv_len[] = { 13, 0x7f, 'x' };
	static const uint8_t pairs[] = {
		/* IN without OUT, OUT twice, a frame whose parent is itself, a
		 * LOC, a MARK, a STACK and a SCRIPT naming things never
		 * defined */
		MT_TAG(MT_REC_THREAD, 0), 1,
		MT_TAG(MT_REC_REALLOC_IN, 2), 64, 0x80, 0x20,
		MT_TAG(MT_REC_REALLOC_OUT, 2), 0x80, 0x20,
		MT_TAG(MT_REC_REALLOC_OUT, 2), 0x02,
		MT_TAG(MT_REC_FRAME, 0), 7, 7, 9, 3,
		MT_TAG(MT_REC_LOC, 0), 7,
		MT_TAG(MT_REC_LOC, 0), 99,
		MT_TAG(MT_REC_MARK, 0), 42,
		MT_TAG(MT_REC_STACK, 0), 5,
		MT_TAG(MT_REC_SCRIPT, 0), 6,
		MT_TAG(MT_REC_MALLOC, 3), 16, 0x10,
		MT_TAG(MT_REC_ARENA_FREE, 3), 0x80, 0x80, 0x40, 0x10,
	};
	/* format 1's flat records, with no STREAM */
	static const uint8_t flat[] = { MT_TAG(MT_REC_THREAD, 0), 1, MT_TAG(MT_REC_MALLOC, 0), 16,
					0x10 };
	/* a STREAM longer than its block */
	static const uint8_t long_stream[] = { MT_TAG(MT_REC_STREAM, 0), 1, 50,
					       MT_TAG(MT_REC_THREAD, 0), 1 };
	static const uint8_t no_thread[] = { MT_TAG(MT_REC_MALLOC, 0), 16, 0x10 };
	static const uint8_t event_in_0[] = { MT_TAG(MT_REC_MALLOC, 0), 16, 0x10 };
	static const uint8_t horizon_in_thread[] = { MT_TAG(MT_REC_THREAD, 0), 1,
						     MT_TAG(MT_REC_HORIZON, 0), 1 };
	/* an advance past the largest epoch */
	static const uint8_t epoch_wraps[] = {
		MT_TAG(MT_REC_THREAD, 0), 1, MT_TAG(MT_REC_EPOCH, 0), 5,
		MT_TAG(MT_REC_EPOCH, 0), 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01,
		MT_TAG(MT_REC_MALLOC, 0), 16, 0x10,
	};
	/* records of epoch 3 after a HORIZON of 10 settled the epochs below */
	static const uint8_t epoch_back[] = {
		MT_TAG(MT_REC_STREAM, 0), 0, 2, MT_TAG(MT_REC_HORIZON, 0), 10,
		MT_TAG(MT_REC_STREAM, 0), 1, 7, MT_TAG(MT_REC_THREAD, 0), 1,
		MT_TAG(MT_REC_EPOCH, 0), 3, MT_TAG(MT_REC_MALLOC, 0), 16, 0x10,
	};
	/* padding (zero bytes) between segments and between records */
	static const uint8_t padded[] = {
		0, 0, MT_TAG(MT_REC_STREAM, 0), 1, 9, MT_TAG(MT_REC_THREAD, 0), 1, 0, 0,
		MT_TAG(MT_REC_MALLOC, 0), 16, 0x10, 0, 0, 0, 0, 0,
	};
	struct {
		const char *name;
		int type;
		uint64_t stream;
		const uint8_t *p;
		size_t n;
		int status;
	} payloads[] = {
		{ "malformed_record.trace", MT_BLOCK_EVENTS, 1, bad_record, sizeof bad_record, 2 },
		{ "cut_record.trace", MT_BLOCK_EVENTS, 1, cut_record, sizeof cut_record, 2 },
		{ "bad_record_domain.trace", MT_BLOCK_EVENTS, 1, bad_domain, sizeof bad_domain, 2 },
		{ "string_past_block.trace", MT_BLOCK_EVENTS, 0, long_string, sizeof long_string, 2 },
		{ "malformed_footer.trace", MT_BLOCK_FOOTER, NONE, bad_kv, sizeof bad_kv, 2 },
		{ "malformed_header.trace", MT_BLOCK_HEADER, NONE, bad_kv_len, sizeof bad_kv_len, 2 },
		{ "inconsistent_records.trace", MT_BLOCK_EVENTS, 1, pairs, sizeof pairs, 0 },
		{ "no_stream_record.trace", MT_BLOCK_EVENTS, NONE, flat, sizeof flat, 2 },
		{ "bad_stream_length.trace", MT_BLOCK_EVENTS, NONE, long_stream, sizeof long_stream,
		  2 },
		{ "stream_without_thread.trace", MT_BLOCK_EVENTS, 1, no_thread, sizeof no_thread, 2 },
		{ "event_in_stream0.trace", MT_BLOCK_EVENTS, 0, event_in_0, sizeof event_in_0, 2 },
		{ "horizon_in_thread_stream.trace", MT_BLOCK_EVENTS, 1, horizon_in_thread,
		  sizeof horizon_in_thread, 2 },
		{ "epoch_wraps.trace", MT_BLOCK_EVENTS, 1, epoch_wraps, sizeof epoch_wraps, 2 },
		{ "epoch_backwards.trace", MT_BLOCK_EVENTS, NONE, epoch_back, sizeof epoch_back, 2 },
		{ "padding.trace", MT_BLOCK_EVENTS, NONE, padded, sizeof padded, 0 },
	};
	for (size_t i = 0; i < sizeof payloads / sizeof *payloads; i++) {
		uint8_t seg[256];
		const uint8_t *p = payloads[i].p;
		size_t n = payloads[i].n;
		if (payloads[i].stream != NONE) {
			n = tg_segment(seg, 0, payloads[i].stream, p, n);
			p = seg;
		}
		trace_init(&t);
		if (payloads[i].type != MT_BLOCK_HEADER)
			header(&t, true);
		block(&t, payloads[i].type, p, n);
		bad(&x, payloads[i].name, t.file.p, t.file.len, payloads[i].status);
		trace_free(&t);
	}

	/* empty event and footer blocks (found by fuzz_records: the report
	 * builder passed NULL + 0 on to the decoder) */
	trace_init(&t);
	header(&t, true);
	block(&t, MT_BLOCK_EVENTS, (const uint8_t *)"", 0);
	block(&t, MT_BLOCK_FOOTER, (const uint8_t *)"", 0);
	bad(&x, "empty_blocks.trace", t.file.p, t.file.len, 0);
	trace_free(&t);

	/* a Python version whose release level is none of alpha, beta,
	 * candidate, final (found by fuzz_records: an index past the table of
	 * level letters) */
	trace_init(&t);
	kv_u64(&t, MT_H_PID, 7);
	kv_u64(&t, MT_H_PY_VERSION, 0x030c00e1);
	kv_u64(&t, MT_H_POOL_SIZE, 16384);
	kv_block(&t, MT_BLOCK_HEADER);
	footer(&t, 0, MT_END_EXIT);
	bad(&x, "odd_python_version.trace", t.file.p, t.file.len, 0);
	trace_free(&t);

	/* events before any header, and a footer alone */
	trace_init(&t);
	malloc_events(&t);
	footer(&t, 22, 7);
	bad(&x, "no_header.trace", t.file.p, t.file.len, 0);
	trace_free(&t);

	free(d);
	if (fclose(x.f)) {
		perror("make_seeds");
		exit(1);
	}
}

int main(int argc, char **argv)
{
	if (argc >= 3 && !strcmp(argv[1], "seeds")) {
		char path[4096];
		make_dir(argv[2]);
		snprintf(path, sizeof path, "%s/trace", argv[2]);
		make_dir(path);
		snprintf(path, sizeof path, "%s/records", argv[2]);
		make_dir(path);
		synthetic(argv[2]);
		for (int i = 3; i < argc; i++)
			real(argv[2], argv[i], i - 3);
		return 0;
	}
	if (argc == 3 && !strcmp(argv[1], "bad")) {
		make_dir(argv[2]);
		bad_traces(argv[2]);
		return 0;
	}
	fprintf(stderr, "usage: make_seeds seeds OUTDIR [TRACE...]\n"
			"       make_seeds bad OUTDIR\n");
	return 1;
}
