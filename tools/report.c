/*
 * report.c - builds a struct mt_report by streaming a trace: one block in
 * memory at a time, live heap state in per-domain hash maps, so memory
 * follows the live allocations and never the trace length.
 */
#include "report.h"

#include <stdlib.h>
#include <string.h>

#include "codec.h"
#include "heapmap.h"

/* A moved realloc's OUT half, waiting for the IN half of the same thread. */
struct pending {
	bool active, found;
	int dom;
	uint64_t old, size; /* the block OUT took off the live map */
};

struct ctx {
	struct mt_report *rep;
	struct heapmap live[MT_DOM_COUNT]; /* address -> size */
	struct heapmap tids;               /* tid -> index in pend */
	struct pending *pend; /* pend[0] serves records before any THREAD */
	size_t npend, pend_cap;
	size_t cur; /* pend index of the thread the records belong to */
	uint64_t lost_records, lost_footer;
	int last_type;
	bool oom;
};

const char *mt_domain_name(int dom)
{
	static const char *const names[MT_DOM_COUNT] = { "malloc", "pymem_raw", "pymem_mem",
							  "pymem_obj" };
	return names[dom];
}

const char *mt_end_reason_name(int reason)
{
	switch (reason) {
	case MT_REASON_NONE:
		return NULL;
	case MT_END_EXIT:
		return "exit";
	case MT_END_EXEC:
		return "exec";
	case MT_END__EXIT:
		return "_exit";
	default:
		return "unknown";
	}
}

/* ---- live heap accounting ---------------------------------------------- */

static void live_add(struct ctx *c, int dom, uint64_t addr, uint64_t size)
{
	struct mt_dom_stats *s = &c->rep->dom[dom];
	uint64_t old;
	int r = hm_put(&c->live[dom], addr, size, &old);
	if (r < 0) {
		c->oom = true;
		return;
	}
	if (r == 1) {
		s->inconsistent++;
		s->live_bytes -= old;
	}
	s->live_bytes += size;
	if (s->live_bytes > s->peak_bytes)
		s->peak_bytes = s->live_bytes;
}

static bool live_take(struct ctx *c, int dom, uint64_t addr, uint64_t *size)
{
	if (!hm_del(&c->live[dom], addr, size))
		return false;
	c->rep->dom[dom].live_bytes -= *size;
	return true;
}

static void freed(struct ctx *c, int dom, uint64_t addr)
{
	uint64_t size;
	c->rep->dom[dom].frees++;
	if (!live_take(c, dom, addr, &size))
		c->rep->dom[dom].unmatched_frees++;
}

static void allocated(struct ctx *c, int dom, uint64_t size, uint64_t addr)
{
	struct mt_dom_stats *s = &c->rep->dom[dom];
	if (!addr) {
		s->failed++;
		return;
	}
	s->allocs++;
	s->bytes_allocated += size;
	live_add(c, dom, addr, size);
}

/* The new block of a successful realloc (the old one is already gone). */
static void resized(struct ctx *c, int dom, uint64_t size, uint64_t addr)
{
	c->rep->dom[dom].reallocs++;
	c->rep->dom[dom].bytes_allocated += size;
	live_add(c, dom, addr, size);
}

/* An old block that is not live (a fork child's inherited heap) has no
 * size to give back; the new block is tracked from here on all the same. */
static void on_realloc(struct ctx *c, const struct mt_rec *r)
{
	uint64_t size;
	if (!r->old) {
		allocated(c, r->dom, r->size, r->addr);
	} else if (r->addr) {
		live_take(c, r->dom, r->old, &size);
		resized(c, r->dom, r->size, r->addr);
	} else if (r->size) {
		c->rep->dom[r->dom].failed++; /* the old block stays */
	} else {
		freed(c, r->dom, r->old); /* realloc(p, 0) */
	}
}

/* OUT takes the old block off the live map at once: another thread may be
 * handed the same address before this thread's IN arrives. */
static void on_realloc_out(struct ctx *c, const struct mt_rec *r)
{
	struct pending *p = &c->pend[c->cur];
	p->active = true;
	p->dom = r->dom;
	p->old = r->addr;
	p->found = live_take(c, r->dom, r->addr, &p->size);
}

static void on_realloc_in(struct ctx *c, const struct mt_rec *r)
{
	struct pending out = c->pend[c->cur];
	struct mt_dom_stats *s = &c->rep->dom[r->dom];
	c->pend[c->cur].active = false;
	if (r->addr) {
		resized(c, r->dom, r->size, r->addr);
	} else if (r->size || !out.active) {
		s->failed++;
		if (out.active && out.found)
			live_add(c, out.dom, out.old, out.size);
	} else {
		s->frees++; /* realloc(p, 0) freed p */
		s->unmatched_frees += !out.found;
	}
}

static void on_thread(struct ctx *c, uint64_t tid)
{
	uint64_t idx, unused;
	if (hm_get(&c->tids, tid, &idx)) {
		c->cur = (size_t)idx;
		return;
	}
	if (c->npend == c->pend_cap) {
		struct pending *p = realloc(c->pend, 2 * c->pend_cap * sizeof *p);
		if (!p) {
			c->oom = true;
			return;
		}
		c->pend = p;
		c->pend_cap *= 2;
	}
	if (hm_put(&c->tids, tid, c->npend, &unused) < 0) {
		c->oom = true;
		return;
	}
	c->pend[c->npend] = (struct pending){ 0 };
	c->cur = c->npend++;
}

static void apply(struct ctx *c, const struct mt_rec *r)
{
	struct mt_report *rep = c->rep;
	switch (r->kind) {
	case MT_REC_MALLOC:
	case MT_REC_CALLOC:
	case MT_REC_ALIGNED:
		rep->events.total++;
		allocated(c, r->dom, r->size, r->addr);
		break;
	case MT_REC_REALLOC:
		rep->events.total++;
		on_realloc(c, r);
		break;
	case MT_REC_REALLOC_OUT:
		on_realloc_out(c, r);
		break;
	case MT_REC_REALLOC_IN:
		rep->events.total++;
		on_realloc_in(c, r);
		break;
	case MT_REC_FREE:
		rep->events.total++;
		freed(c, r->dom, r->addr);
		break;
	case MT_REC_THREAD:
		on_thread(c, r->value);
		break;
	case MT_REC_TIME:
		rep->trace.duration_us += r->value;
		break;
	case MT_REC_LOST:
		c->lost_records += r->value;
		break;
	default:
		/* Python arenas and locations: pymalloc arenas hold the PYOBJ
		 * blocks already counted, so they would count memory twice. */
		break;
	}
}

/* ---- blocks ------------------------------------------------------------ */

static int keep_bytes(struct ctx *c, struct mt_bytes *b, const struct mt_kv *kv)
{
	uint8_t *p = malloc(kv->n ? kv->n : 1);
	if (!p) {
		c->oom = true;
		return -1;
	}
	memcpy(p, kv->bytes, kv->n);
	free(b->p);
	b->p = p;
	b->n = kv->n;
	return 0;
}

static int header_entry(struct ctx *c, const struct mt_kv *kv)
{
	struct mt_process *p = &c->rep->process;
	switch (kv->key) {
	case MT_H_PID:
		p->pid = kv->u64;
		p->have |= MT_HAVE_PID;
		return 0;
	case MT_H_PPID:
		p->ppid = kv->u64;
		p->have |= MT_HAVE_PPID;
		return 0;
	case MT_H_START_NS:
		p->start_ns = kv->u64;
		p->have |= MT_HAVE_START;
		return 0;
	case MT_H_PAGE_SIZE:
		p->page_size = kv->u64;
		p->have |= MT_HAVE_PAGE_SIZE;
		return 0;
	case MT_H_VERSION:
		return keep_bytes(c, &p->version, kv);
	case MT_H_EXE:
		return keep_bytes(c, &p->exe, kv);
	case MT_H_ARGV:
		return keep_bytes(c, &p->argv, kv);
	default:
		return 0; /* a key from a later minor version */
	}
}

/* Footers are cumulative: the last one holds the final totals. */
static void footer_entry(struct ctx *c, const struct mt_kv *kv)
{
	switch (kv->key) {
	case MT_F_LOST:
		c->lost_footer = kv->u64;
		break;
	case MT_F_WAITS:
		c->rep->events.producer_waits = kv->u64;
		break;
	case MT_F_REASON:
		c->rep->trace.end_reason =
			kv->u64 <= MT_END__EXIT ? (int)kv->u64 : MT_REASON_UNKNOWN;
		break;
	}
}

/* Once the live blocks outgrow the cache, every map operation is a cache
 * miss.  Records are then decoded this far ahead of their accounting, so
 * that the slots they will touch are already on their way in; below the
 * threshold (1 MB of slots) the lookahead costs more than it saves. */
#define LOOKAHEAD 8
#define PREFETCH_MIN_SLOTS (1u << 16)

static bool maps_outgrow_cache(const struct ctx *c)
{
	for (int d = 0; d < MT_DOM_COUNT; d++)
		if (c->live[d].mask + 1 >= PREFETCH_MIN_SLOTS)
			return true;
	return false;
}

/* Both return what mt_dec_next last said: 0 at the end of the block, -1 at
 * a malformed record (1 when they stopped because memory ran out). */
static int apply_direct(struct ctx *c, struct mt_dec *d)
{
	struct mt_rec r;
	int st;
	while ((st = mt_dec_next(d, &r)) == 1 && !c->oom)
		apply(c, &r);
	return st;
}

static int apply_prefetched(struct ctx *c, struct mt_dec *d)
{
	struct mt_rec ahead[LOOKAHEAD];
	size_t decoded = 0;
	int st = 1;
	for (size_t done = 0; !c->oom; done++) {
		while (st == 1 && decoded < done + LOOKAHEAD) {
			struct mt_rec *r = &ahead[decoded % LOOKAHEAD];
			if ((st = mt_dec_next(d, r)) != 1)
				break;
			/* Inline on purpose: GCC takes a function holding only
			 * prefetches for pure and drops its calls. */
			hm_prefetch(&c->live[r->dom], r->addr);
			hm_prefetch(&c->live[r->dom], r->old);
			decoded++;
		}
		if (done == decoded)
			break;
		apply(c, &ahead[done % LOOKAHEAD]);
	}
	return st;
}

/* 0, or -1 when a record is malformed (or memory ran out: c->oom). */
static int read_events(struct ctx *c, const uint8_t *raw, size_t len)
{
	struct mt_dec d;
	mt_dec_init(&d, raw, len);
	int st = maps_outgrow_cache(c) ? apply_prefetched(c, &d) : apply_direct(c, &d);
	return c->oom ? -1 : st;
}

/* 0, or -1 when the payload is malformed (or memory ran out: c->oom). */
static int read_block(struct ctx *c, int type, const uint8_t *raw, size_t len)
{
	struct mt_kv kv;
	size_t pos = 0;
	int st;
	if (type == MT_BLOCK_EVENTS) {
		c->rep->trace.blocks++;
		return read_events(c, raw, len);
	}
	if (type == MT_BLOCK_FOOTER)
		c->rep->trace.end_reason = MT_REASON_NONE;
	while ((st = mt_kv_next(raw, len, &pos, &kv)) == 1) {
		if (type == MT_BLOCK_FOOTER)
			footer_entry(c, &kv);
		else if (header_entry(c, &kv))
			return -1;
	}
	return st;
}

static enum mt_report_status block_error(struct ctx *c, int type, uint64_t index,
					 uint64_t offset)
{
	static const char *const what[] = { [MT_BLOCK_HEADER] = "malformed header",
					    [MT_BLOCK_EVENTS] = "malformed event record",
					    [MT_BLOCK_FOOTER] = "malformed footer" };
	snprintf(c->rep->error, sizeof c->rep->error, "%s (block %llu, offset %llu)",
		 c->oom ? "out of memory" : what[type], (unsigned long long)index,
		 (unsigned long long)offset);
	return c->oom ? MT_REPORT_FAILED : MT_REPORT_BAD_TRACE;
}

static enum mt_report_status read_blocks(struct ctx *c, struct mt_reader *rd)
{
	int type, st;
	uint64_t offset = rd->offset;
	while ((st = mt_reader_next(rd, &type)) == MT_READ_OK) {
		if (read_block(c, type, rd->raw, rd->raw_len))
			return block_error(c, type, rd->blocks - 1, offset);
		c->last_type = type;
		offset = rd->offset;
	}
	if (st == MT_READ_END)
		return MT_REPORT_OK;
	snprintf(c->rep->error, sizeof c->rep->error, "%s", rd->error);
	if (st == MT_READ_TRUNCATED)
		return MT_REPORT_TORN;
	return st == MT_READ_CORRUPT ? MT_REPORT_BAD_TRACE : MT_REPORT_FAILED;
}

/* ---- the builder ------------------------------------------------------- */

static int ctx_init(struct ctx *c, struct mt_report *rep)
{
	int err = 0;
	memset(c, 0, sizeof *c);
	c->rep = rep;
	for (int d = 0; d < MT_DOM_COUNT; d++)
		err |= hm_init(&c->live[d]);
	err |= hm_init(&c->tids);
	c->pend_cap = 16;
	c->npend = 1;
	c->pend = calloc(c->pend_cap, sizeof *c->pend);
	return err || !c->pend ? -1 : 0;
}

static void ctx_free(struct ctx *c)
{
	for (int d = 0; d < MT_DOM_COUNT; d++)
		hm_free(&c->live[d]);
	hm_free(&c->tids);
	free(c->pend);
}

static void finish(struct ctx *c, enum mt_report_status st)
{
	struct mt_report *rep = c->rep;
	rep->trace.complete = st == MT_REPORT_OK && c->last_type == MT_BLOCK_FOOTER;
	if (!rep->trace.complete)
		rep->trace.end_reason = MT_REASON_NONE;
	rep->trace.threads = hm_count(&c->tids);
	rep->events.lost = c->lost_footer + c->lost_records;
	for (int d = 0; d < MT_DOM_COUNT; d++)
		rep->dom[d].live_blocks = hm_count(&c->live[d]);
}

static enum mt_report_status open_error(struct mt_report *rep, struct mt_reader *rd, int st,
					FILE *f)
{
	bool empty = st == MT_READ_FOREIGN && feof(f) && ftell(f) == 0;
	snprintf(rep->error, sizeof rep->error, "%s", empty ? "empty file" : rd->error);
	return st == MT_READ_IO ? MT_REPORT_FAILED : MT_REPORT_BAD_TRACE;
}

enum mt_report_status mt_report_build(FILE *f, struct mt_report *rep)
{
	struct mt_reader rd;
	struct ctx c;
	enum mt_report_status st;
	int rst;
	memset(rep, 0, sizeof *rep);
	rep->trace.end_reason = MT_REASON_NONE;
	rst = mt_reader_open(&rd, f);
	if (rst != MT_READ_OK) {
		st = open_error(rep, &rd, rst, f);
	} else if (ctx_init(&c, rep)) {
		snprintf(rep->error, sizeof rep->error, "out of memory");
		st = MT_REPORT_FAILED;
		ctx_free(&c);
	} else {
		st = read_blocks(&c, &rd);
		finish(&c, st);
		ctx_free(&c);
	}
	mt_reader_close(&rd);
	return st;
}

void mt_report_free(struct mt_report *rep)
{
	free(rep->process.exe.p);
	free(rep->process.argv.p);
	free(rep->process.version.p);
	rep->process.exe.p = rep->process.argv.p = rep->process.version.p = NULL;
}
