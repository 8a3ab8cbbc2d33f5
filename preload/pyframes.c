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

static void script_code_gone(const void *p);

void mt_pyframes_freed(const void *p)
{
	if (!maybe_code(p))
		return;
	script_code_gone(p);
	if (!mt_idmap_get(&pf.codes, (uintptr_t)p, 0, 0))
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

static inline __attribute__((always_inline)) const void *frame_code(const struct mt_pydesc *d, const void *f)
{
	return mt_pyd_ptr(f, d->f_code);
}

static inline __attribute__((always_inline)) const void *frame_instr(const struct mt_pydesc *d, const void *f)
{
	return mt_pyd_ptr(f, d->f_instr);
}

/* f, or its nearest caller that is not an entry frame of the C stack. */
static inline __attribute__((always_inline)) const void *python_frame(const struct mt_pydesc *d, const void *f)
{
	while (d->owner_cstack >= 0 && f && mt_pyd_byte(f, d->f_owner) == d->owner_cstack)
		f = mt_pyd_ptr(f, d->f_previous);
	return f;
}

static inline __attribute__((always_inline)) const void *current_frame(const struct mt_pydesc *d)
{
	const void *p = pf.d.tstate();
	if (!p)
		return NULL;
	p = mt_pyd_ptr(p, d->ts_frame[0]);
	if (p && d->ts_hops == 2)
		p = mt_pyd_ptr(p, d->ts_frame[1]);
	return python_frame(d, p);
}

/* A frame that runs code of its own: a code object with a line table,
 * and not 3.13's shim through which the specialized call of a class runs
 * __init__ (Objects/codeobject.c, _Py_MakeShimCode: one string object is
 * its file, name and qualified name; frame.f_back and CPython's own
 * tracebacks leave it out too). */
static int has_lines(const void *code)
{
	if (mt_pyd_ptr(code, pf.d.ob_type) != pf.d.code_type)
		return 0;
	if (mt_pyd_ptr(code, pf.d.co_filename) == mt_pyd_ptr(code, pf.d.co_qualname))
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

/* Without the lock: frame f's node below parent, if defined already. */
static uint64_t known_child(uint64_t parent, const void *f)
{
	const char *co = frame_code(&pf.d, f);
	uint64_t code = mt_idmap_get(&pf.codes, (uintptr_t)co, 0, 0);
	return code ? mt_idmap_get(&pf.instrs, parent, code, (uint64_t)instr_offset(f, co)) : 0;
}

/* Without the lock: the node of frames[n - 1] ... frames[0], outermost
 * first, if all of it is defined already; else 0. */
static uint64_t known_node(const void *const *frames, int n)
{
	uint64_t node = 0;
	while (n-- > 0)
		if (!(node = known_child(node, frames[n])))
			return 0;
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

/* ---- the main script's line ------------------------------------------------ */

/*
 * SCRIPT records name the thread's innermost frame of the main script, as
 * a node without parent.  The main script is the file named by the
 * __file__ of the __main__ module (python script.py, python -m module; a
 * python -c command has no file, hence no lines), looked for only when
 * __main__'s globals have grown since the last look, and only once the
 * interpreter is up, so start-up walks no stack.  A frame is the script's
 * when its code object's file is that file.
 *
 * Per event, three caches keep this cheap:
 *   - the thread's last answer: the code objects of the frames from the
 *     innermost one out to that frame of the main script, and that frame's
 *     code object.  If the frames out to it run the same code objects (none
 *     of the script's, since they were not before), the script's innermost
 *     frame is the one after them, wherever the frames inside it are: its
 *     instruction gives the line.  This is the common case: many
 *     allocations and frees under one call;
 *   - per code object, shared: whether it is the script's, so that walking
 *     out compares pointers; an entry goes when its code object is freed;
 *   - per thread, the lines it ran: (code, instruction) -> node, so that
 *     the shared tables (the locations', parent 0) are looked up for a
 *     line the thread has not run, and the meta lock taken for a line no
 *     thread has.
 * Threads of a free-threaded build run this in parallel: the last answer
 * is the thread's own, the code objects' entries are single words, and
 * the file is published once, after it is written.
 */
#define SCRIPT_CODES 1024
#define SCRIPT_WALK 4096 /* frames walked at most per event */

enum { CODE_SEEN = 1, CODE_MAIN = 2, CODE_FLAGS = 15 };

static struct {
	int known;      /* file is set: read with acquire */
	int claimed;    /* one thread sets it */
	void *globals;  /* the __main__ module's, once found */
	long globals_size;
	size_t len;
	char file[MT_META_STRING_MAX]; /* UTF-8 */
	/* code object address | CODE_SEEN | CODE_MAIN if it is the script's
	 * (code objects are 16-byte aligned; one that is not is not kept) */
	uintptr_t codes[SCRIPT_CODES];
} ms = { .globals_size = -1 };


static size_t script_slot(const void *code)
{
	return ((uintptr_t)code >> 4) & (SCRIPT_CODES - 1);
}

static void script_code_gone(const void *p)
{
	uintptr_t *slot = &ms.codes[script_slot(p)];
	if ((__atomic_load_n(slot, __ATOMIC_RELAXED) & ~(uintptr_t)CODE_FLAGS) == (uintptr_t)p)
		__atomic_store_n(slot, 0, __ATOMIC_RELAXED);
}

static __attribute__((noinline, cold)) int find_script(void)
{
	void *g = __atomic_load_n(&ms.globals, __ATOMIC_ACQUIRE);
	if (!g && (g = mt_pyobj_main_globals()))
		__atomic_store_n(&ms.globals, g, __ATOMIC_RELEASE);
	if (!g || __atomic_exchange_n(&ms.claimed, 1, __ATOMIC_ACQUIRE))
		return 0;
	void *file = mt_pyobj_main_file(g, &ms.globals_size);
	size_t len = file ? mt_pyobj_utf8(file, ms.file, sizeof ms.file) : SIZE_MAX;
	if (len != SIZE_MAX && len < sizeof ms.file) {
		ms.len = len;
		__atomic_store_n(&ms.known, 1, __ATOMIC_RELEASE);
		/* the threads' last answers were kept without a script */
		struct mt_ring *saved = mt_internal_enter();
		mt_meta_lock();
		__atomic_store_n(&pf.generation, pf.generation + 1, __ATOMIC_RELEASE);
		mt_meta_unlock();
		mt_internal_leave(saved);
	}
	__atomic_store_n(&ms.claimed, 0, __ATOMIC_RELEASE);
	return ms.known;
}

static inline int script_known(void)
{
	return __atomic_load_n(&ms.known, __ATOMIC_ACQUIRE) || find_script();
}

static int in_script(const void *code)
{
	uintptr_t *slot = &ms.codes[script_slot(code)];
	uintptr_t w = __atomic_load_n(slot, __ATOMIC_RELAXED);
	if ((w & ~(uintptr_t)CODE_FLAGS) == (uintptr_t)code)
		return (w & CODE_MAIN) != 0;
	int main = mt_pyd_ptr(code, pf.d.ob_type) == pf.d.code_type &&
		   mt_pyobj_str_is(mt_pyd_ptr(code, pf.d.co_filename), ms.file, ms.len);
	if ((uintptr_t)code & CODE_FLAGS)
		return main; /* no room for the flags: not kept */
	/* the entry must go when the code object does (mt_pyframes_freed) */
	size_t bit = code_bit(code);
	__atomic_fetch_or(&pf.maybe_code[bit / 8], (uint8_t)(1u << (bit % 8)), __ATOMIC_RELAXED);
	__atomic_store_n(slot, (uintptr_t)code | CODE_SEEN | (main ? CODE_MAIN : 0),
			 __ATOMIC_RELAXED);
	return main;
}

static inline __attribute__((always_inline)) const void *caller(const struct mt_pydesc *d, const void *f)
{
	return python_frame(d, mt_pyd_ptr(f, d->f_previous));
}

/* The script's frame of the thread's last answer, if it holds with
 * innermost frame f; else NULL with *held 0. */
static inline __attribute__((always_inline)) const void *
script_holds(struct mt_py_script *sl, const struct mt_pydesc *d, const void *f,
	     uint64_t generation, int *held)
{
	*held = 0;
	if (sl->generation != generation)
		return NULL;
	for (int i = 0; i < sl->k; i++, f = caller(d, f))
		if (!f || frame_code(d, f) != sl->code[i])
			return NULL;
	*held = f ? frame_code(d, f) == sl->main : sl->whole;
	return *held ? f : NULL;
}

/* The node of frame f of the script, without parent. */
static uint64_t script_node(const void *f)
{
	uint64_t node = known_child(0, f);
	if (node)
		return node;
	struct mt_ring *saved = mt_internal_enter();
	mt_meta_lock();
	node = node_id(0, f);
	mt_meta_unlock();
	mt_internal_leave(saved);
	return node;
}

/* The same, through the thread's caches of the lines it ran (they are of
 * sl->generation): its last one, and a table. */
static __attribute__((noinline)) uint64_t script_line_slow(struct mt_py_script *sl,
							   const void *code,
							   const void *instr, const void *f)
{
	size_t h = (((uintptr_t)code >> 4) ^ ((uintptr_t)instr >> 1)) & (MT_SCRIPT_NODES - 1);
	uint64_t node = sl->nodes[h].code == code && sl->nodes[h].instr == instr ? sl->nodes[h].node
									      : script_node(f);
	sl->nodes[h].code = code;
	sl->nodes[h].instr = instr;
	sl->nodes[h].node = node;
	sl->instr = instr;
	sl->node = node;
	return node;
}

static inline __attribute__((always_inline)) uint64_t
script_line(struct mt_py_script *sl, const struct mt_pydesc *d, const void *f)
{
	const void *instr = frame_instr(d, f);
	return instr == sl->instr ? sl->node : script_line_slow(sl, frame_code(d, f), instr, f);
}

static void script_forget(struct mt_py_script *sl)
{
	sl->k = 0;
	sl->whole = 0;
	sl->main = NULL;
}

/* Keeps the code objects of the frames from top out to main, and main's;
 * when there is no frame of the script, those of the whole stack, if it is
 * short. */
static void script_keep(struct mt_py_script *sl, const void *top, const void *main,
			uint64_t generation)
{
	if (sl->generation != generation) {
		memset(sl->nodes, 0, sizeof sl->nodes);
		sl->instr = NULL;
		sl->generation = generation;
	}
	int k = 0;
	for (const void *f = top; f != main; f = caller(&pf.d, f)) {
		if (k == MT_SCRIPT_CHAIN) {
			script_forget(sl);
			return;
		}
		sl->code[k++] = frame_code(&pf.d, f);
	}
	sl->k = k;
	sl->whole = !main;
	sl->main = main ? frame_code(&pf.d, main) : NULL;
}

/* Until the script is known, no frame is its: the whole stack is kept (the
 * generation changes when it becomes known). */
static __attribute__((noinline)) uint64_t script_find(struct mt_py_script *sl, const void *top,
						      uint64_t generation)
{
	if (!top)
		return 0;
	if (!script_known()) {
		script_keep(sl, top, NULL, generation);
		return 0;
	}
	const void *f = top;
	for (int n = 0; f && !in_script(frame_code(&pf.d, f)); f = caller(&pf.d, f))
		if (++n == SCRIPT_WALK)
			return 0;
	script_keep(sl, top, f, generation);
	return f ? script_line(sl, &pf.d, f) : 0;
}

static inline __attribute__((always_inline)) uint64_t
script_at(struct mt_py_script *sl, const struct mt_pydesc *d, const void *top, uint64_t generation)
{
	int held;
	const void *f = script_holds(sl, d, top, generation, &held);
	return !held ? script_find(sl, top, generation) : f ? script_line(sl, d, f) : 0;
}

/* Whether the innermost frame, running code, is the script's frame of the
 * thread's last answer: one frame deep, its location is then the line. */
static inline __attribute__((always_inline)) int
script_innermost(const struct mt_py_script *sl, const void *code, uint64_t generation)
{
	return sl->k == 0 && sl->main == code && sl->generation == generation;
}

/* ---- per event ------------------------------------------------------------ */

/* The slow path of mt_pyframes_location: f's stack node, remembered as the
 * thread's last lookup, and the script's node. */
static __attribute__((noinline)) uint64_t locate(struct mt_thread *t, const void *f,
						 const void *code, const void *instr,
						 uint64_t generation, uint64_t *script)
{
	struct mt_py_cache *last = &t->py;
	int skipped;
	uint64_t node = stack_node(f, &skipped);
	if (!skipped) {
		last->code = code;
		last->instr = instr;
		last->generation = generation;
		last->node = node;
	}
	*script = !skipped && pf.depth == 1 && script_innermost(&t->script, code, generation)
			  ? node
			  : script_at(&t->script, &pf.d, f, generation);
	return node;
}

static inline __attribute__((always_inline)) uint64_t location(const struct mt_pydesc *d, uint64_t *script)
{
	const void *f = current_frame(d);
	*script = 0;
	if (!f)
		return 0;
	const void *code = frame_code(d, f), *instr = frame_instr(d, f);
	uint64_t generation = __atomic_load_n(&pf.generation, __ATOMIC_ACQUIRE);
	struct mt_thread *t = mt_thread_self();
	const struct mt_py_cache *last = &t->py;
	if (pf.depth == 1 && last->code == code && last->instr == instr &&
	    last->generation == generation) {
		*script = script_innermost(&t->script, code, generation)
				  ? last->node
				  : script_at(&t->script, d, f, generation);
		return last->node;
	}
	return locate(t, f, code, instr, generation, script);
}

static inline __attribute__((always_inline)) uint64_t script(const struct mt_pydesc *d)
{
	return script_at(&mt_thread_self()->script, d, current_frame(d),
			 __atomic_load_n(&pf.generation, __ATOMIC_ACQUIRE));
}

#ifdef MT_PYDESC_311
/* 3.11: the headers' layout, folded in (about 5 instructions less per
 * event than loading the offsets) */
static const struct mt_pydesc layout_311 = MT_PYDESC_311;
#define WITH_LAYOUT(call)                                                      \
	(pf.d.ts_hops == 2 ? call(&layout_311) : call(&pf.d))
#else
#define WITH_LAYOUT(call) call(&pf.d)
#endif

uint64_t mt_pyframes_location(uint64_t *s)
{
#define LOCATION(d) location(d, s)
	return WITH_LAYOUT(LOCATION);
#undef LOCATION
}

uint64_t mt_pyframes_script(void)
{
	return WITH_LAYOUT(script);
}

uint64_t mt_pyframes_release(const void *p, int obj)
{
	if (obj)
		mt_pyframes_freed(p);
	return WITH_LAYOUT(script);
}

void mt_pyframes_fork_child(void)
{
	mt_idmap_clear(&pf.codes);
	mt_idmap_clear(&pf.instrs);
	mt_idmap_clear(&pf.lines);
	pf.next_code = pf.next_node = 0;
	pf.generation++;
	memset(pf.maybe_code, 0, sizeof pf.maybe_code);
	memset(ms.codes, 0, sizeof ms.codes);
}
