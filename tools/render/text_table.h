/*
 * text_table.h - what the text outputs (the report and the diff) share:
 * figures for people (thousands separators, KiB/MiB) and aligned tables.
 */
#ifndef MEMTRACE_TEXT_TABLE_H
#define MEMTRACE_TEXT_TABLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* v with thousands separators; buf must hold 27 bytes. */
const char *grouped(uint64_t v, char *buf);
/* Bytes for people: "12.3 MiB"; buf must hold 32 bytes. */
const char *human(uint64_t v, char *buf);
/* end - start with separators and its sign; buf must hold 28 bytes. */
const char *signed_grouped(uint64_t end, uint64_t start, char *buf);
/* Bytes from a trace, with control characters escaped. */
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
/* Adds a row; the caller fills its cells; SIZE_MAX when out of memory. */
size_t table_row(struct table *t, const char *text);
void table_num(struct table *t, size_t row, int col, uint64_t v);
void table_str(struct table *t, size_t row, int col, const char *s);
/* Prints the table and empties it; table_drop empties it unprinted. */
void table_print(FILE *out, struct table *t);
void table_drop(struct table *t);

#endif
