/*
 * export_pprof.c - the pprof export (export.h): the report's samples as a
 * profile.proto message (profile.proto, turned into C by protoc-c),
 * packed by protobuf-c and gzipped by zlib while it is written.
 *
 * Values: alloc_objects, alloc_space, inuse_objects, inuse_space, so that
 * inuse_space, the last, is what pprof shows first.  Python frames are
 * functions with their file, each line of them a location with no object.
 * Native frames are locations at their return address minus one (inside
 * the call, where they were symbolized) in the mapping of their object
 * (path, build id, address range); a symbolized one has a line per
 * function, inlined functions first, the function they are inlined into
 * last.  An object whose locations are all symbolized says so
 * (has_functions ...), so that pprof keeps our symbols; pprof may look the
 * others up itself.  Each sample is labelled with its domain and thread.
 */
#include <inttypes.h>
#include <stdalign.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <protobuf-c/protobuf-c.h>
#include <zlib.h>

#include "export.h"
#include "grow.h"
#include "profile.pb-c.h"
#include "strtab.h"
#include "symbolize.h"

typedef Perftools__Profiles__Profile Profile;
typedef Perftools__Profiles__ValueType ValueType;
typedef Perftools__Profiles__Sample Sample;
typedef Perftools__Profiles__Label Label;
typedef Perftools__Profiles__Mapping Mapping;
typedef Perftools__Profiles__Location Location;
typedef Perftools__Profiles__Line Line;
typedef Perftools__Profiles__Function Function;

/* ---- memory for the messages: freed all at once ---------------------------- */

#define CHUNK (1u << 20)

struct chunk {
	struct chunk *next;
	size_t used, size;
	alignas(max_align_t) unsigned char data[];
};

struct arena {
	struct chunk *head;
};

static void *arena_alloc(struct arena *a, size_t n)
{
	n = (n + alignof(max_align_t) - 1) & ~(alignof(max_align_t) - 1);
	struct chunk *c = a->head;
	if (!c || c->size - c->used < n) {
		size_t size = n > CHUNK ? n : CHUNK;
		c = malloc(sizeof *c + size);
		if (!c)
			return NULL;
		*c = (struct chunk){ a->head, 0, size };
		a->head = c;
	}
	void *p = c->data + c->used;
	c->used += n;
	return p;
}

static void arena_free(struct arena *a)
{
	while (a->head) {
		struct chunk *next = a->head->next;
		free(a->head);
		a->head = next;
	}
}

/* A growing array of message pointers. */
struct list {
	void **v;
	size_t n, cap;
};

static int list_add(struct list *l, void *item)
{
	if (mt_grow((void **)&l->v, &l->cap, l->n + 1, sizeof *l->v))
		return -1;
	l->v[l->n++] = item;
	return 0;
}

/* ---- the profile under construction ------------------------------------------- */

struct pprof {
	const struct mt_report *rep;
	struct arena mem;
	struct mt_strtab strs;
	struct list samples, mappings, locations, functions;
	struct heapmap function_ids; /* name << 32 | file -> function id */
	struct heapmap python_locs;  /* function id << 32 | line -> location id */
	struct heapmap native_locs;  /* object << 48 ^ address -> location id */
	struct heapmap mapping_ids;  /* 1 + object index -> mapping id */
	struct heapmap labels;       /* key << 32 | value -> Label * */
	bool *symbolized;            /* [mapping id - 1]: every location so far */
	size_t symbolized_cap;
	bool oom;
};

static int64_t str(struct pprof *p, const char *s)
{
	uint32_t i = mt_strtab_add(&p->strs, s);
	if (i == UINT32_MAX) {
		p->oom = true;
		return 0;
	}
	return i;
}

#define NEW(p, type, init)                                        \
	({                                                        \
		type *m_ = arena_alloc(&(p)->mem, sizeof(type)); \
		if (m_)                                           \
			init(m_);                                 \
		else                                              \
			(p)->oom = true;                          \
		m_;                                               \
	})

static uint64_t function_id(struct pprof *p, const char *name, const char *file)
{
	int64_t n = str(p, name), f = str(p, file);
	uint64_t key = (uint64_t)n << 32 | (uint64_t)f, id, unused;
	if (hm_get(&p->function_ids, key, &id))
		return id;
	Function *fn = NEW(p, Function, perftools__profiles__function__init);
	if (!fn || list_add(&p->functions, fn) ||
	    hm_put(&p->function_ids, key, p->functions.n, &unused) < 0) {
		p->oom = true;
		return 0;
	}
	/* no system_name: pprof takes a name without one for demangled
	 * already, and would otherwise cut "<module>" as a C++ template */
	fn->id = p->functions.n;
	fn->name = n;
	fn->filename = f;
	return fn->id;
}

/* A location with n lines (filled by the caller) in mapping mapping_id. */
static Location *new_location(struct pprof *p, uint64_t mapping_id, uint64_t address, size_t n)
{
	Location *l = NEW(p, Location, perftools__profiles__location__init);
	Line **lines = n ? arena_alloc(&p->mem, n * sizeof *lines) : NULL;
	if (!l || (n && !lines) || list_add(&p->locations, l)) {
		p->oom = true;
		return NULL;
	}
	l->id = p->locations.n;
	l->mapping_id = mapping_id;
	l->address = address;
	l->n_line = n;
	l->line = lines;
	for (size_t i = 0; i < n; i++) {
		lines[i] = NEW(p, Line, perftools__profiles__line__init);
		if (!lines[i])
			return NULL;
	}
	return l;
}

/* A location of one line with no object: a Python line, or "<native>". */
static uint64_t line_location(struct pprof *p, const char *function, const char *file,
			      uint64_t line)
{
	uint64_t fid = function_id(p, function, file), key = fid << 32 | (line & 0xffffffff), id;
	uint64_t unused;
	if (hm_get(&p->python_locs, key, &id))
		return id;
	Location *l = new_location(p, 0, 0, 1);
	if (!l || hm_put(&p->python_locs, key, l->id, &unused) < 0) {
		p->oom = true;
		return 0;
	}
	l->line[0]->function_id = fid;
	l->line[0]->line = (int64_t)(line & INT64_MAX);
	return l->id;
}

static uint64_t mapping_id(struct pprof *p, const struct mt_module *m)
{
	const struct mt_native *n = p->rep->native;
	uint64_t key = (uint64_t)(m - n->modules) + 1, id, unused;
	if (hm_get(&p->mapping_ids, key, &id))
		return id;
	Mapping *mp = NEW(p, Mapping, perftools__profiles__mapping__init);
	if (!mp ||
	    mt_grow((void **)&p->symbolized, &p->symbolized_cap, p->mappings.n + 1,
		    sizeof *p->symbolized) ||
	    list_add(&p->mappings, mp) ||
	    hm_put(&p->mapping_ids, key, p->mappings.n, &unused) < 0) {
		p->oom = true;
		return 0;
	}
	p->symbolized[p->mappings.n - 1] = true;
	mp->id = p->mappings.n;
	mp->memory_start = m->start;
	mp->memory_limit = m->end;
	mp->filename = str(p, mt_report_string(p->rep, m->path));
	mp->build_id = m->build_id ? str(p, mt_report_string(p->rep, m->build_id)) : 0;
	return mp->id;
}

static uint64_t native_location(struct pprof *p, uint32_t node)
{
	const struct mt_nframe *f = &p->rep->native->frames[node];
	uint64_t key = f->ip ^ (uint64_t)f->module << 48, id, unused;
	if (hm_get(&p->native_locs, key, &id))
		return id;
	const struct mt_sym *syms;
	const struct mt_module *m;
	size_t n = mt_native_syms(p->rep, node, &syms, &m);
	bool known = n && syms[0].known;
	uint64_t mid = m ? mapping_id(p, m) : 0;
	Location *l = new_location(p, mid, f->ip ? f->ip - 1 : 0, known ? n : 0);
	if (!l || hm_put(&p->native_locs, key, l->id, &unused) < 0) {
		p->oom = true;
		return 0;
	}
	if (mid)
		p->symbolized[mid - 1] &= known;
	for (size_t i = 0; i < l->n_line; i++) {
		const struct mt_sym *s = &syms[n - 1 - i]; /* inlined ones first */
		l->line[i]->function_id = function_id(p, s->function, s->file);
		l->line[i]->line = (int64_t)(s->line & INT64_MAX);
	}
	return l->id;
}

static uint64_t location_of(struct pprof *p, const struct mt_snode *sn)
{
	const struct mt_report *rep = p->rep;
	if (sn->native)
		return native_location(p, sn->native);
	const struct mt_frame *f = &rep->frames[sn->python];
	return line_location(p, mt_report_string(rep, f->function), mt_report_string(rep, f->file),
			     f->line);
}

static Label *label(struct pprof *p, const char *key, const char *value)
{
	int64_t k = str(p, key), v = str(p, value);
	uint64_t hkey = (uint64_t)k << 32 | (uint64_t)v, ptr, unused;
	if (hm_get(&p->labels, hkey, &ptr))
		return (Label *)(uintptr_t)ptr;
	Label *l = NEW(p, Label, perftools__profiles__label__init);
	if (!l || hm_put(&p->labels, hkey, (uintptr_t)l, &unused) < 0) {
		p->oom = true;
		return NULL;
	}
	l->key = k;
	l->str = v;
	return l;
}

static int add_sample(void *arg, const struct mt_sample *s)
{
	struct pprof *p = arg;
	size_t depth = s->depth ? s->depth : 1;
	Sample *sm = NEW(p, Sample, perftools__profiles__sample__init);
	uint64_t *locs = arena_alloc(&p->mem, depth * sizeof *locs);
	int64_t *values = arena_alloc(&p->mem, MT_VALUES * sizeof *values);
	Label **labels = arena_alloc(&p->mem, 2 * sizeof *labels);
	if (!sm || !locs || !values || !labels || list_add(&p->samples, sm))
		return -1;
	/* innermost first */
	for (size_t i = 0; i < s->depth; i++)
		locs[i] = location_of(p, &s->stack[s->depth - 1 - i]);
	if (!s->depth)
		locs[0] = line_location(p, "<native>", "", 0);
	for (int v = 0; v < MT_VALUES; v++)
		values[v] = (int64_t)(s->value[v] & INT64_MAX);
	sm->n_location_id = depth;
	sm->location_id = locs;
	sm->n_value = MT_VALUES;
	sm->value = values;
	sm->label = labels;
	labels[sm->n_label++] = label(p, "domain", mt_domain_name(s->site->dom));
	if (s->site->tid) {
		char tid[24];
		snprintf(tid, sizeof tid, "%" PRIu64, s->site->tid);
		labels[sm->n_label++] = label(p, "thread", tid);
	}
	return p->oom ? -1 : 0;
}

/* ---- the profile's own fields ------------------------------------------------------ */

static ValueType *value_type(struct pprof *p, const char *type, const char *unit)
{
	ValueType *vt = NEW(p, ValueType, perftools__profiles__value_type__init);
	if (vt) {
		vt->type = str(p, type);
		vt->unit = str(p, unit);
	}
	return vt;
}

/* The program's own object first: pprof takes the first mapping for the
 * main binary. */
static void program_first(struct pprof *p)
{
	const struct mt_report *rep = p->rep;
	const struct mt_bytes *exe = &rep->process.exe;
	for (size_t i = 0; rep->native && exe->p && i < rep->native->nmodules; i++) {
		const struct mt_module *m = &rep->native->modules[i];
		const char *path = mt_report_string(rep, m->path);
		if (strlen(path) == exe->n && !memcmp(path, exe->p, exe->n)) {
			mapping_id(p, m);
			return;
		}
	}
}

/* The traced command, its arguments separated by spaces, cut to fit. */
static const char *command_line(const struct mt_report *rep, char *buf, size_t size)
{
	size_t n = rep->process.argv.n < size - 1 ? rep->process.argv.n : size - 1;
	memcpy(buf, rep->process.argv.p, n);
	while (n && buf[n - 1] == 0)
		n--;
	buf[n] = 0;
	for (size_t i = 0; i < n; i++)
		if (!buf[i])
			buf[i] = ' ';
	return buf;
}

static int64_t *comments(struct pprof *p, const struct mt_export_opts *o, size_t *n)
{
	const struct mt_report *rep = p->rep;
	int64_t *v = arena_alloc(&p->mem, 4 * sizeof *v);
	char line[512];
	if (!v)
		return NULL;
	*n = 0;
	v[(*n)++] = str(p, o->exporter);
	if (o->trace)
		v[(*n)++] = str(p, o->trace);
	if (rep->process.argv.p)
		v[(*n)++] = str(p, command_line(rep, line, sizeof line));
	if (o->at == MT_INUSE_EXIT)
		snprintf(line, sizeof line, "inuse: live at exit");
	else
		snprintf(line, sizeof line, "inuse: live at the heap peak, %" PRIu64 " us after start",
			 rep->heap.snapshot_us);
	v[(*n)++] = str(p, line);
	return v;
}

static void fill(struct pprof *p, const struct mt_export_opts *o, Profile *prof)
{
	const struct mt_report *rep = p->rep;
	ValueType **types = arena_alloc(&p->mem, MT_VALUES * sizeof *types);
	if (!types) {
		p->oom = true;
		return;
	}
	types[MT_ALLOC_OBJECTS] = value_type(p, "alloc_objects", "count");
	types[MT_ALLOC_SPACE] = value_type(p, "alloc_space", "bytes");
	types[MT_INUSE_OBJECTS] = value_type(p, "inuse_objects", "count");
	types[MT_INUSE_SPACE] = value_type(p, "inuse_space", "bytes");
	prof->n_sample_type = MT_VALUES;
	prof->sample_type = types;
	prof->default_sample_type = str(p, "inuse_space");
	prof->period_type = value_type(p, "space", "bytes");
	prof->period = 1; /* every allocation, no sampling */
	if (rep->process.have & MT_HAVE_START)
		prof->time_nanos = (int64_t)(rep->process.start_ns & INT64_MAX);
	prof->duration_nanos = (int64_t)(rep->trace.duration_us * 1000 & INT64_MAX);
	prof->comment = comments(p, o, &prof->n_comment);
	if (!prof->comment)
		p->oom = true;
	for (size_t i = 0; i < p->mappings.n; i++) {
		Mapping *m = p->mappings.v[i];
		m->has_functions = m->has_filenames = m->has_line_numbers = m->has_inline_frames =
			p->symbolized[i];
	}
	prof->n_sample = p->samples.n;
	prof->sample = (Sample **)p->samples.v;
	prof->n_mapping = p->mappings.n;
	prof->mapping = (Mapping **)p->mappings.v;
	prof->n_location = p->locations.n;
	prof->location = (Location **)p->locations.v;
	prof->n_function = p->functions.n;
	prof->function = (Function **)p->functions.v;
	prof->n_string_table = p->strs.n;
	prof->string_table = p->strs.v;
}

/* ---- gzip on the way out ------------------------------------------------------------- */

struct gz {
	ProtobufCBuffer base; /* first: protobuf-c calls append with it */
	z_stream z;
	FILE *out;
	bool failed;
	size_t nin;
	unsigned char in[1 << 16], buf[1 << 16];
};

static void gz_deflate(struct gz *g, int flush)
{
	g->z.next_in = g->in;
	g->z.avail_in = (uInt)g->nin;
	do {
		g->z.next_out = g->buf;
		g->z.avail_out = sizeof g->buf;
		if (deflate(&g->z, flush) == Z_STREAM_ERROR) {
			g->failed = true;
			return;
		}
		size_t have = sizeof g->buf - g->z.avail_out;
		if (have && fwrite(g->buf, 1, have, g->out) != have)
			g->failed = true;
	} while (g->z.avail_out == 0 && !g->failed);
	g->nin = 0;
}

static void gz_append(ProtobufCBuffer *b, size_t len, const uint8_t *data)
{
	struct gz *g = (struct gz *)b;
	while (len && !g->failed) {
		size_t k = sizeof g->in - g->nin < len ? sizeof g->in - g->nin : len;
		memcpy(g->in + g->nin, data, k);
		g->nin += k;
		data += k;
		len -= k;
		if (g->nin == sizeof g->in)
			gz_deflate(g, Z_NO_FLUSH);
	}
}

static int write_gzipped(const Profile *prof, FILE *out)
{
	struct gz *g = calloc(1, sizeof *g);
	if (!g)
		return -1;
	g->base.append = gz_append;
	g->out = out;
	/* 15 + 16: a gzip header and trailer around the deflate stream */
	if (deflateInit2(&g->z, Z_DEFAULT_COMPRESSION, Z_DEFLATED, 15 + 16, 8,
			 Z_DEFAULT_STRATEGY) != Z_OK) {
		free(g);
		return -1;
	}
	perftools__profiles__profile__pack_to_buffer(prof, &g->base);
	gz_deflate(g, Z_FINISH);
	deflateEnd(&g->z);
	int r = g->failed ? -1 : 0;
	free(g);
	return r;
}

/* ---- the export ------------------------------------------------------------------------- */

int mt_export_pprof(const struct mt_report *rep, const struct mt_export_opts *o, FILE *out)
{
	struct pprof p = { .rep = rep };
	Profile prof = PERFTOOLS__PROFILES__PROFILE__INIT;
	int r = -1;
	if (mt_strtab_init(&p.strs) | hm_init(&p.function_ids) | hm_init(&p.python_locs) |
	    hm_init(&p.native_locs) | hm_init(&p.mapping_ids) | hm_init(&p.labels))
		goto out;
	str(&p, ""); /* string 0 */
	program_first(&p);
	if (mt_samples(rep, o->at, add_sample, &p) || p.oom)
		goto out;
	fill(&p, o, &prof);
	if (!p.oom)
		r = write_gzipped(&prof, out);
out:
	hm_free(&p.function_ids);
	hm_free(&p.python_locs);
	hm_free(&p.native_locs);
	hm_free(&p.mapping_ids);
	hm_free(&p.labels);
	free(p.samples.v);
	free(p.mappings.v);
	free(p.locations.v);
	free(p.functions.v);
	free(p.symbolized);
	mt_strtab_free(&p.strs);
	arena_free(&p.mem);
	return r;
}
