/*
 * html_emit.h - a small HTML emitter for the HTML report: trusted markup
 * goes out as is, everything that came from a trace (file and function
 * names, argv, labels) goes through the escaping calls, and data for the
 * page's script goes into a JSON block that cannot end the <script> early.
 * Write errors are remembered, so callers check once at the end.
 */
#ifndef MEMTRACE_HTML_EMIT_H
#define MEMTRACE_HTML_EMIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include <jansson.h>

struct he {
	FILE *f;
	bool err;
};

void he_init(struct he *e, FILE *f);

/* Markup written by this program: never pass trace strings here. */
void he_raw(struct he *e, const char *s);
void he_fmt(struct he *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Text from a trace, for element content and double-quoted attribute
 * values: & < > " ' are escaped, NUL and control characters (bar tab and
 * newline) become U+FFFD.  The bytes must be UTF-8, which jansson strings
 * always are. */
void he_text(struct he *e, const char *s, size_t n);
void he_textz(struct he *e, const char *s);
/* A JSON string value escaped as text; anything else prints fallback. */
void he_jtext(struct he *e, const json_t *s, const char *fallback);

/* v as compact JSON for a <script type="application/json"> block: < > &
 * and U+2028/U+2029 are written as \uXXXX escapes (they can only occur in
 * strings), so no "</script>" or "<!--" ends or changes the block. */
void he_json(struct he *e, const json_t *v);

/* Figures formatted for people; the result lives as long as the full
 * expression that called the function, e.g. he_textz(e, hf_bytes(n).s). */
struct hf {
	char s[48];
};
struct hf hf_bytes(double v);        /* 12.3 MiB */
struct hf hf_sbytes(double v);       /* +12.3 MiB, -4 KiB, 0 B */
struct hf hf_count(double v);        /* 1,234,567 */
struct hf hf_scount(double v);       /* +12, -3, 0 */
struct hf hf_time(double us);        /* 1.25 s, 340 ms, 12 µs */
struct hf hf_percent(double part, double whole); /* 12.5%, or "" when whole is 0 */

#endif
