/*
 * output_diff.c - `memtrace diff` for people, as text: drawn from the diff
 * object (diff.h) and nothing else.  Its page is output_html.c's.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "json_get.h"
#include "render.h"
#include "text_table.h"

/* A change's figures, clamped to what a report can hold. */
static uint64_t side(const json_t *change, const char *which)
{
	double v = jg_num(change, which);
	return v <= 0 ? 0 : v >= 0x1p63 ? INT64_MAX : (uint64_t)v;
}

static const char *signed_change(const json_t *change, char *buf)
{
	return signed_grouped(side(change, "new"), side(change, "base"), buf);
}

static const char *percent(const json_t *change, char *buf)
{
	double b = jg_num(change, "base"), n = jg_num(change, "new");
	if (b > 0)
		snprintf(buf, 32, "%+.2f%%", 100 * (n - b) / b);
	else
		snprintf(buf, 32, "%s", n > 0 ? "new" : "");
	return buf;
}

/* ---- text --------------------------------------------------------------------- */

static const char *const total_names[][2] = {
	{ "heap_peak", "heap peak (bytes)" },
	{ "live_at_exit", "heap live at exit (bytes)" },
	{ "allocs", "allocations" },
	{ "bytes", "bytes allocated" },
	{ "leaked", "bytes leaked (live at exit)" },
	{ "temporary_allocs", "temporary allocations" },
};

static void text_totals(const json_t *d, FILE *out)
{
	static const char *const head[] = { "base", "new", "change", "%", "figure" };
	struct table t;
	char a[32], b[32];
	const json_t *tot = jg_obj(d, "totals");
	table_init(&t, 5, head);
	for (size_t i = 0; i < sizeof total_names / sizeof *total_names; i++) {
		const json_t *c = jg_obj(tot, total_names[i][0]);
		size_t r = table_row(&t, total_names[i][1]);
		table_num(&t, r, 0, side(c, "base"));
		table_num(&t, r, 1, side(c, "new"));
		table_str(&t, r, 2, signed_change(c, a));
		table_str(&t, r, 3, percent(c, b));
	}
	table_print(out, &t);
}

static void text_sites(const json_t *d, size_t top, FILE *out)
{
	static const char *const head[] = { "bytes", "at peak", "leaked", "allocs", "site" };
	static const char *const keys[] = { "bytes", "peak_bytes", "leaked_bytes", "allocs" };
	const json_t *sites = jg_arr(d, "sites");
	const char *by = jg_str(d, "by");
	struct table t;
	char buf[32];
	if (!jg_len(sites))
		return;
	table_init(&t, 5, head);
	for (size_t i = 0; i < jg_len(sites) && i < top; i++) {
		const json_t *s = json_array_get(sites, i);
		const char *file = jg_str(s, "file"), *fn = jg_str(s, "function");
		char *name = NULL;
		size_t len = 0;
		FILE *m = open_memstream(&name, &len);
		if (!m)
			break;
		if (by && !strcmp(by, "file"))
			fprintf(m, "%s", file ? file : "?");
		else if (by && !strcmp(by, "function"))
			fprintf(m, "%s (%s)", file ? file : "?", fn ? fn : "");
		else
			fprintf(m, "%s:%.0f (%s)", file ? file : "?", jg_num(s, "line"), fn ? fn : "");
		fprintf(m, "  %s", jg_str(s, "domain") ? jg_str(s, "domain") : "?");
		fclose(m);
		size_t r = table_row(&t, name);
		free(name);
		for (int k = 0; k < 4; k++)
			table_str(&t, r, k, signed_change(jg_obj(s, keys[k]), buf));
	}
	fprintf(out, "\nsites that changed, largest change first (%zu)\n", jg_len(sites));
	table_print(out, &t);
	if (jg_len(sites) > top)
		fprintf(out, "    ... and %zu more (--top N shows more)\n", jg_len(sites) - top);
}

/* The changes of an object of changes, as rows "name: base -> new". */
static void text_changes(const char *title, const json_t *o, FILE *out)
{
	static const char *const head[] = { "base", "new", "change", "figure" };
	struct table t;
	char buf[32];
	const char *key;
	const json_t *c;
	table_init(&t, 4, head);
	json_object_foreach((json_t *)o, key, c)
	{
		if (side(c, "base") == side(c, "new") || !json_is_object(c))
			continue;
		size_t r = table_row(&t, key);
		table_num(&t, r, 0, side(c, "base"));
		table_num(&t, r, 1, side(c, "new"));
		table_str(&t, r, 2, signed_change(c, buf));
	}
	if (t.nrows) {
		fprintf(out, "\n%s\n", title);
		table_print(out, &t);
	} else {
		table_drop(&t);
	}
}

static void text_classes(const json_t *d, FILE *out)
{
	static const char *const head[] = { "size", "allocs", "objects at peak", "pools at peak",
					    "objects at exit", "" };
	static const char *const keys[] = { "allocs", "live_objects_peak", "pools_peak",
					    "live_objects_at_exit" };
	const json_t *a = jg_arr(d, "size_classes");
	struct table t;
	char buf[32];
	if (!jg_len(a))
		return;
	table_init(&t, 6, head);
	for (size_t i = 0; i < jg_len(a); i++) {
		const json_t *c = json_array_get(a, i);
		size_t r = table_row(&t, "");
		table_num(&t, r, 0, (uint64_t)jg_num(c, "size"));
		for (int k = 0; k < 4; k++)
			table_str(&t, r, k + 1, signed_change(jg_obj(c, keys[k]), buf));
	}
	fputs("\npymalloc size classes that changed\n", out);
	table_print(out, &t);
}

static void text_limits(const json_t *d, FILE *out)
{
	const json_t *a = jg_arr(d, "fail_on");
	char x[32], y[32], p[32];
	if (!jg_len(a))
		return;
	fputs("\nlimits (--fail-on)\n", out);
	for (size_t i = 0; i < jg_len(a); i++) {
		const json_t *l = json_array_get(a, i);
		fprintf(out, "  %-20s %s: %s -> %s (%s)\n", jg_str(l, "limit") ? jg_str(l, "limit") : "?",
			json_is_true(jg(l, "exceeded")) ? "EXCEEDED" : "ok",
			grouped(side(l, "base"), x), grouped(side(l, "new"), y),
			json_is_number(jg(l, "percent")) ? percent(l, p) : "no base figure");
	}
}

int mt_render_diff_text(const json_t *d, size_t top, FILE *out)
{
	const json_t *b = jg_obj(d, "base"), *n = jg_obj(d, "new");
	fprintf(out, "memtrace diff\n  base  %s\n  new   %s\n  sites matched by %s\n\n",
		jg_str(b, "trace") ? jg_str(b, "trace") : "?",
		jg_str(n, "trace") ? jg_str(n, "trace") : "?", jg_str(d, "by") ? jg_str(d, "by") : "?");
	text_totals(d, out);
	if (json_is_true(jg(d, "identical"))) {
		fputs("\nno differences\n", out);
	} else {
		text_sites(d, top, out);
		const json_t *doms = jg_obj(d, "domains");
		const char *name;
		const json_t *o;
		json_object_foreach((json_t *)doms, name, o)
		{
			char title[64];
			snprintf(title, sizeof title, "domain %s", name);
			text_changes(title, o, out);
		}
		text_classes(d, out);
		text_changes("pymalloc arenas and pools", jg_obj(d, "arenas"), out);
	}
	text_limits(d, out);
	return ferror(out) ? -1 : 0;
}
