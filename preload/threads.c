/*
 * threads.c - who records into which ring.  Each thread gets its own ring on
 * its first event and gives it back when it exits; events a thread makes
 * after its TLS destructors ran go to one shared, locked "late" ring.  Also
 * owns the switch to time-stamped events once a second thread records, and
 * the asymmetric barrier the writer needs to merge the rings in order.
 */
#define _GNU_SOURCE
#include "threads.h"

#include <errno.h>
#include <linux/membarrier.h>
#include <pthread.h>
#include <sched.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <memtrace/trace_format.h>

#include "lifecycle.h"
#include "native.h"
#include "tracer.h"

__thread struct mt_thread mt_self __attribute__((tls_model("initial-exec")));
int mt_multi;

#define LATE_RING_EVENTS 4096

static struct {
	int lock;                /* spinlock: a mutex would not survive fork */
	struct mt_ring *rings;   /* every ring the writer drains */
	struct mt_ring *spare;   /* recycled rings */
	struct mt_ring *late;    /* shared ring for exited threads */
	uint64_t threads;        /* rings handed out, ever */
	uint64_t lost, waits;    /* from recycled rings */
	uint64_t fork_head;      /* the forking thread's head at fork() */
	pthread_key_t exit_key;
	int barrier;             /* enum barrier_kind */
	int init_done;
} reg;

enum barrier_kind { BARRIER_EXPEDITED = 1, BARRIER_GLOBAL, BARRIER_MPROTECT };

static void reg_lock(void)
{
	while (__atomic_exchange_n(&reg.lock, 1, __ATOMIC_ACQUIRE))
		sched_yield();
}

static void reg_unlock(void)
{
	__atomic_store_n(&reg.lock, 0, __ATOMIC_RELEASE);
}

static void on_thread_exit(void *arg)
{
	struct mt_ring *r = arg;
	mt_self.ring = NULL;
	mt_self.state = MT_THREAD_EXITED;
	mt_native_thread_exit();
	__atomic_store_n(&r->exited, 1, __ATOMIC_RELEASE);
}

static void barrier_init(void)
{
	if (syscall(__NR_membarrier, MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED, 0, 0) == 0)
		reg.barrier = BARRIER_EXPEDITED;
	else if (syscall(__NR_membarrier, MEMBARRIER_CMD_QUERY, 0, 0) & MEMBARRIER_CMD_GLOBAL)
		reg.barrier = BARRIER_GLOBAL;
	else
		reg.barrier = BARRIER_MPROTECT;
}

void mt_barrier_all(void)
{
	static char *page;
	int saved = errno;
	switch (reg.barrier) {
	case BARRIER_EXPEDITED:
		syscall(__NR_membarrier, MEMBARRIER_CMD_PRIVATE_EXPEDITED, 0, 0);
		break;
	case BARRIER_GLOBAL:
		syscall(__NR_membarrier, MEMBARRIER_CMD_GLOBAL, 0, 0);
		break;
	default:
		/* Revoking write access to a touched page makes the kernel
		 * interrupt every CPU that runs one of our threads. */
		if (!page)
			page = mmap(NULL, 4096, PROT_READ | PROT_WRITE,
				    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (page != MAP_FAILED) {
			page[0]++;
			mprotect(page, 4096, PROT_READ);
			mprotect(page, 4096, PROT_READ | PROT_WRITE);
		}
	}
	errno = saved;
}

void mt_threads_init(void)
{
	if (__atomic_load_n(&reg.init_done, __ATOMIC_ACQUIRE))
		return;
	reg_lock();
	if (!reg.init_done) {
		pthread_key_create(&reg.exit_key, on_thread_exit);
		barrier_init();
		__atomic_store_n(&reg.init_done, 1, __ATOMIC_RELEASE);
	}
	reg_unlock();
}

/* Publishes r to the writer; the second ring switches on time stamps. */
static void add_ring(struct mt_ring *r)
{
	reg_lock();
	r->next = reg.rings;
	reg.rings = r;
	int first_concurrent = ++reg.threads >= 2 && !mt_multi;
	if (first_concurrent)
		__atomic_store_n(&mt_multi, 1, __ATOMIC_RELEASE);
	reg_unlock();
	/* After this, no thread still decides to leave a stamp out. */
	if (first_concurrent)
		mt_barrier_all();
}

static struct mt_ring *new_ring(uint32_t tid)
{
	reg_lock();
	struct mt_ring *r = reg.spare;
	if (r)
		reg.spare = r->next;
	reg_unlock();
	if (r) {
		mt_ring_reuse(r, tid);
		return r;
	}
	r = mt_ring_new(mt_cfg.ring_events ? mt_cfg.ring_events : 65536, tid);
	if (!r)
		mt_tracer_fail("cannot map an event ring");
	return r;
}

static struct mt_ring *late_ring_lock(void)
{
	if (!reg.late) {
		struct mt_ring *r = mt_ring_new(LATE_RING_EVENTS, 0);
		if (!r) {
			mt_tracer_fail("cannot map an event ring");
			return NULL;
		}
		r->shared = 1;
		reg_lock();
		int lost_race = reg.late != NULL;
		if (!lost_race)
			reg.late = r;
		reg_unlock();
		if (lost_race)
			mt_ring_delete(r);
		else
			add_ring(r);
	}
	struct mt_ring *r = reg.late;
	while (__atomic_exchange_n(&r->lock, 1, __ATOMIC_ACQUIRE))
		sched_yield();
	/* A signal handler that allocates now must not take the lock again. */
	mt_self.internal++;
	r->py_loc = r->native_stack = r->py_script = 0; /* each user states its own */
	if (mt_ring_reserve(r, 1) == 0) {
		/* Tells the writer whose events follow. */
		struct mt_event *e = mt_ring_slot(r, 0);
		e->ts = mt_clock_stamp_early();
		e->addr = (uint64_t)gettid();
		e->size = MT_EV_PACK(MT_EV_OP(MT_REC_THREAD, 0, 0), 0);
		e->aux = 0;
		mt_ring_publish(r, 1);
	}
	return r;
}

void mt_thread_release(struct mt_ring *r)
{
	if (r->shared) {
		mt_self.internal--;
		__atomic_store_n(&r->lock, 0, __ATOMIC_RELEASE);
	}
}

struct mt_ring *mt_thread_attach(void)
{
	struct mt_thread *t = &mt_self;
	if (t->internal || !mt_tracer_start())
		return NULL;
	if (t->state == MT_THREAD_EXITED)
		return late_ring_lock();
	int saved = errno;
	t->internal++;
	mt_threads_init();
	struct mt_ring *r = new_ring((uint32_t)gettid());
	if (r) {
		pthread_setspecific(reg.exit_key, r);
		add_ring(r);
		t->ring = r;
		t->state = MT_THREAD_ACTIVE;
	}
	t->internal--;
	errno = saved;
	return r;
}

size_t mt_threads_snapshot(struct mt_ring ***arr, size_t *cap)
{
	size_t n = 0;
	reg_lock();
	for (struct mt_ring *r = reg.rings; r; r = r->next) {
		if (n == *cap) {
			size_t ncap = *cap ? 2 * *cap : 64;
			struct mt_ring **a = realloc(*arr, ncap * sizeof *a);
			if (!a)
				break; /* the rest waits for the next round */
			*arr = a;
			*cap = ncap;
		}
		(*arr)[n++] = r;
	}
	reg_unlock();
	return n;
}

static int drained(struct mt_ring *r)
{
	return __atomic_load_n(&r->exited, __ATOMIC_ACQUIRE) &&
	       __atomic_load_n(&r->head, __ATOMIC_ACQUIRE) == r->tail;
}

void mt_threads_recycle(void)
{
	reg_lock();
	for (struct mt_ring **pp = &reg.rings; *pp;) {
		struct mt_ring *r = *pp;
		if (!drained(r)) {
			pp = &r->next;
			continue;
		}
		*pp = r->next;
		reg.lost += r->lost;
		reg.waits += r->waits;
		r->next = reg.spare;
		reg.spare = r;
	}
	reg_unlock();
}

void mt_threads_totals(uint64_t *lost, uint64_t *waits, uint64_t *threads)
{
	reg_lock();
	*lost = reg.lost;
	*waits = reg.waits;
	for (struct mt_ring *r = reg.rings; r; r = r->next) {
		*lost += __atomic_load_n(&r->lost, __ATOMIC_RELAXED);
		*waits += __atomic_load_n(&r->waits, __ATOMIC_RELAXED);
	}
	*threads = reg.threads;
	reg_unlock();
}

void mt_threads_fork_prepare(void)
{
	reg_lock();
	reg.fork_head = mt_self.ring ? mt_self.ring->head : 0;
}

void mt_threads_fork_parent(void)
{
	reg_unlock();
}

void mt_threads_fork_child(void)
{
	struct mt_ring *mine = mt_self.ring;
	for (struct mt_ring *r = reg.rings, *next; r; r = next) {
		next = r->next;
		if (r != mine && r != reg.late)
			mt_ring_delete(r);
	}
	for (struct mt_ring *r = reg.spare, *next; r; r = next) {
		next = r->next;
		mt_ring_delete(r);
	}
	reg.rings = reg.spare = NULL;
	reg.threads = reg.lost = reg.waits = 0;
	if (reg.late) {
		mt_ring_reuse(reg.late, 0);
		reg.late->shared = 1;
		reg.late->next = NULL;
		reg.rings = reg.late;
		reg.threads = 1;
	}
	if (mine) {
		/* Events before fork() belong to the parent's trace. */
		mine->tail = mine->tail_seen = reg.fork_head;
		mine->busy = mine->out_open = 0;
		mine->lost = mine->waits = mine->py_loc = mine->native_stack = mine->py_script = 0;
		mine->tid = (uint32_t)gettid();
		mine->next = reg.rings;
		reg.rings = mine;
		reg.threads++;
	}
	reg.lock = 0;
	if (reg.barrier == BARRIER_EXPEDITED)
		barrier_init(); /* registration is per process */
}
