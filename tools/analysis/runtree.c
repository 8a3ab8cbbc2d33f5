/*
 * runtree.c - a run's traces as a tree of processes (runtree.h): finding
 * them by the run's name and id in their headers, linking them by trace
 * ids (never by pid order, which wraps), reading them, and picking the
 * process that leads the report.
 */
#define _GNU_SOURCE /* asprintf */
#include "runtree.h"

#include <dirent.h>
#include <errno.h>
#include <fnmatch.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static bool ends_with(const char *s, const char *tail)
{
	size_t n = strlen(s), t = strlen(tail);
	return n >= t && !strcmp(s + n - t, tail);
}

/* Whether `file` may be a trace of the run whose first trace is named
 * `name`: the name itself, NAME.*.trace for NAME.trace, else NAME.*. */
static bool member_name(const char *name, const char *file)
{
	bool ext = ends_with(name, ".trace");
	size_t stem = strlen(name) - (ext ? 6 : 0);
	if (!strcmp(file, name))
		return true;
	return !strncmp(file, name, stem) && file[stem] == '.' && (!ext || ends_with(file, ".trace"));
}

static void split_path(const char *path, char **dir, const char **base)
{
	const char *slash = strrchr(path, '/');
	*dir = slash ? strndup(path, (size_t)(slash - path + (slash == path))) : strdup(".");
	*base = slash ? slash + 1 : path;
}

/* *p is set either way (empty on failure). */
static int read_header(const char *path, struct mt_process *p)
{
	FILE *f = fopen(path, "rb");
	memset(p, 0, sizeof *p);
	int rc = f ? mt_report_read_header(f, p) : -1;
	if (f)
		fclose(f);
	return rc;
}

static int add_proc(struct mt_run *run, char *path, const struct mt_process *p)
{
	struct mt_run_proc *procs = realloc(run->procs, (run->n + 1) * sizeof *procs);
	if (!procs)
		return -1;
	run->procs = procs;
	procs[run->n++] = (struct mt_run_proc){ .path = path, .process = *p, .parent = -1,
						.pred = -1, .succ = -1, .exit_status = -1 };
	return 0;
}

/* Every trace in dir of a run whose first trace is `name` (of any run
 * when name is NULL) and whose header names a run. */
static int scan_dir(struct mt_run *run, const char *dir, const char *name)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	int rc = 0;
	if (!d)
		return -1;
	while (rc == 0 && (e = readdir(d))) {
		struct mt_process p;
		char *path;
		if (name ? !member_name(name, e->d_name) : !ends_with(e->d_name, ".trace"))
			continue;
		if (asprintf(&path, "%s/%s", dir, e->d_name) < 0) {
			rc = -1;
			break;
		}
		bool member = read_header(path, &p) == 0 && p.run_id;
		if (member && add_proc(run, path, &p) == 0)
			continue; /* the run keeps path and p */
		rc = member ? -1 : 0;
		mt_process_free(&p);
		free(path);
	}
	closedir(d);
	return rc;
}

/* Keeps the traces of the run of `id` (0: of the one run there is). */
static int one_run(struct mt_run *run, uint64_t id, const char *where, char *err, size_t errlen)
{
	size_t kept = 0, others = 0;
	if (!id && run->n)
		id = run->procs[0].process.run_id;
	for (size_t i = 0; i < run->n; i++) {
		struct mt_run_proc *p = &run->procs[i];
		if (p->process.run_id == id) {
			run->procs[kept++] = *p;
			continue;
		}
		others++;
		free(p->path);
		mt_process_free(&p->process);
	}
	run->n = kept;
	run->id = id;
	if (others && !where[0])
		return 0;
	if (others) {
		snprintf(err, errlen, "%s holds the traces of several runs: name one of their traces",
			 where);
		return -1;
	}
	if (!kept) {
		snprintf(err, errlen, "%s: no trace of a run found", where);
		return -1;
	}
	return 0;
}

/* Started first, first. */
static int by_start(const void *a, const void *b)
{
	const struct mt_run_proc *x = a, *y = b;
	if (x->process.start_ns != y->process.start_ns)
		return x->process.start_ns < y->process.start_ns ? -1 : 1;
	return strcmp(x->path, y->path);
}

static int index_of(const struct mt_run *run, uint64_t trace_id)
{
	for (size_t i = 0; trace_id && i < run->n; i++)
		if (run->procs[i].process.trace_id == trace_id)
			return (int)i;
	return -1;
}

static void link_tree(struct mt_run *run)
{
	qsort(run->procs, run->n, sizeof *run->procs, by_start);
	for (size_t i = 0; i < run->n; i++) {
		struct mt_run_proc *p = &run->procs[i];
		p->parent = index_of(run, p->process.parent_trace);
		p->pred = index_of(run, p->process.exec_pred);
		if (p->pred >= 0)
			run->procs[p->pred].succ = (int)i;
	}
}

/* A trace alone: one that names no run. */
static int single(struct mt_run *run, const char *path, struct mt_process *p)
{
	char *copy = strdup(path);
	if (!copy || add_proc(run, copy, p)) {
		free(copy);
		return -1;
	}
	run->name = strdup(path);
	return run->name ? 0 : -1;
}

/* The traces of the run whose first trace is dir/name: of run `id`, or,
 * when 0, of the run of dir/name itself if it exists, else of the one run
 * such names hold. */
static int find_by_name(struct mt_run *run, const char *dir, const char *name, uint64_t id,
			const char *arg, char *err, size_t errlen)
{
	if (asprintf(&run->name, "%s/%s", dir, name) < 0) {
		run->name = NULL;
		return -1;
	}
	if (!id) {
		struct mt_process p;
		if (read_header(run->name, &p) == 0)
			id = p.run_id;
		mt_process_free(&p);
	}
	if (scan_dir(run, dir, name))
		return -1;
	return one_run(run, id, id ? "" : arg, err, errlen);
}

static int find_in_dir(struct mt_run *run, const char *dir, char *err, size_t errlen)
{
	if (scan_dir(run, dir, NULL) || one_run(run, 0, dir, err, errlen))
		return -1;
	const struct mt_bytes *b = &run->procs[0].process.run_name;
	if (asprintf(&run->name, "%s/%.*s", dir, (int)b->n, b->p ? (const char *)b->p : "") < 0) {
		run->name = NULL;
		return -1;
	}
	return 0;
}

/* A trace: its run, found by the name and id in its header; a trace of no
 * run, or renamed since, alone. */
static int find_from_trace(struct mt_run *run, const char *dir, const char *base,
			   const char *path, char *err, size_t errlen)
{
	struct mt_process p;
	if (read_header(path, &p)) {
		snprintf(err, errlen, "%s: not a readable trace", path);
		return -1;
	}
	char *name = p.run_name.p ? strndup((const char *)p.run_name.p, p.run_name.n) : NULL;
	int rc;
	if (!p.run_id || !name || strchr(name, '/') || !member_name(name, base)) {
		rc = single(run, path, &p);
	} else {
		rc = find_by_name(run, dir, name, p.run_id, path, err, errlen);
		mt_process_free(&p);
	}
	free(name);
	return rc;
}

int mt_run_find(const char *arg, struct mt_run *run, char *err, size_t errlen)
{
	struct stat st;
	char *dir, *name = NULL;
	const char *base;
	int rc;
	memset(run, 0, sizeof *run);
	run->lead = -1;
	err[0] = 0;
	split_path(arg, &dir, &base);
	if (stat(arg, &st) == 0 && S_ISDIR(st.st_mode))
		rc = find_in_dir(run, arg, err, errlen);
	else if (stat(arg, &st) == 0)
		rc = find_from_trace(run, dir, base, arg, err, errlen);
	else if (asprintf(&name, ends_with(base, ".trace") ? "%s" : "%s.trace", base) < 0)
		rc = -1, name = NULL;
	else
		rc = find_by_name(run, dir, name, 0, arg, err, errlen);
	free(dir);
	free(name);
	if (rc) {
		if (!err[0])
			snprintf(err, errlen, "%s: %s", arg, strerror(errno ? errno : ENOMEM));
		mt_run_free(run);
		return -1;
	}
	link_tree(run);
	return 0;
}

/* ---- reading the traces ----------------------------------------------------- */

const char *mt_run_proc_exe(const struct mt_run_proc *p, char *buf, size_t cap)
{
	const struct mt_bytes *exe = &p->process.exe;
	if (!exe->p || !exe->n)
		return "?";
	const uint8_t *slash = memrchr(exe->p, '/', exe->n);
	size_t from = slash ? (size_t)(slash - exe->p) + 1 : 0;
	snprintf(buf, cap, "%.*s", (int)(exe->n - from), (const char *)exe->p + from);
	return buf;
}

const char *mt_run_proc_end(const struct mt_run_proc *p, char *buf, size_t cap)
{
	if (p->status != MT_REPORT_OK && p->status != MT_REPORT_TORN)
		return "unreadable";
	if (!p->complete)
		return "no footer";
	if (p->end_reason == MT_END_EXEC)
		return "exec";
	if (p->exit_status < 0)
		return "exit";
	snprintf(buf, cap, "%d", p->exit_status);
	return buf;
}

static bool any_selector(const struct mt_run_select *sel)
{
	return sel->all || sel->pid >= 0 || sel->exe;
}

static bool selected(const struct mt_run_proc *p, const struct mt_run_select *sel)
{
	char buf[256];
	if (sel->all)
		return true;
	if (sel->pid >= 0 && (p->process.have & MT_HAVE_PID) && p->process.pid == (uint64_t)sel->pid)
		return true;
	return sel->exe && fnmatch(sel->exe, mt_run_proc_exe(p, buf, sizeof buf), 0) == 0;
}

static bool readable(const struct mt_run_proc *p)
{
	return p->status == MT_REPORT_OK || p->status == MT_REPORT_TORN;
}

/* The last image of the top process's exec chain that has a trace. */
static int top_last(const struct mt_run *run)
{
	int last = -1;
	for (size_t i = 0; i < run->n; i++)
		if (run->procs[i].process.run_top && run->procs[i].succ < 0)
			last = (int)i;
	return last;
}

static void drop_report(struct mt_run_proc *p)
{
	if (p->report)
		mt_report_free(p->report);
	free(p->report);
	p->report = NULL;
}

/* Reads one trace; its report stays in p->report. */
static void read_proc(struct mt_run_proc *p, mt_run_build_fn *build, void *arg)
{
	FILE *f = fopen(p->path, "rb");
	p->report = calloc(1, sizeof *p->report);
	if (!f || !p->report) {
		p->status = MT_REPORT_FAILED;
		snprintf(p->error, sizeof p->error, "%s", strerror(f ? ENOMEM : errno));
		if (f)
			fclose(f);
		free(p->report);
		p->report = NULL;
		return;
	}
	p->status = build(f, p->path, p->report, arg);
	fclose(f);
	const struct mt_report *r = p->report;
	if (!readable(p)) {
		snprintf(p->error, sizeof p->error, "%s", r->error);
		drop_report(p);
		return;
	}
	snprintf(p->error, sizeof p->error, "%s", r->error);
	p->events = r->events.total;
	p->heap_peak = r->heap.peak;
	p->live = r->heap.live;
	p->object_allocator = r->process.have & MT_HAVE_PYTHON ? mt_object_allocator(r) : NULL;
	p->complete = r->trace.complete;
	p->end_reason = r->trace.end_reason;
	p->exit_status = r->trace.exit_status;
}

/* Without selectors only two reports are kept while reading: the top's
 * last program's and the busiest so far. */
int mt_run_load(struct mt_run *run, const struct mt_run_select *sel, mt_run_build_fn *build,
		void *arg, char *err, size_t errlen)
{
	int top = top_last(run), busiest = -1;
	bool any = any_selector(sel);
	for (size_t i = 0; i < run->n; i++) {
		struct mt_run_proc *p = &run->procs[i];
		read_proc(p, build, arg);
		if (!readable(p))
			continue;
		bool busier = busiest < 0 || p->events > run->procs[busiest].events;
		p->chosen = any && selected(p, sel);
		if (busier && busiest >= 0 && busiest != top && !run->procs[busiest].chosen)
			drop_report(&run->procs[busiest]);
		if (busier)
			busiest = (int)i;
		else if (!p->chosen && (int)i != top)
			drop_report(p);
	}
	bool top_led = top >= 0 && readable(&run->procs[top]) &&
		       run->procs[top].events * MT_RUN_LEAD_FACTOR >= run->procs[busiest].events;
	run->lead = top_led ? top : busiest;
	run->lead_reason = top_led ? MT_LEAD_LAST_PROGRAM : MT_LEAD_BUSIEST;
	if (!any && run->lead >= 0)
		run->procs[run->lead].chosen = true;
	size_t chosen = 0;
	for (size_t i = 0; i < run->n; i++) {
		if (!run->procs[i].chosen)
			drop_report(&run->procs[i]);
		chosen += run->procs[i].chosen;
	}
	if (any && !chosen) {
		snprintf(err, errlen, "no readable trace of the run matches the selection");
		return -1;
	}
	return 0;
}

void mt_run_free(struct mt_run *run)
{
	for (size_t i = 0; i < run->n; i++) {
		drop_report(&run->procs[i]);
		mt_process_free(&run->procs[i].process);
		free(run->procs[i].path);
	}
	free(run->procs);
	free(run->name);
	memset(run, 0, sizeof *run);
}
