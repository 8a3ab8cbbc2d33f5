/*
 * pyframes.c - the Python location of an allocation.  Reads the calling
 * thread's interpreter frames where the interpreter says they are
 * (pydesc.h: no frame objects are created, nothing is allocated), and
 * turns (code object, instruction) pairs into stack-node ids, resolving
 * lines with the interpreter's own PyCode_Addr2Line.  Each code object,
 * string and stack node is defined in the trace once (meta.h); events then
 * carry only the id of their innermost node.
 *
 * The tables below are shared by all threads.  With the GIL only one
 * thread runs Python at a time, but a free-threaded build runs them in
 * parallel, so they are only touched under the meta lock; what the fast
 * path reads without it (the generation, the code-address bits) is
 * atomic.  A code object that is freed is dropped from the tables, since
 * another code object may take its address.
 */
#define _GNU_SOURCE
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

/* The last lookup of each thread, for the common case of many allocations
 * from one instruction in a loop. */
static __thread struct {
	const void *code, *instr;
	uint64_t generation, node;
} last __attribute__((tls_model("initial-exec")));

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
	if (!maybe_code(p))
		return;
	mt_meta_lock();
	if (mt_idmap_get(&pf.codes, (uintptr_t)p, 0, 0)) {
		mt_idmap_del(&pf.codes, (uintptr_t)p, 0, 0);
		__atomic_store_n(&pf.generation, pf.generation + 1, __ATOMIC_RELEASE);
	}
	mt_meta_unlock();
}

/* ---- reading frames ------------------------------------------------------- */

static inline const void *frame_code(const void *f)
{
	return mt_pyd_ptr(f, pf.d.f_code);
}

static inline const void *frame_instr(const void *f)
{
	return mt_pyd_ptr(f, pf.d.f_instr);
}

/* f, or its nearest caller that is not an entry frame of the C stack. */
static inline const void *python_frame(const void *f)
{
	while (f && mt_pyd_byte(f, pf.d.f_owner) == pf.d.owner_cstack)
		f = mt_pyd_ptr(f, pf.d.f_previous);
	return f;
}

static inline const void *current_frame(void)
{
	const void *p = pf.d.tstate();
	for (int i = 0; p && i < pf.d.ts_hops; i++)
		p = mt_pyd_ptr(p, pf.d.ts_frame[i]);
	return python_frame(p);
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

/* Under the meta lock: the node for one frame below `parent`. */
static uint64_t node_id(uint64_t parent, const void *f)
{
	const char *co = frame_code(f);
	uint64_t code = code_id(co);
	if (!code)
		return 0;
	/* a byte offset into the bytecode, as PyCode_Addr2Line takes it
	 * (3.11's frames point before the first instruction until it runs) */
	int64_t instr = (const char *)frame_instr(f) - (co + pf.d.co_code);
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

/* The innermost frame's node for the `depth` innermost frames with code
 * of their own, outermost first in the chain of parents; *top_skipped:
 * the innermost frame was not one of them. */
static uint64_t stack_node(const void *top, int *top_skipped)
{
	const void *frames[MT_PY_DEPTH_MAX];
	int n = 0;
	for (const void *f = top; f && n < pf.depth; f = python_frame(mt_pyd_ptr(f, pf.d.f_previous)))
		if (has_lines(frame_code(f)))
			frames[n++] = f;
	*top_skipped = n == 0 || frames[0] != top;
	uint64_t node = 0;
	struct mt_ring *saved = mt_internal_enter();
	mt_meta_lock();
	while (n-- > 0 && (node = node_id(node, frames[n])))
		;
	mt_meta_unlock();
	mt_internal_leave(saved);
	return node;
}

uint64_t mt_pyframes_location(void)
{
	const void *f = current_frame();
	if (!f)
		return 0;
	const void *code = frame_code(f), *instr = frame_instr(f);
	uint64_t generation = __atomic_load_n(&pf.generation, __ATOMIC_ACQUIRE);
	if (pf.depth == 1 && last.code == code && last.instr == instr &&
	    last.generation == generation)
		return last.node;
	int skipped;
	uint64_t node = stack_node(f, &skipped);
	if (!skipped) {
		last.code = code;
		last.instr = instr;
		last.generation = generation;
		last.node = node;
	}
	return node;
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
