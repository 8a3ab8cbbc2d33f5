/*
 * output_folded.c - the report's "flame" tree as folded stacks, the format
 * of Brendan Gregg's stackcollapse scripts that flamegraph.pl, speedscope
 * and most flame graph tools read: one line per stack,
 *
 *     outermost;caller;callee VALUE
 *
 * where VALUE (bytes allocated, or what the view's --folded-value counts)
 * is what was allocated with exactly that stack innermost (a node's own
 * figure, not its children's).  Frames are the functions' names, so that
 * the frames of one function at different lines are one frame; with
 * --folded-lines ("view": {"folded_lines": true}) they are the tree's
 * "function (file:line)" names.  The tree's root ("all") is left out: the
 * tools add their own.
 */
#define _GNU_SOURCE /* qsort_r */
#include "render.h"

#include <stdbool.h>

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "json_get.h"

/* Deeper nodes count as leaves: a real stack is at most a few hundred
 * frames, and the walk is recursive. */
#define MAX_DEPTH 2048

struct fold {
	FILE *out;
	char *path;
	size_t len, cap;
	int err;
	bool lines; /* frames named "function (file:line)" */
};

static int grow(struct fold *f, size_t more)
{
	if (f->len + more + 1 <= f->cap)
		return 0;
	size_t cap = f->cap ? f->cap : 256;
	while (cap < f->len + more + 1)
		cap *= 2;
	char *p = realloc(f->path, cap);
	if (!p)
		return -1;
	f->path = p;
	f->cap = cap;
	return 0;
}

/* Appends s with the characters that would break the format replaced:
 * ';' separates frames (':' as stackcollapse-perf does), a newline ends
 * the line, and NUL would end the string. */
static int append(struct fold *f, const char *s, size_t n)
{
	if (grow(f, n))
		return -1;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		f->path[f->len++] = c == ';' ? ':' : c == '\n' || c == '\r' || c == 0 ? ' ' : c;
	}
	f->path[f->len] = 0;
	return 0;
}

static int append_z(struct fold *f, const char *s)
{
	return append(f, s, strlen(s));
}

static int append_json_str(struct fold *f, const json_t *s, const char *fallback)
{
	if (!json_is_string(s) || !json_string_length(s))
		return append_z(f, fallback);
	return append(f, json_string_value(s), json_string_length(s));
}

/* What names a node's frame: its function (plain names), else its "name";
 * a node with neither but with file and line is "function (file:line)". */
static const json_t *label(const json_t *node, bool lines)
{
	const json_t *fn = jg(node, "function"), *name = jg(node, "name");
	if (!lines && json_is_string(fn) && json_string_length(fn))
		return fn;
	return json_is_string(name) ? name : NULL;
}

static int append_frame(struct fold *f, const json_t *node)
{
	const json_t *l = label(node, f->lines);
	if (l && json_string_length(l))
		return append(f, json_string_value(l), json_string_length(l));
	const json_t *fn = jg(node, "function"), *file = jg(node, "file");
	if (!json_is_string(fn) && !json_is_string(file))
		return append_z(f, "[unknown]");
	char line[32];
	snprintf(line, sizeof line, ":%lld)", (long long)jg_num(node, "line"));
	if (append_json_str(f, fn, "[unknown]") || append_z(f, " (") ||
	    append_json_str(f, file, "?") || append_z(f, line))
		return -1;
	return 0;
}

/* Byte counts are integers; anything else (negative, fractional, huge)
 * comes from a damaged report and is clamped. */
static uint64_t node_value(const json_t *node)
{
	double v = jg_num(node, "value");
	if (!(v > 0))
		return 0;
	return v >= 0x1p63 ? INT64_MAX : (uint64_t)v;
}

static const char *label_text(const json_t *node, bool lines)
{
	const json_t *l = label(node, lines);
	return l ? json_string_value(l) : "";
}

static int cmp_label(const void *a, const void *b, void *arg)
{
	const bool *lines = arg;
	return strcmp(label_text(*(const json_t *const *)a, *lines),
		      label_text(*(const json_t *const *)b, *lines));
}

/* Nodes nodes[0..n) are one frame of the stack: their figures add up, and
 * their children with the same frame are again one. */
static void walk(struct fold *f, const json_t **nodes, size_t n, int depth)
{
	size_t mark = f->len, nkids = 0;
	if (depth > 1) { /* the separator, which append() would replace */
		if (grow(f, 1)) {
			f->err = -1;
			return;
		}
		f->path[f->len++] = ';';
	}
	if (depth > 0 && append_frame(f, nodes[0])) {
		f->err = -1;
		return;
	}
	uint64_t value = 0, children = 0;
	for (size_t i = 0; i < n; i++) {
		uint64_t v = node_value(nodes[i]);
		value = v > UINT64_MAX - value ? UINT64_MAX : value + v;
		if (depth < MAX_DEPTH)
			nkids += jg_len(jg_arr(nodes[i], "children"));
	}
	const json_t **kids = nkids ? malloc(nkids * sizeof *kids) : NULL;
	if (nkids && !kids)
		f->err = -1;
	size_t k = 0;
	for (size_t i = 0; kids && i < n; i++) {
		const json_t *ch = jg_arr(nodes[i], "children");
		for (size_t j = 0; j < jg_len(ch); j++)
			kids[k++] = json_array_get(ch, j);
	}
	if (kids)
		qsort_r(kids, k, sizeof *kids, cmp_label, &f->lines);
	for (size_t i = 0; i < k && !f->err;) {
		size_t j = i + 1;
		while (j < k && !cmp_label(&kids[i], &kids[j], &f->lines))
			j++;
		for (size_t m = i; m < j; m++) {
			uint64_t v = node_value(kids[m]);
			children = v > UINT64_MAX - children ? UINT64_MAX : children + v;
		}
		walk(f, kids + i, j - i, depth + 1);
		i = j;
	}
	free(kids);
	uint64_t self = value > children ? value - children : 0;
	if (self && !f->err) {
		/* figures at the root itself have no stack at all */
		const char *stack = depth > 0 ? f->path : "[unknown]";
		if (fprintf(f->out, "%s %llu\n", stack, (unsigned long long)self) < 0)
			f->err = -1;
	}
	f->len = mark;
	if (f->path)
		f->path[mark] = 0;
}

int mt_render_folded(const json_t *report, FILE *out)
{
	struct fold f = { .out = out };
	const json_t *root = jg_obj(report, "flame");
	f.lines = json_is_true(jg(jg_obj(report, "view"), "folded_lines"));
	if (root)
		walk(&f, &root, 1, 0);
	free(f.path);
	return f.err || ferror(out) ? -1 : 0;
}
