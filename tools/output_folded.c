/*
 * output_folded.c - the report's "flame" tree as folded stacks, the format
 * of Brendan Gregg's stackcollapse scripts that flamegraph.pl, speedscope
 * and most flame graph tools read: one line per stack,
 *
 *     outermost;caller;callee BYTES
 *
 * where BYTES were allocated with exactly that stack innermost (a node's
 * own bytes, not its children's).  Frames are "function (file:line)".
 * The tree's root ("all") is left out: the tools add their own.
 */
#include "render.h"

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

/* The frame name of a node: built from file, line and function when the
 * node has them, else its "name". */
static int append_frame(struct fold *f, const json_t *node)
{
	const json_t *fn = jg(node, "function"), *file = jg(node, "file");
	if (!json_is_string(fn) && !json_is_string(file))
		return append_json_str(f, jg(node, "name"), "[unknown]");
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

static void walk(struct fold *f, const json_t *node, int depth)
{
	size_t mark = f->len;
	if (depth > 1) { /* the separator, which append() would replace */
		if (grow(f, 1)) {
			f->err = -1;
			return;
		}
		f->path[f->len++] = ';';
	}
	if (depth > 0) {
		if (append_frame(f, node)) {
			f->err = -1;
			return;
		}
	}
	uint64_t value = node_value(node), children = 0;
	const json_t *kids = depth < MAX_DEPTH ? jg_arr(node, "children") : NULL;
	for (size_t i = 0; i < jg_len(kids) && !f->err; i++) {
		const json_t *kid = json_array_get(kids, i);
		uint64_t v = node_value(kid);
		children = v > UINT64_MAX - children ? UINT64_MAX : children + v;
		walk(f, kid, depth + 1);
	}
	uint64_t self = value > children ? value - children : 0;
	if (self && !f->err) {
		/* bytes at the root itself have no stack at all */
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
	if (root)
		walk(&f, root, 0);
	free(f.path);
	return f.err || ferror(out) ? -1 : 0;
}
