/*
 * stacks.c - native stacks: see stacks.h for what they give.
 *
 * While the trace streams, this keeps the loaded objects (each NATIVE_FRAME
 * is tied to the object loaded at its address when it was defined, since
 * objects come and go) and the stack tree, each node with its identity
 * frame computed once from its parent's.  A thread's STACK picks its node;
 * its sites are then looked up per (node, Python location, domain).
 * Symbolization (symbolize.c) happens only for the outputs, for the frames
 * they show.
 */
#define _GNU_SOURCE /* qsort_r */
#include "stacks.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "analysis.h"
#include "codec.h"
#include "symbolize.h"

struct stacks_state {
	struct heapmap frame_ids;  /* trace NATIVE_FRAME id -> index */
	struct heapmap module_ids; /* trace MODULE id -> index */
	struct heapmap sitemap;    /* node << 34 | Python frame << 2 | domain -> site */
	size_t frames_cap, modules_cap;
	uint32_t last_module;      /* 1 + index of the object found last */
};

#define NODE_MAX (1u << 29) /* nodes beyond fall back to sites without a stack */

static struct stacks_state *state(struct ctx *c)
{
	if (c->stacks)
		return c->stacks;
	struct mt_report *rep = c->rep;
	struct stacks_state *st = calloc(1, sizeof *st);
	if (!st)
		return NULL;
	if (!rep->native)
		rep->native = calloc(1, sizeof *rep->native);
	if (!rep->native || hm_init(&st->frame_ids) | hm_init(&st->module_ids) |
				     hm_init(&st->sitemap) ||
	    mt_grow((void **)&rep->native->frames, &st->frames_cap, 1, sizeof(struct mt_nframe))) {
		hm_free(&st->frame_ids);
		hm_free(&st->module_ids);
		hm_free(&st->sitemap);
		free(st);
		return NULL;
	}
	rep->native->frames[0] = (struct mt_nframe){ 0 };
	rep->native->nframes = 1;
	c->stacks = st;
	return st;
}

void stacks_free(struct ctx *c)
{
	struct stacks_state *st = c->stacks;
	if (!st)
		return;
	hm_free(&st->frame_ids);
	hm_free(&st->module_ids);
	hm_free(&st->sitemap);
	free(st);
	c->stacks = NULL;
}

void mt_native_free(struct mt_native *n)
{
	if (!n)
		return;
	mt_sym_free(n->sym);
	free(n->modules);
	free(n->frames);
	free(n->paths);
	free(n);
}

/* ---- objects and the tree ------------------------------------------------- */

static bool starts(const char *s, const char *prefix)
{
	return !strncmp(s, prefix, strlen(prefix));
}

static int module_kind(const struct mt_report *rep, const char *path)
{
	const char *base = strrchr(path, '/');
	base = base ? base + 1 : path;
	static const char *const runtime[] = { "libc.so",      "libc-",       "ld-linux",
					       "ld64.so",      "libmemtrace", "libstdc++.so",
					       "libgcc_s.so",  "libpthread.so", "libunwind" };
	for (size_t i = 0; i < sizeof runtime / sizeof *runtime; i++)
		if (starts(base, runtime[i]))
			return MT_MOD_RUNTIME;
	if (starts(base, "libpython"))
		return MT_MOD_PYTHON;
	if (rep->process.have & MT_HAVE_PYTHON) {
		const struct mt_bytes *exe = &rep->process.exe;
		if ((exe->p && strlen(path) == exe->n && !memcmp(path, exe->p, exe->n)) ||
		    starts(base, "python"))
			return MT_MOD_PYTHON;
	}
	return MT_MOD_OTHER;
}

static uint32_t string_index(struct ctx *c, uint64_t id)
{
	uint64_t v;
	return id && hm_get(&c->strmap, id, &v) ? (uint32_t)v : 0;
}

static int on_module(struct ctx *c, struct stacks_state *st, const struct mt_rec *r)
{
	struct mt_native *n = c->rep->native;
	uint64_t unused;
	if (n->nmodules >= UINT16_MAX)
		return 0; /* symbolize.c caches per (object < 2^16, address) */
	if (mt_grow((void **)&n->modules, &st->modules_cap, n->nmodules + 1, sizeof *n->modules) ||
	    hm_put(&st->module_ids, r->value, n->nmodules, &unused) < 0)
		return -1;
	uint32_t path = string_index(c, r->ref1);
	n->modules[n->nmodules++] = (struct mt_module){
		.start = r->addr,
		.end = r->addr + r->size,
		.bias = r->old,
		.path = path,
		.build_id = string_index(c, r->ref2),
		.kind = module_kind(c->rep, mt_report_string(c->rep, path)),
	};
	return 0;
}

/* 1 + index of the loaded object holding ip, 0: none. */
static uint32_t module_of(struct mt_native *n, struct stacks_state *st, uint64_t ip)
{
	uint32_t k = st->last_module;
	if (k && !n->modules[k - 1].gone && ip >= n->modules[k - 1].start &&
	    ip < n->modules[k - 1].end)
		return k;
	/* the latest first: an object loaded where a gone one was */
	for (size_t i = n->nmodules; i-- > 0;) {
		const struct mt_module *m = &n->modules[i];
		if (!m->gone && ip >= m->start && ip < m->end)
			return st->last_module = (uint32_t)i + 1;
	}
	return 0;
}

static int on_frame(struct ctx *c, struct stacks_state *st, const struct mt_rec *r)
{
	struct mt_native *n = c->rep->native;
	uint64_t parent = 0, unused;
	if (n->nframes >= NODE_MAX)
		return 0;
	if (mt_grow((void **)&n->frames, &st->frames_cap, n->nframes + 1, sizeof *n->frames) ||
	    hm_put(&st->frame_ids, r->value, n->nframes, &unused) < 0)
		return -1;
	if (r->ref1 && (!hm_get(&st->frame_ids, r->ref1, &parent) || parent >= n->nframes))
		parent = 0;
	uint32_t idx = (uint32_t)n->nframes++;
	struct mt_nframe *f = &n->frames[idx];
	*f = (struct mt_nframe){ .ip = r->addr, .parent = (uint32_t)parent };
	f->module = module_of(n, st, r->addr);
	int kind = f->module ? n->modules[f->module - 1].kind : MT_MOD_OTHER;
	if (kind == MT_MOD_RUNTIME) {
		f->ident = n->frames[parent].ident;
		f->ident_py = n->frames[parent].ident_py;
	} else {
		f->ident = idx;
		f->ident_py = kind == MT_MOD_PYTHON;
	}
	return 0;
}

int stacks_record(struct ctx *c, const struct mt_rec *r)
{
	struct stacks_state *st = state(c);
	uint64_t v;
	if (!st)
		return -1;
	struct mt_native *n = c->rep->native;
	switch (r->kind) {
	case MT_REC_MODULE:
		return on_module(c, st, r);
	case MT_REC_MODULE_GONE:
		if (hm_get(&st->module_ids, r->value, &v) && v < n->nmodules)
			n->modules[v].gone = true;
		return 0;
	case MT_REC_NATIVE_FRAME:
		return on_frame(c, st, r);
	case MT_REC_STACK: {
		struct thread *t = cur_thread(c);
		uint32_t node = r->value && hm_get(&st->frame_ids, r->value, &v) ? (uint32_t)v : 0;
		if (node != t->stack) {
			t->stack = node;
			memset(t->site, 0xff, sizeof t->site);
		}
		return 0;
	}
	default:
		return 0;
	}
}

uint32_t stacks_site(struct ctx *c, struct thread *t, int dom)
{
	struct stacks_state *st = c->stacks;
	uint64_t v, frame = 0;
	if (!st)
		return NO_SITE;
	if (t->loc && hm_get(&c->framemap, t->loc, &v))
		frame = v;
	uint64_t key = (uint64_t)t->stack << 34 | frame << 2 | (uint64_t)dom;
	if (hm_get(&st->sitemap, key, &v))
		return (uint32_t)v;
	uint32_t s = sites_new(c, (uint32_t)frame, dom);
	if (s == NO_SITE)
		return NO_SITE;
	struct mt_site *site = &c->rep->sites[s];
	if (site->stack || site->frame != frame || site->dom != dom)
		return s; /* folded into the last site: too many of them */
	site->stack = t->stack;
	if (hm_put(&st->sitemap, key, s, &v) < 0)
		c->oom = true;
	return s;
}

/* ---- merging the sites by identity ---------------------------------------------- */

/* The node a site is known by, 0 when it is its Python location. */
static uint32_t ident_node(const struct mt_native *n, const struct mt_site *s)
{
	if (!s->stack || s->stack >= n->nframes)
		return 0;
	const struct mt_nframe *f = &n->frames[s->stack];
	if (f->ident && !(f->ident_py && s->frame))
		return f->ident;
	return f->ident_py && s->frame ? 0 : s->stack;
}

void stacks_finish(struct ctx *c)
{
	struct mt_report *rep = c->rep;
	struct mt_native *n = rep->native;
	if (!n || !rep->nsites || c->per_thread)
		return; /* MT_BUILD_PER_THREAD keeps every (stack, location, thread) */
	/* the flame graph keeps every path */
	n->paths = malloc(rep->nsites * sizeof *n->paths);
	uint32_t *map = malloc(rep->nsites * sizeof *map);
	uint64_t *best = malloc(rep->nsites * sizeof *best);
	struct heapmap groups, ips;
	if (!n->paths || !map || !best || hm_init(&groups) | hm_init(&ips)) {
		c->oom = true;
		goto out;
	}
	memcpy(n->paths, rep->sites, rep->nsites * sizeof *n->paths);
	n->npaths = rep->nsites;
	/* group i of the merged sites is at index i: groups are numbered in
	 * order of their first site, so merging in place never overwrites a
	 * site not seen yet */
	size_t ng = 0;
	for (size_t i = 0; i < rep->nsites; i++) {
		struct mt_site s = rep->sites[i];
		uint32_t id = ident_node(n, &s);
		uint64_t key, v, unused;
		if (!id) {
			key = (uint64_t)s.frame << 3 | (uint64_t)s.dom << 1;
		} else {
			const struct mt_nframe *f = &n->frames[id];
			uint64_t ipkey = f->ip ^ ((uint64_t)f->module << 48);
			if (!hm_get(&ips, ipkey, &v)) {
				v = hm_count(&ips);
				if (hm_put(&ips, ipkey, v, &unused) < 0) {
					c->oom = true;
					goto out;
				}
			}
			key = v << 3 | (uint64_t)s.dom << 1 | 1;
		}
		if (!hm_get(&groups, key, &v)) {
			v = ng++;
			if (hm_put(&groups, key, v, &unused) < 0) {
				c->oom = true;
				goto out;
			}
			rep->sites[v] = s;
			best[v] = s.bytes;
		} else {
			struct mt_site *g = &rep->sites[v];
			if (s.bytes > best[v]) {
				best[v] = s.bytes;
				g->stack = s.stack;
				g->frame = s.frame;
			}
			sites_sum(g, &s);
		}
		map[i] = (uint32_t)v;
	}
	rep->nsites = ng;
	sites_remap(c, map);
out:
	hm_free(&groups);
	hm_free(&ips);
	free(map);
	free(best);
}

/* ---- merged stacks --------------------------------------------------------------- */

static bool is_eval(const char *fn)
{
	static const char *const names[] = {
		"_PyEval_EvalFrame", "_PyEval_Vector",    "PyEval_EvalCode",
		"PyEval_EvalCodeEx", "_PyEval_EvalCode", "_PyEval_EvalCodeWithName",
		"PyEval_EvalFrame",  "PyEval_EvalFrameEx",
	};
	if (starts(fn, "_PyEval_EvalFrameDefault"))
		return true; /* and its .cold part */
	for (size_t i = 0; i < sizeof names / sizeof *names; i++)
		if (!strcmp(fn, names[i]))
			return true;
	return false;
}

static struct mt_symbolizer *symbolizer(const struct mt_report *rep)
{
	if (!rep->native->sym)
		rep->native->sym = mt_sym_new();
	return rep->native->sym;
}

/* The source frames of node idx, outermost first (see mt_sym_lookup). */
static size_t node_syms(const struct mt_report *rep, uint32_t idx, const struct mt_sym **out,
			const struct mt_module **module)
{
	const struct mt_native *n = rep->native;
	const struct mt_nframe *f = &n->frames[idx];
	struct mt_symbolizer *s = symbolizer(rep);
	const struct mt_module *m = f->module ? &n->modules[f->module - 1] : NULL;
	*module = m;
	if (!s)
		return 0;
	const char *path = m ? mt_report_string(rep, m->path) : NULL;
	const char *build = m && m->build_id ? mt_report_string(rep, m->build_id) : NULL;
	return mt_sym_lookup(s, f->module, path, m ? m->bias : 0, build, f->ip, out);
}

size_t mt_native_syms(const struct mt_report *rep, uint32_t node, const struct mt_sym **out,
		      const struct mt_module **module)
{
	*module = NULL;
	if (!rep->native || !node || node >= rep->native->nframes)
		return 0;
	return node_syms(rep, node, out, module);
}

/* The symbol table's name of node idx's function: enough to find the
 * evaluation loop, without the cost of DWARF. */
static const char *node_name_cheap(const struct mt_report *rep, uint32_t idx)
{
	const struct mt_native *n = rep->native;
	const struct mt_nframe *f = &n->frames[idx];
	struct mt_symbolizer *s = symbolizer(rep);
	const struct mt_module *m = f->module ? &n->modules[f->module - 1] : NULL;
	if (!s || !m)
		return "";
	const char *build = m->build_id ? mt_report_string(rep, m->build_id) : NULL;
	return mt_sym_name(s, f->module, mt_report_string(rep, m->path), m->bias, build, f->ip);
}

static const char *module_path(const struct mt_report *rep, const struct mt_module *m)
{
	return m ? mt_report_string(rep, m->path) : "";
}

/* The merged stack of (stack, frame) as nodes, outermost first, into *out
 * (malloc'd); trim: leave out the native frames under the Python frames.
 * Without native stacks, the Python frames. */
static size_t merged_nodes(const struct mt_report *rep, uint32_t stack, uint32_t frame, bool trim,
			   struct mt_snode **out)
{
	const struct mt_native *n = rep->native;
	size_t nn = 0, npy = 0, len = 0;
	uint32_t *nodes = NULL;
	struct mt_snode *v = NULL;
	*out = NULL;
	if (!n || stack >= n->nframes)
		stack = 0;
	for (uint32_t k = stack; k && nn < n->nframes; k = n->frames[k].parent)
		nn++;
	for (uint32_t k = frame; k && k < rep->nframes && npy < rep->nframes; k = rep->frames[k].parent)
		npy++;
	nodes = malloc((nn ? nn : 1) * sizeof *nodes);
	v = malloc((nn + npy ? nn + npy : 1) * sizeof *v);
	if (!nodes || !v) {
		free(nodes);
		free(v);
		return 0;
	}
	size_t i = nn;
	for (uint32_t k = stack; i > 0; k = n->frames[k].parent)
		nodes[--i] = k; /* outermost first */
	/* CPython's evaluation loop, from its outermost to its innermost
	 * frame, gives way to the Python frames; without one (a stack cut
	 * short, a thread that runs no Python) the native stack stays */
	size_t first = nn, last = 0;
	for (i = 0; npy && i < nn; i++)
		if (is_eval(node_name_cheap(rep, nodes[i]))) {
			first = first < i ? first : i;
			last = i;
		}
	if (first == nn) {
		if (nn)
			npy = 0;
		first = last = nn; /* no stack: the Python frames alone */
	} else {
		last++;
	}
	for (i = 0; i < first; i++)
		v[len++] = (struct mt_snode){ nodes[i], 0 };
	size_t k = len + npy;
	for (uint32_t f = frame; f && k > len; f = rep->frames[f].parent)
		v[--k] = (struct mt_snode){ 0, f };
	len += npy;
	for (i = last; i < nn && !(trim && npy); i++)
		v[len++] = (struct mt_snode){ nodes[i], 0 };
	free(nodes);
	*out = v;
	return len;
}

/* See mt_native_merged; trim as for merged_nodes. */
static size_t merged(const struct mt_report *rep, uint32_t stack, uint32_t frame, bool trim,
		     struct mt_mframe **out)
{
	struct mt_snode *nodes;
	size_t nn = merged_nodes(rep, stack, frame, trim, &nodes), len = 0, cap = 0;
	struct mt_mframe *v = NULL;
	*out = NULL;
	for (size_t i = 0; i < nn; i++) {
		const struct mt_sym *syms;
		const struct mt_module *m;
		size_t ns = nodes[i].python ? 1 : node_syms(rep, nodes[i].native, &syms, &m);
		if (mt_grow((void **)&v, &cap, len + ns + 1, sizeof *v)) {
			free(v);
			free(nodes);
			return 0;
		}
		if (nodes[i].python) {
			const struct mt_frame *pf = &rep->frames[nodes[i].python];
			v[len++] = (struct mt_mframe){ mt_report_string(rep, pf->function),
						       mt_report_string(rep, pf->file), NULL,
						       pf->line, true };
			continue;
		}
		for (size_t j = 0; j < ns; j++)
			v[len++] = (struct mt_mframe){ syms[j].function,
						       syms[j].file ? syms[j].file : "",
						       module_path(rep, m), syms[j].line, false };
	}
	free(nodes);
	*out = v;
	return len;
}

size_t mt_native_merged(const struct mt_report *rep, uint32_t stack, uint32_t frame,
			struct mt_mframe **out)
{
	return merged(rep, stack, frame, false, out);
}

/* Made by the interpreter for a Python line: its own frames under that
 * line would only split the line's figures into many nodes. */
static bool trimmed(const struct mt_native *n, uint32_t stack, uint32_t frame)
{
	struct mt_site as_site = { .frame = frame, .stack = stack };
	return n && stack && frame && !ident_node(n, &as_site);
}

size_t mt_flame_frames(const struct mt_report *rep, const struct mt_site *path,
		       struct mt_mframe **out)
{
	return merged(rep, path->stack, path->frame, trimmed(rep->native, path->stack, path->frame),
		      out);
}

size_t mt_site_stack(const struct mt_report *rep, const struct mt_site *s, struct mt_snode **out)
{
	return merged_nodes(rep, s->stack, s->frame, trimmed(rep->native, s->stack, s->frame), out);
}

bool mt_native_where(const struct mt_report *rep, const struct mt_site *s, struct mt_mframe *out)
{
	const struct mt_native *n = rep->native;
	if (!n || !s->stack)
		return false;
	uint32_t id = ident_node(n, s);
	if (!id)
		return false;
	const struct mt_sym *syms;
	const struct mt_module *m;
	size_t ns = node_syms(rep, id, &syms, &m);
	if (!ns)
		return false;
	const struct mt_sym *in = &syms[ns - 1];
	*out = (struct mt_mframe){ in->function, in->file ? in->file : "", module_path(rep, m),
				   in->line, false };
	return true;
}

/* ---- JSON ------------------------------------------------------------------- */

static json_t *str_or(const char *s)
{
	json_t *j = s ? json_string(s) : NULL;
	return j ? j : json_null();
}

static json_t *mframe_json(const struct mt_mframe *f)
{
	json_t *o = json_object();
	json_object_set_new(o, "file", str_or(f->file));
	json_object_set_new(o, "line", json_integer((json_int_t)(f->line & INT64_MAX)));
	json_object_set_new(o, "function", str_or(f->function));
	json_object_set_new(o, "module", f->python ? json_null() : str_or(f->module));
	return o;
}

json_t *mt_native_stack_json(const struct mt_report *rep, const struct mt_site *s)
{
	struct mt_mframe *v;
	size_t n = mt_native_merged(rep, s->stack, s->frame, &v);
	json_t *a = json_array();
	for (size_t i = 0; i < n; i++)
		json_array_append_new(a, mframe_json(&v[i]));
	free(v);
	return a;
}
