/*
 * test_render.c - the renderings drawn from the JSON report (render.h):
 * folded stacks exactly, the HTML emitter's escaping and figures, and HTML
 * pages of hostile, non-Python, damaged and real reports: no trace string
 * ever reaches the page unescaped, and nothing crashes on odd input.
 */
#define _GNU_SOURCE /* memmem */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "html_emit.h"
#include "render.h"
#include "report.h"
#include "tracegen.h"

/* ---- capturing output ---------------------------------------------------- */

struct capture {
	char *buf;
	size_t len;
	FILE *f;
};

static FILE *capture_start(struct capture *c)
{
	c->buf = NULL;
	c->len = 0;
	c->f = open_memstream(&c->buf, &c->len);
	assert_non_null(c->f);
	return c->f;
}

static char *capture_end(struct capture *c)
{
	assert_int_equal(fclose(c->f), 0);
	return c->buf;
}

static json_t *parse(const char *text)
{
	json_error_t err;
	json_t *j = json_loads(text, 0, &err);
	if (!j)
		fail_msg("bad test JSON: %s (line %d)", err.text, err.line);
	return j;
}

static char *folded(const char *report_json)
{
	struct capture c;
	json_t *j = parse(report_json);
	assert_int_equal(mt_render_folded(j, capture_start(&c)), 0);
	json_decref(j);
	return capture_end(&c);
}

static char *html(const json_t *report)
{
	struct capture c;
	assert_int_equal(mt_render_html(report, "t.trace", capture_start(&c)), 0);
	return capture_end(&c);
}

static size_t count(const char *hay, const char *needle)
{
	size_t n = 0;
	for (const char *p = hay; (p = strstr(p, needle)); p++)
		n++;
	return n;
}

/* ---- folded -------------------------------------------------------------- */

static void test_folded_lines(void **state)
{
	(void)state;
	/* a's own bytes are 100 - 60 - 30; c has none of its own; d's name
	 * has the separator and a newline in it; siblings come by name */
	char *out = folded("{\"flame\": {\"name\": \"all\", \"value\": 107, \"children\": ["
			   " {\"name\": \"a (x.py:1)\", \"value\": 100, \"children\": ["
			   "   {\"name\": \"b (x.py:2)\", \"value\": 60, \"children\": []},"
			   "   {\"name\": \"c (x.py:3)\", \"value\": 30, \"children\": ["
			   "     {\"name\": \"d;e\\nf\", \"value\": 30}]}]},"
			   " {\"name\": \"<native>\", \"value\": 5, \"children\": []},"
			   " {\"name\": \"zero\", \"value\": 0, \"children\": []}]}}");
	assert_string_equal(out, "<native> 5\n"
				 "a (x.py:1);b (x.py:2) 60\n"
				 "a (x.py:1);c (x.py:3);d:e f 30\n"
				 "a (x.py:1) 10\n"
				 "[unknown] 2\n");
	free(out);
}

/* Frames are the functions' names: f at two lines is one frame, whose
 * children merge too; --folded-lines keeps the lines apart. */
#define TWO_LINES_OF_F                                                                  \
	"\"flame\": {\"name\": \"all\", \"value\": 22, \"children\": ["                    \
	" {\"name\": \"main (m.py:1)\", \"function\": \"main\", \"value\": 22, \"children\": [" \
	"   {\"name\": \"f (m.py:3)\", \"function\": \"f\", \"value\": 12, \"children\": ["     \
	"     {\"name\": \"g (m.py:9)\", \"function\": \"g\", \"value\": 2}]},"               \
	"   {\"name\": \"f (m.py:4)\", \"function\": \"f\", \"value\": 10, \"children\": ["     \
	"     {\"name\": \"g (m.py:8)\", \"function\": \"g\", \"value\": 5}]}]}]}"

static void test_folded_plain_names(void **state)
{
	(void)state;
	char *out = folded("{" TWO_LINES_OF_F "}");
	assert_string_equal(out, "main;f;g 7\n"
				 "main;f 15\n");
	free(out);
	out = folded("{\"view\": {\"folded_lines\": true}, " TWO_LINES_OF_F "}");
	assert_string_equal(out, "main (m.py:1);f (m.py:3);g (m.py:9) 2\n"
				 "main (m.py:1);f (m.py:3) 10\n"
				 "main (m.py:1);f (m.py:4);g (m.py:8) 5\n"
				 "main (m.py:1);f (m.py:4) 5\n");
	free(out);
}

static void test_folded_frames_from_fields(void **state)
{
	(void)state;
	/* a node without a name is named from its function, or with
	 * --folded-lines from its function, file and line */
	char *out = folded("{\"flame\": {\"name\": \"all\", \"value\": 8, \"children\": ["
			   " {\"file\": \"m.py\", \"line\": 7, \"function\": \"f;g\", \"value\": 8}]}}");
	assert_string_equal(out, "f:g 8\n");
	free(out);
	out = folded("{\"view\": {\"folded_lines\": true}, \"flame\": {\"name\": \"all\", "
		     "\"value\": 8, \"children\": [{\"file\": \"m.py\", \"line\": 7, "
		     "\"function\": \"f;g\", \"value\": 8}]}}");
	assert_string_equal(out, "f:g (m.py:7) 8\n");
	free(out);
}

static void test_folded_damaged(void **state)
{
	(void)state;
	static const char *const reports[] = {
		"{}",
		"{\"flame\": []}",
		"{\"flame\": {\"value\": \"lots\", \"children\": {}}}",
		"{\"flame\": {\"name\": 3, \"value\": -5, \"children\": [1, \"x\", null, []]}}",
		"{\"flame\": {\"value\": 1e300, \"children\": [{\"name\": \"\", \"value\": 1e300}]}}",
	};
	for (size_t i = 0; i < sizeof reports / sizeof *reports; i++)
		free(folded(reports[i]));
	char *out = folded("{\"flame\": {\"value\": 1, \"children\": [{\"value\": 2}]}}");
	assert_string_equal(out, "[unknown] 2\n"); /* children bigger than their parent */
	free(out);
}

/* ---- emitter ------------------------------------------------------------- */

static void test_escape_text(void **state)
{
	(void)state;
	struct capture c;
	struct he e;
	static const char in[] = "<a href='x'>&\"</a>\0nul\x01\x7f\xc2\x85\xff\t\n\xe2\x80\xa8ok";
	he_init(&e, capture_start(&c));
	he_text(&e, in, sizeof in - 1);
	char *out = capture_end(&c);
	assert_false(e.err);
	assert_string_equal(out, "&lt;a href=&#39;x&#39;&gt;&amp;&quot;&lt;/a&gt;"
				 "\xef\xbf\xbdnul\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd"
				 "\t\n\xe2\x80\xa8ok");
	free(out);
}

static void test_escape_json(void **state)
{
	(void)state;
	struct capture c;
	struct he e;
	static const char s[] = "</script><!-- & \xe2\x80\xa8\xe2\x80\xa9 \"q\"";
	json_t *v = json_pack("{s:s}", "k", s);
	he_init(&e, capture_start(&c));
	he_json(&e, v);
	char *out = capture_end(&c);
	assert_string_equal(out, "{\"k\":\"\\u003c/script\\u003e\\u003c!-- \\u0026 \\u2028\\u2029 "
				 "\\\"q\\\"\"}");
	json_t *back = json_loads(out, 0, NULL);
	assert_non_null(back);
	assert_true(json_equal(back, v));
	json_decref(back);
	json_decref(v);
	free(out);
}

static void test_figures(void **state)
{
	(void)state;
	assert_string_equal(hf_bytes(0).s, "0 B");
	assert_string_equal(hf_bytes(1023).s, "1023 B");
	assert_string_equal(hf_bytes(1536).s, "1.50 KiB");
	assert_string_equal(hf_bytes(50.5 * 1048576).s, "50.5 MiB");
	assert_string_equal(hf_bytes(300.0 * 1073741824).s, "300 GiB");
	assert_string_equal(hf_sbytes(-2048).s, "-2.00 KiB");
	assert_string_equal(hf_sbytes(2048).s, "+2.00 KiB");
	assert_string_equal(hf_count(1234567).s, "1,234,567");
	assert_string_equal(hf_count(-1000).s, "-1,000");
	assert_string_equal(hf_scount(12).s, "+12");
	assert_string_equal(hf_scount(0).s, "0");
	assert_string_equal(hf_time(12).s, "12 µs");
	assert_string_equal(hf_time(1500).s, "1.50 ms");
	assert_string_equal(hf_time(2.5e6).s, "2.50 s");
	assert_string_equal(hf_time(125e6).s, "2 min 05 s");
	assert_string_equal(hf_percent(1, 8).s, "12.5%");
	assert_string_equal(hf_percent(1, 0).s, "");
	/* only a damaged report gets here; it must not overflow */
	assert_non_null(strchr(hf_count(1e300).s, 'e'));
	assert_non_null(strchr(hf_bytes(-1e300).s, 'e'));
	assert_non_null(strchr(hf_time(1e300).s, 'e'));
}

/* ---- HTML ---------------------------------------------------------------- */

/* Every place a trace string goes, holding markup and script. */
#define EVIL "</script><script>alert(1)</script><img src=x onerror=alert(2)>\xe2\x80\xa8"

static json_t *hostile_report(void)
{
	json_t *site = json_pack(
		"{s:s, s:i, s:s, s:[{s:s, s:i, s:s}, {s:s, s:i, s:s}], s:s, s:i, s:i, s:i, s:i, s:i}",
		"file", "/" EVIL "/x.py", "line", 3, "function", EVIL, "stack", "file", EVIL, "line",
		1, "function", EVIL, "file", EVIL, "line", 3, "function", EVIL, "domain", EVIL,
		"allocs", 4, "bytes", 400, "peak_bytes", 400, "live_bytes_at_exit", 100,
		"live_blocks_at_exit", 1);
	json_t *r = json_pack(
		"{s:s, s:i,"
		" s:{s:i, s:s, s:[s, s], s:s, s:{s:s, s:i, s:i}},"
		" s:{s:b, s:s, s:i}, s:{s:i, s:i}, s:{},"
		" s:{s:{s:i, s:i, s:[{s:s, s:i, s:s, s:i}]}, s:{s:i, s:i}, s:{s:i, s:i},"
		"    s:[{s:i, s:i, s:i, s:i}]},"
		" s:{s:i}, s:{s:i, s:[{s:i, s:i, s:i, s:i, s:i, s:i}]},"
		" s:{s:i, s:[{s:s, s:i, s:s, s:i, s:[i, i, i]}]},"
		" s:[O], s:[O], s:[O],"
		" s:{s:[{s:i, s:i}, {s:i, s:i}]},"
		" s:[{s:s, s:i, s:i}, {s:s, s:i, s:i}],"
		" s:{s:s, s:i, s:[{s:s, s:i, s:[]}]}}",
		"format", "memtrace-report", "schema_version", 2,
		"process", "pid", 1, "exe", EVIL, "argv", EVIL, "x y", "version", EVIL, "python",
		"version", EVIL, "pool_size", 16384, "arena_size", 1048576,
		"trace", "complete", 0, "end_reason", EVIL, "duration_us", 1000,
		"events", "total", 10, "lost", 2, "domains",
		"summary", "heap_peak", "bytes", 400, "time_us", 500, "top_sites", "file", EVIL,
		"line", 3, "function", EVIL, "bytes", 400, "live_at_exit", "bytes", 100, "blocks",
		1, "temporary", "allocs", 1, "bytes", 8, "size_histogram", "min", 1, "max", 1,
		"allocs", 1, "bytes", 1,
		"arenas", "peak", 1,
		"pools", "pools_peak", 1, "size_classes", "size", 16, "live_objects_peak", 1,
		"pools_peak", 1, "live_objects_at_exit", 0, "pools_at_exit", 0, "allocs", 1,
		"lists", "resizes", 1, "sites", "file", EVIL, "line", 2, "function", EVIL,
		"resizes", 1, "chain", 0, 4, 8,
		"sites", site, "leaks", site, "temporary_sites", site,
		"timeline", "points", "time_us", 0, "heap", 0, "time_us", 1000, "heap", 400,
		"marks", "label", "(before first mark)", "time_us", 0, "allocs", 1, "label", EVIL,
		"time_us", 500, "allocs", 3,
		"flame", "name", "all", "value", 400, "children", "name", EVIL, "value", 400,
		"children");
	json_decref(site);
	assert_non_null(r);
	return r;
}

static void test_html_escapes_trace_strings(void **state)
{
	(void)state;
	json_t *r = hostile_report();
	char *out = html(r);
	/* the page's own two scripts, and nothing the trace brought */
	assert_int_equal(count(out, "<script"), 2);
	assert_int_equal(count(out, "</script>"), 2);
	assert_int_equal(count(out, "<img"), 0);
	assert_null(strstr(out, "alert(1)</"));
	assert_non_null(strstr(out, "&lt;/script&gt;&lt;script&gt;alert(1)"));
	/* the data block holds the strings intact, escaped for JSON */
	const char *start = strstr(out, "<script type=\"application/json\" id=\"mt-data\">");
	assert_non_null(start);
	start = strchr(start, '>') + 1;
	const char *end = strstr(start, "</script>");
	assert_non_null(end);
	assert_null(memmem(start, (size_t)(end - start), "\xe2\x80\xa8", 3));
	json_t *data = json_loadb(start, (size_t)(end - start), 0, NULL);
	assert_non_null(data);
	/* flame: ["all", 400, [[EVIL, 400, []]]] */
	const json_t *kid = json_array_get(json_array_get(json_object_get(data, "flame"), 2), 0);
	assert_string_equal(json_string_value(json_array_get(kid, 0)), EVIL);
	json_decref(data);
	/* the sections of a Python process with marks are all there */
	static const char *const ids[] = { "summary", "heap", "pools", "sizes", "lists",
					   "sites", "leaks", "temporary", "steps", "flame" };
	for (size_t i = 0; i < sizeof ids / sizeof *ids; i++) {
		char want[64];
		snprintf(want, sizeof want, "<section id=\"%s\">", ids[i]);
		assert_non_null(strstr(out, want));
	}
	assert_non_null(strstr(out, "no footer"));
	assert_non_null(strstr(out, "could not be recorded"));
	free(out);
	json_decref(r);
}

static void test_html_not_python(void **state)
{
	(void)state;
	json_t *r = parse("{\"process\": {\"exe\": \"/bin/true\", \"argv\": [\"true\"], "
			  "\"python\": null}, \"trace\": {\"complete\": true, \"end_reason\": "
			  "\"exit\"}, \"domains\": {\"malloc\": {\"allocs\": 3}}, "
			  "\"pools\": {\"pools_peak\": 0}, \"arenas\": {}, \"lists\": {}}");
	char *out = html(r);
	assert_non_null(strstr(out, "<!DOCTYPE html>"));
	assert_non_null(strstr(out, "Not a Python process"));
	assert_null(strstr(out, "<section id=\"pools\">"));
	assert_null(strstr(out, "<section id=\"lists\">"));
	assert_null(strstr(out, "<section id=\"steps\">"));
	assert_non_null(strstr(out, "No allocations to draw"));
	assert_non_null(strstr(out, "</html>"));
	free(out);
	json_decref(r);
}

static void test_html_damaged(void **state)
{
	(void)state;
	/* wrong types everywhere, absurd figures, time running backwards */
	static const char *const reports[] = {
		"{}",
		"[]",
		"null",
		"{\"process\": [], \"trace\": 1, \"events\": \"x\", \"domains\": [],"
		" \"summary\": {\"heap_peak\": [], \"size_histogram\": {}}, \"sites\": {},"
		" \"timeline\": {\"points\": [1, \"a\", null, []]}, \"marks\": [1, [], {}],"
		" \"flame\": {\"value\": 5, \"children\": [{}, 1]}}",
		"{\"process\": {\"python\": {}, \"argv\": [1, null, \"\"], \"start_unix_ns\": 1e300},"
		" \"summary\": {\"heap_peak\": {\"bytes\": 1e300, \"time_us\": -1e300},"
		"  \"size_histogram\": [{\"min\": -1, \"max\": 1e300, \"allocs\": 1e300}]},"
		" \"pools\": {\"size_classes\": [{\"size\": 1e300}, 7],"
		"  \"arenas_retained\": [{\"address\": -1}]},"
		" \"lists\": {\"sites\": [{\"chain\": [1e300, -1, \"x\"]}]},"
		" \"timeline\": {\"points\": [{\"time_us\": 1e300, \"heap\": 1e300},"
		"  {\"time_us\": -1e300, \"heap\": -1e300}, {\"time_us\": 5}]},"
		" \"marks\": [{\"label\": 7, \"time_us\": 1e300}, {\"label\": \"\", \"time_us\": -3}],"
		" \"flame\": {\"name\": \"all\", \"value\": 1e300, \"children\": [{\"name\": \"x\","
		"  \"value\": 1e300, \"children\": [{\"value\": -1}]}]}}",
	};
	for (size_t i = 0; i < sizeof reports / sizeof *reports; i++) {
		json_t *r = json_loads(reports[i], JSON_DECODE_ANY, NULL);
		assert_non_null(r);
		free(html(r));
		json_decref(r);
	}
}

static void test_html_of_built_report(void **state)
{
	(void)state;
	struct tg t;
	struct mt_report rep;
	struct capture c;
	tg_init(&t);
	tg_header(&t, 42);
	tg_thread(&t, 1);
	tg_malloc(&t, 0, 100, 0x1000);
	tg_malloc(&t, 0, 50, 0x2000);
	tg_free_rec(&t, 0, 0x1000);
	tg_flush(&t);
	tg_footer(&t, 0, 0, MT_END_EXIT);
	FILE *f = tg_file(t.data, t.len);
	assert_int_equal(mt_report_build(f, &rep), MT_REPORT_OK);
	fclose(f);
	assert_int_equal(mt_output_html(&rep, "x.trace", capture_start(&c)), 0);
	char *out = capture_end(&c);
	assert_non_null(strstr(out, "<!DOCTYPE html>"));
	assert_non_null(strstr(out, "</html>"));
	free(out);
	assert_int_equal(mt_output_folded(&rep, capture_start(&c)), 0);
	free(capture_end(&c));
	mt_report_free(&rep);
	tg_free(&t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_folded_lines),
		cmocka_unit_test(test_folded_plain_names),
		cmocka_unit_test(test_folded_frames_from_fields),
		cmocka_unit_test(test_folded_damaged),
		cmocka_unit_test(test_escape_text),
		cmocka_unit_test(test_escape_json),
		cmocka_unit_test(test_figures),
		cmocka_unit_test(test_html_escapes_trace_strings),
		cmocka_unit_test(test_html_not_python),
		cmocka_unit_test(test_html_damaged),
		cmocka_unit_test(test_html_of_built_report),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
