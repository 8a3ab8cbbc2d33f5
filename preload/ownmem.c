/*
 * ownmem.c - the tracer's own mappings (ownmem.h) and a registry of them,
 * so that a sample can say how much the tracer itself holds and how much
 * of it is resident.  Mappings are made with direct system calls: they
 * never pass through the tracer's own mmap wrappers (mappings.c), and
 * errno is left as the program had it.
 */
#define _GNU_SOURCE
#include "ownmem.h"

#include <errno.h>
#include <sched.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#define PAGE 4096ul
#define HEADER 16 /* before a block of mt_own_alloc: its mapped length */

struct region {
	uintptr_t addr;
	size_t len;
};

static struct {
	int lock;
	struct region *v; /* itself a raw mapping of cap entries */
	size_t n, cap;
	uint64_t mapped;
} own;

static size_t round_up(size_t n)
{
	return (n + PAGE - 1) & ~(PAGE - 1);
}

static void *sys_map(size_t n)
{
	int saved = errno;
	void *p = (void *)syscall(SYS_mmap, NULL, n, PROT_READ | PROT_WRITE,
				  MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	errno = saved;
	return p == MAP_FAILED ? NULL : p;
}

static void sys_unmap(void *p, size_t n)
{
	int saved = errno;
	syscall(SYS_munmap, p, n);
	errno = saved;
}

static void lock(void)
{
	while (__atomic_exchange_n(&own.lock, 1, __ATOMIC_ACQUIRE))
		sched_yield();
}

static void unlock(void)
{
	__atomic_store_n(&own.lock, 0, __ATOMIC_RELEASE);
}

/* Under the lock.  A region the registry has no room for is still the
 * tracer's; it only goes uncounted in the resident figure. */
static void reg_add(uintptr_t addr, size_t len)
{
	if (own.n == own.cap) {
		size_t cap = own.cap ? 2 * own.cap : PAGE / sizeof *own.v;
		struct region *v = sys_map(cap * sizeof *v);
		if (!v)
			return;
		if (own.v) {
			memcpy(v, own.v, own.n * sizeof *v);
			sys_unmap(own.v, own.cap * sizeof *v);
		}
		own.v = v;
		own.cap = cap;
	}
	own.v[own.n++] = (struct region){addr, len};
}

static void reg_del(uintptr_t addr)
{
	for (size_t i = own.n; i-- > 0;) {
		if (own.v[i].addr == addr) {
			own.v[i] = own.v[--own.n];
			return;
		}
	}
}

void *mt_own_map(size_t n)
{
	n = round_up(n);
	void *p = sys_map(n);
	if (!p)
		return NULL;
	lock();
	reg_add((uintptr_t)p, n);
	own.mapped += n;
	unlock();
	return p;
}

void mt_own_unmap(void *p, size_t n)
{
	if (!p)
		return;
	n = round_up(n);
	lock();
	reg_del((uintptr_t)p);
	own.mapped -= n;
	unlock();
	sys_unmap(p, n);
}

void *mt_own_remap(void *p, size_t old, size_t n)
{
	if (!p)
		return mt_own_map(n);
	old = round_up(old);
	n = round_up(n);
	int saved = errno;
	void *q = (void *)syscall(SYS_mremap, p, old, n, MREMAP_MAYMOVE);
	errno = saved;
	if (q == MAP_FAILED)
		return NULL;
	lock();
	reg_del((uintptr_t)p);
	reg_add((uintptr_t)q, n);
	own.mapped += n - old;
	unlock();
	return q;
}

void *mt_own_alloc(void *unused, size_t n)
{
	(void)unused;
	size_t len = round_up(n + HEADER);
	uint8_t *p = len > n ? mt_own_map(len) : NULL;
	if (!p)
		return NULL;
	memcpy(p, &len, sizeof len);
	return p + HEADER;
}

void mt_own_free(void *unused, void *p)
{
	(void)unused;
	if (!p)
		return;
	size_t len;
	uint8_t *base = (uint8_t *)p - HEADER;
	memcpy(&len, base, sizeof len);
	mt_own_unmap(base, len);
}

uint64_t mt_own_mapped(void)
{
	lock();
	uint64_t n = own.mapped + round_up(own.cap * sizeof *own.v);
	unlock();
	return n;
}

/* A vector's worth of pages (8 MiB) per system call. */
uint64_t mt_resident_bytes(uintptr_t addr, size_t len)
{
	unsigned char vec[2048];
	uint64_t pages = 0;
	while (len) {
		size_t chunk = len < sizeof vec * PAGE ? len : sizeof vec * PAGE;
		if (mincore((void *)addr, chunk, vec))
			break;
		for (size_t i = 0; i < chunk / PAGE; i++)
			pages += vec[i] & 1;
		addr += chunk;
		len -= chunk;
	}
	return pages * PAGE;
}

uint64_t mt_own_resident(void)
{
	uint64_t bytes = 0;
	int saved = errno;
	lock();
	for (size_t i = 0; i < own.n; i++)
		bytes += mt_resident_bytes(own.v[i].addr, own.v[i].len);
	bytes += mt_resident_bytes((uintptr_t)own.v, own.cap * sizeof *own.v);
	unlock();
	errno = saved;
	return bytes;
}

void mt_own_fork_prepare(void)
{
	lock();
}

void mt_own_fork_parent(void)
{
	unlock();
}

void mt_own_fork_child(void)
{
	unlock();
}
