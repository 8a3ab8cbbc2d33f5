/*
 * output_html.c - the HTML report: one self-contained page made of the
 * JSON report object (docs/report-schema.md, with its "profile") and the
 * script and stylesheet that draw it in the browser (tools/html/, embedded
 * at build time by tools/html/embed.cmake).  Nothing is drawn here: the
 * page shows what the JSON holds, and nothing more.
 *
 * The JSON goes into a <script type="application/json"> block with < > &
 * and U+2028/U+2029 written as \uXXXX escapes (they can only occur inside
 * strings), so no string from the trace can end the block or become
 * markup; the script puts strings into the page with textContent only.
 */
#include "render.h"

#include <stdbool.h>
#include <string.h>

#include "html_assets.h"

struct sink {
	FILE *f;
	bool err;
};

static void put(struct sink *s, const char *p, size_t n)
{
	if (n && fwrite(p, 1, n, s->f) != n)
		s->err = true;
}

static void puts_(struct sink *s, const char *p)
{
	put(s, p, strlen(p));
}

/* Called by json_dump_callback with pieces of the JSON text; jansson
 * splits strings only between characters, so a multi-byte character
 * never straddles two pieces. */
static int json_piece(const char *buf, size_t n, void *data)
{
	struct sink *s = data;
	const unsigned char *p = (const unsigned char *)buf;
	size_t start = 0;
	for (size_t i = 0; i < n; i++) {
		const char *esc = NULL;
		size_t len = 1;
		if (p[i] == '<')
			esc = "\\u003c";
		else if (p[i] == '>')
			esc = "\\u003e";
		else if (p[i] == '&')
			esc = "\\u0026";
		else if (p[i] == 0xe2 && i + 2 < n && p[i + 1] == 0x80 &&
			 (p[i + 2] == 0xa8 || p[i + 2] == 0xa9))
			esc = p[i + 2] == 0xa8 ? "\\u2028" : "\\u2029", len = 3;
		if (!esc)
			continue;
		put(s, buf + start, i - start);
		puts_(s, esc);
		i += len - 1;
		start = i + 1;
	}
	put(s, buf + start, n - start);
	return s->err ? -1 : 0;
}

int mt_render_html(const json_t *report, const char *trace_name, FILE *out)
{
	struct sink s = { out, false };
	json_t *data = json_object();
	if (!data)
		return -1;
	/* the page's data: the report, and the name of its trace.  With a
	 * profile, the page makes the lists of sites and the flame graph from
	 * it, so the report's own (most of the data) stay out. */
	static const char *const derived[] = { "flame", "sites", "leaks", "temporary_sites" };
	json_t *rep = json_object_get(report, "profile") ? json_object() : NULL;
	if (rep) {
		json_object_update(rep, (json_t *)report);
		for (size_t i = 0; i < sizeof derived / sizeof *derived; i++)
			json_object_del(rep, derived[i]);
	}
	json_object_set_new(data, "report", rep ? rep : json_incref((json_t *)report));
	if (trace_name)
		json_object_set_new(data, "trace_file", json_string(trace_name));
	puts_(&s, "<!DOCTYPE html>\n<html lang=\"en\" data-memtrace=\"loading\"><head>"
		  "<meta charset=\"utf-8\">"
		  "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
		  "<meta name=\"color-scheme\" content=\"light\">"
		  "<meta name=\"generator\" content=\"memtrace\">"
		  "<title>memtrace report</title><style>");
	puts_(&s, mt_html_css);
	puts_(&s, "</style></head><body>\n<noscript><p class=\"warn\">This report is drawn by "
		  "its script: allow JavaScript for this file, or read it with <code>memtrace "
		  "report --format text</code>.</p></noscript>\n"
		  "<script type=\"application/json\" id=\"mt-data\">");
	if (json_dump_callback(data, json_piece, &s, JSON_COMPACT | JSON_ENCODE_ANY))
		s.err = true;
	puts_(&s, "</script>\n<script>");
	puts_(&s, mt_html_js);
	puts_(&s, "</script>\n</body></html>\n");
	json_decref(data);
	return s.err || ferror(out) ? -1 : 0;
}
