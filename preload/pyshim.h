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
extern __attribute__((visibility("hidden"))) int mt_py_watching;
void mt_py_watch(void);
void mt_py_fork_child(void);

/* Python locations (pyframes.c), read as the interpreter describes its
 * frames (pydesc.h); depth: frames kept per location. */
struct mt_pydesc;
void mt_pyframes_init(const struct mt_pydesc *desc, int depth);
/* The stack-node id of the calling thread's current Python location (0:
 * none), for an allocation it makes in the PyMem or PyObject domain, and
 * in *script the thread's main-script node (see mt_pyframes_script). */
uint64_t mt_pyframes_location(uint64_t *script);
/* The node of the calling thread's innermost frame of the main script
 * (the file run as __main__), without parent; 0: none on its stack. */
uint64_t mt_pyframes_script(void);
/* A PyMem (obj: PyObject) block is being freed: mt_pyframes_freed for a
 * PyObject one; returns the main-script node. */
uint64_t mt_pyframes_release(const void *p, int obj);
/* A PyObject block is being freed: forget it if it was a code object. */
void mt_pyframes_freed(const void *p);
void mt_pyframes_fork_child(void);

/* The program's objects, read through the public C API (pyobj.c). */
int mt_pyobj_init(void *(*sym)(const char *));
/* A tuple's first item, or NULL. */
void *mt_pyobj_first_item(void *tuple);
/* Under the meta lock: the string id of a str's UTF-8, or 0. */
uint64_t mt_pyobj_string_id(void *str);
/* A str's text as UTF-8 in buf, cut at a code point to cap bytes; SIZE_MAX
 * if str is not a str. */
size_t mt_pyobj_utf8(void *str, char *buf, size_t cap);
/* Whether a str's text is the UTF-8 text[0..len). */
int mt_pyobj_str_is(void *str, const char *text, size_t len);
/* The __main__ module's globals, once the interpreter is up; else NULL. */
void *mt_pyobj_main_globals(void);
/* globals' __file__ (a str), looked for only when the dict's size is not
 * *size any more (which then becomes its size); else NULL. */
void *mt_pyobj_main_file(void *globals, long *size);

#endif
