/*
 * test_heapmap.c - the reporter's hash map against a plain array model:
 * random operations, growth and shrinking, and removal from the middle of
 * long probe clusters (the backward-shift deletion that replaces
 * tombstones).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <cmocka.h>

#include "heapmap.h"

/* A reproducible generator, independent of the C library's rand(). */
static uint64_t rng_state = 0x9e3779b97f4a7c15ull;
static uint64_t rnd(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return rng_state;
}

/* The model: keys are drawn from a fixed universe, so the truth for key i
 * is simply present[i] and val[i]. */
#define UNIVERSE 40000
static uint64_t keys[UNIVERSE], vals[UNIVERSE];
static bool present[UNIVERSE];

static void make_universe(void)
{
	for (size_t i = 0; i < UNIVERSE; i++) {
		switch (i % 4) {
		case 0: /* heap-like: 16-byte aligned, close together */
			keys[i] = 0x555555559000ull + 16 * i;
			break;
		case 1: /* mmap-like: page aligned, far away */
			keys[i] = 0x7f0000000000ull + 4096 * i;
			break;
		case 2: /* only high bits differ */
			keys[i] = (uint64_t)i << 40;
			break;
		default:
			keys[i] = rnd();
		}
		present[i] = false;
	}
	keys[0] = 0; /* the key that cannot live in a slot */
	keys[1] = UINT64_MAX;
}

static void check_all(const struct heapmap *m)
{
	size_t n = 0;
	uint64_t v;
	for (size_t i = 0; i < UNIVERSE; i++) {
		assert_int_equal(hm_get(m, keys[i], &v), present[i]);
		if (present[i])
			assert_int_equal(v, vals[i]);
		n += present[i];
	}
	assert_int_equal(hm_count(m), n);
}

static void test_random_ops_against_model(void **state)
{
	(void)state;
	struct heapmap m;
	uint64_t v, old;
	size_t n = 0;
	make_universe();
	assert_int_equal(hm_init(&m), 0);
	for (int op = 0; op < 400000; op++) {
		/* Drift the insert/remove balance so the map grows and shrinks. */
		bool growing = (op / 50000) % 2 == 0;
		size_t i = (size_t)(rnd() % UNIVERSE);
		uint64_t r = rnd() % 100;
		if (r < (growing ? 60u : 25u)) {
			uint64_t nv = rnd();
			int st = hm_put(&m, keys[i], nv, &old);
			assert_int_equal(st, present[i]);
			if (present[i])
				assert_int_equal(old, vals[i]);
			n += !present[i];
			present[i] = true;
			vals[i] = nv;
		} else if (r < 85) {
			assert_int_equal(hm_del(&m, keys[i], &v), present[i]);
			if (present[i])
				assert_int_equal(v, vals[i]);
			n -= present[i];
			present[i] = false;
		} else {
			assert_int_equal(hm_get(&m, keys[i], &v), present[i]);
			if (present[i])
				assert_int_equal(v, vals[i]);
		}
		assert_int_equal(hm_count(&m), n);
		if (op % 50000 == 49999)
			check_all(&m);
	}
	check_all(&m);
	hm_free(&m);
}

static void test_grow_then_empty(void **state)
{
	(void)state;
	struct heapmap m;
	uint64_t v, old;
	const uint64_t n = 1000000;
	assert_int_equal(hm_init(&m), 0);
	size_t initial_cap = m.mask + 1;
	for (uint64_t i = 1; i <= n; i++)
		assert_int_equal(hm_put(&m, i * 48, i, &old), 0);
	assert_int_equal(hm_count(&m), n);
	assert_true(m.mask + 1 >= n * 2); /* grew, within its load bound of 1/2 */
	assert_true(m.mask + 1 <= n * 4);
	for (uint64_t i = 1; i <= n; i++) {
		assert_true(hm_get(&m, i * 48, &v));
		assert_int_equal(v, i);
	}
	assert_false(hm_get(&m, 24, &v));
	for (uint64_t i = 1; i <= n; i += 2)
		assert_true(hm_del(&m, i * 48, &v));
	for (uint64_t i = 1; i <= n; i++)
		assert_int_equal(hm_get(&m, i * 48, &v), i % 2 == 0);
	for (uint64_t i = 2; i <= n; i += 2)
		assert_true(hm_del(&m, i * 48, &v));
	assert_int_equal(hm_count(&m), 0);
	assert_int_equal(m.mask + 1, initial_cap); /* memory follows live keys */
	assert_false(hm_del(&m, 48, &v));
	hm_free(&m);
}

/* Churn at a steady population, as malloc/free traffic does: the table must
 * not grow (no tombstones accumulate) and lookups must stay right. */
static void test_churn_keeps_size(void **state)
{
	(void)state;
	enum { LIVE = 5000 };
	static uint64_t ring[LIVE];
	struct heapmap m;
	uint64_t v, old, next = 0x555555559000ull;
	assert_int_equal(hm_init(&m), 0);
	for (size_t i = 0; i < LIVE; i++) {
		ring[i] = next += 32;
		assert_int_equal(hm_put(&m, ring[i], i, &old), 0);
	}
	size_t cap = m.mask + 1;
	for (size_t op = 0; op < 2000000; op++) {
		size_t i = op % LIVE;
		assert_true(hm_del(&m, ring[i], &v));
		assert_int_equal(v, i);
		ring[i] = next += 32;
		assert_int_equal(hm_put(&m, ring[i], i, &old), 0);
	}
	assert_int_equal(m.mask + 1, cap);
	for (size_t i = 0; i < LIVE; i++) {
		assert_true(hm_get(&m, ring[i], &v));
		assert_int_equal(v, i);
	}
	hm_free(&m);
}

/* Keys chosen to share one home slot form a single long cluster; deleting
 * from its front, middle and back must leave every other key reachable. */
static void test_delete_inside_clusters(void **state)
{
	(void)state;
	struct heapmap m;
	uint64_t v, old, same_home[24];
	size_t found = 0;
	assert_int_equal(hm_init(&m), 0);
	size_t target = hm_home(&m, 0x1234);
	for (uint64_t k = 1; found < 24; k++)
		if (hm_home(&m, k) == target)
			same_home[found++] = k;
	/* 24 keys stay under the 1/2 load bound of the initial 64 slots. */
	for (size_t i = 0; i < 24; i++)
		assert_int_equal(hm_put(&m, same_home[i], i, &old), 0);
	assert_int_equal(m.mask + 1, 64);
	static const size_t order[] = { 0, 12, 23, 1, 11, 13, 22, 2 };
	for (size_t d = 0; d < sizeof order / sizeof order[0]; d++) {
		assert_true(hm_del(&m, same_home[order[d]], &v));
		assert_int_equal(v, order[d]);
		for (size_t i = 0; i < 24; i++) {
			bool gone = false;
			for (size_t e = 0; e <= d; e++)
				gone |= order[e] == i;
			assert_int_equal(hm_get(&m, same_home[i], &v), !gone);
			if (!gone)
				assert_int_equal(v, i);
		}
	}
	hm_free(&m);
}

static void test_zero_key(void **state)
{
	(void)state;
	struct heapmap m;
	uint64_t v, old;
	assert_int_equal(hm_init(&m), 0);
	assert_false(hm_get(&m, 0, &v));
	assert_int_equal(hm_put(&m, 0, 5, &old), 0);
	assert_int_equal(hm_put(&m, 0, 6, &old), 1);
	assert_int_equal(old, 5);
	assert_int_equal(hm_count(&m), 1);
	assert_true(hm_get(&m, 0, &v));
	assert_int_equal(v, 6);
	assert_true(hm_del(&m, 0, &v));
	assert_int_equal(v, 6);
	assert_false(hm_del(&m, 0, &v));
	assert_int_equal(hm_count(&m), 0);
	hm_free(&m);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_random_ops_against_model),
		cmocka_unit_test(test_grow_then_empty),
		cmocka_unit_test(test_churn_keeps_size),
		cmocka_unit_test(test_delete_inside_clusters),
		cmocka_unit_test(test_zero_key),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
