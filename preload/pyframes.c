/*
 * pyframes.c - the Python location of an allocation.  Reads the calling
 * thread's interpreter frames directly (CPython 3.11 layout: no frame
 * objects are created, nothing is allocated), and turns (code object,
 * instruction) pairs into stack-node ids.  Each code object, string and
 * stack node is defined in the trace once (meta.h); events then carry only
 * the id of their innermost node.
 *
 * All of this runs with the GIL held (PyMem and PyObject domains), which is
 * what serialises the tables below.  A code object that is freed is dropped
 * from the tables, since another code object may take its address.
 */
#define _GNU_SOURCE
#define Py_BUILD_CORE 1
#include <Python.h>
#include <internal/pycore_frame.h>

#include "pyshim.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "idmap.h"
#include "meta.h"
#include "threads.h"

static struct {
	PyThreadState *(*current)(void);
	int (*addr2line)(PyCodeObject *, int);
	const char *(*as_utf8)(PyObject *, Py_ssize_t *);
	int (*dict_next)(PyObject *, Py_ssize_t *, PyObject **, PyObject **);
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

int mt_pyframes_init(void *(*sym)(const char *), int depth)
{
	pf.current = (PyThreadState * (*)(void)) sym("_PyThreadState_UncheckedGet");
	pf.addr2line = (int (*)(PyCodeObject *, int))sym("PyCode_Addr2Line");
	pf.dict_next = (int (*)(PyObject *, Py_ssize_t *, PyObject **, PyObject **))sym("PyDict_Next");
	pf.depth = depth;
	return pf.current && pf.addr2line ? 0 : -1;
}

static size_t code_bit(const void *p)
{
	return ((uintptr_t)p >> 4) & (sizeof pf.maybe_code * 8 - 1);
}

void mt_py_strings_init(void *(*sym)(const char *))
{
	pf.as_utf8 = (const char *(*)(PyObject *, Py_ssize_t *))sym("PyUnicode_AsUTF8AndSize");
}

void mt_pyframes_freed(const void *p)
{
	size_t bit = code_bit(p);
	if (!(pf.maybe_code[bit / 8] & (1u << (bit % 8))))
		return;
	if (mt_idmap_get(&pf.codes, (uintptr_t)p, 0, 0)) {
		mt_idmap_del(&pf.codes, (uintptr_t)p, 0, 0);
		pf.generation++;
	}
}

/* UTF-8 of a str without allocating when it is ASCII (file and function
 * names nearly always are); NULL if it is not a str. */
const char *mt_py_utf8(void *obj, size_t *len)
{
	PyObject *s = obj;
	Py_ssize_t n = 0;
	const char *p = NULL;
	if (s && PyUnicode_Check(s) && PyUnicode_IS_COMPACT_ASCII(s)) {
		p = (const char *)(((PyASCIIObject *)s) + 1);
		n = ((PyASCIIObject *)s)->length;
	} else if (s && PyUnicode_Check(s) && pf.as_utf8) {
		struct mt_ring *saved = mt_internal_enter();
		p = pf.as_utf8(s, &n);
		mt_internal_leave(saved);
	}
	*len = (size_t)n;
	return p;
}

static uint64_t string_id(PyObject *s)
{
	size_t n;
	const char *p = mt_py_utf8(s, &n);
	return p ? mt_meta_string(p, n) : mt_meta_string("?", 1);
}

/* Under the meta lock. */
static uint64_t code_id(PyCodeObject *co)
{
	uint64_t id = mt_idmap_get(&pf.codes, (uintptr_t)co, 0, 0);
	if (id)
		return id;
	uint64_t file = string_id(co->co_filename), name = string_id(co->co_qualname);
	struct mt_enc *e = mt_meta_room(mt_enc_def_size(0));
	id = pf.next_code + 1;
	if (!file || !name || !e || mt_idmap_put(&pf.codes, (uintptr_t)co, 0, 0, id))
		return 0;
	pf.next_code = id;
	size_t bit = code_bit(co);
	pf.maybe_code[bit / 8] |= (uint8_t)(1u << (bit % 8));
	mt_enc_code(e, id, file, name, (uint64_t)co->co_firstlineno);
	return id;
}

/* Under the meta lock: the node for one frame below `parent`. */
static uint64_t node_id(uint64_t parent, _PyInterpreterFrame *f)
{
	PyCodeObject *co = f->f_code;
	uint64_t code = code_id(co);
	if (!code)
		return 0;
	int instr = _PyInterpreterFrame_LASTI(f);
	uint64_t id = mt_idmap_get(&pf.instrs, parent, code, (uint64_t)instr);
	if (id)
		return id;
	int line = pf.addr2line(co, instr * (int)sizeof(_Py_CODEUNIT));
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

static _PyInterpreterFrame *complete(_PyInterpreterFrame *f)
{
	while (f && _PyFrame_IsIncomplete(f))
		f = f->previous;
	return f;
}

/* The innermost frame's node for the `depth` innermost frames, outermost
 * first in the chain of parents. */
static uint64_t stack_node(_PyInterpreterFrame *top)
{
	_PyInterpreterFrame *frames[MT_PY_DEPTH_MAX];
	int n = 0;
	for (_PyInterpreterFrame *f = top; f && n < pf.depth; f = complete(f->previous))
		frames[n++] = f;
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
	PyThreadState *ts = pf.current();
	if (!ts || !ts->cframe)
		return 0;
	_PyInterpreterFrame *f = complete(ts->cframe->current_frame);
	if (!f)
		return 0;
	if (pf.depth == 1 && last.code == f->f_code && last.instr == f->prev_instr &&
	    last.generation == pf.generation)
		return last.node;
	uint64_t node = stack_node(f);
	last.code = f->f_code;
	last.instr = f->prev_instr;
	last.generation = pf.generation;
	last.node = node;
	return node;
}

/* ---- the main script's line ------------------------------------------------ */

/*
 * SCRIPT records name the innermost frame of the main script (the file run
 * as __main__) of the thread, as a node without parent.  The main script is
 * found once: the first module body whose globals' __name__ (a module's
 * first key) is "__main__", which is the file of `python script.py` and of
 * `python -m module`.
 *
 * Per event, three caches keep this cheap:
 *   - per thread: the frames from the innermost one out to that frame of
 *     the main script, with their instructions, and the node found.  If
 *     the same frames are at the same instructions, it is the same line:
 *     an instruction pointer names its code object and line.  This is the
 *     common case: many allocations and frees under one call;
 *   - per code object: whether it is the main script's, so that walking
 *     out compares pointers (a code object at a known address with the
 *     same filename object is the same file);
 *   - per (code, instruction): the node, so the meta lock is taken only
 *     for a line not seen before.
 * All of it runs with the GIL held, which serialises the tables; nodes go
 * stale at a fork (the generation).
 */
#define SCRIPT_NODES 256
#define SCRIPT_CODES 512
#define SCRIPT_THREADS 16
#define SCRIPT_CHAIN 4    /* frames out to the main script's, kept per thread */
#define SCRIPT_WALK 4096  /* frames walked at most per event */

static struct {
	bool known;
	PyObject *filename; /* co_filename of the main script's code, as found */
	char name[4096];    /* its text (ASCII only; else the pointer alone) */
	size_t len;
	bool ascii;
	struct {
		const void *code, *instr;
		uint64_t generation, node;
	} nodes[SCRIPT_NODES];
	struct {
		const void *code, *filename;
		bool main;
	} codes[SCRIPT_CODES];
	struct {
		const void *ts;
		const void *frame[SCRIPT_CHAIN], *instr[SCRIPT_CHAIN];
		int n;
		bool whole; /* no main frame: frame[n - 1] is the outermost one */
		uint64_t generation, node;
	} threads[SCRIPT_THREADS];
} ms;

/* Whether s is the ASCII text want, without allocating. */
static bool ascii_is(PyObject *s, const char *want, size_t n)
{
	return s && PyUnicode_Check(s) && PyUnicode_IS_COMPACT_ASCII(s) &&
	       ((PyASCIIObject *)s)->length == (Py_ssize_t)n &&
	       !memcmp((const char *)(((PyASCIIObject *)s) + 1), want, n);
}

/* A module body running with __main__'s globals. */
static bool is_main_module(_PyInterpreterFrame *f)
{
	PyObject *g = f->f_globals, *key, *value;
	Py_ssize_t pos = 0;
	if (!ascii_is(f->f_code->co_name, "<module>", 8) || !g || !PyDict_Check(g) || !pf.dict_next)
		return false;
	for (int i = 0; i < 8 && pf.dict_next(g, &pos, &key, &value); i++)
		if (ascii_is(key, "__name__", 8))
			return ascii_is(value, "__main__", 8);
	return false;
}

static bool find_main(_PyInterpreterFrame *f)
{
	for (int n = 0; f && n < SCRIPT_WALK; f = complete(f->previous), n++) {
		if (!is_main_module(f))
			continue;
		PyObject *fn = f->f_code->co_filename;
		ms.filename = fn;
		ms.ascii = PyUnicode_Check(fn) && PyUnicode_IS_COMPACT_ASCII(fn) &&
			   ((PyASCIIObject *)fn)->length < (Py_ssize_t)sizeof ms.name;
		if (ms.ascii) {
			ms.len = (size_t)((PyASCIIObject *)fn)->length;
			memcpy(ms.name, ((PyASCIIObject *)fn) + 1, ms.len);
		}
		return ms.known = true;
	}
	return false;
}

static bool in_main_file(PyCodeObject *co)
{
	PyObject *fn = co->co_filename;
	size_t h = ((uintptr_t)co >> 4) & (SCRIPT_CODES - 1);
	if (ms.codes[h].code == co && ms.codes[h].filename == fn)
		return ms.codes[h].main;
	/* a pointer alone could be a later object's: the text decides */
	bool main = ms.ascii ? ascii_is(fn, ms.name, ms.len) : fn == ms.filename;
	ms.codes[h].code = co;
	ms.codes[h].filename = fn;
	ms.codes[h].main = main;
	return main;
}

static uint64_t script_node(_PyInterpreterFrame *f)
{
	const void *code = f->f_code, *instr = f->prev_instr;
	size_t h = (((uintptr_t)code >> 4) ^ ((uintptr_t)instr >> 1)) & (SCRIPT_NODES - 1);
	if (ms.nodes[h].code == code && ms.nodes[h].instr == instr &&
	    ms.nodes[h].generation == pf.generation)
		return ms.nodes[h].node;
	struct mt_ring *saved = mt_internal_enter();
	mt_meta_lock();
	uint64_t node = node_id(0, f);
	mt_meta_unlock();
	mt_internal_leave(saved);
	ms.nodes[h].code = code;
	ms.nodes[h].instr = instr;
	ms.nodes[h].generation = pf.generation;
	ms.nodes[h].node = node;
	return node;
}

/* The thread's last answer, if its frames out to the main script's are
 * the same at the same instructions. */
static bool chain_same(size_t t, const void *ts, _PyInterpreterFrame *f)
{
	if (ms.threads[t].ts != ts || ms.threads[t].generation != pf.generation ||
	    !ms.threads[t].n)
		return false;
	for (int i = 0; i < ms.threads[t].n; i++, f = f->previous)
		if (f != ms.threads[t].frame[i] || f->prev_instr != ms.threads[t].instr[i])
			return false;
	return !ms.threads[t].whole || !f;
}

/* Keeps the frames from top out to main (all of them, complete or not),
 * or when there is no main frame, the whole stack if it is short. */
static void chain_keep(size_t t, const void *ts, _PyInterpreterFrame *top,
		       _PyInterpreterFrame *main, uint64_t node)
{
	_PyInterpreterFrame *f = top;
	int n = 0;
	for (; f && n < SCRIPT_CHAIN; f = f->previous) {
		ms.threads[t].frame[n] = f;
		ms.threads[t].instr[n++] = f->prev_instr;
		if (f == main)
			break;
	}
	bool found = main && n && ms.threads[t].frame[n - 1] == main;
	ms.threads[t].whole = !main && !f;
	ms.threads[t].ts = ts;
	ms.threads[t].n = found || ms.threads[t].whole ? n : 0;
	ms.threads[t].generation = pf.generation;
	ms.threads[t].node = node;
}

uint64_t mt_pyframes_script(void)
{
	PyThreadState *ts = pf.current();
	if (!ts || !ts->cframe)
		return 0;
	_PyInterpreterFrame *top = ts->cframe->current_frame;
	size_t t = ((uintptr_t)ts >> 6) & (SCRIPT_THREADS - 1);
	if (chain_same(t, ts, top))
		return ms.threads[t].node;
	_PyInterpreterFrame *f = complete(top);
	if (!ms.known && !find_main(f))
		return 0;
	int n = 0;
	while (f && n++ < SCRIPT_WALK && !in_main_file(f->f_code))
		f = complete(f->previous);
	if (n > SCRIPT_WALK)
		f = NULL;
	uint64_t node = f ? script_node(f) : 0;
	chain_keep(t, ts, top, f, node);
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
