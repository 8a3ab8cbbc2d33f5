/*
 * test_views.c - the report's views on synthetic traces with exact
 * answers: sites ranked by each figure, grouped by line, function and
 * file, cut by --top and --threshold; a window by time and by marks (its
 * own peak, sites at it, allocations, leaks and temporaries); domain and
 * thread filters; the main script line by line from SCRIPT records; the
 * flame graph inverted and counting each figure; and `memtrace diff`.
 */
#define _GNU_SOURCE /* open_memstream */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include "diff.h"
#include "output.h"
#include "render.h"
#include "report.h"
#include "tracegen.h"

#define MIB (1024ull * 1024)
#define POOL 16384ull
#define ARENA0 0x7f0000000000ull /* 1 MiB aligned */
#define HEAP 0x5550000000ull

/* ---- building traces -------------------------------------------------------- */

/* Code objects and their frames: f, g in a.py; h in b.py; in main.py the
 * module body and work(). */
enum { F1 = 1, F2, F3, F4, S5, S6, S7, S8, W3, LIB };

static void define(struct tg *t, const char *main_py)
{
	tg_string(t, 1, "a.py");
	tg_string(t, 2, "b.py");
	tg_string(t, 3, "f");
	tg_string(t, 4, "g");
	tg_string(t, 5, "h");
	tg_string(t, 6, main_py);
	tg_string(t, 7, "<module>");
	tg_string(t, 8, "work");
	tg_string(t, 9, "lib.py");
	tg_string(t, 10, "helper");
	mt_enc_code(&t->enc, 1, 1, 3, 1);  /* f, a.py:1 */
	mt_enc_code(&t->enc, 2, 1, 4, 10); /* g, a.py:10 */
	mt_enc_code(&t->enc, 3, 2, 5, 1);  /* h, b.py:1 */
	mt_enc_code(&t->enc, 4, 6, 7, 1);  /* main.py's module */
	mt_enc_code(&t->enc, 5, 6, 8, 2);  /* work, main.py:2 */
	mt_enc_code(&t->enc, 6, 9, 10, 19); /* helper, lib.py:19 */
	mt_enc_frame(&t->enc, F1, 0, 1, 2);
	mt_enc_frame(&t->enc, F2, 0, 1, 3);
	mt_enc_frame(&t->enc, F3, 0, 2, 11);
	mt_enc_frame(&t->enc, F4, 0, 3, 5);
	mt_enc_frame(&t->enc, S5, 0, 4, 5);
	mt_enc_frame(&t->enc, S6, 0, 4, 6);
	mt_enc_frame(&t->enc, S7, 0, 4, 7);
	mt_enc_frame(&t->enc, S8, 0, 4, 8);
	mt_enc_frame(&t->enc, W3, 0, 5, 3);
	mt_enc_frame(&t->enc, LIB, 0, 6, 20);
}

static void start(struct tg *t)
{
	tg_init(t);
	tg_py_header(t, 42, 1);
	define(t, "main.py");
}

static void room(struct tg *t, uint64_t tid)
{
	if (mt_enc_full(&t->enc)) {
		tg_flush(t);
		tg_thread(t, tid);
	}
}

static void loc(struct tg *t, uint64_t frame)
{
	tg_value(t, MT_REC_LOC, frame);
}

static void script(struct tg *t, uint64_t frame)
{
	tg_value(t, MT_REC_SCRIPT, frame);
}

static void at_us(struct tg *t, uint64_t delta)
{
	tg_value(t, MT_REC_TIME, delta);
}

/* A large object: PyObject_Malloc passes it to malloc, in the heap. */
static void obj(struct tg *t, uint64_t size, uint64_t addr)
{
	tg_malloc(t, MT_DOM_MALLOC, size, addr);
	tg_malloc(t, MT_DOM_PYOBJ, size, addr);
}

static void obj_free(struct tg *t, uint64_t addr)
{
	tg_free_rec(t, MT_DOM_PYOBJ, addr);
	tg_free_rec(t, MT_DOM_MALLOC, addr);
}

static struct mt_report build_view(struct tg *t, const struct mt_view *v)
{
	struct mt_report rep;
	FILE *f = tg_finish(t);
	assert_int_equal(mt_report_build_flags(f, &rep, v, 0, NULL, NULL), MT_REPORT_OK);
	fclose(f);
	return rep;
}

/* The text report (free it). */
/* *buf is the caller's: returned from here, GCC 12 at -O3 took a pointer
 * into the text for one to this function's variable (-Wdangling-pointer). */
static void text_of(const struct mt_report *rep, char **buf)
{
	size_t len = 0;
	*buf = NULL;
	FILE *out = open_memstream(buf, &len);
	assert_non_null(out);
	assert_int_equal(mt_output_text(rep, NULL, out), 0);
	fclose(out);
}

static json_int_t jint(const json_t *o, const char *key)
{
	json_t *v = json_object_get(o, key);
	assert_true(json_is_integer(v));
	return json_integer_value(v);
}

static const char *jstr(const json_t *o, const char *key)
{
	const char *s = json_string_value(json_object_get(o, key));
	assert_non_null(s);
	return s;
}

/* ---- sites by each figure ----------------------------------------------------- */

/* f at a.py:2 makes 100,000 32-byte objects and frees each at once, long
 * before the peak; g (a.py:11) two of 500,000 bytes; h (b.py:5) one of
 * 3,000,000 that stays; f at a.py:3 ten of 1,000 that stay. */
static void sites_trace(struct tg *t)
{
	start(t);
	loc(t, F1);
	for (uint64_t i = 0; i < 100000; i++) {
		room(t, 1);
		obj(t, 32, HEAP + 64 * (i % 7));
		obj_free(t, HEAP + 64 * (i % 7));
	}
	loc(t, F3);
	obj(t, 500000, HEAP + 0x100000);
	obj_free(t, HEAP + 0x100000);
	obj(t, 500000, HEAP + 0x200000);
	loc(t, F4);
	obj(t, 3000000, HEAP + 0x1000000); /* the peak: 3,500,000 */
	loc(t, F3);
	obj_free(t, HEAP + 0x200000);
	loc(t, F2);
	for (uint64_t i = 0; i < 10; i++)
		obj(t, 1000, HEAP + 0x300000 + 0x1000 * i);
}

static struct mt_report sites_report(const struct mt_view *v)
{
	struct tg t;
	sites_trace(&t);
	return build_view(&t, v);
}

/* The rows' lines, in order. */
static void expect_lines(const struct mt_report *rep, enum mt_sort sort, bool all,
			 const uint64_t *lines, size_t n, size_t total)
{
	struct mt_rows rows;
	assert_int_equal(mt_site_rows(rep, sort, all, SIZE_MAX, &rows), 0);
	assert_int_equal(rows.n, n);
	assert_int_equal(rows.total, total);
	for (size_t i = 0; i < n; i++) {
		const char *file, *fn;
		uint64_t line;
		mt_row_where(rep, &rows.v[i], &file, &fn, &line);
		assert_int_equal(line, lines[i]);
	}
	mt_rows_free(&rows);
}

static void test_sort(void **state)
{
	(void)state;
	struct mt_view v;
	mt_view_default(&v);
	struct mt_report rep = sites_report(&v);
	assert_int_equal(rep.heap.peak, 3500000);
	/* peak: h and g held bytes then; f's lines by bytes after them */
	expect_lines(&rep, MT_SORT_PEAK, true, (const uint64_t[]){ 5, 11, 2, 3 }, 4, 4);
	expect_lines(&rep, MT_SORT_PEAK, false, (const uint64_t[]){ 5, 11 }, 2, 2);
	/* f's 100,000 temporaries lead by allocations and by bytes */
	expect_lines(&rep, MT_SORT_ALLOCS, true, (const uint64_t[]){ 2, 3, 11, 5 }, 4, 4);
	expect_lines(&rep, MT_SORT_BYTES, true, (const uint64_t[]){ 2, 5, 11, 3 }, 4, 4);
	expect_lines(&rep, MT_SORT_LEAKED, false, (const uint64_t[]){ 5, 3 }, 2, 2);
	expect_lines(&rep, MT_SORT_TEMPORARY, false, (const uint64_t[]){ 2, 11 }, 2, 2);
	struct mt_rows rows;
	assert_int_equal(mt_site_rows(&rep, MT_SORT_ALLOCS, true, 2, &rows), 0);
	assert_int_equal(rows.n, 2);
	assert_int_equal(rows.total, 4);
	assert_int_equal(rows.v[0].allocs, 100000);
	assert_int_equal(rows.v[0].bytes, 3200000);
	assert_int_equal(rows.v[0].temp_allocs, 100000);
	assert_int_equal(rows.v[0].peak_bytes, 0);
	assert_int_equal(rows.v[1].allocs, 10);
	mt_rows_free(&rows);

	/* JSON: every site in the view's order, and how many there are */
	rep.view.sort = MT_SORT_ALLOCS;
	json_t *root = mt_report_to_json(&rep);
	json_t *sites = json_object_get(root, "sites");
	assert_int_equal(json_array_size(sites), 4);
	assert_int_equal(jint(json_array_get(sites, 0), "allocs"), 100000);
	assert_int_equal(jint(json_array_get(sites, 0), "line"), 2);
	assert_int_equal(jint(json_object_get(root, "site_counts"), "sites"), 4);
	assert_string_equal(jstr(json_object_get(root, "view"), "sort"), "allocs");
	json_decref(root);

	/* text: the table of the sort, its figure first */
	char *buf;
	text_of(&rep, &buf);
	const char *top = strstr(buf, "top sites by allocations (reallocs too)\n");
	assert_non_null(top);
	assert_non_null(strstr(top, "\n    100,000 3,200,000         0            0  a.py:2 (f)  "
				    "pymem_obj\n"));
	free(buf);
	mt_report_free(&rep);
}

static void test_group_threshold_top(void **state)
{
	(void)state;
	struct mt_view v;
	mt_view_default(&v);
	v.by = MT_GROUP_FUNCTION;
	struct mt_report rep = sites_report(&v);
	struct mt_rows rows;
	const char *file, *fn;
	uint64_t line;
	assert_int_equal(mt_site_rows(&rep, MT_SORT_BYTES, true, SIZE_MAX, &rows), 0);
	assert_int_equal(rows.n, 3); /* f, h, g */
	mt_row_where(&rep, &rows.v[0], &file, &fn, &line);
	assert_string_equal(fn, "f");
	assert_int_equal(line, 1); /* the function's first line */
	assert_int_equal(rows.v[0].allocs, 100010);
	assert_int_equal(rows.v[0].bytes, 3210000);
	assert_int_equal(rows.v[0].live_bytes, 10000);
	mt_row_where(&rep, &rows.v[2], &file, &fn, &line);
	assert_string_equal(fn, "g");
	assert_int_equal(rows.v[2].peak_bytes, 500000);
	mt_rows_free(&rows);

	rep.view.by = MT_GROUP_FILE;
	assert_int_equal(mt_site_rows(&rep, MT_SORT_BYTES, true, SIZE_MAX, &rows), 0);
	assert_int_equal(rows.n, 2);
	mt_row_where(&rep, &rows.v[0], &file, &fn, &line);
	assert_string_equal(file, "a.py");
	assert_string_equal(fn, "");
	assert_int_equal(line, 0);
	assert_int_equal(rows.v[0].bytes, 4210000);
	assert_int_equal(rows.v[1].bytes, 3000000);
	mt_rows_free(&rows);

	rep.view.by = MT_GROUP_LINE;
	rep.view.threshold = 2000000; /* by bytes: f's temporaries and h */
	expect_lines(&rep, MT_SORT_BYTES, true, (const uint64_t[]){ 2, 5 }, 2, 2);
	rep.view.threshold = 0;
	rep.view.top = 1;
	json_t *root = mt_report_to_json(&rep);
	assert_int_equal(json_array_size(json_object_get(root, "sites")), 1);
	assert_int_equal(jint(json_object_get(root, "site_counts"), "sites"), 4);
	json_decref(root);
	mt_report_free(&rep);
}

/* ---- a window ----------------------------------------------------------------- */

/* f: 1,000 bytes at the start, kept; at 5 ms a 5,000-byte block comes and
 * goes; from 10 ms g makes two of 2,000 and frees one, h one that is
 * temporary; at 20 ms f makes 100,000 bytes. */
static void window_trace(struct tg *t, bool marks)
{
	start(t);
	tg_string(t, 20, "step one");
	tg_string(t, 21, "step two");
	tg_string(t, 22, "after");
	if (marks)
		tg_value(t, MT_REC_MARK, 20);
	loc(t, F1);
	obj(t, 1000, HEAP);
	at_us(t, 5000);
	loc(t, F2);
	obj(t, 5000, HEAP + 0x10000);
	obj_free(t, HEAP + 0x10000);
	at_us(t, 5000);
	if (marks)
		tg_value(t, MT_REC_MARK, 21);
	loc(t, F3);
	obj(t, 2000, HEAP + 0x20000);
	obj(t, 2000, HEAP + 0x30000);
	obj_free(t, HEAP + 0x20000);
	loc(t, F4);
	obj(t, 300, HEAP + 0x40000);
	obj_free(t, HEAP + 0x40000);
	at_us(t, 10000);
	if (marks)
		tg_value(t, MT_REC_MARK, 22);
	loc(t, F1);
	obj(t, 100000, HEAP + 0x100000);
	at_us(t, 1000);
}

static const struct mt_site *site_at(const struct mt_report *rep, uint64_t line)
{
	for (size_t i = 0; i < rep->nsites; i++)
		if (mt_site_line(rep, &rep->sites[i]) == line &&
		    rep->sites[i].dom == MT_DOM_PYOBJ)
			return &rep->sites[i];
	return NULL;
}

static void check_window(const struct mt_report *rep)
{
	assert_true(rep->window.opened);
	assert_int_equal(rep->window.from_us, 10000);
	assert_int_equal(rep->window.to_us, 20000);
	assert_int_equal(rep->heap.peak, 5000); /* f's 1,000 and g's two */
	assert_int_equal(rep->heap.peak_time_us, 10000);
	const struct mt_site *f = site_at(rep, 2), *g = site_at(rep, 11), *h = site_at(rep, 5);
	assert_int_equal(f->peak_bytes, 1000);
	assert_int_equal(f->allocs, 0);
	assert_int_equal(f->live_bytes, 0); /* made before the window: no leak of it */
	assert_int_equal(g->allocs, 2);
	assert_int_equal(g->peak_bytes, 4000);
	assert_int_equal(g->live_bytes, 2000);
	assert_int_equal(g->live_blocks, 1);
	assert_int_equal(h->temp_allocs, 1);
	assert_int_equal(rep->temp_allocs, 1);
	assert_int_equal(rep->heap.live, 3000); /* at the window's end */
	assert_int_equal(rep->dom[MT_DOM_MALLOC].allocs, 3);
	assert_int_equal(rep->dom[MT_DOM_MALLOC].peak_bytes, 5000);
	assert_int_equal(rep->events.total, 10);
	assert_int_equal(rep->hist[11].allocs, 2); /* 2,000 is in [1024, 2047] */
	assert_int_equal(rep->trace.duration_us, 21000);
}

static void test_window_time(void **state)
{
	(void)state;
	struct mt_view v;
	struct tg t;
	mt_view_default(&v);
	window_trace(&t, false);
	struct mt_report whole = build_view(&t, &v);
	assert_int_equal(whole.heap.peak, 103000);
	mt_report_free(&whole);

	v.from = (struct mt_bound){ .set = true, .us = 10000 };
	v.to = (struct mt_bound){ .set = true, .us = 20000 };
	window_trace(&t, false);
	struct mt_report rep = build_view(&t, &v);
	check_window(&rep);
	json_t *root = mt_report_to_json(&rep);
	json_t *win = json_object_get(root, "window");
	assert_int_equal(jint(win, "from_us"), 10000);
	assert_int_equal(jint(win, "to_us"), 20000);
	assert_int_equal(jint(json_object_get(json_object_get(root, "summary"), "heap_peak"), "bytes"),
			 5000);
	json_decref(root);
	mt_report_free(&rep);

	v.from.set = false; /* from the start to 20 ms: the first step's peak */
	window_trace(&t, false);
	rep = build_view(&t, &v);
	assert_int_equal(rep.heap.peak, 6000);
	assert_int_equal(rep.heap.peak_time_us, 5000);
	mt_report_free(&rep);

	v.from.set = true;
	v.to.set = false; /* from 10 ms to the end */
	window_trace(&t, false);
	rep = build_view(&t, &v);
	assert_int_equal(rep.heap.peak, 103000);
	assert_int_equal(site_at(&rep, 2)->live_bytes, 100000);
	mt_report_free(&rep);
}

static void test_window_marks(void **state)
{
	(void)state;
	struct mt_view v;
	struct tg t;
	mt_view_default(&v);
	v.from = (struct mt_bound){ .set = true, .mark = "step two" };
	v.to = (struct mt_bound){ .set = true, .mark = "after" };
	window_trace(&t, true);
	struct mt_report rep = build_view(&t, &v);
	check_window(&rep);
	/* the window holds one step, the one it starts with */
	assert_int_equal(rep.nmarks, 1);
	assert_string_equal(mt_mark_label(&rep, &rep.marks[0]), "step two");
	assert_int_equal(rep.marks[0].heap_peak, 5000);
	mt_report_free(&rep);

	/* the step's own peak is the same in the whole report */
	mt_view_default(&v);
	window_trace(&t, true);
	rep = build_view(&t, &v);
	assert_int_equal(rep.nmarks, 3);
	assert_int_equal(rep.marks[1].heap_peak, 5000);
	mt_report_free(&rep);

	v.from = (struct mt_bound){ .set = true, .mark = "no such step" };
	window_trace(&t, true);
	rep = build_view(&t, &v);
	assert_false(rep.window.opened);
	mt_report_free(&rep);
}

/* ---- filters ------------------------------------------------------------------ */

/* Thread 1: an object of 1,000 bytes (over its malloc block) and a malloc
 * of 500; thread 2: a malloc of 7,000, freed; then thread 1's 500. */
static struct mt_report filter_report(const struct mt_view *v)
{
	struct tg t;
	start(&t);
	loc(&t, F1);
	obj(&t, 1000, HEAP);
	tg_malloc(&t, MT_DOM_MALLOC, 500, HEAP + 0x1000);
	tg_thread(&t, 2);
	tg_malloc(&t, MT_DOM_MALLOC, 7000, HEAP + 0x2000);
	tg_free_rec(&t, MT_DOM_MALLOC, HEAP + 0x2000);
	tg_thread(&t, 1);
	tg_free_rec(&t, MT_DOM_MALLOC, HEAP + 0x1000);
	return build_view(&t, v);
}

static void test_filters(void **state)
{
	(void)state;
	struct mt_view v;
	mt_view_default(&v);
	struct mt_report rep = filter_report(&v);
	assert_int_equal(rep.heap.peak, 8500);
	assert_int_equal(rep.nthreads, 2);
	assert_int_equal(rep.threads[0].tid, 1);
	assert_int_equal(rep.threads[0].allocs, 2);
	assert_int_equal(rep.threads[1].allocs, 1);
	assert_int_equal(rep.threads[1].bytes, 7000);
	mt_report_free(&rep);

	v.domains = 1u << MT_DOM_PYOBJ; /* the objects alone */
	rep = filter_report(&v);
	assert_int_equal(rep.heap.peak, 1000);
	assert_int_equal(rep.heap.live, 1000);
	assert_int_equal(rep.heap.live_blocks, 1);
	struct mt_rows rows;
	assert_int_equal(mt_site_rows(&rep, MT_SORT_BYTES, true, SIZE_MAX, &rows), 0);
	assert_int_equal(rows.n, 1);
	assert_int_equal(rows.v[0].dom, MT_DOM_PYOBJ);
	mt_rows_free(&rows);
	mt_report_free(&rep);

	/* malloc's own heap, but only the blocks no object took are its sites */
	v.domains = 1u << MT_DOM_MALLOC;
	rep = filter_report(&v);
	assert_int_equal(rep.heap.peak, 8500);
	assert_int_equal(rep.heap.live_blocks, 1);
	assert_int_equal(rep.hist[13].allocs, 1); /* 7,000 */
	assert_int_equal(rep.hist[9].allocs, 1);  /* 500 */
	assert_int_equal(rep.hist[10].allocs, 0); /* the object's 1,000 is not malloc's */
	assert_int_equal(mt_site_rows(&rep, MT_SORT_BYTES, true, SIZE_MAX, &rows), 0);
	assert_int_equal(rows.n, 1);
	assert_int_equal(rows.v[0].bytes, 7500);
	mt_rows_free(&rows);
	mt_report_free(&rep);

	v.domains = 0;
	v.thread_set = true;
	v.thread = 2;
	rep = filter_report(&v);
	assert_int_equal(rep.heap.peak, 7000);
	assert_int_equal(rep.heap.live, 0);
	assert_int_equal(rep.threads[0].allocs, 0);
	assert_int_equal(rep.threads[1].allocs, 1);
	mt_report_free(&rep);

	v.thread = 1;
	rep = filter_report(&v);
	assert_int_equal(rep.heap.peak, 1500);
	assert_int_equal(rep.temp_allocs, 1); /* 500 bytes freed before it allocated again */
	mt_report_free(&rep);
}

/* ---- the main script, line by line ---------------------------------------------------- */

#define MAIN_PY                                                                         \
	"import lib\n"                                                                  \
	"def work():\n"                                                                 \
	"    return [0] * 8\n"                                                          \
	"\n"                                                                            \
	"numbers = [i for i in range(100)]\n"                                           \
	"data = lib.helper()\n"                                                         \
	"del numbers, data\n"                                                           \
	"gc.collect()\n"                                                                \
	"work()\n"

/* Line 5 makes 100 objects of 32 bytes in a new arena; line 6 calls a
 * helper that makes a 5,000-byte object and a list's first item buffer;
 * line 7 frees them all and the arena goes; line 8 makes one object of
 * 48; line 9 calls work(), whose line 3 makes and frees 64 bytes; the
 * 48 bytes are freed when no line of the script runs. */
static struct mt_report lines_report(const char *path)
{
	struct tg t;
	tg_init(&t);
	tg_py_header(&t, 42, 1);
	define(&t, path);
	uint64_t pool0 = ARENA0 + 48;
	script(&t, S5);
	loc(&t, S5);
	mt_enc_alloc(&t.enc, MT_REC_ARENA_ALLOC, MT_DOM_PYOBJ, MIB, ARENA0);
	for (uint64_t i = 0; i < 100; i++)
		tg_malloc(&t, MT_DOM_PYOBJ, 28, pool0 + 32 * i);
	script(&t, S6);
	loc(&t, LIB);
	obj(&t, 5000, HEAP);
	tg_realloc(&t, MT_DOM_PYMEM, 0, 32, HEAP + 0x10000); /* a list's first buffer */
	at_us(&t, 10);
	script(&t, S7);
	loc(&t, S7);
	for (uint64_t i = 0; i < 100; i++)
		tg_free_rec(&t, MT_DOM_PYOBJ, pool0 + 32 * i);
	mt_enc_alloc(&t.enc, MT_REC_ARENA_FREE, MT_DOM_PYOBJ, MIB, ARENA0);
	obj_free(&t, HEAP);
	tg_free_rec(&t, MT_DOM_PYMEM, HEAP + 0x10000);
	script(&t, S8);
	loc(&t, S8);
	obj(&t, 48, HEAP + 0x20000);
	script(&t, W3);
	loc(&t, W3);
	obj(&t, 64, HEAP + 0x30000);
	obj_free(&t, HEAP + 0x30000);
	script(&t, 0);
	obj_free(&t, HEAP + 0x20000);
	struct mt_view v;
	mt_view_default(&v);
	return build_view(&t, &v);
}

static void expect_line(const struct mt_script_line *l, uint64_t line, uint64_t allocs,
			uint64_t frees, uint64_t bytes, uint64_t freed, uint64_t peak)
{
	assert_int_equal(l->line, line);
	assert_int_equal(l->allocs, allocs);
	assert_int_equal(l->frees, frees);
	assert_int_equal(l->bytes_allocated, bytes);
	assert_int_equal(l->bytes_freed, freed);
	assert_int_equal(l->peak_bytes, peak);
}

static void test_script_lines(void **state)
{
	(void)state;
	char path[] = "/tmp/memtrace-main-XXXXXX";
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, MAIN_PY, strlen(MAIN_PY)), (ssize_t)strlen(MAIN_PY));
	close(fd);
	struct mt_report rep = lines_report(path);
	unlink(path);

	assert_int_equal(rep.heap.peak, MIB + 5000);
	assert_int_equal(rep.nlines, 5);
	const struct mt_script_line *l = rep.lines;
	expect_line(&l[0], 3, 1, 1, 64, 64, 0);
	expect_line(&l[1], 5, 100, 0, 2800, 0, 2800);
	assert_int_equal(l[1].arenas_allocated, 1);
	assert_int_equal(l[1].pools_allocated, 1);
	expect_line(&l[2], 6, 2, 0, 5032, 0, 5032);
	assert_int_equal(l[2].list_resizes, 1);
	assert_int_equal(l[2].dom_allocs[MT_DOM_PYOBJ], 1);
	assert_int_equal(l[2].dom_bytes[MT_DOM_PYOBJ], 5000);
	assert_int_equal(l[2].dom_bytes[MT_DOM_PYMEM], 32);
	assert_int_equal(l[2].dom_allocs[MT_DOM_MALLOC], 0); /* the object's layer */
	assert_int_equal(l[2].arenas_allocated, 0);
	expect_line(&l[3], 7, 0, 102, 0, 7832, 0);
	assert_int_equal(l[3].arenas_freed, 1);
	assert_int_equal(l[3].pools_freed, 1);
	expect_line(&l[4], 8, 1, 0, 48, 0, 0);
	assert_string_equal(mt_line_source(&rep, &l[3]), "del numbers, data");

	/* the sites are the lines' sites, one per place */
	const struct mt_site *s = site_at(&rep, 5);
	assert_non_null(s);
	assert_int_equal(s->allocs, 100);
	assert_int_equal(s->peak_bytes, 2800);

	json_t *root = mt_report_to_json(&rep);
	json_t *lines = json_object_get(root, "script_lines");
	assert_int_equal(json_array_size(lines), 5);
	json_t *del = json_array_get(lines, 3);
	assert_string_equal(jstr(del, "source"), "del numbers, data");
	assert_int_equal(jint(del, "net_bytes"), -7832);
	assert_int_equal(jint(del, "frees"), 102);
	assert_int_equal(jint(del, "arenas_freed"), 1);
	assert_string_equal(jstr(del, "file"), path);
	json_t *src = json_array_get(json_object_get(root, "script_sources"), 0);
	assert_int_equal(json_array_size(json_object_get(src, "lines")), 9);
	json_decref(root);

	char *buf;
	text_of(&rep, &buf);
	assert_non_null(strstr(buf, "main script, line by line: "));
	assert_non_null(strstr(buf, "\n       7      0   102    -7,832       0     -1    -1       0  "
				    "del numbers, data\n"));
	free(buf);
	mt_report_free(&rep);
}

/* ---- the flame graph ------------------------------------------------------------ */

static json_t *flame(const struct mt_view *v)
{
	struct mt_report rep = sites_report(v);
	json_t *root = mt_report_to_json(&rep);
	json_t *f = json_incref(json_object_get(root, "flame"));
	json_decref(root);
	mt_report_free(&rep);
	return f;
}

static json_int_t child_value(const json_t *node, const char *name)
{
	json_t *kids = json_object_get(node, "children");
	for (size_t i = 0; i < json_array_size(kids); i++)
		if (!strcmp(jstr(json_array_get(kids, i), "name"), name))
			return jint(json_array_get(kids, i), "value");
	return -1;
}

static void test_flame_values(void **state)
{
	(void)state;
	struct mt_view v;
	mt_view_default(&v);
	json_t *f = flame(&v);
	assert_int_equal(jint(f, "value"), 3200000 + 1000000 + 3000000 + 10000);
	assert_int_equal(child_value(f, "f (a.py:2)"), 3200000);
	json_decref(f);
	static const struct {
		enum mt_sort value;
		json_int_t total, f2;
	} want[] = {
		{ MT_SORT_ALLOCS, 100000 + 2 + 1 + 10, 100000 },
		{ MT_SORT_PEAK, 3500000, -1 },
		{ MT_SORT_LEAKED, 3010000, -1 },
		{ MT_SORT_TEMPORARY, 100001, 100000 },
	};
	for (size_t i = 0; i < sizeof want / sizeof *want; i++) {
		v.flame_value = want[i].value;
		f = flame(&v);
		assert_int_equal(jint(f, "value"), want[i].total);
		assert_int_equal(child_value(f, "f (a.py:2)"), want[i].f2);
		json_decref(f);
	}
}

/* Inverted: the innermost frame at the root, its callers under it. */
static void test_flame_inverted(void **state)
{
	(void)state;
	struct tg t;
	struct mt_view v;
	start(&t);
	mt_enc_frame(&t.enc, 20, S5, 1, 2);  /* f at a.py:2 called from main.py:5 */
	mt_enc_frame(&t.enc, 21, S6, 1, 2);  /* ... and from main.py:6 */
	loc(&t, 20);
	obj(&t, 100, HEAP);
	loc(&t, 21);
	obj(&t, 200, HEAP + 0x1000);
	obj(&t, 200, HEAP + 0x2000);
	mt_view_default(&v);
	v.inverted = true;
	v.flame_value = MT_SORT_ALLOCS;
	struct mt_report rep = build_view(&t, &v);
	json_t *root = mt_report_to_json(&rep);
	json_t *fl = json_object_get(root, "flame");
	json_t *kids = json_object_get(fl, "children");
	assert_int_equal(jint(fl, "value"), 3);
	assert_int_equal(json_array_size(kids), 1);
	json_t *f = json_array_get(kids, 0);
	assert_string_equal(jstr(f, "name"), "f (a.py:2)");
	assert_string_equal(jstr(f, "function"), "f");
	assert_int_equal(jint(f, "value"), 3);
	assert_int_equal(child_value(f, "<module> (main.py:5)"), 1);
	assert_int_equal(child_value(f, "<module> (main.py:6)"), 2);
	json_decref(root);
	mt_report_free(&rep);
}

/* ---- diff --------------------------------------------------------------------------- */

static json_t *diff_of(bool extra, const struct mt_limit *limits, size_t n)
{
	struct mt_view v;
	struct tg t;
	mt_view_default(&v);
	struct mt_report base = sites_report(&v);
	sites_trace(&t);
	if (extra) { /* one more site: 777 bytes at b.py:5's h, another line of it */
		mt_enc_frame(&t.enc, 30, 0, 3, 7);
		loc(&t, 30);
		obj(&t, 777, HEAP + 0x2000000);
	}
	struct mt_report new_ = build_view(&t, &v);
	json_t *d = mt_diff_json(&base, &new_, "base.trace", "new.trace", limits, n);
	assert_non_null(d);
	mt_report_free(&base);
	mt_report_free(&new_);
	return d;
}

static void test_diff(void **state)
{
	(void)state;
	json_t *d = diff_of(false, NULL, 0);
	assert_true(json_is_true(json_object_get(d, "identical")));
	assert_int_equal(json_array_size(json_object_get(d, "sites")), 0);
	assert_int_equal(json_array_size(json_object_get(d, "size_classes")), 0);
	assert_int_equal(json_object_size(json_object_get(d, "domains")), 0);
	assert_false(mt_diff_failed(d));
	json_decref(d);

	struct mt_limit limits[4];
	assert_true(mt_limit_parse("peak:+10%", &limits[0]));
	assert_true(mt_limit_parse("leaked:+500", &limits[1]));
	assert_true(mt_limit_parse("bytes:1%", &limits[2]));
	assert_true(mt_limit_parse("allocs:+0", &limits[3]));
	d = diff_of(true, limits, 4);
	assert_false(json_is_true(json_object_get(d, "identical")));
	json_t *sites = json_object_get(d, "sites");
	assert_int_equal(json_array_size(sites), 1);
	json_t *s = json_array_get(sites, 0);
	assert_string_equal(jstr(s, "file"), "b.py");
	assert_int_equal(jint(s, "line"), 7);
	assert_string_equal(jstr(s, "function"), "h");
	assert_int_equal(jint(json_object_get(s, "bytes"), "delta"), 777);
	assert_int_equal(jint(json_object_get(s, "bytes"), "base"), 0);
	assert_int_equal(jint(json_object_get(s, "allocs"), "delta"), 1);
	assert_int_equal(jint(json_object_get(s, "leaked_bytes"), "delta"), 777);
	json_t *tot = json_object_get(d, "totals");
	assert_int_equal(jint(json_object_get(tot, "heap_peak"), "delta"), 0);
	assert_int_equal(jint(json_object_get(tot, "allocs"), "delta"), 1);
	json_t *lim = json_object_get(d, "fail_on");
	assert_false(json_is_true(json_object_get(json_array_get(lim, 0), "exceeded")));
	assert_true(json_is_true(json_object_get(json_array_get(lim, 1), "exceeded")));
	assert_false(json_is_true(json_object_get(json_array_get(lim, 2), "exceeded")));
	assert_true(json_is_true(json_object_get(json_array_get(lim, 3), "exceeded")));
	assert_true(mt_diff_failed(d));
	json_t *malloc_dom = json_object_get(json_object_get(d, "domains"), "malloc");
	assert_int_equal(jint(json_object_get(malloc_dom, "allocs"), "delta"), 1);

	char *buf = NULL;
	size_t len = 0;
	FILE *out = open_memstream(&buf, &len);
	assert_int_equal(mt_render_diff_text(d, 20, out), 0);
	fclose(out);
	assert_non_null(strstr(buf, "\n     +777       0   +777     +1  b.py:7 (h)  pymem_obj\n"));
	assert_non_null(strstr(buf, "leaked:+500          EXCEEDED: 3,010,000 -> 3,010,777 (+0.03%)\n"));
	assert_non_null(strstr(buf, "peak:+10%            ok: 3,500,000 -> 3,500,000 (+0.00%)\n"));
	free(buf);
	json_decref(d);
}

static void test_limits(void **state)
{
	(void)state;
	struct mt_limit l;
	assert_true(mt_limit_parse("peak:+10%", &l));
	assert_int_equal(l.metric, MT_M_PEAK);
	assert_true(l.percent);
	assert_true(l.value == 10);
	assert_true(mt_limit_parse("leaked:2M", &l));
	assert_false(l.percent);
	assert_true(l.value == 2 * MIB);
	assert_true(mt_limit_parse("allocs:+1000", &l));
	assert_true(l.value == 1000);
	static const char *const bad[] = { "peak", "peak:", "peak:-5%", "rss:+1%", "peak:+x%",
					   "bytes:1.5", ":+1%", "peak:+10%%" };
	for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
		assert_false(mt_limit_parse(bad[i], &l));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sort),
		cmocka_unit_test(test_group_threshold_top),
		cmocka_unit_test(test_window_time),
		cmocka_unit_test(test_window_marks),
		cmocka_unit_test(test_filters),
		cmocka_unit_test(test_script_lines),
		cmocka_unit_test(test_flame_values),
		cmocka_unit_test(test_flame_inverted),
		cmocka_unit_test(test_diff),
		cmocka_unit_test(test_limits),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
