/*
 * test_idmap.c - preload/idmap.c alone: the interning map, and its lookups
 * without a lock while one writer puts (growing the map many times) and
 * deletes, as the threads of a free-threaded CPython do.
 */
#include "idmap.h"

#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#define KEYS 200000
#define READERS 3

static void test_put_get_del(void **state)
{
	(void)state;
	struct mt_idmap m = { 0 };
	for (uint64_t k = 1; k <= 5000; k++)
		assert_int_equal(mt_idmap_put(&m, k, k * 2, k * 3, k + 100), 0);
	for (uint64_t k = 1; k <= 5000; k++)
		assert_int_equal(mt_idmap_get(&m, k, k * 2, k * 3), k + 100);
	assert_int_equal(mt_idmap_get(&m, 1, 2, 4), 0);
	for (uint64_t k = 1; k <= 5000; k += 2)
		mt_idmap_del(&m, k, k * 2, k * 3);
	for (uint64_t k = 1; k <= 5000; k++)
		assert_int_equal(mt_idmap_get(&m, k, k * 2, k * 3), k % 2 ? 0 : k + 100);
	/* a deleted key can come back */
	assert_int_equal(mt_idmap_put(&m, 1, 2, 3, 7), 0);
	assert_int_equal(mt_idmap_get(&m, 1, 2, 3), 7);
	mt_idmap_clear(&m);
	assert_int_equal(mt_idmap_get(&m, 2, 4, 6), 0);
}

static struct {
	struct mt_idmap m;
	uint64_t published; /* keys 1..published are in the map */
	int done;
	uint64_t wrong[READERS], lookups[READERS];
} shared;

static uint64_t next(uint64_t *x)
{
	*x ^= *x << 13;
	*x ^= *x >> 7;
	*x ^= *x << 17;
	return *x;
}

static void *reader(void *arg)
{
	int me = (int)(intptr_t)arg;
	uint64_t rnd = 0x9e3779b97f4a7c15ull + (uint64_t)me;
	while (!__atomic_load_n(&shared.done, __ATOMIC_ACQUIRE)) {
		uint64_t have = __atomic_load_n(&shared.published, __ATOMIC_ACQUIRE);
		if (!have)
			continue;
		uint64_t k = next(&rnd) % have + 1;
		/* the even keys stay; odd ones may be deleted by now */
		uint64_t id = mt_idmap_get(&shared.m, k, 0, k * 2);
		if (id != k && !(k % 2 && id == 0))
			shared.wrong[me]++;
		/* never put: never found */
		if (mt_idmap_get(&shared.m, k, 1, k * 2))
			shared.wrong[me]++;
		shared.lookups[me]++;
	}
	return NULL;
}

static void test_readers_beside_a_writer(void **state)
{
	(void)state;
	pthread_t th[READERS];
	for (int i = 0; i < READERS; i++)
		assert_int_equal(pthread_create(&th[i], NULL, reader, (void *)(intptr_t)i), 0);
	for (uint64_t k = 1; k <= KEYS; k++) {
		assert_int_equal(mt_idmap_put(&shared.m, k, 0, k * 2, k), 0);
		__atomic_store_n(&shared.published, k, __ATOMIC_RELEASE);
		if (k % 2 == 1 && k > 1000)
			mt_idmap_del(&shared.m, k - 1000, 0, (k - 1000) * 2);
	}
	__atomic_store_n(&shared.done, 1, __ATOMIC_RELEASE);
	uint64_t lookups = 0;
	for (int i = 0; i < READERS; i++) {
		pthread_join(th[i], NULL);
		assert_int_equal(shared.wrong[i], 0);
		lookups += shared.lookups[i];
	}
	assert_true(lookups > 0);
	assert_true(shared.m.nretired > 5); /* it grew many times meanwhile */
	mt_idmap_clear(&shared.m);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_put_get_del),
		cmocka_unit_test(test_readers_beside_a_writer),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
