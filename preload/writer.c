/*
 * writer.c - the writer thread.  It wakes every few milliseconds (or when a
 * producer's ring fills), moves each ring's new events into the trace as a
 * segment of that thread's stream, encodes them, compresses each block
 * with zstd and appends it to the trace.  A block goes out when it is full
 * or every MEMTRACE_FLUSH_MS, so a killed process loses at most that much.
 * The streams are not merged: the reader orders them by their epochs
 * (trace_format.h, "Order").
 *
 * A round: the writer advances the epoch counter and announces the new
 * epoch (EPOCH, TIME) in stream 0; issues an asymmetric barrier and reads
 * each ring's busy flag and head (ring.h), which bounds the epochs any
 * event still to be published can have; takes the definitions (meta.h),
 * which then cover every published event; writes each ring's new events;
 * and last, the bound as stream 0's HORIZON.
 *
 * Every MEMTRACE_RSS_MS the writer also samples what the OS sees
 * (sampler.c), in stream 0 at the round's epoch.
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

/* One ring during one round. */
struct cursor {
	struct mt_ring *r;
	uint64_t pos, end; /* events [pos, end) are published */
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
	struct mt_stream s0;  /* the process's own stream */
	uint64_t streams;  /* stream numbers given so far */
	uint64_t horizon;  /* the last HORIZON */
	struct mt_stream *seg; /* the stream of the segment being encoded */
	size_t seg_at;     /* where its STREAM record goes */
	uint64_t events, blocks;
	uint64_t start_us, time_us, flush_us;
	struct mt_sample sample;  /* a periodic or the last sample */
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

/* The configured level while the writer keeps up; level 1 while a ring is
 * over a quarter full (more than its kick calls the writer for), since
 * then every microsecond the writer spends is one the program may spend
 * waiting.  zstd's fast levels (-5) were tried there: 5 to 10 times faster
 * than level 1, but they hardly compress these records at all. */
static int level(void)
{
	return w.behind ? 1 : mt_cfg.zstd_level;
}

static int write_block(int type, const void *raw, size_t len)
{
	ZSTD_CCtx_setParameter(w.cctx, ZSTD_c_compressionLevel, level());
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

/* ---- segments ---------------------------------------------------------- */

/* Opens a segment of stream s: its STREAM record is written when the
 * segment ends and its length is known.  A ring's first segment gives it
 * its number and opens with its THREAD. */
static void seg_begin(struct mt_stream *s)
{
	if (w.enc.len + MT_STREAM_MAX + MT_REC_MAX > MT_BLOCK_MAX_RAW)
		flush_events();
	w.seg = s;
	w.seg_at = w.enc.len;
	w.enc.len += MT_STREAM_MAX;
	w.enc.prev_addr = s->prev_addr;
	if (!s->opened) {
		s->number = ++w.streams;
		s->opened = 1;
		mt_enc_value(&w.enc, MT_REC_THREAD, s->tid);
	}
}

static void seg_end(void)
{
	struct mt_stream *s = w.seg;
	if (!s)
		return;
	uint8_t head[MT_STREAM_MAX];
	size_t body = w.seg_at + MT_STREAM_MAX, n = w.enc.len - body;
	s->prev_addr = w.enc.prev_addr;
	w.seg = NULL;
	w.enc.len = w.seg_at;
	if (!n)
		return;
	size_t h = mt_enc_stream(head, s->number, n);
	memmove(w.enc.buf + w.seg_at + h, w.enc.buf + body, n);
	memcpy(w.enc.buf + w.seg_at, head, h);
	w.enc.len = w.seg_at + h + n;
}

/* Room for `need` more bytes: a full block goes out, and the open
 * segment's stream goes on in the next one. */
static void room(size_t need)
{
	if (w.enc.len + need <= MT_BLOCK_MAX_RAW)
		return;
	struct mt_stream *s = w.seg;
	seg_end();
	flush_events();
	if (s)
		seg_begin(s);
}

/* The open segment's records from here on belong to epoch e. */
static void put_epoch(uint64_t e)
{
	struct mt_stream *s = w.seg;
	if (e > s->epoch) {
		room(MT_REC_MAX);
		mt_enc_value(&w.enc, MT_REC_EPOCH, e - s->epoch);
		s->epoch = e;
	}
}

/* ---- stream 0 ---------------------------------------------------------- */

static void stamp_time(void)
{
	uint64_t now = mono_us() - w.start_us;
	if (now > w.time_us) {
		room(MT_REC_MAX);
		mt_enc_value(&w.enc, MT_REC_TIME, now - w.time_us);
		w.time_us = now;
	}
}

static void put_sample(const struct mt_sample *s)
{
	room(MT_SAMPLE_MAX);
	mt_enc_sample(&w.enc, s->mask, s->v);
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
		room(n);
		memcpy(w.enc.buf + w.enc.len, p, n);
		w.enc.len += n;
	}
}

/* Opens stream 0's segment at a new epoch e, with its time. */
static void s0_begin(uint64_t e)
{
	seg_begin(&w.s0);
	put_epoch(e);
	stamp_time();
}

/* ---- a ring's segment --------------------------------------------------- */

/* A mark's sample arrives as MT_SAMPLE_PARTS events right behind its
 * MARK, all of one ring. */
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

/* A REALLOC_OUT with its REALLOC_IN right behind it in the ring, in the
 * same epoch, is one REALLOC when the block did not move (in place, failed,
 * or realloc(p, 0) freeing it).  A block that moved keeps its two records:
 * another thread may have been given the old block between them, and the
 * reader pairs them per thread.  Returns the events consumed. */
static int put_realloc(struct mt_ring *r, const struct mt_event *e, const struct mt_event *next)
{
	int dom = MT_EV_OP_DOM(MT_EV_OPBITS(e->size));
	if (next && MT_EV_OPBITS(next->size) == MT_EV_OP(MT_REC_REALLOC_IN, dom, 0) &&
	    next->epoch == e->epoch && (next->addr == e->addr || !next->addr)) {
		mt_enc_realloc(&w.enc, dom, e->addr, MT_EV_SIZE(next->size), next->addr);
		w.events++;
		return 2;
	}
	mt_enc_addr_only(&w.enc, MT_REC_REALLOC_OUT, dom, e->addr);
	r->out_open |= 1u << dom;
	return 1;
}

static void put_realloc_in(struct mt_ring *r, int dom, uint64_t size, uint64_t addr)
{
	if (r->out_open & (1u << dom)) {
		mt_enc_alloc(&w.enc, MT_REC_REALLOC_IN, dom, size, addr);
		r->out_open &= ~(1u << dom);
	} else {
		mt_enc_realloc(&w.enc, dom, 0, size, addr); /* realloc(NULL, n) */
	}
}

/* The late ring is shared: a THREAD event says whose events follow, and
 * they go to a stream of their own unless the same thread's came last. */
static void switch_thread(struct mt_ring *r, uint32_t tid)
{
	if (r->stream.opened && r->stream.tid == tid)
		return;
	seg_end();
	r->stream = (struct mt_stream){.tid = tid};
	r->out_open = 0;
	seg_begin(&r->stream);
}

/* Encodes event e (next: the one after it, if published); returns the
 * events consumed. */
static int encode(struct mt_ring *r, const struct mt_event *e, const struct mt_event *next)
{
	uint64_t op = MT_EV_OPBITS(e->size), size = MT_EV_SIZE(e->size);
	int kind = MT_EV_OP_KIND(op), dom = MT_EV_OP_DOM(op);
	if (kind == MT_REC_THREAD) {
		switch_thread(r, (uint32_t)e->addr);
		return 1;
	}
	room(MT_SAMPLE_MAX);
	put_epoch(e->epoch);
	switch (kind) {
	case MT_REC_REALLOC_OUT:
		return put_realloc(r, e, next);
	case MT_REC_REALLOC_IN:
		put_realloc_in(r, dom, size, e->addr);
		break;
	case MT_REC_LOC:
	case MT_REC_MARK:
	case MT_REC_STACK:
	case MT_REC_SCRIPT:
		mt_enc_value(&w.enc, kind, e->addr);
		return 1;
	case MT_REC_ALIGNED:
		mt_enc_aligned(&w.enc, dom, MT_EV_OP_FN(op), e->aux, size, e->addr);
		break;
	case MT_REC_SAMPLE:
		put_sample_part(r, MT_EV_OP_FN(op), e);
		return 1;
	case MT_REC_MMAP:
	case MT_REC_MREMAP_IN:
		mt_enc_map(&w.enc, kind, size, e->addr, (uint32_t)e->aux, e->aux >> 32);
		break;
	case MT_REC_FREE:
		mt_enc_addr_only(&w.enc, kind, dom, e->addr);
		break;
	default: /* MALLOC, CALLOC, ARENA_ALLOC, ARENA_FREE, MUNMAP, MREMAP_OUT */
		mt_enc_alloc(&w.enc, kind, dom, size, e->addr);
		/* Arena blocks are not the program's allocator calls: the
		 * report does not count them among its events either. */
		if (kind == MT_REC_ARENA_ALLOC || kind == MT_REC_ARENA_FREE)
			return 1;
	}
	w.events++;
	return 1;
}

/* The ring's events [pos, end) as a segment of its stream. */
static void put_ring(struct cursor *c)
{
	struct mt_ring *r = c->r;
	if (c->pos == c->end)
		return;
	seg_begin(&r->stream);
	while (c->pos < c->end) {
		const struct mt_event *e = &r->ev[c->pos & r->mask];
		const struct mt_event *next =
			c->pos + 1 < c->end ? &r->ev[(c->pos + 1) & r->mask] : NULL;
		c->pos += (uint64_t)encode(r, e, next);
	}
	seg_end();
	__atomic_store_n(&r->tail, c->pos, __ATOMIC_RELEASE);
}

/* ---- rounds ------------------------------------------------------------- */

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

/* Whether a round has anything to write: new events, or a sample due. */
static int round_due(uint64_t now)
{
	if (!mt_sampler_wait_us(now))
		return 1;
	size_t n = mt_threads_snapshot(&w.snap, &w.snap_cap);
	for (size_t i = 0; i < n; i++)
		if (__atomic_load_n(&w.snap[i]->head, __ATOMIC_ACQUIRE) != w.snap[i]->tail)
			return 1;
	return 0;
}

/* Reads each ring's busy flag and head after the barrier that followed
 * epoch e's start; returns the epoch every event yet to be published is
 * at or above (ring.h). */
static uint64_t read_heads(struct cursor *cur, size_t n, uint64_t e)
{
	uint64_t low = e;
	uint32_t with_events = 0;
	w.behind = 0;
	for (size_t i = 0; i < n; i++) {
		struct mt_ring *r = w.snap[i];
		if (__atomic_load_n(&r->busy, __ATOMIC_ACQUIRE)) {
			uint64_t last = __atomic_load_n(&r->epoch, __ATOMIC_RELAXED);
			low = last < low ? last : low;
		}
		cur[i] = (struct cursor){r, r->tail, __atomic_load_n(&r->head, __ATOMIC_ACQUIRE)};
		w.behind |= cur[i].end - cur[i].pos > (r->mask + 1) / 4;
		with_events += cur[i].end != cur[i].pos;
	}
	__atomic_store_n(&mt_epoch.several, with_events > 1, __ATOMIC_RELAXED);
	return low;
}

/* One round (see the top of this file); status: this round's read of
 * /proc, if it made one, for a sample.  Returns nonzero when it could not
 * run and must be tried again. */
static int drain_round(const char *status)
{
	uint64_t now = mono_us();
	if (!round_due(now))
		return 0;
	uint64_t e = mt_epoch_advance();
	mt_barrier_all();
	size_t n = mt_threads_snapshot(&w.snap, &w.snap_cap);
	struct cursor *cur = cursors(n ? n : 1);
	if (!cur)
		return 1;
	uint64_t low = read_heads(cur, n, e);
	s0_begin(e);
	if (!mt_sampler_wait_us(now)) {
		mt_sampler_take(&w.sample, now, 0, status);
		put_sample(&w.sample);
	}
	/* Taken after the heads: it defines everything they refer to. */
	put_definitions();
	seg_end();
	for (size_t i = 0; i < n; i++)
		put_ring(&cur[i]);
	if (low > w.horizon) {
		seg_begin(&w.s0);
		mt_enc_value(&w.enc, MT_REC_HORIZON, low - w.horizon);
		w.horizon = low;
		seg_end();
	}
	mt_threads_recycle();
	return 0;
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
	if (mt_cfg.rss_ms && kind != REQ_STOP) {
		/* the figures at the end, in an epoch after every event's */
		s0_begin(mt_epoch_advance());
		mt_sampler_take(&w.sample, mono_us(), 1, NULL);
		put_sample(&w.sample);
		seg_end();
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
	/* Stream numbers, address and epoch states start afresh in each trace. */
	w.s0 = (struct mt_stream){.opened = 1};
	w.streams = w.horizon = 0;
	w.seg = NULL;
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
	w.part_ring = NULL;
	mt_sampler_fork_child();
	w.state = W_NONE;
	w.lock = 0;
	w.wake = w.sleeping = 0;
}
