/*
 * native.c - native call stacks (MEMTRACE_NATIVE=1).  Stacks are walked by
 * unwind.c, and by libunwind's unw_backtrace where its rules do not do;
 * both libraries are loaded (privately, RTLD_LOCAL) only when asked for,
 * so other runs neither load them nor pay for them.
 *
 * Stacks are interned as a tree of (parent node, return address) nodes;
 * each node and each loaded object (its address range, path and build id)
 * is defined in the trace once, so that the reporter can symbolize after
 * the process is gone.  A per-thread cache maps a whole stack to its node
 * without taking the lock.  When objects are unloaded, the tree starts
 * afresh: a later object at the same addresses must not inherit old nodes.
 */
#define _GNU_SOURCE
#include "native.h"

#include <dlfcn.h>
#include <elf.h>
#include <link.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "idmap.h"
#include "meta.h"
#include "threads.h"
#include "tracer.h"
#include "unwind.h"

#define SKIP_MAX 8  /* our own frames at the top of a stack */
#define CACHE_SIZE 256
#define MODULES_MAX 4096

int mt_native_on;

static struct {
	int (*backtrace)(void **, int);
	int depth;
	uintptr_t own_start, own_end; /* our text: frames there are skipped */
	struct mt_idmap nodes;        /* (parent, ip) -> node id */
	uint64_t next_node, next_module;
	uint64_t generation;          /* bumped when the tree starts afresh */
	unsigned long long checked, differ, left; /* MT_UNWIND_CHECK's counts */
	unsigned long long adds, subs; /* dl_iterate_phdr's load counters */
	struct {
		uintptr_t base;
		uint64_t id;
		int seen;
	} modules[MODULES_MAX];
	int nmodules;
} nat;

/* What a thread keeps between stacks.  It lives in a mapping of its own,
 * made at the thread's first stack, reached from the thread's state
 * (threads.h): 30 KB that no thread without stacks should pay for. */
struct thread_state {
	struct {
		uint64_t hash, node, generation;
	} cache[CACHE_SIZE]; /* recent stacks by hash */
	struct mt_unwind_thread unwind;
};

static struct thread_state *thread_state(void)
{
	struct mt_thread *th = mt_thread_self();
	if (!th->native.state && !th->native.gone) {
		void *p = mmap(NULL, sizeof(struct thread_state), PROT_READ | PROT_WRITE,
			       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		th->native.state = p == MAP_FAILED ? NULL : p;
		th->native.gone = !th->native.state;
	}
	return th->native.state;
}

void mt_native_thread_exit(struct mt_thread *th)
{
	if (th->native.state)
		munmap(th->native.state, sizeof(struct thread_state));
	th->native.state = NULL;
	th->native.gone = 1;
}

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
		mt_unwind_forget();
		mt_idmap_clear(&nat.nodes);
		nat.generation++;
	}
	nat.nmodules = kept;
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

/* Under the meta lock: the node of ips[0..n), outermost first. */
static uint64_t intern(void *const *ips, int n)
{
	uint64_t node = 0;
	for (int i = 0; i < n; i++) {
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

/* libunwind's stack, outermost first, into ips (room for depth + SKIP_MAX). */
static int libunwind_stack(void **ips)
{
	int n = nat.backtrace(ips, nat.depth + SKIP_MAX);
	int skip = own_frames(ips, n);
	n = n - skip > nat.depth ? nat.depth : n - skip;
	for (int i = 0; i < n / 2; i++) {
		void *outer = ips[skip + n - 1 - i];
		ips[skip + n - 1 - i] = ips[skip + i];
		ips[skip + i] = outer;
	}
	memmove(ips, ips + skip, (size_t)n * sizeof *ips);
	return n;
}

/* MT_UNWIND_CHECK: libunwind's walk too, counting where they differ. */
static void check_stack(const struct mt_unwind_thread *u, int n)
{
	void *ref[MT_NATIVE_DEPTH_MAX + SKIP_MAX];
	int same = libunwind_stack(ref) == n;
	for (int i = 0; same && i < n; i++)
		same = u->stack[i].ip == (uintptr_t)ref[i];
	__atomic_add_fetch(&nat.checked, 1, __ATOMIC_RELAXED);
	if (!same)
		__atomic_add_fetch(&nat.differ, 1, __ATOMIC_RELAXED);
}

/* The node of a stack of hash h, through the thread's cache of recent
 * stacks.  Its return addresses, outermost first, are needed only when it
 * is not there: in ips, or, when `walked`, in the thread's last walk
 * (copied into ips then). */
static uint64_t stack_node(struct thread_state *t, uint64_t h, void **ips, int n, int walked)
{
	uint64_t gen = __atomic_load_n(&nat.generation, __ATOMIC_ACQUIRE);
	typeof(t->cache[0]) *slot = t ? &t->cache[(h ^ h >> 32) % CACHE_SIZE] : NULL;
	if (slot && slot->hash == h && slot->generation == gen && slot->node)
		return slot->node;
	for (int i = 0; walked && i < n; i++)
		ips[i] = (void *)t->unwind.stack[i].ip;
	mt_meta_lock();
	refresh_modules(0);
	uint64_t node = intern(ips, n);
	gen = nat.generation;
	mt_meta_unlock();
	if (slot)
		*slot = (typeof(*slot)){h, node, gen};
	return node;
}

/* The stack by the rules of unwind.c, or by libunwind where they do not
 * do. */
uint64_t mt_native_stack(void)
{
	void *ips[MT_NATIVE_DEPTH_MAX + SKIP_MAX];
	uint64_t h = MT_UNWIND_HASH_SEED;
	struct mt_ring *saved = mt_internal_enter();
	struct thread_state *t = thread_state();
	int n = !t || mt_cfg.unwinder == MT_UNWIND_LIBUNWIND ? -1
							     : mt_unwind_fast(&t->unwind, nat.depth);
	int walked = n >= 0;
	if (walked) {
		if (mt_cfg.unwinder == MT_UNWIND_CHECK)
			check_stack(&t->unwind, n);
		h = n ? t->unwind.stack[n - 1].hash : h;
	} else {
		n = libunwind_stack(ips);
		if (mt_cfg.unwinder == MT_UNWIND_CHECK)
			__atomic_add_fetch(&nat.left, 1, __ATOMIC_RELAXED);
		for (int i = 0; i < n; i++)
			h = mt_unwind_hash(h, (uintptr_t)ips[i]);
	}
	uint64_t node = stack_node(t, h, ips, n, walked);
	mt_internal_leave(saved);
	return node;
}

void mt_native_report(void)
{
	if (mt_native_on && mt_cfg.unwinder == MT_UNWIND_CHECK)
		mt_log("MEMTRACE_NATIVE_UNWIND=check: %llu stacks walked both ways, %llu differ; "
		       "%llu left to libunwind",
		       nat.checked, nat.differ, nat.left);
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
	nat.depth = depth > MT_NATIVE_DEPTH_MAX ? MT_NATIVE_DEPTH_MAX : depth;
	dl_iterate_phdr(find_own, (void *)(uintptr_t)mt_native_stack);
	if (mt_cfg.unwinder != MT_UNWIND_LIBUNWIND)
		mt_unwind_start(nat.own_start, nat.own_end);
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
	nat.checked = nat.differ = nat.left = 0; /* the child's own stacks */
	nat.nmodules = 0;
	nat.generation++;
	refresh_modules(1);
}
