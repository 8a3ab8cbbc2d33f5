/*
 * threads.c - who records into which ring.  Each thread gets its state
 * (threads.h) and its own ring on its first event and gives the ring back
 * when it exits; events a thread makes after its key destructor ran (glibc
 * still frees its tcache then) go to one shared, locked "late" ring.  Also
 * owns the asymmetric barrier the writer needs to bound the epochs still
 * to come (ring.h).
 *
 * Thread states live in slabs mapped here and never unmapped, so a state
 * may be read at any time.  glibc clears a thread's keys before it runs
 * their destructors, so a thread past ours is found again by its pthread_t
 * and tid; a new thread that reuses a dead one's descriptor has the same
 * pthread_t but another tid, and the writer frees the states of threads
 * that are gone.
 */
#define _GNU_SOURCE
#include "threads.h"

#include <dlfcn.h>
#include <errno.h>
#include <limits.h>
#include <linux/membarrier.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <memtrace/trace_format.h>

#include "lifecycle.h"
#include "native.h"
#include "ownmem.h"
#include "tracer.h"

intptr_t mt_thread_slot;

#define LATE_RING_EVENTS 4096
#define SLAB_BYTES (64 * 1024)
/* Keys from here on live in blocks glibc allocates on the first set. */
#define KEYS_INLINE 32

struct slab {
	struct slab *next;
	struct mt_thread t[];
};
#define SLAB_THREADS ((SLAB_BYTES - sizeof(struct slab)) / sizeof(struct mt_thread))

const struct mt_thread mt_thread_none;

/* Without memory for a state: records nothing, walks no stacks. */
static struct mt_thread stand_in = { .internal = 1, .native.gone = 1 };

static struct {
	int lock;                /* spinlock: a mutex would not survive fork */
	struct mt_ring *rings;   /* every ring the writer drains */
	struct mt_ring *spare;   /* recycled rings */
	struct mt_ring *late;    /* shared ring for exited threads */
	uint64_t threads;        /* rings handed out, ever */
	uint64_t lost, waits;    /* from recycled rings */
	uint64_t fork_head;      /* the forking thread's head at fork() */
	struct slab *slabs;      /* every thread state */
	struct mt_thread *free;  /* states to hand out */
	struct mt_thread *late_holder; /* holds the late ring's lock */
	int barrier;             /* enum barrier_kind */
	pthread_key_t key;       /* its value: the thread's state */
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

/* Blocks every signal around the code that takes the registry lock for a
 * thread without a state: a handler that allocated there would want the
 * lock again, and could not even tell it is inside the tracer. */
static void signals_block(sigset_t *old)
{
	sigset_t all;
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, old);
}

static void signals_restore(const sigset_t *old)
{
	pthread_sigmask(SIG_SETMASK, old, NULL);
}

/* ---- thread states ------------------------------------------------------ */

/* Under the lock. */
static void state_free(struct mt_thread *t)
{
	if (t->ring) /* a thread gone without its destructor: the writer may recycle it */
		__atomic_store_n(&t->ring->exited, 1, __ATOMIC_RELEASE);
	mt_native_thread_exit(t);
	*t = (struct mt_thread){ .next_free = reg.free };
	reg.free = t;
}

/* Under the lock: frees the states of exited threads the kernel no longer
 * knows.  A state must outlive its thread's last free, which comes after
 * the key destructor; a dead thread makes no more events. */
static void sweep_gone(void)
{
	pid_t pid = getpid();
	for (struct slab *s = reg.slabs; s; s = s->next)
		for (size_t i = 0; i < SLAB_THREADS; i++) {
			struct mt_thread *t = &s->t[i];
			if (t->state == MT_THREAD_EXITED &&
			    syscall(SYS_tgkill, pid, t->tid, 0) && errno == ESRCH)
				state_free(t);
		}
}

/* Under the lock. */
static struct mt_thread *state_take(void)
{
	if (!reg.free)
		sweep_gone();
	if (!reg.free) {
		struct slab *s = mmap(NULL, SLAB_BYTES, PROT_READ | PROT_WRITE,
				      MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (s == MAP_FAILED)
			return NULL;
		for (size_t i = SLAB_THREADS; i-- > 0;) {
			s->t[i].next_free = reg.free;
			reg.free = &s->t[i];
		}
		s->next = reg.slabs;
		reg.slabs = s;
	}
	struct mt_thread *t = reg.free;
	reg.free = t->next_free;
	t->next_free = NULL;
	return t;
}

/* Under the lock: the state of the calling thread, whose key glibc has
 * cleared.  A state of a dead thread whose descriptor this one reuses is
 * freed on the way. */
static struct mt_thread *state_of(pthread_t self, pid_t tid)
{
	for (struct slab *s = reg.slabs; s; s = s->next)
		for (size_t i = 0; i < SLAB_THREADS; i++) {
			struct mt_thread *t = &s->t[i];
			if (t->state == MT_THREAD_FREE || !pthread_equal(t->self, self))
				continue;
			if (t->tid == tid)
				return t;
			state_free(t);
		}
	return NULL;
}

struct mt_thread *mt_thread_adopt(void)
{
	int saved = errno;
	sigset_t old;
	signals_block(&old);
	struct mt_thread *t = mt_thread_find();
	if (!t) {
		pthread_t self = pthread_self();
		pid_t tid = gettid();
		reg_lock();
		t = state_of(self, tid);
		if (!t && (t = state_take())) {
			t->self = self;
			t->tid = tid;
			t->state = MT_THREAD_LIVE;
			pthread_setspecific(reg.key, t);
		}
		reg_unlock();
	}
	signals_restore(&old);
	errno = saved;
	return t ? t : &stand_in;
}

/* The key's destructor, called with the key already cleared; the thread's
 * last frees (its tcache) come after it. */
static void on_thread_exit(void *arg)
{
	struct mt_thread *t = arg;
	sigset_t old;
	signals_block(&old);
	struct mt_ring *r = t->ring;
	t->ring = NULL;
	reg_lock();
	t->state = MT_THREAD_EXITED;
	reg_unlock();
	mt_native_thread_exit(t);
	if (r)
		__atomic_store_n(&r->exited, 1, __ATOMIC_RELEASE);
	signals_restore(&old);
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

/* The offset of the key's value in every thread descriptor: libthread_db's
 * description of struct pthread gives where its table of key blocks is,
 * whose first block is inside the descriptor; setting the key then shows
 * whether the value really is there.  dlsym may allocate (on failure). */
static intptr_t find_slot(pthread_key_t key)
{
	const uint32_t *specific = dlsym(RTLD_DEFAULT, "_thread_db_pthread_specific");
	const uint32_t *size = dlsym(RTLD_DEFAULT, "_thread_db_sizeof_pthread");
	char *tp = __builtin_thread_pointer();
	if (!specific || !size || specific[2] + sizeof(void *) > size[0])
		return 0;
	char *first = *(char **)(tp + specific[2]);
	if (first < tp || first >= tp + size[0])
		return 0;
	intptr_t slot = first - tp + (intptr_t)(2 * key + 1) * (intptr_t)sizeof(void *);
	static int probe;
	void *was = pthread_getspecific(key);
	pthread_setspecific(key, &probe);
	int ok = *(void **)(tp + slot) == &probe;
	pthread_setspecific(key, was);
	return ok && *(void **)(tp + slot) == was ? slot : 0;
}

int mt_threads_init(void)
{
	if (pthread_key_create(&reg.key, on_thread_exit) || reg.key >= KEYS_INLINE ||
	    !(mt_thread_slot = find_slot(reg.key))) {
		mt_log("cannot find glibc's pthread key slots; not tracing");
		return -1;
	}
	barrier_init();
	return 0;
}

/* Publishes r to the writer. */
static void add_ring(struct mt_ring *r)
{
	reg_lock();
	r->next = reg.rings;
	__atomic_store_n(&reg.rings, r, __ATOMIC_RELEASE);
	if (++reg.threads == 2)
		__atomic_store_n(&mt_epoch.threads, 1, __ATOMIC_RELAXED);
	reg_unlock();
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

static struct mt_ring *late_ring_lock(struct mt_thread *t)
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
	t->internal++;
	reg.late_holder = t;
	r->py_loc = r->native_stack = r->py_script = 0; /* each user states its own */
	if (mt_ring_reserve(r, 1) == 0) {
		/* Tells the writer whose events follow. */
		struct mt_event *e = mt_ring_slot(r, 0);
		e->epoch = r->epoch;
		e->addr = (uint64_t)gettid();
		e->size = MT_EV_PACK(MT_EV_OP(MT_REC_THREAD, 0, 0), 0);
		e->aux = 0;
		mt_ring_publish(r, 1);
	}
	return r;
}

void mt_thread_release_late(struct mt_ring *r)
{
	reg.late_holder->internal--;
	reg.late_holder = NULL;
	__atomic_store_n(&r->lock, 0, __ATOMIC_RELEASE);
}

struct mt_ring *mt_thread_attach(struct mt_thread *t)
{
	if (!t)
		t = mt_thread_adopt();
	if (t->internal || t == &stand_in)
		return NULL;
	if (t->state == MT_THREAD_EXITED)
		return late_ring_lock(t);
	int saved = errno;
	t->internal++;
	struct mt_ring *r = new_ring((uint32_t)t->tid);
	if (r) {
		add_ring(r);
		t->ring = r;
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
			/* not a heap block: the writer's own arena would show
			 * in the program's glibc figures */
			struct mt_ring **a = mt_own_remap(*arr, *cap * sizeof *a, ncap * sizeof *a);
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
		__atomic_store_n(pp, r->next, __ATOMIC_RELAXED);
		reg.lost += r->lost;
		reg.waits += r->waits;
		r->next = reg.spare;
		reg.spare = r;
	}
	sweep_gone();
	reg_unlock();
}

/* Without the lock: rings are not unmapped while the process runs (a
 * drained one waits among the spares, and a walk that follows it there
 * only looks at more tables), and a ring added meanwhile holds no block
 * made before the one given back.  A ring's epoch is the one its thread
 * read for its last event: the thread that made the block read one before
 * the hand-over, so the walk sees that epoch or a later one. */
int mt_threads_given_back(const struct mt_ring *self, const void *addr, uint64_t e)
{
	uint64_t a = (uintptr_t)addr;
	int recent = 0;
	for (struct mt_ring *r = __atomic_load_n(&reg.rings, __ATOMIC_ACQUIRE); r;
	     r = __atomic_load_n(&r->next, __ATOMIC_ACQUIRE)) {
		uint64_t *slot = mt_own_slot(r, addr), want = a;
		if (r == self)
			continue;
		if (__atomic_load_n(slot, __ATOMIC_RELAXED) == a)
			__atomic_compare_exchange_n(slot, &want, 0, 0, __ATOMIC_RELAXED,
						    __ATOMIC_RELAXED);
		recent |= __atomic_load_n(&r->epoch, __ATOMIC_RELAXED) >= e;
	}
	return recent;
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
	struct mt_thread *t = mt_thread_find();
	reg_lock();
	reg.fork_head = t && t->ring ? t->ring->head : 0;
}

void mt_threads_fork_parent(void)
{
	reg_unlock();
}

/* In a fork child: only the forking thread is left. */
static void states_fork_child(struct mt_thread *me)
{
	for (struct slab *s = reg.slabs; s; s = s->next)
		for (size_t i = 0; i < SLAB_THREADS; i++)
			if (&s->t[i] != me && s->t[i].state != MT_THREAD_FREE)
				state_free(&s->t[i]);
	if (me)
		me->tid = gettid();
	reg.late_holder = NULL;
}

void mt_threads_fork_child(void)
{
	struct mt_thread *me = mt_thread_find();
	struct mt_ring *mine = me ? me->ring : NULL;
	states_fork_child(me);
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
		mine->stream = (struct mt_stream){.tid = mine->tid}; /* the child's trace numbers afresh */
		mine->next = reg.rings;
		reg.rings = mine;
		reg.threads++;
	}
	reg.lock = 0;
	if (reg.barrier == BARRIER_EXPEDITED)
		barrier_init(); /* registration is per process */
}
