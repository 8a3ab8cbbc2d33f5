/*
 * test_ring.c - the per-thread event ring (preload/ring.c): order, wrap
 * around, a full ring making its producer wait without losing anything, a
 * producer released when tracing is switched off, and the epoch a thread
 * advances every MT_EPOCH_EVENTS of its events.
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <cmocka.h>

#include "ring.h"
#include "tracer.h"

/* What ring.c needs from the rest of the library. */
int mt_active = 1;
struct mt_epoch_counter mt_epoch;
static int kicks;
void mt_writer_kick(void)
{
	__atomic_add_fetch(&kicks, 1, __ATOMIC_RELAXED);
}

static void push(struct mt_ring *r, uint64_t value)
{
	mt_ring_busy(r, 1);
	assert_int_equal(mt_ring_reserve(r, 1), 0);
	struct mt_event *e = mt_ring_slot(r, 0);
	e->epoch = value;
	e->addr = value * 16;
	e->size = MT_EV_PACK(MT_EV_OP(7, 2, 0), value);
	e->aux = ~value;
	mt_ring_publish(r, 1);
	mt_ring_busy(r, 0);
}

/* Consumes everything visible; checks it continues the sequence. */
static uint64_t consume(struct mt_ring *r, uint64_t expect)
{
	uint64_t head = __atomic_load_n(&r->head, __ATOMIC_ACQUIRE);
	for (uint64_t i = r->tail; i < head; i++, expect++) {
		struct mt_event *e = &r->ev[i & r->mask];
		assert_int_equal(e->epoch, expect);
		assert_int_equal(e->addr, expect * 16);
		assert_int_equal(MT_EV_SIZE(e->size), expect);
		assert_int_equal(MT_EV_OP_KIND(MT_EV_OPBITS(e->size)), 7);
		assert_int_equal(MT_EV_OP_DOM(MT_EV_OPBITS(e->size)), 2);
		assert_int_equal(e->aux, ~expect);
	}
	__atomic_store_n(&r->tail, head, __ATOMIC_RELEASE);
	return expect;
}

static void test_order_and_wrap(void **state)
{
	(void)state;
	struct mt_ring *r = mt_ring_new(1024, 42);
	assert_non_null(r);
	assert_int_equal(r->tid, 42);
	uint64_t next = 0, seen = 0;
	for (int round = 0; round < 25; round++) {
		for (int i = 0; i < 700; i++)
			push(r, next++);
		seen = consume(r, seen);
	}
	assert_int_equal(seen, 25 * 700);
	assert_int_equal(r->waits, 0);
	mt_ring_delete(r);
}

static void test_pack_saturates(void **state)
{
	(void)state;
	uint64_t packed = MT_EV_PACK(MT_EV_OP(3, 1, 4), UINT64_MAX);
	assert_int_equal(MT_EV_SIZE(packed), MT_EV_SIZE_MASK);
	assert_int_equal(MT_EV_OP_KIND(MT_EV_OPBITS(packed)), 3);
	assert_int_equal(MT_EV_OP_DOM(MT_EV_OPBITS(packed)), 1);
	assert_int_equal(MT_EV_OP_FN(MT_EV_OPBITS(packed)), 4);
}

struct consumer {
	struct mt_ring *r;
	uint64_t total, seen;
};

static void *consumer_main(void *arg)
{
	struct consumer *c = arg;
	while (c->seen < c->total) {
		struct timespec ts = {0, 200 * 1000};
		nanosleep(&ts, NULL); /* slower than the producer: it must wait */
		c->seen = consume(c->r, c->seen);
	}
	return NULL;
}

static void test_full_ring_waits_and_loses_nothing(void **state)
{
	(void)state;
	struct consumer c = {mt_ring_new(1024, 1), 200000, 0};
	pthread_t t;
	kicks = 0;
	pthread_create(&t, NULL, consumer_main, &c);
	for (uint64_t i = 0; i < c.total; i++)
		push(c.r, i);
	pthread_join(t, NULL);
	assert_int_equal(c.seen, c.total);
	assert_true(c.r->waits > 0);
	assert_true(kicks >= (int)c.r->waits);
	mt_ring_delete(c.r);
}

static void *switch_off(void *arg)
{
	(void)arg;
	struct timespec ts = {0, 20 * 1000 * 1000};
	nanosleep(&ts, NULL);
	__atomic_store_n(&mt_active, 0, __ATOMIC_RELEASE);
	return NULL;
}

static void test_wait_ends_when_tracing_stops(void **state)
{
	(void)state;
	struct mt_ring *r = mt_ring_new(1024, 1);
	for (int i = 0; i < 1024; i++)
		push(r, (uint64_t)i);
	pthread_t t;
	pthread_create(&t, NULL, switch_off, NULL);
	assert_int_equal(mt_ring_reserve(r, 1), -1);
	pthread_join(t, NULL);
	assert_int_equal(r->waits, 1);
	mt_active = 1;
	mt_ring_delete(r);
}

static void test_reuse_resets(void **state)
{
	(void)state;
	struct mt_ring *r = mt_ring_new(1024, 1);
	for (int i = 0; i < 10; i++)
		push(r, (uint64_t)i);
	consume(r, 0);
	r->exited = 1;
	r->lost = 3;
	mt_ring_reuse(r, 9);
	assert_int_equal(r->head, 0);
	assert_int_equal(r->tail, 0);
	assert_int_equal(r->exited, 0);
	assert_int_equal(r->lost, 0);
	assert_int_equal(r->tid, 9);
	assert_int_equal(mt_ring_free_slots(r), 1024);
	mt_ring_delete(r);
}

/* While several threads record, a thread advances the epoch every 256 of
 * its events; alone, it leaves that to the writer's rounds.  The kicks
 * come every kick mask + 1 events either way. */
static void test_epoch_every_256_events(void **state)
{
	(void)state;
	struct mt_ring *r = mt_ring_new(1024, 1);
	mt_epoch.now = 7;
	mt_epoch.several = 1;
	mt_ring_reuse(r, 2);
	assert_int_equal(r->epoch, 7);
	kicks = 0;
	uint64_t seen = 0;
	for (uint64_t i = 0; i < 1000; i++) {
		push(r, i);
		mt_ring_crossed(r, 1);
		if (i % 500 == 499)
			seen = consume(r, seen);
	}
	/* heads 256, 512 and 768; a kick at each too (kick mask 255) */
	assert_int_equal(mt_epoch.now, 7 + 3);
	assert_int_equal(kicks, 3);
	/* Three events published at once across 1024 count once. */
	for (int i = 0; i < 22; i++)
		push(r, 1000 + (uint64_t)i);
	consume(r, 1000);
	mt_ring_busy(r, 1);
	assert_int_equal(mt_ring_reserve(r, 3), 0);
	for (uint64_t i = 0; i < 3; i++)
		*mt_ring_slot(r, i) = (struct mt_event){0};
	mt_ring_publish(r, 3);
	mt_ring_busy(r, 0);
	mt_ring_crossed(r, 3);
	assert_int_equal(r->head, 1025);
	assert_int_equal(mt_epoch.now, 7 + 4);
	/* one thread alone: heads 1280, 1536 and 1792 kick, none advances */
	mt_epoch.several = 0;
	__atomic_store_n(&r->tail, r->head, __ATOMIC_RELEASE);
	int before = kicks;
	seen = 2000;
	for (uint64_t i = 0; i < 1000; i++) {
		push(r, 2000 + i);
		mt_ring_crossed(r, 1);
		if (i % 500 == 499)
			seen = consume(r, seen);
	}
	assert_int_equal(mt_epoch.now, 7 + 4);
	assert_int_equal(kicks, before + 3);
	mt_ring_delete(r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_order_and_wrap),
		cmocka_unit_test(test_pack_saturates),
		cmocka_unit_test(test_full_ring_waits_and_loses_nothing),
		cmocka_unit_test(test_wait_ends_when_tracing_stops),
		cmocka_unit_test(test_reuse_resets),
		cmocka_unit_test(test_epoch_every_256_events),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
