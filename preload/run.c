/*
 * run.c - this process's place in its run (run.h), on top of the run
 * registry (common/runreg.h).  Runs inside the allocator, so it allocates
 * nothing.
 */
#define _GNU_SOURCE
#include "run.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <memtrace/trace_format.h>

#include "codec.h"
#include "runreg.h"
#include "tracer.h"

static struct {
	char dir[MT_RUN_DIR_MAX];
	int have_dir;
	/* What this image knows of its process, as an entry: the run, the
	 * parent, the latest traced image before this one, the images so far,
	 * and the run's name (base: the top's first trace file). */
	struct mt_run_entry me;
	pid_t pid;
	uint64_t start;
	uint64_t trace_id; /* this image's trace; 0: not traced */
	int entry;         /* an entry under this pid is this process's */
	int published;     /* this image wrote it */
	int created;       /* this image started the run */
	struct mt_run_state *state;
} run;

/* The trace id this process's children name as their parent: the latest
 * traced image of the process, else its own parent's. */
static uint64_t children_parent(void)
{
	if (run.trace_id)
		return run.trace_id;
	return run.me.last ? run.me.last : run.me.parent;
}

static int first_image(void)
{
	return (run.me.flags & MT_RUN_TOP) && run.me.images == 0;
}

int mt_run_join(void)
{
	pid_t ppid = 0;
	struct mt_run_entry *e = &run.me;
	uint64_t hash = mt_run_hash(mt_config_output_setting());
	run.pid = getpid();
	run.start = mt_run_start_of(0, &ppid);
	run.have_dir = mt_run_dir(run.dir) == 0;
	if (run.have_dir && mt_run_entry_read(run.dir, run.pid, run.start, e) == 0) {
		/* An earlier image of this process; with another MEMTRACE_OUTPUT
		 * it starts a run of its own. */
		run.entry = 1;
		if (e->output_hash == hash)
			return first_image();
	} else if (run.have_dir && ppid > 1 &&
		   mt_run_entry_read(run.dir, ppid, mt_run_start_of(ppid, NULL), e) == 0 &&
		   e->output_hash == hash) {
		e->parent = e->last ? e->last : e->parent;
		e->last = 0;
		e->images = 0;
		e->flags = 0;
		return 0;
	}
	*e = (struct mt_run_entry){ .run_id = mt_run_new_id(), .output_hash = hash,
				    .flags = MT_RUN_TOP };
	run.created = 1;
	return 1;
}

/* MEMTRACE_ONLY names executables by their file's base name, after
 * symbolic links (python3 runs python3.11), and a #! script by its
 * interpreter's. */
static int only_matches(void)
{
	char exe[PATH_MAX];
	if (!mt_cfg.only[0])
		return 1;
	ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
	exe[n > 0 ? n : 0] = 0;
	const char *slash = strrchr(exe, '/');
	return n > 0 && mt_config_only_matches(slash ? slash + 1 : exe);
}

int mt_run_traced(void)
{
	if (!only_matches())
		return 0;
	switch (mt_cfg.follow) {
	case MT_FOLLOW_EXEC:
		return (run.me.flags & MT_RUN_TOP) != 0;
	case MT_FOLLOW_NONE:
		return first_image();
	default:
		return 1;
	}
}

void mt_run_begin(int traced)
{
	if (run.created) {
		if (mt_config_expand_output(run.me.base, sizeof run.me.base))
			run.me.base[0] = 0; /* said when the trace is created */
		if (run.have_dir) {
			mt_run_sweep(run.dir);
			run.state = mt_run_state_map(run.dir, run.me.run_id, 1);
		}
	} else if (run.have_dir && !run.state) { /* a fork child has its parent's */
		run.state = mt_run_state_map(run.dir, run.me.run_id, 0);
	}
	run.trace_id = traced ? mt_run_new_id() : 0;
}

/* base with ".SUFFIX" put before its ".trace", or after it when it has
 * none. */
static int name_with(char *out, size_t cap, const char *base, const char *suffix)
{
	size_t len = strlen(base);
	int ext = len > 6 && !strcmp(base + len - 6, ".trace") ? 6 : 0;
	int n = snprintf(out, cap, "%.*s.%s%s", (int)(len - (size_t)ext), base, suffix,
			 ext ? ".trace" : "");
	return n > 0 && (size_t)n < cap ? 0 : -1;
}

static int create(const char *path)
{
	return open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
}

/* The top process's first traced image names the run: NAME.trace, or
 * NAME.N.trace when an older file has that name (the tracer never writes
 * over a file).  Every other image takes NAME.PID.trace, then
 * NAME.PID.N.trace. */
static int create_named(char *path, size_t cap)
{
	char suffix[32];
	const char *base = run.me.base;
	int top = (run.me.flags & MT_RUN_TOP) && !run.me.last;
	if (!base[0] || (size_t)snprintf(path, cap, "%s", base) >= cap) {
		errno = ENAMETOOLONG;
		return -1;
	}
	int fd = top ? create(path) : -1;
	for (int i = top; fd < 0 && (i == 0 || errno == EEXIST) && i < 1000; i++) {
		if (top)
			snprintf(suffix, sizeof suffix, "%d", i);
		else if (i == 0)
			snprintf(suffix, sizeof suffix, "%d", (int)run.pid);
		else
			snprintf(suffix, sizeof suffix, "%d.%d", (int)run.pid, i);
		if (name_with(path, cap, base, suffix)) {
			errno = ENAMETOOLONG;
			return -1;
		}
		fd = create(path);
	}
	if (fd >= 0 && top && strcmp(path, base))
		memcpy(run.me.base, path, strlen(path) + 1); /* the run's name moved */
	return fd;
}

int mt_run_create_trace(char *path, size_t cap)
{
	int fd = create_named(path, cap);
	struct mt_run_state *s = run.state;
	if (fd >= 0 && s) {
		__atomic_add_fetch(&s->traces, 1, __ATOMIC_ACQ_REL);
		if (!__atomic_exchange_n(&s->first_set, 1, __ATOMIC_ACQ_REL))
			snprintf(s->first, sizeof s->first, "%s", path);
	}
	return fd;
}

void mt_run_drop_trace(const char *path)
{
	unlink(path);
	if (run.state)
		__atomic_sub_fetch(&run.state->traces, 1, __ATOMIC_ACQ_REL);
}

size_t mt_run_header(uint8_t *buf, size_t n)
{
	const char *slash = strrchr(run.me.base, '/');
	const char *name = slash ? slash + 1 : run.me.base;
	uint64_t pred = run.me.last;
	n = mt_kv_put_u64(buf, n, MT_H_TRACE_ID, run.trace_id);
	if (run.me.parent)
		n = mt_kv_put_u64(buf, n, MT_H_PARENT_TRACE, run.me.parent);
	if (pred)
		n = mt_kv_put_u64(buf, n, MT_H_EXEC_PRED, pred);
	n = mt_kv_put_u64(buf, n, MT_H_RUN_ID, run.me.run_id);
	if (run.me.flags & MT_RUN_TOP)
		n = mt_kv_put_u64(buf, n, MT_H_RUN_TOP, 1);
	return mt_kv_put_bytes(buf, n, MT_H_RUN_NAME, name, strlen(name));
}

void mt_run_fork_child(void)
{
	run.me.parent = children_parent();
	run.me.last = 0;
	run.me.images = 0;
	run.me.flags = 0;
	run.pid = getpid();
	run.start = mt_run_start_of(0, NULL);
	run.trace_id = 0;
	run.entry = run.published = run.created = 0;
}

void mt_run_publish(void)
{
	struct mt_run_entry e;
	pid_t pid = getpid();
	if (!run.have_dir || !run.me.run_id || (pid == run.pid && run.published))
		return;
	e = run.me;
	if (pid != run.pid) {
		/* A child the fork handler never saw (vfork, or a parent that is
		 * not traced): it shares or copied our memory, which it must not
		 * change. */
		e.parent = children_parent();
		e.last = 0;
		e.images = 1;
		e.flags = 0;
		e.start = mt_run_start_of(0, NULL);
	} else {
		e.last = run.trace_id ? run.trace_id : run.me.last;
		e.images = run.me.images + 1;
		e.start = run.start;
	}
	if (mt_run_entry_write(run.dir, pid, &e) == 0 && pid == run.pid)
		run.entry = run.published = 1;
}

void mt_run_say(const char *msg)
{
	struct mt_run_state *s = run.state;
	if (s && __atomic_exchange_n(&s->said, 1, __ATOMIC_ACQ_REL))
		return;
	if (s && s->launcher)
		snprintf(s->error, sizeof s->error, "%s", msg);
	else
		mt_log("%s", msg);
}

/* The top process's line: what it wrote, and how many traces its run has
 * so far.  Where the traces went is news for a person at a terminal only: a
 * program reading its child's stderr must see what the child wrote. */
static void say_run(const char *trace, uint64_t events)
{
	struct mt_run_state *s = run.state;
	unsigned traces = s ? __atomic_load_n(&s->traces, __ATOMIC_ACQUIRE) : trace != NULL;
	const char *first = s && s->first[0] ? s->first : trace;
	if ((trace || traces) && !mt_stderr_is_terminal())
		return;
	if (trace && traces <= 1)
		mt_log("wrote %s (%llu events)", trace, (unsigned long long)events);
	else if (trace)
		mt_log("wrote %s (%llu events); its run has %u traces so far: memtrace report %s",
		       trace, (unsigned long long)events, traces, first);
	else if (traces)
		mt_log("the run has %u traces so far: memtrace report %s", traces, first);
	else if (mt_cfg.only[0])
		mt_log("no process matched MEMTRACE_ONLY=%s so far; nothing was traced",
		       mt_cfg.only);
}

void mt_run_exit(const char *trace, uint64_t events)
{
	pid_t pid = getpid();
	if (!run.have_dir || !run.me.run_id)
		return;
	if (pid != run.pid) { /* a child that shares or copied our memory */
		mt_run_entry_remove(run.dir, pid);
		return;
	}
	if (run.entry)
		mt_run_entry_remove(run.dir, pid);
	if (!(run.me.flags & MT_RUN_TOP))
		return;
	struct mt_run_state *s = run.state;
	int said = s && __atomic_load_n(&s->said, __ATOMIC_ACQUIRE);
	if (!mt_cfg.quiet && !(s && s->launcher) && !(said && !trace))
		say_run(trace, events);
	if (s && !s->launcher)
		mt_run_state_remove(run.dir, run.me.run_id);
}
