/*
 * tracegen.h - builds trace files in memory for the unit tests, through the
 * real codec: blocks as the preload library would write them, plus ways to
 * damage them.
 */
#ifndef MEMTRACE_TRACEGEN_H
#define MEMTRACE_TRACEGEN_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "codec.h"

struct tg {
	uint8_t *data; /* the trace file so far */
	size_t len, cap;
	size_t *ends; /* offset just past each block */
	size_t nblocks;
	void *cctx;
	struct mt_enc enc; /* the event block being filled */
	uint8_t kv[4096];  /* the header or footer being filled */
	size_t kv_len;
};

/* Starts a trace with its preamble. */
void tg_init(struct tg *t);
void tg_free(struct tg *t);

/* Appends one block of any type and raw payload. */
void tg_block(struct tg *t, int type, const void *raw, size_t len);
/* Appends t->enc as an event block (if it holds records) and empties it. */
void tg_flush(struct tg *t);
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
