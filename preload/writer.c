/*
 * writer.c - the writer thread.  It wakes every few milliseconds (or when a
 * producer's ring fills), merges the per-thread rings into one stream in
 * time-stamp order, encodes it into blocks, compresses each block with zstd
 * and appends it to the trace.  A block goes out when it is full or every
 * MEMTRACE_FLUSH_MS, so a killed process loses at most that much.
 *
 * Every MEMTRACE_RSS_MS the writer also samples what the OS sees
 * (sampler.c) and puts the sample into the stream where it belongs: after
 * the events stamped before it.
 *
 * The thread starts with the process and runs to its end, except around
 * fork().  Before fork() it writes what the rings hold and ends, so that
 * when fork() returns the process has only the program's threads: CPython
 * 3.12 and later count them right there (warn_about_fork_with_threads,
 * Modules/posixmodule.c, reads /proc/self/stat) and warn a program that
 * forks with more than one.  The parent and the child start it again from
 * their events (mt_writer_kick): once a ring is half full, or once a
 * sample or a flush is due, but never within the forking thread's first
 * LAZY_EVENTS events after the fork, among which are the few between
 * fork()'s return and CPython's count (two on 3.13).  Until then the
 * events wait in the rings and no samples are taken; a sync (exit, _exit,
 * exec) starts it too.
 *
 * The merge may only emit an event when no ring can still publish an
 * earlier one.  After an asymmetric barrier at time t0 (see ring.h), a ring
 * that is not busy will only publish events stamped after t0, and a busy one
 * only events stamped at or after its last published stamp; the smallest of
 * those bounds is the horizon up to which the merge is exact.
 */
#define _GNU_SOURCE
#include "writer.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/futex.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>
#define ZSTD_STATIC_LINKING_ONLY /* ZSTD_createCCtx_advanced: exported by libzstd */
#include <zstd.h>

#include "codec.h"
#include "lifecycle.h"
#include "meta.h"
#include "native.h"
#include "ownmem.h"
#include "pyshim.h"
#include "run.h"
#include "sampler.h"
#include "threads.h"
#include "tracer.h"

#define WAKE_MS 10
#define SYNC_ROUNDS 2000 /* 1 ms apart: how long a sync waits for busy threads */
#define LAZY_EVENTS 256   /* a thread's events after its fork, before a restart */
#define KICK_STOPPED 63   /* kick mask while it is stopped: every 64 events */

/* The thread's life: started at load, stopped for each fork (and started
 * again lazily), ended at the process's end. */
enum { W_NONE, W_RUNNING, W_STOPPED };

/* What a sync asks of the thread. */
enum { REQ_SYNC, REQ_END, REQ_STOP };

/* What the merge knows of one ring during one round. */
struct cursor {
	struct mt_ring *r;
	uint64_t pos, end; /* events [pos, end) are visible */
};

static struct {
	const char *path; /* absolute */
	dev_t dev;
	ino_t ino;
	ZSTD_CCtx *cctx;
	struct mt_enc enc;
	uint8_t *out;
	size_t out_cap;
	int behind;        /* a ring was more than a quarter full last round */
	uint32_t tid;      /* thread of the last encoded event */
	struct mt_ring *out_ring; /* a held-back REALLOC_OUT, see put_held_out */
	int out_dom;
	uint64_t out_addr;
	int tid_valid;     /* a THREAD record opens each block */
	uint64_t events, blocks;
	uint64_t start_us, time_us, flush_us;
	struct mt_sample sample; /* taken, not yet in the stream (sample_due) */
	uint64_t sample_ts;       /* its stamp, 0 while only one thread records */
	int sample_due;
	struct mt_sample part;    /* a mark's sample, reassembled from its events */
	struct mt_ring *part_ring;
	uint8_t *defs;     /* definitions taken from meta.c */
	size_t defs_cap;
	struct mt_ring **snap;
	size_t snap_cap;
	struct cursor *cur;
	size_t cur_cap;
	pthread_t thread;
	pid_t thread_tid;
	pid_t pid;         /* the process whose writer this is */
	int state;         /* W_*, changed under lock */
	uint64_t stopped_us;
	int lock;          /* spinlock: starting, stopping and syncing the thread */
	/* futex words */
	int wake, sleeping;
	int req_seq, done_seq;
	int req_reason, req_kind;
} w;

static long futex(int *addr, int op, int val, const struct timespec *ts)
{
	return syscall(SYS_futex, addr, op, val, ts, NULL, 0);
}

static uint64_t mono_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

/* ---- output ----------------------------------------------------------- */

static int write_fd(int fd, const void *buf, size_t len)
{
	const char *p = buf;
	while (len) {
		ssize_t n = write(fd, p, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			mt_tracer_fail("cannot write %s (%s)", w.path,
				       n < 0 ? strerror(errno) : "no progress");
			return -1;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* The trace is opened for each write and closed again: a descriptor kept
 * open would be visible to the program, which may list its descriptors,
 * expect the lowest free one from open(), or close them all. */
static int write_all(const void *buf, size_t len)
{
	struct stat st;
	int fd = mt_fd_off_std(open(w.path, O_WRONLY | O_APPEND | O_NOFOLLOW | O_CLOEXEC));
	if (fd < 0 || fstat(fd, &st) || st.st_dev != w.dev || st.st_ino != w.ino) {
		mt_tracer_fail("cannot reopen the trace file %s (%s)", w.path,
			       fd < 0 ? strerror(errno) : "replaced by another file");
		if (fd >= 0)
			close(fd);
		return -1;
	}
	int rc = write_fd(fd, buf, len);
	close(fd);
	if (rc && !w.blocks)
		mt_run_drop_trace(w.path); /* a header alone is no trace worth keeping */
	return rc;
}

/* The configured level while the writer keeps up; the fastest one while
 * producers' rings are filling up, since then every microsecond the
 * writer spends is one the program may spend waiting. */
static int write_block(int type, const void *raw, size_t len)
{
	ZSTD_CCtx_setParameter(w.cctx, ZSTD_c_compressionLevel, w.behind ? 1 : mt_cfg.zstd_level);
	size_t n = mt_block_encode(w.cctx, type, raw, len, w.out, w.out_cap);
	if (!n) {
		mt_tracer_fail("cannot compress a block of %s", w.path);
		return -1;
	}
	return write_all(w.out, n);
}

static void flush_events(void)
{
	if (w.enc.len && write_block(MT_BLOCK_EVENTS, w.enc.buf, w.enc.len) == 0)
		w.blocks++;
	mt_enc_reset(&w.enc);
	w.tid_valid = 0;
	w.flush_us = mono_us();
}

static void write_footer(int reason)
{
	uint8_t buf[128];
	size_t n = 0;
	uint64_t lost, waits, threads, samples, sample_us;
	mt_threads_totals(&lost, &waits, &threads);
	mt_sampler_totals(&samples, &sample_us);
	n = mt_kv_put_u64(buf, n, MT_F_EVENTS, w.events);
	n = mt_kv_put_u64(buf, n, MT_F_LOST, lost);
	n = mt_kv_put_u64(buf, n, MT_F_WAITS, waits);
	n = mt_kv_put_u64(buf, n, MT_F_THREADS, threads);
	n = mt_kv_put_u64(buf, n, MT_F_END_US, mono_us() - w.start_us);
	n = mt_kv_put_u64(buf, n, MT_F_REASON, (uint64_t)reason);
	n = mt_kv_put_u64(buf, n, MT_F_BLOCKS, w.blocks);
	if (reason != MT_END_EXEC && mt_exit_status >= 0)
		n = mt_kv_put_u64(buf, n, MT_F_EXIT_STATUS, (uint64_t)mt_exit_status);
	n = mt_kv_put_u64(buf, n, MT_F_SAMPLES, samples);
	n = mt_kv_put_u64(buf, n, MT_F_SAMPLE_US, sample_us);
	write_block(MT_BLOCK_FOOTER, buf, n);
}

/* ---- encoding --------------------------------------------------------- */

static void put_thread(struct mt_ring *r)
{
	if (mt_enc_full(&w.enc))
		flush_events();
	if (!w.tid_valid || w.tid != r->tid) {
		mt_enc_value(&w.enc, MT_REC_THREAD, r->tid);
		w.tid = r->tid;
		w.tid_valid = 1;
	}
}

/* A REALLOC_OUT is held back in case its REALLOC_IN comes next: the pair
 * then goes out as one REALLOC record. */
static void put_held_out(void)
{
	struct mt_ring *r = w.out_ring;
	if (!r)
		return;
	put_thread(r);
	mt_enc_addr_only(&w.enc, MT_REC_REALLOC_OUT, w.out_dom, w.out_addr);
	r->out_open |= 1u << w.out_dom;
	w.out_ring = NULL;
}

static void put_realloc_in(struct mt_ring *r, int dom, uint64_t size, uint64_t addr)
{
	uint64_t old = 0;
	if (w.out_ring == r && w.out_dom == dom) {
		old = w.out_addr;
		w.out_ring = NULL;
	}
	put_held_out();
	put_thread(r);
	if (r->out_open & (1u << dom)) {
		mt_enc_alloc(&w.enc, MT_REC_REALLOC_IN, dom, size, addr);
		r->out_open &= ~(1u << dom);
	} else {
		mt_enc_realloc(&w.enc, dom, old, size, addr);
	}
}

static void stamp_time(void);

static void put_sample(const struct mt_sample *s)
{
	if (w.enc.len + MT_SAMPLE_MAX > MT_BLOCK_MAX_RAW)
		flush_events();
	mt_enc_sample(&w.enc, s->mask, s->v);
}

/* A mark's sample arrives as MT_SAMPLE_PARTS events right behind its
 * MARK, all of one ring and one stamp. */
static void put_sample_part(struct mt_ring *r, int part, const struct mt_event *e)
{
	if (part == 0)
		w.part_ring = r;
	else if (w.part_ring != r)
		return;
	mt_sample_from_part(&w.part, part, e->addr, MT_EV_SIZE(e->size), e->aux);
	if (part == MT_SAMPLE_PARTS - 1) {
		put_sample(&w.part);
		w.part_ring = NULL;
	}
}

static void encode(struct mt_ring *r, const struct mt_event *e)
{
	uint64_t op = MT_EV_OPBITS(e->size), size = MT_EV_SIZE(e->size);
	int kind = MT_EV_OP_KIND(op), dom = MT_EV_OP_DOM(op);
	switch (kind) {
	case MT_REC_THREAD:
		/* The late ring is shared: it says whose events follow. */
		put_held_out();
		r->tid = (uint32_t)e->addr;
		return;
	case MT_REC_REALLOC_IN:
		put_realloc_in(r, dom, size, e->addr);
		break;
	case MT_REC_REALLOC_OUT:
		put_held_out();
		w.out_ring = r;
		w.out_dom = dom;
		w.out_addr = e->addr;
		return;
	case MT_REC_LOC:
	case MT_REC_MARK:
	case MT_REC_STACK:
	case MT_REC_SCRIPT:
		put_held_out();
		put_thread(r);
		mt_enc_value(&w.enc, kind, e->addr);
		return;
	case MT_REC_ALIGNED:
		put_held_out();
		put_thread(r);
		mt_enc_aligned(&w.enc, dom, MT_EV_OP_FN(op), e->aux, size, e->addr);
		break;
	case MT_REC_SAMPLE:
		put_held_out();
		put_sample_part(r, MT_EV_OP_FN(op), e);
		return;
	case MT_REC_MMAP:
	case MT_REC_MREMAP_IN:
		put_held_out();
		put_thread(r);
		mt_enc_map(&w.enc, kind, size, e->addr, (uint32_t)e->aux, e->aux >> 32);
		break;
	case MT_REC_FREE:
		put_held_out();
		put_thread(r);
		mt_enc_addr_only(&w.enc, kind, dom, e->addr);
		break;
	default: /* MALLOC, CALLOC, ARENA_ALLOC, ARENA_FREE, MUNMAP, MREMAP_OUT */
		put_held_out();
		put_thread(r);
		mt_enc_alloc(&w.enc, kind, dom, size, e->addr);
		/* Arena blocks are not the program's allocator calls: the
		 * report does not count them among its events either. */
		if (kind == MT_REC_ARENA_ALLOC || kind == MT_REC_ARENA_FREE)
			return;
	}
	w.events++;
}

static void stamp_time(void)
{
	uint64_t now = mono_us() - w.start_us;
	if (now > w.time_us) {
		if (mt_enc_full(&w.enc))
			flush_events();
		mt_enc_value(&w.enc, MT_REC_TIME, now - w.time_us);
		w.time_us = now;
	}
}

/* Copies the producers' definitions into the stream, record by record so
 * that none straddles two blocks. */
static void put_definitions(void)
{
	size_t len = mt_meta_take(&w.defs, &w.defs_cap);
	struct mt_dec d;
	struct mt_rec rec;
	mt_dec_init(&d, w.defs, len);
	for (const uint8_t *p = d.p; mt_dec_next(&d, &rec) == 1; p = d.p) {
		size_t n = (size_t)(d.p - p);
		if (w.enc.len + n > MT_BLOCK_MAX_RAW)
			flush_events();
		memcpy(w.enc.buf + w.enc.len, p, n);
		w.enc.len += n;
	}
}

/* ---- merging ---------------------------------------------------------- */

static struct mt_event *ev_at(struct cursor *c)
{
	return &c->r->ev[c->pos & c->r->mask];
}

/* Emits, in stamp order, the visible events stamped at or before horizon.
 * Runs of one ring go out together while they sort before every other. */
static void merge(struct cursor *cur, size_t n, uint64_t horizon)
{
	for (;;) {
		size_t best = n;
		uint64_t best_ts = 0, next_ts = UINT64_MAX;
		for (size_t i = 0; i < n; i++) {
			if (cur[i].pos == cur[i].end)
				continue;
			uint64_t ts = ev_at(&cur[i])->ts;
			if (best == n || ts < best_ts) {
				if (best != n)
					next_ts = best_ts;
				best = i;
				best_ts = ts;
			} else if (ts < next_ts) {
				next_ts = ts;
			}
		}
		if (best == n || best_ts > horizon)
			return;
		struct cursor *c = &cur[best];
		uint64_t limit = next_ts < horizon ? next_ts : horizon;
		do {
			encode(c->r, ev_at(c));
			c->pos++;
		} while (c->pos < c->end && ev_at(c)->ts <= limit);
	}
}

static struct cursor *cursors(size_t n)
{
	if (n > w.cur_cap) {
		size_t cap = 2 * w.cur_cap > n ? 2 * w.cur_cap : n;
		struct cursor *c = mt_own_remap(w.cur, w.cur_cap * sizeof *c, cap * sizeof *c);
		if (!c)
			return NULL;
		w.cur = c;
		w.cur_cap = cap;
	}
	return w.cur;
}

/* A periodic sample, after the ring heads were read (see drain_round):
 * status, this round's read of /proc, if the round made one. */
static void sample_if_due(int multi, const char *status)
{
	uint64_t now = mono_us();
	if (w.sample_due || mt_sampler_wait_us(now))
		return;
	w.sample_ts = multi ? mt_clock_stamp() : 0;
	mt_sampler_take(&w.sample, now, 0, status);
	w.sample_due = 1;
}

static void put_due_sample(void)
{
	stamp_time();
	put_sample(&w.sample);
	w.sample_due = 0;
}

/* One round: returns the number of events still visible but held back. */
static uint64_t drain_round(const char *status)
{
	int multi = __atomic_load_n(&mt_multi, __ATOMIC_ACQUIRE);
	uint64_t t0 = 0, horizon = UINT64_MAX, pending = 0;
	if (multi) {
		t0 = mt_clock_stamp();
		mt_barrier_all();
	}
	size_t n = mt_threads_snapshot(&w.snap, &w.snap_cap);
	struct cursor *cur = n ? cursors(n) : NULL;
	if (!cur)
		return n; /* no rings: done; no memory: try again */
	w.behind = 0;
	for (size_t i = 0; i < n; i++) {
		struct mt_ring *r = w.snap[i];
		int busy = __atomic_load_n(&r->busy, __ATOMIC_ACQUIRE);
		cur[i] = (struct cursor){r, r->tail, __atomic_load_n(&r->head, __ATOMIC_ACQUIRE)};
		w.behind |= cur[i].end - cur[i].pos > (r->mask + 1) / 4;
		if (!multi)
			continue;
		uint64_t bound = t0;
		if (busy) {
			bound = r->start_ts;
			if (cur[i].end) {
				uint64_t last = r->ev[(cur[i].end - 1) & r->mask].ts;
				bound = last > bound ? last : bound;
			}
		}
		horizon = bound < horizon ? bound : horizon;
	}
	/* Unstamped events are only ever from the sole producer, and only
	 * if no second thread had registered when the heads were read. */
	if (!multi && __atomic_load_n(&mt_multi, __ATOMIC_ACQUIRE))
		return 1;
	/* Taken after the heads: it defines everything they refer to. */
	put_definitions();
	int any = 0;
	for (size_t i = 0; i < n && !any; i++)
		any = cur[i].pos != cur[i].end;
	if (any)
		stamp_time();
	sample_if_due(multi, status);
	if (w.sample_due) {
		/* after the events stamped before it: with one thread, all that
		 * were published when it was taken */
		merge(cur, n, w.sample_ts < horizon ? w.sample_ts : horizon);
		if (w.sample_ts <= horizon)
			put_due_sample();
	}
	merge(cur, n, horizon);
	for (size_t i = 0; i < n; i++) {
		__atomic_store_n(&cur[i].r->tail, cur[i].pos, __ATOMIC_RELEASE);
		pending += cur[i].end - cur[i].pos;
	}
	if (w.out_ring && __atomic_load_n(&w.out_ring->exited, __ATOMIC_ACQUIRE))
		put_held_out(); /* its ring may be recycled now */
	mt_threads_recycle();
	return pending;
}

/* For a sync: everything published before the request goes out. */
static void drain_all(void)
{
	for (int i = 0; i < SYNC_ROUNDS && drain_round(NULL); i++) {
		struct timespec ts = {0, 1000 * 1000};
		nanosleep(&ts, NULL);
	}
}

/* ---- the thread ------------------------------------------------------- */

/* Until kicked, WAKE_MS or the next sample. */
static void sleep_until_kicked(void)
{
	uint64_t us = mt_sampler_wait_us(mono_us());
	if (us > WAKE_MS * 1000)
		us = WAKE_MS * 1000;
	struct timespec ts = {0, (long)us * 1000};
	__atomic_store_n(&w.sleeping, 1, __ATOMIC_SEQ_CST);
	if (!__atomic_exchange_n(&w.wake, 0, __ATOMIC_SEQ_CST))
		futex(&w.wake, FUTEX_WAIT_PRIVATE, 0, &ts);
	__atomic_store_n(&w.sleeping, 0, __ATOMIC_SEQ_CST);
	__atomic_store_n(&w.wake, 0, __ATOMIC_RELAXED);
}

/* Returns whether the thread is to end. */
static int serve_sync(void)
{
	int req = __atomic_load_n(&w.req_seq, __ATOMIC_ACQUIRE);
	if (req == w.done_seq)
		return 0;
	int kind = w.req_kind;
	if (__atomic_load_n(&mt_active, __ATOMIC_RELAXED) || kind != REQ_SYNC)
		drain_all();
	put_held_out();
	if (w.sample_due)
		put_due_sample();
	if (mt_cfg.rss_ms && kind != REQ_STOP) {
		/* the figures at the end */
		mt_sampler_take(&w.sample, mono_us(), 1, NULL);
		put_due_sample();
	}
	flush_events();
	if (kind != REQ_STOP)
		write_footer(w.req_reason);
	__atomic_store_n(&w.done_seq, req, __ATOMIC_RELEASE);
	futex(&w.done_seq, FUTEX_WAKE_PRIVATE, 1 << 30, NULL);
	return kind != REQ_SYNC;
}

/* Whether the first thread has exited: a zombie leader still counts in
 * the number of threads. */
static int leader_gone(void)
{
	char buf[1024], path[64];
	snprintf(path, sizeof path, "/proc/self/task/%d/stat", (int)getpid());
	char *p = mt_proc_read(path, buf, sizeof buf) ? strrchr(buf, ')') : NULL;
	return p && p[1] == ' ' && p[2] == 'Z';
}

/* A process ends when its last thread calls pthread_exit; our threads must
 * not keep it alive.  When only they are left, end it as glibc would have.
 * status: this thread's /proc status, read once per round for this and
 * for a sample (every file the tracer opens is, for a moment, a descriptor
 * a program listing its own could see). */
static void end_if_program_gone(const char *status)
{
	const char *p = status ? strstr(status, "\nThreads:") : NULL;
	long threads = p ? strtol(p + 9, NULL, 10) : 0;
	if (threads > 0 && threads <= 2 && threads - leader_gone() <= 1) /* this thread alone */
		exit(0);
}

/* The writer's files (the trace, opened for each write; /proc, read each
 * round) go into a descriptor table of its own.  In the program's, each
 * would for a moment be the lowest free descriptor, which a program listing
 * its own can see: CPython's test_pass_fds does, in a child that closed the
 * rest.  The copies of the program's descriptors are closed at once, so a
 * pipe the program closes still reaches its end of file. */
static void own_table(void)
{
	if (unshare(CLONE_FILES) != 0)
		return; /* a sandbox may refuse: the program's table then */
	if (close_range(0, ~0U, 0) != 0)
		for (int fd = 0; fd < 65536; fd++)
			close(fd);
	mt_log_own_table();
}

static void *writer_main(void *arg)
{
	(void)arg;
	mt_thread_self()->internal = 1;
	w.thread_tid = gettid();
	own_table();
	uint64_t checked = 0;
	for (;;) {
		char status[4096];
		const char *st = NULL;
		sleep_until_kicked();
		/* Kicked rounds come fast while the program is busy, so it is not
		 * gone: the check comes with the samples, or every WAKE_MS. */
		uint64_t now = mono_us();
		if (!mt_sampler_wait_us(now) || now - checked >= WAKE_MS * 1000) {
			st = mt_proc_read(MT_PROC_STATUS, status, sizeof status) ? status : NULL;
			end_if_program_gone(st);
			checked = now;
		}
		if (serve_sync())
			break;
		if (!__atomic_load_n(&mt_active, __ATOMIC_RELAXED))
			continue; /* keep answering syncs so no one waits forever */
		mt_native_poll();
		drain_round(st);
		if (w.enc.len && mono_us() - w.flush_us >= mt_cfg.flush_ms * 1000ull)
			flush_events();
	}
	return NULL;
}

/* The buffers and the compressor's workspace are the tracer's own mappings:
 * in the heap, they would change the program's heap (glibc raises its
 * mmap threshold when a large block is freed) and its figures. */
static int alloc_state(void)
{
	ZSTD_customMem own = {mt_own_alloc, mt_own_free, NULL};
	w.cctx = ZSTD_createCCtx_advanced(own);
	if (!w.enc.buf)
		w.enc.buf = mt_own_map(MT_BLOCK_MAX_RAW + MT_REC_MAX);
	w.out_cap = mt_block_bound(MT_BLOCK_MAX_RAW + MT_REC_MAX);
	if (!w.out)
		w.out = mt_own_map(w.out_cap);
	if (!w.cctx || !w.enc.buf || !w.out)
		return -1;
	return 0;
}

/* Under the lock.  pthread_create allocates (the new thread's TLS): not
 * the program's allocations, even when a producer starts the writer. */
static int spawn_thread(void)
{
	pthread_attr_t attr;
	sigset_t all, old;
	pthread_attr_init(&attr);
	pthread_attr_setstacksize(&attr, 256 * 1024);
	/* The program's signals must never be handled on our thread. */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	struct mt_ring *r = mt_internal_enter();
	w.wake = 1; /* a first round at once: a ring may be filling */
	int err = pthread_create(&w.thread, &attr, writer_main, NULL);
	if (!err)
		pthread_setname_np(w.thread, "memtrace-writer");
	mt_internal_leave(r);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	pthread_attr_destroy(&attr);
	__atomic_store_n(&w.state, err ? W_NONE : W_RUNNING, __ATOMIC_RELEASE);
	if (err)
		mt_tracer_fail("cannot start the writer thread of %s", w.path);
	return err ? -1 : 0;
}

int mt_writer_start(const char *path, int fd, const uint8_t *header, size_t len, int lazy)
{
	uint8_t pre[MT_PREAMBLE_LEN];
	struct stat st;
	if (fstat(fd, &st)) {
		mt_tracer_fail("cannot stat the trace file %s (%s)", path, strerror(errno));
		return -1;
	}
	w.path = path;
	w.dev = st.st_dev;
	w.ino = st.st_ino;
	w.start_us = w.flush_us = mono_us();
	w.time_us = 0;
	w.events = w.blocks = 0;
	w.req_seq = w.done_seq = 0;
	mt_enc_reset(&w.enc);
	w.tid_valid = 0;
	if (alloc_state()) {
		mt_tracer_fail("out of memory for the writer of %s", path);
		return -1;
	}
	mt_preamble(pre);
	size_t n = mt_block_encode(w.cctx, MT_BLOCK_HEADER, header, len, w.out, w.out_cap);
	if (write_fd(fd, pre, sizeof pre) || !n || write_fd(fd, w.out, n))
		return -1;
	w.pid = getpid();
	w.stopped_us = mono_us();
	w.state = W_STOPPED;
	return lazy ? 0 : spawn_thread();
}

static void lock(void)
{
	while (__atomic_exchange_n(&w.lock, 1, __ATOMIC_ACQUIRE))
		sched_yield();
}

static void unlock(void)
{
	__atomic_store_n(&w.lock, 0, __ATOMIC_RELEASE);
}

/* Whether a stopped writer is to start for this ring's events: not within
 * LAZY_EVENTS of the stop, which is the moment right after fork() returns
 * in the forking thread; then once the ring is half full, or a sample or a
 * flush is due. */
static int restart_due(const struct mt_ring *r)
{
	uint64_t used = r->head - __atomic_load_n(&r->tail, __ATOMIC_ACQUIRE);
	if (used > r->mask - KICK_STOPPED)
		return 1; /* full: the producer waits (never so soon after a fork) */
	if (r->head - r->stop_head < LAZY_EVENTS)
		return 0;
	if (used >= (r->mask + 1) / 2)
		return 1;
	uint64_t every = mt_cfg.flush_ms;
	if (mt_cfg.rss_ms && mt_cfg.rss_ms < every)
		every = mt_cfg.rss_ms;
	return mono_us() - __atomic_load_n(&w.stopped_us, __ATOMIC_RELAXED) >= every * 1000;
}

/* From a producer, inside an allocator call: the lock is only tried, and
 * never by a vfork child, which shares its parent's memory. */
static void restart(void)
{
	int saved = errno;
	sigset_t all, old;
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	if (getpid() == w.pid && !__atomic_exchange_n(&w.lock, 1, __ATOMIC_ACQUIRE)) {
		if (w.state == W_STOPPED)
			spawn_thread();
		unlock();
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	errno = saved;
}

void mt_writer_kick(struct mt_ring *r)
{
	switch (__atomic_load_n(&w.state, __ATOMIC_ACQUIRE)) {
	case W_RUNNING:
		r->kick_mask = r->mask >> 2;
		if (__atomic_load_n(&w.sleeping, __ATOMIC_RELAXED) &&
		    !__atomic_exchange_n(&w.wake, 1, __ATOMIC_SEQ_CST))
			futex(&w.wake, FUTEX_WAKE_PRIVATE, 1, NULL);
		break;
	case W_STOPPED:
		r->kick_mask = KICK_STOPPED;
		if (restart_due(r))
			restart();
		break;
	}
}

/* Under the lock: a request for the thread to serve; its sequence number. */
static int post(int kind, int reason)
{
	w.req_reason = reason;
	w.req_kind = kind;
	return __atomic_add_fetch(&w.req_seq, 1, __ATOMIC_RELEASE);
}

/* Under the lock: the running thread serves one request; with REQ_END or
 * REQ_STOP it then ends, and is gone from the process on return. */
static void request(int kind, int reason)
{
	int seq = post(kind, reason);
	__atomic_store_n(&w.wake, 1, __ATOMIC_SEQ_CST);
	futex(&w.wake, FUTEX_WAKE_PRIVATE, 1, NULL);
	if (kind != REQ_SYNC) {
		/* One wake-up less than waiting for done_seq first: on a
		 * loaded machine each costs a scheduling delay. */
		pthread_join(w.thread, NULL);
		/* The kernel wakes the joiner before it takes the thread out
		 * of the process's count (exit_mm comes before exit_notify). */
		for (int i = 0; i < 100000 && syscall(SYS_tgkill, w.pid, w.thread_tid, 0) == 0; i++)
			sched_yield();
		return;
	}
	int done;
	while ((done = __atomic_load_n(&w.done_seq, __ATOMIC_ACQUIRE)) != seq)
		futex(&w.done_seq, FUTEX_WAIT_PRIVATE, done, NULL);
}

int mt_writer_sync(int reason, int stop)
{
	lock();
	if (w.state == W_STOPPED && getpid() == w.pid)
		spawn_thread();
	if (w.state != W_RUNNING) {
		unlock();
		return -1;
	}
	if (pthread_equal(pthread_self(), w.thread)) {
		/* exit() from end_if_program_gone: we are the writer. */
		post(stop ? REQ_END : REQ_SYNC, reason);
		serve_sync();
	} else {
		request(stop ? REQ_END : REQ_SYNC, reason);
	}
	if (stop)
		__atomic_store_n(&w.state, W_NONE, __ATOMIC_RELEASE);
	unlock();
	return 0;
}

uint64_t mt_writer_events(void)
{
	return w.events;
}

void mt_writer_fork_prepare(struct mt_ring *own)
{
	lock();
	/* A ring a quarter full goes out first, so that it is not half full
	 * within LAZY_EVENTS after the fork (ring sizes are 1024 or more). */
	if (w.state == W_STOPPED && own && own->head - own->tail >= (own->mask + 1) / 4 &&
	    getpid() == w.pid)
		spawn_thread();
	if (w.state == W_RUNNING && !pthread_equal(pthread_self(), w.thread)) {
		request(REQ_STOP, 0);
		__atomic_store_n(&w.state, W_STOPPED, __ATOMIC_RELEASE);
	}
	if (own && w.state == W_STOPPED) {
		own->stop_head = own->head;
		own->kick_mask = KICK_STOPPED; /* checked against the time soon */
	}
}

void mt_writer_fork_parent(void)
{
	/* The time for a restart counts from fork()'s return. */
	__atomic_store_n(&w.stopped_us, mono_us(), __ATOMIC_RELAXED);
	unlock();
}

void mt_writer_fork_child(void)
{
	/* The parent's half-used compressor may be mid-call: leave it. */
	w.cctx = NULL;
	w.out_ring = NULL;
	w.part_ring = NULL;
	w.sample_due = 0;
	mt_sampler_fork_child();
	w.state = W_NONE;
	w.lock = 0;
	w.wake = w.sleeping = 0;
}
