/*
 * output_html.c - the HTML report: one self-contained page made of the
 * JSON report object (docs/report-schema.md, with its "profile") and the
 * script and stylesheet that draw it in the browser (html/, embedded at
 * build time by html/embed.cmake).  Nothing is drawn here: the
 * page shows what the JSON holds, and nothing more.
 *
 * The JSON goes into a <script type="application/json"> block with < > &
 * and U+2028/U+2029 written as \uXXXX escapes (they can only occur inside
 * strings), so no string from the trace can end the block or become
 * markup; the script puts strings into the page with textContent only.
 */
#include "render.h"

#include "html_assets.h"
#include "html_emit.h"

int mt_render_html(const json_t *report, const char *trace_name, FILE *out)
{
	struct he s;
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
	he_init(&s, out);
	he_raw(&s, "<!DOCTYPE html>\n<html lang=\"en\" data-memtrace=\"loading\"><head>"
		  "<meta charset=\"utf-8\">"
		  "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
		  "<meta name=\"color-scheme\" content=\"light\">"
		  "<meta name=\"generator\" content=\"memtrace\">"
		  "<title>memtrace report</title><style>");
	he_raw(&s, mt_html_css);
	he_raw(&s, "</style></head><body>\n<noscript><p class=\"warn\">This report is drawn by "
		  "its script: allow JavaScript for this file, or read it with <code>memtrace "
		  "report --format text</code>.</p></noscript>\n"
		  "<script type=\"application/json\" id=\"mt-data\">");
	he_json(&s, data); /* escaped so that no string can end the block */
	he_raw(&s, "</script>\n<script>");
	he_raw(&s, mt_html_js);
	he_raw(&s, "</script>\n</body></html>\n");
	json_decref(data);
	return s.err || ferror(out) ? -1 : 0;
}
