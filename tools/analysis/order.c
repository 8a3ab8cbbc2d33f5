/*
 * order.c - restores one global order from the per-thread streams of a
 * trace (format 2) and feeds it to the report builder (report.c), as the
 * one record stream of the process the analyses read: THREAD records where
 * the thread changes, stream 0's times, samples and losses in their place.
 *
 * Each stream's records are kept, as bytes, from the segments that bring
 * them until a HORIZON of stream 0 settles their epochs (or the trace
 * ends): only one writer round is held at a time.  Settling goes epoch by
 * epoch.  Within an epoch, stream 0 first, then the lowest thread stream
 * whose next record is applicable to the heap as the analysis has it (an
 * allocation at an address not live, a free of one live), which runs on
 * while its records are; when none is, the lowest stream's record goes
 * anyway, as a reader of one stream would take it (a free of a block made
 * before tracing started).  Where two streams' records on one address
 * fit only one way, the applicable one that would block the other waits
 * (may_go()).  An epoch of one thread stream, nearly every
 * epoch of a program with one busy thread, needs no check at all: its
 * records go through the builder's own loop.  docs/ordering.md says why
 * that order gives the figures of a globally ordered trace.
 *
 * Stream 0's definitions do not wait: the file has them before their first
 * use, so they are applied as they are read.  Once the view's window has
 * closed, only stream 0's times still count (the trace's duration).
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "analysis.h"
#include "codec.h"

struct stream {
	uint64_t number, tid;
	bool named;          /* its THREAD came (stream 0 needs none) */
	bool active;         /* in order.active */
	uint64_t epoch;      /* of its next record */
	/* Its records not yet applied: [pos, len) of lent, the block being
	 * read, when they all came in it, else of buf (of cap bytes). */
	const uint8_t *lent;
	uint8_t *buf;
	size_t pos, len, cap;
	uint64_t prev_addr;  /* the decoder's address state at pos */
	/* While settling: the decoder, and the record decoded next (head),
	 * with where it starts and the address state before it. */
	struct mt_dec d;
	struct mt_rec head;
	bool has_head;
	const uint8_t *head_at;
	uint64_t head_prev;
};

struct order {
	struct heapmap ids;       /* stream number -> index in v */
	struct stream **v;        /* v[0] is stream 0 */
	size_t n, cap;
	struct stream **active;   /* the streams holding records, by number */
	size_t nactive;
	struct stream **idle;     /* those that left them at the last settling:
				     their buffers go if they stay idle a round */
	size_t nidle;
	struct stream *cur;       /* whose THREAD the builder had last */
	struct stream *last;      /* the stream a segment went to last */
	uint64_t horizon;         /* the last HORIZON */
	uint64_t settled;         /* every epoch below is applied */
	uint64_t top;             /* the highest epoch applied */
	uint64_t s0_prev;         /* stream 0's address state as read */
	bool closed;              /* the window closed: only times count */
	/* merge(): what streams do to addresses in the epoch (pairs), and
	 * what one stream did so far (seen) */
	struct heapmap pairs, seen;
	uint64_t *keys;           /* seen's keys */
	size_t nkeys, keys_cap;
	char error[128];
};

static int __attribute__((format(printf, 2, 3))) fail(struct ctx *c, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(c->order->error, sizeof c->order->error, fmt, ap);
	va_end(ap);
	return -1;
}

#define ULL(x) ((unsigned long long)(x))

/* ---- streams ------------------------------------------------------------ */

static struct stream *stream_new(struct ctx *c, uint64_t number)
{
	struct order *o = c->order;
	uint64_t unused;
	if (o->n == o->cap) {
		size_t cap = o->cap ? 2 * o->cap : 16;
		struct stream **v = realloc(o->v, cap * sizeof *v);
		if (v)
			o->v = v;
		struct stream **a = v ? realloc(o->active, cap * sizeof *a) : NULL;
		if (a)
			o->active = a;
		struct stream **i = a ? realloc(o->idle, cap * sizeof *i) : NULL;
		if (!i)
			return NULL;
		o->idle = i;
		o->cap = cap;
	}
	struct stream *s = calloc(1, sizeof *s);
	if (!s || hm_put(&o->ids, number, o->n, &unused) < 0) {
		free(s);
		return NULL;
	}
	s->number = number;
	s->named = number == 0;
	o->v[o->n++] = s;
	return s;
}

static struct stream *stream_of(struct ctx *c, uint64_t number)
{
	struct order *o = c->order;
	uint64_t i;
	if (o->last && o->last->number == number)
		return o->last;
	struct stream *s = hm_get(&o->ids, number, &i) ? o->v[i] : stream_new(c, number);
	if (s)
		o->last = s;
	return s;
}

/* The stream joins the active ones, which stay in order of number. */
static void activate(struct order *o, struct stream *s)
{
	size_t i = o->nactive;
	for (; i > 0 && o->active[i - 1]->number > s->number; i--)
		o->active[i] = o->active[i - 1];
	o->active[i] = s;
	o->nactive++;
	s->active = true;
}

static const uint8_t *bytes(const struct stream *s)
{
	return s->lent ? s->lent : s->buf;
}

static int room(struct ctx *c, struct stream *s, size_t n)
{
	if (n <= s->cap)
		return 0;
	size_t cap = s->cap ? s->cap : 4096;
	while (cap < n)
		cap *= 2;
	uint8_t *b = realloc(s->buf, cap);
	if (!b) {
		c->oom = true;
		return -1;
	}
	s->buf = b;
	s->cap = cap;
	return 0;
}

/* The stream's records left in the block being read move to its buffer:
 * the block's memory is about to be reused. */
static int own(struct ctx *c, struct stream *s)
{
	size_t n = s->len - s->pos;
	if (!s->lent)
		return 0;
	if (room(c, s, n))
		return -1;
	memcpy(s->buf, s->lent + s->pos, n);
	s->lent = NULL;
	s->pos = 0;
	s->len = n;
	return 0;
}

/* A segment's records: read where they are if the stream has nothing
 * else waiting (a stream that runs to its horizon within the block, as
 * nearly all do, is never copied), else after the rest. */
static int keep(struct ctx *c, struct stream *s, const uint8_t *p, size_t n)
{
	if (!s->active) {
		s->lent = p;
		s->pos = 0;
		s->len = n;
		activate(c->order, s);
		return 0;
	}
	if (own(c, s) || room(c, s, s->len + n))
		return -1;
	memcpy(s->buf + s->len, p, n);
	s->len += n;
	return 0;
}

/* ---- settling ------------------------------------------------------------- */

static int malformed(struct ctx *c, const struct stream *s)
{
	return fail(c, "malformed record in stream %llu (epoch %llu)", ULL(s->number),
		    ULL(s->epoch));
}

/* A record the builder does not take: the stream's epoch, its thread. */
static int control(struct ctx *c, struct stream *s, const struct mt_rec *r)
{
	struct order *o = c->order;
	switch (r->kind) {
	case MT_REC_EPOCH:
		if (s->epoch + r->value < s->epoch)
			return fail(c, "stream %llu: EPOCH goes backwards (past epoch %llu)",
				    ULL(s->number), ULL(s->epoch));
		s->epoch += r->value;
		return 0;
	case MT_REC_THREAD:
		if (!s->number)
			return fail(c, "a THREAD record in stream 0 (tid %llu)", ULL(r->value));
		s->tid = r->value;
		s->named = true;
		if (o->cur == s)
			o->cur = NULL; /* the builder is told the new tid */
		return 0;
	default:
		return fail(c, "a record of kind %d inside stream %llu", r->kind, ULL(s->number));
	}
}

/* Decodes the stream's next record that the builder takes.  1: s->head
 * holds it, 0: the stream has no more, -1: malformed. */
static int prime(struct ctx *c, struct stream *s)
{
	while (!s->has_head) {
		s->head_at = s->d.p;
		s->head_prev = s->d.prev_addr;
		int st = mt_dec_next(&s->d, &s->head);
		if (st <= 0)
			return st ? malformed(c, s) : 0;
		if (s->head.kind == MT_REC_EPOCH || s->head.kind == MT_REC_THREAD ||
		    s->head.kind == MT_REC_HORIZON || s->head.kind == MT_REC_STREAM) {
			if (control(c, s, &s->head))
				return -1;
			continue;
		}
		if (!s->named)
			return fail(c, "stream %llu does not open with THREAD (a record of kind %d)",
				    ULL(s->number), s->head.kind);
		s->has_head = true;
	}
	return 1;
}

/* The builder's current thread becomes the stream's. */
static void switch_to(struct ctx *c, struct stream *s)
{
	struct order *o = c->order;
	if (s->number && o->cur != s) {
		struct mt_rec t = { .kind = MT_REC_THREAD, .value = s->tid };
		report_apply(c, &t);
		o->cur = s;
	}
}

static bool stopped(const struct ctx *c)
{
	return c->oom || c->vs.win == WIN_CLOSED;
}

/* Applies the stream's head and primes the next one. */
static int emit(struct ctx *c, struct stream *s)
{
	switch_to(c, s);
	report_apply(c, &s->head);
	s->has_head = false;
	return stopped(c) ? 0 : prime(c, s);
}

/* The only thread stream with records in epoch e: straight through the
 * builder's loop, from its head up to its next epoch. */
static int run(struct ctx *c, struct stream *s, uint64_t e)
{
	struct mt_rec stop;
	int st;
	s->has_head = false;
	s->d.p = s->head_at;
	s->d.prev_addr = s->head_prev;
	for (;;) {
		switch_to(c, s);
		if ((st = report_run(c, &s->d, &stop)) != 2)
			return st < 0 ? malformed(c, s) : 0;
		if (control(c, s, &stop))
			return -1;
		if (s->epoch != e)
			return prime(c, s);
	}
}

/* ---- within one epoch --------------------------------------------------- */

/* The (domain, address) a record makes a block at (ARENA_ALLOC's domain
 * is MT_DOM_COUNT: the arenas' own); false if it makes none. */
static bool makes(const struct mt_rec *r, int *dom, uint64_t *addr)
{
	*dom = r->kind == MT_REC_ARENA_ALLOC ? MT_DOM_COUNT : r->dom;
	*addr = r->addr;
	switch (r->kind) {
	case MT_REC_MALLOC:
	case MT_REC_CALLOC:
	case MT_REC_ALIGNED:
	case MT_REC_REALLOC_IN:
	case MT_REC_ARENA_ALLOC:
		return r->addr != 0;
	case MT_REC_REALLOC:
		return r->addr && r->addr != r->old;
	default:
		return false;
	}
}

/* The (domain, address) whose block a record frees; false if none. */
static bool frees(const struct mt_rec *r, int *dom, uint64_t *addr)
{
	*dom = r->kind == MT_REC_ARENA_FREE ? MT_DOM_COUNT : r->dom;
	*addr = r->kind == MT_REC_REALLOC ? r->old : r->addr;
	switch (r->kind) {
	case MT_REC_FREE:
	case MT_REC_REALLOC_OUT:
	case MT_REC_ARENA_FREE:
		return true;
	case MT_REC_REALLOC:
		return r->old && r->addr != r->old && (r->addr || !r->size);
	default:
		return false;
	}
}

/* PyMem and PyObject blocks come from the same pymalloc pools (and, when
 * large, the same raw blocks): an address holds a block of one or the
 * other, and its life passes between the two domains. */
static uint64_t key_of(int dom, uint64_t addr)
{
	if (dom == MT_DOM_PYOBJ)
		dom = MT_DOM_PYMEM;
	return addr * (MT_DOM_COUNT + 1) + (uint64_t)dom;
}

static bool epoch_ends(const struct mt_rec *r)
{
	return r->kind == MT_REC_EPOCH && r->value;
}

/* A decoder over the stream's records from its head on. */
static struct mt_dec from_head(const struct stream *s)
{
	struct mt_dec d = s->d;
	d.p = s->head_at;
	d.prev_addr = s->head_prev;
	return d;
}

/* What a stream does to one address within an epoch: it makes a block
 * there and frees it again (a life that closes in the stream), or frees
 * the block there and makes another one (a block reborn in the stream). */
enum { CLOSES = 1, REBORN = 2, MADE = 4 /* by any stream in the epoch */ };

/* CLOSES or REBORN: what the record is the first half of, at *key; 0 if
 * it makes or frees no block. */
static unsigned half(const struct mt_rec *r, uint64_t *key, unsigned *second)
{
	uint64_t addr;
	int dom;
	if (makes(r, &dom, &addr)) {
		*key = key_of(dom, addr);
		*second = REBORN;
		return CLOSES;
	}
	if (frees(r, &dom, &addr)) {
		*key = key_of(dom, addr);
		*second = CLOSES;
		return REBORN;
	}
	return 0;
}

/* A realloc in place: the block there is reborn in one record. */
static bool in_place(const struct mt_rec *r, uint64_t *key)
{
	*key = key_of(r->dom, r->old);
	return r->kind == MT_REC_REALLOC && r->old && r->addr == r->old;
}

/* Whether the stream, from its head to the end of its epoch, does what at
 * key first. */
static bool does(const struct stream *s, uint64_t key, unsigned what)
{
	struct mt_dec d = from_head(s);
	struct mt_rec r;
	uint64_t k;
	unsigned second;
	bool started = false;
	while (mt_dec_next(&d, &r) == 1 && !epoch_ends(&r)) {
		unsigned first = half(&r, &k, &second);
		if (!first && in_place(&r, &k) && k == key) {
			if (!started)
				return what == REBORN;
			continue; /* the life goes on */
		}
		if (!first || k != key)
			continue;
		if (started)
			return second == what;
		if (first != what)
			return false;
		started = true;
	}
	return false;
}

static int remember(struct order *o, uint64_t key, unsigned what)
{
	uint64_t old = 0;
	if (o->nkeys == o->keys_cap) {
		size_t cap = o->keys_cap ? 2 * o->keys_cap : 256;
		uint64_t *k = realloc(o->keys, cap * sizeof *k);
		if (!k)
			return -1;
		o->keys = k;
		o->keys_cap = cap;
	}
	hm_get(&o->seen, key, &old);
	int st = hm_put(&o->seen, key, old | what, &old);
	if (st == 0)
		o->keys[o->nkeys++] = key;
	return st < 0 ? -1 : 0;
}

/* o->pairs gets, for the addresses where a stream closes a life or has a
 * block reborn in epoch e, which of the two. */
static int find_pairs(struct ctx *c, uint64_t e)
{
	struct order *o = c->order;
	struct mt_rec r;
	uint64_t key, seen, was, unused;
	unsigned second;
	for (size_t i = 0; i < o->nactive; i++) {
		struct stream *s = o->active[i];
		if (!s->number || !s->has_head || s->epoch != e)
			continue;
		struct mt_dec d = from_head(s);
		while (mt_dec_next(&d, &r) == 1 && !epoch_ends(&r)) {
			unsigned first = half(&r, &key, &second), bits = first == CLOSES ? MADE : 0;
			if (first && hm_get(&o->seen, key, &seen) && (seen & second))
				bits |= second;
			if (!first && in_place(&r, &key))
				bits = REBORN;
			if (bits) {
				was = 0;
				hm_get(&o->pairs, key, &was);
				if (hm_put(&o->pairs, key, was | bits, &unused) < 0)
					return -1;
			}
			if (first && remember(o, key, first))
				return -1;
		}
		while (o->nkeys)
			hm_del(&o->seen, o->keys[--o->nkeys], &unused);
	}
	return 0;
}

/* Whether s's head may go now.  Beyond being applicable: a block its
 * head makes and its own stream does not free in this epoch waits while
 * another stream closes a life there, or that stream could never go (one
 * thread frees an address, a second allocates and frees it, a third
 * allocates it last: ABA across three threads in one epoch); and a free
 * whose stream makes nothing there again waits while another stream has
 * the block there reborn (its free must come first). */
static bool may_go(struct ctx *c, struct stream *s, uint64_t e)
{
	struct order *o = c->order;
	uint64_t key, v;
	unsigned second;
	if (!report_applicable(c, &s->head))
		return false;
	if (!hm_count(&o->pairs))
		return true;
	unsigned what = half(&s->head, &key, &second);
	if (!what || !hm_get(&o->pairs, key, &v) || !(v & what) || does(s, key, what))
		return true;
	for (size_t i = 0; i < o->nactive; i++) {
		struct stream *t = o->active[i];
		if (t != s && t->number && t->has_head && t->epoch == e && does(t, key, what))
			return false;
	}
	return true;
}

/* Whether r (which does not apply) reallocates or frees a block, one
 * that no stream makes in this epoch if unmade: a block made before
 * tracing started, or in a lost event. */
static bool gives_back_unknown(struct ctx *c, const struct mt_rec *r, bool unmade)
{
	uint64_t v = 0;
	if (r->kind != MT_REC_REALLOC && r->kind != MT_REC_REALLOC_OUT && r->kind != MT_REC_FREE)
		return false;
	hm_get(&c->order->pairs, key_of(r->dom, r->kind == MT_REC_REALLOC ? r->old : r->addr), &v);
	return !unmade || !(v & MADE);
}

/* ---- a search for the order of one epoch --------------------------------- */

/*
 * The rules of may_go() look one record ahead per stream, and an epoch can
 * hold lives whose only order they miss (two threads each making and
 * freeing blocks at the same addresses, one thread's life at one address
 * spanning its lives at another).  Where the rules reach a dead end, a
 * search orders the rest of the epoch on a model of the addresses it
 * touches before any of it is applied: each stream's records in its
 * order, an allocation only where no block is live, a free only where one
 * is.  It ranks the streams, lets the first ranked stream whose next record
 * applies go, and at a dead end tries the next ranking: up to SEARCH_TRIES
 * of them, after which the rules force a record as before.
 */
#define SEARCH_TRIES 24

struct op {
	uint64_t key;          /* 0: none */
	bool need, leave;      /* a live block before; after */
};

struct srec {
	struct op op[2];
	uint32_t stream;
};

struct search {
	struct srec *recs;     /* the epoch's records, stream by stream */
	size_t n, cap;
	size_t *first, *pos;   /* per stream: its first record, the next one */
	size_t *end;
	uint32_t *chosen;       /* the stream of each record, in the order found */
	struct heapmap model;  /* key -> 1 + live */
	uint64_t *undo;        /* key, old value; pairs */
	size_t nundo, undo_cap;
};

static bool model_live(struct ctx *c, struct search *z, uint64_t key, int dom, uint64_t addr,
		       int kind)
{
	uint64_t v;
	if (hm_get(&z->model, key, &v))
		return v == 2;
	struct mt_rec f = { .kind = kind == MT_REC_ARENA_ALLOC || kind == MT_REC_ARENA_FREE
					    ? MT_REC_ARENA_FREE : MT_REC_FREE,
			    .dom = dom, .addr = addr };
	bool live = report_applicable(c, &f);
	if (!live && (dom == MT_DOM_PYMEM || dom == MT_DOM_PYOBJ) && f.kind == MT_REC_FREE) {
		f.dom = dom == MT_DOM_PYMEM ? MT_DOM_PYOBJ : MT_DOM_PYMEM;
		live = report_applicable(c, &f);
	}
	uint64_t unused;
	hm_put(&z->model, key, live ? 2 : 1, &unused);
	return live;
}

/* What record r needs and leaves, into x. */
static void describe(struct ctx *c, struct search *z, const struct mt_rec *r, struct srec *x)
{
	int dom, n = 0;
	uint64_t addr, key;
	memset(x->op, 0, sizeof x->op);
	if (in_place(r, &key) || (r->kind == MT_REC_REALLOC && r->old && !r->addr && r->size)) {
		key = key_of(r->dom, r->old);
		model_live(c, z, key, r->dom, r->old, r->kind);
		x->op[n++] = (struct op){ key, true, true };
		return;
	}
	if (frees(r, &dom, &addr)) {
		key = key_of(dom, addr);
		model_live(c, z, key, dom == MT_DOM_COUNT ? MT_DOM_PYOBJ : dom, addr, r->kind);
		x->op[n++] = (struct op){ key, true, false };
	}
	if (makes(r, &dom, &addr)) {
		key = key_of(dom, addr);
		model_live(c, z, key, dom == MT_DOM_COUNT ? MT_DOM_PYOBJ : dom, addr, r->kind);
		x->op[n++] = (struct op){ key, false, true };
	}
}

static bool step_applies(struct search *z, const struct srec *x)
{
	for (int i = 0; i < 2 && x->op[i].key; i++) {
		uint64_t v = 0;
		hm_get(&z->model, x->op[i].key, &v);
		if ((v == 2) != x->op[i].need)
			return false;
		if (i == 0 && x->op[1].key == x->op[0].key)
			return false; /* a realloc that moved onto its own old block */
	}
	return true;
}

static int step_take(struct search *z, const struct srec *x)
{
	for (int i = 0; i < 2 && x->op[i].key; i++) {
		uint64_t old = 0, unused;
		hm_get(&z->model, x->op[i].key, &old);
		if (z->nundo + 2 > z->undo_cap) {
			size_t cap = z->undo_cap ? 2 * z->undo_cap : 1024;
			uint64_t *u = realloc(z->undo, cap * sizeof *u);
			if (!u)
				return -1;
			z->undo = u;
			z->undo_cap = cap;
		}
		z->undo[z->nundo++] = x->op[i].key;
		z->undo[z->nundo++] = old;
		if (hm_put(&z->model, x->op[i].key, x->op[i].leave ? 2 : 1, &unused) < 0)
			return -1;
	}
	return 0;
}

static void step_back(struct search *z, const struct srec *x)
{
	for (int i = 1; i >= 0; i--) {
		if (!x->op[i].key)
			continue;
		uint64_t unused;
		z->nundo -= 2;
		hm_put(&z->model, z->undo[z->nundo], z->undo[z->nundo + 1], &unused);
	}
}

/* One greedy pass with the streams ranked by rank[]: the first ranked
 * stream whose next record applies goes.  1 when every record went
 * (z->chosen filled), 0 at a dead end (the model is put back). */
static int search_pass(struct search *z, const uint32_t *rank, size_t k)
{
	for (size_t i = 0; i < k; i++)
		z->pos[i] = z->first[i];
	size_t depth = 0;
	int st = 1;
	while (depth < z->n) {
		/* a record that touches no block goes first, lowest stream first,
		 * as the rules would take it (a mark stays at its epoch's start) */
		uint32_t si = 0;
		while (si < k && (z->pos[si] == z->end[si] || z->recs[z->pos[si]].op[0].key))
			si++;
		size_t i = 0;
		while (si == k && i < k &&
		       (z->pos[rank[i]] == z->end[rank[i]] ||
			!step_applies(z, &z->recs[z->pos[rank[i]]])))
			i++;
		if (si == k && i == k) {
			st = 0;
			break;
		}
		if (si == k)
			si = rank[i];
		if (step_take(z, &z->recs[z->pos[si]]))
			return -1;
		z->chosen[depth++] = si;
		z->pos[si]++;
	}
	while (st == 0 && depth > 0) {
		uint32_t si = z->chosen[--depth];
		step_back(z, &z->recs[--z->pos[si]]);
	}
	return st;
}

/* Tries the streams' rankings: every one of up to four streams (the lowest
 * first comes first: the rules' own order), else each stream first with
 * the rest by number.  1 with z->chosen filled, 0 if none fits, -1 when
 * memory ran out. */
static int search_order(struct search *z, size_t k)
{
	uint32_t rank[k ? k : 1];
	for (size_t i = 0; i < k; i++)
		rank[i] = (uint32_t)i;
	size_t tries = 0;
	for (;;) {
		int st = search_pass(z, rank, k);
		if (st)
			return st;
		if (++tries > SEARCH_TRIES)
			return 0;
		if (k <= 4) {
			/* the next permutation in lexicographic order */
			size_t i = k - 1;
			while (i > 0 && rank[i - 1] >= rank[i])
				i--;
			if (i == 0)
				return 0;
			size_t j = k - 1;
			while (rank[j] <= rank[i - 1])
				j--;
			uint32_t t = rank[i - 1];
			rank[i - 1] = rank[j];
			rank[j] = t;
			for (size_t a = i, b = k - 1; a < b; a++, b--) {
				t = rank[a];
				rank[a] = rank[b];
				rank[b] = t;
			}
		} else {
			if (tries >= k)
				return 0;
			for (size_t i = 0; i < k; i++)
				rank[i] = (uint32_t)((i + tries) % k);
		}
	}
}

static void search_free(struct search *z)
{
	free(z->recs);
	free(z->first);
	free(z->chosen);
	free(z->undo);
	hm_free(&z->model);
}

/* Collects the epoch's records of the streams in `in` (k of them). */
static int search_collect(struct ctx *c, struct search *z, struct stream **in, size_t k,
			  uint64_t e)
{
	for (size_t i = 0; i < k; i++) {
		struct mt_dec d = from_head(in[i]);
		struct mt_rec r;
		z->first[i] = z->pos[i] = z->n;
		while (mt_dec_next(&d, &r) == 1 && !epoch_ends(&r)) {
			if (r.kind == MT_REC_EPOCH || r.kind == MT_REC_THREAD)
				continue;
			if (z->n == z->cap) {
				size_t cap = z->cap ? 2 * z->cap : 1024;
				struct srec *v = realloc(z->recs, cap * sizeof *v);
				if (!v)
					return -1;
				z->recs = v;
				z->cap = cap;
			}
			describe(c, z, &r, &z->recs[z->n]);
			z->recs[z->n++].stream = (uint32_t)i;
		}
		z->end[i] = z->n;
	}
	(void)e;
	return 0;
}

/* Applies epoch e along an order the search finds: 1 when it did, 0 when
 * it found none (the rules then decide), -1 on error. */
static int merge_searched(struct ctx *c, uint64_t e)
{
	struct order *o = c->order;
	struct stream *in[o->nactive ? o->nactive : 1];
	size_t k = 0;
	for (size_t i = 0; i < o->nactive; i++)
		if (o->active[i]->number && o->active[i]->has_head && o->active[i]->epoch == e)
			in[k++] = o->active[i];
	struct search z = { 0 };
	if (hm_init(&z.model))
		return -1;
	int st = -1;
	z.first = malloc(3 * k * sizeof *z.first);
	if (!z.first)
		goto out;
	z.pos = z.first + k;
	z.end = z.pos + k;
	if (search_collect(c, &z, in, k, e))
		goto out;
	z.chosen = malloc((z.n + 1) * sizeof *z.chosen);
	if (!z.chosen)
		goto out;
	st = search_order(&z, k);
	for (size_t d = 0; st == 1 && d < z.n; d++) {
		int r = emit(c, in[z.chosen[d]]);
		if (r < 0)
			st = -1;
		else if (stopped(c))
			break;
	}
out:
	search_free(&z);
	return st;
}

/* Several thread streams in epoch e: the lowest one whose head may go,
 * running on while its records may; else a realloc, a free, an applicable
 * record, anything. */
static int merge(struct ctx *c, uint64_t e)
{
	struct order *o = c->order;
	if (find_pairs(c, e))
		return c->oom = true, -1;
	int st = 0;
	for (;;) {
		struct stream *first = NULL, *applicable = NULL, *unknown_block = NULL;
		struct stream *gives_back = NULL, *pick = NULL;
		for (size_t i = 0; i < o->nactive && !pick; i++) {
			struct stream *s = o->active[i];
			if (!s->number || !s->has_head || s->epoch != e)
				continue;
			if (!first)
				first = s;
			if (may_go(c, s, e))
				pick = s;
			else if (report_applicable(c, &s->head))
				applicable = applicable ? applicable : s;
			else if (!unknown_block && gives_back_unknown(c, &s->head, true))
				unknown_block = s;
			else if (!gives_back && gives_back_unknown(c, &s->head, false))
				gives_back = s;
		}
		if (!first)
			break;
		/* Nothing may go: first a realloc or free of a block that is
		 * not live and that no stream makes in this epoch (made before
		 * tracing started: a free there is then of the realloc's new
		 * block); then what waits for another stream's block; then any
		 * realloc or free of a block that is not live; last the lowest
		 * (an allocation at a live address evicts a block whose free is
		 * yet to come). */
		if (!pick) {
			/* a dead end for the rules: search the rest of the epoch */
			int found = merge_searched(c, e);
			if (found < 0)
				return c->oom = true, -1;
			if (found)
				break;
		}
		pick = pick	       ? pick
		       : unknown_block ? unknown_block
		       : applicable    ? applicable
		       : gives_back    ? gives_back
				       : first;
		do
			st = emit(c, pick);
		while (st == 1 && !stopped(c) && pick->epoch == e && may_go(c, pick, e));
		if (st < 0 || stopped(c))
			break;
	}
	if (hm_count(&o->pairs)) {
		hm_free(&o->pairs);
		if (hm_init(&o->pairs))
			return c->oom = true, -1;
	}
	return st < 0 ? -1 : 0;
}

/* The lowest epoch any active stream's next record has; false if none. */
static int lowest(struct ctx *c, uint64_t *e, size_t *nthreads, struct stream **one)
{
	struct order *o = c->order;
	bool found = false;
	for (size_t i = 0; i < o->nactive; i++) {
		struct stream *s = o->active[i];
		if (prime(c, s) < 0)
			return -1;
		if (!s->has_head)
			continue;
		if (!found || s->epoch < *e) {
			*e = s->epoch;
			*nthreads = 0;
			found = true;
		}
		if (s->epoch == *e && s->number) {
			++*nthreads;
			*one = s;
		}
	}
	return found;
}

static void open_streams(struct order *o)
{
	for (size_t i = 0; i < o->nactive; i++) {
		struct stream *s = o->active[i];
		mt_dec_init(&s->d, bytes(s) + s->pos, s->len - s->pos);
		s->d.prev_addr = s->prev_addr;
		s->has_head = false;
	}
}

/* Puts back what was decoded and not applied; streams left with nothing
 * leave the active ones. */
static void close_streams(struct order *o)
{
	size_t kept = 0;
	for (size_t i = 0; i < o->nidle; i++) {
		struct stream *s = o->idle[i];
		if (!s->active) { /* a thread that is gone, most likely */
			free(s->buf);
			s->buf = NULL;
			s->cap = 0;
		}
	}
	o->nidle = 0;
	for (size_t i = 0; i < o->nactive; i++) {
		struct stream *s = o->active[i];
		const uint8_t *at = s->has_head ? s->head_at : s->d.p;
		s->prev_addr = s->has_head ? s->head_prev : s->d.prev_addr;
		s->has_head = false;
		s->pos = (size_t)(at - bytes(s));
		if (o->closed || s->pos == s->len) {
			s->pos = s->len = 0;
			s->lent = NULL;
			s->active = false;
			o->idle[o->nidle++] = s;
			continue;
		}
		if (s->pos && !s->lent) {
			memmove(s->buf, s->buf + s->pos, s->len - s->pos);
			s->len -= s->pos;
			s->pos = 0;
		}
		o->active[kept++] = s;
	}
	o->nactive = kept;
}

/* The window closed: the times that stream 0 still holds are the trace's
 * length, the rest is not the window's. */
static void close_out(struct ctx *c)
{
	struct stream *s0 = c->order->v[0];
	struct mt_rec r;
	if (!s0->active)
		return;
	if (s0->has_head && s0->head.kind == MT_REC_TIME)
		c->rep->trace.duration_us += s0->head.value;
	s0->has_head = false;
	s0->d.end = bytes(s0) + s0->len; /* the window's end may have cut it */
	while (mt_dec_next(&s0->d, &r) == 1)
		if (r.kind == MT_REC_TIME)
			c->rep->trace.duration_us += r.value;
}

/* Applies every record of an epoch below limit. */
static int settle(struct ctx *c, uint64_t limit)
{
	struct order *o = c->order;
	struct stream *s0 = o->v[0], *one = NULL;
	uint64_t e = 0;
	size_t nthreads = 0;
	int st;
	open_streams(o);
	while ((st = lowest(c, &e, &nthreads, &one)) == 1 && e < limit) {
		if (e < o->settled) {
			st = fail(c, "records of epoch %llu after HORIZON %llu: the epochs go backwards",
				  ULL(e), ULL(o->settled));
			break;
		}
		o->top = e;
		while (st >= 0 && !stopped(c) && s0->has_head && s0->epoch == e)
			st = emit(c, s0);
		if (st >= 0 && !stopped(c) && nthreads)
			st = nthreads == 1 ? run(c, one, e) : merge(c, e);
		if (st < 0 || stopped(c))
			break;
	}
	if (st >= 0 && c->vs.win == WIN_CLOSED && !o->closed) {
		close_out(c);
		o->closed = true;
	}
	close_streams(o);
	if (st < 0)
		return -1;
	if (limit > o->settled)
		o->settled = limit == UINT64_MAX ? o->top : limit;
	return c->oom ? -1 : 0;
}

/* ---- reading ---------------------------------------------------------------- */

/* Stream 0 is read at once: definitions applied, HORIZON settling, its
 * other records kept for their epochs. */
static int stream0(struct ctx *c, struct mt_dec *d)
{
	struct order *o = c->order;
	struct mt_rec r;
	int st;
	d->prev_addr = o->s0_prev;
	for (const uint8_t *at = d->p; (st = mt_dec_next(d, &r)) == 1; at = d->p) {
		if (mt_rec_defines(r.kind)) {
			if (!o->closed)
				report_apply(c, &r);
			if (c->oom)
				return -1;
			continue;
		}
		switch (r.kind) {
		case MT_REC_TIME:
		case MT_REC_SAMPLE:
		case MT_REC_LOST:
		case MT_REC_EPOCH:
			if (o->closed) {
				if (r.kind == MT_REC_TIME)
					c->rep->trace.duration_us += r.value;
			} else if (keep(c, o->v[0], at, (size_t)(d->p - at))) {
				return -1;
			}
			break;
		case MT_REC_HORIZON:
			if (o->horizon + r.value < o->horizon)
				return fail(c, "HORIZON goes backwards (past epoch %llu)",
					    ULL(o->horizon));
			o->horizon += r.value;
			if (!o->closed && settle(c, o->horizon))
				return -1;
			break;
		default:
			return fail(c, "a record of kind %d in stream 0 (after HORIZON %llu)", r.kind,
				    ULL(o->horizon));
		}
		if (c->oom)
			return -1;
	}
	o->s0_prev = d->prev_addr;
	return st < 0 ? malformed(c, o->v[0]) : 0;
}

int order_block(struct ctx *c, const uint8_t *raw, size_t len)
{
	struct order *o = c->order;
	struct mt_dec top, seg;
	uint64_t number;
	int st;
	mt_dec_init(&top, raw, len);
	const uint8_t *at = raw;
	for (; (st = mt_dec_segment(&top, &number, &seg)) == 1; at = top.p) {
		if (!number) {
			if (stream0(c, &seg))
				return -1;
			continue;
		}
		if (o->closed)
			continue;
		struct stream *s = stream_of(c, number);
		if (!s) {
			c->oom = true;
			return -1;
		}
		if (keep(c, s, seg.p, (size_t)(seg.end - seg.p)))
			return -1;
	}
	if (st < 0)
		return fail(c, "not a STREAM record, or a STREAM longer than its block "
			       "(at offset %llu of %llu)",
			    ULL(at - raw), ULL(len));
	for (size_t i = 0; i < o->nactive; i++)
		if (own(c, o->active[i]))
			return -1;
	return 0;
}

int order_settle_all(struct ctx *c)
{
	return c->order->closed ? 0 : settle(c, UINT64_MAX);
}

const char *order_error(const struct ctx *c)
{
	return c->order && c->order->error[0] ? c->order->error : NULL;
}

int order_init(struct ctx *c)
{
	c->order = calloc(1, sizeof *c->order);
	if (!c->order || hm_init(&c->order->ids) || hm_init(&c->order->pairs) ||
	    hm_init(&c->order->seen))
		return -1;
	return stream_new(c, 0) ? 0 : -1;
}

void order_free(struct ctx *c)
{
	struct order *o = c->order;
	if (!o)
		return;
	for (size_t i = 0; i < o->n; i++) {
		free(o->v[i]->buf);
		free(o->v[i]);
	}
	free(o->v);
	free(o->active);
	free(o->idle);
	free(o->keys);
	hm_free(&o->ids);
	hm_free(&o->pairs);
	hm_free(&o->seen);
	free(o);
	c->order = NULL;
}
