/*
 * interpose.c - the malloc family as the program sees it.  Each wrapper
 * calls the next definition in the lookup order (normally glibc's) and
 * records the call; return values, errno and alignment are the real
 * allocator's, untouched.
 *
 * Until dlsym() has found the real functions, requests (dlsym itself may
 * call calloc) are served from a small static arena; its blocks are
 * recognised by address in free, realloc and malloc_usable_size.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <malloc.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "pyshim.h"
#include "record.h"

#define EXPORT __attribute__((visibility("default")))

static struct {
	void *(*malloc)(size_t);
	void (*free)(void *);
	void *(*calloc)(size_t, size_t);
	void *(*realloc)(void *, size_t);
	int (*posix_memalign)(void **, size_t, size_t);
	void *(*aligned_alloc)(size_t, size_t);
	void *(*memalign)(size_t, size_t);
	void *(*valloc)(size_t);
	void *(*pvalloc)(size_t);
	size_t (*malloc_usable_size)(void *);
} real;

/* ---- bootstrap arena -------------------------------------------------- */

static _Alignas(64) char boot_heap[64 * 1024];
static size_t boot_used;
static int resolving;

static int is_boot(const void *p)
{
	return (const char *)p >= boot_heap && (const char *)p < boot_heap + sizeof boot_heap;
}

/* Each block is preceded by its size; blocks are 16-byte aligned. */
static void *boot_alloc(size_t n)
{
	size_t need = 16 + ((n + 15) & ~(size_t)15);
	size_t at = __atomic_fetch_add(&boot_used, need, __ATOMIC_RELAXED);
	if (n > sizeof boot_heap || at + need > sizeof boot_heap) {
		errno = ENOMEM;
		return NULL;
	}
	*(size_t *)(boot_heap + at) = n;
	return boot_heap + at + 16;
}

static size_t boot_size(const void *p)
{
	return *(const size_t *)((const char *)p - 16);
}

static void resolve(void)
{
	resolving = 1;
	real.calloc = dlsym(RTLD_NEXT, "calloc");
	real.free = dlsym(RTLD_NEXT, "free");
	real.realloc = dlsym(RTLD_NEXT, "realloc");
	real.posix_memalign = dlsym(RTLD_NEXT, "posix_memalign");
	real.aligned_alloc = dlsym(RTLD_NEXT, "aligned_alloc");
	real.memalign = dlsym(RTLD_NEXT, "memalign");
	real.valloc = dlsym(RTLD_NEXT, "valloc");
	real.pvalloc = dlsym(RTLD_NEXT, "pvalloc");
	real.malloc_usable_size = dlsym(RTLD_NEXT, "malloc_usable_size");
	__atomic_store_n(&real.malloc, dlsym(RTLD_NEXT, "malloc"), __ATOMIC_RELEASE);
	resolving = 0;
}

/* 1 when the real functions can be called; 0 while dlsym runs. */
static inline int ready(void)
{
	if (mt_likely(__atomic_load_n(&real.malloc, __ATOMIC_ACQUIRE) != NULL))
		return 1;
	if (resolving)
		return 0;
	resolve();
	return 1;
}

/* ---- wrappers --------------------------------------------------------- */

static inline void record_alloc(int kind, size_t size, const void *p)
{
	mt_record_alloc(MT_EV_OP(kind, MT_DOM_MALLOC, 0), size, p, 0, 0, 0);
}

static inline void record_aligned(int fn, size_t align, size_t size, const void *p)
{
	mt_record_alloc(MT_EV_OP(MT_REC_ALIGNED, MT_DOM_MALLOC, fn), size, p, align, 0, 0);
}

EXPORT void *malloc(size_t n)
{
	if (mt_unlikely(!ready()))
		return boot_alloc(n);
	void *p = real.malloc(n);
	record_alloc(MT_REC_MALLOC, n, p);
	if (mt_unlikely(mt_py_watching))
		mt_py_watch();
	return p;
}

EXPORT void free(void *p)
{
	if (!p || mt_unlikely(is_boot(p)))
		return;
	mt_record(MT_EV_OP(MT_REC_FREE, MT_DOM_MALLOC, 0), 0, p, 0);
	ready();
	real.free(p);
	if (mt_unlikely(mt_py_watching))
		mt_py_watch();
}

EXPORT void *calloc(size_t n, size_t m)
{
	if (mt_unlikely(!ready()))
		return boot_alloc(n * m); /* zero: the arena is never reused */
	void *p = real.calloc(n, m);
	size_t total;
	if (__builtin_mul_overflow(n, m, &total))
		total = SIZE_MAX;
	record_alloc(MT_REC_CALLOC, total, p);
	return p;
}

/* realloc of a bootstrap block: moves it to the real heap. */
static void *boot_realloc(void *old, size_t n)
{
	void *p = malloc(n);
	if (p) {
		size_t keep = boot_size(old);
		memcpy(p, old, keep < n ? keep : n);
	}
	return p;
}

EXPORT void *realloc(void *old, size_t n)
{
	if (mt_unlikely(!ready()))
		return old ? NULL : boot_alloc(n);
	if (mt_unlikely(is_boot(old)))
		return boot_realloc(old, n);
	mt_record_realloc_out(MT_DOM_MALLOC, old);
	void *p = real.realloc(old, n);
	mt_record_realloc_in(MT_DOM_MALLOC, n, p);
	return p;
}

/* glibc's reallocarray is realloc behind an overflow check; doing the same
 * here records it once, as the realloc it is. */
EXPORT void *reallocarray(void *old, size_t n, size_t m)
{
	size_t total;
	if (!__builtin_mul_overflow(n, m, &total))
		return realloc(old, total);
	mt_record_realloc_out(MT_DOM_MALLOC, old);
	mt_record_realloc_in(MT_DOM_MALLOC, SIZE_MAX, NULL);
	errno = ENOMEM;
	return NULL;
}

EXPORT int posix_memalign(void **out, size_t align, size_t n)
{
	ready();
	int err = real.posix_memalign(out, align, n);
	record_aligned(MT_FN_POSIX_MEMALIGN, align, n, err ? NULL : *out);
	return err;
}

EXPORT void *aligned_alloc(size_t align, size_t n)
{
	ready();
	void *p = real.aligned_alloc(align, n);
	record_aligned(MT_FN_ALIGNED_ALLOC, align, n, p);
	return p;
}

EXPORT void *memalign(size_t align, size_t n)
{
	ready();
	void *p = real.memalign(align, n);
	record_aligned(MT_FN_MEMALIGN, align, n, p);
	return p;
}

EXPORT void *valloc(size_t n)
{
	ready();
	void *p = real.valloc(n);
	record_aligned(MT_FN_VALLOC, (size_t)getpagesize(), n, p);
	return p;
}

EXPORT void *pvalloc(size_t n)
{
	ready();
	void *p = real.pvalloc(n);
	/* pvalloc allocates whole pages: that is the block's requested size. */
	size_t page = (size_t)getpagesize();
	size_t rounded = n ? (n + page - 1) & ~(page - 1) : page;
	record_aligned(MT_FN_PVALLOC, page, rounded < n ? SIZE_MAX : rounded, p);
	return p;
}

EXPORT size_t malloc_usable_size(void *p)
{
	if (p && is_boot(p))
		return boot_size(p);
	ready();
	return real.malloc_usable_size(p);
}
