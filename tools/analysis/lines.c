/*
 * lines.c - the main script, line by line.  SCRIPT records say, per
 * thread, which line of the main script (the file run as __main__) is its
 * innermost frame of that script; everything the thread does until the
 * next SCRIPT happens while that line runs: a call on the line counts what
 * the callee did, and a free counts at the line that ran when it happened
 * (what answers "what did `del big_data` do").
 *
 * Per line (struct mt_script_line): the blocks allocated and freed there,
 * each once at its topmost domain, as the sites count them; arenas and
 * pools that came and went; list resizes.  Its allocations and its peak
 * contribution, the bytes it had allocated that were live at the heap
 * peak, come from the sites: while a thread runs a line, its sites are
 * copies per line (sites.c), whose figures are summed per line at the end
 * before the copies are merged back into their sites.  Frees, arenas,
 * pools and resizes count as they happen, at the line running then.
 *
 * The source of each line is read from its file when the report is made.
 */
#define _GNU_SOURCE /* qsort_r */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "analysis.h"

/* Larger files are not read: the figures stand without their text. */
#define SOURCE_MAX (16u << 20)

int lines_init(struct ctx *c)
{
	return hm_init(&c->lines.ids) | hm_init(&c->lines.places);
}

void lines_free(struct ctx *c)
{
	hm_free(&c->lines.ids);
	hm_free(&c->lines.places);
}

static uint64_t place_key(const struct mt_frame *f)
{
	return (uint64_t)f->file << 32 | (f->line > UINT32_MAX ? UINT32_MAX : f->line);
}

/* 1 + the index of the line of frame, made if new; 0 when out of memory. */
static uint32_t line_index(struct ctx *c, uint32_t frame)
{
	struct mt_report *rep = c->rep;
	const struct mt_frame *f = &rep->frames[frame];
	uint64_t v, key = place_key(f);
	if (hm_get(&c->lines.places, key, &v))
		return (uint32_t)v + 1;
	if (rep->nlines >= UINT32_MAX - 1 ||
	    mt_grow((void **)&rep->lines, &c->lines.cap, rep->nlines + 1, sizeof *rep->lines) ||
	    hm_put(&c->lines.places, key, rep->nlines, &v) < 0) {
		c->oom = true;
		return 0;
	}
	rep->lines[rep->nlines] = (struct mt_script_line){ .file = f->file, .line = f->line };
	return (uint32_t)++rep->nlines;
}

void lines_script(struct ctx *c, uint64_t id)
{
	struct thread *t = cur_thread(c);
	uint64_t v;
	uint32_t frame = 0, line = 0;
	if (id && hm_get(&c->lines.ids, id, &v)) {
		line = (uint32_t)v;
		frame = (uint32_t)(v >> 32);
	} else if (id && hm_get(&c->framemap, id, &v) && v) {
		frame = (uint32_t)v;
		line = line_index(c, frame);
		if (line && hm_put(&c->lines.ids, id, line | (uint64_t)frame << 32, &v) < 0)
			c->oom = true;
	}
	t->line = line;
	if (frame != t->script) {
		t->script = frame;
		memset(t->site, 0xff, sizeof t->site); /* sites are per line: see sites.c */
	}
}

/* ---- at the end ------------------------------------------------------------------ */

/* The per-line copies of the sites go back into their sites (the one each
 * was copied from: a site per thread stays the thread's). */
static void merge_copies(struct ctx *c)
{
	struct mt_report *rep = c->rep;
	const struct heapmap *copies = &c->scriptmap;
	uint32_t *map = malloc((rep->nsites ? rep->nsites : 1) * sizeof *map);
	size_t ng = 0;
	if (!map) {
		c->oom = true;
		return;
	}
	for (size_t i = 0; i < rep->nsites; i++)
		map[i] = NO_SITE;
	for (size_t i = 0; copies->slots && i <= copies->mask; i++)
		if (copies->slots[i].key)
			map[copies->slots[i].val] = (uint32_t)(copies->slots[i].key >> 32);
	/* a copy comes after its site, and sites only move down: merging in
	 * place never overwrites a site not seen yet */
	for (size_t i = 0; i < rep->nsites; i++) {
		struct mt_site s = rep->sites[i];
		if (map[i] == NO_SITE) {
			map[i] = (uint32_t)ng;
			rep->sites[ng++] = s;
		} else {
			map[i] = map[map[i]];
			sites_sum(&rep->sites[map[i]], &s);
		}
	}
	rep->nsites = ng;
	sites_remap(c, map);
	free(map);
}

static int cmp_line(const void *a, const void *b, void *arg)
{
	const struct mt_report *rep = arg;
	const struct mt_script_line *x = a, *y = b;
	int r = strcmp(mt_report_string(rep, x->file), mt_report_string(rep, y->file));
	if (r)
		return r;
	return x->line < y->line ? -1 : x->line > y->line;
}

static bool has_figures(const struct mt_script_line *l)
{
	return l->allocs || l->frees || l->bytes_allocated || l->bytes_freed || l->peak_bytes ||
	       l->arenas_allocated || l->arenas_freed || l->pools_allocated ||
	       l->pools_freed || l->list_resizes;
}

/* The lines of the file at path; NULL lines when it cannot be read. */
static int read_source(const char *path, struct mt_source *src)
{
	FILE *f = fopen(path, "rb");
	char *buf = NULL;
	size_t len = 0, cap = 0;
	src->lines = NULL;
	src->nlines = 0;
	if (!f)
		return 0;
	char chunk[65536];
	size_t got;
	while ((got = fread(chunk, 1, sizeof chunk, f)) > 0 && len + got <= SOURCE_MAX) {
		if (mt_grow((void **)&buf, &cap, len + got + 1, 1))
			goto oom;
		memcpy(buf + len, chunk, got);
		len += got;
	}
	bool whole = !ferror(f) && feof(f);
	fclose(f);
	f = NULL;
	if (!whole || !buf) {
		free(buf);
		return 0;
	}
	buf[len] = 0;
	size_t lcap = 0;
	for (char *p = buf; p < buf + len;) {
		char *nl = memchr(p, '\n', (size_t)(buf + len - p));
		size_t n = nl ? (size_t)(nl - p) : (size_t)(buf + len - p);
		if (n && p[n - 1] == '\r')
			n--;
		if (mt_grow((void **)&src->lines, &lcap, src->nlines + 1, sizeof *src->lines))
			goto oom;
		if (!(src->lines[src->nlines] = strndup(p, n)))
			goto oom;
		src->nlines++;
		p = nl ? nl + 1 : buf + len;
	}
	free(buf);
	return 0;
oom:
	if (f)
		fclose(f);
	free(buf);
	return -1;
}

static void read_sources(struct ctx *c)
{
	struct mt_report *rep = c->rep;
	size_t cap = 0;
	for (size_t i = 0; i < rep->nlines; i++) {
		if (i && rep->lines[i].file == rep->lines[i - 1].file)
			continue;
		if (mt_grow((void **)&rep->sources, &cap, rep->nsources + 1, sizeof *rep->sources)) {
			c->oom = true;
			return;
		}
		struct mt_source *src = &rep->sources[rep->nsources++];
		src->file = rep->lines[i].file;
		if (read_source(mt_report_string(rep, src->file), src)) {
			c->oom = true;
			return;
		}
	}
}

void lines_finish(struct ctx *c)
{
	struct mt_report *rep = c->rep;
	uint64_t v;
	if (!rep->nlines)
		return;
	for (size_t i = 0; i < rep->nsites; i++) {
		const struct mt_site *s = &rep->sites[i];
		if (!s->script || !hm_get(&c->lines.places, place_key(&rep->frames[s->script]), &v))
			continue;
		struct mt_script_line *l = &rep->lines[v];
		l->allocs += s->allocs;
		l->bytes_allocated += s->bytes;
		l->dom_allocs[s->dom] += s->allocs;
		l->dom_bytes[s->dom] += s->bytes;
		l->peak_bytes += s->peak_bytes;
	}
	merge_copies(c);
	size_t n = 0;
	for (size_t i = 0; i < rep->nlines; i++)
		if (has_figures(&rep->lines[i]))
			rep->lines[n++] = rep->lines[i];
	rep->nlines = n;
	qsort_r(rep->lines, rep->nlines, sizeof *rep->lines, cmp_line, rep);
	read_sources(c);
}

const char *mt_line_source(const struct mt_report *rep, const struct mt_script_line *l)
{
	for (size_t i = 0; i < rep->nsources; i++) {
		const struct mt_source *src = &rep->sources[i];
		if (src->file == l->file)
			return l->line >= 1 && l->line <= src->nlines ? src->lines[l->line - 1] : NULL;
	}
	return NULL;
}
