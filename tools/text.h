/*
 * text.h - what the text reports are made of (output_text.c): numbers with
 * thousands separators, header bytes made safe for a terminal, and aligned
 * tables.
 */
#ifndef MEMTRACE_TEXT_H
#define MEMTRACE_TEXT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* v with thousands separators; buf must hold 27 bytes. */
const char *grouped(uint64_t v, char *buf);
/* Bytes from a traced process, control characters escaped. */
void put_bytes(FILE *out, const uint8_t *p, size_t n);
/* A time since the start, in the unit that suits it. */
void seconds(char *buf, size_t n, uint64_t us);

/* A table: right-aligned number columns, then a left-aligned text column
 * (sites, labels: their length varies).  Cells are copied in. */
#define TCOLS 12
#define TCELL 40

struct table {
	int ncols;
	const char *head[TCOLS];
	bool left[TCOLS];
	char (*cells)[TCOLS][TCELL];
	char **text; /* the last column, any length */
	size_t nrows, cap;
};

void table_init(struct table *t, int ncols, const char *const *head);
/* Adds a row; the caller fills cells 0..ncols-2; SIZE_MAX without memory. */
size_t table_row(struct table *t, const char *text);
void table_num(struct table *t, size_t row, int col, uint64_t v);
void table_str(struct table *t, size_t row, int col, const char *s);
/* Prints the table and empties it. */
void table_print(FILE *out, struct table *t);

#endif
