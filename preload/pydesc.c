/*
 * pydesc.c - the description of the running interpreter's frames and code
 * objects (pydesc.h): taken from the interpreter itself on 3.13, from the
 * 3.11 headers on 3.11, refused otherwise.
 */
#define _GNU_SOURCE
#include "pydesc_311.h"

#include "pydesc.h"

#ifdef MT_PYDESC_311
#include <internal/pycore_pymem.h>
#endif

/*
 * CPython 3.13's _Py_DebugOffsets (Include/internal/pycore_runtime.h), up
 * to the part read here.  Every field is a uint64_t, so this prefix has the
 * same layout in every 3.13 build, free-threaded or not; CPython keeps it
 * stable across the patch releases of a minor version and nothing more, so
 * it is taken only from a 3.13 interpreter.
 */
struct debug_offsets_313 {
	char cookie[8];
	uint64_t version;
	uint64_t free_threaded;
	struct {
		uint64_t size, finalizing, interpreters_head;
	} runtime_state;
	struct {
		uint64_t size, id, next, threads_head, gc, imports_modules, sysdict, builtins,
			ceval_gil, gil_runtime_state, gil_runtime_state_enabled,
			gil_runtime_state_locked, gil_runtime_state_holder;
	} interpreter_state;
	struct {
		uint64_t size, prev, next, interp, current_frame, thread_id, native_thread_id,
			datastack_chunk, status;
	} thread_state;
	struct {
		uint64_t size, previous, executable, instr_ptr, localsplus, owner;
	} interpreter_frame;
	struct {
		uint64_t size, filename, name, qualname, linetable, firstlineno, argcount,
			localsplusnames, localspluskinds, co_code_adaptive;
	} code_object;
	struct {
		uint64_t size, ob_type;
	} pyobject;
	struct {
		uint64_t size, tp_name, tp_repr, tp_flags;
	} type_object;
	struct {
		uint64_t size, ob_item, ob_size;
	} tuple_object, list_object;
	struct {
		uint64_t size, ma_keys, ma_values;
	} dict_object;
	struct {
		uint64_t size, ob_fval;
	} float_object;
	struct {
		uint64_t size, lv_tag, ob_digit;
	} long_object;
	struct {
		uint64_t size, ob_size, ob_sval;
	} bytes_object;
};

#define FRAME_OWNED_BY_CSTACK_313 3

/* Every offset read must fall inside the structure it is an offset of:
 * a description that says otherwise is not one to trust. */
static int inside(uint64_t size, const uint64_t *offs, size_t n, size_t width)
{
	if (size == 0 || size > (1u << 20))
		return 0;
	for (size_t i = 0; i < n; i++)
		if (offs[i] + width > size)
			return 0;
	return 1;
}

static int from_debug_offsets(struct mt_pydesc *d, void *(*sym)(const char *),
			      unsigned long version, const char **why)
{
	const struct debug_offsets_313 *o = sym("_PyRuntime");
	if (!o) {
		*why = "the interpreter exports no _PyRuntime";
		return -1;
	}
	if (memcmp(o->cookie, "xdebugpy", 8) || o->version != version) {
		*why = "_PyRuntime.debug_offsets does not carry its cookie and version";
		return -1;
	}
	const uint64_t ts[] = { o->thread_state.current_frame };
	const uint64_t frame_ptrs[] = { o->interpreter_frame.previous,
					o->interpreter_frame.executable,
					o->interpreter_frame.instr_ptr };
	const uint64_t owner[] = { o->interpreter_frame.owner };
	const uint64_t code_ptrs[] = { o->code_object.filename, o->code_object.qualname,
				       o->code_object.linetable };
	const uint64_t code_int[] = { o->code_object.firstlineno };
	const uint64_t code_bytes[] = { o->code_object.co_code_adaptive };
	const uint64_t ob[] = { o->pyobject.ob_type };
	const uint64_t bytes[] = { o->bytes_object.ob_size };
	if (!inside(o->thread_state.size, ts, 1, sizeof(void *)) ||
	    !inside(o->interpreter_frame.size, frame_ptrs, 3, sizeof(void *)) ||
	    !inside(o->interpreter_frame.size, owner, 1, 1) ||
	    !inside(o->code_object.size, code_ptrs, 3, sizeof(void *)) ||
	    !inside(o->code_object.size, code_int, 1, sizeof(int)) ||
	    !inside(o->code_object.size, code_bytes, 1, 1) ||
	    !inside(o->pyobject.size, ob, 1, sizeof(void *)) ||
	    !inside(o->bytes_object.size, bytes, 1, sizeof(int64_t))) {
		*why = "_PyRuntime.debug_offsets holds offsets outside their structures";
		return -1;
	}
	d->source = "_PyRuntime.debug_offsets";
	d->free_threaded = o->free_threaded != 0;
	d->tstate = (void *(*)(void))sym("PyThreadState_GetUnchecked");
	d->ts_frame[0] = o->thread_state.current_frame;
	d->ts_hops = 1;
	d->f_previous = o->interpreter_frame.previous;
	d->f_code = o->interpreter_frame.executable;
	d->f_instr = o->interpreter_frame.instr_ptr;
	d->f_owner = o->interpreter_frame.owner;
	d->owner_cstack = FRAME_OWNED_BY_CSTACK_313;
	d->co_filename = o->code_object.filename;
	d->co_qualname = o->code_object.qualname;
	d->co_firstlineno = o->code_object.firstlineno;
	d->co_linetable = o->code_object.linetable;
	d->co_code = o->code_object.co_code_adaptive;
	d->ob_type = o->pyobject.ob_type;
	d->bytes_size = o->bytes_object.ob_size;
	return 0;
}

#ifdef MT_PYDESC_311
/* A build with Py_TRACE_REFS has two more pointers in every object
 * header than the headers here say; it exports what prints them. */
static int from_headers_311(struct mt_pydesc *d, void *(*sym)(const char *), const char **why)
{
	if (sym("_Py_PrintReferences")) {
		*why = "a Py_TRACE_REFS build lays its objects out unlike the 3.11 headers";
		return -1;
	}
	*d = MT_PYDESC_311;
	d->tstate = (void *(*)(void))sym("_PyThreadState_UncheckedGet");
	return 0;
}

/* 3.11 exports tracemalloc's configuration. */
static const struct _PyTraceMalloc_Config *tm_config;

static int tracing_311(void)
{
	return tm_config->tracing;
}
#endif

int mt_pydesc_load(struct mt_pydesc *d, void *(*sym)(const char *), unsigned long version,
		   const char **why)
{
	memset(d, 0, sizeof *d);
	int r = -1;
	*why = "Python lines are read on 3.11 and 3.13 only";
	if (version >> 16 == 0x030d && version >= 0x030d00f0)
		r = from_debug_offsets(d, sym, version, why);
#ifdef MT_PYDESC_311
	else if (version >> 16 == 0x030b)
		r = from_headers_311(d, sym, why);
#endif
	if (r)
		return r;
	d->code_type = sym("PyCode_Type");
	d->addr2line = (int (*)(void *, int))sym("PyCode_Addr2Line");
	if (!d->tstate || !d->code_type || !d->addr2line) {
		*why = "the interpreter lacks a function Python lines are read with";
		return -1;
	}
	return 0;
}

/* 3.13's PyRefTracer_GetTracer (its result: a PyRefTracer, or NULL), and
 * whether it may be called now (with the GIL: a debug build asserts it). */
typedef int (*ref_tracer)(void *object, int event, void *data);
static ref_tracer (*get_ref_tracer)(void **data);
static int (*gil_check)(void);

/* 3.13's tracemalloc sets its reference tracer before it hooks the
 * allocators and clears it after it unhooks them. */
static int tracing_ref_tracer(void)
{
	return gil_check() && get_ref_tracer(NULL) != NULL;
}

mt_pydesc_probe mt_pydesc_tracemalloc(void *(*sym)(const char *), unsigned long version)
{
	get_ref_tracer = (ref_tracer(*)(void **))sym("PyRefTracer_GetTracer");
	gil_check = (int (*)(void))sym("PyGILState_Check");
	if (version >= 0x030d0000 && get_ref_tracer && gil_check)
		return tracing_ref_tracer;
#ifdef MT_PYDESC_311
	if (version >> 16 == 0x030b && (tm_config = sym("_Py_tracemalloc_config")))
		return tracing_311;
#endif
	return NULL;
}
