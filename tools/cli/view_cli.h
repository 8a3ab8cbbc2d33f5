/*
 * view_cli.h - the options that choose a report's view (struct mt_view),
 * shared by `memtrace report` and `memtrace diff`: parsing, checking and
 * their help text.
 */
#ifndef MEMTRACE_VIEW_CLI_H
#define MEMTRACE_VIEW_CLI_H

#include <getopt.h>
#include <stdbool.h>
#include <stdint.h>

#include "cli.h"
#include "report.h"

enum view_opt {
	OPT_SORT = 256,
	OPT_TOP,
	OPT_BY,
	OPT_FROM,
	OPT_TO,
	OPT_DOMAIN,
	OPT_THREAD,
	OPT_THRESHOLD,
	OPT_INVERTED,
	OPT_FOLDED_LINES,
	OPT_FOLDED_VALUE,
	OPT_NO_LINES,
};

/* The getopt_long entries of the view options. */
#define VIEW_LONG_OPTIONS                                                   \
	{ "sort", required_argument, NULL, OPT_SORT },                      \
	{ "top", required_argument, NULL, OPT_TOP },                        \
	{ "by", required_argument, NULL, OPT_BY },                          \
	{ "from", required_argument, NULL, OPT_FROM },                      \
	{ "to", required_argument, NULL, OPT_TO },                          \
	{ "domain", required_argument, NULL, OPT_DOMAIN },                  \
	{ "thread", required_argument, NULL, OPT_THREAD },                  \
	{ "threshold", required_argument, NULL, OPT_THRESHOLD },            \
	{ "inverted", no_argument, NULL, OPT_INVERTED },                    \
	{ "folded-lines", no_argument, NULL, OPT_FOLDED_LINES },            \
	{ "folded-value", required_argument, NULL, OPT_FOLDED_VALUE },      \
	{ "no-lines", no_argument, NULL, OPT_NO_LINES }

/* The help of the options that change the figures (window, filters) and
 * of those that choose the rows. */
extern const char view_usage_figures[];
extern const char view_usage_rows[];

/* getopt_long for a command with the view options in longs: takes those
 * into *v and returns the next other option, -1 at the end, or
 * VIEW_BAD_ARG after a bad argument of a view option (said on stderr,
 * prefixed with argv[0]). */
#define VIEW_BAD_ARG (-2)
int view_getopt(int argc, char **argv, const char *shorts, const struct option *longs,
		struct mt_view *v);
/* The format named by --format's argument; -1 for none. */
int mt_format_parse(const char *name, enum mt_format *fmt);
/* What no single option can check; -1: said on stderr. */
int view_check(const char *cmd, const struct mt_view *v);

/* After a build: a window bound at a mark the trace did not have; -1 when
 * so, with rep->error saying which. */
int view_check_window(struct mt_report *rep);

#endif
