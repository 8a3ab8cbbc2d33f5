/*
 * flame.c - the flame graph: the stacks of every allocation site in one
 * tree, a node per place (function, file, line, object) under its parent,
 * each with the figure the view counts (bytes allocated unless
 * --folded-value says otherwise: allocations, bytes at the peak, bytes
 * leaked, temporary allocations).  Callers are above their callees; with
 * --inverted the innermost frames are at the root and their callers below
 * them.  Its JSON is the report's "flame"; the folded output and the HTML
 * page draw from it.
 *
 * A site's stack is its merged stack (stacks.h), or its Python frames; a
 * site without either is "<native>".  With native stacks, the paths are
 * the sites as they were before the merge by identity, so that every
 * stack keeps its own node.
 */
#define _GNU_SOURCE /* asprintf */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "grow.h"
#include "heapmap.h"
#include "output.h"
#include "stacks.h"

struct fnode {
	struct mt_mframe f;
	uint64_t value;
	uint32_t child, next;
};

struct flame {
	struct fnode *v;
	size_t n, cap;
	struct heapmap index; /* hash of (parent, place) -> node */
};

static bool same_place(const struct mt_mframe *a, const struct mt_mframe *b)
{
	return a->line == b->line && a->python == b->python && !strcmp(a->function, b->function) &&
	       !strcmp(a->file, b->file) &&
	       (a->module == b->module || (a->module && b->module && !strcmp(a->module, b->module)));
}

static uint64_t hash_str(uint64_t h, const char *s)
{
	for (; s && *s; s++)
		h = (h ^ (uint8_t)*s) * 0x100000001b3ull;
	return (h ^ 0xff) * 0x100000001b3ull;
}

static uint64_t place_hash(uint32_t parent, const struct mt_mframe *f)
{
	uint64_t h = 0xcbf29ce484222325ull ^ parent;
	h = hash_str(h, f->function);
	h = hash_str(h, f->file);
	h = hash_str(h, f->module);
	h = (h ^ f->line ^ (uint64_t)f->python << 63) * 0x100000001b3ull;
	return h ? h : 1;
}

/* The child of parent at place f, made if new; 0 when out of memory. */
static uint32_t child_of(struct flame *fl, uint32_t parent, const struct mt_mframe *f)
{
	uint64_t key = place_hash(parent, f), v, unused;
	bool indexed = hm_get(&fl->index, key, &v);
	if (indexed && same_place(&fl->v[v].f, f))
		return (uint32_t)v;
	/* a hash collision: the node, if any, is not the indexed one */
	for (uint32_t k = fl->v[parent].child; indexed && k; k = fl->v[k].next)
		if (same_place(&fl->v[k].f, f))
			return k;
	if (fl->n >= UINT32_MAX || mt_grow((void **)&fl->v, &fl->cap, fl->n + 1, sizeof *fl->v))
		return 0;
	uint32_t k = (uint32_t)fl->n++;
	fl->v[k] = (struct fnode){ *f, 0, 0, fl->v[parent].child };
	fl->v[parent].child = k;
	if (!indexed && hm_put(&fl->index, key, k, &unused) < 0)
		return 0;
	return k;
}

/* "function (file:line)", or "function (object)" for a native frame
 * without a source line. */
static char *node_name(const struct mt_mframe *f)
{
	char *name = NULL;
	int r;
	if (!f->python && !f->module) /* "<native>": no stack at all */
		return strdup(f->function);
	if (f->file[0]) {
		r = asprintf(&name, "%s (%s:%llu)", f->function, f->file, (unsigned long long)f->line);
	} else {
		const char *base = f->module ? strrchr(f->module, '/') : NULL;
		r = asprintf(&name, "%s (%s)", f->function,
			     base ? base + 1 : f->module && f->module[0] ? f->module : "?");
	}
	return r < 0 ? NULL : name;
}

struct named {
	char *name;
	uint32_t node;
};

static int cmp_named(const void *a, const void *b)
{
	return strcmp(((const struct named *)a)->name, ((const struct named *)b)->name);
}

#define FLAME_DEPTH 1024

static json_t *jstr(const char *s)
{
	json_t *j = s ? json_string(s) : NULL;
	return j ? j : json_null();
}

/* Node k as JSON, its children sorted by name. */
static json_t *node_json(struct flame *fl, uint32_t k, const char *name, unsigned depth)
{
	json_t *o = json_object(), *kids = json_array();
	json_object_set_new(o, "name", jstr(name));
	if (k)
		json_object_set_new(o, "function", jstr(fl->v[k].f.function));
	json_object_set_new(o, "value", json_integer((json_int_t)(fl->v[k].value & INT64_MAX)));
	size_t nk = 0;
	for (uint32_t c = fl->v[k].child; c; c = fl->v[c].next)
		nk++;
	struct named *v = nk && depth < FLAME_DEPTH ? calloc(nk, sizeof *v) : NULL;
	if (v) {
		size_t i = 0;
		bool ok = true;
		for (uint32_t c = fl->v[k].child; c; c = fl->v[c].next, i++) {
			v[i] = (struct named){ node_name(&fl->v[c].f), c };
			ok &= v[i].name != NULL;
		}
		if (ok) {
			qsort(v, nk, sizeof *v, cmp_named);
			for (i = 0; i < nk; i++)
				json_array_append_new(kids,
						      node_json(fl, v[i].node, v[i].name, depth + 1));
		}
		for (i = 0; i < nk; i++)
			free(v[i].name);
		free(v);
	}
	json_object_set_new(o, "children", kids);
	return o;
}

/* Adds one path's value along its stack. */
static void add_path(struct flame *fl, const struct mt_report *rep, const struct mt_site *p,
		     uint64_t value)
{
	static const struct mt_mframe native = { "<native>", "", NULL, 0, false };
	struct mt_mframe *v;
	size_t len = mt_flame_frames(rep, p, &v);
	uint32_t k = 0;
	fl->v[0].value += value;
	if (!len && (k = child_of(fl, 0, &native)))
		fl->v[k].value += value;
	for (size_t j = 0; j < len; j++) {
		const struct mt_mframe *f = &v[rep->view.inverted ? len - 1 - j : j];
		if (!(k = child_of(fl, k, f)))
			break;
		fl->v[k].value += value;
	}
	free(v);
}

json_t *mt_flame_json(const struct mt_report *rep)
{
	const struct mt_native *n = rep->native;
	const struct mt_site *paths = n ? n->paths : rep->sites;
	size_t npaths = n ? n->npaths : rep->nsites;
	struct flame fl = { 0 };
	if (hm_init(&fl.index) || mt_grow((void **)&fl.v, &fl.cap, 1, sizeof *fl.v)) {
		hm_free(&fl.index);
		free(fl.v);
		return json_null();
	}
	fl.v[0] = (struct fnode){ { "all", "", NULL, 0, false }, 0, 0, 0 };
	fl.n = 1;
	for (size_t i = 0; i < npaths; i++) {
		uint64_t value = mt_site_key(&paths[i], rep->view.flame_value);
		if (value)
			add_path(&fl, rep, &paths[i], value);
	}
	json_t *root = node_json(&fl, 0, "all", 0);
	hm_free(&fl.index);
	free(fl.v);
	return root;
}
