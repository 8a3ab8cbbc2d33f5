/*
 * lifecycle.c - when the tracer starts and stops.  Process start (the
 * trace file and its header), exit, _exit and exec (the trace is completed
 * before the process image goes away), and fork (the child starts a trace
 * of its own).  Setuid and setgid programs are never traced.
 */
#define _GNU_SOURCE
#include "lifecycle.h"

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>
#include <time.h>
#include <unistd.h>

#include <memtrace/trace_format.h>

#include "codec.h"
#include "meta.h"
#include "native.h"
#include "pyshim.h"
#include "threads.h"
#include "tracer.h"
#include "writer.h"

#define EXPORT __attribute__((visibility("default")))

int mt_active;
static int decided, failed;
static pid_t traced_pid; /* differs from getpid() in a vfork child */

int mt_tracer_start(void)
{
	if (!__atomic_load_n(&decided, __ATOMIC_ACQUIRE)) {
		if (!getauxval(AT_SECURE))
			__atomic_store_n(&mt_active, 1, __ATOMIC_RELEASE);
		__atomic_store_n(&decided, 1, __ATOMIC_RELEASE);
	}
	return __atomic_load_n(&mt_active, __ATOMIC_ACQUIRE);
}

void mt_tracer_fail(const char *fmt, ...)
{
	__atomic_store_n(&mt_active, 0, __ATOMIC_RELEASE);
	if (__atomic_exchange_n(&failed, 1, __ATOMIC_ACQ_REL))
		return;
	char msg[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	mt_log("%s; tracing is off, the program runs on", msg);
}

int mt_fd_off_std(int fd)
{
	if (fd < 0 || fd > 2)
		return fd;
	int high = fcntl(fd, F_DUPFD_CLOEXEC, 3);
	close(fd);
	return high;
}

/* ---- the header ------------------------------------------------------- */

/* Reads a small /proc file into buf; returns its length (0 on failure). */
static size_t read_proc(const char *path, char *buf, size_t cap)
{
	int fd = mt_fd_off_std(open(path, O_RDONLY | O_CLOEXEC));
	size_t len = 0;
	if (fd < 0)
		return 0;
	ssize_t n;
	while (len < cap && (n = read(fd, buf + len, cap - len)) > 0)
		len += (size_t)n;
	close(fd);
	return len;
}

static size_t build_header(uint8_t *buf, char *scratch, size_t cap)
{
	struct timespec now;
	clock_gettime(CLOCK_REALTIME, &now);
	size_t n = 0;
	n = mt_kv_put_u64(buf, n, MT_H_PID, (uint64_t)getpid());
	n = mt_kv_put_u64(buf, n, MT_H_PPID, (uint64_t)getppid());
	n = mt_kv_put_u64(buf, n, MT_H_START_NS,
			  (uint64_t)now.tv_sec * 1000000000u + (uint64_t)now.tv_nsec);
	n = mt_kv_put_u64(buf, n, MT_H_PAGE_SIZE, (uint64_t)getpagesize());
	n = mt_kv_put_bytes(buf, n, MT_H_VERSION, MEMTRACE_VERSION, strlen(MEMTRACE_VERSION));
	ssize_t len = readlink("/proc/self/exe", scratch, cap);
	n = mt_kv_put_bytes(buf, n, MT_H_EXE, scratch, len > 0 ? (size_t)len : 0);
	size_t argv = read_proc("/proc/self/cmdline", scratch, cap);
	n = mt_kv_put_bytes(buf, n, MT_H_ARGV, scratch, argv);
	if (mt_native_on)
		n = mt_kv_put_u64(buf, n, MT_H_NATIVE_DEPTH, (uint64_t)mt_cfg.native_depth);
	return mt_py_header(buf, n);
}

#define HEADER_ARGV_MAX (256 * 1024)

/* exec keeps the pid, so an exec'd program finds its predecessor's trace
 * under the same name: it takes the first free "NAME.N.trace" instead. */
static int create_unique(char *path, size_t cap)
{
	const int flags = O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC;
	int fd = open(path, flags, 0600);
	if (fd >= 0 || errno != EEXIST)
		return mt_fd_off_std(fd);
	char base[sizeof mt_cfg.output];
	size_t len = strlen(path);
	const char *ext = len > 6 && !strcmp(path + len - 6, ".trace") ? ".trace" : "";
	snprintf(base, sizeof base, "%.*s", (int)(len - strlen(ext)), path);
	for (int i = 1; i < 1000 && fd < 0 && errno == EEXIST; i++) {
		if ((size_t)snprintf(path, cap, "%s.%d%s", base, i, ext) >= cap)
			break;
		fd = open(path, flags, 0600);
	}
	return mt_fd_off_std(fd);
}

/* Creates the trace file (never through a symlink, never over an existing
 * file) and starts the writer. */
static void open_trace(void)
{
	traced_pid = getpid();
	if (mt_config_expand_output()) {
		mt_tracer_fail("MEMTRACE_OUTPUT is too long");
		return;
	}
	int fd = create_unique(mt_cfg.output, sizeof mt_cfg.output);
	if (fd < 0) {
		mt_tracer_fail("cannot create %s (%s)", mt_cfg.output, strerror(errno));
		return;
	}
	char *scratch = malloc(HEADER_ARGV_MAX);
	uint8_t *hdr = malloc(HEADER_ARGV_MAX + 8192);
	if (!scratch || !hdr)
		mt_tracer_fail("out of memory");
	else
		mt_writer_start(mt_cfg.output, fd, hdr, build_header(hdr, scratch, HEADER_ARGV_MAX));
	free(scratch);
	free(hdr);
	close(fd);
}

/* ---- start and stop --------------------------------------------------- */

static void fork_prepare(void)
{
	mt_threads_fork_prepare();
}

static void fork_parent(void)
{
	mt_threads_fork_parent();
}

static void fork_child(void)
{
	mt_threads_fork_child();
	mt_writer_fork_child();
	mt_meta_fork_child();
	mt_py_fork_child();
	mt_native_fork_child();
	if (!__atomic_load_n(&mt_active, __ATOMIC_ACQUIRE))
		return;
	struct mt_ring *r = mt_internal_enter();
	open_trace();
	mt_internal_leave(r);
}

__attribute__((constructor)) static void mt_init(void)
{
	struct mt_ring *r = mt_internal_enter();
	if (mt_tracer_start()) {
		mt_config_load();
		mt_threads_init();
		mt_py_start();
		if (mt_cfg.native_depth)
			mt_native_start(mt_cfg.native_depth);
		open_trace();
		pthread_atfork(fork_prepare, fork_parent, fork_child);
	}
	mt_internal_leave(r);
	if (mt_active)
		mt_py_start_marks();
}

/* Completes the trace up to now; `stop` ends tracing in this process. */
static void finish(int reason, int stop)
{
	if (failed || getpid() != traced_pid)
		return; /* off, or a vfork child sharing its parent's tracer */
	struct mt_ring *r = mt_internal_enter();
	if (stop)
		__atomic_store_n(&mt_active, 0, __ATOMIC_RELEASE);
	/* where the trace went is news for a person at a terminal; a program
	 * reading its children's stderr would see output they never wrote */
	if (mt_writer_sync(reason, stop) == 0 && !failed && mt_stderr_is_terminal())
		mt_log("wrote %s (%llu events)", mt_cfg.output,
		       (unsigned long long)mt_writer_events());
	if (stop)
		mt_native_report();
	mt_internal_leave(r);
}

__attribute__((destructor)) static void mt_fini(void)
{
	finish(MT_END_EXIT, 1);
}

/* ---- _exit and exec --------------------------------------------------- */

#define REAL(name) static __typeof__(name) *real_##name; \
	if (!real_##name) real_##name = (__typeof__(name) *)dlsym(RTLD_NEXT, #name)

EXPORT void _exit(int status)
{
	REAL(_exit);
	finish(MT_END__EXIT, 1);
	real__exit(status);
	__builtin_unreachable();
}

EXPORT void _Exit(int status)
{
	REAL(_Exit);
	finish(MT_END__EXIT, 1);
	real__Exit(status);
	__builtin_unreachable();
}

EXPORT int execve(const char *path, char *const argv[], char *const envp[])
{
	REAL(execve);
	finish(MT_END_EXEC, 0);
	return real_execve(path, argv, envp);
}

EXPORT int execv(const char *path, char *const argv[])
{
	REAL(execv);
	finish(MT_END_EXEC, 0);
	return real_execv(path, argv);
}

EXPORT int execvp(const char *file, char *const argv[])
{
	REAL(execvp);
	finish(MT_END_EXEC, 0);
	return real_execvp(file, argv);
}

EXPORT int execvpe(const char *file, char *const argv[], char *const envp[])
{
	REAL(execvpe);
	finish(MT_END_EXEC, 0);
	return real_execvpe(file, argv, envp);
}

EXPORT int fexecve(int fd, char *const argv[], char *const envp[])
{
	REAL(fexecve);
	finish(MT_END_EXEC, 0);
	return real_fexecve(fd, argv, envp);
}

/* The execl family: their variadic arguments become an argv array on the
 * stack; then the matching v-function above does the rest. */
static size_t count_args(va_list *ap)
{
	va_list c;
	va_copy(c, *ap);
	size_t n = 1;
	while (va_arg(c, char *))
		n++;
	va_end(c);
	return n;
}

static void fill_args(char **argv, const char *arg0, va_list *ap)
{
	size_t i = 0;
	argv[i++] = (char *)arg0;
	while ((argv[i++] = va_arg(*ap, char *)))
		;
}

#define COLLECT_ARGV(argv, arg0, last)                   \
	va_list ap;                                      \
	va_start(ap, last);                              \
	char **argv = alloca((count_args(&ap) + 1) * sizeof(char *)); \
	fill_args(argv, arg0, &ap)

EXPORT int execl(const char *path, const char *arg0, ...)
{
	COLLECT_ARGV(argv, arg0, arg0);
	va_end(ap);
	return execv(path, argv);
}

EXPORT int execlp(const char *file, const char *arg0, ...)
{
	COLLECT_ARGV(argv, arg0, arg0);
	va_end(ap);
	return execvp(file, argv);
}

EXPORT int execle(const char *path, const char *arg0, ...)
{
	COLLECT_ARGV(argv, arg0, arg0);
	char *const *envp = va_arg(ap, char *const *);
	va_end(ap);
	return execve(path, argv, envp);
}
