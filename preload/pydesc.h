/*
 * pydesc.h - where the running CPython keeps what Python locations are
 * read from: the thread state's current frame, a frame's caller, code
 * object and instruction, a code object's names, first line and bytecode.
 *
 * CPython 3.13 describes this itself: _PyRuntime starts with
 * _Py_DebugOffsets (cookie "xdebugpy", the version, whether the build is
 * free-threaded, then the offset of every field a debugger needs), which
 * is checked and taken as it is.  3.11 has no such description; it is read
 * in the layout of the 3.11 headers this library is compiled against, and
 * only when the interpreter says it is 3.11.  Any other interpreter gets
 * no description: the shim then records no Python lines.
 */
#ifndef MEMTRACE_PYDESC_H
#define MEMTRACE_PYDESC_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

struct mt_pydesc {
	const char *source;  /* what the description comes from, for messages */
	int free_threaded;   /* a --disable-gil build: no pymalloc */
	void *(*tstate)(void); /* the calling thread's state, or NULL */
	/* thread state -> current frame: ts_hops offsets, each leading to a
	 * pointer (3.11 goes through the thread's C frame) */
	size_t ts_frame[2];
	int ts_hops;
	size_t f_previous, f_code, f_instr, f_owner;
	int owner_cstack;    /* owner of C-stack entry frames (skipped); -1: none */
	size_t co_filename, co_qualname, co_firstlineno, co_linetable, co_code;
	size_t ob_type, bytes_size;
	const void *code_type; /* PyCode_Type */
	int (*addr2line)(void *code, int byte_offset);
};

/* Fills *d for the interpreter of this version (PY_VERSION_HEX), looking
 * its symbols up with sym.  Returns 0, or -1 with *why saying why there is
 * no description. */
int mt_pydesc_load(struct mt_pydesc *d, void *(*sym)(const char *), unsigned long version,
		   const char **why);

/* A function telling whether tracemalloc traces (its hooks then wrap the
 * shim's), or NULL when this interpreter gives no way to know. */
typedef int (*mt_pydesc_probe)(void);
mt_pydesc_probe mt_pydesc_tracemalloc(void *(*sym)(const char *), unsigned long version);

/* The pointer, int or byte at an offset the description gives. */
static inline void *mt_pyd_ptr(const void *base, size_t off)
{
	void *p;
	memcpy(&p, (const char *)base + off, sizeof p);
	return p;
}

static inline int mt_pyd_int(const void *base, size_t off)
{
	int v;
	memcpy(&v, (const char *)base + off, sizeof v);
	return v;
}

static inline int64_t mt_pyd_ssize(const void *base, size_t off)
{
	int64_t v;
	memcpy(&v, (const char *)base + off, sizeof v);
	return v;
}

static inline int mt_pyd_byte(const void *base, size_t off)
{
	return ((const signed char *)base)[off];
}

#endif
