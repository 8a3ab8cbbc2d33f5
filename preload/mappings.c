/*
 * mappings.c - mmap, mmap64, munmap and mremap as the program sees them:
 * glibc's own, called with the same arguments, their results and errno
 * untouched, and recorded as the mmap domain.
 *
 * Only calls through the PLT arrive here: the program's, a library's
 * (Python's mmap module, a JIT, a custom allocator).  glibc's own mappings
 * (large malloc chunks, thread stacks) and the loader's never do.  Calls
 * are not recorded when they come from the tracer itself (by return
 * address), from inside its internal sections, from a thread inside an
 * allocator recorded otherwise (mt_mappings_hide), or from the code of a
 * CPython interpreter: its arena allocator's blocks are ARENA events, and
 * the mimalloc of free-threaded builds reserves 1 GiB at a time with
 * MAP_NORESERVE and commits it page by page without mmap, so that what it
 * maps says nothing of what it uses (its pages are in RSS).
 *
 * The order across threads follows malloc's: munmap is recorded before the
 * call, like free, since another thread may be handed the same pages once
 * it returns; mremap is an OUT before and an IN after, like realloc.  A
 * munmap the kernel refuses for its arguments (misaligned, empty) is not
 * recorded; one it refuses for lack of memory (splitting a mapping past
 * vm.max_map_count) is recorded all the same.
 */
#define _GNU_SOURCE
#include "mappings.h"

#include <dlfcn.h>
#include <errno.h>
#include <link.h>
#include <pthread.h>
#include <stdarg.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "record.h"

#define EXPORT __attribute__((visibility("default")))
#define HIDE_SLOTS 16

/* This library's first byte and the end of its code (from the linker). */
extern const char __ehdr_start[] __attribute__((visibility("hidden")));
extern const char etext[] __attribute__((visibility("hidden")));

typedef void *mmap_fn(void *, size_t, int, int, int, off_t);
typedef int munmap_fn(void *, size_t);
typedef void *mremap_fn(void *, size_t, size_t, int, ...);

static struct {
	mmap_fn *mmap;
	munmap_fn *munmap;
	mremap_fn *mremap;
	int resolving;
} real;

/* The code of the interpreter, in a CPython process: [start, end). */
static uintptr_t interp_start, interp_end;

/* Threads inside an allocator whose mappings are recorded otherwise. */
static struct {
	int count;
	pthread_t thread[HIDE_SLOTS];
	int used[HIDE_SLOTS];
} hide;

int mt_mappings_hide(void)
{
	pthread_t self = pthread_self();
	for (int i = 0; i < HIDE_SLOTS; i++) {
		if (!__atomic_exchange_n(&hide.used[i], 1, __ATOMIC_ACQUIRE)) {
			hide.thread[i] = self;
			__atomic_add_fetch(&hide.count, 1, __ATOMIC_RELEASE);
			return i;
		}
	}
	return -1; /* more threads at once than slots: their mappings count twice */
}

void mt_mappings_show(int slot)
{
	if (slot < 0)
		return;
	__atomic_sub_fetch(&hide.count, 1, __ATOMIC_RELEASE);
	hide.thread[slot] = 0;
	__atomic_store_n(&hide.used[slot], 0, __ATOMIC_RELEASE);
}

static int hidden_thread(void)
{
	pthread_t self = pthread_self();
	for (int i = 0; i < HIDE_SLOTS; i++)
		if (__atomic_load_n(&hide.used[i], __ATOMIC_ACQUIRE) && hide.thread[i] == self)
			return 1;
	return 0;
}

/* MMAP and MREMAP_IN events carry prot in the low half of aux and flags
 * in the high half. */

/* Whether a call returning to ra is the program's to record. */
static inline int traced(const void *ra)
{
	if ((const char *)ra >= __ehdr_start && (const char *)ra < etext)
		return 0;
	if ((uintptr_t)ra - interp_start < interp_end - interp_start)
		return 0;
	return !__atomic_load_n(&hide.count, __ATOMIC_ACQUIRE) || !hidden_thread();
}

/* The executable segment of the loaded object that holds data->addr. */
struct segment {
	uintptr_t addr, start, end;
};

static int find_segment(struct dl_phdr_info *info, size_t size, void *arg)
{
	struct segment *s = arg;
	(void)size;
	for (int i = 0; i < info->dlpi_phnum; i++) {
		const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
		uintptr_t lo = info->dlpi_addr + ph->p_vaddr;
		if (ph->p_type == PT_LOAD && (ph->p_flags & PF_X) && s->addr - lo < ph->p_memsz) {
			s->start = lo;
			s->end = lo + ph->p_memsz;
			return 1;
		}
	}
	return 0;
}

void mt_mappings_start(void)
{
	void *api = dlsym(RTLD_DEFAULT, "PyMem_SetAllocator");
	if (!api) {
		dlerror(); /* formats the message: see pyshim.c's sym() */
		dlerror(); /* frees it */
		return;
	}
	struct segment s = {(uintptr_t)api, 0, 0};
	dl_iterate_phdr(find_segment, &s);
	interp_start = s.start;
	interp_end = s.end;
}

static void resolve(void)
{
	real.resolving = 1;
	real.munmap = (munmap_fn *)dlsym(RTLD_NEXT, "munmap");
	real.mremap = (mremap_fn *)dlsym(RTLD_NEXT, "mremap");
	__atomic_store_n(&real.mmap, (mmap_fn *)dlsym(RTLD_NEXT, "mmap"), __ATOMIC_RELEASE);
	real.resolving = 0;
}

/* 1 when glibc's functions can be called; 0 while dlsym looks them up
 * (the system calls do then). */
static inline int ready(void)
{
	if (mt_likely(__atomic_load_n(&real.mmap, __ATOMIC_ACQUIRE) != NULL))
		return 1;
	if (real.resolving)
		return 0;
	resolve();
	return real.mmap != NULL;
}

static void record(int kind, uint64_t size, const void *addr, uint64_t aux)
{
	int saved = errno;
	mt_record(MT_EV_OP(kind, 0, 0), size, addr, aux);
	errno = saved;
}

EXPORT void *mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off)
{
	void *p = ready() ? real.mmap(addr, len, prot, flags, fd, off)
			  : (void *)syscall(SYS_mmap, addr, len, prot, flags, fd, off);
	if (traced(__builtin_return_address(0)))
		record(MT_REC_MMAP, len, p == MAP_FAILED ? NULL : p,
		       (uint32_t)prot | (uint64_t)(uint32_t)flags << 32);
	return p;
}

/* The same function in glibc on 64-bit systems, under a second name. */
EXPORT void *mmap64(void *addr, size_t len, int prot, int flags, int fd, off_t off)
	__attribute__((alias("mmap")));

/* Arguments the kernel refuses before it unmaps anything. */
static int unmappable(const void *addr, size_t len)
{
	uintptr_t a = (uintptr_t)addr;
	size_t page = (size_t)getpagesize();
	return (a & (page - 1)) == 0 && len && a + len > a && len <= SIZE_MAX - page;
}

EXPORT int munmap(void *addr, size_t len)
{
	if (traced(__builtin_return_address(0)) && unmappable(addr, len))
		record(MT_REC_MUNMAP, len, addr, 0);
	return ready() ? real.munmap(addr, len) : (int)syscall(SYS_munmap, addr, len);
}

EXPORT void *mremap(void *old, size_t old_len, size_t new_len, int flags, ...)
{
	void *target = NULL;
	if (flags & MREMAP_FIXED) {
		va_list ap;
		va_start(ap, flags);
		target = va_arg(ap, void *);
		va_end(ap);
	}
	int t = traced(__builtin_return_address(0));
	if (t)
		record(MT_REC_MREMAP_OUT, old_len, old, 0);
	void *p = ready() ? real.mremap(old, old_len, new_len, flags, target)
			  : (void *)syscall(SYS_mremap, old, old_len, new_len, flags, target);
	if (t)
		record(MT_REC_MREMAP_IN, new_len, p == MAP_FAILED ? NULL : p,
		       (uint64_t)(uint32_t)flags << 32);
	return p;
}
