/*
 * pyshim.c - CPython's allocators, traced.  When the process turns out to
 * be CPython (its C API is in the global symbol scope), hooks go on the
 * RAW, MEM and OBJ domains and on the pymalloc arena allocator, each
 * chaining to the allocator it replaces.  They are installed from the
 * library constructor, before the interpreter starts; if the start-up then
 * replaces them (PYTHONMALLOC=malloc or debug, -X dev), a probe that takes
 * the GIL once the interpreter is up notices and installs them again on top
 * of whatever is in place (tracemalloc's hooks included).
 */
#define _GNU_SOURCE
#include <Python.h>

#include "pyshim.h"

#include <dlfcn.h>
#include <fcntl.h>
#include <stdlib.h>
#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

#include "meta.h"
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
	int (*gil_ensure)(void);
	void (*gil_release)(int);
	void *(*malloc[PY_DOMAINS])(size_t);
	void (*free[PY_DOMAINS])(void *);
	struct hook hooks[PY_DOMAINS][HOOK_SETS];
	int installs[PY_DOMAINS];
	PyObjectArenaAllocator arena;
	const struct { int initialized, tracing; } *tracemalloc;
	unsigned long version;
	int depth;       /* Python frames per location; 0: none */
	int need_probe;
	int marks_later; /* add the mark hook once the interpreter is up */
} py;

/* The start-up probe: set while it allocates, to see which hooks run. */
static __thread struct {
	int on;
	unsigned seen;
} probe __attribute__((tls_model("initial-exec")));

/* ---- recording ---------------------------------------------------------- */

/* An allocation, with the Python location for the MEM and OBJ domains. */
static inline void py_alloc(int dom, int kind, uint64_t size, const void *p)
{
	if (mt_unlikely(probe.on)) {
		probe.seen |= 1u << dom;
		return;
	}
	if (mt_self.internal)
		return;
	int with_loc = dom != MT_DOM_PYRAW && py.depth;
	uint64_t loc = with_loc ? mt_pyframes_location() : 0;
	mt_record_alloc(MT_EV_OP(kind, dom, 0), size, p, 0, with_loc, loc);
}

static inline void py_release(int dom, int kind, const void *p)
{
	if (mt_unlikely(probe.on))
		return;
	if (dom == MT_DOM_PYOBJ && !mt_self.internal)
		mt_pyframes_freed(p);
	mt_record(MT_EV_OP(kind, dom, 0), 0, p, 0, 1);
}

static void *hook_malloc(void *ctx, size_t n)
{
	struct hook *h = ctx;
	void *p = h->orig.malloc(h->orig.ctx, n);
	py_alloc(h->dom, MT_REC_MALLOC, n, p);
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
	h->orig.free(h->orig.ctx, p);
}

static void *arena_alloc(void *ctx, size_t size)
{
	(void)ctx;
	void *p = py.arena.alloc(py.arena.ctx, size);
	mt_record(MT_EV_OP(MT_REC_ARENA_ALLOC, MT_DOM_PYOBJ, 0), size, p, 0, 0);
	return p;
}

static void arena_free(void *ctx, void *p, size_t size)
{
	(void)ctx;
	mt_record(MT_EV_OP(MT_REC_ARENA_FREE, MT_DOM_PYOBJ, 0), size, p, 0, 1);
	py.arena.free(py.arena.ctx, p, size);
}

/* ---- marks ------------------------------------------------------------ */

/* Python code marks its steps with sys.audit("memtrace.mark", label): a
 * no-op without the tracer, and nothing is allocated between the mark and
 * the code that follows it, so a step's figures are the step's own. */
static int audit_hook(const char *event, PyObject *args, void *unused)
{
	(void)unused;
	if (strcmp(event, "memtrace.mark") || !PyTuple_Check(args) || PyTuple_GET_SIZE(args) < 1)
		return 0;
	size_t n;
	const char *label = mt_py_utf8(PyTuple_GET_ITEM(args, 0), &n);
	if (label)
		memtrace_mark(label);
	return 0;
}

/* Whether start-up will put CPython's debug hooks on the allocators: a
 * block allocated before that must not be freed through them after. */
static int debug_hooks_coming(void)
{
	const char *mode = getenv("PYTHONMALLOC"), *dev = getenv("PYTHONDEVMODE");
	if ((mode && strstr(mode, "debug")) || (dev && *dev))
		return 1;
	char args[4096];
	int fd = open("/proc/self/cmdline", O_RDONLY | O_CLOEXEC);
	ssize_t n = fd < 0 ? -1 : read(fd, args, sizeof args - 1);
	if (fd >= 0)
		close(fd);
	for (ssize_t i = 0; i < n; i += (ssize_t)strlen(args + i) + 1) {
		args[n] = 0;
		const char *a = args + i;
		if (!strncmp(a, "-Xdev", 5) || (!strcmp(a, "-X") && !strncmp(a + 3, "dev", 3)))
			return 1;
	}
	return 0;
}

static void add_mark_hook(void)
{
	if (py.add_audit_hook)
		py.add_audit_hook(audit_hook, NULL);
}

void mt_py_start_marks(void)
{
	/* The hook's block is freed when the interpreter finalizes: it is traced
	 * like any other, so that the free has its allocation.  With debug
	 * hooks coming it is added once they are in place (see probe_main). */
	if (debug_hooks_coming())
		py.marks_later = 1;
	else
		add_mark_hook();
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
	if ((py.tracemalloc && py.tracemalloc->tracing) || py.is_initialized()) {
		mt_py_watching = 0;
		return;
	}
	install_missing();
}

/* Once the interpreter is up, with the GIL: one allocation in each domain
 * shows which of our hooks are still called. */
static void probe_hooks(void)
{
	probe.on = 1;
	probe.seen = 0;
	for (int d = 0; d < PY_DOMAINS; d++)
		py.free[d](py.malloc[d](8));
	probe.on = 0;
	for (int d = 0; d < PY_DOMAINS; d++)
		if (!(probe.seen & (1u << (d + 1))))
			install(d);
	PyObjectArenaAllocator cur;
	py.get_arena(&cur);
	if (cur.alloc != arena_alloc)
		install_arena();
}

/* The probe runs on a thread of its own: it may wait for the GIL, and the
 * writer must never wait for a thread that may be waiting for the writer. */
static void *probe_main(void *unused)
{
	(void)unused;
	/* Untraced, unless it adds the mark hook: then the whole thread is,
	 * so that everything its calls allocate and free is matched. */
	mt_self.internal = !py.marks_later;
	int gil = py.gil_ensure();
	probe_hooks();
	if (py.marks_later)
		add_mark_hook();
	py.gil_release(gil);
	__atomic_sub_fetch(&mt_own_threads, 1, __ATOMIC_RELEASE);
	return NULL;
}

void mt_py_poll(void)
{
	if (!__atomic_load_n(&py.need_probe, __ATOMIC_ACQUIRE) || !py.is_initialized())
		return;
	py.need_probe = 0;
	pthread_attr_t attr;
	pthread_t t;
	sigset_t all, old;
	sigfillset(&all);
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	__atomic_add_fetch(&mt_own_threads, 1, __ATOMIC_RELEASE);
	if (pthread_create(&t, &attr, probe_main, NULL)) {
		__atomic_sub_fetch(&mt_own_threads, 1, __ATOMIC_RELEASE);
		mt_log("cannot check the Python allocator hooks after start-up");
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	pthread_attr_destroy(&attr);
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
	static const char *const alloc_names[PY_DOMAINS] = {"PyMem_RawMalloc", "PyMem_Malloc",
							    "PyObject_Malloc"};
	static const char *const free_names[PY_DOMAINS] = {"PyMem_RawFree", "PyMem_Free",
							   "PyObject_Free"};
	py.get = (void (*)(PyMemAllocatorDomain, PyMemAllocatorEx *))sym("PyMem_GetAllocator");
	py.set = (void (*)(PyMemAllocatorDomain, PyMemAllocatorEx *))sym("PyMem_SetAllocator");
	py.get_arena = (void (*)(PyObjectArenaAllocator *))sym("PyObject_GetArenaAllocator");
	py.set_arena = (void (*)(PyObjectArenaAllocator *))sym("PyObject_SetArenaAllocator");
	py.is_initialized = (int (*)(void))sym("Py_IsInitialized");
	py.gil_ensure = (int (*)(void))sym("PyGILState_Ensure");
	py.gil_release = (void (*)(int))sym("PyGILState_Release");
	int ok = py.get && py.set && py.get_arena && py.set_arena && py.is_initialized &&
		 py.gil_ensure && py.gil_release;
	for (int d = 0; d < PY_DOMAINS; d++) {
		py.malloc[d] = (void *(*)(size_t))sym(alloc_names[d]);
		py.free[d] = (void (*)(void *))sym(free_names[d]);
		ok = ok && py.malloc[d] && py.free[d];
	}
	return ok;
}

int mt_py_start(void)
{
	if (!sym("PyMem_SetAllocator") || !resolve())
		return 0;
	py.version = python_version();
	py.depth = mt_cfg.py_depth;
	/* Frames are read in the 3.11 layout this file is compiled against. */
	if (py.depth && (py.version >> 16) != (PY_VERSION_HEX >> 16)) {
		mt_log("Python %lu.%lu: Python locations need %d.%d; recording without them",
		       py.version >> 24, (py.version >> 16) & 0xff, PY_MAJOR_VERSION,
		       PY_MINOR_VERSION);
		py.depth = 0;
	}
	if (py.depth && mt_pyframes_init(sym, py.depth))
		py.depth = 0;
	py.tracemalloc = sym("_Py_tracemalloc_config");
	mt_py_strings_init(sym);
	py.add_audit_hook = (int (*)(Py_AuditHookFunction, void *))sym("PySys_AddAuditHook");
	install_missing();
	mt_py_watching = 1;
	__atomic_store_n(&py.need_probe, 1, __ATOMIC_RELEASE);
	return 1;
}

size_t mt_py_header(uint8_t *buf, size_t len)
{
	if (!py.version)
		return len;
	/* 64-bit builds since 3.10 have 16 KiB pools in 1 MiB arenas; before,
	 * 4 KiB pools in 256 KiB arenas (Objects/obmalloc.c). */
	int large = py.version >= 0x030a0000 && sizeof(void *) == 8;
	len = mt_kv_put_u64(buf, len, MT_H_PY_VERSION, py.version);
	len = mt_kv_put_u64(buf, len, MT_H_POOL_SIZE, large ? 16384 : 4096);
	len = mt_kv_put_u64(buf, len, MT_H_ARENA_SIZE, large ? 1 << 20 : 256 << 10);
	return mt_kv_put_u64(buf, len, MT_H_PY_DEPTH, (uint64_t)py.depth);
}

void mt_py_fork_child(void)
{
	if (py.depth)
		mt_pyframes_fork_child();
}
