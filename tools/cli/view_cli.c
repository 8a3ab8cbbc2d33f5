/*
 * view_cli.c - the view options (view_cli.h).
 */
#include "view_cli.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char view_usage_figures[] =
	"  --from T, --to T    count only what happened from T to T: every figure is the\n"
	"                      window's (its own peak, the sites then, its temporaries;\n"
	"                      leaks: blocks it made and did not free); T is milliseconds\n"
	"                      since the start, or the label of a mark (--from: the first\n"
	"                      such mark; --to: the first after the window opened)\n"
	"  --domain D          count only blocks of domain D (malloc, pymem_raw,\n"
	"                      pymem_mem, pymem_obj; repeat, or D,D for several): the heap\n"
	"                      is then their live bytes\n"
	"  --thread TID        count only blocks thread TID allocated\n"
	"  --no-lines          leave out the main script's line-by-line view\n";

const char view_usage_rows[] =
	"  --sort KEY          rank sites by peak (bytes live at the heap peak, the\n"
	"                      default), allocs, bytes (allocated), leaked (live at exit)\n"
	"                      or temporary (temporary allocations)\n"
	"  --top N             N sites (default: 20 in text; JSON: all)\n"
	"  --by G              one row per line (default), function or file\n"
	"  --threshold BYTES   leave out sites whose sorted figure in bytes is smaller\n"
	"                      (allocs: bytes allocated; temporary: temporary bytes);\n"
	"                      BYTES may end in K, M, G (powers of 1024)\n"
	"  --inverted          flame graph and folded stacks with callees first\n"
	"  --folded-value V    what the flame graph counts: bytes (default), allocs, peak,\n"
	"                      leaked or temporary\n"
	"  --folded-lines      folded frames as \"function (file:line)\" rather than the\n"
	"                      function's name\n";

/* T: milliseconds (any non-negative number), else a mark's label. */
static int parse_bound(const char *arg, struct mt_bound *b)
{
	char *end;
	errno = 0;
	double ms = strtod(arg, &end);
	*b = (struct mt_bound){ .set = true };
	if (*arg && !*end && !errno && isfinite(ms) && ms >= 0 && ms < 1.8e16) {
		b->us = (uint64_t)llround(ms * 1000);
		return 0;
	}
	if (!*arg)
		return -1;
	b->mark = arg;
	return 0;
}

static int parse_domains(const char *arg, unsigned *domains)
{
	const char *p = arg;
	while (*p) {
		size_t n = strcspn(p, ",");
		int found = -1;
		for (int d = 0; d < MT_DOM_COUNT; d++)
			if (strlen(mt_domain_name(d)) == n && !strncmp(p, mt_domain_name(d), n))
				found = d;
		if (found < 0)
			return -1;
		*domains |= 1u << found;
		p += n + (p[n] == ',');
	}
	return *domains ? 0 : -1;
}

static int bad(const char *cmd, const char *what, const char *arg)
{
	fprintf(stderr, "%s: %s: '%s'\n", cmd, what, arg);
	return -1;
}

/* 1: opt was a view option and arg is good, 0: not a view option, -1: a
 * bad argument (said on stderr, prefixed with cmd). */
static int view_option(const char *cmd, int opt, const char *arg, struct mt_view *v)
{
	char *end;
	int k;
	switch (opt) {
	case OPT_SORT:
		if ((k = mt_sort_parse(arg)) < 0)
			return bad(cmd, "--sort takes peak, allocs, bytes, leaked or temporary", arg);
		v->sort = (enum mt_sort)k;
		return 1;
	case OPT_FOLDED_VALUE:
		if ((k = mt_sort_parse(arg)) < 0)
			return bad(cmd, "--folded-value takes bytes, allocs, peak, leaked or temporary",
				   arg);
		v->flame_value = (enum mt_sort)k;
		return 1;
	case OPT_BY:
		if ((k = mt_group_parse(arg)) < 0)
			return bad(cmd, "--by takes line, function or file", arg);
		v->by = (enum mt_group)k;
		return 1;
	case OPT_TOP:
		errno = 0;
		v->top = (size_t)strtoull(arg, &end, 10);
		if (errno || *end || !*arg || *arg == '-' || !v->top)
			return bad(cmd, "--top takes a number of rows, 1 or more", arg);
		return 1;
	case OPT_THREAD:
		errno = 0;
		v->thread = strtoull(arg, &end, 10);
		if (errno || *end || !*arg || *arg == '-')
			return bad(cmd, "--thread takes a thread id", arg);
		v->thread_set = true;
		return 1;
	case OPT_THRESHOLD:
		if (!mt_bytes_parse(arg, &v->threshold))
			return bad(cmd, "--threshold takes a byte count", arg);
		return 1;
	case OPT_DOMAIN:
		if (parse_domains(arg, &v->domains))
			return bad(cmd, "--domain takes malloc, pymem_raw, pymem_mem or pymem_obj", arg);
		return 1;
	case OPT_FROM:
	case OPT_TO:
		if (parse_bound(arg, opt == OPT_FROM ? &v->from : &v->to))
			return bad(cmd, "--from and --to take milliseconds or a mark's label", arg);
		return 1;
	case OPT_INVERTED:
		v->inverted = true;
		return 1;
	case OPT_FOLDED_LINES:
		v->folded_lines = true;
		return 1;
	case OPT_NO_LINES:
		v->no_lines = true;
		return 1;
	default:
		return 0;
	}
}

int view_getopt(int argc, char **argv, const char *shorts, const struct option *longs,
		struct mt_view *v)
{
	int c, r;
	while ((c = getopt_long(argc, argv, shorts, longs, NULL)) != -1)
		if ((r = view_option(argv[0], c, optarg, v)) <= 0)
			return r < 0 ? VIEW_BAD_ARG : c;
	return -1;
}

int view_check(const char *cmd, const struct mt_view *v)
{
	if (v->from.set && v->to.set && !v->from.mark && !v->to.mark && v->to.us <= v->from.us) {
		fprintf(stderr, "%s: --to must come after --from\n", cmd);
		return -1;
	}
	return 0;
}

int view_check_window(struct mt_report *rep)
{
	const struct mt_view *v = &rep->view;
	if (v->from.set && v->from.mark && !rep->window.opened) {
		snprintf(rep->error, sizeof rep->error, "no mark \"%.120s\" in the trace (--from)",
			 v->from.mark);
		return -1;
	}
	if (v->to.set && v->to.mark && rep->window.opened && !rep->window.closed) {
		snprintf(rep->error, sizeof rep->error,
			 "no mark \"%.120s\" after the window opened (--to)", v->to.mark);
		return -1;
	}
	return 0;
}

int mt_format_parse(const char *name, enum mt_format *fmt)
{
	static const char *const names[] = {
		[MT_FMT_TEXT] = "text",     [MT_FMT_JSON] = "json",   [MT_FMT_HTML] = "html",
		[MT_FMT_FOLDED] = "folded", [MT_FMT_PPROF] = "pprof", [MT_FMT_SPEEDSCOPE] = "speedscope",
	};
	for (size_t i = 0; i < sizeof names / sizeof *names; i++)
		if (!strcmp(name, names[i])) {
			*fmt = (enum mt_format)i;
			return 0;
		}
	return -1;
}
