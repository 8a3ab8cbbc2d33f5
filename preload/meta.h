/*
 * meta.h - definitions (strings, code objects, Python stack nodes) that
 * events refer to by id.  Producers encode them into one shared buffer
 * under a lock before they publish the first event that uses them; the
 * writer takes the buffer after reading the ring heads, so a definition is
 * always written before its first use.
 */
#ifndef MEMTRACE_META_H
#define MEMTRACE_META_H

#include <stddef.h>
#include <stdint.h>

#include "codec.h"

/* Longest string kept in a definition; longer ones are cut. */
#define MT_META_STRING_MAX 4096

void mt_meta_lock(void);
void mt_meta_unlock(void);
/* Under the lock: an encoder with room for `need` more bytes, or NULL. */
struct mt_enc *mt_meta_room(size_t need);
/* Under the lock: the id of a string, defining it first if new; 0 when
 * out of memory. */
uint64_t mt_meta_string(const char *s, size_t n);

/* Writer: moves everything defined so far into *buf (swapping buffers) and
 * returns its length. */
size_t mt_meta_take(uint8_t **buf, size_t *cap);

/* Exported: a mark event with this label (see memtrace_mark in README). */
void memtrace_mark(const char *label);
/* A mark event whose label is string `id`. */
void mt_meta_mark(uint64_t id);

/* fork child: the child's trace must define everything again. */
void mt_meta_fork_child(void);

#endif
