/*
 * output_text.c - the report for people: labelled sections, numbers with
 * thousands separators, one column per allocator domain.  Scripts should
 * read the JSON instead; this layout may change.
 */
#include "output.h"

#include <ctype.h>
#include <stddef.h>
#include <string.h>
#include <time.h>

#define LABEL_WIDTH 20

/* v with thousands separators; buf must hold 27 bytes. */
static const char *grouped(uint64_t v, char *buf)
{
	char digits[21];
	int n = snprintf(digits, sizeof digits, "%llu", (unsigned long long)v), o = 0;
	for (int i = 0; i < n; i++) {
		if (i && (n - i) % 3 == 0)
			buf[o++] = ',';
		buf[o++] = digits[i];
	}
	buf[o] = 0;
	return buf;
}

/* Header bytes come from the traced process: keep control characters off
 * the terminal. */
static void put_bytes(FILE *out, const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (p[i] < 0x80 && !isprint(p[i]))
			fprintf(out, "\\x%02x", p[i]);
		else
			fputc(p[i], out);
	}
}

static void put_arg(FILE *out, const uint8_t *p, size_t n)
{
	bool quote = n == 0 || memchr(p, ' ', n) || memchr(p, '\'', n);
	if (quote)
		fputc('\'', out);
	put_bytes(out, p, n);
	if (quote)
		fputc('\'', out);
}

static void label(FILE *out, const char *name)
{
	fprintf(out, "  %-*s", LABEL_WIDTH - 2, name);
}

static void line_num(FILE *out, const char *name, uint64_t v)
{
	char buf[27];
	label(out, name);
	fprintf(out, "%s\n", grouped(v, buf));
}

/* An optional header figure; ids are printed without separators. */
static void line_opt(FILE *out, const char *name, bool have, uint64_t v, bool is_id)
{
	char buf[27];
	label(out, name);
	if (!have)
		fputs("-\n", out);
	else if (is_id)
		fprintf(out, "%llu\n", (unsigned long long)v);
	else
		fprintf(out, "%s\n", grouped(v, buf));
}

static void line_bytes(FILE *out, const char *name, const struct mt_bytes *b)
{
	label(out, name);
	if (b->p)
		put_bytes(out, b->p, b->n);
	else
		fputc('-', out);
	fputc('\n', out);
}

static void line_argv(FILE *out, const struct mt_bytes *b)
{
	label(out, "argv");
	if (!b->p)
		fputc('-', out);
	for (size_t i = 0; b->p && i < b->n;) {
		const uint8_t *nul = memchr(b->p + i, 0, b->n - i);
		size_t len = nul ? (size_t)(nul - (b->p + i)) : b->n - i;
		if (i)
			fputc(' ', out);
		put_arg(out, b->p + i, len);
		i += len + 1;
	}
	fputc('\n', out);
}

static void line_start(FILE *out, const struct mt_process *p)
{
	time_t secs = (time_t)(p->start_ns / 1000000000u);
	struct tm tm;
	char buf[64];
	if (!(p->have & MT_HAVE_START) || !gmtime_r(&secs, &tm) ||
	    !strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S", &tm)) {
		line_opt(out, "started (unix ns)", p->have & MT_HAVE_START, p->start_ns, true);
		return;
	}
	label(out, "started");
	fprintf(out, "%s.%03u UTC\n", buf, (unsigned)(p->start_ns % 1000000000u / 1000000u));
}

static void process_section(FILE *out, const struct mt_process *p)
{
	fputs("process\n", out);
	line_opt(out, "pid", p->have & MT_HAVE_PID, p->pid, true);
	line_opt(out, "ppid", p->have & MT_HAVE_PPID, p->ppid, true);
	line_bytes(out, "exe", &p->exe);
	line_argv(out, &p->argv);
	line_start(out, p);
	line_opt(out, "page size", p->have & MT_HAVE_PAGE_SIZE, p->page_size, false);
	line_bytes(out, "memtrace version", &p->version);
}

static void trace_section(FILE *out, const struct mt_report *rep)
{
	char buf[27];
	const char *reason = mt_end_reason_name(rep->trace.end_reason);
	fputs("\ntrace\n", out);
	label(out, "complete");
	if (rep->trace.complete)
		fprintf(out, "yes, ended by %s\n", reason ? reason : "an unrecorded reason");
	else
		fputs("no (no final footer: the process did not finish)\n", out);
	line_num(out, "event blocks", rep->trace.blocks);
	label(out, "duration");
	fprintf(out, "%s us (%.3f s)\n", grouped(rep->trace.duration_us, buf),
		(double)rep->trace.duration_us / 1e6);
	line_num(out, "threads", rep->trace.threads);
}

static void events_section(FILE *out, const struct mt_report *rep)
{
	fputs("\nevents\n", out);
	line_num(out, "allocator calls", rep->events.total);
	line_num(out, "lost", rep->events.lost);
	line_num(out, "producer waits", rep->events.producer_waits);
}

static const struct {
	const char *name;
	size_t off;
} rows[] = {
	{ "allocs", offsetof(struct mt_dom_stats, allocs) },
	{ "reallocs", offsetof(struct mt_dom_stats, reallocs) },
	{ "frees", offsetof(struct mt_dom_stats, frees) },
	{ "failed", offsetof(struct mt_dom_stats, failed) },
	{ "bytes allocated", offsetof(struct mt_dom_stats, bytes_allocated) },
	{ "peak bytes", offsetof(struct mt_dom_stats, peak_bytes) },
	{ "live bytes at exit", offsetof(struct mt_dom_stats, live_bytes) },
	{ "live blocks at exit", offsetof(struct mt_dom_stats, live_blocks) },
	{ "unmatched frees", offsetof(struct mt_dom_stats, unmatched_frees) },
	{ "inconsistent", offsetof(struct mt_dom_stats, inconsistent) },
};
#define NROWS (sizeof rows / sizeof rows[0])

static uint64_t cell(const struct mt_dom_stats *s, size_t row)
{
	uint64_t v;
	memcpy(&v, (const char *)s + rows[row].off, sizeof v);
	return v;
}

static void domains_section(FILE *out, const struct mt_report *rep)
{
	char buf[27];
	int width[MT_DOM_COUNT];
	for (int d = 0; d < MT_DOM_COUNT; d++) {
		width[d] = (int)strlen(mt_domain_name(d));
		for (size_t r = 0; r < NROWS; r++) {
			int w = (int)strlen(grouped(cell(&rep->dom[d], r), buf));
			width[d] = w > width[d] ? w : width[d];
		}
	}
	fprintf(out, "\n%-*s", LABEL_WIDTH + 1, "domains");
	for (int d = 0; d < MT_DOM_COUNT; d++)
		fprintf(out, "  %*s", width[d], mt_domain_name(d));
	fputc('\n', out);
	for (size_t r = 0; r < NROWS; r++) {
		fprintf(out, "  %-*s", LABEL_WIDTH - 1, rows[r].name);
		for (int d = 0; d < MT_DOM_COUNT; d++)
			fprintf(out, "  %*s", width[d], grouped(cell(&rep->dom[d], r), buf));
		fputc('\n', out);
	}
}

int mt_output_text(const struct mt_report *rep, const char *trace_name, FILE *out)
{
	if (trace_name)
		fprintf(out, "memtrace report: %s\n\n", trace_name);
	process_section(out, &rep->process);
	trace_section(out, rep);
	events_section(out, rep);
	domains_section(out, rep);
	return ferror(out) ? -1 : 0;
}
