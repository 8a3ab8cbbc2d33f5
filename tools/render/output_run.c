/*
 * output_run.c - the report of a run (runtree.h): the process that did
 * the work (or the chosen ones) in full, then the rest of the tree in one
 * table grouped by executable.  In JSON: the tree with its parent,
 * exec-predecessor and child links, then the chosen reports
 * (docs/report-schema.md).
 */
#include "output_run.h"

#include <stdlib.h>
#include <string.h>

#include "output.h"
#include "text_table.h"

#define ENDINGS 4 /* distinct endings told apart in a group; the rest are "other" */

/* The processes of one executable that are not shown in full. */
struct group {
	const char *exe;
	size_t count;
	uint64_t events, heap_peak;
	struct {
		char word[16];
		size_t count;
	} ends[ENDINGS + 1];
};

static void count_ending(struct group *g, const char *word)
{
	int k = 0;
	while (k < ENDINGS && g->ends[k].count && strcmp(g->ends[k].word, word))
		k++;
	if (!g->ends[k].count)
		snprintf(g->ends[k].word, sizeof g->ends[k].word, "%s", k < ENDINGS ? word : "other");
	g->ends[k].count++;
}

/* "0 x3, exec x1" */
static void endings(const struct group *g, char *buf, size_t cap)
{
	size_t len = 0;
	buf[0] = 0;
	for (int k = 0; k <= ENDINGS && g->ends[k].count && len < cap; k++)
		len += (size_t)snprintf(buf + len, cap - len, "%s%s x%zu", k ? ", " : "",
					g->ends[k].word, g->ends[k].count);
}

static int by_events(const void *a, const void *b)
{
	const struct group *x = a, *y = b;
	return x->events != y->events ? (x->events < y->events ? 1 : -1) : strcmp(x->exe, y->exe);
}

/* The groups of the processes not shown, busiest first; *n gets their
 * number.  names holds each process's executable name. */
static struct group *groups(const struct mt_run *run, const bool *shown, char (*names)[256],
			    size_t *n)
{
	struct group *g = calloc(run->n ? run->n : 1, sizeof *g);
	char end[64];
	*n = 0;
	for (size_t i = 0; g && i < run->n; i++) {
		const struct mt_run_proc *p = &run->procs[i];
		const char *exe = mt_run_proc_exe(p, names[i], sizeof names[i]);
		size_t k = 0;
		if (shown[i])
			continue;
		while (k < *n && strcmp(g[k].exe, exe))
			k++;
		if (k == *n)
			g[(*n)++] = (struct group){ .exe = exe };
		g[k].count++;
		g[k].events += p->events;
		g[k].heap_peak = p->heap_peak > g[k].heap_peak ? p->heap_peak : g[k].heap_peak;
		count_ending(&g[k], mt_run_proc_end(p, end, sizeof end));
	}
	if (g)
		qsort(g, *n, sizeof *g, by_events);
	return g;
}

static void rest_table(const struct mt_run *run, const bool *shown, FILE *out)
{
	static const char *const head[] = { "processes", "allocator calls", "heap peak (max)",
					    "ended", "executable" };
	char (*names)[256] = calloc(run->n ? run->n : 1, sizeof *names);
	size_t n = 0;
	struct group *g = names ? groups(run, shown, names, &n) : NULL;
	struct table t;
	char cell[TCELL];
	if (n) {
		table_init(&t, 5, head);
		for (size_t k = 0; k < n; k++) {
			size_t row = table_row(&t, g[k].exe);
			table_num(&t, row, 0, g[k].count);
			table_num(&t, row, 1, g[k].events);
			table_num(&t, row, 2, g[k].heap_peak);
			endings(&g[k], cell, sizeof cell);
			table_str(&t, row, 3, cell);
		}
		fputs("\nthe rest of the run, by executable\n", out);
		table_print(out, &t);
		fprintf(out, "report any of them: memtrace report --pid PID %s "
			     "(or --exe NAME, or --all)\n", run->name);
	}
	free(g);
	free(names);
}

static void lead_line(const struct mt_run *run, FILE *out)
{
	char exe[256], other[256], calls[27];
	const struct mt_run_proc *p = &run->procs[run->lead];
	fprintf(out, "leading with %s (pid %llu, %s): ", mt_run_proc_exe(p, exe, sizeof exe),
		(unsigned long long)p->process.pid, p->path);
	if (run->lead_reason == MT_LEAD_LAST_PROGRAM) {
		fputs("the last program the command ran\n", out);
		return;
	}
	fputs("the process with the most allocator calls", out);
	for (size_t i = 0; i < run->n; i++) {
		const struct mt_run_proc *q = &run->procs[i];
		if (q->process.run_top && q->succ < 0 && (int)i != run->lead)
			fprintf(out, "; the command's last program, %s, made %s",
				mt_run_proc_exe(q, other, sizeof other), grouped(q->events, calls));
	}
	fputc('\n', out);
}

int mt_output_run_text(const struct mt_run *run, FILE *out)
{
	bool *shown = calloc(run->n ? run->n : 1, sizeof *shown);
	if (!shown)
		return -1;
	fprintf(out, "memtrace report: run %s, %zu traces\n", run->name, run->n);
	if (run->lead >= 0)
		lead_line(run, out);
	for (size_t i = 0; i < run->n; i++) {
		const struct mt_run_proc *p = &run->procs[i];
		shown[i] = p->chosen;
		if (p->chosen) {
			fputs("\n", out);
			mt_output_text(p->report, p->path, out);
		}
	}
	rest_table(run, shown, out);
	free(shown);
	return ferror(out) ? -1 : 0;
}

/* ---- JSON ------------------------------------------------------------------- */

static json_t *id_of(const struct mt_run *run, int i)
{
	return i >= 0 ? mt_json_id(run->procs[i].process.trace_id) : json_null();
}

static json_t *num(uint64_t v)
{
	return json_integer(v > INT64_MAX ? INT64_MAX : (json_int_t)v);
}

/* Paths are bytes; one that is not UTF-8 is null rather than lost. */
static json_t *string(const char *s)
{
	json_t *v = json_string(s);
	return v ? v : json_null();
}

static json_t *node_json(const struct mt_run *run, size_t i)
{
	const struct mt_run_proc *p = &run->procs[i];
	json_t *o = mt_process_to_json(&p->process, p->object_allocator), *children = json_array();
	char end[64];
	bool ok = p->status == MT_REPORT_OK || p->status == MT_REPORT_TORN;
	/* a child process by its first image; its next ones follow from it */
	for (size_t j = 0; j < run->n; j++)
		if (run->procs[j].parent == (int)i && run->procs[j].pred < 0)
			json_array_append_new(children, id_of(run, (int)j));
	json_object_del(o, "run");
	json_object_set_new(o, "trace_id", id_of(run, (int)i));
	json_object_set_new(o, "trace_file", string(p->path));
	json_object_set_new(o, "top", json_boolean(p->process.run_top));
	json_object_set_new(o, "parent", id_of(run, p->parent));
	json_object_set_new(o, "exec_predecessor", id_of(run, p->pred));
	json_object_set_new(o, "exec_successor", id_of(run, p->succ));
	json_object_set_new(o, "children", children);
	json_object_set_new(o, "readable", json_boolean(ok));
	json_object_set_new(o, "error", ok && !p->error[0] ? json_null() : string(p->error));
	json_object_set_new(o, "events", num(p->events));
	json_object_set_new(o, "heap_peak", num(p->heap_peak));
	json_object_set_new(o, "live_at_exit", num(p->live));
	json_object_set_new(o, "complete", json_boolean(p->complete));
	json_object_set_new(o, "ended", string(mt_run_proc_end(p, end, sizeof end)));
	json_object_set_new(o, "exit_status",
			    p->exit_status >= 0 ? num((uint64_t)p->exit_status) : json_null());
	return o;
}

static json_t *run_json(const struct mt_run *run)
{
	static const char *const reasons[] = { [MT_LEAD_LAST_PROGRAM] = "last_program",
					       [MT_LEAD_BUSIEST] = "busiest" };
	json_t *o = json_object(), *procs = json_array();
	for (size_t i = 0; i < run->n; i++)
		json_array_append_new(procs, node_json(run, i));
	json_object_set_new(o, "id", mt_json_id(run->id));
	json_object_set_new(o, "name", string(run->name));
	json_object_set_new(o, "traces", num(run->n));
	json_object_set_new(o, "lead", id_of(run, run->lead));
	json_object_set_new(o, "lead_reason",
			    run->lead >= 0 ? json_string(reasons[run->lead_reason]) : json_null());
	json_object_set_new(o, "processes", procs);
	return o;
}

int mt_output_run_json(const struct mt_run *run, FILE *out)
{
	json_t *root = json_object(), *reports = json_array();
	for (size_t i = 0; i < run->n; i++) {
		const struct mt_run_proc *p = &run->procs[i];
		json_t *r = p->chosen ? mt_report_to_json(p->report) : NULL;
		if (r) {
			json_object_set_new(r, "trace_file", string(p->path));
			json_array_append_new(reports, r);
		}
	}
	json_object_set_new(root, "format", json_string("memtrace-run"));
	json_object_set_new(root, "schema_version", json_integer(MT_REPORT_SCHEMA_VERSION));
	json_object_set_new(root, "run", run_json(run));
	json_object_set_new(root, "reports", reports);
	return mt_json_dump(root, out);
}
