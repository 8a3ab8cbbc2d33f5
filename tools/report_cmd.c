/*
 * report_cmd.c - `memtrace report`: options, then trace file -> report on
 * stdout or a file, with the diagnostics and exit codes of cli.h.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"
#include "output.h"
#include "report.h"

static const char usage[] =
	"usage: memtrace report [--format text|json] [-o FILE] TRACE\n"
	"\n"
	"Summarises the allocator calls recorded in TRACE: calls, failures, bytes,\n"
	"peak and live heap at exit, for each allocator domain.\n"
	"\n"
	"  -f, --format FMT    text (default) or json\n"
	"  -o, --output FILE   write the report to FILE instead of stdout\n"
	"  -h, --help          show this help\n"
	"\n"
	"Exit status: 0 report written (also for a trace without footer, e.g. of a\n"
	"killed process), 1 usage or I/O error, 2 not a readable trace (foreign,\n"
	"newer format, corrupt), 3 the trace ends in a torn block (the report\n"
	"covers the blocks before it).\n";

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
	int r = fmt == MT_FMT_JSON ? mt_output_json(rep, out) : mt_output_text(rep, trace, out);
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

int report_trace(const char *path, enum mt_format fmt, const char *out_path)
{
	struct mt_report rep;
	struct stat st_buf;
	FILE *f = fopen(path, "rb");
	if (f && fstat(fileno(f), &st_buf) == 0 && S_ISDIR(st_buf.st_mode)) {
		fclose(f);
		f = NULL;
		errno = EISDIR;
	}
	if (!f) {
		fprintf(stderr, "memtrace: %s: %s\n", path, strerror(errno));
		return MT_EXIT_USAGE;
	}
	enum mt_report_status st = mt_report_build(f, &rep);
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

int cmd_report(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "format", required_argument, NULL, 'f' },
		{ "output", required_argument, NULL, 'o' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	enum mt_format fmt = MT_FMT_TEXT;
	const char *out = NULL;
	int c;
	argv[0] = (char *)"memtrace report"; /* getopt prefixes its messages with it */
	while ((c = getopt_long(argc, argv, "f:o:h", opts, NULL)) != -1) {
		switch (c) {
		case 'f':
			if (strcmp(optarg, "text") && strcmp(optarg, "json"))
				return usage_error("--format takes text or json");
			fmt = strcmp(optarg, "json") ? MT_FMT_TEXT : MT_FMT_JSON;
			break;
		case 'o':
			out = optarg;
			break;
		case 'h':
			fputs(usage, stdout);
			return MT_EXIT_OK;
		default:
			return usage_error(NULL);
		}
	}
	if (optind != argc - 1)
		return usage_error(optind == argc ? "missing TRACE" : "more than one TRACE");
	return report_trace(argv[optind], fmt, out);
}
