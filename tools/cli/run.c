/*
 * run.c - `memtrace run`: runs a command with libmemtrace.so preloaded (and
 * the tracer's settings its options name) as the top of a new run, prints
 * the run's report and one line about it, and exits with the command's
 * status so that memtrace can stand in for the command in scripts.
 *
 * It registers the run (common/runreg.h) before the command starts, as the
 * run's launcher: the traced processes then say nothing on stderr, and
 * the first error one of them meets comes back here to be said once.
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
#include "runreg.h"

static const char usage[] =
	"usage: memtrace run [-o TRACE] [--native] [--py-depth N] [--follow all|exec|none]\n"
	"                    [--only NAME[,NAME...]] [--quiet] -- CMD [ARGS...]\n"
	"       memtrace run [OPTIONS] SCRIPT.py [ARGS...]\n"
	"\n"
	"Runs CMD with the allocation tracer (libmemtrace.so) preloaded, then prints\n"
	"the report of its run: the process that did the work in full, then the rest\n"
	"of the processes CMD started (a shell's helpers, make's recipes, ...).  A\n"
	"SCRIPT.py runs with the python3 on PATH.  The exit status is CMD's (128+N\n"
	"if signal N killed it; 127 if CMD was not found, 126 if it could not be\n"
	"run), or 1 for a usage error or a missing library.\n"
	"\n"
	"  -o, --output TRACE  the run's first trace (default memtrace.PID.trace); the\n"
	"                      others are TRACE's name with .PID before its .trace\n"
	"  -n, --native        record native stacks too (sets MEMTRACE_NATIVE=1)\n"
	"  -d, --py-depth N    Python frames kept per allocation, 0 to 128 (sets\n"
	"                      MEMTRACE_PY_DEPTH; default 1, 0: no Python lines)\n"
	"  -F, --follow WHAT   which processes are traced: all (default), exec (CMD\n"
	"                      and the programs it execs), none (CMD only)\n"
	"  -O, --only NAMES    trace only executables with these names (globs such as\n"
	"                      'python3*', separated by commas); the others still run\n"
	"                      traced children\n"
	"  -q, --quiet         print no report and no run line, only errors\n"
	"  -h, --help          show this help\n"
	"\n"
	"The library is looked for next to the memtrace executable; MEMTRACE_LIB\n"
	"overrides that.\n";

struct run_opts {
	const char *output;
	const char *py_depth; /* NULL: the tracer's default */
	const char *follow, *only;
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
		{ "follow", required_argument, NULL, 'F' },
		{ "only", required_argument, NULL, 'O' },
		{ "quiet", no_argument, NULL, 'q' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int c;
	char *end;
	long depth;
	argv[0] = (char *)"memtrace run"; /* getopt prefixes its messages with it */
	/* '+': options end at CMD, whose own options are not ours. */
	while ((c = getopt_long(argc, argv, "+o:nd:F:O:qh", opts, NULL)) != -1) {
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
		case 'F':
			if (strcmp(optarg, "all") && strcmp(optarg, "exec") && strcmp(optarg, "none"))
				return usage_error("--follow takes all, exec or none");
			o->follow = optarg;
			break;
		case 'O':
			if (!*optarg || *optarg == ',' || optarg[strlen(optarg) - 1] == ',' ||
			    strstr(optarg, ",,"))
				return usage_error("--only takes names separated by commas");
			o->only = optarg;
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

/* SCRIPT.py ARGS... runs as python3 SCRIPT.py ARGS...: argv has room for
 * one more word before the script, where the subcommand's name was. */
static void python_script(struct run_opts *o)
{
	static char python[] = "python3";
	size_t len = strlen(o->cmd[0]);
	if (len > 3 && !strcmp(o->cmd[0] + len - 3, ".py")) {
		o->cmd--;
		o->cmd[0] = python;
	}
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
	/* a longer path could not be created anyway: the tracer says so */
	int n = output[0] == '/' ? snprintf(buf, PATH_MAX, "%s", output)
				 : snprintf(buf, PATH_MAX, "%s/%s", cwd, output);
	if (n < 0 || n >= PATH_MAX)
		buf[0] = '\0';
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
	const char *lib, *cwd;
	const struct run_opts *o;
	char dir[MT_RUN_DIR_MAX]; /* the run registry; "" when there is none */
	uint64_t run_id;
	int errfd;
	struct sigaction old_int, old_quit;
};

static int set_child_env(const struct child *c, const char *tmpl)
{
	const struct run_opts *o = c->o;
	const char *pre = getenv("LD_PRELOAD");
	char *preload;
	if (asprintf(&preload, "%s%s%s", c->lib, pre && *pre ? ":" : "", pre ? pre : "") < 0)
		return -1;
	int r = setenv("LD_PRELOAD", preload, 1) || setenv("MEMTRACE_OUTPUT", tmpl, 1) ||
		(o->native && setenv("MEMTRACE_NATIVE", "1", 1)) ||
		(o->py_depth && setenv("MEMTRACE_PY_DEPTH", o->py_depth, 1)) ||
		(o->follow && setenv("MEMTRACE_FOLLOW", o->follow, 1)) ||
		(o->only && setenv("MEMTRACE_ONLY", o->only, 1));
	free(preload);
	return r ? -1 : 0;
}

/* The command's first image finds itself the top of our run by this. */
static void register_top(const struct child *c, const char *tmpl, const char *trace)
{
	struct mt_run_entry e = { .start = mt_run_start_of(0, NULL), .run_id = c->run_id,
				  .output_hash = mt_run_hash(tmpl), .flags = MT_RUN_TOP };
	snprintf(e.base, sizeof e.base, "%s", trace);
	if (c->dir[0])
		mt_run_entry_write(c->dir, getpid(), &e);
}

static void exec_child(const struct child *c)
{
	char tmpl[PATH_MAX], trace[PATH_MAX];
	struct child_failure f = { 0 };
	sigaction(SIGINT, &c->old_int, NULL);
	sigaction(SIGQUIT, &c->old_quit, NULL);
	trace_template(tmpl, c->cwd, c->o->output, getpid());
	trace_file(trace, tmpl, getpid());
	if (remove_old_trace(trace)) {
		f.replacing = 1;
	} else if (set_child_env(c, tmpl) == 0) {
		register_top(c, tmpl, trace);
		execvp(c->o->cmd[0], c->o->cmd);
	}
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
		fprintf(stderr, "memtrace: %s: %s\n", c->o->cmd[0], strerror(f->err));
		return;
	}
	trace_template(tmpl, c->cwd, c->o->output, pid);
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

/* The run's one line, after its report: its name and how many processes
 * were traced, or the first error a process of it met. */
static void say_run(const struct mt_run_state *s, const char *name, const struct run_opts *o)
{
	unsigned traces = s ? s->traces : 0;
	bool quiet = o->quiet;
	if (s && s->error[0])
		fprintf(stderr, "memtrace: %s\n", s->error);
	else if (!traces && o->only)
		fprintf(stderr, "memtrace: no process of the run matched --only %s\n", o->only);
	else if (!traces)
		fprintf(stderr, "memtrace: no process was traced%s\n",
			s ? "" : " (the run could not be registered, or the tracer is disabled)");
	else if (!quiet)
		fprintf(stderr, "memtrace: run %s: %u process%s traced\n", name, traces,
			traces == 1 ? "" : "es");
}

int cmd_run(int argc, char **argv)
{
	struct run_opts o = { 0 };
	char lib[PATH_MAX], cwd[PATH_MAX], tmpl[PATH_MAX], trace[PATH_MAX];
	pid_t pid = -1;
	int code = parse(argc, argv, &o);
	if (code != RUN_IT)
		return code;
	python_script(&o);
	if (find_library(lib))
		return MT_EXIT_USAGE;
	if (!getcwd(cwd, sizeof cwd)) {
		fprintf(stderr, "memtrace: getcwd: %s\n", strerror(errno));
		return MT_EXIT_USAGE;
	}
	struct child c = { .lib = lib, .cwd = cwd, .o = &o, .run_id = mt_run_new_id() };
	struct mt_run_state *state = NULL;
	if (mt_run_dir(c.dir) == 0 && (state = mt_run_state_map(c.dir, c.run_id, 1)))
		state->launcher = 1;
	else
		c.dir[0] = 0;
	if (run_child(&c, &pid, &code)) {
		trace_template(tmpl, cwd, o.output, pid);
		trace_file(trace, tmpl, pid);
		const char *name = state && state->first[0] ? state->first : trace;
		if (!o.quiet && state && state->traces)
			report_run_of(name);
		say_run(state, name, &o);
	}
	if (c.dir[0]) {
		if (pid > 0)
			mt_run_entry_remove(c.dir, pid); /* if the command left it (killed) */
		mt_run_state_remove(c.dir, c.run_id);
	}
	mt_run_state_unmap(state);
	return code;
}
