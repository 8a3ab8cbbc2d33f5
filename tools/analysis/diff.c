/*
 * diff.c - the comparison of two reports (diff.h) as one JSON object.
 */
#define _GNU_SOURCE /* asprintf, qsort_r */
#include "diff.h"

#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "stacks.h"

static const char *const metric_names[MT_M_COUNT] = { "peak", "allocs", "bytes", "leaked" };

bool mt_limit_parse(const char *s, struct mt_limit *l)
{
	const char *colon = strchr(s, ':');
	if (!colon)
		return false;
	*l = (struct mt_limit){ .metric = MT_M_COUNT, .text = s };
	for (int m = 0; m < MT_M_COUNT; m++)
		if ((size_t)(colon - s) == strlen(metric_names[m]) &&
		    !strncmp(s, metric_names[m], (size_t)(colon - s)))
			l->metric = (enum mt_metric)m;
	const char *v = colon + 1 + (colon[1] == '+');
	size_t n = strlen(v);
	if (l->metric == MT_M_COUNT || !n)
		return false;
	if (v[n - 1] == '%') {
		char *end, num[64];
		if (n > sizeof num)
			return false;
		memcpy(num, v, n - 1);
		num[n - 1] = 0;
		l->percent = true;
		l->value = strtod(num, &end);
		return *num && !*end && isfinite(l->value) && l->value >= 0 && *num != '-';
	}
	uint64_t b;
	if (!mt_bytes_parse(v, &b))
		return false;
	l->value = (double)b;
	return true;
}

/* ---- sites, keyed so that two runs match ------------------------------------ */

enum { V_ALLOCS, V_BYTES, V_PEAK, V_LEAKED, V_TEMP, NV };
static const char *const value_keys[NV] = { "allocs", "bytes", "peak_bytes", "leaked_bytes",
					    "temporary_allocs" };

struct dsite {
	char *key;
	const char *file, *function;
	uint64_t line;
	int dom;
	uint64_t v[NV];
};

struct dsites {
	struct dsite *v;
	size_t n;
	struct mt_rows rows; /* the strings live in the report and the rows */
};

static int cmp_key(const void *a, const void *b)
{
	return strcmp(((const struct dsite *)a)->key, ((const struct dsite *)b)->key);
}

/* The key of a row: its place as the grouping sees it, but a native
 * frame by its function's name (or file, by file), never by address. */
static char *row_key(const struct mt_report *rep, const struct mt_site *s, struct dsite *d)
{
	struct mt_mframe nf;
	bool native = s->stack && mt_native_where(rep, s, &nf);
	char *key = NULL;
	mt_row_where(rep, s, &d->file, &d->function, &d->line);
	d->dom = s->dom;
	if (native && rep->view.by != MT_GROUP_FILE)
		return asprintf(&key, "%d\037native\037%s", s->dom, d->function) < 0 ? NULL : key;
	if (native) /* by file: the source file, or the object */
		return asprintf(&key, "%d\037native\037%s", s->dom, d->file) < 0 ? NULL : key;
	return asprintf(&key, "%d\037%s\037%s\037%" PRIu64, s->dom, d->file, d->function,
			d->line) < 0
		       ? NULL
		       : key;
}

static void dsites_free(struct dsites *d)
{
	for (size_t i = 0; i < d->n; i++)
		free(d->v[i].key);
	free(d->v);
	mt_rows_free(&d->rows);
}

/* The report's sites, sorted by key, equal keys summed. */
static int collect(const struct mt_report *rep, struct dsites *d)
{
	memset(d, 0, sizeof *d);
	if (mt_site_rows(rep, MT_SORT_BYTES, true, SIZE_MAX, &d->rows))
		return -1;
	d->v = calloc(d->rows.n ? d->rows.n : 1, sizeof *d->v);
	if (!d->v)
		return -1;
	for (size_t i = 0; i < d->rows.n; i++) {
		const struct mt_site *s = &d->rows.v[i];
		struct dsite *e = &d->v[d->n];
		if (!(e->key = row_key(rep, s, e)))
			return -1;
		d->n++;
		const uint64_t v[NV] = { s->allocs, s->bytes, s->peak_bytes, s->live_bytes,
					 s->temp_allocs };
		memcpy(e->v, v, sizeof v);
	}
	qsort(d->v, d->n, sizeof *d->v, cmp_key);
	size_t n = 0;
	for (size_t i = 0; i < d->n; i++) {
		if (n && !strcmp(d->v[n - 1].key, d->v[i].key)) {
			for (int k = 0; k < NV; k++)
				d->v[n - 1].v[k] += d->v[i].v[k];
			free(d->v[i].key);
			continue;
		}
		d->v[n++] = d->v[i];
	}
	d->n = n;
	return 0;
}

/* ---- JSON ------------------------------------------------------------------- */

static json_t *num(uint64_t v)
{
	return json_integer(v > INT64_MAX ? INT64_MAX : (json_int_t)v);
}

static int64_t delta_of(uint64_t b, uint64_t n)
{
	return n >= b ? (int64_t)(n - b > INT64_MAX ? INT64_MAX : n - b)
		      : -(int64_t)(b - n > INT64_MAX ? INT64_MAX : b - n);
}

/* {"base", "new", "delta"} */
static json_t *change(uint64_t b, uint64_t n)
{
	json_t *o = json_object();
	json_object_set_new(o, "base", num(b));
	json_object_set_new(o, "new", num(n));
	json_object_set_new(o, "delta", json_integer(delta_of(b, n)));
	return o;
}

static json_t *jstr(const char *s)
{
	json_t *j = s ? json_string(s) : NULL;
	return j ? j : json_null();
}

struct dentry {
	const struct dsite *where; /* NEW's place if it has it, else BASE's */
	uint64_t b[NV], n[NV];
};

static uint64_t abs_delta(const struct dentry *e, int k)
{
	return e->n[k] > e->b[k] ? e->n[k] - e->b[k] : e->b[k] - e->n[k];
}

/* The largest change of the byte figures first, then of allocations. */
static int cmp_change(const void *a, const void *b)
{
	const struct dentry *x = a, *y = b;
	uint64_t kx = 0, ky = 0;
	for (int k = V_BYTES; k <= V_LEAKED; k++) {
		kx = abs_delta(x, k) > kx ? abs_delta(x, k) : kx;
		ky = abs_delta(y, k) > ky ? abs_delta(y, k) : ky;
	}
	if (kx != ky)
		return kx < ky ? 1 : -1;
	if (abs_delta(x, V_ALLOCS) != abs_delta(y, V_ALLOCS))
		return abs_delta(x, V_ALLOCS) < abs_delta(y, V_ALLOCS) ? 1 : -1;
	return strcmp(x->where->key, y->where->key);
}

static json_t *sites_json(const struct dsites *b, const struct dsites *n, bool *changed)
{
	struct dentry *e = calloc(b->n + n->n + 1, sizeof *e);
	size_t ne = 0, i = 0, j = 0;
	json_t *a = json_array();
	if (!e)
		return a;
	while (i < b->n || j < n->n) {
		int c = i == b->n ? 1 : j == n->n ? -1 : strcmp(b->v[i].key, n->v[j].key);
		struct dentry d = { 0 };
		if (c <= 0)
			memcpy(d.b, b->v[i].v, sizeof d.b);
		if (c >= 0)
			memcpy(d.n, n->v[j].v, sizeof d.n);
		d.where = c >= 0 ? &n->v[j] : &b->v[i];
		i += c <= 0;
		j += c >= 0;
		if (memcmp(d.b, d.n, sizeof d.b))
			e[ne++] = d;
	}
	qsort(e, ne, sizeof *e, cmp_change);
	for (size_t k = 0; k < ne; k++) {
		json_t *o = json_object();
		json_object_set_new(o, "file", jstr(e[k].where->file));
		json_object_set_new(o, "line", num(e[k].where->line));
		json_object_set_new(o, "function", jstr(e[k].where->function));
		json_object_set_new(o, "domain", json_string(mt_domain_name(e[k].where->dom)));
		for (int v = 0; v < NV; v++)
			json_object_set_new(o, value_keys[v], change(e[k].b[v], e[k].n[v]));
		json_array_append_new(a, o);
	}
	*changed |= ne > 0;
	free(e);
	return a;
}

/* ---- the rest -------------------------------------------------------------- */

/* An object of changes from two arrays of figures; *changed notes any. */
static json_t *changes(const char *const *keys, const uint64_t *b, const uint64_t *n, int count,
		       bool *changed)
{
	json_t *o = json_object();
	for (int k = 0; k < count; k++) {
		json_object_set_new(o, keys[k], change(b[k], n[k]));
		*changed |= b[k] != n[k];
	}
	return o;
}

static json_t *domains_json(const struct mt_report *b, const struct mt_report *n, bool *changed)
{
	static const char *const keys[] = { "allocs",     "frees",
					    "reallocs",   "failed",
					    "bytes_allocated", "peak_bytes",
					    "live_bytes_at_exit", "live_blocks_at_exit" };
	json_t *o = json_object();
	for (int d = 0; d < MT_DOM_COUNT; d++) {
		const struct mt_dom_stats *x = &b->dom[d], *y = &n->dom[d];
		const uint64_t bv[] = { x->allocs,          x->frees,      x->reallocs,
					x->failed,          x->bytes_allocated, x->peak_bytes,
					x->live_bytes,      x->live_blocks };
		const uint64_t nv[] = { y->allocs,          y->frees,      y->reallocs,
					y->failed,          y->bytes_allocated, y->peak_bytes,
					y->live_bytes,      y->live_blocks };
		bool dc = false;
		json_t *e = changes(keys, bv, nv, 8, &dc);
		if (dc)
			json_object_set_new(o, mt_domain_name(d), e);
		else
			json_decref(e);
		*changed |= dc;
	}
	return o;
}

static json_t *classes_json(const struct mt_report *b, const struct mt_report *n, bool *changed)
{
	static const char *const keys[] = { "allocs", "live_objects_peak", "pools_peak",
					    "live_objects_at_exit", "pools_at_exit" };
	json_t *a = json_array();
	for (int c = 0; c < MT_SIZE_CLASSES; c++) {
		const struct mt_size_class *x = &b->pools.classes[c], *y = &n->pools.classes[c];
		const uint64_t bv[] = { x->allocs, x->live_objects_peak, x->pools_peak,
					x->live_objects, x->pools };
		const uint64_t nv[] = { y->allocs, y->live_objects_peak, y->pools_peak,
					y->live_objects, y->pools };
		if (!memcmp(bv, nv, sizeof bv))
			continue;
		bool unused = false;
		json_t *e = changes(keys, bv, nv, 5, &unused);
		json_object_set_new(e, "size", num(16u * (unsigned)(c + 1)));
		json_array_append_new(a, e);
		*changed = true;
	}
	return a;
}

static json_t *arenas_json(const struct mt_pools *b, const struct mt_pools *n, bool *changed)
{
	static const char *const keys[] = { "allocated", "freed", "peak", "live_at_exit",
					    "pools_peak", "pools_at_exit" };
	const uint64_t bv[] = { b->arenas_allocated, b->arenas_freed, b->arenas_peak,
				b->arenas_live,      b->pools_peak,   b->pools_in_use };
	const uint64_t nv[] = { n->arenas_allocated, n->arenas_freed, n->arenas_peak,
				n->arenas_live,      n->pools_peak,   n->pools_in_use };
	return changes(keys, bv, nv, 6, changed);
}

/* Totals: the heap and the sites' sums, which the limits compare. */
enum { T_PEAK, T_LIVE, T_ALLOCS, T_BYTES, T_LEAKED, T_TEMP, NT };
static const char *const total_keys[NT] = { "heap_peak", "live_at_exit", "allocs",
					    "bytes",     "leaked",       "temporary_allocs" };

static void totals(const struct mt_report *rep, uint64_t *t)
{
	memset(t, 0, NT * sizeof *t);
	t[T_PEAK] = rep->heap.peak;
	t[T_LIVE] = rep->heap.live;
	for (size_t i = 0; i < rep->nsites; i++) {
		t[T_ALLOCS] += rep->sites[i].allocs;
		t[T_BYTES] += rep->sites[i].bytes;
		t[T_LEAKED] += rep->sites[i].live_bytes;
		t[T_TEMP] += rep->sites[i].temp_allocs;
	}
}

static json_t *limits_json(const uint64_t *tb, const uint64_t *tn, const struct mt_limit *limits,
			   size_t n)
{
	static const int total_of[MT_M_COUNT] = { T_PEAK, T_ALLOCS, T_BYTES, T_LEAKED };
	json_t *a = json_array();
	for (size_t i = 0; i < n; i++) {
		const struct mt_limit *l = &limits[i];
		uint64_t b = tb[total_of[l->metric]], v = tn[total_of[l->metric]];
		double d = (double)delta_of(b, v);
		bool over = l->percent ? (b ? 100 * d / (double)b > l->value : v > 0) : d > l->value;
		json_t *o = json_object();
		json_object_set_new(o, "limit", jstr(l->text));
		json_object_set_new(o, "metric", json_string(metric_names[l->metric]));
		json_object_set_new(o, "base", num(b));
		json_object_set_new(o, "new", num(v));
		json_object_set_new(o, "delta", json_integer(delta_of(b, v)));
		json_object_set_new(o, "percent", b ? json_real(100 * d / (double)b) : json_null());
		json_object_set_new(o, "exceeded", json_boolean(over));
		json_array_append_new(a, o);
	}
	return a;
}

static json_t *side_json(const struct mt_report *rep, const char *name)
{
	json_t *o = json_object();
	const struct mt_process *p = &rep->process;
	json_object_set_new(o, "trace", jstr(name));
	json_object_set_new(o, "pid", p->have & MT_HAVE_PID ? num(p->pid) : json_null());
	json_t *exe = p->exe.p ? json_stringn((const char *)p->exe.p, p->exe.n) : NULL;
	json_object_set_new(o, "exe", exe ? exe : json_null());
	json_object_set_new(o, "events", num(rep->events.total));
	json_object_set_new(o, "duration_us", num(rep->trace.duration_us));
	return o;
}

json_t *mt_diff_json(const struct mt_report *base, const struct mt_report *new_,
		     const char *base_name, const char *new_name, const struct mt_limit *limits,
		     size_t nlimits)
{
	struct dsites b = { 0 }, n = { 0 };
	uint64_t tb[NT], tn[NT];
	bool changed = false;
	json_t *o = json_object();
	if (!o || collect(base, &b) || collect(new_, &n)) {
		json_decref(o);
		dsites_free(&b);
		dsites_free(&n);
		return NULL;
	}
	totals(base, tb);
	totals(new_, tn);
	json_object_set_new(o, "format", json_string("memtrace-diff"));
	json_object_set_new(o, "schema_version", json_integer(MT_DIFF_SCHEMA_VERSION));
	json_object_set_new(o, "base", side_json(base, base_name));
	json_object_set_new(o, "new", side_json(new_, new_name));
	json_object_set_new(o, "by", json_string(mt_group_name(new_->view.by)));
	json_object_set_new(o, "totals", changes(total_keys, tb, tn, NT, &changed));
	json_object_set_new(o, "sites", sites_json(&b, &n, &changed));
	json_object_set_new(o, "domains", domains_json(base, new_, &changed));
	json_object_set_new(o, "size_classes", classes_json(base, new_, &changed));
	json_object_set_new(o, "arenas", arenas_json(&base->pools, &new_->pools, &changed));
	json_object_set_new(o, "fail_on", limits_json(tb, tn, limits, nlimits));
	json_object_set_new(o, "identical", json_boolean(!changed));
	dsites_free(&b);
	dsites_free(&n);
	return o;
}

bool mt_diff_failed(const json_t *diff)
{
	const json_t *a = json_object_get(diff, "fail_on");
	for (size_t i = 0; i < json_array_size(a); i++)
		if (json_is_true(json_object_get(json_array_get(a, i), "exceeded")))
			return true;
	return false;
}
