/*
 * output_html.c - the HTML report: one self-contained page drawn from the
 * JSON report object (docs/report-schema.md).  Charts are inline SVG drawn
 * here (html_svg.c); tables are plain HTML that the page's script makes
 * sortable; the flame graph is built by the script from a JSON data block.
 * The stylesheet and the script are embedded from tools/html/.
 *
 * Every string that comes from the trace goes through html_emit's escaping
 * writers; the script only ever puts such strings into the page with
 * textContent.  Sections without data are left out: a process that is not
 * Python has no pools, arenas or list buffers.
 */
#include "render.h"

#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "html_page.h"
#include "json_get.h"

/* The flame graph's data leaves out nodes smaller than this share of the
 * whole (they would be far narrower than a pixel) and nests at most this
 * deep. */
#define FLAME_MIN_SHARE 1e-4
#define FLAME_MAX_DEPTH 256
/* Marks drawn on the charts (the table lists them all). */
#define MAX_CHART_MARKS 500

/* ---- header -------------------------------------------------------------- */

static bool needs_quotes(const char *s, size_t n)
{
	if (!n)
		return true;
	for (size_t i = 0; i < n; i++)
		if (strchr(" \t\n'\"\\$`;&|<>()*?[]#~", s[i]) || !s[i])
			return true;
	return false;
}

/* argv as a shell would take it (single quotes where needed; the first
 * MAX_ARGS arguments), or exe. */
#define MAX_ARGS 64
static void command_line(struct page *p)
{
	const json_t *proc = jg_obj(p->r, "process"), *argv = jg_arr(proc, "argv");
	if (!jg_len(argv)) {
		he_jtext(&p->e, jg(proc, "exe"), "(unknown program)");
		return;
	}
	for (size_t i = 0; i < jg_len(argv); i++) {
		if (i == MAX_ARGS) {
			he_fmt(&p->e, " … (%zu more)", jg_len(argv) - i);
			break;
		}
		const json_t *a = json_array_get(argv, i);
		const char *s = json_is_string(a) ? json_string_value(a) : "";
		size_t n = json_is_string(a) ? json_string_length(a) : 0;
		bool q = needs_quotes(s, n);
		if (i)
			he_raw(&p->e, " ");
		if (q)
			he_raw(&p->e, "'");
		he_text(&p->e, s, n);
		if (q)
			he_raw(&p->e, "'");
	}
}

static void head(struct page *p)
{
	hp_head(p);
	command_line(p);
	hp_head_end(p);
}

static void meta(struct page *p, const char *name)
{
	he_fmt(&p->e, "<div><dt>%s</dt><dd>", name);
}

static void start_time(struct page *p, double ns)
{
	char buf[64];
	struct tm tm;
	time_t t = (time_t)(ns / 1e9);
	if (ns > 0 && ns < 1e19 && gmtime_r(&t, &tm) &&
	    strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S UTC", &tm))
		he_textz(&p->e, buf);
	else
		he_raw(&p->e, "unknown");
}

/* The notes given with --intro: one paragraph per blank-line-separated
 * block, the first as the heading. */
static void intro(struct page *p)
{
	const char *s = json_string_value(jg(p->r, "intro"));
	if (!s || !*s)
		return;
	he_raw(&p->e, "<section class=\"intro\" id=\"intro\"><h2>");
	for (int first = 1; *s; first = 0) {
		const char *end = strstr(s, "\n\n");
		size_t n = end ? (size_t)(end - s) : strlen(s);
		if (!first)
			he_raw(&p->e, "<p>");
		he_text(&p->e, s, n);
		he_raw(&p->e, first ? "</h2>" : "</p>");
		s += n;
		while (*s == '\n')
			s++;
	}
	he_raw(&p->e, "</section>");
}

static void header(struct page *p, const char *trace_name)
{
	const json_t *proc = jg_obj(p->r, "process"), *trace = jg_obj(p->r, "trace"),
		     *ev = jg_obj(p->r, "events"), *py = jg_obj(proc, "python");
	he_raw(&p->e, "<header><div class=\"brand\">memtrace report</div><h1 class=\"cmd\">");
	command_line(p);
	he_raw(&p->e, "</h1><dl class=\"meta\">");
	meta(p, "program");
	he_jtext(&p->e, jg(proc, "exe"), "unknown");
	he_raw(&p->e, "</dd></div>");
	meta(p, "process");
	if (jg_has_num(proc, "pid"))
		he_fmt(&p->e, "pid %.0f", hp_num(proc, "pid"));
	if (jg_has_num(proc, "ppid"))
		he_fmt(&p->e, ", parent %.0f", hp_num(proc, "ppid"));
	he_raw(&p->e, "</dd></div>");
	if (py) {
		meta(p, "Python");
		he_jtext(&p->e, jg(py, "version"), "?");
		he_raw(&p->e, "</dd></div>");
	}
	meta(p, "started");
	start_time(p, jg_num(proc, "start_unix_ns"));
	he_raw(&p->e, "</dd></div>");
	meta(p, "duration");
	he_textz(&p->e, hf_time(hp_num(trace, "duration_us")).s);
	he_raw(&p->e, "</dd></div>");
	meta(p, "events");
	he_fmt(&p->e, "%s in %s thread%s", hf_count(hp_num(ev, "total")).s,
	       hf_count(hp_num(trace, "threads")).s, hp_num(trace, "threads") == 1 ? "" : "s");
	he_raw(&p->e, "</dd></div>");
	const json_t *win = jg_obj(p->r, "window"), *view = jg_obj(p->r, "view");
	if (win && json_is_true(jg(win, "opened"))) {
		meta(p, "window");
		he_fmt(&p->e, "%s to ", hf_time(hp_num(win, "from_us")).s);
		he_textz(&p->e, hf_time(hp_num(win, "to_us")).s);
		he_raw(&p->e, "</dd></div>");
	}
	if (json_is_number(jg(view, "thread"))) {
		meta(p, "thread");
		he_fmt(&p->e, "%.0f", hp_num(view, "thread"));
		he_raw(&p->e, "</dd></div>");
	}
	if (jg_len(jg_arr(view, "domains")) && jg_len(jg_arr(view, "domains")) < 4) {
		meta(p, "domains");
		for (size_t i = 0; i < jg_len(jg_arr(view, "domains")); i++) {
			he_raw(&p->e, i ? ", " : "");
			he_jtext(&p->e, json_array_get(jg_arr(view, "domains"), i), "?");
		}
		he_raw(&p->e, "</dd></div>");
	}
	if (trace_name) {
		meta(p, "trace");
		he_textz(&p->e, trace_name);
		he_raw(&p->e, "</dd></div>");
	}
	he_raw(&p->e, "</dl>");
	const json_t *reason = jg(trace, "end_reason");
	if (!json_is_true(jg(trace, "complete")))
		he_raw(&p->e, "<p class=\"warn\">The trace has no footer: the process did not "
			      "finish (killed?). The report covers what was recorded.</p>");
	else if (json_is_string(reason) && strcmp(json_string_value(reason), "exit")) {
		he_raw(&p->e, "<p class=\"info\">The trace ended with ");
		he_jtext(&p->e, reason, "");
		he_raw(&p->e, ".</p>");
	}
	if (hp_num(ev, "lost") > 0)
		he_fmt(&p->e, "<p class=\"warn\">%s events could not be recorded (allocations "
			      "from signal handlers): the figures miss them.</p>",
		       hf_count(hp_num(ev, "lost")).s);
	he_raw(&p->e, "</header>\n");
}

static void nav(struct page *p)
{
	const json_t *r = p->r;
	he_raw(&p->e, "<nav><a href=\"#summary\">Summary</a>");
	if (jg_len(jg_arr(r, "script_lines")))
		he_raw(&p->e, "<a href=\"#script\">Script</a>");
	he_raw(&p->e, "<a href=\"#heap\">Heap</a>");
	if (jg_len(jg_arr(jg_obj(r, "timeline"), "samples")))
		he_raw(&p->e, "<a href=\"#memory\">Memory</a>");
	if (p->python)
		he_raw(&p->e, "<a href=\"#pools\">Arenas and pools</a>");
	he_raw(&p->e, "<a href=\"#sizes\">Sizes</a>");
	if (p->python)
		he_raw(&p->e, "<a href=\"#lists\">Lists</a>");
	he_raw(&p->e, "<a href=\"#sites\">Sites</a>");
	if (jg_len(jg_arr(r, "leaks")))
		he_raw(&p->e, "<a href=\"#leaks\">Leaks</a>");
	if (jg_len(jg_arr(r, "temporary_sites")))
		he_raw(&p->e, "<a href=\"#temporary\">Temporaries</a>");
	if (jg_len(jg_arr(r, "marks")))
		he_raw(&p->e, "<a href=\"#steps\">Steps</a>");
	he_raw(&p->e, "<a href=\"#flame\">Flame graph</a></nav>\n");
}

/* ---- summary ------------------------------------------------------------- */

static void card(struct page *p, const char *cls, const char *title, const char *value,
		 const char *sub)
{
	he_fmt(&p->e, "<div class=\"card%s%s\"><h3>", cls ? " " : "", cls ? cls : "");
	he_textz(&p->e, title);
	he_raw(&p->e, "</h3><div class=\"big\">");
	he_textz(&p->e, value);
	he_raw(&p->e, "</div><div class=\"sub\">");
	he_textz(&p->e, sub);
	he_raw(&p->e, "</div></div>");
}

static void summary(struct page *p)
{
	const json_t *r = p->r, *sum = jg_obj(r, "summary"), *peak = jg_obj(sum, "heap_peak"),
		     *live = jg_obj(sum, "live_at_exit"), *temp = jg_obj(sum, "temporary"),
		     *ev = jg_obj(r, "events"), *arenas = jg_obj(r, "arenas"),
		     *lists = jg_obj(r, "lists"), *doms = jg_obj(r, "domains"),
		     *pools = jg_obj(r, "pools");
	char sub[160];
	hp_section_open(p, "summary", "Summary");
	/* four columns of two rows for Python, one row of five otherwise */
	he_fmt(&p->e, "<div class=\"cards c%d\">", p->python ? 4 : 5);
	snprintf(sub, sizeof sub, "at %s%s", hf_time(hp_num(peak, "time_us")).s,
		 p->python ? " · malloc + pymalloc arenas" : " · malloc heap");
	card(p, "accent", "Heap peak", hf_bytes(hp_num(peak, "bytes")).s, sub);
	snprintf(sub, sizeof sub, "%s blocks never freed", hf_count(hp_num(live, "blocks")).s);
	card(p, hp_num(live, "bytes") > 0 ? "warm" : NULL, "Live at exit",
	     hf_bytes(hp_num(live, "bytes")).s, sub);
	snprintf(sub, sizeof sub, "%s allocated and freed at once",
		 hf_bytes(hp_num(temp, "bytes")).s);
	card(p, NULL, "Temporary allocations", hf_count(hp_num(temp, "allocs")).s, sub);
	double calls = 0, bytes = 0;
	for (size_t d = 0; d < 4; d++) {
		const json_t *o = jg_obj(doms, hp_domains[d]);
		if (d == 0 || d == 3) { /* what the program asked for: malloc, objects */
			calls += hp_num(o, "allocs") + hp_num(o, "reallocs");
			bytes += hp_num(o, "bytes_allocated");
		}
	}
	snprintf(sub, sizeof sub, "%s requested (malloc%s)", hf_bytes(bytes).s,
		 p->python ? " and PyObject" : "");
	card(p, NULL, "Allocations", hf_count(calls).s, sub);
	if (p->python) {
		snprintf(sub, sizeof sub, "%s arenas allocated, %s at exit",
			 hf_count(hp_num(arenas, "allocated")).s,
			 hf_count(hp_num(arenas, "live_at_exit")).s);
		card(p, NULL, "Arenas at peak", hf_count(hp_num(arenas, "peak")).s, sub);
		snprintf(sub, sizeof sub, "%s pools at exit",
			 hf_count(hp_num(pools, "pools_at_exit")).s);
		card(p, NULL, "Pools at peak", hf_count(hp_num(pools, "pools_peak")).s, sub);
		snprintf(sub, sizeof sub, "%s copied by moving reallocs",
			 hf_bytes(hp_num(lists, "bytes_copied")).s);
		card(p, NULL, "List resizes", hf_count(hp_num(lists, "resizes")).s, sub);
	}
	if (hp_num(ev, "producer_waits") > 0)
		snprintf(sub, sizeof sub, "threads waited %s times for the writer",
			 hf_count(hp_num(ev, "producer_waits")).s);
	else
		snprintf(sub, sizeof sub, "no thread had to wait for the writer");
	card(p, hp_num(ev, "lost") > 0 ? "bad" : "good", "Lost events",
	     hf_count(hp_num(ev, "lost")).s, sub);
	he_raw(&p->e, "</div>");

	const json_t *top = jg_arr(peak, "top_sites");
	if (jg_len(top)) {
		double whole = hp_num(peak, "bytes");
		he_raw(&p->e, "<h3>Live at the peak, by site</h3><ol class=\"top\">");
		for (size_t i = 0; i < jg_len(top) && i < 10; i++) {
			const json_t *s = json_array_get(top, i);
			double b = hp_num(s, "bytes");
			double w = whole > 0 ? fmin(100, fmax(0, 100 * b / whole)) : 0;
			he_fmt(&p->e, "<li><span class=\"barbg\"><span style=\"width:%.1f%%\"></span>"
				      "</span><b>%s</b> <span class=\"pct\">%s</span> ",
			       w, hf_bytes(b).s, hf_percent(b, whole).s);
			hp_location(p, s);
			he_raw(&p->e, " <span class=\"fn\">");
			he_jtext(&p->e, jg(s, "function"), "");
			he_raw(&p->e, "</span></li>");
		}
		he_raw(&p->e, "</ol>");
	}

	static const struct hp_col cols[] = {
		{ .head = "Domain" },
		{ .head = "Allocations", .num = true },
		{ .head = "Reallocs", .num = true },
		{ .head = "Frees", .num = true },
		{ .head = "Failed", .num = true, .tip = "calls that returned NULL" },
		{ .head = "Bytes allocated", .num = true },
		{ .head = "Peak", .num = true, .tip = "most bytes live at once in this domain" },
		{ .head = "Live at exit", .num = true },
		{ .head = "Live blocks", .num = true },
	};
	he_raw(&p->e, "<h3>Allocator domains</h3>");
	if (p->python)
		he_raw(&p->e, "<p class=\"note\">Each domain is counted on its own: a PyObject "
			      "allocation that pymalloc passes on to PyMem_RawMalloc and malloc "
			      "counts in all three.</p>");
	hp_table_open(p, "sortable", cols, sizeof cols / sizeof *cols);
	for (size_t d = 0; d < 4; d++) {
		const json_t *o = jg_obj(doms, hp_domains[d]);
		if (!o || (d && !p->python && hp_num(o, "allocs") == 0))
			continue;
		he_fmt(&p->e, "<tr><td><i class=\"sw\" style=\"background:%s\"></i>%s</td>",
		       hp_domain_colors[d], hp_domains[d]);
		hp_td_count(p, hp_num(o, "allocs"));
		hp_td_count(p, hp_num(o, "reallocs"));
		hp_td_count(p, hp_num(o, "frees"));
		hp_td_count(p, hp_num(o, "failed"));
		hp_td_bytes(p, hp_num(o, "bytes_allocated"));
		hp_td_bytes(p, hp_num(o, "peak_bytes"));
		hp_td_bytes(p, hp_num(o, "live_bytes_at_exit"));
		hp_td_count(p, hp_num(o, "live_blocks_at_exit"));
		he_raw(&p->e, "</tr>");
	}
	hp_table_close(p, 0, 0);
	hp_section_close(p);
}

/* ---- charts over time ------------------------------------------------------ */

static int timeline_read(struct page *p, struct hp_timeline *tl)
{
	const json_t *pts = jg_arr(jg_obj(p->r, "timeline"), "points");
	memset(tl, 0, sizeof *tl);
	tl->n = jg_len(pts);
	if (!tl->n)
		return 0;
	tl->t = calloc(tl->n, sizeof *tl->t);
	for (int k = 0; k < HP_SERIES; k++)
		tl->v[k] = calloc(tl->n, sizeof *tl->v[k]);
	for (int k = 0; k < HP_SERIES; k++)
		if (!tl->v[k] || !tl->t)
			return -1;
	double last = -1e18;
	for (size_t i = 0; i < tl->n; i++) {
		const json_t *pt = json_array_get(pts, i);
		/* time never runs backwards on the chart */
		last = tl->t[i] = fmax(last, hp_num(pt, "time_us"));
		for (int k = 0; k < HP_SERIES; k++)
			tl->v[k][i] = hp_num(pt, hp_timeline_keys[k]);
	}
	return 0;
}

static void timeline_free(struct hp_timeline *tl)
{
	free(tl->t);
	for (int k = 0; k < HP_SERIES; k++)
		free(tl->v[k]);
}

static bool any(const double *v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (v[i] != 0)
			return true;
	return false;
}

static void heap_charts(struct page *p, const struct hp_timeline *tl)
{
	const json_t *peak = jg_obj(jg_obj(p->r, "summary"), "heap_peak");
	struct svg_series s[5];
	size_t ns = 0;
	s[ns++] = (struct svg_series){ p->python ? "heap (malloc + arenas)" : "heap", "heap",
				       C_HEAP, tl->v[0], true };
	for (int d = 0; d < 4; d++)
		if ((d == 0 && p->python) || (d > 0 && any(tl->v[1 + d], tl->n)))
			s[ns++] = (struct svg_series){ hp_domains[d], hp_domains[d], hp_domain_colors[d],
						       tl->v[1 + d], false };
	hp_section_open(p, "heap", "Heap over time");
	if (p->python)
		he_raw(&p->e, "<p class=\"note\">The heap is what the process holds: the malloc "
			      "domain plus the pymalloc arenas. The PyMem domains are drawn "
			      "on their own; they overlap with it.</p>");
	hp_time_chart(p, &(struct hp_time_chart){ "heap over time", "timeline", tl->t, tl->n, s,
						 ns, peak, "bytes" });
	hp_section_close(p);
}

/* ---- sizes ----------------------------------------------------------------- */

/* 1, 2, 4, ..., 512, 1K, ..., 512K, 1M, ...: a bucket's upper bound. */
static void size_label(char *buf, size_t n, double max)
{
	static const char *const sfx[] = { "", "K", "M", "G", "T", "P", "E" };
	double v = max + 1; /* buckets end at 2^k - 1 */
	size_t i = 0;
	while (v >= 1024 && i + 1 < sizeof sfx / sizeof *sfx) {
		v /= 1024;
		i++;
	}
	snprintf(buf, n, "%.0f%s", v, sfx[i]);
}

static void size_histogram(struct page *p)
{
	const json_t *h = jg_arr(jg_obj(p->r, "summary"), "size_histogram");
	size_t n = jg_len(h);
	hp_section_open(p, "sizes", "Requested sizes");
	if (!n) {
		he_raw(&p->e, "<p class=\"empty\">No allocations.</p>");
		hp_section_close(p);
		return;
	}
	char (*names)[24] = calloc(n, sizeof *names);
	const char **np = calloc(n, sizeof *np);
	double *allocs = calloc(n, sizeof *allocs), *bytes = calloc(n, sizeof *bytes);
	if (names && np && allocs && bytes) {
		for (size_t i = 0; i < n; i++) {
			const json_t *b = json_array_get(h, i);
			size_label(names[i], sizeof names[i], hp_num(b, "max"));
			np[i] = names[i];
			allocs[i] = hp_num(b, "allocs");
			bytes[i] = hp_num(b, "bytes");
		}
		he_raw(&p->e, "<p class=\"note\">Allocations of every domain but the raw one, "
			      "in power-of-two buckets by requested size (each bucket is labelled "
			      "with its upper bound).</p><div class=\"pair\"><figure>");
		struct svg_bar_chart c = {
			.title = "allocations by requested size",
			.n = n,
			.names = np,
			.v = { allocs, NULL },
			.series = { "allocations", NULL },
			.color = { C_ALLOCS, NULL },
			.unit = SVG_COUNT,
			.xtitle = "requested size, up to (bytes)",
			.width = 540,
			.height = 260,
		};
		svg_bar_chart(&p->e, &c);
		he_raw(&p->e, "</figure><figure>");
		c.title = "bytes by requested size";
		c.v[0] = bytes;
		c.series[0] = "bytes allocated";
		c.color[0] = C_BYTES;
		c.unit = SVG_BYTES;
		svg_bar_chart(&p->e, &c);
		he_raw(&p->e, "</figure></div>");
	} else {
		p->oom = true;
	}
	free(names);
	free(np);
	free(allocs);
	free(bytes);
	hp_section_close(p);
}

static int marks_read(struct page *p)
{
	const json_t *m = jg_arr(p->r, "marks");
	p->marks = calloc(jg_len(m) + 1, sizeof *p->marks);
	if (!p->marks)
		return -1;
	for (size_t i = 0; i < jg_len(m) && p->nmarks < MAX_CHART_MARKS; i++) {
		if (hp_first_step(m, i))
			continue;
		const json_t *o = json_array_get(m, i);
		p->marks[p->nmarks++] = (struct svg_vline){ hp_num(o, "time_us"), jg(o, "label") };
	}
	return 0;
}

/* ---- flame graph ---------------------------------------------------------------- */

/* A figure for the page's data: whole numbers without a fraction. */
static json_t *number(double v)
{
	if (v == floor(v) && fabs(v) < 0x1p53)
		return json_integer((json_int_t)v);
	return json_real(v);
}

/* The tree for the page's script: [name, bytes, [children...]], children
 * largest first, nodes under min_value left out. */
static json_t *flame_data(const json_t *node, double min_value, int depth)
{
	json_t *name = jg(node, "name"), *kids = json_array(), *o = json_array();
	if (!o || !kids) {
		json_decref(o);
		json_decref(kids);
		return NULL;
	}
	if (json_is_string(name))
		json_array_append(o, name);
	else
		json_array_append_new(o, json_string("?"));
	json_array_append_new(o, number(fmax(0, hp_num(node, "value"))));
	const json_t *ch = jg_arr(node, "children");
	for (size_t i = 0; depth < FLAME_MAX_DEPTH && i < jg_len(ch); i++) {
		const json_t *c = json_array_get(ch, i);
		if (hp_num(c, "value") < min_value || hp_num(c, "value") <= 0)
			continue;
		json_t *k = flame_data(c, min_value, depth + 1);
		if (k)
			json_array_append_new(kids, k);
	}
	json_array_append_new(o, kids);
	return o;
}

static void flame_section(struct page *p)
{
	const json_t *f = jg_obj(p->r, "flame");
	hp_section_open(p, "flame", "Flame graph");
	if (!f || !(hp_num(f, "value") > 0)) {
		he_raw(&p->e, "<p class=\"empty\">No allocations to draw.</p>");
		hp_section_close(p);
		return;
	}
	he_fmt(&p->e, "<p class=\"note\">Bytes allocated by stack (%s in all), callers above "
		      "their callees. Click a frame to zoom in, hover for its figures.</p>",
	       hf_bytes(hp_num(f, "value")).s);
	he_raw(&p->e, "<div class=\"fg-bar\"><button type=\"button\" id=\"fg-reset\">Reset "
		      "zoom</button><input type=\"search\" id=\"fg-search\" placeholder=\"Highlight "
		      "frames matching…\" aria-label=\"highlight frames\"><span id=\"fg-match\">"
		      "</span></div><div id=\"fg\" class=\"fg\"></div><noscript><p class=\"empty\">"
		      "The flame graph needs JavaScript; <code>memtrace report --format folded"
		      "</code> gives the same stacks for other tools.</p></noscript>");
	hp_section_close(p);
}

/* ---- page data and script ----------------------------------------------------------- */

static void page_data(struct page *p, const struct hp_timeline *tl)
{
	json_t *d = json_object(), *t = json_object();
	const json_t *f = jg_obj(p->r, "flame");
	if (!d || !t) {
		json_decref(d);
		json_decref(t);
		p->oom = true;
		return;
	}
	json_t *col = json_array();
	for (size_t i = 0; i < tl->n; i++)
		json_array_append_new(col, number(tl->t[i]));
	json_object_set_new(t, "time_us", col);
	for (int k = 0; k < HP_SERIES; k++) {
		col = json_array();
		for (size_t i = 0; i < tl->n; i++)
			json_array_append_new(col, number(tl->v[k][i]));
		json_object_set_new(t, hp_timeline_keys[k], col);
	}
	json_object_set_new(d, "timeline", t);
	html_memory_data(p, d);
	if (f && hp_num(f, "value") > 0) {
		json_t *tree = flame_data(f, hp_num(f, "value") * FLAME_MIN_SHARE, 0);
		json_object_set_new(d, "flame", tree ? tree : json_null());
	}
	hp_scripts(p, d);
	json_decref(d);
}

static void footer(struct page *p)
{
	const json_t *proc = jg_obj(p->r, "process");
	he_raw(&p->e, "<footer>Generated by memtrace ");
	he_jtext(&p->e, jg(proc, "version"), "");
	he_fmt(&p->e, " from a report of schema version %.0f. Sizes in KiB, MiB, GiB "
		      "(powers of 1024).</footer>\n",
	       hp_num(p->r, "schema_version"));
}

int mt_render_html(const json_t *report, const char *trace_name, FILE *out)
{
	struct page p = { .r = report };
	struct hp_timeline tl = { 0 };
	he_init(&p.e, out);
	p.python = jg_obj(jg_obj(report, "process"), "python") != NULL;
	if (marks_read(&p) || timeline_read(&p, &tl)) {
		p.oom = true;
		goto out;
	}
	head(&p);
	header(&p, trace_name);
	intro(&p);
	nav(&p);
	he_raw(&p.e, "<main>");
	summary(&p);
	html_script_section(&p);
	heap_charts(&p, &tl);
	html_memory_section(&p);
	if (!p.python)
		he_raw(&p.e, "<section class=\"slim\"><p class=\"note\">Not a Python process: no "
			     "pymalloc arenas, pools or list buffers to show.</p></section>");
	if (p.python)
		html_pools_section(&p, &tl);
	size_histogram(&p);
	if (p.python)
		html_lists_section(&p);
	html_sites_table(&p, "sites", "Allocation sites", "sites", BY_PEAK,
		    "Where memory was allocated: the innermost Python line for PyMem and "
		    "PyObject allocations, <code>&lt;native&gt;</code> for the rest. By bytes "
		    "live at the heap peak; click a column to sort.");
	html_sites_table(&p, "leaks", "Live at exit", "leaks", BY_LIVE,
		    "Sites whose blocks were never freed, by bytes still live.");
	html_sites_table(&p, "temporary", "Temporary allocations", "temporary_sites", BY_TEMP,
		    "Allocations freed again by the same thread before it allocated anything "
		    "else (heaptrack's definition).");
	html_marks_section(&p);
	flame_section(&p);
	he_raw(&p.e, "</main>");
	footer(&p);
	page_data(&p, &tl);
	he_raw(&p.e, "</body></html>\n");
out:
	timeline_free(&tl);
	free(p.marks);
	return p.e.err || p.oom || ferror(out) ? -1 : 0;
}
