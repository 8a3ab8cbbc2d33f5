/*
 * test_runtree.c - a run's traces as a tree (tools/analysis/runtree.c) on traces
 * synthesised into a directory: membership by the run id in the headers,
 * not by file name alone; parent and exec links by trace id, whatever the
 * pids (they wrap); and the lead: the top process's last program, unless
 * another process made ten times as many allocator calls.
 */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "runtree.h"
#include "tracegen.h"

#define RUN 0x1234abcdull

struct proc {
	const char *file, *exe;
	uint64_t pid, start_ns, trace_id, parent, pred, run;
	int top;
	uint64_t mallocs; /* allocator calls it makes */
};

static char dir[64];

/* One trace file as the preload library writes it: the header with the
 * run's keys, `mallocs` allocations, a footer. */
static void write_trace(const struct proc *p)
{
	struct tg t;
	char path[128];
	size_t n = 0;
	tg_init(&t);
	n = mt_kv_put_u64(t.kv, n, MT_H_PID, p->pid);
	n = mt_kv_put_u64(t.kv, n, MT_H_START_NS, p->start_ns);
	n = mt_kv_put_bytes(t.kv, n, MT_H_EXE, p->exe, strlen(p->exe));
	n = mt_kv_put_u64(t.kv, n, MT_H_TRACE_ID, p->trace_id);
	if (p->parent)
		n = mt_kv_put_u64(t.kv, n, MT_H_PARENT_TRACE, p->parent);
	if (p->pred)
		n = mt_kv_put_u64(t.kv, n, MT_H_EXEC_PRED, p->pred);
	n = mt_kv_put_u64(t.kv, n, MT_H_RUN_ID, p->run);
	if (p->top)
		n = mt_kv_put_u64(t.kv, n, MT_H_RUN_TOP, 1);
	n = mt_kv_put_bytes(t.kv, n, MT_H_RUN_NAME, "r.trace", 7);
	t.kv_len = n;
	tg_kv_block(&t, MT_BLOCK_HEADER);
	tg_thread(&t, p->pid);
	for (uint64_t i = 0; i < p->mallocs; i++)
		tg_malloc(&t, MT_DOM_MALLOC, 16, 0x10000 + 16 * i);
	tg_flush(&t);
	tg_footer(&t, 0, 0, p->pred || !p->top ? MT_END_EXIT : MT_END_EXEC);
	snprintf(path, sizeof path, "%s/%s", dir, p->file);
	FILE *f = fopen(path, "wb");
	assert_non_null(f);
	assert_int_equal(fwrite(t.data, 1, t.len, f), t.len);
	fclose(f);
	tg_free(&t);
}

static enum mt_report_status build(FILE *f, const char *path, struct mt_report *rep, void *arg)
{
	(void)path;
	(void)arg;
	return mt_report_build(f, rep);
}

static int setup(void **state)
{
	(void)state;
	snprintf(dir, sizeof dir, "/tmp/mt-runtree.XXXXXX");
	return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state)
{
	char cmd[128];
	(void)state;
	snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
	return system(cmd);
}

/* A shell (pid 32760) runs a helper with a smaller pid (pids wrapped),
 * then execs the interpreter; an older run left a trace of the same name. */
static const struct proc shell = { "r.trace", "/bin/sh", 32760, 100, 1, 0, 0, RUN, 1, 50 };
static const struct proc helper = { "r.5.trace", "/bin/cat", 5, 200, 2, 1, 0, RUN, 0, 20 };
static const struct proc python = { "r.32760.trace", "/usr/bin/python3.11", 32760, 300, 3, 0, 1,
				    RUN, 1, 400 };
static const struct proc stranger = { "r.77.trace", "/bin/ls", 77, 50, 9, 0, 0, RUN + 1, 0, 5 };

static struct mt_run load(const char *arg, const struct mt_run_select *sel)
{
	struct mt_run run;
	char err[300];
	int rc = mt_run_find(arg, &run, err, sizeof err);
	if (rc)
		fail_msg("%s", err);
	rc = mt_run_load(&run, sel, build, NULL, err, sizeof err);
	if (rc)
		fail_msg("%s", err);
	return run;
}

static void test_links_and_membership(void **state)
{
	struct mt_run_select none = { .pid = -1 };
	char path[128];
	(void)state;
	write_trace(&shell);
	write_trace(&helper);
	write_trace(&python);
	write_trace(&stranger);
	snprintf(path, sizeof path, "%s/r.5.trace", dir);
	struct mt_run run = load(path, &none);
	assert_int_equal(run.id, RUN);
	assert_int_equal(run.n, 3); /* not the other run's trace */
	/* by start time: the shell, the helper, the interpreter */
	assert_memory_equal(run.procs[0].process.exe.p, "/bin/sh", 7);
	assert_int_equal(run.procs[1].process.pid, 5);
	assert_int_equal(run.procs[1].parent, 0);
	assert_int_equal(run.procs[1].pred, -1);
	assert_int_equal(run.procs[2].pred, 0);
	assert_int_equal(run.procs[0].succ, 2);
	assert_int_equal(run.procs[0].parent, -1);
	assert_int_equal(run.procs[2].events, 400);
	/* 400 < 10 x 400: the top's last program leads */
	assert_int_equal(run.lead, 2);
	assert_int_equal(run.lead_reason, MT_LEAD_LAST_PROGRAM);
	assert_true(run.procs[2].chosen && run.procs[2].report);
	assert_false(run.procs[1].chosen || run.procs[1].report);
	mt_run_free(&run);
	/* the run's name without .trace finds the same run, and so does the
	 * directory once the other run's trace is gone */
	snprintf(path, sizeof path, "%s/r", dir);
	run = load(path, &none);
	assert_int_equal(run.n, 3);
	mt_run_free(&run);
	snprintf(path, sizeof path, "%s/r.77.trace", dir);
	unlink(path);
	run = load(dir, &none);
	assert_int_equal(run.n, 3);
	mt_run_free(&run);
}

static void test_lead_gives_way_to_the_busiest(void **state)
{
	struct mt_run_select none = { .pid = -1 }, cat = { .pid = -1, .exe = "ca?" };
	struct proc quiet = python, busy = helper;
	char path[128];
	(void)state;
	quiet.mallocs = 40; /* 40 x 10 = 400: still leads against 400 */
	busy.mallocs = 400;
	write_trace(&shell);
	write_trace(&busy);
	write_trace(&quiet);
	snprintf(path, sizeof path, "%s/r.trace", dir);
	struct mt_run run = load(path, &none);
	assert_int_equal(run.lead, 2);
	mt_run_free(&run);
	busy.mallocs = 401; /* more than ten times as many: the helper leads */
	write_trace(&busy);
	run = load(path, &none);
	assert_int_equal(run.lead, 1);
	assert_int_equal(run.lead_reason, MT_LEAD_BUSIEST);
	mt_run_free(&run);
	/* a selector shows what it selects, the lead alone is not shown */
	run = load(path, &cat);
	assert_true(run.procs[1].chosen);
	assert_false(run.procs[2].chosen || run.procs[0].chosen);
	mt_run_free(&run);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_links_and_membership, setup, teardown),
		cmocka_unit_test_setup_teardown(test_lead_gives_way_to_the_busiest, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
