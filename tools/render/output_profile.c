/*
 * output_profile.c - the JSON report's "profile" key (docs/report-schema.md):
 * every site of a build with MT_BUILD_PER_THREAD and MT_BUILD_TIME_GRID,
 * one per (place, domain, thread), with its stack and its figures over
 * time.  It is what the HTML page sorts, groups, filters and cuts to a
 * time window in the browser, so it is laid out for size: strings, frames
 * and stacks are tables that the sites point into, and each table is a
 * set of columns.
 */
#define _GNU_SOURCE /* asprintf */
#include <stdlib.h>
#include <string.h>

#include "heapmap.h"
#include "output.h"
#include "stacks.h"

struct tables {
	const struct mt_report *rep;
	json_t *strings, *str_index;              /* string -> index */
	json_t *frames, *frame_index;             /* "fn\x1ffile\x1fline\x1fmodule" -> index */
	json_t *fn, *file, *line, *module;        /* the frames' columns */
	json_t *node_frame, *node_parent;         /* the stack tree's columns */
	struct heapmap nodes;                     /* (parent + 1) << 32 | frame -> node */
	struct heapmap pynodes;                   /* Python frame (mt_report.frames) -> node */
	bool oom;
};

static size_t string_id(struct tables *t, const char *s)
{
	json_t *v = json_object_get(t->str_index, s);
	if (v)
		return (size_t)json_integer_value(v);
	size_t id = json_array_size(t->strings);
	json_array_append_new(t->strings, mt_json_cstr(s));
	json_object_set_new(t->str_index, s, json_integer((json_int_t)id));
	return id;
}

static size_t frame_id(struct tables *t, const char *fn, const char *file, uint64_t line,
		       const char *module)
{
	char *key = NULL;
	if (asprintf(&key, "%s\x1f%s\x1f%llu\x1f%s", fn, file, (unsigned long long)line,
		     module ? module : "") < 0) {
		t->oom = true;
		return 0;
	}
	json_t *v = json_object_get(t->frame_index, key);
	size_t id;
	if (v) {
		id = (size_t)json_integer_value(v);
	} else {
		id = json_array_size(t->fn);
		json_array_append_new(t->fn, json_integer((json_int_t)string_id(t, fn)));
		json_array_append_new(t->file, json_integer((json_int_t)string_id(t, file)));
		json_array_append_new(t->line, mt_json_num(line));
		json_array_append_new(t->module, module ? json_integer((json_int_t)string_id(t, module))
							: json_integer(-1));
		json_object_set_new(t->frame_index, key, json_integer((json_int_t)id));
	}
	free(key);
	return id;
}

/* The node of frame under parent (-1: outermost). */
static long node_id(struct tables *t, long parent, size_t frame)
{
	uint64_t key = (uint64_t)(parent + 1) << 32 | (uint32_t)frame, v, unused;
	if (hm_get(&t->nodes, key, &v))
		return (long)v;
	v = json_array_size(t->node_frame);
	json_array_append_new(t->node_frame, json_integer((json_int_t)frame));
	json_array_append_new(t->node_parent, json_integer(parent));
	if (hm_put(&t->nodes, key, v, &unused) < 0)
		t->oom = true;
	return (long)v;
}

/* The innermost node of the site's stack, outermost first as in the
 * sites' "stack"; -1 when it has none. */
static long stack_node(struct tables *t, const struct mt_site *s)
{
	const struct mt_report *rep = t->rep;
	long node = -1;
	if (s->stack && rep->native) {
		struct mt_mframe *v;
		size_t n = mt_native_merged(rep, s->stack, s->frame, &v);
		for (size_t i = 0; i < n; i++)
			node = node_id(t, node, frame_id(t, v[i].function, v[i].file, v[i].line,
							 v[i].python ? NULL : v[i].module ? v[i].module : ""));
		free(v);
		return node;
	}
	/* A Python frame is a whole stack already: the frames out to one whose
	 * node is known are made, outermost first. */
	uint64_t v, unused;
	size_t depth = 0;
	uint32_t f = s->frame;
	for (; f && depth < rep->nframes && !hm_get(&t->pynodes, f, &v); f = rep->frames[f].parent)
		depth++;
	node = f && depth < rep->nframes ? (long)v : -1;
	uint32_t *chain = depth ? malloc(depth * sizeof *chain) : NULL;
	if (depth && !chain) {
		t->oom = true;
		return -1;
	}
	size_t i = depth;
	for (f = s->frame; i > 0; f = rep->frames[f].parent)
		chain[--i] = f;
	for (i = 0; i < depth; i++) {
		const struct mt_frame *fr = &rep->frames[chain[i]];
		node = node_id(t, node, frame_id(t, mt_report_string(rep, fr->function),
						 mt_report_string(rep, fr->file), fr->line, NULL));
		if (hm_put(&t->pynodes, chain[i], (uint64_t)node, &unused) < 0)
			t->oom = true;
	}
	free(chain);
	return node;
}

static const char *const site_columns[] = {
	"where", "node", "domain", "thread", "allocs", "bytes", "peak_bytes", "peak_blocks",
	"live_bytes_at_exit", "live_blocks_at_exit", "temporary_allocs", "temporary_bytes",
	"cells",
};
#define NCOLS (sizeof site_columns / sizeof *site_columns)

static const char *const cell_columns[] = {
	"bucket", "allocs", "bytes", "live_bytes", "temporary_allocs", "temporary_bytes",
};
#define NCELL (sizeof cell_columns / sizeof *cell_columns)

/* The site's cells onto the cells' columns, each as its difference from
 * the one before (the first from zero): small numbers, a third of the
 * size.  One table of every site's cells, not an array per site: a page
 * of 100,000 sites reads a few long arrays. */
static void cells_json(json_t **cell, const struct mt_site_times *st)
{
	struct mt_tcell prev = { 0 };
	for (uint32_t k = 0; st && k < st->n; k++) {
		const struct mt_tcell *c = &st->cells[k];
		uint64_t v[NCELL] = { c->bucket - prev.bucket, c->allocs - prev.allocs,
				      c->bytes - prev.bytes, c->live_bytes - prev.live_bytes,
				      c->temp_allocs - prev.temp_allocs,
				      c->temp_bytes - prev.temp_bytes };
		for (size_t i = 0; i < NCELL; i++)
			json_array_append_new(cell[i], json_integer((json_int_t)v[i]));
		prev = *c;
	}
}

static void site_row(struct tables *t, json_t **col, json_t **cell, json_t *threads,
		     json_t *tids, size_t i)
{
	const struct mt_report *rep = t->rep;
	const struct mt_site *s = &rep->sites[i];
	char tid[24];
	snprintf(tid, sizeof tid, "%llu", (unsigned long long)s->tid);
	json_t *ti = json_object_get(tids, tid);
	if (!ti) {
		ti = json_integer((json_int_t)json_array_size(threads));
		json_object_set_new(tids, tid, ti);
		json_array_append_new(threads, mt_json_num(s->tid));
	}
	const struct mt_site_times *st = rep->grid.sites ? &rep->grid.sites[i] : NULL;
	uint64_t v[NCOLS] = {
		0, 0, (uint64_t)s->dom, (uint64_t)json_integer_value(ti), s->allocs, s->bytes,
		s->peak_bytes, s->peak_blocks, s->live_bytes, s->live_blocks, s->temp_allocs,
		s->temp_bytes, st ? st->n : 0,
	};
	json_array_append_new(col[0], json_integer((json_int_t)frame_id(
					      t, mt_site_function(rep, s), mt_site_file(rep, s),
					      mt_site_line(rep, s), NULL)));
	json_array_append_new(col[1], json_integer(stack_node(t, s)));
	for (size_t k = 2; k < NCOLS; k++)
		json_array_append_new(col[k], mt_json_num(v[k]));
	cells_json(cell, st);
}

static json_t *columns(const char *const *names, json_t *const *cols, size_t n)
{
	json_t *o = json_object();
	for (size_t i = 0; i < n; i++)
		json_object_set(o, names[i], cols[i]);
	return o;
}

json_t *mt_profile_json(const struct mt_report *rep)
{
	struct tables t = { .rep = rep };
	json_t *col[NCOLS], *cell[NCELL], *threads = json_array(), *tids = json_object();
	for (size_t k = 0; k < NCOLS; k++)
		col[k] = json_array();
	for (size_t k = 0; k < NCELL; k++)
		cell[k] = json_array();
	t.strings = json_array();
	t.str_index = json_object();
	t.frame_index = json_object();
	t.fn = json_array();
	t.file = json_array();
	t.line = json_array();
	t.module = json_array();
	t.node_frame = json_array();
	t.node_parent = json_array();
	if (hm_init(&t.nodes) | hm_init(&t.pynodes))
		t.oom = true;
	for (size_t i = 0; !t.oom && i < rep->nsites; i++) {
		const struct mt_site *s = &rep->sites[i];
		if (s->allocs || s->live_blocks || s->peak_blocks)
			site_row(&t, col, cell, threads, tids, i);
	}
	hm_free(&t.nodes);
	hm_free(&t.pynodes);
	json_t *o = json_object(), *grid = json_object();
	json_object_set_new(grid, "from_us", mt_json_num(rep->grid.from_us));
	json_object_set_new(grid, "bucket_us", mt_json_num(rep->grid.bucket_us));
	json_object_set_new(grid, "buckets", mt_json_num(rep->grid.nbuckets));
	json_object_set_new(o, "grid", grid);
	json_object_set_new(o, "strings", t.strings);
	json_t *fcols[] = { t.fn, t.file, t.line, t.module };
	static const char *const fnames[] = { "function", "file", "line", "module" };
	json_object_set_new(o, "frames", columns(fnames, fcols, 4));
	json_t *ncols[] = { t.node_frame, t.node_parent };
	static const char *const nnames[] = { "frame", "parent" };
	json_object_set_new(o, "nodes", columns(nnames, ncols, 2));
	json_object_set_new(o, "threads", threads);
	json_object_set_new(o, "sites", columns(site_columns, col, NCOLS));
	json_object_set_new(o, "cells", columns(cell_columns, cell, NCELL));
	for (size_t k = 0; k < NCOLS; k++)
		json_decref(col[k]);
	for (size_t k = 0; k < NCELL; k++)
		json_decref(cell[k]);
	json_decref(t.fn);
	json_decref(t.file);
	json_decref(t.line);
	json_decref(t.module);
	json_decref(t.node_frame);
	json_decref(t.node_parent);
	json_decref(t.str_index);
	json_decref(t.frame_index);
	json_decref(tids);
	if (t.oom) {
		json_decref(o);
		return NULL;
	}
	return o;
}
