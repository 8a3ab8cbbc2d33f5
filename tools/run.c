/*
 * run.c - `memtrace run`: runs a command with libmemtrace.so preloaded (and
 * the tracer's settings its options name), prints the report of the trace
 * it leaves, and exits with the command's status so that memtrace can stand
 * in for the command in scripts.
 */
#define _GNU_SOURCE /* asprintf, pipe2 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"

static const char usage[] =
	"usage: memtrace run [-o TRACE] [--native] [--py-depth N] [--quiet] -- CMD [ARGS...]\n"
	"\n"
	"Runs CMD with the allocation tracer (libmemtrace.so) preloaded, then prints\n"
	"the report of its trace.  The exit status is CMD's (128+N if signal N\n"
	"killed it; 127 if CMD was not found, 126 if it could not be run), or 1\n"
	"for a usage error or a missing library.\n"
	"\n"
	"  -o, --output TRACE  write the trace to TRACE (default memtrace.PID.trace)\n"
	"  -n, --native        record native stacks too (sets MEMTRACE_NATIVE=1)\n"
	"  -d, --py-depth N    Python frames kept per allocation, 0 to 128 (sets\n"
	"                      MEMTRACE_PY_DEPTH; default 1, 0: no Python lines)\n"
	"  -q, --quiet         print no report and no tracer messages, only errors\n"
	"  -h, --help          show this help\n"
	"\n"
	"The library is looked for next to the memtrace executable; MEMTRACE_LIB\n"
	"overrides that.\n";

struct run_opts {
	const char *output;
	const char *py_depth; /* NULL: the tracer's default */
	bool quiet, native;
	char **cmd;
};

static int usage_error(const char *msg)
{
	if (msg)
		fprintf(stderr, "memtrace run: %s\n", msg);
	fputs("Try 'memtrace run --help'.\n", stderr);
	return MT_EXIT_USAGE;
}

#define RUN_IT (-1)

/* RUN_IT, or the exit code to return at once. */
static int parse(int argc, char **argv, struct run_opts *o)
{
	static const struct option opts[] = {
		{ "output", required_argument, NULL, 'o' },
		{ "native", no_argument, NULL, 'n' },
		{ "py-depth", required_argument, NULL, 'd' },
		{ "quiet", no_argument, NULL, 'q' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int c;
	char *end;
	long depth;
	argv[0] = (char *)"memtrace run"; /* getopt prefixes its messages with it */
	/* '+': options end at CMD, whose own options are not ours. */
	while ((c = getopt_long(argc, argv, "+o:nd:qh", opts, NULL)) != -1) {
		switch (c) {
		case 'o':
			o->output = optarg;
			break;
		case 'n':
			o->native = true;
			break;
		case 'd':
			errno = 0;
			depth = strtol(optarg, &end, 10);
			if (errno || end == optarg || *end || depth < 0 || depth > 128)
				return usage_error("--py-depth takes a number from 0 to 128");
			o->py_depth = optarg;
			break;
		case 'q':
			o->quiet = true;
			break;
		case 'h':
			fputs(usage, stdout);
			return MT_EXIT_OK;
		default:
			return usage_error(NULL);
		}
	}
	if (optind == argc)
		return usage_error("missing CMD");
	o->cmd = argv + optind;
	return RUN_IT;
}

/* The library next to this executable, unless MEMTRACE_LIB names one. */
static int find_library(char lib[PATH_MAX])
{
	static const char name[] = "/libmemtrace.so";
	const char *env = getenv("MEMTRACE_LIB");
	if (env && *env) {
		if (realpath(env, lib))
			return 0;
		fprintf(stderr, "memtrace: MEMTRACE_LIB=%s: %s\n", env, strerror(errno));
		return -1;
	}
	ssize_t n = readlink("/proc/self/exe", lib, PATH_MAX - sizeof name);
	if (n < 0) {
		fprintf(stderr, "memtrace: /proc/self/exe: %s\n", strerror(errno));
		return -1;
	}
	lib[n] = 0;
	strcpy(strrchr(lib, '/'), name);
	if (access(lib, R_OK) == 0)
		return 0;
	fprintf(stderr, "memtrace: %s: %s (set MEMTRACE_LIB to the library)\n", lib,
		strerror(errno));
	return -1;
}

/* The MEMTRACE_OUTPUT template, made absolute so that the tracer writes
 * where we read even if CMD changes directory.  It may hold %p. */
static void trace_template(char buf[PATH_MAX], const char *cwd, const char *output,
			   pid_t pid)
{
	char name[64];
	if (!output) {
		snprintf(name, sizeof name, "memtrace.%ld.trace", (long)pid);
		output = name;
	}
	if (output[0] == '/')
		snprintf(buf, PATH_MAX, "%s", output);
	else
		snprintf(buf, PATH_MAX, "%s/%s", cwd, output);
}

/* The file the tracer of process pid creates: %p expanded as it does. */
static void trace_file(char buf[PATH_MAX], const char *tmpl, pid_t pid)
{
	size_t n = 0;
	for (const char *s = tmpl; *s && n < PATH_MAX - 1; s++) {
		if (s[0] == '%' && s[1] == 'p') {
			n += (size_t)snprintf(buf + n, PATH_MAX - n, "%ld", (long)pid);
			s++;
		} else {
			buf[n++] = *s;
		}
	}
	buf[n < PATH_MAX ? n : PATH_MAX - 1] = 0;
}

/* The tracer never writes over a file (it picks NAME.1.trace instead), but
 * asking for -o FILE means replacing FILE.  Devices and directories stay. */
static int remove_old_trace(const char *path)
{
	struct stat st;
	if (lstat(path, &st) || !(S_ISREG(st.st_mode) || S_ISLNK(st.st_mode)))
		return 0;
	return unlink(path);
}

/* Why the child did not get to run CMD, sent back over a close-on-exec pipe. */
struct child_failure {
	int replacing; /* the old trace could not be removed; else exec failed */
	int err;
};

struct child {
	const char *lib, *cwd, *output, *py_depth;
	bool quiet; /* the tracer's own messages too */
	bool native;
	char **cmd;
	int errfd;
	struct sigaction old_int, old_quit;
};

static int set_child_env(const struct child *c, const char *tmpl)
{
	const char *pre = getenv("LD_PRELOAD");
	char *preload;
	if (asprintf(&preload, "%s%s%s", c->lib, pre && *pre ? ":" : "", pre ? pre : "") < 0)
		return -1;
	int r = setenv("LD_PRELOAD", preload, 1) || setenv("MEMTRACE_OUTPUT", tmpl, 1) ||
		(c->quiet && setenv("MEMTRACE_QUIET", "1", 1)) ||
		(c->native && setenv("MEMTRACE_NATIVE", "1", 1)) ||
		(c->py_depth && setenv("MEMTRACE_PY_DEPTH", c->py_depth, 1));
	free(preload);
	return r ? -1 : 0;
}

static void exec_child(const struct child *c)
{
	char tmpl[PATH_MAX], trace[PATH_MAX];
	struct child_failure f = { 0 };
	sigaction(SIGINT, &c->old_int, NULL);
	sigaction(SIGQUIT, &c->old_quit, NULL);
	trace_template(tmpl, c->cwd, c->output, getpid());
	trace_file(trace, tmpl, getpid());
	if (remove_old_trace(trace))
		f.replacing = 1;
	else if (set_child_env(c, tmpl) == 0)
		execvp(c->cmd[0], c->cmd);
	f.err = errno;
	if (write(c->errfd, &f, sizeof f) < 0)
		_exit(127);
	_exit(f.err == ENOENT ? 127 : 126);
}

static int exit_code(int status)
{
	return WIFSIGNALED(status) ? 128 + WTERMSIG(status) : WEXITSTATUS(status);
}

static void say_failure(const struct child *c, const struct child_failure *f, pid_t pid)
{
	char tmpl[PATH_MAX], trace[PATH_MAX];
	if (!f->replacing) {
		fprintf(stderr, "memtrace: %s: %s\n", c->cmd[0], strerror(f->err));
		return;
	}
	trace_template(tmpl, c->cwd, c->output, pid);
	trace_file(trace, tmpl, pid);
	fprintf(stderr, "memtrace: cannot replace %s: %s\n", trace, strerror(f->err));
}

/* Runs the child to its end.  *code gets the exit code to pass on; false
 * when the command could not be started (said on stderr). */
static bool run_child(struct child *c, pid_t *pid, int *code)
{
	struct sigaction ign = { .sa_handler = SIG_IGN };
	struct child_failure f;
	int pfd[2], status;
	*code = MT_EXIT_USAGE;
	if (pipe2(pfd, O_CLOEXEC)) {
		fprintf(stderr, "memtrace: pipe: %s\n", strerror(errno));
		return false;
	}
	/* Like system(): ^C goes to the command, and we live on to report. */
	sigaction(SIGINT, &ign, &c->old_int);
	sigaction(SIGQUIT, &ign, &c->old_quit);
	c->errfd = pfd[1];
	*pid = fork();
	if (*pid == 0)
		exec_child(c);
	int fork_err = errno;
	close(pfd[1]);
	ssize_t n = *pid < 0 ? 0 : read(pfd[0], &f, sizeof f);
	close(pfd[0]);
	while (*pid > 0 && waitpid(*pid, &status, 0) < 0 && errno == EINTR)
		;
	sigaction(SIGINT, &c->old_int, NULL);
	sigaction(SIGQUIT, &c->old_quit, NULL);
	if (*pid < 0) {
		fprintf(stderr, "memtrace: fork: %s\n", strerror(fork_err));
		return false;
	}
	if (n != sizeof f) {
		*code = exit_code(status);
		return true;
	}
	say_failure(c, &f, *pid);
	*code = f.replacing ? MT_EXIT_USAGE : exit_code(status);
	return false;
}

static bool older(const struct timespec *a, const struct timespec *b)
{
	return a->tv_sec < b->tv_sec || (a->tv_sec == b->tv_sec && a->tv_nsec < b->tv_nsec);
}

/* Forked children and exec'd programs trace into the first free one of
 * NAME.1.trace, NAME.2.trace... (the tracer never overwrites a file).  The
 * report covers only the command's first program, so point at the ones this
 * run wrote; older ones may sit among them. */
static void note_more_traces(const char *trace, const struct timespec *start)
{
	static const char ext[] = ".trace";
	char path[PATH_MAX], first[PATH_MAX], last[PATH_MAX];
	size_t len = strlen(trace), ext_len = sizeof ext - 1;
	struct stat st;
	int fresh = 0;
	if (len <= ext_len || strcmp(trace + len - ext_len, ext))
		ext_len = 0;
	int base = (int)(len - ext_len);
	for (int i = 1;; i++) {
		snprintf(path, sizeof path, "%.*s.%d%s", base, trace, i, trace + base);
		if (stat(path, &st))
			break;
		if (older(&st.st_mtim, start))
			continue;
		memcpy(fresh++ ? last : first, path, sizeof path);
	}
	if (fresh == 1)
		fprintf(stderr, "memtrace: note: a forked or exec'd process left %s\n", first);
	else if (fresh > 1)
		fprintf(stderr,
			"memtrace: note: forked or exec'd processes left %d more traces, "
			"%s to %s\n",
			fresh, first, last);
}

int cmd_run(int argc, char **argv)
{
	struct run_opts o = { 0 };
	char lib[PATH_MAX], cwd[PATH_MAX], tmpl[PATH_MAX], trace[PATH_MAX];
	pid_t pid;
	int code = parse(argc, argv, &o);
	if (code != RUN_IT)
		return code;
	if (find_library(lib))
		return MT_EXIT_USAGE;
	if (!getcwd(cwd, sizeof cwd)) {
		fprintf(stderr, "memtrace: getcwd: %s\n", strerror(errno));
		return MT_EXIT_USAGE;
	}
	struct child c = { .lib = lib, .cwd = cwd, .output = o.output, .py_depth = o.py_depth,
			   .quiet = o.quiet, .native = o.native, .cmd = o.cmd };
	struct timespec start;
	/* Coarse, like file times: a file written after this is not older. */
	clock_gettime(CLOCK_REALTIME_COARSE, &start);
	if (!run_child(&c, &pid, &code))
		return code;
	trace_template(tmpl, cwd, o.output, pid);
	trace_file(trace, tmpl, pid);
	if (access(trace, F_OK)) {
		fprintf(stderr, "memtrace: no trace was written to %s (tracer disabled?)\n", trace);
		return code;
	}
	if (!o.quiet) {
		report_trace(trace, MT_FMT_TEXT, NULL);
		note_more_traces(trace, &start);
	}
	return code;
}
