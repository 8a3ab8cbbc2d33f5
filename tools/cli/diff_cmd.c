/*
 * diff_cmd.c - `memtrace diff BASE NEW`: options, the two reports, their
 * comparison (diff.h) in text, JSON or HTML, and the exit status that CI
 * checks: 4 when a --fail-on limit was passed.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "diff.h"
#include "output.h"
#include "render.h"
#include "view_cli.h"

#define MAX_LIMITS 16

static const char usage_head[] =
	"usage: memtrace diff [--format text|json|html] [-o FILE] [--fail-on LIMIT]...\n"
	"                     [view options] BASE NEW\n"
	"\n"
	"Compares two traces (two runs, or two builds, of one program): per site, at\n"
	"the --by granularity, the change of allocations, bytes allocated, bytes live\n"
	"at the heap peak and bytes leaked, largest change first; per domain, per\n"
	"pymalloc size class, arenas and pools; the heap peak and what was live at\n"
	"exit.  Python sites match by file, function and line; native frames by\n"
	"their function's name, never their address.\n"
	"\n"
	"  -f, --format FMT    text (default), json or html\n"
	"  -o, --output FILE   write the comparison to FILE instead of stdout\n"
	"  --fail-on LIMIT     exit with status 4 when NEW passes LIMIT: METRIC:+N% or\n"
	"                      METRIC:+N, METRIC one of peak (heap peak), allocs,\n"
	"                      bytes (allocated), leaked (live at exit); N may end in\n"
	"                      K, M, G; repeat for several\n"
	"  -h, --help          show this help\n"
	"\n"
	"View options (applied to both traces):\n";

static const char usage_tail[] =
	"\n"
	"Exit status: 0 compared (no limit passed), 4 a limit was passed (stderr says\n"
	"which), 1 usage or I/O error, 2 a trace is not readable, 3 a trace ends in a\n"
	"torn block (the comparison covers the blocks before it).\n";

static int usage_error(const char *msg)
{
	if (msg)
		fprintf(stderr, "memtrace diff: %s\n", msg);
	fputs("Try 'memtrace diff --help'.\n", stderr);
	return MT_EXIT_USAGE;
}

static int write_diff(const json_t *d, enum mt_format fmt, size_t top, const char *path)
{
	FILE *out = path ? fopen(path, "w") : stdout;
	if (!out) {
		fprintf(stderr, "memtrace diff: %s: %s\n", path, strerror(errno));
		return -1;
	}
	int r = fmt == MT_FMT_JSON ? mt_json_write(d, out)
		: fmt == MT_FMT_HTML ? mt_render_diff_html(d, out)
				     : mt_render_diff_text(d, top, out);
	r |= path ? fclose(out) : fflush(out);
	if (r)
		fprintf(stderr, "memtrace diff: %s: write error\n", path ? path : "stdout");
	return r ? -1 : 0;
}

/* Says on stderr which limits were passed. */
static void say_limits(const json_t *d)
{
	const json_t *a = json_object_get(d, "fail_on");
	for (size_t i = 0; i < json_array_size(a); i++) {
		const json_t *l = json_array_get(a, i);
		if (!json_is_true(json_object_get(l, "exceeded")))
			continue;
		const json_t *pct = json_object_get(l, "percent");
		fprintf(stderr, "memtrace diff: %s grew by %lld",
			json_string_value(json_object_get(l, "metric")),
			(long long)json_integer_value(json_object_get(l, "delta")));
		if (json_is_number(pct))
			fprintf(stderr, " (%+.2f%%)", json_number_value(pct));
		fprintf(stderr, ", from %lld to %lld: over the limit %s\n",
			(long long)json_integer_value(json_object_get(l, "base")),
			(long long)json_integer_value(json_object_get(l, "new")),
			json_string_value(json_object_get(l, "limit")));
	}
}

/* The more severe of two exit codes (a passed limit above all). */
static int worse(int a, int b)
{
	static const int rank[] = { [MT_EXIT_OK] = 0,	     [MT_EXIT_TORN] = 1,
				    [MT_EXIT_BAD_TRACE] = 2, [MT_EXIT_USAGE] = 3,
				    [MT_EXIT_LIMIT] = 4 };
	return rank[b] > rank[a] ? b : a;
}

static int compare(char *const *paths, const struct mt_view *view, const struct mt_limit *limits,
		   size_t nlimits, enum mt_format fmt, const char *out)
{
	struct mt_report reps[2];
	int code = MT_EXIT_OK;
	for (int i = 0; i < 2; i++)
		code = worse(code, report_load(paths[i], view, &reps[i]));
	if (code == MT_EXIT_OK || code == MT_EXIT_TORN) {
		json_t *d = mt_diff_json(&reps[0], &reps[1], paths[0], paths[1], limits, nlimits);
		if (!d) {
			fputs("memtrace diff: out of memory\n", stderr);
			code = MT_EXIT_USAGE;
		} else if (write_diff(d, fmt, view->top ? view->top : 20, out)) {
			code = MT_EXIT_USAGE;
		} else if (mt_diff_failed(d)) {
			say_limits(d);
			code = MT_EXIT_LIMIT;
		}
		json_decref(d);
	}
	for (int i = 0; i < 2; i++)
		mt_report_free(&reps[i]);
	return code;
}

int cmd_diff(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "format", required_argument, NULL, 'f' },
		{ "output", required_argument, NULL, 'o' },
		{ "fail-on", required_argument, NULL, 'F' },
		{ "help", no_argument, NULL, 'h' },
		VIEW_LONG_OPTIONS,
		{ NULL, 0, NULL, 0 },
	};
	struct mt_view view;
	struct mt_limit limits[MAX_LIMITS];
	size_t nlimits = 0;
	enum mt_format fmt = MT_FMT_TEXT;
	const char *out = NULL;
	int c;
	argv[0] = (char *)"memtrace diff";
	mt_view_default(&view);
	view.no_lines = true; /* lines are not compared */
	while ((c = view_getopt(argc, argv, "f:o:h", opts, &view)) != -1) {
		switch (c) {
		case VIEW_BAD_ARG:
			return usage_error(NULL);
		case 'f':
			if (mt_format_parse(optarg, &fmt) || fmt > MT_FMT_HTML)
				return usage_error("--format takes text, json or html");
			break;
		case 'o':
			out = optarg;
			break;
		case 'F':
			if (nlimits == MAX_LIMITS)
				return usage_error("too many --fail-on limits");
			if (!mt_limit_parse(optarg, &limits[nlimits++]))
				return usage_error("--fail-on takes METRIC:+N% or METRIC:+N, METRIC "
						   "one of peak, allocs, bytes, leaked");
			break;
		case 'h':
			printf("%s%s%s%s", usage_head, view_usage_figures, view_usage_rows, usage_tail);
			return MT_EXIT_OK;
		default:
			return usage_error(NULL);
		}
	}
	if (view_check(argv[0], &view))
		return usage_error(NULL);
	if (argc - optind != 2)
		return usage_error("takes two traces: BASE NEW");
	return compare(argv + optind, &view, limits, nlimits, fmt, out);
}
