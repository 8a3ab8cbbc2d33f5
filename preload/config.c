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
#include <unistd.h>

struct mt_config mt_cfg;

static const char *output_template = "memtrace.%p.trace";

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
	ssize_t w = write(STDERR_FILENO, line, (size_t)n);
	(void)w;
	errno = saved;
}

int mt_stderr_is_terminal(void)
{
	int saved = errno;
	int tty = isatty(STDERR_FILENO);
	errno = saved;
	return tty;
}

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
		mt_log("ignoring %s=\"%s\": expected a whole number from %llu to %llu; using %llu",
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
	mt_log("ignoring %s=\"%s\": expected 0 or 1", name, s);
	return 0;
}

/* MEMTRACE_NATIVE_UNWIND: how native stacks are walked (see native.h). */
static int env_unwinder(void)
{
	static const char *const names[] = {"rules", "libunwind", "check"};
	const char *s = getenv("MEMTRACE_NATIVE_UNWIND");
	if (!s || !*s)
		return MT_UNWIND_RULES;
	for (int i = 0; i < (int)(sizeof names / sizeof *names); i++)
		if (!strcmp(s, names[i]))
			return i;
	mt_log("ignoring MEMTRACE_NATIVE_UNWIND=\"%s\": expected rules, libunwind or check", s);
	return MT_UNWIND_RULES;
}

void mt_config_load(void)
{
	mt_cfg.quiet = env_flag("MEMTRACE_QUIET");
	mt_cfg.flush_ms = (unsigned)env_u64("MEMTRACE_FLUSH_MS", 100, 1, 60000);
	mt_cfg.zstd_level = (int)env_u64("MEMTRACE_ZSTD_LEVEL", 3, 1, 19);
	mt_cfg.py_depth = (int)env_u64("MEMTRACE_PY_DEPTH", 1, 0, 128);
	mt_cfg.native_depth = env_flag("MEMTRACE_NATIVE")
				      ? (int)env_u64("MEMTRACE_NATIVE_DEPTH", 64, 1, 256)
				      : 0;
	mt_cfg.unwinder = mt_cfg.native_depth ? env_unwinder() : MT_UNWIND_RULES;
	uint64_t ring = env_u64("MEMTRACE_RING_EVENTS", 65536, 1024, 1u << 24);
	if (ring & (ring - 1)) {
		mt_log("ignoring MEMTRACE_RING_EVENTS=%llu: expected a power of two; using 65536",
		       (unsigned long long)ring);
		ring = 65536;
	}
	mt_cfg.ring_events = ring;
	const char *out = getenv("MEMTRACE_OUTPUT");
	if (out && *out) {
		if (strlen(out) >= sizeof mt_cfg.output - 32)
			mt_log("ignoring MEMTRACE_OUTPUT: path too long; using %s", output_template);
		else
			output_template = out;
	}
}

int mt_config_expand_output(void)
{
	char *o = mt_cfg.output, *end = o + sizeof mt_cfg.output - 1;
	/* Absolute, since the writer reopens it after the program may have
	 * changed its directory. */
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
