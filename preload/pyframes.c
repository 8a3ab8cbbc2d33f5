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
#include <internal/pycore_runtime.h>

#include "pyshim.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "idmap.h"
#include "meta.h"
#include "threads.h"

static struct {
	PyThreadState *(*current)(void);
	_PyRuntimeState *runtime; /* read directly: the same load, without a call */
	int (*addr2line)(PyCodeObject *, int);
	const char *(*as_utf8)(PyObject *, Py_ssize_t *);
	int (*dict_next)(PyObject *, Py_ssize_t *, PyObject **, PyObject **);
	int (*initialized)(void);
	PyObject *(*modules)(void);
	PyObject *(*module_dict)(PyObject *);
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

/* The thread state holding the GIL, as _PyThreadState_UncheckedGet reads
 * it in the 3.11 layout this file is compiled against. */
static inline PyThreadState *current(void)
{
	if (__builtin_expect(pf.runtime != NULL, 1))
		return (PyThreadState *)__atomic_load_n(&pf.runtime->gilstate.tstate_current._value,
						       __ATOMIC_RELAXED);
	return pf.current();
}

int mt_pyframes_init(void *(*sym)(const char *), int depth)
{
	pf.current = (PyThreadState * (*)(void)) sym("_PyThreadState_UncheckedGet");
	pf.runtime = sym("_PyRuntime");
	pf.addr2line = (int (*)(PyCodeObject *, int))sym("PyCode_Addr2Line");
	pf.dict_next = (int (*)(PyObject *, Py_ssize_t *, PyObject **, PyObject **))sym("PyDict_Next");
	pf.initialized = (int (*)(void))sym("Py_IsInitialized");
	pf.modules = (PyObject * (*)(void)) sym("PyImport_GetModuleDict");
	pf.module_dict = (PyObject * (*)(PyObject *)) sym("PyModule_GetDict");
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

static void script_forget(void);

static __attribute__((noinline)) void code_gone(const void *p)
{
	if (mt_idmap_get(&pf.codes, (uintptr_t)p, 0, 0)) {
		mt_idmap_del(&pf.codes, (uintptr_t)p, 0, 0);
		pf.generation++;
		script_forget();
	}
}

/* Whether a code object with an id may be at p (most frees: no). */
static inline bool maybe_code(const void *p)
{
	size_t bit = code_bit(p);
	return pf.maybe_code[bit / 8] & (1u << (bit % 8));
}

void mt_pyframes_freed(const void *p)
{
	if (maybe_code(p))
		code_gone(p);
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

/* The thread's last location holds for frame f (kept only one frame
 * deep, and only for a complete frame: so f is complete if it holds). */
static inline bool location_kept(_PyInterpreterFrame *f)
{
	return last.code == f->f_code && last.instr == f->prev_instr &&
	       last.generation == pf.generation;
}

/* The location of complete frame f. */
static uint64_t location_at(_PyInterpreterFrame *f)
{
	if (!f)
		return 0;
	if (location_kept(f))
		return last.node;
	uint64_t node = stack_node(f);
	if (pf.depth != 1)
		return node;
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
 * found once: the module body that runs with the globals of the __main__
 * module, which is the file of `python script.py` and of `python -m
 * module`.  Those globals are known from sys.modules as soon as the
 * interpreter is up; until they grow (__file__, or runpy's names) only the
 * innermost frame is looked at (python -c runs without a new name), so the
 * interpreter's start-up walks no stack.
 *
 * Per event, three caches keep this cheap:
 *   - the last answer: the code objects of the frames from the innermost
 *     one out to that frame of the main script, that frame's instruction,
 *     and the node found.  The answer depends on nothing else: if the
 *     frames out to it run the same code objects (none of the script's,
 *     since they were not before) and it is at the same instruction (which
 *     names its code object and line), it is the same line, wherever the
 *     frames inside it are.  This is the common case: many allocations and
 *     frees under one call.  A frame not yet started (incomplete) could be
 *     the script's once it starts: a chain with one is not kept;
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
#define SCRIPT_CHAIN 32   /* frames out to the main script's, kept */
#define SCRIPT_WALK 4096  /* frames walked at most per event */

static struct {
	bool known;
	PyObject *globals;  /* the __main__ module's, once found */
	Py_ssize_t globals_used; /* its size then */
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

	/* Nothing kept (also when ids went stale): k 0, no instr, not whole. */
	struct {
		int k;             /* frames inside the script's frame */
		bool whole;        /* no frame of the script: code[] is every frame */
		const void *instr; /* the script's frame's instruction */
		uint64_t node;
		const void *code[SCRIPT_CHAIN];
	} last;
} ms;

/* Whether s is the ASCII text want, without allocating. */
static bool ascii_is(PyObject *s, const char *want, size_t n)
{
	return s && PyUnicode_Check(s) && PyUnicode_IS_COMPACT_ASCII(s) &&
	       ((PyASCIIObject *)s)->length == (Py_ssize_t)n &&
	       !memcmp((const char *)(((PyASCIIObject *)s) + 1), want, n);
}

/* The __main__ module's globals, from sys.modules once the interpreter is
 * up (PyDict_Next and PyModule_GetDict allocate nothing). */
static PyObject *main_globals(void)
{
	PyObject *modules, *key, *value;
	Py_ssize_t pos = 0;
	if (!pf.initialized || !pf.modules || !pf.module_dict || !pf.dict_next ||
	    !pf.initialized() || !(modules = pf.modules()) || !PyDict_Check(modules))
		return NULL;
	while (pf.dict_next(modules, &pos, &key, &value))
		if (ascii_is(key, "__main__", 8))
			/* PyModule_Check would bind to libpython's type object */
			return !strcmp(Py_TYPE(value)->tp_name, "module") ? pf.module_dict(value)
									: NULL;
	return NULL;
}

static bool find_main(_PyInterpreterFrame *f)
{
	if (!ms.globals && (ms.globals = main_globals()))
		ms.globals_used = PyDict_GET_SIZE(ms.globals);
	if (!ms.globals)
		return false;
	/* Until the globals grow (__file__, runpy's names), the script can only
	 * be the innermost frame (python -c): only that one is looked at. */
	int walk = PyDict_GET_SIZE(ms.globals) == ms.globals_used ? 1 : SCRIPT_WALK;
	for (int n = 0; f && n < walk; f = complete(f->previous), n++) {
		if (f->f_globals != ms.globals || !ascii_is(f->f_code->co_name, "<module>", 8))
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

/* Whether the last answer holds with innermost frame f. */
static inline __attribute__((always_inline)) bool last_holds(_PyInterpreterFrame *f)
{
	const void *const *c = ms.last.code, *const *end = c + ms.last.k;
	for (; c != end; c++, f = f->previous)
		if (!f || f->f_code != *c)
			return false;
	return f ? f->prev_instr == ms.last.instr : ms.last.whole;
}

/* Keeps the code objects of the frames from top out to main and main's
 * instruction, or when there is no main frame, the code objects of the
 * whole stack if it is short. */
static void last_keep(_PyInterpreterFrame *top, _PyInterpreterFrame *main, uint64_t node)
{
	_PyInterpreterFrame *f = top;
	int k = 0;
	for (; f && f != main; f = f->previous) {
		if (k == SCRIPT_CHAIN || _PyFrame_IsIncomplete(f)) {
			script_forget();
			return;
		}
		ms.last.code[k++] = f->f_code;
	}
	ms.last.k = k;
	ms.last.whole = !main;
	ms.last.instr = main ? main->prev_instr : NULL;
	ms.last.node = node;
}

/* inner, when not NULL, is the innermost complete frame and inner_node
 * its node without parent. */
static __attribute__((noinline)) uint64_t script_find(_PyInterpreterFrame *top,
						      _PyInterpreterFrame *inner,
						      uint64_t inner_node)
{
	_PyInterpreterFrame *f = complete(top);
	if (!ms.known && !find_main(f))
		return 0;
	int n = 0;
	while (f && n++ < SCRIPT_WALK && !in_main_file(f->f_code))
		f = complete(f->previous);
	if (n > SCRIPT_WALK)
		f = NULL;
	uint64_t node = !f ? 0 : f == inner ? inner_node : script_node(f);
	last_keep(top, f, node);
	return node;
}

/* Ids went stale: the last answer may hold one. */
static void script_forget(void)
{
	ms.last.k = 0;
	ms.last.whole = false;
	ms.last.instr = NULL;
}

static inline __attribute__((always_inline)) uint64_t
script_at(_PyInterpreterFrame *top, _PyInterpreterFrame *inner, uint64_t inner_node)
{
	if (last_holds(top))
		return ms.last.node;
	/* an innermost frame of the script's own is the answer: no walk */
	_PyInterpreterFrame *f = inner ? inner : complete(top);
	if (ms.known && f && in_main_file(f->f_code)) {
		uint64_t node = f == inner ? inner_node : script_node(f);
		last_keep(top, f, node);
		return node;
	}
	return script_find(top, inner, inner_node);
}

uint64_t mt_pyframes_script(void)
{
	PyThreadState *ts = current();
	if (!ts || !ts->cframe)
		return 0;
	return script_at(ts->cframe->current_frame, NULL, 0);
}

static __attribute__((noinline)) uint64_t script_of(_PyInterpreterFrame *top)
{
	return script_at(top, NULL, 0);
}

uint64_t mt_pyframes_release(const void *p, int obj)
{
	if (obj && maybe_code(p))
		code_gone(p);
	PyThreadState *ts = current();
	if (!ts || !ts->cframe)
		return 0;
	_PyInterpreterFrame *top = ts->cframe->current_frame;
	return last_holds(top) ? ms.last.node : script_of(top);
}

static __attribute__((noinline)) uint64_t where(_PyInterpreterFrame *top,
						 _PyInterpreterFrame *f, uint64_t *script)
{
	uint64_t loc = location_at(f);
	/* one frame deep, the location of a frame of the script is its node */
	*script = script_at(top, pf.depth == 1 ? f : NULL, loc);
	return loc;
}

/* The common case inline, with no call but the slow path's last one. */
uint64_t mt_pyframes_location(uint64_t *script)
{
	PyThreadState *ts = current();
	*script = 0;
	if (!ts || !ts->cframe)
		return 0;
	_PyInterpreterFrame *top = ts->cframe->current_frame;
	if (top && location_kept(top) && last_holds(top)) {
		*script = ms.last.node;
		return last.node;
	}
	return where(top, complete(top), script);
}

void mt_pyframes_fork_child(void)
{
	mt_idmap_clear(&pf.codes);
	mt_idmap_clear(&pf.instrs);
	mt_idmap_clear(&pf.lines);
	pf.next_code = pf.next_node = 0;
	pf.generation++;
	memset(pf.maybe_code, 0, sizeof pf.maybe_code);
	script_forget();
}
