/*
 * report_cmd.c - `memtrace report`: options, then trace file(s) -> report
 * on stdout or a file, with the diagnostics and exit codes of cli.h.
 * One trace of a run of several processes (or the run's name, or its
 * directory) gives the run's report (runtree.h, output_run.h); several
 * traces give each report and a combined summary.  While a large trace is
 * read, a progress bar goes to stderr if stderr is a terminal.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "export.h"
#include "output.h"
#include "output_run.h"
#include "render.h"
#include "report.h"
#include "runtree.h"
#include "view_cli.h"

static const char usage_head[] =
	"usage: memtrace report [--format text|json|html|folded|pprof|speedscope] [-o FILE]\n"
	"                       [--at peak|exit] [--profile] [--quiet] [--pid PID] [--exe NAME]\n"
	"                       [--all] [--trace-only] [view options] TRACE...\n"
	"\n"
	"Summarises the allocations recorded in TRACE: the heap peak, when, and the\n"
	"sites that held it; what was live at exit; temporaries; each allocator\n"
	"domain; in Python processes pymalloc's arenas, pools and size classes, list\n"
	"item buffers, the Python lines behind allocations and the marked steps.\n"
	"\n"
	"A TRACE of a run of several processes (or the run's name, or a directory\n"
	"holding it) reports the run: the process that did the work in full (the\n"
	"last program the command ran, or the busiest process when that one did\n"
	"little), then the rest of the process tree by executable.\n"
	"With several TRACEs each is reported, then a combined summary (text), or\n"
	"one {\"format\": \"memtrace-report-set\", \"reports\": [...]} object (json).\n"
	"\n"
	"  -f, --format FMT    text (default) or json\n"
	"                      html: one self-contained page with charts and a flame graph\n"
	"                      folded: the flame graph's stacks, \"frame;frame BYTES\" lines,\n"
	"                      for flamegraph.pl or speedscope\n"
	"                      pprof: a gzipped profile.proto for go tool pprof, Pyroscope,\n"
	"                      Parca...: alloc_objects, alloc_space, inuse_objects,\n"
	"                      inuse_space, labelled with domain and thread\n"
	"                      speedscope: speedscope's JSON file format, with profiles\n"
	"                      of bytes allocated, allocations and bytes live\n"
	"                      (html, folded, pprof and speedscope take one TRACE)\n"
	"  -o, --output FILE   write the report to FILE instead of stdout\n"
	"      --at WHEN       pprof and speedscope: \"in use\" means live at the heap\n"
	"                      peak (peak, the default) or at exit (exit)\n"
	"      --profile       json: add \"profile\", every site per thread with its stack\n"
	"                      and its figures over time (the HTML page's data); the\n"
	"                      lists of sites are then per thread too\n"
	"  -q, --quiet         no progress bar (there is none unless stderr is a terminal)\n"
	"  -i, --intro FILE    notes to put first in the report (paragraphs separated by\n"
	"                      blank lines; in HTML the first is the heading)\n"
	"  -p, --pid PID       a run's processes with this pid, in full\n"
	"  -e, --exe NAME      a run's processes whose executable's name matches NAME\n"
	"                      (a glob: 'python3*'), in full\n"
	"  -a, --all           every process of a run in full\n"
	"  -1, --trace-only    TRACE alone, not the run it belongs to\n"
	"  -h, --help          show this help\n"
	"\n"
	"What is counted:\n";

static const char usage_rows[] = "\nWhich sites are shown, and how:\n";

static const char usage_tail[] =
	"\n"
	"Exit status: 0 report written (also for a trace without footer, e.g. of a\n"
	"killed process), 1 usage or I/O error, 2 not a readable trace (foreign,\n"
	"newer format, corrupt), 3 the trace ends in a torn block (the report\n"
	"covers the blocks before it).  With several TRACEs: the most severe of\n"
	"theirs (1, then 2, then 3); unreadable ones are left out of the report.\n";

/* ---- progress ------------------------------------------------------------ */

/* Traces smaller than this read in well under a second: no bar. */
#define PROGRESS_MIN_BYTES (16u << 20)

struct progress {
	const char *name;
	uint64_t size;
	int shown; /* percent last drawn, -1: nothing drawn */
	struct timespec last;
};

static bool progress_wanted = true;

static void progress_draw(void *arg, uint64_t offset)
{
	struct progress *p = arg;
	struct timespec now;
	int pct = p->size ? (int)(offset * 100 / p->size) : 100;
	if (pct > 100)
		pct = 100;
	if (pct == p->shown)
		return;
	clock_gettime(CLOCK_MONOTONIC, &now);
	if (p->shown >= 0 && pct < 100 &&
	    (now.tv_sec - p->last.tv_sec) * 1000000000L + (now.tv_nsec - p->last.tv_nsec) <
		    100000000L)
		return;
	p->last = now;
	p->shown = pct;
	char bar[31];
	int fill = pct * 30 / 100;
	memset(bar, '#', (size_t)fill);
	memset(bar + fill, '.', (size_t)(30 - fill));
	bar[30] = 0;
	fprintf(stderr, "\rmemtrace: reading %s [%s] %3d%%", p->name, bar, pct);
	fflush(stderr);
}

static void progress_clear(struct progress *p)
{
	if (p->shown >= 0)
		fputs("\r\033[K", stderr);
	fflush(stderr);
}

/* --intro: notes put first in every rendering. */
static char *intro_text;
/* The view options. */
static struct mt_view view;

static int read_intro(const char *path)
{
	FILE *f = fopen(path, "r");
	static char buf[64 * 1024];
	size_t n = f ? fread(buf, 1, sizeof buf - 1, f) : 0;
	if (!f || ferror(f)) {
		fprintf(stderr, "memtrace report: --intro %s: %s\n", path, strerror(errno));
		if (f)
			fclose(f);
		return -1;
	}
	fclose(f);
	while (n && buf[n - 1] == '\n')
		n--;
	buf[n] = 0;
	intro_text = buf;
	return 0;
}

/* --profile: the JSON gets the HTML page's data (report.h's build flags). */
static bool profile_wanted;

/* --at: what the exports call in use. */
static enum mt_inuse_at inuse_at = MT_INUSE_PEAK;

static bool is_export(enum mt_format fmt)
{
	return fmt == MT_FMT_PPROF || fmt == MT_FMT_SPEEDSCOPE;
}

/* Builds the report of the trace in f (opened from path), with a progress
 * bar when it is worth one; for the exports, with a site per thread, and
 * for the HTML page (and --profile) with their figures over time too
 * (report.h). */
static enum mt_report_status build(FILE *f, const char *path, enum mt_format fmt,
				   const struct mt_view *v,
				   struct mt_report *rep)
{
	struct stat st;
	struct progress p = { path, 0, -1, { 0, 0 } };
	bool bar = progress_wanted && isatty(STDERR_FILENO) && fstat(fileno(f), &st) == 0 &&
		   S_ISREG(st.st_mode) && (uint64_t)st.st_size >= PROGRESS_MIN_BYTES;
	unsigned flags = is_export(fmt) ? MT_BUILD_PER_THREAD : 0;
	if (fmt == MT_FMT_HTML || (fmt == MT_FMT_JSON && profile_wanted))
		flags = MT_BUILD_PER_THREAD | MT_BUILD_TIME_GRID;
	enum mt_report_status r;
	if (bar) {
		p.size = (uint64_t)st.st_size;
		r = mt_report_build_flags(f, rep, v, flags, progress_draw, &p);
		progress_clear(&p);
	} else {
		r = mt_report_build_flags(f, rep, v, flags, NULL, NULL);
	}
	if ((r == MT_REPORT_OK || r == MT_REPORT_TORN) && view_check_window(rep))
		r = MT_REPORT_FAILED;
	rep->intro = intro_text;
	return r;
}

static int usage_error(const char *msg)
{
	if (msg)
		fprintf(stderr, "memtrace report: %s\n", msg);
	fputs("Try 'memtrace report --help'.\n", stderr);
	return MT_EXIT_USAGE;
}

static int write_report(const struct mt_report *rep, enum mt_format fmt, const char *trace,
			const char *out_path)
{
	FILE *out = out_path ? fopen(out_path, "w") : stdout;
	if (!out) {
		fprintf(stderr, "memtrace: %s: %s\n", out_path, strerror(errno));
		return -1;
	}
	struct mt_export_opts eo = { inuse_at, "memtrace@" MEMTRACE_VERSION, trace };
	int r;
	switch (fmt) {
	case MT_FMT_HTML:
		r = mt_output_html(rep, trace, out);
		break;
	case MT_FMT_FOLDED:
		r = mt_output_folded(rep, out);
		break;
	case MT_FMT_PPROF:
		r = mt_export_pprof(rep, &eo, out);
		break;
	case MT_FMT_SPEEDSCOPE:
		r = mt_export_speedscope(rep, &eo, out);
		break;
	case MT_FMT_JSON:
		r = mt_output_json(rep, out);
		break;
	default:
		r = mt_output_text(rep, trace, out);
		break;
	}
	r |= out_path ? fclose(out) : fflush(out);
	if (r)
		fprintf(stderr, "memtrace: %s: write error\n", out_path ? out_path : "stdout");
	return r ? -1 : 0;
}

/* Says on stderr what the reader ran into; returns the exit code. */
static int diagnose(const char *path, enum mt_report_status st, const struct mt_report *rep)
{
	switch (st) {
	case MT_REPORT_OK:
		if (!rep->trace.complete)
			fprintf(stderr,
				"memtrace: %s: note: no footer, the process did not finish "
				"(killed?); reporting what was recorded\n",
				path);
		return MT_EXIT_OK;
	case MT_REPORT_TORN:
		fprintf(stderr,
			"memtrace: %s: warning: %s; the report covers the complete blocks "
			"before it\n",
			path, rep->error);
		return MT_EXIT_TORN;
	case MT_REPORT_BAD_TRACE:
		fprintf(stderr, "memtrace: %s: %s\n", path, rep->error);
		return MT_EXIT_BAD_TRACE;
	default:
		fprintf(stderr, "memtrace: %s: %s\n", path, rep->error);
		return MT_EXIT_USAGE;
	}
}

static FILE *open_trace(const char *path)
{
	struct stat st_buf;
	FILE *f = fopen(path, "rb");
	if (f && fstat(fileno(f), &st_buf) == 0 && S_ISDIR(st_buf.st_mode)) {
		fclose(f);
		f = NULL;
		errno = EISDIR;
	}
	if (!f)
		fprintf(stderr, "memtrace: %s: %s\n", path, strerror(errno));
	return f;
}

int report_trace(const char *path, enum mt_format fmt, const char *out_path)
{
	struct mt_report rep;
	FILE *f = open_trace(path);
	if (!f)
		return MT_EXIT_USAGE;
	enum mt_report_status st = build(f, path, fmt, &view, &rep);
	fclose(f);
	int code = MT_EXIT_OK;
	if ((st == MT_REPORT_OK || st == MT_REPORT_TORN) &&
	    write_report(&rep, fmt, path, out_path))
		code = MT_EXIT_USAGE;
	if (code == MT_EXIT_OK)
		code = diagnose(path, st, &rep);
	mt_report_free(&rep);
	return code;
}

int report_load(const char *path, const struct mt_view *v, struct mt_report *rep)
{
	FILE *f = open_trace(path);
	if (!f) {
		memset(rep, 0, sizeof *rep);
		return MT_EXIT_USAGE;
	}
	enum mt_report_status st = build(f, path, MT_FMT_TEXT, v, rep);
	fclose(f);
	return diagnose(path, st, rep);
}

/* Exit codes from most to least severe. */
static int worse(int a, int b)
{
	static const int rank[] = { [MT_EXIT_OK] = 0, [MT_EXIT_TORN] = 1,
				    [MT_EXIT_BAD_TRACE] = 2, [MT_EXIT_USAGE] = 3 };
	return rank[b] > rank[a] ? b : a;
}

static int write_set(const struct mt_report *const *reps, const char *const *names, size_t n,
		     enum mt_format fmt, const char *out_path)
{
	FILE *out = out_path ? fopen(out_path, "w") : stdout;
	if (!out) {
		fprintf(stderr, "memtrace: %s: %s\n", out_path, strerror(errno));
		return -1;
	}
	int r = fmt == MT_FMT_JSON ? mt_output_json_set(reps, names, n, out)
				   : mt_output_text_set(reps, names, n, out);
	r |= out_path ? fclose(out) : fflush(out);
	if (r)
		fprintf(stderr, "memtrace: %s: write error\n", out_path ? out_path : "stdout");
	return r ? -1 : 0;
}

/* Several traces: the reports of those that could be read, together. */
int report_traces(char *const *paths, size_t n, enum mt_format fmt, const char *out_path)
{
	struct mt_report *reps = calloc(n, sizeof *reps);
	const struct mt_report **ok = calloc(n, sizeof *ok);
	const char **names = calloc(n, sizeof *names);
	enum mt_report_status *st = calloc(n, sizeof *st);
	size_t nok = 0;
	int code = MT_EXIT_OK;
	if (!reps || !ok || !names || !st) {
		fputs("memtrace: out of memory\n", stderr);
		code = MT_EXIT_USAGE;
		n = 0;
	}
	for (size_t i = 0; i < n; i++) {
		FILE *f = open_trace(paths[i]);
		st[i] = MT_REPORT_FAILED;
		if (!f) {
			code = worse(code, MT_EXIT_USAGE);
			continue;
		}
		st[i] = build(f, paths[i], fmt, &view, &reps[i]);
		fclose(f);
		if (st[i] == MT_REPORT_OK || st[i] == MT_REPORT_TORN) {
			ok[nok] = &reps[i];
			names[nok++] = paths[i];
		}
	}
	if (nok && write_set(ok, names, nok, fmt, out_path))
		code = MT_EXIT_USAGE;
	for (size_t i = 0; i < n; i++) {
		if (code != MT_EXIT_USAGE || st[i] != MT_REPORT_FAILED)
			code = worse(code, diagnose(paths[i], st[i], &reps[i]));
		mt_report_free(&reps[i]);
	}
	free(reps);
	free(ok);
	free(names);
	free(st);
	return code;
}

/* ---- a run ------------------------------------------------------------- */

static bool selects(const struct mt_run_select *sel)
{
	return sel->all || sel->pid >= 0 || sel->exe;
}

static int write_run(const struct mt_run *run, enum mt_format fmt, const char *out_path)
{
	FILE *out = out_path ? fopen(out_path, "w") : stdout;
	if (!out) {
		fprintf(stderr, "memtrace: %s: %s\n", out_path, strerror(errno));
		return -1;
	}
	int r = fmt == MT_FMT_JSON ? mt_output_run_json(run, out) : mt_output_run_text(run, out);
	r |= out_path ? fclose(out) : fflush(out);
	if (r)
		fprintf(stderr, "memtrace: %s: write error\n", out_path ? out_path : "stdout");
	return r ? -1 : 0;
}

/* The other formats show one process: the lead, or the one selected. */
static int write_one_of_run(const struct mt_run *run, enum mt_format fmt, const char *out_path)
{
	const struct mt_run_proc *one = NULL;
	for (size_t i = 0; i < run->n; i++) {
		if (!run->procs[i].chosen)
			continue;
		if (one) {
			fputs("memtrace report: --format html, folded, pprof and speedscope show one "
			      "process: pick it with --pid or --exe\n", stderr);
			return -1;
		}
		one = &run->procs[i];
	}
	return one ? write_report(one->report, fmt, one->path, out_path) : -1;
}

static enum mt_report_status build_for_run(FILE *f, const char *path, struct mt_report *rep,
					   void *fmt)
{
	return build(f, path, *(enum mt_format *)fmt, &view, rep);
}

/* The run of arg; a trace that is alone in its run gets its own report. */
static int report_run(const char *arg, const struct mt_run_select *sel, enum mt_format fmt,
		      const char *out_path)
{
	struct mt_run run;
	struct stat st;
	char err[300];
	if (mt_run_find(arg, &run, err, sizeof err)) {
		if (stat(arg, &st) == 0 && !S_ISDIR(st.st_mode))
			return report_trace(arg, fmt, out_path); /* says what is wrong with it */
		fprintf(stderr, "memtrace: %s\n", err);
		return MT_EXIT_USAGE;
	}
	if (run.n == 1 && !selects(sel)) {
		int code = report_trace(run.procs[0].path, fmt, out_path);
		mt_run_free(&run);
		return code;
	}
	int code = MT_EXIT_OK;
	if (mt_run_load(&run, sel, build_for_run, &fmt, err, sizeof err)) {
		fprintf(stderr, "memtrace report: %s\n", err);
		code = MT_EXIT_USAGE;
	} else if (fmt == MT_FMT_TEXT || fmt == MT_FMT_JSON ? write_run(&run, fmt, out_path)
							    : write_one_of_run(&run, fmt, out_path)) {
		code = MT_EXIT_USAGE;
	}
	for (size_t i = 0; code == MT_EXIT_OK && i < run.n; i++)
		if (run.procs[i].chosen)
			code = worse(code, diagnose(run.procs[i].path, run.procs[i].status,
						    run.procs[i].report));
	mt_run_free(&run);
	return code;
}

int report_run_of(const char *arg)
{
	struct mt_run_select sel = { .pid = -1 };
	mt_view_default(&view);
	return report_run(arg, &sel, MT_FMT_TEXT, NULL);
}

/* Long options without a short one. */
enum { OPT_AT = OPT_NO_LINES + 1, OPT_PROFILE };

int cmd_report(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "format", required_argument, NULL, 'f' },
		{ "output", required_argument, NULL, 'o' },
		{ "quiet", no_argument, NULL, 'q' },
		{ "intro", required_argument, NULL, 'i' },
		{ "at", required_argument, NULL, OPT_AT },
		{ "profile", no_argument, NULL, OPT_PROFILE },
		{ "pid", required_argument, NULL, 'p' },
		{ "exe", required_argument, NULL, 'e' },
		{ "all", no_argument, NULL, 'a' },
		{ "trace-only", no_argument, NULL, '1' },
		{ "help", no_argument, NULL, 'h' },
		VIEW_LONG_OPTIONS,
		{ NULL, 0, NULL, 0 },
	};
	enum mt_format fmt = MT_FMT_TEXT;
	struct mt_run_select sel = { .pid = -1 };
	bool trace_only = false;
	const char *out = NULL;
	char *end;
	int c;
	argv[0] = (char *)"memtrace report"; /* getopt prefixes its messages with it */
	mt_view_default(&view);
	while ((c = view_getopt(argc, argv, "f:o:qhi:p:e:a1", opts, &view)) != -1) {
		switch (c) {
		case VIEW_BAD_ARG:
			return usage_error(NULL);
		case 'p':
			errno = 0;
			sel.pid = strtol(optarg, &end, 10);
			if (errno || end == optarg || *end || sel.pid < 0)
				return usage_error("--pid takes a process id");
			break;
		case 'e':
			sel.exe = optarg;
			break;
		case 'a':
			sel.all = true;
			break;
		case '1':
			trace_only = true;
			break;
		case 'i':
			if (read_intro(optarg))
				return MT_EXIT_USAGE;
			break;
		case 'f':
			if (mt_format_parse(optarg, &fmt))
				return usage_error("--format takes text, json, html, folded, pprof "
						   "or speedscope");
			break;
		case OPT_AT:
			if (strcmp(optarg, "peak") && strcmp(optarg, "exit"))
				return usage_error("--at takes peak or exit");
			inuse_at = strcmp(optarg, "exit") ? MT_INUSE_PEAK : MT_INUSE_EXIT;
			break;
		case 'o':
			out = optarg;
			break;
		case OPT_PROFILE:
			profile_wanted = true;
			break;
		case 'q':
			progress_wanted = false;
			break;
		case 'h':
			printf("%s%s%s%s%s", usage_head, view_usage_figures, usage_rows,
			       view_usage_rows, usage_tail);
			return MT_EXIT_OK;
		default:
			return usage_error(NULL);
		}
	}
	if (view_check(argv[0], &view))
		return usage_error(NULL);
	if (optind == argc)
		return usage_error("missing TRACE");
	if (fmt == MT_FMT_PPROF && !out && isatty(STDOUT_FILENO))
		return usage_error("--format pprof writes gzip data, not for a terminal: "
				   "use -o FILE");
	if (trace_only && selects(&sel))
		return usage_error("--trace-only reports one trace: no --pid, --exe or --all");
	if (optind == argc - 1)
		return trace_only ? report_trace(argv[optind], fmt, out)
				  : report_run(argv[optind], &sel, fmt, out);
	if (selects(&sel))
		return usage_error("--pid, --exe and --all pick from the run of one TRACE");
	if (fmt != MT_FMT_TEXT && fmt != MT_FMT_JSON)
		return usage_error("--format html, folded, pprof and speedscope take one TRACE");
	return report_traces(argv + optind, (size_t)(argc - optind), fmt, out);
}
