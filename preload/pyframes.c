/*
 * pyframes.c - the Python location of an allocation.  Reads the calling
 * thread's interpreter frames where the interpreter says they are
 * (pydesc.h: no frame objects are created, nothing is allocated), and
 * turns (code object, instruction) pairs into stack-node ids, resolving
 * lines with the interpreter's own PyCode_Addr2Line.  Each code object,
 * string and stack node is defined in the trace once (meta.h); events then
 * carry only the id of their innermost node.
 *
 * The tables below are shared by all threads, which a free-threaded build
 * runs in parallel.  Looking a location up takes no lock (idmap.h); only
 * defining a new one takes the meta lock, so threads wait for each other
 * only while the program runs code it has not run before.  A code object
 * that is freed is dropped from the tables, since another code object may
 * take its address.
 */
#define _GNU_SOURCE
#include "pydesc_311.h"
#include "pyshim.h"

#include <stdlib.h>
#include <string.h>

#include "idmap.h"
#include "meta.h"
#include "pydesc.h"
#include "threads.h"

static struct {
	struct mt_pydesc d;
	int depth;
	struct mt_idmap codes;  /* (code address) -> code id */
	struct mt_idmap instrs; /* (parent node, code id, instruction) -> node */
	struct mt_idmap lines;  /* (parent node, code id, line) -> node */
	uint64_t next_code, next_node;
	uint64_t generation;    /* bumped when a known code object dies */
	uint8_t maybe_code[8192]; /* bit per address hash: a code object lives there */
} pf;

void mt_pyframes_init(const struct mt_pydesc *desc, int depth)
{
	pf.d = *desc;
	pf.depth = depth;
}

static size_t code_bit(const void *p)
{
	return ((uintptr_t)p >> 4) & (sizeof pf.maybe_code * 8 - 1);
}

static int maybe_code(const void *p)
{
	size_t bit = code_bit(p);
	return __atomic_load_n(&pf.maybe_code[bit / 8], __ATOMIC_RELAXED) & (1u << (bit % 8));
}

void mt_pyframes_freed(const void *p)
{
	if (!maybe_code(p) || !mt_idmap_get(&pf.codes, (uintptr_t)p, 0, 0))
		return;
	mt_meta_lock();
	if (mt_idmap_get(&pf.codes, (uintptr_t)p, 0, 0)) {
		mt_idmap_del(&pf.codes, (uintptr_t)p, 0, 0);
		__atomic_store_n(&pf.generation, pf.generation + 1, __ATOMIC_RELEASE);
	}
	mt_meta_unlock();
}

/* ---- reading frames ------------------------------------------------------- */

/* The fast path reads frames as d describes them: &pf.d, or on 3.11 a
 * constant with the same offsets, which the compiler folds in. */

static inline const void *frame_code(const struct mt_pydesc *d, const void *f)
{
	return mt_pyd_ptr(f, d->f_code);
}

static inline const void *frame_instr(const struct mt_pydesc *d, const void *f)
{
	return mt_pyd_ptr(f, d->f_instr);
}

/* f, or its nearest caller that is not an entry frame of the C stack. */
static inline const void *python_frame(const struct mt_pydesc *d, const void *f)
{
	while (d->owner_cstack >= 0 && f && mt_pyd_byte(f, d->f_owner) == d->owner_cstack)
		f = mt_pyd_ptr(f, d->f_previous);
	return f;
}

static inline const void *current_frame(const struct mt_pydesc *d)
{
	const void *p = pf.d.tstate();
	if (!p)
		return NULL;
	p = mt_pyd_ptr(p, d->ts_frame[0]);
	if (p && d->ts_hops == 2)
		p = mt_pyd_ptr(p, d->ts_frame[1]);
	return python_frame(d, p);
}

/* A frame that runs code of its own: a code object with a line table
 * (3.13 runs some calls of __init__ through a shim code object without
 * one, which CPython's own tracebacks leave out too). */
static int has_lines(const void *code)
{
	if (mt_pyd_ptr(code, pf.d.ob_type) != pf.d.code_type)
		return 0;
	const void *table = mt_pyd_ptr(code, pf.d.co_linetable);
	return table && mt_pyd_ssize(table, pf.d.bytes_size) > 0;
}

/* ---- interning -------------------------------------------------------------- */

static uint64_t string_id(const void *code, size_t off)
{
	uint64_t id = mt_pyobj_string_id(mt_pyd_ptr(code, off));
	return id ? id : mt_meta_string("?", 1);
}

/* Under the meta lock. */
static uint64_t code_id(const void *co)
{
	uint64_t id = mt_idmap_get(&pf.codes, (uintptr_t)co, 0, 0);
	if (id)
		return id;
	uint64_t file = string_id(co, pf.d.co_filename), name = string_id(co, pf.d.co_qualname);
	struct mt_enc *e = mt_meta_room(mt_enc_def_size(0));
	id = pf.next_code + 1;
	if (!file || !name || !e || mt_idmap_put(&pf.codes, (uintptr_t)co, 0, 0, id))
		return 0;
	pf.next_code = id;
	size_t bit = code_bit(co);
	__atomic_fetch_or(&pf.maybe_code[bit / 8], (uint8_t)(1u << (bit % 8)), __ATOMIC_RELAXED);
	mt_enc_code(e, id, file, name, (uint64_t)mt_pyd_int(co, pf.d.co_firstlineno));
	return id;
}

/* A frame's instruction as a byte offset into its bytecode, as
 * PyCode_Addr2Line takes it (3.11's frames point before the first
 * instruction until it runs). */
static inline int64_t instr_offset(const void *f, const char *co)
{
	return (const char *)frame_instr(&pf.d, f) - (co + pf.d.co_code);
}

/* Under the meta lock: the node for one frame below `parent`. */
static uint64_t node_id(uint64_t parent, const void *f)
{
	const char *co = frame_code(&pf.d, f);
	uint64_t code = code_id(co);
	if (!code)
		return 0;
	int64_t instr = instr_offset(f, co);
	uint64_t id = mt_idmap_get(&pf.instrs, parent, code, (uint64_t)instr);
	if (id)
		return id;
	int line = pf.d.addr2line((void *)co, (int)instr);
	id = mt_idmap_get(&pf.lines, parent, code, (uint64_t)line);
	if (!id) {
		struct mt_enc *e = mt_meta_room(mt_enc_def_size(0));
		id = pf.next_node + 1;
		if (!e || mt_idmap_put(&pf.lines, parent, code, (uint64_t)line, id))
			return 0;
		pf.next_node = id;
		mt_enc_frame(e, id, parent, code, line < 0 ? 0 : (uint64_t)line);
	}
	return mt_idmap_put(&pf.instrs, parent, code, (uint64_t)instr, id) ? 0 : id;
}

/* Without the lock: the node of frames[n - 1] ... frames[0], outermost
 * first, if all of it is defined already; else 0. */
static uint64_t known_node(const void *const *frames, int n)
{
	uint64_t node = 0;
	while (n-- > 0) {
		const char *co = frame_code(&pf.d, frames[n]);
		uint64_t code = mt_idmap_get(&pf.codes, (uintptr_t)co, 0, 0);
		if (!code)
			return 0;
		node = mt_idmap_get(&pf.instrs, node, code, (uint64_t)instr_offset(frames[n], co));
		if (!node)
			return 0;
	}
	return node;
}

/* The innermost frame's node for the `depth` innermost frames with code
 * of their own, outermost first in the chain of parents; *top_skipped:
 * the innermost frame was not one of them. */
static uint64_t stack_node(const void *top, int *top_skipped)
{
	const void *frames[MT_PY_DEPTH_MAX];
	int n = 0;
	for (const void *f = top; f && n < pf.depth;
	     f = python_frame(&pf.d, mt_pyd_ptr(f, pf.d.f_previous)))
		if (has_lines(frame_code(&pf.d, f)))
			frames[n++] = f;
	*top_skipped = n == 0 || frames[0] != top;
	uint64_t node = known_node(frames, n);
	if (node || !n)
		return node;
	struct mt_ring *saved = mt_internal_enter();
	mt_meta_lock();
	while (n-- > 0 && (node = node_id(node, frames[n])))
		;
	mt_meta_unlock();
	mt_internal_leave(saved);
	return node;
}

/* The slow path of mt_pyframes_location: f's stack node, remembered as the
 * thread's last lookup. */
static __attribute__((noinline)) uint64_t locate(struct mt_py_cache *last, const void *f,
						 const void *code, const void *instr,
						 uint64_t generation)
{
	int skipped;
	uint64_t node = stack_node(f, &skipped);
	if (!skipped) {
		last->code = code;
		last->instr = instr;
		last->generation = generation;
		last->node = node;
	}
	return node;
}

static inline uint64_t location(const struct mt_pydesc *d)
{
	const void *f = current_frame(d);
	if (!f)
		return 0;
	const void *code = frame_code(d, f), *instr = frame_instr(d, f);
	uint64_t generation = __atomic_load_n(&pf.generation, __ATOMIC_ACQUIRE);
	struct mt_py_cache *last = &mt_thread_self()->py;
	if (pf.depth == 1 && last->code == code && last->instr == instr &&
	    last->generation == generation)
		return last->node;
	return locate(last, f, code, instr, generation);
}

uint64_t mt_pyframes_location(void)
{
#ifdef MT_PYDESC_311
	/* 3.11: the headers' layout, folded in (about 5 instructions less per
	 * event than loading the offsets) */
	static const struct mt_pydesc layout_311 = MT_PYDESC_311;
	if (pf.d.ts_hops == 2)
		return location(&layout_311);
#endif
	return location(&pf.d);
}

void mt_pyframes_fork_child(void)
{
	mt_idmap_clear(&pf.codes);
	mt_idmap_clear(&pf.instrs);
	mt_idmap_clear(&pf.lines);
	pf.next_code = pf.next_node = 0;
	pf.generation++;
	memset(pf.maybe_code, 0, sizeof pf.maybe_code);
}
