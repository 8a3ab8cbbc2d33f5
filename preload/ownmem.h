/*
 * ownmem.h - the tracer's own memory: its rings, buffers, tables and the
 * compressor's workspace, each in a mapping of its own, never in the C
 * allocator's heap.  The program's heap then has the layout, the figures
 * (mallinfo2, the brk heap) and the dynamic mmap threshold it has without
 * the tracer, and what the tracer holds can be told apart in a sample.
 */
#ifndef MEMTRACE_OWNMEM_H
#define MEMTRACE_OWNMEM_H

#include <stddef.h>
#include <stdint.h>

/* n bytes (rounded up to pages), zeroed; NULL when the kernel refuses. */
void *mt_own_map(size_t n);
void mt_own_unmap(void *p, size_t n);
/* Grows or shrinks a mapping from mt_own_map, keeping its contents; NULL
 * (and p untouched) when it cannot. */
void *mt_own_remap(void *p, size_t old, size_t n);

/* For callers that free without a size (zstd's custom allocator). */
void *mt_own_alloc(void *unused, size_t n);
void mt_own_free(void *unused, void *p);

/* Bytes mapped now, and how many of them are resident (one mincore per
 * mapping: the writer calls this at its own pace). */
uint64_t mt_own_mapped(void);
uint64_t mt_own_resident(void);
/* Resident bytes of any page-aligned range of this process. */
uint64_t mt_resident_bytes(uintptr_t addr, size_t len);

/* fork(): the registry's lock is held across it. */
void mt_own_fork_prepare(void);
void mt_own_fork_parent(void);
void mt_own_fork_child(void);

#endif
