/*
 * output_html.c - the HTML pages of a report and of `memtrace diff`: each
 * one self-contained file made of a JSON object (the report of
 * docs/report-schema.md, with its "profile", or the diff object) and the
 * script and stylesheet that draw it in the browser (html/, embedded at
 * build time by html/embed.cmake).  Nothing is drawn here: the page shows
 * what the JSON holds, and nothing more.
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

/* The page being written; a write error is remembered, so that the
 * callers check once at the end. */
struct sink {
	FILE *f;
	bool err;
};

static void put(struct sink *s, const char *p, size_t n)
{
	if (n && fwrite(p, 1, n, s->f) != n)
		s->err = true;
}

static void put_str(struct sink *s, const char *p)
{
	put(s, p, strlen(p));
}

/* Called by json_dump_callback with pieces of the JSON text: the pieces
 * as they are, but for the characters that could end the block. */
static int json_piece(const char *buf, size_t n, void *data)
{
	struct sink *s = data;
	const unsigned char *p = (const unsigned char *)buf;
	size_t run = 0; /* bytes before p[i] that need no escaping */
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
			put(s, (const char *)p + i - run, run);
			put_str(s, esc);
			run = 0;
			i += skip - 1;
		} else {
			run++;
		}
	}
	put(s, (const char *)p + n - run, run);
	return s->err ? -1 : 0;
}

/* The page of data, titled with the command that made it ("memtrace
 * report") until the script sets its own title.  Releases data. */
static int page(json_t *data, const char *command, FILE *out)
{
	struct sink s = { .f = out };
	if (!data)
		return -1;
	put_str(&s, "<!DOCTYPE html>\n<html lang=\"en\" data-memtrace=\"loading\"><head>"
		"<meta charset=\"utf-8\">"
		"<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
		"<meta name=\"color-scheme\" content=\"light\">"
		"<meta name=\"generator\" content=\"memtrace\"><title>");
	put_str(&s, command);
	put_str(&s, "</title><style>");
	put_str(&s, mt_html_css);
	put_str(&s, "</style></head><body>\n<noscript><p class=\"warn\">This page is drawn by "
		"its script: allow JavaScript for this file, or read it with <code>");
	put_str(&s, command);
	put_str(&s, " --format text</code>.</p></noscript>\n"
		"<script type=\"application/json\" id=\"mt-data\">");
	/* jansson splits strings only between characters, so a multi-byte
	 * character never straddles two pieces. */
	if (json_dump_callback(data, json_piece, &s, JSON_COMPACT | JSON_ENCODE_ANY))
		s.err = true;
	put_str(&s, "</script>\n<script>");
	put_str(&s, mt_html_js);
	put_str(&s, "</script>\n</body></html>\n");
	json_decref(data);
	return s.err || ferror(out) ? -1 : 0;
}

int mt_render_html(const json_t *report, const char *trace_name, FILE *out)
{
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
	return page(data, "memtrace report", out);
}

int mt_render_diff_html(const json_t *diff, FILE *out)
{
	return page(json_pack("{s:O}", "diff", diff), "memtrace diff", out);
}
