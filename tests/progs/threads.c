/*
 * threads - producers allocate blocks and hand them through a queue to
 * consumers, which free them: every free is a cross-thread free, and glibc
 * hands the freed addresses straight back to the next malloc of either side,
 * so the same address is freed by one thread and returned to another within
 * microseconds.
 *
 * usage: threads PRODUCERS CONSUMERS ITEMS_PER_PRODUCER
 *
 * What happens to an item depends on its own number, never on which consumer
 * got it, so the totals do not depend on scheduling (and valgrind, which runs
 * threads one at a time, sees the same calls):
 *   k % 3 == 0   the consumer reallocs it to twice the size, then frees it
 *   k % 5 == 0   the consumer frees it and at once mallocs and frees the same
 *                size again (immediate reuse of the address it just freed)
 *   otherwise    the consumer frees it
 * Each producer leaks one block of 1000 + i bytes; the main thread allocates
 * one block that the last consumer to finish frees.
 */
#include <pthread.h>

#include "progs.h"

#define QUEUE_LEN 256

struct item {
	void *p;
	size_t size;
	unsigned long k;
};

static struct {
	pthread_mutex_t lock;
	pthread_cond_t not_empty, not_full;
	struct item items[QUEUE_LEN];
	unsigned head, tail, len;
	unsigned long remaining; /* items not yet popped */
} q = {
	.lock = PTHREAD_MUTEX_INITIALIZER,
	.not_empty = PTHREAD_COND_INITIALIZER,
	.not_full = PTHREAD_COND_INITIALIZER,
};

static unsigned long items_per_producer;
static int consumers_left;
static void *from_main;

static void push(struct item it)
{
	pthread_mutex_lock(&q.lock);
	while (q.len == QUEUE_LEN)
		pthread_cond_wait(&q.not_full, &q.lock);
	q.items[q.tail] = it;
	q.tail = (q.tail + 1) % QUEUE_LEN;
	q.len++;
	pthread_cond_signal(&q.not_empty);
	pthread_mutex_unlock(&q.lock);
}

/* 0 once every item has been handed out. */
static int pop(struct item *it)
{
	pthread_mutex_lock(&q.lock);
	while (q.len == 0 && q.remaining > 0)
		pthread_cond_wait(&q.not_empty, &q.lock);
	if (q.remaining == 0) {
		pthread_mutex_unlock(&q.lock);
		return 0;
	}
	*it = q.items[q.head];
	q.head = (q.head + 1) % QUEUE_LEN;
	q.len--;
	if (--q.remaining == 0)
		pthread_cond_broadcast(&q.not_empty);
	pthread_cond_signal(&q.not_full);
	pthread_mutex_unlock(&q.lock);
	return 1;
}

static void *producer(void *arg)
{
	const unsigned long id = (unsigned long)(uintptr_t)arg;

	for (unsigned long i = 0; i < items_per_producer; i++) {
		struct item it = {
			.k = id * items_per_producer + i,
			.size = 16 + (i * 7 + id * 13) % 240,
		};
		it.p = c_malloc(it.size);
		CHECK(it.p != NULL);
		memset(it.p, (int)id, it.size);
		push(it);
	}
	CHECK(c_malloc(1000 + id) != NULL); /* leaked */
	return NULL;
}

static void *consumer(void *arg)
{
	struct item it;

	(void)arg;
	while (pop(&it)) {
		if (it.k % 3 == 0) {
			it.p = c_realloc(it.p, it.size, it.size * 2);
			CHECK(it.p != NULL);
			c_free(it.p, it.size * 2);
		} else if (it.k % 5 == 0) {
			c_free(it.p, it.size);
			void *again = c_malloc(it.size);
			CHECK(again != NULL);
			c_free(again, it.size);
		} else {
			c_free(it.p, it.size);
		}
	}
	if (__atomic_sub_fetch(&consumers_left, 1, __ATOMIC_ACQ_REL) == 0)
		c_free(from_main, 77);
	return NULL;
}

int main(int argc, char **argv)
{
	CHECK(argc == 4);
	const int producers = atoi(argv[1]), consumers = atoi(argv[2]);
	items_per_producer = strtoul(argv[3], NULL, 10);
	CHECK(producers > 0 && producers <= 64 && consumers > 0 && consumers <= 64);
	pthread_t tids[128];

	q.remaining = (unsigned long)producers * items_per_producer;
	consumers_left = consumers;
	from_main = c_malloc(77);
	CHECK(from_main != NULL);

	/* all threads are created before any is joined, so that glibc never
	 * reuses a cached thread stack and its own allocations stay the same
	 * from run to run */
	for (int i = 0; i < consumers; i++)
		CHECK(pthread_create(&tids[i], NULL, consumer, NULL) == 0);
	for (int i = 0; i < producers; i++)
		CHECK(pthread_create(&tids[consumers + i], NULL, producer,
				     (void *)(uintptr_t)i) == 0);
	for (int i = 0; i < consumers + producers; i++)
		CHECK(pthread_join(tids[i], NULL) == 0);

	print_counts("threads");
	return 0;
}
