/*
 * test_order.c - the reporter on per-thread streams (format 2) against a
 * globally ordered reference.
 *
 * Randomized multi-threaded executions are simulated step by step: each
 * step is one thread's allocator event (stamped with the epoch it loads,
 * its record written but not yet published: the thread is busy), one
 * thread publishing, or a writer round.  The epochs are the recorder's:
 * every event loads the counter; each thread advances it every K of its
 * events (K random and small, so that epochs are short and many); the
 * writer advances it at random rounds, writes EPOCH and TIME in stream 0,
 * each ring's published records as its segment and then a HORIZON at the
 * lowest epoch a busy ring announced.  The order of the steps is the
 * reference: a plain evaluator applies the events in it and takes, at
 * every epoch boundary, the live bytes and blocks and the events so far,
 * and at the end every figure the report gives (domains, sites, leaks,
 * temporaries, unmatched frees).
 *
 * The reporter must give the same figures, and the same live figures at
 * every epoch boundary: a probe thread, the lowest thread stream, marks
 * the start of chosen epochs, and a step's start counters are the heap
 * at that boundary.  What cannot be equal: the order of unrelated threads'
 * events inside one epoch is not in the trace, so the heap's highest
 * point inside an epoch is not either.  For the peaks the test asserts the
 * bound instead: at least the highest heap at an epoch boundary, at most
 * the heap at the start of an epoch plus the bytes allocated in it.
 *
 * The threads give back blocks as the recorder records them: each keeps
 * a table of the blocks it made and has not given back, and a give-back
 * of any other block advances the epoch and clears the address from every
 * thread's table.  With that, every hand-over goes in the random
 * executions: blocks freed or reallocated by other threads than their
 * makers, addresses reused at once across threads, a moved realloc's old
 * address taken by another thread before its IN, unmatched frees,
 * reallocs of blocks made before tracing.  test_aba_three_threads and the
 * tests after it make the hard cases on purpose, with the streams
 * numbered in every order.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "report.h"
#include "tracegen.h"

#define MAXT 6        /* threads, the probe included */
#define NADDR 12      /* addresses per domain */
#define NPRE 4        /* of which live before tracing */
#define NFRAMES 4     /* Python locations (PYOBJ sites) */
#define NDOMS 2       /* MALLOC and PYOBJ */
#define MAXEPOCHS 4096
#define RING_CAP (1u << 18)

static const int doms[NDOMS] = { MT_DOM_MALLOC, MT_DOM_PYOBJ };

static uint64_t addr_of(int d, int i)
{
	return (d ? 0x900000u : 0x100000u) + 0x100u * (uint64_t)i;
}

/* ---- the reference: the events in the order of the steps --------------------- */

struct ref_site {
	uint64_t allocs, bytes, live_bytes, live_blocks, temp_allocs, temp_bytes;
};

struct ref_dom {
	uint64_t allocs, reallocs, frees, failed, bytes, live, blocks, unmatched;
	uint64_t peak;
};

struct ref_block {
	bool live;
	uint64_t size;
	int site;
};

struct boundary {
	uint64_t live[NDOMS], blocks[NDOMS], allocs[NDOMS], frees[NDOMS];
};

struct ref {
	struct ref_dom dom[NDOMS];
	struct ref_block blk[NDOMS][NADDR];
	struct ref_site site[NDOMS][NFRAMES + 1];
	struct {
		int last_dom, last_addr;
		bool out_found;
		int out_addr;
		struct ref_block out;
	} th[MAXT];
	uint64_t temp_allocs, temp_bytes;
	/* per epoch: the figures at its start, and what it allocated */
	struct boundary at[MAXEPOCHS];
	uint64_t alloc_bytes[MAXEPOCHS][NDOMS];
	uint64_t peak_within[MAXEPOCHS][NDOMS]; /* the true highest, inside it */
};

static void ref_enter(struct ref *r, int t, int d, int a, uint64_t size, int site, uint64_t e)
{
	struct ref_dom *rd = &r->dom[d];
	r->blk[d][a] = (struct ref_block){ .live = true, .size = size, .site = site };
	rd->live += size;
	rd->blocks++;
	rd->bytes += size;
	if (rd->live > rd->peak)
		rd->peak = rd->live;
	if (rd->live > r->peak_within[e][d])
		r->peak_within[e][d] = rd->live;
	r->alloc_bytes[e][d] += size;
	r->site[d][site].allocs++;
	r->site[d][site].bytes += size;
	r->site[d][site].live_bytes += size;
	r->site[d][site].live_blocks++;
	r->th[t].last_dom = d;
	r->th[t].last_addr = a;
}

/* Takes a block out; false if it was not live. */
static bool ref_leave(struct ref *r, int d, int a, struct ref_block *out)
{

	struct ref_block *b = &r->blk[d][a];
	if (!b->live)
		return false;
	*out = *b;
	b->live = false;
	r->dom[d].live -= b->size;
	r->dom[d].blocks--;
	r->site[d][b->site].live_bytes -= b->size;
	r->site[d][b->site].live_blocks--;
	return true;
}

static void ref_free(struct ref *r, int t, int d, int a)
{
	struct ref_block b;
	r->dom[d].frees++;
	if (!ref_leave(r, d, a, &b)) {
		r->dom[d].unmatched++;
		return;
	}
	if (r->th[t].last_dom == d && r->th[t].last_addr == a) { /* temporary */
		r->site[d][b.site].temp_allocs++;
		r->site[d][b.site].temp_bytes += b.size;
		r->temp_allocs++;
		r->temp_bytes += b.size;
		r->th[t].last_dom = -1;
	}
}

/* ---- the simulated process ---------------------------------------------------- */

enum { FREE_ADDR, LIVE, PRE };

struct addr_state {
	int state;
	int holder;            /* LIVE, PRE: the thread that may free it */
	int made_by;           /* LIVE: the thread that allocated it ... */
	uint64_t made_epoch;   /* ... in this epoch */
};

struct thread {
	uint64_t tid, stream;
	struct mt_enc ring;  /* written records; [0, pub) published */
	size_t pub;
	uint64_t announced;
	bool busy, started;
	unsigned k, count;
	int loc;
	/* a moved realloc between its OUT and its IN */
	bool in_realloc;
	int rd, ra;
	uint64_t rsize;
	/* the recorder's table of the blocks the thread made and has not
	 * given back */
	bool own[NDOMS][NADDR];
};

struct sim {
	uint64_t rng;
	int nthreads;        /* threads[0] is the probe */
	struct thread th[MAXT];
	struct addr_state addr[NDOMS][NADDR];
	uint64_t epoch;
	uint64_t s0_announced, horizon;
	struct ref ref;
	/* the marks the probe made, as epochs */
	uint64_t marks[MAXEPOCHS];
	size_t nmarks;
	/* the trace */
	struct tg tg;
	uint8_t *payload;
	size_t payload_len;
	uint64_t time_us;
	bool defined;
};

static uint64_t rnd(struct sim *s)
{
	/* xorshift64* */
	s->rng ^= s->rng >> 12;
	s->rng ^= s->rng << 25;
	s->rng ^= s->rng >> 27;
	return s->rng * 0x2545f4914f6cdd1dull;
}

static unsigned below(struct sim *s, unsigned n)
{
	return (unsigned)(rnd(s) % n);
}

/* The writer's stream-0 bytes of this round. */
static void seg0(struct sim *s, const struct mt_enc *e)
{
	s->payload_len = tg_segment(s->payload, s->payload_len, 0, e->buf, e->len);
}

static void define_frames(struct sim *s)
{
	uint8_t buf[1024];
	struct mt_enc e = { .buf = buf };
	mt_enc_string(&e, 1, "a.py", 4);
	for (uint64_t k = 1; k <= NFRAMES; k++) {
		char name[8];
		snprintf(name, sizeof name, "f%d", (int)k);
		mt_enc_string(&e, 1 + k, name, strlen(name));
		mt_enc_code(&e, k, 1, 1 + k, 100 + k);
		mt_enc_frame(&e, k, 0, k, 100 + k);
	}
	seg0(s, &e);
	s->defined = true;
}

/* The counter moved on to s->epoch: a boundary.  The probe may mark it. */
static void boundary(struct sim *s)
{
	struct boundary *b = &s->ref.at[s->epoch];
	for (int d = 0; d < NDOMS; d++) {
		b->live[d] = s->ref.dom[d].live;
		b->blocks[d] = s->ref.dom[d].blocks;
		b->allocs[d] = s->ref.dom[d].allocs + s->ref.dom[d].reallocs;
		b->frees[d] = s->ref.dom[d].frees;
		s->ref.peak_within[s->epoch][d] = s->ref.dom[d].live;
	}
	if (below(s, 2)) {
		struct thread *p = &s->th[0];
		mt_enc_value(&p->ring, MT_REC_EPOCH, s->epoch - p->announced);
		p->announced = s->epoch;
		mt_enc_value(&p->ring, MT_REC_MARK, 0);
		p->pub = p->ring.len;
		s->marks[s->nmarks++] = s->epoch;
	}
}

static void advance(struct sim *s)
{
	s->epoch++;
	assert_true(s->epoch < MAXEPOCHS);
	boundary(s);
}

static void flush_block(struct sim *s)
{
	if (s->payload_len)
		tg_block(&s->tg, MT_BLOCK_EVENTS, s->payload, s->payload_len);
	s->payload_len = 0;
}

/* A writer round, as the recorder's writer does it. */
static void writer_round(struct sim *s)
{
	uint8_t buf[64];
	struct mt_enc e = { .buf = buf };
	advance(s);
	uint64_t low = s->epoch;
	mt_enc_value(&e, MT_REC_EPOCH, s->epoch - s->s0_announced);
	s->s0_announced = s->epoch;
	uint64_t dt = 1 + below(s, 50);
	s->time_us += dt;
	mt_enc_value(&e, MT_REC_TIME, dt);
	seg0(s, &e);
	for (int i = 0; i < s->nthreads; i++)
		if (s->th[i].busy && s->th[i].announced < low)
			low = s->th[i].announced;
	if (!s->defined)
		define_frames(s);
	for (int i = 0; i < s->nthreads; i++) {
		struct thread *t = &s->th[i];
		if (!t->pub)
			continue;
		s->payload_len = tg_segment(s->payload, s->payload_len, t->stream, t->ring.buf,
					    t->pub);
		memmove(t->ring.buf, t->ring.buf + t->pub, t->ring.len - t->pub);
		t->ring.len -= t->pub;
		t->pub = 0;
	}
	e.len = 0;
	mt_enc_value(&e, MT_REC_HORIZON, low - s->horizon);
	s->horizon = low;
	seg0(s, &e);
	if (below(s, 3) == 0)
		flush_block(s);
}

/* The thread loads the counter for its next record. */
static uint64_t stamp(struct sim *s, struct thread *t)
{
	if (!t->started) {
		mt_enc_value(&t->ring, MT_REC_THREAD, t->tid);
		t->started = true;
	}
	if (t->announced != s->epoch) {
		mt_enc_value(&t->ring, MT_REC_EPOCH, s->epoch - t->announced);
		t->announced = s->epoch;
	}
	t->busy = true;
	return s->epoch;
}

static void publish(struct sim *s, struct thread *t)
{
	t->pub = t->ring.len;
	t->busy = false;
	if (++t->count % t->k == 0)
		advance(s);
}

static int site_of(const struct thread *t, int d)
{
	return doms[d] == MT_DOM_PYOBJ ? t->loc : 0;
}

/* An address the thread's allocator may hand out now, or -1. */
static int pick_free(struct sim *s, int ti, int d)
{
	int cand[NADDR], n = 0;
	(void)ti;
	for (int a = 0; a < NADDR; a++)
		if (s->addr[d][a].state == FREE_ADDR)
			cand[n++] = a;
	return n ? cand[below(s, (unsigned)n)] : -1;
}

/* A block the thread may free, or -1: its own, or one handed to it. */
static int pick_held(struct sim *s, int ti, int d)
{
	int cand[NADDR], n = 0;
	for (int a = 0; a < NADDR; a++) {
		const struct addr_state *x = &s->addr[d][a];
		if (x->state != FREE_ADDR && x->holder == ti)
			cand[n++] = a;
	}
	return n ? cand[below(s, (unsigned)n)] : -1;
}

/* Before a block goes back: a thread that gives back a block it did not
 * make clears the address from every thread's table and, unless no other
 * thread has recorded in this epoch, advances the epoch for it, as the
 * recorder does. */
static void give_back(struct sim *s, int ti, int d, int a)
{
	bool recent = false;
	if (!s->th[ti].own[d][a])
		for (int i = 0; i < s->nthreads; i++) {
			s->th[i].own[d][a] = false;
			recent |= i != ti && s->th[i].announced >= s->epoch;
		}
	if (recent)
		advance(s);
	s->th[ti].own[d][a] = false;
}

static void gone(struct sim *s, int ti, int d, int a)
{
	(void)ti;
	s->addr[d][a].state = FREE_ADDR;
}

static void made(struct sim *s, int ti, int d, int a)
{
	struct addr_state *x = &s->addr[d][a];
	x->state = LIVE;
	x->holder = x->made_by = ti;
	x->made_epoch = s->epoch;
	s->th[ti].own[d][a] = true;
}

/* The events, each stamped as the recorder stamps it; the record is
 * written and not yet published. */
static void do_malloc(struct sim *s, int ti, int d, int a, uint64_t size)
{
	struct thread *t = &s->th[ti];
	uint64_t e = stamp(s, t); /* after the call */
	made(s, ti, d, a);
	mt_enc_alloc(&t->ring, MT_REC_MALLOC, doms[d], size, addr_of(d, a));
	s->ref.dom[d].allocs++;
	ref_enter(&s->ref, ti, d, a, size, site_of(t, d), e);
}

static void do_free(struct sim *s, int ti, int d, int a)
{
	struct thread *t = &s->th[ti];
	give_back(s, ti, d, a);
	stamp(s, t); /* before the call */
	mt_enc_addr_only(&t->ring, MT_REC_FREE, doms[d], addr_of(d, a));
	ref_free(&s->ref, ti, d, a);
	gone(s, ti, d, a);
}

static void do_realloc(struct sim *s, int ti, int d, int a, uint64_t size)
{
	struct thread *t = &s->th[ti];
	struct ref_block old;
	give_back(s, ti, d, a);
	uint64_t e = stamp(s, t);
	mt_enc_realloc(&t->ring, doms[d], addr_of(d, a), size, addr_of(d, a));
	ref_leave(&s->ref, d, a, &old);
	s->ref.dom[d].reallocs++;
	ref_enter(&s->ref, ti, d, a, size, site_of(t, d), e);
	made(s, ti, d, a);
}

/* A realloc that moves a to b: OUT now, and the call, which gives a back
 * (another thread may get it before the IN); IN is the thread's next
 * event. */
static void do_out(struct sim *s, int ti, int d, int a, int b, uint64_t size)
{
	struct thread *t = &s->th[ti];
	struct ref_block old;
	give_back(s, ti, d, a);
	stamp(s, t);
	mt_enc_addr_only(&t->ring, MT_REC_REALLOC_OUT, doms[d], addr_of(d, a));
	ref_leave(&s->ref, d, a, &old);
	gone(s, ti, d, a);
	made(s, ti, d, b);
	t->in_realloc = true;
	t->rd = d;
	t->ra = b;
	t->rsize = size;
}

static void do_in(struct sim *s, int ti)
{
	struct thread *t = &s->th[ti];
	uint64_t e = stamp(s, t); /* after the call */
	mt_enc_alloc(&t->ring, MT_REC_REALLOC_IN, doms[t->rd], t->rsize, addr_of(t->rd, t->ra));
	s->ref.dom[t->rd].reallocs++;
	ref_enter(&s->ref, ti, t->rd, t->ra, t->rsize, site_of(t, t->rd), e);
	s->addr[t->rd][t->ra].made_epoch = e;
	t->in_realloc = false;
}

/* One random event of thread ti. */
static void event(struct sim *s, int ti)
{
	struct thread *t = &s->th[ti];
	int d = (int)below(s, NDOMS), a, b;
	uint64_t size = 1 + below(s, 1000);
	if (t->in_realloc) {
		do_in(s, ti);
		return;
	}
	switch (below(s, 10)) {
	case 0: /* a new location */
		stamp(s, t);
		t->loc = (int)below(s, NFRAMES + 1);
		mt_enc_value(&t->ring, MT_REC_LOC, (uint64_t)t->loc);
		return;
	case 1: /* hand a block to another thread, and allocate */
		if ((a = pick_held(s, ti, d)) >= 0)
			s->addr[d][a].holder = 1 + (int)below(s, (unsigned)s->nthreads - 1);
		/* fall through */
	case 2:
	case 3:
	case 4:
		if ((a = pick_free(s, ti, d)) >= 0)
			do_malloc(s, ti, d, a, size);
		return;
	case 5:
	case 6:
	case 7:
		if ((a = pick_held(s, ti, d)) >= 0)
			do_free(s, ti, d, a);
		return;
	case 8:
		if ((a = pick_held(s, ti, d)) >= 0)
			do_realloc(s, ti, d, a, size);
		return;
	default:
		b = pick_free(s, ti, d);
		if ((a = pick_held(s, ti, d)) >= 0 && b >= 0)
			do_out(s, ti, d, a, b, size);
		return;
	}
}

static void sim_init(struct sim *s, uint64_t seed, int nthreads, uint64_t first_epoch)
{
	memset(s, 0, sizeof *s);
	s->rng = seed * 0x9e3779b97f4a7c15ull + 1;
	s->nthreads = nthreads;
	s->epoch = first_epoch;
	s->payload = malloc(MT_BLOCK_MAX_RAW);
	assert_non_null(s->payload);
	for (int i = 0; i < nthreads; i++) {
		struct thread *t = &s->th[i];
		t->tid = 1000 + (uint64_t)i;
		t->stream = 1 + (uint64_t)i; /* the probe is the lowest thread stream */
		t->ring.buf = malloc(RING_CAP);
		assert_non_null(t->ring.buf);
		t->k = 1 + below(s, 12);
		t->started = i == 0;
	}
	/* the probe's THREAD comes first */
	mt_enc_value(&s->th[0].ring, MT_REC_THREAD, s->th[0].tid);
	s->th[0].pub = s->th[0].ring.len;
	for (int d = 0; d < NDOMS; d++)
		for (int a = 0; a < NADDR; a++)
			s->addr[d][a] = (struct addr_state){
				.state = a < NPRE ? PRE : FREE_ADDR,
				.holder = 1 + a % (nthreads - 1),
			};
	for (int i = 0; i < MAXT; i++)
		s->ref.th[i].last_dom = -1;
	tg_init(&s->tg);
	tg_header(&s->tg, 77);
	boundary(s);
}

/* Steps until every thread made about n events, then the end. */
static void sim_run(struct sim *s, unsigned n)
{
	for (unsigned step = 0; step < n * (unsigned)s->nthreads; step++) {
		unsigned w = below(s, 100);
		int ti = 1 + (int)below(s, (unsigned)s->nthreads - 1);
		struct thread *t = &s->th[ti];
		if (w < 4)
			writer_round(s);
		else if (t->busy)
			publish(s, t);
		else
			event(s, ti);
	}
	/* the threads finish what they were doing */
	for (int ti = 1; ti < s->nthreads; ti++) {
		struct thread *t = &s->th[ti];
		if (t->busy)
			publish(s, t);
		if (t->in_realloc) {
			event(s, ti);
			publish(s, t);
		}
	}
	writer_round(s);
	flush_block(s);
}

static void sim_free(struct sim *s)
{
	for (int i = 0; i < s->nthreads; i++)
		free(s->th[i].ring.buf);
	free(s->payload);
	tg_free(&s->tg);
}

/* ---- the comparison ----------------------------------------------------------------- */

static const struct mt_site *find_site(const struct mt_report *rep, int dom, int k)
{
	for (size_t i = 0; i < rep->nsites; i++) {
		const struct mt_site *st = &rep->sites[i];
		int sk = st->frame ? (int)rep->frames[st->frame].line - 100 : 0;
		if (st->dom == dom && sk == k)
			return st;
	}
	return NULL;
}

static void expect_same(struct sim *s, const struct mt_report *rep, uint64_t seed)
{
	const struct ref *r = &s->ref;
	/* every marked boundary: the heap as the reference had it there */
	size_t step = 0;
	for (size_t i = 0; i < rep->nmarks; i++) {
		const struct mt_mark *m = &rep->marks[i];
		if (m->label == UINT32_MAX)
			continue; /* (before first mark) */
		assert_true(step < s->nmarks);
		const struct boundary *b = &r->at[s->marks[step]];
		for (int d = 0; d < NDOMS; d++)
			if (m->start.dom_live[doms[d]] != b->live[d] ||
			    m->start.dom_allocs[doms[d]] + m->start.dom_reallocs[doms[d]] !=
				    b->allocs[d] ||
			    m->start.dom_frees[doms[d]] != b->frees[d])
				fail_msg("seed %llu epoch %llu domain %d: live %llu/%llu allocs "
					 "%llu/%llu frees %llu/%llu",
					 (unsigned long long)seed,
					 (unsigned long long)s->marks[step], doms[d],
					 (unsigned long long)m->start.dom_live[doms[d]],
					 (unsigned long long)b->live[d],
					 (unsigned long long)(m->start.dom_allocs[doms[d]] +
							      m->start.dom_reallocs[doms[d]]),
					 (unsigned long long)b->allocs[d],
					 (unsigned long long)m->start.dom_frees[doms[d]],
					 (unsigned long long)b->frees[d]);
		step += m->count;
	}
	assert_int_equal(step, s->nmarks);
	for (int d = 0; d < NDOMS; d++) {
		const struct mt_dom_stats *got = &rep->dom[doms[d]];
		const struct ref_dom *want = &r->dom[d];
		if (got->allocs != want->allocs || got->reallocs != want->reallocs ||
		    got->frees != want->frees || got->bytes_allocated != want->bytes ||
		    got->live_bytes != want->live || got->live_blocks != want->blocks ||
		    got->unmatched_frees != want->unmatched || got->inconsistent)
			fail_msg("seed %llu domain %d: allocs %llu/%llu reallocs %llu/%llu frees "
				 "%llu/%llu bytes %llu/%llu live %llu/%llu blocks %llu/%llu "
				 "unmatched %llu/%llu inconsistent %llu",
				 (unsigned long long)seed, doms[d],
				 (unsigned long long)got->allocs, (unsigned long long)want->allocs,
				 (unsigned long long)got->reallocs, (unsigned long long)want->reallocs,
				 (unsigned long long)got->frees, (unsigned long long)want->frees,
				 (unsigned long long)got->bytes_allocated,
				 (unsigned long long)want->bytes,
				 (unsigned long long)got->live_bytes, (unsigned long long)want->live,
				 (unsigned long long)got->live_blocks,
				 (unsigned long long)want->blocks,
				 (unsigned long long)got->unmatched_frees,
				 (unsigned long long)want->unmatched,
				 (unsigned long long)got->inconsistent);
		/* the peak: bounded by the epochs' figures */
		uint64_t lo = 0, hi = 0;
		for (uint64_t e = 0; e <= s->epoch; e++) {
			if (r->at[e].live[d] > lo)
				lo = r->at[e].live[d];
			if (r->at[e].live[d] + r->alloc_bytes[e][d] > hi)
				hi = r->at[e].live[d] + r->alloc_bytes[e][d];
		}
		if (want->live > lo)
			lo = want->live;
		assert_true(want->peak >= lo && want->peak <= hi);
		if (got->peak_bytes < lo || got->peak_bytes > hi)
			fail_msg("seed %llu domain %d: peak %llu outside [%llu, %llu] (reference %llu)",
				 (unsigned long long)seed, doms[d],
				 (unsigned long long)got->peak_bytes, (unsigned long long)lo,
				 (unsigned long long)hi, (unsigned long long)want->peak);
		for (int k = 0; k <= NFRAMES; k++) {
			const struct ref_site *ws = &r->site[d][k];
			const struct mt_site *gs = find_site(rep, doms[d], k);
			if (!ws->allocs) {
				assert_true(!gs || !gs->allocs);
				continue;
			}
			assert_non_null(gs);
			if (gs->allocs != ws->allocs || gs->bytes != ws->bytes ||
			    gs->live_bytes != ws->live_bytes || gs->live_blocks != ws->live_blocks ||
			    gs->temp_allocs != ws->temp_allocs || gs->temp_bytes != ws->temp_bytes)
				fail_msg("seed %llu site %d/%d: allocs %llu/%llu bytes %llu/%llu leaked "
					 "%llu/%llu in %llu/%llu blocks, temporaries %llu/%llu of "
					 "%llu/%llu bytes",
					 (unsigned long long)seed, doms[d], k,
					 (unsigned long long)gs->allocs, (unsigned long long)ws->allocs,
					 (unsigned long long)gs->bytes, (unsigned long long)ws->bytes,
					 (unsigned long long)gs->live_bytes,
					 (unsigned long long)ws->live_bytes,
					 (unsigned long long)gs->live_blocks,
					 (unsigned long long)ws->live_blocks,
					 (unsigned long long)gs->temp_allocs,
					 (unsigned long long)ws->temp_allocs,
					 (unsigned long long)gs->temp_bytes,
					 (unsigned long long)ws->temp_bytes);
		}
	}
	assert_int_equal(rep->temp_allocs, r->temp_allocs);
	assert_int_equal(rep->temp_bytes, r->temp_bytes);
	assert_int_equal(rep->heap.live, r->dom[0].live);
	assert_int_equal(rep->trace.duration_us, s->time_us);
}

static enum mt_report_status build(struct sim *s, bool footer, struct mt_report *rep)
{
	if (footer)
		tg_footer(&s->tg, 0, 0, MT_END_EXIT);
	FILE *f = tg_file(s->tg.data, s->tg.len);
	enum mt_report_status st = mt_report_build(f, rep);
	fclose(f);
	return st;
}

static void one_seed(uint64_t seed, unsigned events)
{
	struct sim s;
	struct mt_report rep;
	sim_init(&s, seed, 3 + (int)(seed % (MAXT - 2)), 0);
	sim_run(&s, events);
	assert_int_equal(build(&s, seed % 4 != 0, &rep), MT_REPORT_OK);
	expect_same(&s, &rep, seed);
	mt_report_free(&rep);
	sim_free(&s);
}

static void test_random_executions(void **state)
{
	(void)state;
	for (uint64_t seed = 1; seed <= 400; seed++)
		one_seed(seed, 40 + (unsigned)(seed % 7) * 30);
}

/* ---- the hard cases, on purpose ------------------------------------------------ */

/* Threads 1 to 3 as streams in the order given by perm (the probe stays
 * the lowest), advancing the counter only when told. */
static void scripted(struct sim *s, const int perm[3], uint64_t first_epoch)
{
	sim_init(s, 1, 4, first_epoch);
	for (int i = 1; i < 4; i++) {
		s->th[i].stream = 2 + (uint64_t)perm[i - 1];
		s->th[i].k = 1u << 30;
	}
}

/* The thread's event done: published. */
static void done(struct sim *s, int ti)
{
	publish(s, &s->th[ti]);
}

static void check(struct sim *s, uint64_t label)
{
	struct mt_report rep;
	writer_round(s);
	flush_block(s);
	assert_int_equal(build(s, true, &rep), MT_REPORT_OK);
	expect_same(s, &rep, label);
	mt_report_free(&rep);
	sim_free(s);
}

static const int perms[6][3] = { { 0, 1, 2 }, { 0, 2, 1 }, { 1, 0, 2 },
				 { 1, 2, 0 }, { 2, 0, 1 }, { 2, 1, 0 } };

/* X is live from an earlier epoch.  In one epoch: A frees it, B gets it
 * and frees it, C gets it last; and the same with B's block freed by A. */
static void test_aba_three_threads(void **state)
{
	(void)state;
	for (int p = 0; p < 6; p++)
		for (int d = 0; d < NDOMS; d++) {
			struct sim s;
			scripted(&s, perms[p], 0);
			do_malloc(&s, 1, d, 5, 100), done(&s, 1);
			writer_round(&s);
			do_free(&s, 1, d, 5), done(&s, 1);
			do_malloc(&s, 2, d, 5, 200), done(&s, 2);
			do_free(&s, 2, d, 5), done(&s, 2);
			do_malloc(&s, 3, d, 5, 300), done(&s, 3);
			do_malloc(&s, 1, d, 6, 10), done(&s, 1); /* another address in between */
			check(&s, (uint64_t)p);

			scripted(&s, perms[p], 0);
			do_malloc(&s, 1, d, 5, 100), done(&s, 1);
			writer_round(&s);
			do_free(&s, 1, d, 5), done(&s, 1);
			do_malloc(&s, 2, d, 5, 200), done(&s, 2);
			do_free(&s, 1, d, 5), done(&s, 1); /* B handed it to A */
			do_malloc(&s, 1, d, 5, 300), done(&s, 1);
			do_malloc(&s, 3, d, 7, 70), done(&s, 3);
			check(&s, 10 + (uint64_t)p);
		}
}

/* A realloc moves X to Y; between its OUT and its IN another thread gets
 * X, and a third frees what the second made. */
static void test_realloc_moves_and_old_address_reused(void **state)
{
	(void)state;
	for (int p = 0; p < 6; p++) {
		struct sim s;
		scripted(&s, perms[p], 0);
		do_malloc(&s, 1, 0, 5, 100), done(&s, 1);
		do_out(&s, 1, 0, 5, 8, 400), done(&s, 1);
		do_malloc(&s, 2, 0, 5, 50), done(&s, 2);
		do_in(&s, 1), done(&s, 1);
		do_free(&s, 3, 0, 9), done(&s, 3);
		check(&s, (uint64_t)p);
	}
}

/* Blocks freed by another thread than their maker's, in the same epoch
 * and in later ones; and frees of blocks made before tracing (addresses
 * 0 to NPRE - 1), which the report counts as unmatched. */
static void test_cross_thread_and_unmatched_frees(void **state)
{
	(void)state;
	for (int p = 0; p < 6; p++) {
		struct sim s;
		scripted(&s, perms[p], 0);
		do_malloc(&s, 1, 1, 5, 100), done(&s, 1);
		do_malloc(&s, 1, 1, 6, 110), done(&s, 1);
		do_free(&s, 2, 1, 5), done(&s, 2);
		do_free(&s, 2, 1, 0), done(&s, 2); /* unmatched */
		do_free(&s, 3, 1, 1), done(&s, 3); /* unmatched */
		do_malloc(&s, 3, 1, 1, 120), done(&s, 3);
		writer_round(&s);
		do_free(&s, 3, 1, 6), done(&s, 3);
		do_realloc(&s, 1, 1, 2, 130), done(&s, 1); /* of a block made before */
		check(&s, (uint64_t)p);
	}
	/* B frees a block made before tracing (advancing the epoch: not its
	 * block), and A's malloc returns its address in the new epoch */
	for (int p = 0; p < 6; p++) {
		struct sim s;
		scripted(&s, perms[p], 0);
		do_free(&s, 2, 0, 1), done(&s, 2);
		do_malloc(&s, 1, 0, 1, 120), done(&s, 1);
		do_malloc(&s, 3, 0, 6, 30), done(&s, 3);
		check(&s, 10 + (uint64_t)p);
	}
}

/* A fork while other threads allocate: the child's trace starts at the
 * parent's epoch, with one thread; the blocks it inherited, whichever
 * parent thread made them, are unknown to it (unmatched frees, a realloc
 * of one), and a thread it starts gets a stream of its own. */
static void test_fork_child(void **state)
{
	(void)state;
	for (int p = 0; p < 6; p++) {
		struct sim s;
		scripted(&s, perms[p], 3000);
		do_free(&s, 1, 0, 0), done(&s, 1);
		do_realloc(&s, 1, 0, 1, 77), done(&s, 1);
		do_malloc(&s, 1, 0, 0, 64), done(&s, 1);
		writer_round(&s);
		do_malloc(&s, 2, 0, 5, 32), done(&s, 2);
		do_free(&s, 1, 1, 2), done(&s, 1);
		do_free(&s, 2, 0, 0), done(&s, 2);
		check(&s, (uint64_t)p);
	}
}

/* A block goes through three threads and back to the one that made a
 * block at its address first, in one epoch: A allocates X and hands it to
 * B, which frees it; C's malloc returns X and C hands it to A, which frees
 * it; B's malloc returns X last.  B's free cleared X from A's table, so
 * A's free advances the epoch too and the records decide the order. */
static void test_block_back_to_its_first_maker(void **state)
{
	(void)state;
	for (int p = 0; p < 6; p++)
		for (int d = 0; d < NDOMS; d++) {
			struct sim s;
			scripted(&s, perms[p], 0);
			do_malloc(&s, 1, d, 5, 100), done(&s, 1);
			s.addr[d][5].holder = 2;
			do_free(&s, 2, d, 5), done(&s, 2);
			do_malloc(&s, 3, d, 5, 300), done(&s, 3);
			s.addr[d][5].holder = 1;
			do_free(&s, 1, d, 5), done(&s, 1);
			do_malloc(&s, 2, d, 5, 500), done(&s, 2);
			check(&s, (uint64_t)p);
		}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_random_executions),
		cmocka_unit_test(test_aba_three_threads),
		cmocka_unit_test(test_realloc_moves_and_old_address_reused),
		cmocka_unit_test(test_cross_thread_and_unmatched_frees),
		cmocka_unit_test(test_fork_child),
		cmocka_unit_test(test_block_back_to_its_first_maker),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
