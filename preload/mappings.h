/*
 * mappings.h - the program's own mmap, mmap64, munmap and mremap, recorded
 * as the mmap domain (mappings.c).
 */
#ifndef MEMTRACE_MAPPINGS_H
#define MEMTRACE_MAPPINGS_H

/*
 * An allocator whose mappings are recorded otherwise (CPython's arena
 * allocator: ARENA_ALLOC and ARENA_FREE) brackets its calls with these, so
 * that the mappings it makes are not counted twice.  They mark the calling
 * thread only; mt_mappings_hide returns what mt_mappings_show needs.
 */
int mt_mappings_hide(void);
void mt_mappings_show(int slot);

/* At start-up: in a CPython process, the calls the interpreter's own code
 * makes are its allocators' (pymalloc's arenas, mimalloc's reservations
 * in free-threaded and PYTHONMALLOC=mimalloc builds), not the program's
 * mappings. */
void mt_mappings_start(void);

#endif
