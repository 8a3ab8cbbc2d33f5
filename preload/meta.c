/*
 * meta.c - the definitions buffer and the string table (meta.h), and the
 * exported memtrace_mark() that labels steps of a program (with a sample
 * of what the OS sees at that moment: sampler.c).
 */
#define _GNU_SOURCE
#include "meta.h"

#include <sched.h>
#include <stdlib.h>
#include <string.h>

#include "idmap.h"
#include "ownmem.h"
#include "record.h"
#include "sampler.h"

#define EXPORT __attribute__((visibility("default")))

static struct {
	int lock;
	struct mt_enc enc;
	size_t cap;
	struct mt_idmap strings; /* (hash, length, 0) -> id */
	uint64_t next_string;
} meta;

void mt_meta_lock(void)
{
	while (__atomic_exchange_n(&meta.lock, 1, __ATOMIC_ACQUIRE))
		sched_yield();
}

void mt_meta_unlock(void)
{
	__atomic_store_n(&meta.lock, 0, __ATOMIC_RELEASE);
}

struct mt_enc *mt_meta_room(size_t need)
{
	if (meta.enc.len + need > meta.cap) {
		size_t cap = meta.cap ? meta.cap : 64 * 1024;
		while (cap < meta.enc.len + need)
			cap *= 2;
		uint8_t *buf = mt_own_remap(meta.enc.buf, meta.cap, cap);
		if (!buf)
			return NULL;
		meta.enc.buf = buf;
		meta.cap = cap;
	}
	return &meta.enc;
}

/* FNV-1a: strings are short and defined once each. */
static uint64_t hash_bytes(const char *s, size_t n)
{
	uint64_t h = 0xcbf29ce484222325ull;
	for (size_t i = 0; i < n; i++)
		h = (h ^ (unsigned char)s[i]) * 0x100000001b3ull;
	return h;
}

uint64_t mt_meta_string(const char *s, size_t n)
{
	if (n > MT_META_STRING_MAX)
		n = MT_META_STRING_MAX;
	uint64_t h = hash_bytes(s, n);
	uint64_t id = mt_idmap_get(&meta.strings, h, n, 0);
	if (id)
		return id;
	struct mt_enc *e = mt_meta_room(mt_enc_def_size(n));
	id = meta.next_string + 1;
	if (!e || mt_idmap_put(&meta.strings, h, n, 0, id))
		return 0;
	meta.next_string = id;
	mt_enc_string(e, id, s, n);
	return id;
}

size_t mt_meta_take(uint8_t **buf, size_t *cap)
{
	mt_meta_lock();
	size_t len = meta.enc.len;
	if (len) {
		uint8_t *mine = *buf;
		size_t mine_cap = *cap;
		*buf = meta.enc.buf;
		*cap = meta.cap;
		meta.enc.buf = mine;
		meta.cap = mine_cap;
		meta.enc.len = 0;
	}
	mt_meta_unlock();
	return len;
}

void mt_meta_fork_child(void)
{
	meta.lock = 0;
	meta.enc.len = 0;
	mt_idmap_clear(&meta.strings);
	meta.next_string = 0;
}

EXPORT void memtrace_mark(const char *label)
{
	if (!label || !__atomic_load_n(&mt_active, __ATOMIC_RELAXED))
		return;
	struct mt_ring *saved = mt_internal_enter();
	mt_meta_lock();
	uint64_t id = mt_meta_string(label, strlen(label));
	mt_meta_unlock();
	mt_internal_leave(saved);
	if (id)
		mt_meta_mark(id);
}

/* The mark and, when samples are on, what the OS sees at it (sampler.h). */
void mt_meta_mark(uint64_t id)
{
	mt_sampler_mark(id);
}
