/*
 * config.c - the MEMTRACE_* environment settings and the tracer's stderr
 * messages.  Runs before the traced program's main and inside its
 * allocator, so it uses neither malloc nor stdio streams.
 */
#define _GNU_SOURCE
#include "tracer.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

struct mt_config mt_cfg;

static const char default_output[] = "memtrace.%p.trace";
static const char *output_template = default_output;
/* Every process of a run reads the same settings; only the run's top
 * process says what is wrong with them. */
static int warn_bad;

/* A thread whose descriptor table is its own (the writer's, see writer.c)
 * borrows the program's stderr for a message. */
static pid_t own_table_tid;

void mt_log_own_table(void)
{
	own_table_tid = (pid_t)syscall(SYS_gettid);
}

/* The program's stderr in this thread's table; *borrowed: close it after. */
static int stderr_fd(int *borrowed)
{
	*borrowed = 0;
	if (!own_table_tid || (pid_t)syscall(SYS_gettid) != own_table_tid)
		return STDERR_FILENO;
	int pidfd = (int)syscall(SYS_pidfd_open, getpid(), 0);
	int fd = pidfd < 0 ? -1 : (int)syscall(SYS_pidfd_getfd, pidfd, STDERR_FILENO, 0);
	if (pidfd >= 0)
		close(pidfd);
	*borrowed = fd >= 0;
	return fd;
}

/* MEMTRACE_QUIET=1 silences everything, notices and complaints alike: a
 * program whose stderr is checked (a test suite) sees what it would see
 * untraced. */
void mt_log(const char *fmt, ...)
{
	if (mt_cfg.quiet)
		return;
	char line[1024];
	int saved = errno;
	va_list ap;
	va_start(ap, fmt);
	int n = snprintf(line, sizeof line, "memtrace: ");
	n += vsnprintf(line + n, sizeof line - (size_t)n - 1, fmt, ap);
	va_end(ap);
	if (n > (int)sizeof line - 2)
		n = (int)sizeof line - 2;
	line[n++] = '\n';
	int borrowed, fd = stderr_fd(&borrowed);
	ssize_t w = write(fd, line, (size_t)n);
	(void)w;
	if (borrowed)
		close(fd);
	errno = saved;
}

int mt_stderr_is_terminal(void)
{
	int saved = errno;
	int borrowed, fd = stderr_fd(&borrowed);
	int tty = isatty(fd);
	if (borrowed)
		close(fd);
	errno = saved;
	return tty;
}

#define bad(...) do { if (warn_bad) mt_log(__VA_ARGS__); } while (0)

/* An unsigned setting in [lo, hi]; anything else is reported and replaced
 * by the default. */
static uint64_t env_u64(const char *name, uint64_t def, uint64_t lo, uint64_t hi)
{
	const char *s = getenv(name);
	if (!s || !*s)
		return def;
	char *end;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 10);
	if (errno || *end || *s == '-' || v < lo || v > hi) {
		bad("ignoring %s=\"%s\": expected a whole number from %llu to %llu; using %llu",
		    name, s, (unsigned long long)lo, (unsigned long long)hi,
		    (unsigned long long)def);
		return def;
	}
	return v;
}

static int env_flag(const char *name)
{
	const char *s = getenv(name);
	if (!s || !*s || !strcmp(s, "0"))
		return 0;
	if (!strcmp(s, "1"))
		return 1;
	bad("ignoring %s=\"%s\": expected 0 or 1", name, s);
	return 0;
}

/* One of `names` (index 0 is the default), given as "a, b or c" in the
 * complaint. */
static int env_choice(const char *name, const char *const *names, int n, const char *expected)
{
	const char *s = getenv(name);
	if (!s || !*s)
		return 0;
	for (int i = 0; i < n; i++)
		if (!strcmp(s, names[i]))
			return i;
	bad("ignoring %s=\"%s\": expected %s; using %s", name, s, expected, names[0]);
	return 0;
}

/* MEMTRACE_ONLY: a comma-separated list of non-empty globs. */
static void env_only(void)
{
	const char *s = getenv("MEMTRACE_ONLY");
	mt_cfg.only[0] = 0;
	if (!s || !*s)
		return;
	size_t n = strlen(s);
	int empty = s[0] == ',' || s[n - 1] == ',' || strstr(s, ",,");
	if (n >= sizeof mt_cfg.only || empty) {
		bad("ignoring MEMTRACE_ONLY: %s; tracing every process",
		    empty ? "an empty name in the list" : "longer than 1023 characters");
		return;
	}
	memcpy(mt_cfg.only, s, n + 1);
}

void mt_config_load(int warn)
{
	static const char *const unwinders[] = {"rules", "libunwind", "check"};
	static const char *const follows[] = {"all", "exec", "none"};
	warn_bad = warn;
	mt_cfg.quiet = env_flag("MEMTRACE_QUIET");
	mt_cfg.follow = env_choice("MEMTRACE_FOLLOW", follows, 3, "all, exec or none");
	env_only();
	mt_cfg.flush_ms = (unsigned)env_u64("MEMTRACE_FLUSH_MS", 100, 1, 60000);
	mt_cfg.zstd_level = (int)env_u64("MEMTRACE_ZSTD_LEVEL", 3, 1, 19);
	mt_cfg.rss_ms = (unsigned)env_u64("MEMTRACE_RSS_MS", 10, 0, 60000);
	mt_cfg.py_depth = (int)env_u64("MEMTRACE_PY_DEPTH", 1, 0, 128);
	mt_cfg.native_depth = env_flag("MEMTRACE_NATIVE")
				      ? (int)env_u64("MEMTRACE_NATIVE_DEPTH", 64, 1, 256)
				      : 0;
	mt_cfg.unwinder = mt_cfg.native_depth ? env_choice("MEMTRACE_NATIVE_UNWIND", unwinders, 3,
							   "rules, libunwind or check")
					      : MT_UNWIND_RULES;
	uint64_t ring = env_u64("MEMTRACE_RING_EVENTS", 65536, 1024, 1u << 24);
	if (ring & (ring - 1)) {
		bad("ignoring MEMTRACE_RING_EVENTS=%llu: expected a power of two; using 65536",
		    (unsigned long long)ring);
		ring = 65536;
	}
	mt_cfg.ring_events = ring;
	const char *out = getenv("MEMTRACE_OUTPUT");
	output_template = default_output;
	if (out && *out) {
		if (strlen(out) >= sizeof mt_cfg.output - 32)
			bad("ignoring MEMTRACE_OUTPUT: path too long; using %s", default_output);
		else
			output_template = out;
	}
}

const char *mt_config_output_setting(void)
{
	const char *out = getenv("MEMTRACE_OUTPUT");
	return out ? out : "";
}

int mt_config_expand_output(char *out, size_t cap)
{
	char *o = out, *end = out + cap - 1;
	/* Absolute, since the writer reopens it after the program may have
	 * changed its directory, and children write beside it. */
	if (output_template[0] != '/') {
		if (!getcwd(o, (size_t)(end - o) - 1))
			return -1;
		o += strlen(o);
		*o++ = '/';
	}
	for (const char *s = output_template; *s && o < end; s++) {
		if (s[0] == '%' && s[1] == 'p') {
			o += snprintf(o, (size_t)(end - o), "%d", (int)getpid());
			s++;
		} else {
			*o++ = *s;
		}
	}
	if (o >= end)
		return -1;
	*o = 0;
	return 0;
}

/* A shell-style glob: '*', '?' and [set] (with ranges and a leading '!'),
 * written out since fnmatch may allocate. */
static int glob_match(const char *p, const char *pend, const char *s)
{
	for (; p < pend; p++, s++) {
		if (*p == '*') {
			for (const char *t = s;; t++) {
				if (glob_match(p + 1, pend, t))
					return 1;
				if (!*t)
					return 0;
			}
		}
		if (!*s)
			return 0;
		if (*p == '[') {
			const char *q = p + 1;
			int neg = q < pend && *q == '!', hit = 0;
			q += neg;
			for (; q < pend && (*q != ']' || q == p + 1 + neg); q++) {
				if (q + 2 < pend && q[1] == '-' && q[2] != ']') {
					hit |= *s >= q[0] && *s <= q[2];
					q += 2;
				} else {
					hit |= *s == *q;
				}
			}
			if (q == pend || hit == neg)
				return 0;
			p = q;
		} else if (*p != '?' && *p != *s) {
			return 0;
		}
	}
	return !*s;
}

int mt_config_only_matches(const char *name)
{
	if (!mt_cfg.only[0])
		return 1;
	for (const char *p = mt_cfg.only;;) {
		const char *comma = strchr(p, ',');
		const char *end = comma ? comma : p + strlen(p);
		if (glob_match(p, end, name))
			return 1;
		if (!comma)
			return 0;
		p = comma + 1;
	}
}
