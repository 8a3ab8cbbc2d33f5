/*
 * pyshim.h - CPython support: the PyMem/PyObject allocator hooks (pyshim.c)
 * and Python locations (pyframes.c).  Compiled against the Python headers
 * only; every C API function is looked up at run time, so a process that is
 * not Python never loads or pays for any of it.
 */
#ifndef MEMTRACE_PYSHIM_H
#define MEMTRACE_PYSHIM_H

#include <stddef.h>
#include <stdint.h>

#define MT_PY_DEPTH_MAX 128

/* At start-up: finds the interpreter's C API and installs the hooks.
 * Returns 1 if this is a Python process. */
int mt_py_start(void);
/* Lets Python code mark steps (sys.audit("memtrace.mark", label)); called
 * from the constructor, outside the tracer's internal sections. */
void mt_py_start_marks(void);
/* Appends the Python keys to a header under construction. */
size_t mt_py_header(uint8_t *buf, size_t len);
/* Nonzero while the interpreter starts: malloc and free then call
 * mt_py_watch(), which re-installs hooks that start-up replaced. */
extern int mt_py_watching;
void mt_py_watch(void);
void mt_py_fork_child(void);

int mt_pyframes_init(void *(*sym)(const char *), int depth);
void mt_py_strings_init(void *(*sym)(const char *));
/* UTF-8 of a Python str (NUL-terminated), or NULL; GIL held. */
const char *mt_py_utf8(void *str, size_t *len);
/* With the GIL held: the stack-node id of the current Python location,
 * and the thread's main-script node (see mt_pyframes_script). */
uint64_t mt_pyframes_location(uint64_t *script);
/* With the GIL held: the node of the thread's innermost frame of the main
 * script (no parent; 0: none on its stack). */
uint64_t mt_pyframes_script(void);
/* A PyMem (obj: PyObject) block is being freed: mt_pyframes_freed for a
 * PyObject one, and the main-script node. */
uint64_t mt_pyframes_release(const void *p, int obj);
/* A PyObject block is being freed: forget it if it was a code object. */
void mt_pyframes_freed(const void *p);
void mt_pyframes_fork_child(void);

#endif
