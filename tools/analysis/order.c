/*
 * order.c - restores one global order from the per-thread streams of a
 * trace (format 2) and feeds it to the report builder (report.c), as the
 * one record stream of the process the analyses read: THREAD records where
 * the thread changes, stream 0's times, samples and losses in their place.
 *
 * Each stream's records are kept, as bytes, from the segments that bring
 * them until a HORIZON of stream 0 settles their epochs (or the trace
 * ends): only one writer round is held at a time.  Settling goes epoch by
 * epoch: stream 0 first, then the thread streams.  An epoch of one thread
 * stream, nearly every epoch of a program with one busy thread, goes
 * through the builder's own loop, and so do the streams of one in which
 * no two touch the same address, one after another; otherwise the epoch
 * goes along an order of its records in which each applies to a model of
 * the addresses it touches, found by a search (merge()).  docs/ordering.md says why that
 * order gives the figures of a globally ordered trace.
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
	struct search *search;    /* merge()'s, kept from epoch to epoch */
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
	if (n)
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

/* A realloc that leaves its block where it was: in place (the block there
 * is reborn in one record) or failed (it stays as it was). */
static bool keeps(const struct mt_rec *r, uint64_t *key)
{
	*key = key_of(r->dom, r->old);
	return r->kind == MT_REC_REALLOC && r->old && (r->addr == r->old || (!r->addr && r->size));
}

/*
 * Several thread streams in one epoch: the reporter searches for an order
 * of their records in which each applies, on a model of the addresses the
 * epoch touches (docs/ordering.md says why any such order gives the
 * figures).  A thread that gives back a block it did not make advances
 * the epoch for it, so within an epoch a thread frees only a block that
 * was live when the epoch began or one it made itself in the epoch; and a
 * free of an address that was not live at the start and that its own
 * stream did not make first is of a block made before tracing, which only
 * an address holding no block fits.
 *
 * The search is depth first over the streams' positions: the stream that
 * went last runs on, else the lowest whose next record applies; a record
 * that touches no block goes first.  A position found to lead nowhere is
 * remembered (by a hash of the positions) and not entered again; the
 * waits each address's lives imply are known before it starts
 * (find_waits()).  Where no order fits (lost events), the search runs
 * again with any live block free to go, and past that the lowest stream's
 * record goes as it is.
 */
enum need { NEED_NOTHING, NEED_NONE_LIVE, NEED_OWN, NEED_LIVE };
enum after { AFTER_SAME, AFTER_NONE, AFTER_MADE };
enum { V_NONE = 1, V_BEFORE = 2, V_MADE = 3 /* + the stream's index */ };

#define SEARCH_STEPS_MIN 100000u  /* per epoch, before the search gives up */
#define SEARCH_STEPS_PER_RECORD 64u

struct op {
	uint64_t key;
	uint8_t need, after;  /* enum need (NEED_NOTHING: no op), enum after */
};

struct srec {
	struct op op[2];
	uint32_t stream;
	uint32_t waits, nwaits;  /* [waits, + nwaits) of search.wait */
};

/* Kept from epoch to epoch, its memory reused. */
struct search {
	struct srec *recs;     /* the epoch's records, stream by stream */
	size_t n, cap, k;
	size_t kcap, ncap;     /* of first (3 per stream) and chosen (2 per record) */
	size_t *first, *pos, *end;       /* per stream */
	uint64_t *zobrist;               /* per stream: added to the hash per step */
	uint32_t *chosen;      /* the stream of each record, in the order found */
	uint32_t *next;        /* per depth: the next candidate to try */
	struct heapmap model;  /* key -> V_* */
	struct heapmap made;   /* key -> 1 + the last stream to make it (describe()),
				  or to touch it (disjoint()) */
	struct heapmap dead;   /* hashes of positions that lead nowhere */
	uint64_t *undo;        /* key, old value; pairs */
	size_t nundo, undo_cap;
	/* find_waits(): the records each waits for in other streams */
	struct touch *touch;
	uint64_t *pairs;
	size_t touch_cap, pairs_cap;
	uint32_t *wait;
	size_t wait_cap;
	bool strict;           /* a free needs its own stream's block */
};

/* Whether the block at key is live as the epoch begins, as the model has
 * it from the report's heap. */
static bool live_at_start(struct ctx *c, struct search *z, uint64_t key, int dom,
			  uint64_t addr, bool arena)
{
	uint64_t v;
	if (hm_get(&z->model, key, &v))
		return v != V_NONE;
	struct mt_rec f = { .kind = arena ? MT_REC_ARENA_FREE : MT_REC_FREE, .dom = dom,
			    .addr = addr };
	bool live = report_applicable(c, &f);
	if (!live && !arena && (dom == MT_DOM_PYMEM || dom == MT_DOM_PYOBJ)) {
		f.dom = dom == MT_DOM_PYMEM ? MT_DOM_PYOBJ : MT_DOM_PYMEM;
		live = report_applicable(c, &f);
	}
	uint64_t unused;
	hm_put(&z->model, key, live ? V_BEFORE : V_NONE, &unused);
	return live;
}

/* What record r of stream i needs and leaves, into x. */
static int describe(struct ctx *c, struct search *z, const struct mt_rec *r, uint32_t i,
		    struct srec *x)
{
	int dom, n = 0;
	uint64_t addr, key, by = 0, unused;
	bool arena = r->kind == MT_REC_ARENA_ALLOC || r->kind == MT_REC_ARENA_FREE;
	memset(x, 0, sizeof *x);
	x->stream = i;
	if (keeps(r, &key)) {
		bool known = live_at_start(c, z, key, r->dom, r->old, false) ||
			     (hm_get(&z->made, key, &by) && by == i + 1);
		x->op[0] = (struct op){ key, known ? NEED_OWN : NEED_NONE_LIVE,
					r->addr ? AFTER_MADE : AFTER_SAME };
		return r->addr ? hm_put(&z->made, key, i + 1, &unused) < 0 : 0;
	}
	if (frees(r, &dom, &addr)) {
		key = key_of(dom, addr);
		bool known = live_at_start(c, z, key, dom, addr, arena) ||
			     (hm_get(&z->made, key, &by) && by == i + 1);
		x->op[n++] = (struct op){ key, known ? NEED_OWN : NEED_NONE_LIVE, AFTER_NONE };
	}
	if (makes(r, &dom, &addr)) {
		key = key_of(dom, addr);
		live_at_start(c, z, key, dom, addr, arena);
		x->op[n++] = (struct op){ key, NEED_NONE_LIVE, AFTER_MADE };
		if (hm_put(&z->made, key, i + 1, &unused) < 0)
			return -1;
	}
	return 0;
}

/* *p: a vector of *cap elements of size sz, grown to at least n. */
static int grow(void *p, size_t *cap, size_t n, size_t sz)
{
	if (n <= *cap)
		return 0;
	size_t c = *cap ? *cap : 16;
	while (c < n)
		c *= 2;
	void *v = realloc(*(void **)p, c * sz);
	if (!v)
		return -1;
	*(void **)p = v;
	*cap = c;
	return 0;
}

static bool op_applies(const struct search *z, const struct op *op, uint32_t stream)
{
	uint64_t v = 0;
	hm_get(&z->model, op->key, &v);
	switch (op->need) {
	case NEED_NONE_LIVE:
		return v == V_NONE;
	case NEED_OWN:
		return v == V_BEFORE || v == V_MADE + stream || (!z->strict && v >= V_BEFORE);
	default:
		return v >= V_BEFORE;
	}
}

static bool step_applies(const struct search *z, const struct srec *x)
{
	for (int i = 0; i < 2 && x->op[i].need; i++)
		if (!op_applies(z, &x->op[i], x->stream))
			return false;
	for (uint32_t j = 0; z->strict && j < x->nwaits; j++) {
		uint32_t y = z->wait[x->waits + j];
		if (z->pos[z->recs[y].stream] <= y)
			return false;
	}
	return true;
}

static int step_take(struct search *z, const struct srec *x)
{
	for (int i = 0; i < 2 && x->op[i].need; i++) {
		uint64_t old = 0, unused;
		hm_get(&z->model, x->op[i].key, &old);
		if (grow(&z->undo, &z->undo_cap, z->nundo + 2, sizeof *z->undo))
			return -1;
		z->undo[z->nundo++] = x->op[i].key;
		z->undo[z->nundo++] = old;
		uint64_t v = x->op[i].after == AFTER_NONE   ? V_NONE
			     : x->op[i].after == AFTER_MADE ? V_MADE + x->stream
							    : old;
		if (hm_put(&z->model, x->op[i].key, v, &unused) < 0)
			return -1;
	}
	return 0;
}

static void step_back(struct search *z, const struct srec *x)
{
	uint64_t unused;
	for (int i = x->op[1].need ? 1 : 0; i >= 0 && x->op[i].need; i--) {
		z->nundo -= 2;
		hm_put(&z->model, z->undo[z->nundo], z->undo[z->nundo + 1], &unused);
	}
}

/* The streams in the order a position tries them: a record that touches
 * no block (alone: taking it first loses nothing), else the stream that
 * went last, then the others by number.  UINT32_MAX past the last. */
static uint32_t candidate(const struct search *z, size_t depth, uint32_t nth)
{
	for (uint32_t s = 0; s < z->k; s++)
		if (z->pos[s] < z->end[s] && !z->recs[z->pos[s]].op[0].need)
			return nth ? UINT32_MAX : s;
	uint32_t last = depth ? z->chosen[depth - 1] : UINT32_MAX;
	if (last != UINT32_MAX && z->pos[last] < z->end[last]) {
		if (!nth)
			return last;
		nth--;
	}
	for (uint32_t s = 0; s < z->k; s++)
		if (s != last && z->pos[s] < z->end[s] && !nth--)
			return s;
	return UINT32_MAX;
}

/* One step back: the record at depth - 1 is undone. */
static uint64_t retreat(struct search *z, size_t depth, uint64_t h)
{
	uint32_t s = z->chosen[depth - 1];
	step_back(z, &z->recs[--z->pos[s]]);
	return h - z->zobrist[s];
}

/* Fills z->chosen with an order in which every record applies: 1, or 0
 * if there is none or the search ran out of steps (the model and the
 * positions are then as they began), -1 when memory ran out. */
static int search_order(struct search *z)
{
	uint64_t h = 0, unused, budget = SEARCH_STEPS_MIN + SEARCH_STEPS_PER_RECORD * z->n;
	size_t depth = 0;
	z->next[0] = 0;
	while (depth < z->n) {
		uint32_t s = UINT32_MAX;
		while (budget && (s = candidate(z, depth, z->next[depth]++)) != UINT32_MAX &&
		       !step_applies(z, &z->recs[z->pos[s]]))
			budget--;
		if (!budget) {
			for (; depth; depth--)
				h = retreat(z, depth, h);
			return 0;
		}
		if (s == UINT32_MAX) { /* nothing goes from here */
			if (hm_put(&z->dead, h, 1, &unused) < 0)
				return -1;
			if (!depth)
				return 0;
			h = retreat(z, depth--, h);
			continue;
		}
		if (hm_get(&z->dead, h + z->zobrist[s], &unused))
			continue;
		if (step_take(z, &z->recs[z->pos[s]]))
			return -1;
		z->pos[s]++;
		h += z->zobrist[s];
		z->chosen[depth++] = s;
		z->next[depth] = 0;
		budget--;
	}
	return 1;
}

static void search_free(struct search *z)
{
	free(z->recs);
	free(z->first);
	free(z->zobrist);
	free(z->chosen);
	free(z->undo);
	free(z->touch);
	free(z->pairs);
	free(z->wait);
	hm_free(&z->model);
	hm_free(&z->made);
	hm_free(&z->dead);
}

/* Collects the epoch's records of the streams in `in`. */
static int search_collect(struct ctx *c, struct search *z, struct stream **in)
{
	for (uint32_t i = 0; i < z->k; i++) {
		struct mt_dec d = from_head(in[i]);
		struct mt_rec r;
		z->first[i] = z->pos[i] = z->n;
		z->zobrist[i] = (i + 1) * 0x9e3779b97f4a7c15ull ^ 0xbf58476d1ce4e5b9ull * (i + 7);
		while (mt_dec_next(&d, &r) == 1 && !epoch_ends(&r)) {
			if (r.kind == MT_REC_EPOCH || r.kind == MT_REC_THREAD)
				continue;
			if (grow(&z->recs, &z->cap, z->n + 1, sizeof *z->recs) ||
			    describe(c, z, &r, i, &z->recs[z->n++]))
				return -1;
		}
		z->end[i] = z->n;
	}
	return 0;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

/* x waits for y: into z->pairs. */
static int wait_for(struct search *z, size_t *n, uint32_t x, uint32_t y)
{
	if (grow(&z->pairs, &z->pairs_cap, *n + 1, sizeof *z->pairs))
		return -1;
	z->pairs[(*n)++] = (uint64_t)x << 32 | y;
	return 0;
}

/* One record's op on a key; sorted by key, then by record. */
struct touch {
	uint64_t key;
	uint32_t rec, op;
};

static int by_key(const void *a, const void *b)
{
	const struct touch *x = a, *y = b;
	if (x->key != y->key)
		return x->key < y->key ? -1 : 1;
	return x->rec < y->rec ? -1 : x->rec > y->rec;
}

/* The end of the run of one stream's touches from t[a] on. */
static size_t run_end(const struct search *z, const struct touch *t, size_t a, size_t nt)
{
	size_t b = a + 1;
	while (b < nt && z->recs[t[b].rec].stream == z->recs[t[a].rec].stream)
		b++;
	return b;
}

/* The waits that follow from one address's lives (its nt touches), where
 * a search that finds them only by trying could run out of steps.  A
 * stream whose first record there gives back the block live as the epoch
 * begins goes there before every other stream; a stream whose last record
 * there makes a block, live as the epoch ends, goes there after them. */
static int waits_of(struct search *z, const struct touch *t, size_t nt, size_t *n)
{
	uint64_t v = 0;
	uint32_t open = UINT32_MAX, close = UINT32_MAX;
	hm_get(&z->model, t[0].key, &v);
	for (size_t a = 0, b; a < nt; a = b) {
		b = run_end(z, t, a, nt);
		if (z->recs[t[a].rec].op[t[a].op].need == NEED_OWN && v == V_BEFORE &&
		    open == UINT32_MAX)
			open = t[a].rec;
		if (z->recs[t[b - 1].rec].op[t[b - 1].op].after == AFTER_MADE)
			close = t[b - 1].rec;
	}
	for (size_t a = 0, b; a < nt; a = b) {
		b = run_end(z, t, a, nt);
		uint32_t s = z->recs[t[a].rec].stream;
		if (open != UINT32_MAX && z->recs[open].stream != s && wait_for(z, n, t[a].rec, open))
			return -1;
		if (close != UINT32_MAX && z->recs[close].stream != s &&
		    wait_for(z, n, close, t[b - 1].rec))
			return -1;
	}
	return 0;
}

static int find_waits(struct search *z)
{
	size_t nt = 0, n = 0, nw = 0;
	if (grow(&z->touch, &z->touch_cap, 2 * z->n + 1, sizeof *z->touch))
		return -1;
	for (uint32_t r = 0; r < z->n; r++)
		for (uint32_t i = 0; i < 2 && z->recs[r].op[i].need; i++)
			z->touch[nt++] = (struct touch){ z->recs[r].op[i].key, r, i };
	qsort(z->touch, nt, sizeof *z->touch, by_key);
	for (size_t a = 0, b; a < nt; a = b) {
		for (b = a + 1; b < nt && z->touch[b].key == z->touch[a].key; b++)
			;
		if (b - a > 1 && waits_of(z, z->touch + a, b - a, &n))
			return -1;
	}
	if (n)
		qsort(z->pairs, n, sizeof *z->pairs, cmp_u64);
	if (grow(&z->wait, &z->wait_cap, n + 1, sizeof *z->wait))
		return -1;
	for (uint32_t r = 0; r < z->n; r++)
		z->recs[r].nwaits = 0;
	for (size_t i = 0; i < n; i++) {
		struct srec *x = &z->recs[z->pairs[i] >> 32];
		if (!x->nwaits)
			x->waits = (uint32_t)nw;
		x->nwaits++;
		z->wait[nw++] = (uint32_t)z->pairs[i];
	}
	return 0;
}

static int search_init(struct ctx *c, struct search *z, struct stream **in, size_t k)
{
	if (hm_clear(&z->model) || hm_clear(&z->made) || hm_clear(&z->dead))
		return -1;
	size_t kcap = z->kcap;
	if (grow(&z->first, &z->kcap, 3 * k, sizeof *z->first) ||
	    grow(&z->zobrist, &kcap, 3 * k, sizeof *z->zobrist))
		return -1;
	z->k = k;
	z->n = z->nundo = 0;
	z->strict = true;
	z->pos = z->first + k;
	z->end = z->pos + k;
	if (search_collect(c, z, in) || find_waits(z) ||
	    grow(&z->chosen, &z->ncap, 2 * (z->n + 1), sizeof *z->chosen))
		return -1;
	z->next = z->chosen + z->n + 1;
	return 0;
}

/* What is left of the epoch when no order fits: the lowest stream whose
 * record applies to the report's heap, else the lowest stream's record
 * (an allocation at a live address, a free of none: the report counts
 * them as inconsistent and unmatched). */
static int merge_forced(struct ctx *c, struct stream **in, size_t k, uint64_t e)
{
	for (;;) {
		struct stream *pick = NULL, *first = NULL;
		for (size_t i = 0; i < k && !pick; i++) {
			if (!in[i]->has_head || in[i]->epoch != e)
				continue;
			first = first ? first : in[i];
			if (report_applicable(c, &in[i]->head))
				pick = in[i];
		}
		if (!first)
			return 0;
		int st = emit(c, pick ? pick : first);
		if (st < 0 || stopped(c))
			return st < 0 ? -1 : 0;
	}
}

/* The keys of the blocks record r makes or gives back, into key[]; how
 * many. */
static int touches(const struct mt_rec *r, uint64_t key[2])
{
	int dom, n = 0;
	uint64_t addr;
	if (keeps(r, &key[0]))
		return 1;
	if (frees(r, &dom, &addr))
		key[n++] = key_of(dom, addr);
	if (makes(r, &dom, &addr))
		key[n++] = key_of(dom, addr);
	return n;
}

/* 1 when no two of the streams touch one block address in the epoch
 * (nearly every epoch of threads that each work on their own blocks):
 * each stream's records then go as they are, one stream after another.
 * 0 if two do, -1 when memory ran out. */
static int disjoint(struct search *z, struct stream **in, size_t k)
{
	uint64_t key[2], by, unused;
	if (hm_clear(&z->made))
		return -1;
	for (size_t i = 0; i < k; i++) {
		struct mt_dec d = from_head(in[i]);
		struct mt_rec r;
		while (mt_dec_next(&d, &r) == 1 && !epoch_ends(&r))
			for (int j = touches(&r, key) - 1; j >= 0; j--) {
				if (hm_get(&z->made, key[j], &by) && by != i + 1)
					return 0;
				if (hm_put(&z->made, key[j], i + 1, &unused) < 0)
					return -1;
			}
	}
	return 1;
}

/* Several thread streams in epoch e, along the order the search finds. */
static int merge(struct ctx *c, uint64_t e)
{
	struct order *o = c->order;
	struct stream *in[o->nactive ? o->nactive : 1];
	struct search *z = o->search;
	size_t k = 0;
	for (size_t i = 0; i < o->nactive; i++)
		if (o->active[i]->number && o->active[i]->has_head && o->active[i]->epoch == e)
			in[k++] = o->active[i];
	int st = disjoint(z, in, k);
	for (size_t i = 0; st == 1 && i < k && !stopped(c); i++)
		if (run(c, in[i], e) < 0)
			st = -1;
	if (st == 1)
		return 0;
	st = st < 0 || search_init(c, z, in, k) ? -1 : 0;
	for (int pass = 0; st == 0 && pass < 2; pass++) {
		z->strict = pass == 0;
		st = search_order(z);
		if (st == 0 && pass == 0) { /* what led nowhere may lead somewhere now */
			st = hm_clear(&z->dead);
		}
	}
	for (size_t d = 0; st == 1 && d < z->n && !stopped(c); d++)
		if (emit(c, in[z->chosen[d]]) < 0)
			st = -1;
	if (st == 0)
		st = merge_forced(c, in, k, e);
	if (st < 0 && !c->order->error[0])
		c->oom = true;
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
	struct order *o = c->order = calloc(1, sizeof *c->order);
	struct search *z = o ? o->search = calloc(1, sizeof *o->search) : NULL;
	if (!z || hm_init(&o->ids) || hm_init(&z->model) || hm_init(&z->made) ||
	    hm_init(&z->dead))
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
	if (o->search)
		search_free(o->search);
	free(o->search);
	hm_free(&o->ids);
	free(o);
	c->order = NULL;
}
