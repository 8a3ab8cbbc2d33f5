/*
 * test_pydesc.c - preload/pydesc.c alone: which interpreters get a
 * description of their frames, from what, and which are refused (and
 * why), with the interpreter's symbols faked.  The file is included, so
 * that the test can lay out a 3.13 _PyRuntime with pydesc.c's own
 * struct debug_offsets_313.
 */
#include "pydesc.c"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#define V313 0x030d05f0ul /* 3.13.5 */
#define V311 0x030b07f0ul /* 3.11.7 */

static struct debug_offsets_313 runtime;
static int trace_refs, no_addr2line, tracing, gil_held;
static struct _PyTraceMalloc_Config tm;

static void *fake_tstate(void) { return NULL; }
static int fake_addr2line(void *code, int offset) { (void)code; return offset; }
static int fake_tracer(void *o, int e, void *d) { (void)o; (void)e; (void)d; return 0; }
static ref_tracer fake_get_tracer(void **data) { (void)data; return tracing ? fake_tracer : NULL; }
static int fake_gil_check(void) { return gil_held; }
static char code_type[64];

static void *sym(const char *name)
{
	if (!strcmp(name, "_PyRuntime"))
		return &runtime;
	if (!strcmp(name, "PyThreadState_GetUnchecked") ||
	    !strcmp(name, "_PyThreadState_UncheckedGet"))
		return (void *)fake_tstate;
	if (!strcmp(name, "PyCode_Type"))
		return code_type;
	if (!strcmp(name, "PyCode_Addr2Line"))
		return no_addr2line ? NULL : (void *)fake_addr2line;
	if (!strcmp(name, "_Py_PrintReferences"))
		return trace_refs ? (void *)fake_tstate : NULL;
	if (!strcmp(name, "PyRefTracer_GetTracer"))
		return (void *)fake_get_tracer;
	if (!strcmp(name, "PyGILState_Check"))
		return (void *)fake_gil_check;
	if (!strcmp(name, "_Py_tracemalloc_config"))
		return &tm;
	return NULL;
}

/* A 3.13.5 runtime as the default build describes itself (the offsets are
 * made up; only their consistency is checked). */
static int setup(void **state)
{
	(void)state;
	memset(&runtime, 0, sizeof runtime);
	memcpy(runtime.cookie, "xdebugpy", 8);
	runtime.version = V313;
	runtime.thread_state.size = 400;
	runtime.thread_state.current_frame = 72;
	runtime.interpreter_frame.size = 80;
	runtime.interpreter_frame.previous = 8;
	runtime.interpreter_frame.executable = 0;
	runtime.interpreter_frame.instr_ptr = 56;
	runtime.interpreter_frame.owner = 70;
	runtime.code_object.size = 208;
	runtime.code_object.filename = 112;
	runtime.code_object.qualname = 128;
	runtime.code_object.linetable = 136;
	runtime.code_object.firstlineno = 68;
	runtime.code_object.co_code_adaptive = 200;
	runtime.pyobject.size = 16;
	runtime.pyobject.ob_type = 8;
	runtime.bytes_object.size = 40;
	runtime.bytes_object.ob_size = 16;
	trace_refs = no_addr2line = tracing = gil_held = 0;
	return 0;
}

static void test_313_described(void **state)
{
	(void)state;
	struct mt_pydesc d;
	const char *why = NULL;
	assert_int_equal(mt_pydesc_load(&d, sym, V313, &why), 0);
	assert_string_equal(d.source, "_PyRuntime.debug_offsets");
	assert_int_equal(d.free_threaded, 0);
	assert_int_equal(d.ts_hops, 1);
	assert_int_equal(d.ts_frame[0], 72);
	assert_int_equal(d.f_previous, 8);
	assert_int_equal(d.f_instr, 56);
	assert_int_equal(d.f_owner, 70);
	assert_int_equal(d.owner_cstack, 3);
	assert_int_equal(d.co_filename, 112);
	assert_int_equal(d.co_qualname, 128);
	assert_int_equal(d.co_code, 200);
	assert_int_equal(d.ob_type, 8);
	assert_ptr_equal(d.code_type, code_type);
	runtime.free_threaded = 1;
	runtime.pyobject.size = 32;
	runtime.pyobject.ob_type = 24;
	assert_int_equal(mt_pydesc_load(&d, sym, V313, &why), 0);
	assert_int_equal(d.free_threaded, 1);
	assert_int_equal(d.ob_type, 24);
}

static void refused(unsigned long version, const char *reason)
{
	struct mt_pydesc d;
	const char *why = NULL;
	assert_int_equal(mt_pydesc_load(&d, sym, version, &why), -1);
	assert_non_null(why);
	assert_non_null(strstr(why, reason));
}

static void test_unverifiable(void **state)
{
	(void)state;
	refused(0x030c07f0ul, "3.11 and 3.13 only");  /* 3.12 */
	refused(0x030e00f0ul, "3.11 and 3.13 only");  /* 3.14 */
	refused(0x030d00a4ul, "3.11 and 3.13 only");  /* 3.13 before its release */
	refused(0x030d06f0ul, "cookie and version");  /* another 3.13 than described */
	memcpy(runtime.cookie, "xdebugpz", 8);
	refused(V313, "cookie and version");
	setup(NULL);
	runtime.code_object.co_code_adaptive = 208;   /* past the code object */
	refused(V313, "outside their structures");
	setup(NULL);
	runtime.thread_state.size = 0;
	refused(V313, "outside their structures");
	setup(NULL);
	no_addr2line = 1;
	refused(V313, "lacks a function");
}

static void test_311_from_the_headers(void **state)
{
	(void)state;
	struct mt_pydesc d;
	const char *why = NULL;
	assert_int_equal(mt_pydesc_load(&d, sym, V311, &why), 0);
	assert_string_equal(d.source, "the 3.11 headers");
	assert_int_equal(d.ts_hops, 2);
	assert_int_equal(d.ts_frame[0], offsetof(PyThreadState, cframe));
	assert_int_equal(d.f_instr, offsetof(_PyInterpreterFrame, prev_instr));
	assert_int_equal(d.owner_cstack, -1);
	trace_refs = 1;
	refused(V311, "Py_TRACE_REFS");
}

static void test_tracemalloc_probe(void **state)
{
	(void)state;
	mt_pydesc_probe probe = mt_pydesc_tracemalloc(sym, V313);
	assert_non_null(probe);
	assert_false(probe());
	tracing = 1;
	assert_false(probe()); /* not asked without the GIL */
	gil_held = 1;
	assert_true(probe());
	probe = mt_pydesc_tracemalloc(sym, V311);
	assert_non_null(probe);
	assert_false(probe());
	tm.tracing = 1;
	assert_true(probe());
	tm.tracing = 0;
	assert_null(mt_pydesc_tracemalloc(sym, 0x030c07f0ul));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(test_313_described, setup),
		cmocka_unit_test_setup(test_unverifiable, setup),
		cmocka_unit_test_setup(test_311_from_the_headers, setup),
		cmocka_unit_test_setup(test_tracemalloc_probe, setup),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
