/*
 * export_speedscope.c - the speedscope export (export.h): speedscope's file
 * format (https://www.speedscope.app/file-format-schema.json), three
 * "sampled" profiles over one list of frames: bytes allocated, allocations,
 * and bytes live at the heap peak (or at exit).  A sample is a site's stack
 * as the flame graph shows it, outermost first, weighted by the site's
 * figure.  A frame is a function and its source file (for a native frame
 * without one, its object); the lines of a function are one frame, as
 * speedscope itself makes them of a pprof profile.
 *
 * Strings go through jansson (they must be UTF-8); the rest, plain
 * numbers, is written as it comes.
 */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "export.h"
#include "grow.h"
#include "strtab.h"
#include "symbolize.h"

/* The profiles of the file, and what each weighs. */
static const struct {
	enum mt_value value;
	const char *unit;
} profiles[] = {
	{ MT_ALLOC_SPACE, "bytes" },
	{ MT_ALLOC_OBJECTS, "none" },
	{ MT_INUSE_SPACE, "bytes" },
};
#define NPROFILES (sizeof profiles / sizeof *profiles)

struct ss_sample {
	size_t start, depth; /* its frames: stacks[start .. start + depth) */
	uint64_t weight[NPROFILES];
};

struct ss {
	const struct mt_report *rep;
	struct mt_strtab strs;     /* names and files */
	struct heapmap frame_ids;  /* name << 32 | file -> frame */
	uint32_t *frames;          /* frame i: name frames[2i], file frames[2i + 1] */
	size_t nframes, frames_cap;
	uint32_t *stacks;          /* the samples' frames, one after the other */
	size_t nstacks, stacks_cap;
	struct ss_sample *samples;
	size_t nsamples, samples_cap;
	bool oom;
};

static void push_frame(struct ss *s, const char *name, const char *file)
{
	uint32_t n = mt_strtab_add(&s->strs, name), f = mt_strtab_add(&s->strs, file);
	uint64_t key = (uint64_t)n << 32 | f, id, unused;
	if (n == UINT32_MAX || f == UINT32_MAX) {
		s->oom = true;
		return;
	}
	if (!hm_get(&s->frame_ids, key, &id)) {
		id = s->nframes;
		if (mt_grow((void **)&s->frames, &s->frames_cap, 2 * (s->nframes + 1),
			    sizeof *s->frames) ||
		    hm_put(&s->frame_ids, key, id, &unused) < 0) {
			s->oom = true;
			return;
		}
		s->frames[2 * id] = n;
		s->frames[2 * id + 1] = f;
		s->nframes++;
	}
	if (mt_grow((void **)&s->stacks, &s->stacks_cap, s->nstacks + 1, sizeof *s->stacks)) {
		s->oom = true;
		return;
	}
	s->stacks[s->nstacks++] = (uint32_t)id;
}

/* The frames of a native stack node: its function and the ones inlined
 * into it, outermost first. */
static void push_native(struct ss *s, uint32_t node)
{
	const struct mt_sym *syms;
	const struct mt_module *m;
	size_t n = mt_native_syms(s->rep, node, &syms, &m);
	const char *object = m ? mt_report_string(s->rep, m->path) : "";
	for (size_t i = 0; i < n; i++)
		push_frame(s, syms[i].function, syms[i].file ? syms[i].file : object);
}

static int add_sample(void *arg, const struct mt_sample *sm)
{
	struct ss *s = arg;
	const struct mt_report *rep = s->rep;
	if (mt_grow((void **)&s->samples, &s->samples_cap, s->nsamples + 1, sizeof *s->samples))
		return -1;
	struct ss_sample *out = &s->samples[s->nsamples++];
	out->start = s->nstacks;
	for (size_t i = 0; i < sm->depth; i++) {
		const struct mt_snode *sn = &sm->stack[i];
		if (sn->native) {
			push_native(s, sn->native);
		} else {
			const struct mt_frame *f = &rep->frames[sn->python];
			push_frame(s, mt_report_string(rep, f->function),
				   mt_report_string(rep, f->file));
		}
	}
	if (s->nstacks == out->start)
		push_frame(s, "<native>", "");
	out->depth = s->nstacks - out->start;
	for (size_t p = 0; p < NPROFILES; p++)
		out->weight[p] = sm->value[profiles[p].value];
	return s->oom ? -1 : 0;
}

/* ---- writing ------------------------------------------------------------------ */

/* A JSON string of s; bytes that are not UTF-8 become '?'. */
static json_t *text(const char *s)
{
	json_t *j = json_string(s);
	if (j)
		return j;
	char *copy = strdup(s);
	for (char *c = copy; c && *c; c++)
		if ((unsigned char)*c >= 0x80)
			*c = '?';
	j = copy ? json_string(copy) : NULL;
	free(copy);
	return j ? j : json_string("");
}

/* Writes v as JSON; false when that failed. */
static bool dump(json_t *v, FILE *out)
{
	bool ok = v && json_dumpf(v, out, JSON_ENCODE_ANY | JSON_COMPACT) == 0;
	json_decref(v);
	return ok;
}

static bool write_frames(const struct ss *s, FILE *out)
{
	bool ok = fputs("\"shared\":{\"frames\":[", out) >= 0;
	for (size_t i = 0; ok && i < s->nframes; i++) {
		json_t *f = json_object();
		const char *file = s->strs.v[s->frames[2 * i + 1]];
		json_object_set_new(f, "name", text(s->strs.v[s->frames[2 * i]]));
		if (*file)
			json_object_set_new(f, "file", text(file));
		ok = (!i || putc(',', out) != EOF) && dump(f, out);
	}
	return ok && fputs("]}", out) >= 0;
}

static const char *profile_name(size_t p, enum mt_inuse_at at)
{
	static const char *const names[] = { "bytes allocated", "allocations" };
	if (p < 2)
		return names[p];
	return at == MT_INUSE_EXIT ? "bytes live at exit" : "bytes live at the heap peak";
}

static bool write_profile(const struct ss *s, size_t p, enum mt_inuse_at at, FILE *out)
{
	uint64_t total = 0;
	for (size_t i = 0; i < s->nsamples; i++)
		total += s->samples[i].weight[p];
	bool ok = fputs("{\"type\":\"sampled\",\"name\":", out) >= 0 &&
		  dump(text(profile_name(p, at)), out) &&
		  fprintf(out, ",\"unit\":\"%s\",\"startValue\":0,\"endValue\":%" PRIu64
			       ",\"samples\":[",
			  profiles[p].unit, total) > 0;
	bool first = true;
	for (size_t i = 0; ok && i < s->nsamples; i++) {
		const struct ss_sample *sm = &s->samples[i];
		if (!sm->weight[p])
			continue;
		ok = fputs(first ? "[" : ",[", out) >= 0;
		first = false;
		for (size_t k = 0; ok && k < sm->depth; k++)
			ok = fprintf(out, k ? ",%" PRIu32 : "%" PRIu32, s->stacks[sm->start + k]) > 0;
		ok = ok && putc(']', out) != EOF;
	}
	ok = ok && fputs("],\"weights\":[", out) >= 0;
	first = true;
	for (size_t i = 0; ok && i < s->nsamples; i++) {
		if (!s->samples[i].weight[p])
			continue;
		ok = fprintf(out, first ? "%" PRIu64 : ",%" PRIu64, s->samples[i].weight[p]) > 0;
		first = false;
	}
	return ok && fputs("]}", out) >= 0;
}

/* The file's name: the program's and the pid. */
static json_t *file_name(const struct mt_report *rep, const struct mt_export_opts *o)
{
	char exe[256], name[300];
	const struct mt_bytes *b = &rep->process.exe;
	size_t n = b->p ? (b->n < sizeof exe - 1 ? b->n : sizeof exe - 1) : 0;
	memcpy(exe, b->p ? (const char *)b->p : "", n);
	exe[n] = 0; /* the header's bytes are not a C string */
	const char *base = strrchr(exe, '/');
	snprintf(name, sizeof name, "%s (pid %" PRIu64 ")",
		 base ? base + 1 : *exe ? exe : o->trace ? o->trace : "memtrace", rep->process.pid);
	return text(name);
}

static bool write_file(const struct ss *s, const struct mt_export_opts *o, FILE *out)
{
	bool ok = fputs("{\"$schema\":\"https://www.speedscope.app/file-format-schema.json\","
			"\"exporter\":", out) >= 0 &&
		  dump(text(o->exporter ? o->exporter : "memtrace"), out) &&
		  fputs(",\"name\":", out) >= 0 && dump(file_name(s->rep, o), out) &&
		  fputs(",\"activeProfileIndex\":0,", out) >= 0;
	ok = ok && write_frames(s, out) && fputs(",\"profiles\":[", out) >= 0;
	for (size_t p = 0; ok && p < NPROFILES; p++)
		ok = (!p || putc(',', out) != EOF) && write_profile(s, p, o->at, out);
	return ok && fputs("]}\n", out) >= 0;
}

int mt_export_speedscope(const struct mt_report *rep, const struct mt_export_opts *o, FILE *out)
{
	struct ss s = { .rep = rep };
	int r = -1;
	if (mt_strtab_init(&s.strs) | hm_init(&s.frame_ids))
		goto out;
	if (mt_samples(rep, o->at, add_sample, &s) || s.oom)
		goto out;
	r = write_file(&s, o, out) ? 0 : -1;
out:
	mt_strtab_free(&s.strs);
	hm_free(&s.frame_ids);
	free(s.frames);
	free(s.stacks);
	free(s.samples);
	return r;
}
