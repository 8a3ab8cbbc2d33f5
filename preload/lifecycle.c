/*
 * lifecycle.c - when the tracer starts and stops.  Process start (the
 * trace file and its header), exit, _exit and exec (the trace is completed
 * before the process image goes away), and fork (the writer thread is not
 * there when fork() returns; the child starts a trace of its own).  Setuid
 * and setgid programs are never traced.
 */
#define _GNU_SOURCE
#include "lifecycle.h"

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <spawn.h>
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
#include "mappings.h"
#include "native.h"
#include "ownmem.h"
#include "pyshim.h"
#include "run.h"
#include "sampler.h"
#include "threads.h"
#include "tracer.h"
#include "writer.h"

#define EXPORT __attribute__((visibility("default")))

int mt_active;
int mt_exit_status = -1;
struct mt_epoch_counter mt_epoch;
static int decision, failed, traced;
static pthread_t decider;
static pid_t traced_pid; /* differs from getpid() in a vfork child */

enum { UNDECIDED, DECIDING, DECIDED };

/* Whether this program image is traced: not in setuid programs, and only
 * as the run's MEMTRACE_FOLLOW and MEMTRACE_ONLY say. */
static int decide(void)
{
	if (getauxval(AT_SECURE))
		return 0;
	mt_config_load(mt_run_join());
	int on = mt_run_traced() && mt_threads_init() == 0;
	mt_run_begin(on);
	return on;
}

int mt_tracer_start(void)
{
	int d = __atomic_load_n(&decision, __ATOMIC_ACQUIRE);
	if (d == DECIDED)
		return __atomic_load_n(&mt_active, __ATOMIC_ACQUIRE);
	if (d == UNDECIDED && __atomic_compare_exchange_n(&decision, &d, DECIDING, 0,
							  __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)) {
		decider = pthread_self();
		traced = decide();
		__atomic_store_n(&mt_active, traced, __ATOMIC_RELEASE);
		__atomic_store_n(&decision, DECIDED, __ATOMIC_RELEASE);
		return traced;
	}
	if (pthread_equal(decider, pthread_self()))
		return 0; /* an allocation the decision itself makes */
	while (__atomic_load_n(&decision, __ATOMIC_ACQUIRE) != DECIDED)
		sched_yield();
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
	int n = vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	if (n >= 0 && (size_t)n < sizeof msg)
		snprintf(msg + n, sizeof msg - (size_t)n, "; tracing is off, the program runs on");
	mt_run_say(msg);
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
	n = mt_run_header(buf, n);
	n = mt_sampler_header(buf, n);
	return mt_py_header(buf, n);
}

#define HEADER_ARGV_MAX (256 * 1024)

/* Creates the trace file (never through a symlink, never over an existing
 * file) and starts the writer, at once or (lazy) when the events need it.
 * A file that could not be written goes. */
static void open_trace(int lazy)
{
	traced_pid = getpid();
	int fd = mt_fd_off_std(mt_run_create_trace(mt_cfg.output, sizeof mt_cfg.output));
	if (fd < 0) {
		mt_tracer_fail("cannot create %s (%s)", mt_cfg.output, strerror(errno));
		return;
	}
	/* Not heap blocks: freeing a block this large would raise glibc's mmap
	 * threshold for the rest of the program. */
	char *scratch = mt_own_map(HEADER_ARGV_MAX);
	uint8_t *hdr = mt_own_map(HEADER_ARGV_MAX + 8192);
	int ok = scratch && hdr &&
		 mt_writer_start(mt_cfg.output, fd, hdr,
				 build_header(hdr, scratch, HEADER_ARGV_MAX), lazy) == 0;
	if (!scratch || !hdr)
		mt_tracer_fail("out of memory for the header of %s", mt_cfg.output);
	mt_own_unmap(scratch, HEADER_ARGV_MAX);
	mt_own_unmap(hdr, HEADER_ARGV_MAX + 8192);
	close(fd);
	if (!ok)
		mt_run_drop_trace(mt_cfg.output);
}

/* ---- start and stop --------------------------------------------------- */

/* The writer thread is gone before fork() and comes back when the events
 * need it, in the parent and in the child alike: right after fork()
 * returns, the process has only the program's threads.  The program's
 * errno is its own. */
static void fork_prepare(void)
{
	int saved = errno;
	struct mt_ring *r = mt_internal_enter();
	mt_writer_fork_prepare(r);
	mt_internal_leave(r);
	mt_threads_fork_prepare();
	mt_own_fork_prepare();
	errno = saved;
}

static void fork_parent(void)
{
	int saved = errno;
	mt_own_fork_parent();
	mt_threads_fork_parent();
	mt_writer_fork_parent();
	errno = saved;
}

/* The child's trace starts at the fork, in a file of its own. */
static void child_start(void)
{
	mt_own_fork_child();
	mt_threads_fork_child();
	mt_writer_fork_child();
	mt_meta_fork_child();
	mt_py_fork_child();
	mt_native_fork_child();
	mt_run_fork_child();
	traced = traced && mt_run_traced();
	if (traced)
		mt_run_begin(1);
	if (!traced || failed)
		__atomic_store_n(&mt_active, 0, __ATOMIC_RELEASE);
	if (!__atomic_load_n(&mt_active, __ATOMIC_ACQUIRE))
		return;
	struct mt_ring *r = mt_internal_enter();
	open_trace(1);
	mt_internal_leave(r);
}

static void fork_child(void)
{
	int saved = errno;
	child_start();
	errno = saved;
}

__attribute__((constructor)) static void mt_init(void)
{
	if (!mt_tracer_start())
		return;
	struct mt_ring *r = mt_internal_enter();
	mt_sampler_start();
	mt_mappings_start();
	mt_py_start();
	if (mt_cfg.native_depth)
		mt_native_start(mt_cfg.native_depth);
	/* At once: a process killed later still leaves what it did until
	 * MEMTRACE_FLUSH_MS before; a fork stops it in time. */
	open_trace(0);
	pthread_atfork(fork_prepare, fork_parent, fork_child);
	mt_internal_leave(r);
	if (mt_active)
		mt_py_start_marks();
}

/* Completes the trace up to now; `stop` ends tracing in this process. */
static void finish(int reason, int stop)
{
	if (!traced || failed || getpid() != traced_pid)
		return; /* off, or a vfork child sharing its parent's tracer */
	struct mt_ring *r = mt_internal_enter();
	if (stop)
		__atomic_store_n(&mt_active, 0, __ATOMIC_RELEASE);
	mt_writer_sync(reason, stop);
	if (stop)
		mt_native_report();
	mt_internal_leave(r);
}

/* The end of the process: the trace's footer, then the run's line. */
static void finish_process(int reason)
{
	finish(reason, 1);
	int wrote = traced && !failed && getpid() == traced_pid;
	mt_run_exit(wrote ? mt_cfg.output : NULL, wrote ? mt_writer_events() : 0);
}

__attribute__((destructor)) static void mt_fini(void)
{
	if (__atomic_load_n(&decision, __ATOMIC_ACQUIRE) == DECIDED)
		finish_process(MT_END_EXIT);
}

/* ---- _exit and exec --------------------------------------------------- */

/* The next image finds its run by this process's entry. */
static void before_exec(void)
{
	mt_tracer_start();
	finish(MT_END_EXEC, 0);
	mt_run_publish();
}

#define REAL(name) static __typeof__(name) *real_##name; \
	if (!real_##name) real_##name = (__typeof__(name) *)dlsym(RTLD_NEXT, #name)

/* The status for the footer; main's return does not pass through here
 * (glibc calls its own exit), and its status stays unknown.  A vfork child
 * must leave its parent's alone. */
static void exit_status(int status)
{
	if (getpid() == traced_pid)
		mt_exit_status = status & 0xff;
}

EXPORT void exit(int status)
{
	REAL(exit);
	exit_status(status);
	real_exit(status);
	__builtin_unreachable();
}

EXPORT void _exit(int status)
{
	REAL(_exit);
	exit_status(status);
	finish_process(MT_END__EXIT);
	real__exit(status);
	__builtin_unreachable();
}

EXPORT void _Exit(int status)
{
	REAL(_Exit);
	exit_status(status);
	finish_process(MT_END__EXIT);
	real__Exit(status);
	__builtin_unreachable();
}

EXPORT int execve(const char *path, char *const argv[], char *const envp[])
{
	REAL(execve);
	before_exec();
	return real_execve(path, argv, envp);
}

EXPORT int execv(const char *path, char *const argv[])
{
	REAL(execv);
	before_exec();
	return real_execv(path, argv);
}

EXPORT int execvp(const char *file, char *const argv[])
{
	REAL(execvp);
	before_exec();
	return real_execvp(file, argv);
}

EXPORT int execvpe(const char *file, char *const argv[], char *const envp[])
{
	REAL(execvpe);
	before_exec();
	return real_execvpe(file, argv, envp);
}

EXPORT int fexecve(int fd, char *const argv[], char *const envp[])
{
	REAL(fexecve);
	before_exec();
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

/* ---- spawning ----------------------------------------------------------- */

/* Children started by these exec inside libc, past the wrappers above:
 * they find the run by this process's entry. */
static void before_spawn(void)
{
	mt_tracer_start();
	mt_run_publish();
}

EXPORT int posix_spawn(pid_t *pid, const char *path, const posix_spawn_file_actions_t *actions,
		       const posix_spawnattr_t *attr, char *const argv[], char *const envp[])
{
	REAL(posix_spawn);
	before_spawn();
	return real_posix_spawn(pid, path, actions, attr, argv, envp);
}

EXPORT int posix_spawnp(pid_t *pid, const char *file, const posix_spawn_file_actions_t *actions,
			const posix_spawnattr_t *attr, char *const argv[], char *const envp[])
{
	REAL(posix_spawnp);
	before_spawn();
	return real_posix_spawnp(pid, file, actions, attr, argv, envp);
}

EXPORT int system(const char *command)
{
	REAL(system);
	before_spawn();
	return real_system(command);
}

EXPORT FILE *popen(const char *command, const char *type)
{
	REAL(popen);
	before_spawn();
	return real_popen(command, type);
}
