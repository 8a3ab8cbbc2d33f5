/*
 * test_render.c - the renderings drawn from the JSON report (render.h):
 * folded stacks exactly; HTML pages of hostile, damaged and real reports,
 * whose data block holds the report intact and cannot be ended by any
 * trace string; memtrace diff's page, of the same kind; and the profile
 * the page draws (output.h), figure by figure on a trace with known times.
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

#include "output.h"
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
		" s:{s:{s:[i, i], s:[i, i]}},"
		" s:[{s:s, s:i, s:i}, {s:s, s:i, s:i}],"
		" s:{s:s, s:i, s:[{s:s, s:i, s:[]}]}}",
		"format", "memtrace-report", "schema_version", 3,
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
		"timeline", "points", "time_us", 0, 1000, "heap", 0, 400,
		"marks", "label", "(before first mark)", "time_us", 0, "allocs", 1, "label", EVIL,
		"time_us", 500, "allocs", 3,
		"flame", "name", "all", "value", 400, "children", "name", EVIL, "value", 400,
		"children");
	json_decref(site);
	assert_non_null(r);
	return r;
}

/* The data block of a page: {"report": ..., "trace_file": ...}. */
static json_t *page_data(const char *page)
{
	const char *start = strstr(page, "<script type=\"application/json\" id=\"mt-data\">");
	assert_non_null(start);
	start = strchr(start, '>') + 1;
	const char *end = strstr(start, "</script>");
	assert_non_null(end);
	/* nothing in it can end the block, open a comment or end a line of script */
	assert_null(memmem(start, (size_t)(end - start), "<", 1));
	assert_null(memmem(start, (size_t)(end - start), "\xe2\x80\xa8", 3));
	assert_null(memmem(start, (size_t)(end - start), "\xe2\x80\xa9", 3));
	json_t *data = json_loadb(start, (size_t)(end - start), JSON_DECODE_ANY, NULL);
	assert_non_null(data);
	return data;
}

/* A whole page: its own two scripts, and nothing a trace brought. */
static void assert_page(const char *out)
{
	assert_int_equal(count(out, "<script"), 2);
	assert_int_equal(count(out, "</script>"), 2);
	assert_int_equal(count(out, "<img"), 0);
	assert_null(strstr(out, "alert(1)</"));
	assert_true(strncmp(out, "<!DOCTYPE html>", 15) == 0);
	assert_non_null(strstr(out, "</body></html>\n"));
}

static void test_html_escapes_trace_strings(void **state)
{
	(void)state;
	json_t *r = hostile_report();
	char *out = html(r);
	assert_page(out);
	/* the data block holds the report intact, the strings included */
	json_t *data = page_data(out);
	assert_true(json_equal(json_object_get(data, "report"), r));
	assert_string_equal(json_string_value(json_object_get(data, "trace_file")), "t.trace");
	json_decref(data);
	free(out);
	json_decref(r);
}

static void test_html_damaged(void **state)
{
	(void)state;
	/* wrong types everywhere, absurd figures: embedded as they are (the
	 * page's script reads them forgivingly) */
	static const char *const reports[] = {
		"{}",
		"[]",
		"null",
		"{\"process\": [], \"trace\": 1, \"events\": \"x\", \"domains\": [],"
		" \"summary\": {\"heap_peak\": [], \"size_histogram\": {}}, \"sites\": {},"
		" \"timeline\": {\"points\": {\"time_us\": [1, \"a\", null, []], \"heap\": 5}},"
		" \"marks\": [1, [], {}],"
		" \"flame\": {\"value\": 5, \"children\": [{}, 1]}, \"profile\": 3}",
	};
	for (size_t i = 0; i < sizeof reports / sizeof *reports; i++) {
		json_t *r = json_loads(reports[i], JSON_DECODE_ANY, NULL);
		assert_non_null(r);
		char *out = html(r);
		json_t *data = page_data(out);
		assert_non_null(json_object_get(data, "report"));
		json_decref(data);
		free(out);
		json_decref(r);
	}
}

/* memtrace diff's page: the diff object, trace strings and all, in the
 * same kind of data block, drawn by the same script. */
static void test_diff_page(void **state)
{
	(void)state;
	json_t *d = json_pack("{s:s, s:i, s:{s:s}, s:{s:s}, s:s, s:b,"
			      " s:[{s:s, s:i, s:s, s:s, s:{s:i, s:i, s:i}}],"
			      " s:[{s:s, s:s, s:i, s:i, s:i, s:n, s:b}]}",
			      "format", "memtrace-diff", "schema_version", 1, "base", "trace", EVIL,
			      "new", "trace", "new.trace", "by", "line", "identical", 0, "sites", "file",
			      EVIL, "line", 7, "function", EVIL, "domain", "malloc", "bytes", "base", 0,
			      "new", 777, "delta", 777, "fail_on", "limit", EVIL, "metric", "leaked",
			      "base", 0, "new", 777, "delta", 777, "percent", "exceeded", 1);
	assert_non_null(d);
	struct capture c;
	assert_int_equal(mt_render_diff_html(d, capture_start(&c)), 0);
	char *out = capture_end(&c);
	assert_page(out);
	assert_non_null(strstr(out, "<title>memtrace diff</title>"));
	assert_non_null(strstr(out, "<code>memtrace diff --format text</code>"));
	json_t *data = page_data(out);
	assert_true(json_equal(json_object_get(data, "diff"), d));
	assert_int_equal(json_object_size(data), 1);
	json_decref(data);
	free(out);
	/* any JSON at all is embedded as it is */
	json_t *odd = json_pack("[i, s]", 1, EVIL);
	assert_int_equal(mt_render_diff_html(odd, capture_start(&c)), 0);
	out = capture_end(&c);
	data = page_data(out);
	assert_true(json_equal(json_object_get(data, "diff"), odd));
	json_decref(data);
	json_decref(odd);
	free(out);
	json_decref(d);
}

/* One thread: 100 bytes at 0 us, 50 at 10 us, the first freed at 300 us:
 * past MT_GRID_MAX buckets of 1 us, so the grid is of 2 us. */
static FILE *timed_trace(struct tg *t)
{
	tg_init(t);
	tg_header(t, 42);
	tg_thread(t, 1);
	tg_malloc(t, 0, 100, 0x1000);
	mt_enc_value(&t->enc, MT_REC_TIME, 10);
	tg_malloc(t, 0, 50, 0x2000);
	mt_enc_value(&t->enc, MT_REC_TIME, 290);
	tg_free_rec(t, 0, 0x1000);
	tg_flush(t);
	tg_footer(t, 0, 0, MT_END_EXIT);
	return tg_file(t->data, t->len);
}

/* The report of timed_trace() with a site per thread and the time grid. */
static void build_timed(struct tg *t, struct mt_report *rep)
{
	FILE *f = timed_trace(t);
	assert_int_equal(mt_report_build_flags(f, rep, NULL, MT_BUILD_PER_THREAD | MT_BUILD_TIME_GRID,
					       NULL, NULL),
			 MT_REPORT_OK);
	fclose(f);
}

static json_t *column(const json_t *table, const char *key)
{
	json_t *c = json_object_get(table, key);
	assert_true(json_is_array(c));
	return c;
}

static void test_profile_figures(void **state)
{
	(void)state;
	struct tg t;
	struct mt_report rep;
	build_timed(&t, &rep);
	json_t *j = mt_report_to_json(&rep), *p = json_object_get(j, "profile");
	assert_non_null(p);
	json_t *grid = json_object_get(p, "grid"), *sites = json_object_get(p, "sites");
	assert_int_equal(json_integer_value(json_object_get(grid, "bucket_us")), 2);
	assert_int_equal(json_integer_value(json_object_get(grid, "buckets")), 151);
	/* one site: the thread's <native> malloc site (the place of every
	 * thread, empty, is left out) */
	assert_int_equal(json_array_size(column(sites, "allocs")), 1);
	assert_int_equal(json_integer_value(json_array_get(column(sites, "allocs"), 0)), 2);
	assert_int_equal(json_integer_value(json_array_get(column(sites, "bytes"), 0)), 150);
	assert_int_equal(json_integer_value(json_array_get(column(sites, "peak_bytes"), 0)), 150);
	assert_int_equal(json_integer_value(json_array_get(column(sites, "live_bytes_at_exit"), 0)),
			 50);
	assert_int_equal(json_integer_value(json_array_get(column(sites, "node"), 0)), -1);
	assert_int_equal(json_integer_value(json_array_get(column(sites, "domain"), 0)), 0);
	json_t *threads = json_object_get(p, "threads");
	size_t ti = (size_t)json_integer_value(json_array_get(column(sites, "thread"), 0));
	assert_int_equal(json_integer_value(json_array_get(threads, ti)), 1);
	size_t where = (size_t)json_integer_value(json_array_get(column(sites, "where"), 0));
	json_t *frames = json_object_get(p, "frames"), *strings = json_object_get(p, "strings");
	size_t file = (size_t)json_integer_value(json_array_get(column(frames, "file"), where));
	assert_string_equal(json_string_value(json_array_get(strings, file)), "<native>");
	/* the cells, each the difference from the one before: at the end of
	 * bucket 0 (0 us), 5 (10 us) and 150 (300 us) */
	static const char *const cell_keys[] = { "bucket", "allocs", "bytes", "live_bytes",
						 "temporary_allocs", "temporary_bytes" };
	static const json_int_t want[][3] = { { 0, 5, 145 }, { 1, 1, 0 }, { 100, 50, 0 },
					      { 100, 50, -100 }, { 0, 0, 0 }, { 0, 0, 0 } };
	assert_int_equal(json_integer_value(json_array_get(column(sites, "cells"), 0)), 3);
	json_t *cells = json_object_get(p, "cells");
	for (size_t k = 0; k < 6; k++) {
		json_t *col = json_object_get(cells, cell_keys[k]);
		assert_int_equal(json_array_size(col), 3);
		for (size_t i = 0; i < 3; i++)
			assert_int_equal(json_integer_value(json_array_get(col, i)), want[k][i]);
	}
	/* the lists of sites name the thread */
	json_t *s0 = json_array_get(json_object_get(j, "sites"), 0);
	assert_int_equal(json_integer_value(json_object_get(s0, "thread")), 1);
	json_decref(j);
	mt_report_free(&rep);
	tg_free(&t);
}

static void test_html_of_built_report(void **state)
{
	(void)state;
	struct tg t;
	struct mt_report rep;
	struct capture c;
	build_timed(&t, &rep);
	assert_int_equal(mt_output_html(&rep, "x.trace", capture_start(&c)), 0);
	char *out = capture_end(&c);
	/* the page's report is the JSON's, but for the lists of sites and the
	 * flame graph's tree, which the page makes from the profile */
	json_t *data = page_data(out), *j = mt_report_to_json(&rep);
	json_t *page = json_object_get(data, "report");
	static const char *const derived[] = { "flame", "sites", "leaks", "temporary_sites" };
	for (size_t i = 0; i < sizeof derived / sizeof *derived; i++) {
		assert_non_null(json_object_get(j, derived[i]));
		assert_null(json_object_get(page, derived[i]));
		json_object_del(j, derived[i]);
	}
	assert_true(json_equal(page, j));
	json_decref(j);
	json_decref(data);
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
		cmocka_unit_test(test_html_escapes_trace_strings),
		cmocka_unit_test(test_html_damaged),
		cmocka_unit_test(test_diff_page),
		cmocka_unit_test(test_profile_figures),
		cmocka_unit_test(test_html_of_built_report),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
