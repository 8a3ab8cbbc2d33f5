/*
 * pyshim.c - CPython's allocators, traced.  When the process turns out to
 * be CPython (its C API is in the global symbol scope), hooks go on the
 * RAW, MEM and OBJ domains and on the pymalloc arena allocator, each
 * chaining to the allocator it replaces.  They are installed from the
 * library constructor, before the interpreter starts; if the start-up then
 * replaces them (PYTHONMALLOC=malloc or debug, -X dev), the next malloc or
 * free notices and installs them again on top of whatever is in place.
 */
#define _GNU_SOURCE
#include <Python.h>

#include "pyshim.h"

#include <dlfcn.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>

#include "mappings.h"
#include "meta.h"
#include "pydesc.h"
#include "record.h"

#define PY_DOMAINS 3 /* PYMEM_DOMAIN_RAW, _MEM, _OBJ: MT_DOM_PY* - 1 */
#define HOOK_SETS 32 /* installs per domain, see install() */

struct hook {
	PyMemAllocatorEx orig;
	int dom; /* enum mt_domain */
};

static struct {
	void (*get)(PyMemAllocatorDomain, PyMemAllocatorEx *);
	void (*set)(PyMemAllocatorDomain, PyMemAllocatorEx *);
	void (*get_arena)(PyObjectArenaAllocator *);
	void (*set_arena)(PyObjectArenaAllocator *);
	int (*is_initialized)(void);
	int (*add_audit_hook)(Py_AuditHookFunction, void *);
	struct hook hooks[PY_DOMAINS][HOOK_SETS];
	int installs[PY_DOMAINS];
	PyObjectArenaAllocator arena;
	mt_pydesc_probe tracemalloc; /* whether tracemalloc traces; NULL: unknown */
	unsigned long version;
	int free_threaded;        /* a free-threaded build: no pymalloc */
	int depth;                /* Python frames per location; 0: none */
	int marks;                /* the mark hook can read its arguments */
	/* The block of the mark hook's entry, and the hook that allocated it
	 * (see mt_py_start_marks). */
	void *mark_block;
	struct hook *mark_alloc;
	int capture_mark_block;
} py;

/* ---- recording ---------------------------------------------------------- */

/* Before an event with the GIL held (MEM and OBJ domains, arenas): the
 * thread's line of the main script s, when it changed (SCRIPT), so that
 * frees count at the line that ran. */
static __attribute__((noinline, cold)) void py_put_script(uint64_t s)
{
	struct mt_ring *r;
	mt_record(MT_EV_OP(MT_REC_SCRIPT, 0, 0), 0, (const void *)(uintptr_t)s, 0);
	if ((r = mt_self.ring))
		r->py_script = s;
}

static inline __attribute__((always_inline)) void py_publish_script(uint64_t s)
{
	struct mt_ring *r = mt_self.ring;
	if (mt_unlikely(!r || s != r->py_script))
		py_put_script(s);
}

static inline void py_script(void)
{
	if (py.depth && !mt_self.internal)
		py_publish_script(mt_pyframes_script());
}

/* An allocation, with the Python location for the MEM and OBJ domains. */
static inline void py_alloc(int dom, int kind, uint64_t size, const void *p)
{
	if (mt_self.internal)
		return;
	int with_loc = dom != MT_DOM_PYRAW && py.depth;
	uint64_t script = 0, loc = with_loc ? mt_pyframes_location(&script) : 0;
	if (with_loc)
		py_publish_script(script);
	mt_record_alloc(MT_EV_OP(kind, dom, 0), size, p, 0, with_loc, loc);
}

static inline __attribute__((always_inline)) void py_release(int dom, int kind, const void *p)
{
	if (dom != MT_DOM_PYRAW && py.depth && !mt_self.internal)
		py_publish_script(mt_pyframes_release(p, dom == MT_DOM_PYOBJ));
	else if (dom == MT_DOM_PYOBJ && !mt_self.internal)
		mt_pyframes_freed(p);
	mt_record(MT_EV_OP(kind, dom, 0), 0, p, 0);
}

static void *hook_malloc(void *ctx, size_t n)
{
	struct hook *h = ctx;
	void *p = h->orig.malloc(h->orig.ctx, n);
	py_alloc(h->dom, MT_REC_MALLOC, n, p);
	if (mt_unlikely(py.capture_mark_block)) {
		py.mark_block = p;
		py.mark_alloc = h;
	}
	return p;
}

static void *hook_calloc(void *ctx, size_t n, size_t m)
{
	struct hook *h = ctx;
	void *p = h->orig.calloc(h->orig.ctx, n, m);
	size_t total;
	py_alloc(h->dom, MT_REC_CALLOC, __builtin_mul_overflow(n, m, &total) ? SIZE_MAX : total, p);
	return p;
}

static void *hook_realloc(void *ctx, void *old, size_t n)
{
	struct hook *h = ctx;
	if (old)
		py_release(h->dom, MT_REC_REALLOC_OUT, old);
	void *p = h->orig.realloc(h->orig.ctx, old, n);
	py_alloc(h->dom, MT_REC_REALLOC_IN, n, p);
	return p;
}

static void hook_free(void *ctx, void *p)
{
	struct hook *h = ctx;
	if (p)
		py_release(h->dom, MT_REC_FREE, p);
	if (mt_unlikely(p && p == py.mark_block))
		h = py.mark_alloc;
	h->orig.free(h->orig.ctx, p);
}

/* The arena allocator maps its blocks itself: they are ARENA events, not
 * the program's own mappings. */
static void *arena_alloc(void *ctx, size_t size)
{
	(void)ctx;
	int slot = mt_mappings_hide();
	void *p = py.arena.alloc(py.arena.ctx, size);
	mt_mappings_show(slot);
	py_script();
	mt_record(MT_EV_OP(MT_REC_ARENA_ALLOC, MT_DOM_PYOBJ, 0), size, p, 0);
	return p;
}

static void arena_free(void *ctx, void *p, size_t size)
{
	(void)ctx;
	py_script();
	mt_record(MT_EV_OP(MT_REC_ARENA_FREE, MT_DOM_PYOBJ, 0), size, p, 0);
	int slot = mt_mappings_hide();
	py.arena.free(py.arena.ctx, p, size);
	mt_mappings_show(slot);
}

/* ---- marks ------------------------------------------------------------ */

/* Python code marks its steps with sys.audit("memtrace.mark", label): a
 * no-op without the tracer, and nothing is allocated between the mark and
 * the code that follows it, so a step's figures are the step's own. */
static int audit_hook(const char *event, PyObject *args, void *unused)
{
	(void)unused;
	if (strcmp(event, "memtrace.mark") || !__atomic_load_n(&mt_active, __ATOMIC_RELAXED))
		return 0;
	void *label = mt_pyobj_first_item(args);
	if (!label)
		return 0;
	struct mt_ring *saved = mt_internal_enter();
	mt_meta_lock();
	uint64_t id = mt_pyobj_string_id(label);
	mt_meta_unlock();
	mt_internal_leave(saved);
	if (id)
		mt_meta_mark(id);
	return 0;
}

/* The hook's entry is allocated now, before start-up, and freed when the
 * interpreter finalizes; it is traced like any other block.  If start-up
 * puts CPython's debug hooks on the allocators in between, freeing it
 * through them would fail their checks, so it is freed through the
 * allocator that made it. */
void mt_py_start_marks(void)
{
	if (!py.add_audit_hook || !py.marks)
		return;
	py.capture_mark_block = 1;
	py.add_audit_hook(audit_hook, NULL);
	py.capture_mark_block = 0;
}

/* ---- installing --------------------------------------------------------- */

/* Every install takes a fresh hook: start-up code that swaps an allocator
 * out for a moment and puts the saved one back must get back a hook that
 * still chains to what it chained to before. */
static void install(int pydom)
{
	if (py.installs[pydom] == HOOK_SETS)
		return;
	struct hook *h = &py.hooks[pydom][py.installs[pydom]++];
	py.get((PyMemAllocatorDomain)pydom, &h->orig);
	h->dom = pydom + 1;
	PyMemAllocatorEx ours = {h, hook_malloc, hook_calloc, hook_realloc, hook_free};
	py.set((PyMemAllocatorDomain)pydom, &ours);
}

static void install_arena(void)
{
	py.get_arena(&py.arena);
	PyObjectArenaAllocator ours = {NULL, arena_alloc, arena_free};
	py.set_arena(&ours);
}

static void install_missing(void)
{
	for (int d = 0; d < PY_DOMAINS; d++) {
		PyMemAllocatorEx cur;
		py.get((PyMemAllocatorDomain)d, &cur);
		if (cur.malloc != hook_malloc)
			install(d);
	}
	PyObjectArenaAllocator cur;
	py.get_arena(&cur);
	if (cur.alloc != arena_alloc)
		install_arena();
}

int mt_py_watching;

/* From malloc and free during start-up, before any other thread runs
 * Python: the moment start-up replaces the allocators, hook them again.
 * Ends when the interpreter is up, or when tracemalloc runs (its hooks
 * wrap ours: replacing them would trace every allocation twice). */
void mt_py_watch(void)
{
	if ((py.tracemalloc && py.tracemalloc()) || py.is_initialized()) {
		mt_py_watching = 0;
		return;
	}
	install_missing();
}

/* A failed lookup leaves an error message on the heap until the next dl*
 * call; clearing it now keeps it from being freed later by the program,
 * where it would be a free of a block the trace never saw allocated. */
static void *sym(const char *name)
{
	void *p = dlsym(RTLD_DEFAULT, name);
	if (!p) {
		dlerror(); /* formats the message */
		dlerror(); /* frees it */
	}
	return p;
}

static unsigned long python_version(void)
{
	const unsigned long *v = sym("Py_Version");
	if (v)
		return *v;
	const char *(*get)(void) = (const char *(*)(void))sym("Py_GetVersion");
	int major = 0, minor = 0;
	if (get && sscanf(get(), "%d.%d", &major, &minor) == 2)
		return (unsigned long)major << 24 | (unsigned long)minor << 16;
	return 0;
}

static int resolve(void)
{
	py.get = (void (*)(PyMemAllocatorDomain, PyMemAllocatorEx *))sym("PyMem_GetAllocator");
	py.set = (void (*)(PyMemAllocatorDomain, PyMemAllocatorEx *))sym("PyMem_SetAllocator");
	py.get_arena = (void (*)(PyObjectArenaAllocator *))sym("PyObject_GetArenaAllocator");
	py.set_arena = (void (*)(PyObjectArenaAllocator *))sym("PyObject_SetArenaAllocator");
	py.is_initialized = (int (*)(void))sym("Py_IsInitialized");
	return py.get && py.set && py.get_arena && py.set_arena && py.is_initialized;
}

/* Python lines need the interpreter's description of its frames; without
 * one (a version it cannot be verified for) there are none, said once. */
static void start_locations(void)
{
	struct mt_pydesc desc;
	const char *why;
	int described = !mt_pydesc_load(&desc, sym, py.version, &why);
	py.free_threaded = described && desc.free_threaded;
	__atomic_store_n(&mt_epoch.turns, !py.free_threaded, __ATOMIC_RELAXED);
	if (!py.depth)
		return;
	if (described) {
		mt_pyframes_init(&desc, py.depth);
		return;
	}
	mt_log("Python %lu.%lu: %s; recording without Python lines", py.version >> 24,
	       (py.version >> 16) & 0xff, why);
	py.depth = 0;
}

int mt_py_start(void)
{
	if (!sym("PyMem_SetAllocator") || !resolve())
		return 0;
	py.version = python_version();
	py.depth = mt_cfg.py_depth;
	py.marks = !mt_pyobj_init(sym);
	start_locations();
	py.tracemalloc = mt_pydesc_tracemalloc(sym, py.version);
	py.add_audit_hook = (int (*)(Py_AuditHookFunction, void *))sym("PySys_AddAuditHook");
	install_missing();
	mt_py_watching = 1;
	return 1;
}

size_t mt_py_header(uint8_t *buf, size_t len)
{
	if (!py.version)
		return len;
	len = mt_kv_put_u64(buf, len, MT_H_PY_VERSION, py.version);
	len = mt_kv_put_u64(buf, len, MT_H_PY_DEPTH, (uint64_t)py.depth);
	if (py.free_threaded) /* no pymalloc: objects come from mimalloc */
		return mt_kv_put_u64(buf, len, MT_H_PY_FREE_THREADED, 1);
	/* 64-bit builds since 3.10 have 16 KiB pools in 1 MiB arenas; before,
	 * 4 KiB pools in 256 KiB arenas (Objects/obmalloc.c). */
	int large = py.version >= 0x030a0000 && sizeof(void *) == 8;
	len = mt_kv_put_u64(buf, len, MT_H_POOL_SIZE, large ? 16384 : 4096);
	return mt_kv_put_u64(buf, len, MT_H_ARENA_SIZE, large ? 1 << 20 : 256 << 10);
}

void mt_py_fork_child(void)
{
	if (py.depth)
		mt_pyframes_fork_child();
}
