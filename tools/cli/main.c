/*
 * main.c - the memtrace command: picks the subcommand and prints the
 * top-level help.  Each subcommand parses its own options.
 */
#include <stdio.h>
#include <string.h>

#include "cli.h"

static const char usage[] =
	"usage: memtrace run [-o TRACE] [--native] [--py-depth N] [--follow all|exec|none]\n"
	"                    [--only NAME[,NAME...]] [--quiet] -- CMD [ARGS...]\n"
	"       memtrace run [OPTIONS] SCRIPT.py [ARGS...]\n"
	"       memtrace report [--format text|json|html|folded|pprof|speedscope] [-o FILE]\n"
	"                       [--at peak|exit] [--quiet] [--pid PID] [--exe NAME] [--all]\n"
	"                       [--trace-only] [view options] TRACE...\n"
	"       memtrace diff [--format text|json|html] [--fail-on LIMIT] BASE NEW\n"
	"       memtrace --version\n"
	"\n"
	"  run      run CMD with the allocation tracer preloaded, then report\n"
	"  report   summarise trace files\n"
	"  diff     compare two traces\n"
	"\n"
	"'memtrace SUBCOMMAND --help' describes a subcommand.\n";

int main(int argc, char **argv)
{
	const char *sub = argc > 1 ? argv[1] : NULL;
	if (sub && !strcmp(sub, "report"))
		return cmd_report(argc - 1, argv + 1);
	if (sub && !strcmp(sub, "run"))
		return cmd_run(argc - 1, argv + 1);
	if (sub && !strcmp(sub, "diff"))
		return cmd_diff(argc - 1, argv + 1);
	if (sub && (!strcmp(sub, "--help") || !strcmp(sub, "-h") || !strcmp(sub, "help"))) {
		fputs(usage, stdout);
		return MT_EXIT_OK;
	}
	if (sub && !strcmp(sub, "--version")) {
		printf("memtrace %s\n", MEMTRACE_VERSION);
		return MT_EXIT_OK;
	}
	if (sub)
		fprintf(stderr, "memtrace: unknown subcommand '%s'\n", sub);
	fputs(usage, stderr);
	return MT_EXIT_USAGE;
}
