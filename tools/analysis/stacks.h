/*
 * stacks.h - native stacks (MEMTRACE_NATIVE=1 traces): the loaded objects
 * and the stack tree of the trace (MODULE, MODULE_GONE, NATIVE_FRAME and
 * STACK records), the allocation sites they give, and the merged stacks
 * (native frames with the Python frames in place of CPython's evaluation
 * loop) that the sites and the flame graph show.
 *
 * Site identity.  While the trace is read, a site is made per (native
 * stack, Python location, domain); when the trace is done they are merged
 * by identity:
 *   - the innermost frame of the stack that is not in a runtime object
 *     (libc, the dynamic loader, libmemtrace, libstdc++, libgcc) nor in
 *     CPython (the python executable, libpython): its return address;
 *   - when that walk reaches a CPython frame first (the interpreter made
 *     the allocation) and the allocation has a Python location: the
 *     Python location, as in a trace without native stacks;
 *   - else the innermost frame that is not in a runtime object, or the
 *     innermost frame.
 * A merged site shows the stack of its path that allocated the most
 * bytes; the flame graph keeps every path.
 */
#ifndef MEMTRACE_STACKS_H
#define MEMTRACE_STACKS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "report.h"

enum mt_module_kind {
	MT_MOD_OTHER = 0,   /* the program, its libraries, C extensions */
	MT_MOD_RUNTIME = 1, /* libc, ld.so, libmemtrace, libstdc++, libgcc_s */
	MT_MOD_PYTHON = 2,  /* the python executable, libpython */
};

struct mt_module {
	uint64_t start, end, bias;
	uint32_t path, build_id; /* indexes into mt_report.strings; 0: none */
	int kind;                /* enum mt_module_kind */
	bool gone;
};

/* A node of the native stack tree; [0] is unused. */
struct mt_nframe {
	uint64_t ip;      /* a return address */
	uint32_t parent;  /* the caller's node, 0: outermost */
	uint32_t module;  /* 1 + index into modules; 0: in no known object */
	uint32_t ident;   /* innermost node from here out not in a runtime object */
	bool ident_py;    /* ... and it is a CPython frame */
};

struct mt_symbolizer;

struct mt_native {
	struct mt_module *modules;
	size_t nmodules;
	struct mt_nframe *frames;
	size_t nframes;
	/* the sites per (stack, Python location) before they were merged by
	 * identity: the flame graph's paths */
	struct mt_site *paths;
	size_t npaths;
	struct mt_symbolizer *sym;     /* made on first use */
};

/* One frame of a merged stack.  Strings are never NULL except module
 * (NULL for a Python frame); file is "" when unknown. */
struct mt_mframe {
	const char *function, *file, *module;
	uint64_t line;
	bool python;
};

/* The merged stack of a native stack node and a Python frame (either may
 * be 0), outermost first, into *out (malloc'd; free it).  Returns the
 * count; 0 with *out NULL when empty or out of memory. */
size_t mt_native_merged(const struct mt_report *rep, uint32_t stack, uint32_t frame,
			struct mt_mframe **out);

/* One frame of a site's stack, for the exports: a native stack node (an
 * index into mt_native.frames) or a Python frame (into mt_report.frames);
 * exactly one of them is nonzero. */
struct mt_snode {
	uint32_t native, python;
};

/* The stack the flame graph shows for a site, outermost first, into *out
 * (malloc'd; free it): its merged stack, without the interpreter's own
 * frames under the Python line when the site is that line (see above);
 * without native stacks, its Python frames.  Returns the count; 0 with
 * *out NULL when empty or out of memory. */
size_t mt_site_stack(const struct mt_report *rep, const struct mt_site *s, struct mt_snode **out);

/* The source frames of a native stack node, outermost first (see
 * mt_sym_lookup in symbolize.h), and the object it is in (NULL: none).
 * Returns the count; 0 when there are none. */
struct mt_sym;
size_t mt_native_syms(const struct mt_report *rep, uint32_t node, const struct mt_sym **out,
		      const struct mt_module **module);

/* The identity frame of a site with a native stack (see above); false
 * when the site is a Python location or has no native stack. */
bool mt_native_where(const struct mt_report *rep, const struct mt_site *s, struct mt_mframe *out);

void mt_native_free(struct mt_native *n);

/* The stack of a flame graph path (a site before the merge by identity,
 * or any site without a native stack), as mt_native_merged gives it but
 * without the interpreter's frames under a Python line when the
 * interpreter made the allocation. */
size_t mt_flame_frames(const struct mt_report *rep, const struct mt_site *path,
		       struct mt_mframe **out);

/* JSON (jansson json_t *) of a site's merged stack. */
struct json_t;
struct json_t *mt_native_stack_json(const struct mt_report *rep, const struct mt_site *s);

/* ---- for the report builder (analysis.h) ---------------------------------- */

struct ctx;
struct thread;
/* MODULE, MODULE_GONE, NATIVE_FRAME, STACK; -1 when out of memory. */
struct mt_rec;
int stacks_record(struct ctx *c, const struct mt_rec *r);
/* The site of a new block of dom in thread t, which has a stack. */
uint32_t stacks_site(struct ctx *c, struct thread *t, int dom);
/* Merges the sites by identity (after sites_finish). */
void stacks_finish(struct ctx *c);
void stacks_free(struct ctx *c);
/* sites.c: a new site (NO_SITE when none can be made). */
uint32_t sites_new(struct ctx *c, uint32_t frame, int dom);

#endif
