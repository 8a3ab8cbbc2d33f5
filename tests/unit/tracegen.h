/*
 * tracegen.h - builds trace files in memory for the unit tests, through the
 * real codec: blocks as the preload library would write them, plus ways to
 * damage them.
 */
#ifndef MEMTRACE_TRACEGEN_H
#define MEMTRACE_TRACEGEN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "codec.h"

/* A stream of the trace (format 2): 0 is the process's, the others one
 * thread's each. */
struct tg_stream {
	uint64_t tid;
	uint64_t announced; /* the epoch its last EPOCH said */
	uint64_t prev_addr; /* its encoder's address state */
	bool opened;        /* its THREAD is written */
};

struct tg {
	uint8_t *data; /* the trace file so far */
	size_t len, cap;
	size_t *ends; /* offset just past each block */
	size_t nblocks;
	void *cctx;
	/* The events of the next block in the one order of the process, THREAD
	 * records saying whose the next ones are, as format 1 had them:
	 * tg_flush writes them as format 2's streams, each run of one
	 * stream's records in an epoch of its own, so that the trace's order
	 * is exactly this one. */
	struct mt_enc enc;
	uint8_t kv[4096];  /* the header or footer being filled */
	size_t kv_len;
	struct tg_stream *streams;
	size_t nstreams, cur; /* cur: the stream THREAD records chose */
	uint64_t epoch, horizon;
	struct mt_enc run;    /* a run of one stream's records */
	size_t run_stream;
	uint8_t *payload;     /* the segments of the block being made */
	size_t payload_len;
};

/* Starts a trace with its preamble. */
void tg_init(struct tg *t);
void tg_free(struct tg *t);

/* Appends one block of any type and raw payload. */
void tg_block(struct tg *t, int type, const void *raw, size_t len);
/* Appends t->enc as an event block (if it holds records) and empties it:
 * its records go to their streams (definitions, TIME and LOST to stream
 * 0, the rest to the stream of the last THREAD), and a HORIZON at the
 * block's end settles them. */
void tg_flush(struct tg *t);
/* Encodes a decoded record (a SAMPLE keeps the fields this codec knows). */
void tg_put(struct mt_enc *e, const struct mt_rec *r);
/* Appends a segment of stream number to buf (at least len + 21 + n bytes
 * free); returns the new length. */
size_t tg_segment(uint8_t *buf, size_t len, uint64_t stream, const void *p, size_t n);
/* Appends t->kv as a block of the given type and empties it. */
void tg_kv_block(struct tg *t, int type);

/* Shorthands for records into t->enc. */
void tg_thread(struct tg *t, uint64_t tid);
void tg_malloc(struct tg *t, int dom, uint64_t size, uint64_t addr);
void tg_free_rec(struct tg *t, int dom, uint64_t addr);
void tg_realloc(struct tg *t, int dom, uint64_t old, uint64_t size, uint64_t addr);
/* A record of one value (LOC, MARK, TIME, SCRIPT, ...); a STRING. */
void tg_value(struct tg *t, int kind, uint64_t value);
void tg_string(struct tg *t, uint64_t id, const char *s);

/* A header payload with the given pid and a fixed set of other keys, into
 * buf (4096 bytes); returns its length. */
size_t tg_header_kv(uint8_t *buf, uint64_t pid);
/* Appends a header block made by tg_header_kv; a footer block. */
void tg_header(struct tg *t, uint64_t pid);
void tg_footer(struct tg *t, uint64_t lost, uint64_t waits, uint64_t reason);
/* A trace of a CPython 3.11 process (16 KiB pools in 1 MiB arenas, Python
 * frames py_depth deep) with pid, its events starting in thread 1. */
void tg_py_header(struct tg *t, uint64_t pid, uint64_t py_depth);
/* The trace with its pending events and a footer, as a rewound temporary
 * file; t is freed. */
FILE *tg_finish(struct tg *t);

/* A rewound temporary file holding bytes. */
FILE *tg_file(const uint8_t *bytes, size_t len);

#endif
