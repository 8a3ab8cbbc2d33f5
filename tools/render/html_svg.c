/*
 * html_svg.c - inline SVG charts for the HTML report (see html_svg.h).
 * Coordinates are in the viewBox; the page scales the SVG to its width.
 */
#include "html_svg.h"

#include <math.h>
#include <string.h>

#define PAD_LEFT 70
#define PAD_RIGHT 18
#define PAD_BOTTOM 30
#define LABEL_ROWS 3
#define ROW_HEIGHT 14
#define CHAR_WIDTH 6.4 /* of an 11px label, for placing labels apart */
#define MAX_LABEL_CHARS 28
#define MAX_BARS 256 /* a real report has at most 65 (size buckets) */

struct axis {
	double max;  /* the top of the axis (a whole number of steps) */
	double step; /* between ticks */
	double unit; /* tick labels are value / unit, followed by unit_name */
	const char *unit_name;
};

/* A round step giving about `ticks` intervals up to max, in units of `unit`. */
static void nice_axis(struct axis *a, double max, double unit, int ticks)
{
	double scaled = max / unit;
	if (!(scaled > 0) || !isfinite(scaled))
		scaled = 1;
	double raw = scaled / ticks, mag = pow(10, floor(log10(raw))), norm = raw / mag;
	double step = norm <= 1 ? 1 : norm <= 2 ? 2 : norm <= 2.5 ? 2.5 : norm <= 5 ? 5 : 10;
	a->step = step * mag * unit;
	a->max = ceil(scaled / (step * mag) - 1e-9) * a->step;
	a->unit = unit;
}

static void value_axis(struct axis *a, double max, enum svg_unit unit, int ticks)
{
	static const char *const bytes[] = { "B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB" };
	static const char *const counts[] = { "", "k", "M", "G", "T", "P", "E" };
	double base = unit == SVG_BYTES ? 1024 : 1000, u = 1;
	size_t i = 0;
	while (max / u >= base && i + 1 < sizeof bytes / sizeof *bytes) {
		u *= base;
		i++;
	}
	nice_axis(a, max, u, ticks);
	a->unit_name = unit == SVG_BYTES ? bytes[i] : counts[i];
}

static void time_axis(struct axis *a, double max_us, int ticks)
{
	double u = max_us >= 2e6 ? 1e6 : max_us >= 2e3 ? 1e3 : 1;
	nice_axis(a, max_us, u, ticks);
	a->unit_name = u == 1e6 ? "s" : u == 1e3 ? "ms" : "µs";
}

static void tick_label(struct he *e, const struct axis *a, double v, bool space)
{
	if (v == 0) {
		he_raw(e, "0");
		return;
	}
	he_fmt(e, "%g%s%s", round(v / a->unit * 1000) / 1000, space && *a->unit_name ? " " : "",
	       a->unit_name);
}

/* The part of a UTF-8 string that holds at most max characters. */
static size_t utf8_prefix(const char *s, size_t n, size_t max, bool *cut)
{
	size_t chars = 0, i;
	for (i = 0; i < n; i++) {
		if (((unsigned char)s[i] & 0xc0) != 0x80 && chars++ == max)
			break;
	}
	*cut = i < n;
	return i;
}

static size_t utf8_chars(const char *s, size_t n)
{
	size_t chars = 0;
	for (size_t i = 0; i < n; i++)
		chars += ((unsigned char)s[i] & 0xc0) != 0x80;
	return chars;
}

static void legend(struct he *e, const char *const *names, const char *const *colors, size_t n,
		   bool line)
{
	he_raw(e, "<div class=\"legend\">");
	for (size_t i = 0; i < n; i++) {
		if (!names[i])
			continue;
		he_fmt(e, "<span><i class=\"%s\" style=\"background:%s\"></i>", line ? "ln" : "sw",
		       colors[i]);
		he_textz(e, names[i]);
		he_raw(e, "</span>");
	}
	he_raw(e, "</div>");
}

/* ---- line chart ---------------------------------------------------------- */

struct frame {
	double left, right, top, bottom; /* the plot area */
	double x0, x1;                   /* data range on x */
	struct axis xa, ya;
};

static double px(const struct frame *f, double x)
{
	return f->left + (x - f->x0) / (f->x1 - f->x0) * (f->right - f->left);
}

static double py(const struct frame *f, double y)
{
	return f->bottom - y / f->ya.max * (f->bottom - f->top);
}

static void grid(struct he *e, const struct frame *f)
{
	he_raw(e, "<g class=\"grid\">");
	for (int i = 0; i <= 20; i++) {
		double v = i * f->ya.step;
		if (v > f->ya.max * (1 + 1e-9))
			break;
		double y = py(f, v);
		he_fmt(e, "<line x1=\"%.1f\" x2=\"%.1f\" y1=\"%.1f\" y2=\"%.1f\"/>", f->left, f->right,
		       y, y);
		he_fmt(e, "<text class=\"yl\" x=\"%.1f\" y=\"%.1f\">", f->left - 6, y + 4);
		tick_label(e, &f->ya, v, true);
		he_raw(e, "</text>");
	}
	he_raw(e, "</g>");
}

static void time_ticks(struct he *e, const struct frame *f)
{
	he_raw(e, "<g class=\"axis\">");
	he_fmt(e, "<line x1=\"%.1f\" x2=\"%.1f\" y1=\"%.1f\" y2=\"%.1f\"/>", f->left, f->right,
	       f->bottom, f->bottom);
	double first = ceil(f->x0 / f->xa.step - 1e-9) * f->xa.step;
	for (int i = 0; i <= 40; i++) {
		double t = first + i * f->xa.step;
		if (t > f->x1 * (1 + 1e-9))
			break;
		double x = px(f, t);
		he_fmt(e, "<line x1=\"%.1f\" x2=\"%.1f\" y1=\"%.1f\" y2=\"%.1f\"/>", x, x, f->bottom,
		       f->bottom + 4);
		he_fmt(e, "<text class=\"xl\" x=\"%.1f\" y=\"%.1f\">", x, f->bottom + 17);
		tick_label(e, &f->xa, t, true);
		he_raw(e, "</text>");
	}
	he_raw(e, "</g>");
}

static void series_path(struct he *e, const struct frame *f, const struct svg_line_chart *c,
			const struct svg_series *s)
{
	if (s->area) {
		he_fmt(e, "<path class=\"area\" fill=\"%s\" d=\"M%.1f,%.1f", s->color,
		       px(f, c->x[0]), f->bottom);
		for (size_t i = 0; i < c->n; i++)
			he_fmt(e, "L%.1f,%.1f", px(f, c->x[i]), py(f, s->y[i]));
		he_fmt(e, "L%.1f,%.1fZ\"/>", px(f, c->x[c->n - 1]), f->bottom);
	}
	he_fmt(e, "<path class=\"line\" stroke=\"%s\" d=\"", s->color);
	for (size_t i = 0; i < c->n; i++)
		he_fmt(e, "%c%.1f,%.1f", i ? 'L' : 'M', px(f, c->x[i]), py(f, s->y[i]));
	he_raw(e, "\"/>");
}

/* Marks as dashed lines; their labels go in the first of LABEL_ROWS rows
 * above the plot where they do not run into the previous label. */
static void marks(struct he *e, const struct frame *f, const struct svg_line_chart *c)
{
	double row_end[LABEL_ROWS];
	for (int r = 0; r < LABEL_ROWS; r++)
		row_end[r] = -1e9;
	he_raw(e, "<g class=\"marks\">");
	for (size_t i = 0; i < c->nmarks; i++) {
		const struct svg_vline *m = &c->marks[i];
		if (!(m->x >= f->x0 && m->x <= f->x1))
			continue;
		const char *s = json_is_string(m->label) ? json_string_value(m->label) : "";
		size_t n = json_is_string(m->label) ? json_string_length(m->label) : 0;
		bool cut;
		size_t shown = utf8_prefix(s, n, c->mark_numbers ? 0 : MAX_LABEL_CHARS, &cut);
		cut = cut && !c->mark_numbers;
		int digits = snprintf(NULL, 0, "%zu", i + 1);
		double x = px(f, m->x),
		       w = (double)(utf8_chars(s, shown) + cut + (size_t)digits + 1) * CHAR_WIDTH + 10;
		bool left = x + w > f->right + PAD_RIGHT; /* no room right of the line */
		double from = left ? x - w : x, to = left ? x : x + w;
		int row = 0;
		while (row < LABEL_ROWS - 1 && row_end[row] > from)
			row++;
		if (row_end[row] > from) { /* all rows taken: the emptiest one */
			for (int r = 0; r < LABEL_ROWS; r++)
				if (row_end[r] < row_end[row])
					row = r;
		}
		row_end[row] = to;
		double y = f->top - 6 - (LABEL_ROWS - 1 - row) * ROW_HEIGHT;
		he_raw(e, "<g class=\"mark\"><title>");
		he_text(e, s, n);
		he_fmt(e, " (%s)</title>", hf_time(m->x).s);
		he_fmt(e, "<line x1=\"%.1f\" x2=\"%.1f\" y1=\"%.1f\" y2=\"%.1f\"/>", x, x, y + 3,
		       f->bottom);
		he_fmt(e, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"2.5\"/>", x, y + 3);
		he_fmt(e, "<text x=\"%.1f\" y=\"%.1f\"%s>%zu%s", left ? x - 5 : x + 5, y + 1,
		       left ? " text-anchor=\"end\"" : "", i + 1, shown ? " " : "");
		he_text(e, s, shown);
		he_raw(e, cut ? "…</text></g>" : "</text></g>");
	}
	he_raw(e, "</g>");
}

static void peak(struct he *e, const struct frame *f, const struct svg_line_chart *c)
{
	if (!c->have_peak || !(c->peak_x >= f->x0 && c->peak_x <= f->x1))
		return;
	double x = px(f, c->peak_x), y = py(f, c->peak_y);
	bool left = x > (f->left + f->right) / 2;
	he_fmt(e, "<g class=\"peak\"><circle cx=\"%.1f\" cy=\"%.1f\" r=\"4\"/>", x, y);
	he_fmt(e, "<text x=\"%.1f\" y=\"%.1f\"%s>peak %s at %s</text></g>", left ? x - 8 : x + 8,
	       y + 4, left ? " text-anchor=\"end\"" : "", hf_bytes(c->peak_y).s,
	       hf_time(c->peak_x).s);
}

void svg_line_chart(struct he *e, const struct svg_line_chart *c)
{
	const char *names[8], *colors[8];
	size_t nl = 0;
	for (size_t i = 0; i < c->nseries && nl < 8; i++, nl++) {
		names[nl] = c->series[i].name;
		colors[nl] = c->series[i].color;
	}
	legend(e, names, colors, nl, true);
	if (c->n == 0) {
		he_raw(e, "<p class=\"empty\">No samples.</p>");
		return;
	}
	struct frame f = {
		.left = PAD_LEFT,
		.right = c->width - PAD_RIGHT,
		.top = c->nmarks ? 10 + LABEL_ROWS * ROW_HEIGHT : 12,
		.bottom = c->height - PAD_BOTTOM,
		.x0 = c->x[0],
		.x1 = c->x[c->n - 1],
	};
	if (!(f.x1 > f.x0))
		f.x1 = f.x0 + 1;
	double ymax = 0;
	for (size_t s = 0; s < c->nseries; s++)
		for (size_t i = 0; i < c->n; i++)
			ymax = fmax(ymax, c->series[s].y[i]);
	if (c->have_peak)
		ymax = fmax(ymax, c->peak_y);
	value_axis(&f.ya, ymax * 1.05, c->unit, 5);
	time_axis(&f.xa, f.x1 - f.x0, 8);
	he_fmt(e, "<svg class=\"chart\" viewBox=\"0 0 %d %d\" role=\"img\" aria-label=\"%s\"",
	       c->width, c->height, c->title);
	if (c->data) {
		he_fmt(e, " data-hover=\"%s\" data-keys=\"", c->data);
		for (size_t s = 0; s < c->nseries; s++)
			he_fmt(e, "%s%s", s ? "," : "", c->series[s].key);
		he_fmt(e, "\" data-unit=\"%s\" data-l=\"%.1f\" data-r=\"%.1f\" data-t=\"%.1f\" "
			  "data-b=\"%.1f\" data-x0=\"%.17g\" data-x1=\"%.17g\"",
		       c->unit == SVG_BYTES ? "bytes" : "count", f.left, f.right, f.top, f.bottom,
		       f.x0, f.x1);
	}
	he_raw(e, ">");
	grid(e, &f);
	time_ticks(e, &f);
	for (size_t s = c->nseries; s-- > 0;) /* the first series on top */
		series_path(e, &f, c, &c->series[s]);
	marks(e, &f, c);
	peak(e, &f, c);
	he_raw(e, "</svg>");
}

/* ---- bar chart ----------------------------------------------------------- */

static void bar_value(struct he *e, enum svg_unit unit, double v)
{
	he_textz(e, unit == SVG_BYTES ? hf_bytes(v).s : hf_count(v).s);
}

void svg_bar_chart(struct he *e, const struct svg_bar_chart *in)
{
	struct svg_bar_chart capped = *in, *c = &capped;
	size_t nv = c->v[1] ? 2 : 1;
	if (c->n > MAX_BARS)
		c->n = MAX_BARS;
	legend(e, c->series, c->color, nv, false);
	if (c->n == 0) {
		he_raw(e, "<p class=\"empty\">Nothing to show.</p>");
		return;
	}
	struct frame f = {
		.left = PAD_LEFT,
		.right = c->width - PAD_RIGHT,
		.top = 12,
		.bottom = c->height - PAD_BOTTOM - (c->xtitle ? 14 : 0),
	};
	double ymax = 0;
	for (size_t k = 0; k < nv; k++)
		for (size_t i = 0; i < c->n; i++)
			ymax = fmax(ymax, c->v[k][i]);
	value_axis(&f.ya, ymax * 1.05, c->unit, 4);
	double band = (f.right - f.left) / c->n;
	double bar = nv == 2 ? band * 0.38 : band * 0.7;
	/* every k-th category is labelled so that labels keep apart */
	size_t longest = 1;
	for (size_t i = 0; i < c->n; i++)
		longest = strlen(c->names[i]) > longest ? strlen(c->names[i]) : longest;
	size_t every = (size_t)ceil((longest * CHAR_WIDTH + 8) / band);
	he_fmt(e, "<svg class=\"chart bars\" viewBox=\"0 0 %d %d\" role=\"img\" aria-label=\"%s\">",
	       c->width, c->height, c->title);
	grid(e, &f);
	he_raw(e, "<g class=\"axis\">");
	he_fmt(e, "<line x1=\"%.1f\" x2=\"%.1f\" y1=\"%.1f\" y2=\"%.1f\"/>", f.left, f.right,
	       f.bottom, f.bottom);
	for (size_t i = 0; i < c->n; i += every ? every : 1)
		he_fmt(e, "<text class=\"xl\" x=\"%.1f\" y=\"%.1f\">%s</text>",
		       f.left + (i + 0.5) * band, f.bottom + 16, c->names[i]);
	if (c->xtitle)
		he_fmt(e, "<text class=\"xt\" x=\"%.1f\" y=\"%.1f\">%s</text>",
		       (f.left + f.right) / 2, f.bottom + 32, c->xtitle);
	he_raw(e, "</g>");
	for (size_t i = 0; i < c->n; i++) {
		double x = f.left + i * band;
		he_raw(e, "<g class=\"bar\"><title>");
		he_textz(e, c->names[i]);
		for (size_t k = 0; k < nv; k++) {
			he_raw(e, k ? ", " : ": ");
			bar_value(e, c->unit, c->v[k][i]);
			he_raw(e, " ");
			he_textz(e, c->series[k]);
		}
		he_fmt(e, "</title><rect class=\"hit\" x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" "
			  "height=\"%.1f\"/>",
		       x, f.top, band, f.bottom - f.top);
		for (size_t k = 0; k < nv; k++) {
			double v = c->v[k][i], y = py(&f, v);
			if (!(v > 0))
				continue;
			double bx = x + (band - nv * bar) / 2 + k * bar;
			he_fmt(e, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" "
				  "fill=\"%s\"/>",
			       bx, y, fmax(bar - 1, 1), fmax(f.bottom - y, 0.5), c->color[k]);
		}
		he_raw(e, "</g>");
	}
	he_raw(e, "</svg>");
}
