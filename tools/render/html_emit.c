/*
 * html_emit.c - escaping writers and number formatting for the HTML report
 * (see html_emit.h).
 */
#include "html_emit.h"

#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <string.h>

void he_init(struct he *e, FILE *f)
{
	e->f = f;
	e->err = false;
}

static void put(struct he *e, const char *s, size_t n)
{
	if (n && fwrite(s, 1, n, e->f) != n)
		e->err = true;
}

void he_raw(struct he *e, const char *s)
{
	put(e, s, strlen(s));
}

void he_fmt(struct he *e, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	if (vfprintf(e->f, fmt, ap) < 0)
		e->err = true;
	va_end(ap);
}

static const char replacement[] = "\xef\xbf\xbd"; /* U+FFFD */

/* Length of the valid UTF-8 sequence at s (at most n bytes), 0 if invalid. */
static size_t utf8_len(const unsigned char *s, size_t n)
{
	size_t len;
	if (s[0] < 0x80)
		return 1;
	if (s[0] >= 0xc2 && s[0] <= 0xdf)
		len = 2;
	else if (s[0] >= 0xe0 && s[0] <= 0xef)
		len = 3;
	else if (s[0] >= 0xf0 && s[0] <= 0xf4)
		len = 4;
	else
		return 0;
	if (len > n)
		return 0;
	for (size_t i = 1; i < len; i++)
		if ((s[i] & 0xc0) != 0x80)
			return 0;
	/* overlong forms, surrogates and code points past U+10FFFF */
	if ((s[0] == 0xe0 && s[1] < 0xa0) || (s[0] == 0xed && s[1] >= 0xa0) ||
	    (s[0] == 0xf0 && s[1] < 0x90) || (s[0] == 0xf4 && s[1] >= 0x90))
		return 0;
	return len;
}

void he_text(struct he *e, const char *s, size_t n)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t run = 0; /* bytes before p[i] that need no escaping */
	for (size_t i = 0; i < n;) {
		const char *esc = NULL;
		size_t len = utf8_len(p + i, n - i);
		switch (len ? p[i] : 0) {
		case '&':
			esc = "&amp;";
			break;
		case '<':
			esc = "&lt;";
			break;
		case '>':
			esc = "&gt;";
			break;
		case '"':
			esc = "&quot;";
			break;
		case '\'':
			esc = "&#39;";
			break;
		case '\t':
		case '\n':
			break;
		default:
			/* invalid bytes, C0 controls, DEL and C1 controls */
			if (!len || p[i] < 0x20 || p[i] == 0x7f || (p[i] == 0xc2 && p[i + 1] < 0xa0))
				esc = replacement;
		}
		if (!len)
			len = 1;
		if (esc) {
			put(e, (const char *)p + i - run, run);
			he_raw(e, esc);
			run = 0;
		} else {
			run += len;
		}
		i += len;
	}
	put(e, (const char *)p + n - run, run);
}

void he_textz(struct he *e, const char *s)
{
	he_text(e, s, strlen(s));
}

void he_jtext(struct he *e, const json_t *s, const char *fallback)
{
	if (json_is_string(s))
		he_text(e, json_string_value(s), json_string_length(s));
	else
		he_textz(e, fallback);
}

/* Called by json_dump_callback with pieces of the JSON text. */
static int json_piece(const char *buf, size_t n, void *data)
{
	struct he *e = data;
	const unsigned char *p = (const unsigned char *)buf;
	size_t run = 0;
	for (size_t i = 0; i < n; i++) {
		const char *esc = NULL;
		size_t skip = 1;
		if (p[i] == '<')
			esc = "\\u003c";
		else if (p[i] == '>')
			esc = "\\u003e";
		else if (p[i] == '&')
			esc = "\\u0026";
		else if (p[i] == 0xe2 && i + 2 < n && p[i + 1] == 0x80 &&
			 (p[i + 2] == 0xa8 || p[i + 2] == 0xa9)) {
			esc = p[i + 2] == 0xa8 ? "\\u2028" : "\\u2029";
			skip = 3;
		}
		if (esc) {
			put(e, (const char *)p + i - run, run);
			he_raw(e, esc);
			run = 0;
			i += skip - 1;
		} else {
			run++;
		}
	}
	put(e, (const char *)p + n - run, run);
	return e->err ? -1 : 0;
}

void he_json(struct he *e, const json_t *v)
{
	/* jansson splits strings only between characters, so a multi-byte
	 * character never straddles two pieces. */
	if (json_dump_callback(v, json_piece, e, JSON_COMPACT | JSON_ENCODE_ANY))
		e->err = true;
}

/* ---- figures ------------------------------------------------------------ */

/* Beyond this, figures are printed in exponent form: only a hostile report
 * gets there, and %.0f of a double could need 300 digits. */
#define HUGE_FIGURE 1e18

static struct hf grouped(double v)
{
	struct hf r;
	char digits[32];
	if (!isfinite(v) || fabs(v) >= HUGE_FIGURE) {
		snprintf(r.s, sizeof r.s, "%.3g", v);
		return r;
	}
	int n = snprintf(digits, sizeof digits, "%.0f", fabs(v)), o = 0;
	if (v <= -0.5)
		r.s[o++] = '-';
	for (int i = 0; i < n; i++) {
		if (i && (n - i) % 3 == 0)
			r.s[o++] = ',';
		r.s[o++] = digits[i];
	}
	r.s[o] = 0;
	return r;
}

struct hf hf_count(double v)
{
	return grouped(v);
}

/* f with a '+' in front when v is positive. */
static struct hf plus(struct hf f, double v)
{
	struct hf r = f;
	if (v >= 0.5) {
		r.s[0] = '+';
		memcpy(r.s + 1, f.s, sizeof r.s - 1);
		r.s[sizeof r.s - 1] = 0;
	}
	return r;
}

struct hf hf_scount(double v)
{
	return plus(grouped(v), v);
}

struct hf hf_bytes(double v)
{
	static const char *const units[] = { "B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB" };
	struct hf r;
	double a = fabs(v);
	size_t u = 0;
	if (!isfinite(v) || a >= HUGE_FIGURE * 10) {
		snprintf(r.s, sizeof r.s, "%.3g B", v);
		return r;
	}
	while (a >= 1024 && u + 1 < sizeof units / sizeof *units) {
		a /= 1024;
		v /= 1024;
		u++;
	}
	if (u == 0)
		snprintf(r.s, sizeof r.s, "%.0f B", v);
	else
		snprintf(r.s, sizeof r.s, a < 9.995 ? "%.2f %s" : a < 99.95 ? "%.1f %s" : "%.0f %s",
			 v, units[u]);
	return r;
}

struct hf hf_sbytes(double v)
{
	return plus(hf_bytes(v), v);
}

struct hf hf_time(double us)
{
	struct hf r;
	double a = fabs(us);
	if (!isfinite(us) || a >= HUGE_FIGURE)
		snprintf(r.s, sizeof r.s, "%.3g µs", us);
	else if (a < 1000)
		snprintf(r.s, sizeof r.s, "%.0f µs", us);
	else if (a < 1e6)
		snprintf(r.s, sizeof r.s, a < 9995 ? "%.2f ms" : a < 99950 ? "%.1f ms" : "%.0f ms",
			 us / 1e3);
	else if (a < 60e6)
		snprintf(r.s, sizeof r.s, a < 9.995e6 ? "%.2f s" : "%.1f s", us / 1e6);
	else
		snprintf(r.s, sizeof r.s, "%.0f min %02.0f s", floor(a / 60e6),
			 floor(fmod(a, 60e6) / 1e6));
	return r;
}

struct hf hf_percent(double part, double whole)
{
	struct hf r;
	double p = whole > 0 ? 100 * part / whole : NAN;
	if (!isfinite(p))
		r.s[0] = 0;
	else
		snprintf(r.s, sizeof r.s,
			 fabs(p) < 9.995 ? "%.2f%%" : fabs(p) < 99.95 ? "%.1f%%" : "%.0f%%", p);
	return r;
}
