/*
 * pydesc_311.h - CPython 3.11's frames and code objects as the 3.11
 * headers this library is compiled against lay them out: a constant
 * initializer of struct mt_pydesc (pydesc.h), used only once the
 * interpreter says it is 3.11.  pydesc.c takes it as the description of a
 * 3.11 interpreter; pyframes.c reads 3.11 frames with it, so that the
 * compiler folds the offsets into the code.  Empty with other headers.
 */
#ifndef MEMTRACE_PYDESC_311_H
#define MEMTRACE_PYDESC_311_H

#define Py_BUILD_CORE 1
#include <Python.h>

#if PY_VERSION_HEX >> 16 == 0x030b
#include <internal/pycore_frame.h>

#include "pydesc.h"

/* 3.11 reaches the current frame through the thread's C frame, and has no
 * entry frames of its own on the C stack. */
#define MT_PYDESC_311                                                           \
	((struct mt_pydesc){                                                     \
		.source = "the 3.11 headers",                                    \
		.ts_frame = { offsetof(PyThreadState, cframe),                   \
			      offsetof(_PyCFrame, current_frame) },              \
		.ts_hops = 2,                                                    \
		.f_previous = offsetof(_PyInterpreterFrame, previous),           \
		.f_code = offsetof(_PyInterpreterFrame, f_code),                 \
		.f_instr = offsetof(_PyInterpreterFrame, prev_instr),            \
		.f_owner = offsetof(_PyInterpreterFrame, owner),                 \
		.owner_cstack = -1,                                              \
		.co_filename = offsetof(PyCodeObject, co_filename),              \
		.co_qualname = offsetof(PyCodeObject, co_qualname),              \
		.co_firstlineno = offsetof(PyCodeObject, co_firstlineno),        \
		.co_linetable = offsetof(PyCodeObject, co_linetable),            \
		.co_code = offsetof(PyCodeObject, co_code_adaptive),             \
		.ob_type = offsetof(PyObject, ob_type),                          \
		.bytes_size = offsetof(PyVarObject, ob_size),                    \
	})
#endif

#endif
