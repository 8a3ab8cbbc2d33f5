/*
 * native.c - native call stacks (MEMTRACE_NATIVE=1).  Stacks are taken with
 * libunwind's unw_backtrace, which is loaded (privately, RTLD_LOCAL) only
 * when asked for, so other runs neither load it nor pay for it.
 *
 * Stacks are interned as a tree of (parent node, return address) nodes;
 * each node and each loaded object (its address range, path and build id)
 * is defined in the trace once, so that the reporter can symbolize after
 * the process is gone.  A per-thread cache maps a whole stack to its node
 * without taking the lock.  When objects are unloaded, the tree starts
 * afresh: a later object at the same addresses must not inherit old nodes.
 */
#define _GNU_SOURCE
#define UNW_LOCAL_ONLY
#include "native.h"

#include <dlfcn.h>
#include <elf.h>
#include <libunwind.h>
#include <link.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "idmap.h"
#include "meta.h"
#include "threads.h"
#include "tracer.h"

#define SKIP_MAX 8  /* our own frames at the top of a stack */
#define CACHE_SIZE 256
#define MODULES_MAX 4096

int mt_native_on;

static struct {
	int (*backtrace)(void **, int);
	int (*get_context)(unw_context_t *);
	int (*init_local)(unw_cursor_t *, unw_context_t *);
	int (*step)(unw_cursor_t *);
	int (*get_reg)(unw_cursor_t *, unw_regnum_t, unw_word_t *);
	uintptr_t eval_lo, eval_hi;   /* CPython's evaluation loop, if loaded */
	int depth;
	uintptr_t own_start, own_end; /* our text: frames there are skipped */
	struct mt_idmap nodes;        /* (parent, ip) -> node id */
	uint64_t next_node, next_module;
	uint64_t generation;          /* bumped when the tree starts afresh */
	unsigned long long adds, subs; /* dl_iterate_phdr's load counters */
	struct {
		uintptr_t base;
		uint64_t id;
		int seen;
	} modules[MODULES_MAX];
	int nmodules;
} nat;

static __thread struct {
	uint64_t hash, node, generation;
} cache[CACHE_SIZE] __attribute__((tls_model("initial-exec")));

/* ---- objects ------------------------------------------------------------ */

static void hex(char *out, const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		sprintf(out + 2 * i, "%02x", p[i]);
}

/* The GNU build id of an object, as hex into out; 0 when it has none. */
static size_t build_id(const struct dl_phdr_info *info, char *out, size_t cap)
{
	for (int i = 0; i < info->dlpi_phnum; i++) {
		const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
		if (ph->p_type != PT_NOTE)
			continue;
		const char *p = (const char *)(info->dlpi_addr + ph->p_vaddr);
		const char *end = p + ph->p_memsz;
		while (p + sizeof(ElfW(Nhdr)) <= end) {
			const ElfW(Nhdr) *nh = (const ElfW(Nhdr) *)p;
			const char *desc = p + sizeof *nh + ((nh->n_namesz + 3) & ~3u);
			if (nh->n_type == NT_GNU_BUILD_ID && nh->n_namesz == 4 &&
			    !memcmp(p + sizeof *nh, "GNU", 4) && 2 * nh->n_descsz < cap) {
				hex(out, (const uint8_t *)desc, nh->n_descsz);
				return 2 * nh->n_descsz;
			}
			p = desc + ((nh->n_descsz + 3) & ~3u);
		}
	}
	return 0;
}

static int known_module(uintptr_t base)
{
	for (int i = 0; i < nat.nmodules; i++)
		if (nat.modules[i].base == base) {
			nat.modules[i].seen = 1;
			return 1;
		}
	return 0;
}

/* Under the meta lock. */
static void define_module(const struct dl_phdr_info *info)
{
	uintptr_t lo = UINTPTR_MAX, hi = 0;
	for (int i = 0; i < info->dlpi_phnum; i++) {
		const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
		if (ph->p_type != PT_LOAD)
			continue;
		lo = info->dlpi_addr + ph->p_vaddr < lo ? info->dlpi_addr + ph->p_vaddr : lo;
		if (info->dlpi_addr + ph->p_vaddr + ph->p_memsz > hi)
			hi = info->dlpi_addr + ph->p_vaddr + ph->p_memsz;
	}
	if (hi <= lo || nat.nmodules == MODULES_MAX)
		return;
	char path[4096], id[128];
	const char *name = info->dlpi_name;
	if (!name || !*name) {
		ssize_t n = readlink("/proc/self/exe", path, sizeof path - 1);
		path[n > 0 ? n : 0] = 0;
		name = path;
	}
	size_t id_len = build_id(info, id, sizeof id);
	uint64_t path_id = mt_meta_string(name, strlen(name));
	uint64_t build = id_len ? mt_meta_string(id, id_len) : 0;
	struct mt_enc *e = mt_meta_room(mt_enc_def_size(0) + 20);
	if (!path_id || !e)
		return;
	uint64_t mid = ++nat.next_module;
	nat.modules[nat.nmodules++] = (typeof(nat.modules[0])){info->dlpi_addr, mid, 1};
	mt_enc_module(e, mid, lo, hi, info->dlpi_addr, path_id, build);
}

static int on_object(struct dl_phdr_info *info, size_t size, void *arg)
{
	(void)size;
	(void)arg;
	if (!known_module(info->dlpi_addr))
		define_module(info);
	return 0;
}

static int read_counters(struct dl_phdr_info *info, size_t size, void *arg)
{
	(void)arg;
	if (size >= offsetof(struct dl_phdr_info, dlpi_subs) + sizeof info->dlpi_subs) {
		nat.adds = info->dlpi_adds;
		nat.subs = info->dlpi_subs;
	}
	return 1; /* the counters are the same in every entry */
}

/* CPython's evaluation loop, once an object that has it is loaded; only
 * with the cursor interface, which the outer frames need. */
static void find_eval(void)
{
	Dl_info info;
	const ElfW(Sym) *sym = NULL;
	void *f = dlsym(RTLD_DEFAULT, "_PyEval_EvalFrameDefault");
	if (nat.eval_lo || !nat.step || !f ||
	    !dladdr1(f, &info, (void **)&sym, RTLD_DL_SYMENT) || !sym || !sym->st_size)
		return;
	nat.eval_hi = (uintptr_t)f + sym->st_size;
	nat.eval_lo = (uintptr_t)f;
}

/* Under the meta lock: brings the module list up to date. */
static void refresh_modules(int force)
{
	unsigned long long adds = nat.adds, subs = nat.subs;
	dl_iterate_phdr(read_counters, NULL);
	if (!force && adds == nat.adds && subs == nat.subs)
		return;
	for (int i = 0; i < nat.nmodules; i++)
		nat.modules[i].seen = 0;
	dl_iterate_phdr(on_object, NULL);
	int kept = 0;
	for (int i = 0; i < nat.nmodules; i++) {
		if (nat.modules[i].seen) {
			nat.modules[kept++] = nat.modules[i];
			continue;
		}
		struct mt_enc *e = mt_meta_room(16);
		if (e)
			mt_enc_value(e, MT_REC_MODULE_GONE, nat.modules[i].id);
	}
	if (kept != nat.nmodules) {
		mt_idmap_clear(&nat.nodes);
		nat.generation++;
	}
	nat.nmodules = kept;
	find_eval();
}

void mt_native_poll(void)
{
	if (!mt_native_on)
		return;
	mt_meta_lock();
	refresh_modules(0);
	mt_meta_unlock();
}

/* ---- stacks ------------------------------------------------------------- */

static int own_frames(void *const *ips, int n)
{
	int skip = 0;
	while (skip < n && skip < SKIP_MAX && (uintptr_t)ips[skip] >= nat.own_start &&
	       (uintptr_t)ips[skip] < nat.own_end)
		skip++;
	return skip;
}

/* Under the meta lock: the node of ips[0..n), innermost first, called from
 * the frames of node `parent`. */
static uint64_t intern(uint64_t parent, void *const *ips, int n)
{
	uint64_t node = parent;
	for (int i = n - 1; i >= 0; i--) {
		uint64_t ip = (uintptr_t)ips[i];
		uint64_t id = mt_idmap_get(&nat.nodes, node, ip, 0);
		if (!id) {
			struct mt_enc *e = mt_meta_room(mt_enc_def_size(0));
			id = nat.next_node + 1;
			if (!e || mt_idmap_put(&nat.nodes, node, ip, 0, id))
				return 0;
			nat.next_node = id;
			mt_enc_native_frame(e, id, node, ip);
		}
		node = id;
	}
	return node;
}

/* intern(), through the thread's cache of recent stacks. */
static uint64_t cached_intern(uint64_t parent, void *const *ips, int n)
{
	uint64_t h = (0x9e3779b97f4a7c15ull * (uint64_t)n ^ parent) * 0x100000001b3ull;
	for (int i = 0; i < n; i++)
		h = (h ^ (uintptr_t)ips[i]) * 0x100000001b3ull;
	uint64_t gen = __atomic_load_n(&nat.generation, __ATOMIC_ACQUIRE);
	typeof(cache[0]) *slot = &cache[h % CACHE_SIZE];
	if (slot->hash == h && slot->generation == gen && slot->node)
		return slot->node;
	mt_meta_lock();
	refresh_modules(0);
	uint64_t node = gen == nat.generation ? intern(parent, ips, n) : 0;
	gen = nat.generation;
	mt_meta_unlock();
	*slot = (typeof(*slot)){h, node, gen};
	return node;
}

/* The whole stack, unwound in one go. */
static uint64_t whole_stack(void)
{
	void *ips[MT_NATIVE_DEPTH_MAX + SKIP_MAX];
	int n = nat.backtrace(ips, nat.depth + SKIP_MAX);
	int skip = own_frames(ips, n);
	n -= skip;
	return cached_intern(0, ips + skip, n > nat.depth ? nat.depth : n);
}

/* ---- threads that run Python -------------------------------------------------
 *
 * Most of such a thread's stack is the interpreter's (main, Py_RunMain, ...
 * the evaluation loop, and the loop again for each call from C back into
 * Python), and the report shows the Python frames in place of everything
 * from the outermost to the innermost evaluation loop.  So the stack is
 * recorded as the frames inward of the innermost loop (the loop included)
 * called from the frames outward of the outermost loop.  The outer frames
 * seldom change: they are unwound once, together with the stack slot that
 * holds each of their return addresses, and reused while every one of those
 * slots still holds its address.  That is an exact test: the outermost frame
 * does not move, and a frame with the same return address and the same
 * stack pointer keeps its callee's return address in the same slot, so from
 * the outside in, each slot compared is a live frame's.  (A function whose
 * frame size varies between calls, with alloca, could defeat it; none of
 * the interpreter's outer frames does.)
 */

#define INNER_DEPTH 12 /* frames first unwound in search of the innermost loop */
#define OUTER_MAX 64

static __thread struct {
	uint64_t node, generation; /* the outer frames; node 0: none known */
	uintptr_t stack_lo, stack_hi; /* the thread's stack */
	int n;
	int inner; /* frames to ask for: recent depth of the loop, and one */
	unsigned calls;
	uintptr_t ip[OUTER_MAX];
	const uintptr_t *slot[OUTER_MAX]; /* where ip[i] is stored */
} outer __attribute__((tls_model("initial-exec")));

static int in_eval(const void *ip)
{
	return (uintptr_t)ip > nat.eval_lo && (uintptr_t)ip <= nat.eval_hi;
}

/* The test needs the outer frames to be on the stack the thread runs on:
 * code that switches to a stack of its own (makecontext) leaves the old
 * one intact below it. */
static int outer_live(void)
{
	uintptr_t here = (uintptr_t)__builtin_frame_address(0);
	if (!outer.node || outer.generation != __atomic_load_n(&nat.generation, __ATOMIC_ACQUIRE) ||
	    here < outer.stack_lo || here >= (uintptr_t)outer.slot[0])
		return 0;
	for (int i = 0; i < outer.n; i++)
		if (*outer.slot[i] != outer.ip[i])
			return 0;
	return 1;
}

static int stack_bounds(void)
{
	pthread_attr_t attr;
	void *lo;
	size_t size;
	if (pthread_getattr_np(pthread_self(), &attr))
		return -1;
	int err = pthread_attr_getstack(&attr, &lo, &size);
	pthread_attr_destroy(&attr);
	if (err)
		return -1;
	outer.stack_lo = (uintptr_t)lo;
	outer.stack_hi = (uintptr_t)lo + size;
	return 0;
}

/* Unwinds the whole stack, noting each frame's stack pointer, and keeps
 * the frames outward of the outermost evaluation loop.  Only a stack
 * unwound to its end qualifies: the test needs the outermost frame. */
static void fill_outer(void)
{
	uintptr_t ip[MT_NATIVE_DEPTH_MAX + SKIP_MAX], sp[MT_NATIVE_DEPTH_MAX + SKIP_MAX];
	unw_context_t ctx;
	unw_cursor_t c;
	int n = 0, last_eval = -1, end = 0;
	outer.node = 0;
	if (!outer.stack_hi && stack_bounds())
		return;
	if (nat.get_context(&ctx) || nat.init_local(&c, &ctx) < 0)
		return;
	while (n < nat.depth + SKIP_MAX) {
		unw_word_t w_ip, w_sp;
		if (nat.get_reg(&c, UNW_REG_IP, &w_ip) || nat.get_reg(&c, UNW_REG_SP, &w_sp))
			return;
		ip[n] = w_ip;
		sp[n] = w_sp;
		last_eval = in_eval((void *)w_ip) ? n : last_eval;
		n++;
		int r = nat.step(&c);
		if (r <= 0) {
			end = r == 0;
			break;
		}
	}
	if (!end || last_eval < 0 || n - last_eval - 1 > OUTER_MAX || n - last_eval - 1 < 1)
		return;
	outer.n = 0;
	for (int i = last_eval + 1; i < n; i++) {
		const uintptr_t *slot = (const uintptr_t *)(sp[i] - sizeof(uintptr_t));
		if ((uintptr_t)slot < outer.stack_lo || (uintptr_t)slot >= outer.stack_hi ||
		    *slot != ip[i])
			return; /* not a plain call on this stack: a signal frame, say */
		outer.ip[outer.n] = ip[i];
		outer.slot[outer.n++] = slot;
	}
	mt_meta_lock();
	refresh_modules(0);
	outer.node = intern(0, (void *const *)outer.ip, outer.n);
	outer.generation = nat.generation;
	mt_meta_unlock();
}

static int first_eval(void *const *ips, int from, int n)
{
	while (from < n && !in_eval(ips[from]))
		from++;
	return from;
}

/* The stack of a thread inside the evaluation loop; 0 when it is not, or
 * when the whole stack must be unwound after all.  unw_backtrace's cost
 * is in the frames it walks, and it cannot stop at the loop by itself: it
 * is asked for as many frames as the loop was deep last time, and a
 * second time, for the whole stack, when that was too few. */
static inline __attribute__((always_inline)) uint64_t python_stack(void)
{
	void *ips[MT_NATIVE_DEPTH_MAX + SKIP_MAX];
	int want = outer.inner ? outer.inner : INNER_DEPTH;
	int n = nat.backtrace(ips, want);
	int skip = own_frames(ips, n), e = first_eval(ips, skip, n);
	if (e == n && n == want) {
		n = nat.backtrace(ips, nat.depth + SKIP_MAX);
		skip = own_frames(ips, n);
		e = first_eval(ips, skip, n);
	}
	if (e == n) /* not in the loop: the whole stack, when it fits */
		return n - skip <= nat.depth ? cached_intern(0, ips + skip, n - skip) : 0;
	/* one frame to spare; when fewer are needed, shrinking slowly, since
	 * a second unwind costs more than a few frames too many */
	if (e + 2 >= want || !(++outer.calls % 32))
		outer.inner = e + 2 > want - 1 ? e + 2 : want - 1;
	if (!outer_live()) {
		fill_outer();
		if (!outer_live())
			return 0;
	}
	if (outer.n + e + 1 - skip > nat.depth)
		return 0;
	return cached_intern(outer.node, ips + skip, e + 1 - skip);
}

uint64_t mt_native_stack(void)
{
	struct mt_ring *saved = mt_internal_enter();
	uint64_t node = nat.eval_lo ? python_stack() : 0;
	if (!node)
		node = whole_stack();
	mt_internal_leave(saved);
	return node;
}

static int find_own(struct dl_phdr_info *info, size_t size, void *arg)
{
	(void)size;
	uintptr_t me = (uintptr_t)arg;
	for (int i = 0; i < info->dlpi_phnum; i++) {
		const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
		uintptr_t lo = info->dlpi_addr + ph->p_vaddr, hi = lo + ph->p_memsz;
		if (ph->p_type == PT_LOAD && me >= lo && me < hi) {
			nat.own_start = lo;
			nat.own_end = hi;
			return 1;
		}
	}
	return 0;
}

int mt_native_start(int depth)
{
	void *lib = dlopen("libunwind.so.8", RTLD_NOW | RTLD_LOCAL);
	nat.backtrace = lib ? (int (*)(void **, int))dlsym(lib, "unw_backtrace") : NULL;
	if (!nat.backtrace) {
		mt_log("MEMTRACE_NATIVE: cannot load libunwind (%s); recording without native stacks",
		       lib ? "no unw_backtrace" : dlerror());
		return -1;
	}
	nat.get_context = (int (*)(unw_context_t *))dlsym(lib, "_Ux86_64_getcontext");
	nat.init_local = (int (*)(unw_cursor_t *, unw_context_t *))dlsym(lib, "_ULx86_64_init_local");
	nat.get_reg = (int (*)(unw_cursor_t *, unw_regnum_t, unw_word_t *))dlsym(lib, "_ULx86_64_get_reg");
	if (nat.get_context && nat.init_local && nat.get_reg)
		nat.step = (int (*)(unw_cursor_t *))dlsym(lib, "_ULx86_64_step");
	nat.depth = depth > MT_NATIVE_DEPTH_MAX ? MT_NATIVE_DEPTH_MAX : depth;
	dl_iterate_phdr(find_own, (void *)(uintptr_t)mt_native_stack);
	mt_meta_lock();
	refresh_modules(1);
	mt_meta_unlock();
	mt_native_on = 1;
	return 0;
}

void mt_native_fork_child(void)
{
	if (!mt_native_on)
		return;
	mt_idmap_clear(&nat.nodes);
	nat.next_node = nat.next_module = 0;
	nat.nmodules = 0;
	nat.generation++;
	refresh_modules(1);
}
