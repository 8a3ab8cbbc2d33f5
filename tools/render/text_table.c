/*
 * text_table.c - see text_table.h.
 */
#include "text_table.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

/* v with thousands separators; buf must hold 27 bytes. */
const char *grouped(uint64_t v, char *buf)
{
	char digits[21];
	int n = snprintf(digits, sizeof digits, "%llu", (unsigned long long)v), o = 0;
	for (int i = 0; i < n; i++) {
		if (i && (n - i) % 3 == 0)
			buf[o++] = ',';
		buf[o++] = digits[i];
	}
	buf[o] = 0;
	return buf;
}

/* Header bytes come from the traced process: keep control characters off
 * the terminal. */
void put_bytes(FILE *out, const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (p[i] < 0x80 && !isprint(p[i]))
			fprintf(out, "\\x%02x", p[i]);
		else
			fputc(p[i], out);
	}
}

/* Bytes for people: "12.3 MiB"; buf must hold 32 bytes. */
const char *human(uint64_t v, char *buf)
{
	static const char *const units[] = { "B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB" };
	double d = (double)v;
	int u = 0;
	while (d >= 1024 && u < 6) {
		d /= 1024;
		u++;
	}
	if (u == 0)
		snprintf(buf, 32, "%llu B", (unsigned long long)v);
	else
		snprintf(buf, 32, "%.1f %s", d, units[u]);
	return buf;
}

/* A signed difference with separators and its sign. */
const char *signed_grouped(uint64_t end, uint64_t start, char *buf)
{
	char tmp[27];
	if (end >= start) {
		snprintf(buf, 28, "%s%s", end > start ? "+" : "", grouped(end - start, tmp));
	} else {
		snprintf(buf, 28, "-%s", grouped(start - end, tmp));
	}
	return buf;
}

void seconds(char *buf, size_t n, uint64_t us)
{
	if (us < 1000)
		snprintf(buf, n, "%llu us", (unsigned long long)us);
	else if (us < 1000000)
		snprintf(buf, n, "%.3f ms", (double)us / 1e3);
	else
		snprintf(buf, n, "%.3f s", (double)us / 1e6);
}

void table_init(struct table *t, int ncols, const char *const *head)
{
	memset(t, 0, sizeof *t);
	t->ncols = ncols;
	for (int i = 0; i < ncols; i++)
		t->head[i] = head[i];
}

/* Adds a row; the caller fills t->cells[row][0..ncols-2] and sets the text. */
size_t table_row(struct table *t, const char *text)
{
	if (t->nrows == t->cap) {
		size_t cap = t->cap ? t->cap * 2 : 16;
		void *c = realloc(t->cells, cap * sizeof *t->cells);
		if (!c)
			return SIZE_MAX;
		t->cells = c;
		void *x = realloc(t->text, cap * sizeof *t->text);
		if (!x)
			return SIZE_MAX;
		t->text = x;
		t->cap = cap;
	}
	memset(t->cells[t->nrows], 0, sizeof t->cells[0]);
	t->text[t->nrows] = strdup(text ? text : "");
	return t->nrows++;
}

void table_num(struct table *t, size_t row, int col, uint64_t v)
{
	char buf[27];
	if (row != SIZE_MAX)
		snprintf(t->cells[row][col], TCELL, "%s", grouped(v, buf));
}

void table_str(struct table *t, size_t row, int col, const char *s)
{
	if (row != SIZE_MAX)
		snprintf(t->cells[row][col], TCELL, "%s", s);
}

void table_print(FILE *out, struct table *t)
{
	int width[TCOLS];
	int last = t->ncols - 1;
	for (int c = 0; c < last; c++) {
		width[c] = (int)strlen(t->head[c]);
		for (size_t r = 0; r < t->nrows; r++) {
			int w = (int)strlen(t->cells[r][c]);
			width[c] = w > width[c] ? w : width[c];
		}
	}
	bool text = *t->head[last];
	fputs("   ", out);
	for (int c = 0; c < last; c++)
		fprintf(out, " %*s", width[c], t->head[c]);
	fprintf(out, "%s%s\n", text ? "  " : "", t->head[last]);
	for (size_t r = 0; r < t->nrows; r++) {
		fputs("   ", out);
		for (int c = 0; c < last; c++)
			fprintf(out, " %*s", width[c], t->cells[r][c]);
		if (text) {
			fputs("  ", out);
			put_bytes(out, (const uint8_t *)t->text[r], strlen(t->text[r]));
		}
		fputc('\n', out);
	}
	table_drop(t);
}

void table_drop(struct table *t)
{
	for (size_t r = 0; r < t->nrows; r++)
		free(t->text[r]);
	free(t->cells);
	free(t->text);
	memset(t, 0, sizeof *t);
}

