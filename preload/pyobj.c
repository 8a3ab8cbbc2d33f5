/*
 * pyobj.c - reading the program's Python objects: type checks, a tuple's
 * first item, a str's text.  Only through functions of CPython's public C
 * API that neither allocate nor fail on the arguments given here, so the
 * objects, the program's allocations and its pending exception stay as
 * they were, whatever the interpreter's version or build.
 */
#define _GNU_SOURCE
#include <Python.h>

#include "pyshim.h"

#include "meta.h"

static struct {
	PyObject *(*type)(PyObject *);
	void (*decref)(PyObject *);
	unsigned long (*type_flags)(PyTypeObject *);
	Py_ssize_t (*tuple_size)(PyObject *);
	PyObject *(*tuple_item)(PyObject *, Py_ssize_t);
	Py_ssize_t (*str_length)(PyObject *);
	Py_UCS4 (*str_char)(PyObject *, Py_ssize_t);
	/* for the main script: all or none of them */
	int (*initialized)(void);
	PyObject *(*modules)(void);
	int (*dict_next)(PyObject *, Py_ssize_t *, PyObject **, PyObject **);
	Py_ssize_t (*dict_size)(PyObject *);
	PyObject *(*module_dict)(PyObject *);
	PyObject *module_type;
	/* the UTF-8 of the str being defined; under the meta lock */
	char utf8[MT_META_STRING_MAX];
} api;

int mt_pyobj_init(void *(*sym)(const char *))
{
	api.type = (PyObject * (*)(PyObject *)) sym("PyObject_Type");
	api.decref = (void (*)(PyObject *))sym("Py_DecRef");
	api.type_flags = (unsigned long (*)(PyTypeObject *))sym("PyType_GetFlags");
	api.tuple_size = (Py_ssize_t(*)(PyObject *))sym("PyTuple_Size");
	api.tuple_item = (PyObject * (*)(PyObject *, Py_ssize_t)) sym("PyTuple_GetItem");
	api.str_length = (Py_ssize_t(*)(PyObject *))sym("PyUnicode_GetLength");
	api.str_char = (Py_UCS4(*)(PyObject *, Py_ssize_t))sym("PyUnicode_ReadChar");
	api.initialized = (int (*)(void))sym("Py_IsInitialized");
	api.modules = (PyObject * (*)(void)) sym("PyImport_GetModuleDict");
	api.dict_next = (int (*)(PyObject *, Py_ssize_t *, PyObject **, PyObject **))sym("PyDict_Next");
	api.dict_size = (Py_ssize_t(*)(PyObject *))sym("PyDict_Size");
	api.module_dict = (PyObject * (*)(PyObject *)) sym("PyModule_GetDict");
	api.module_type = sym("PyModule_Type");
	if (!api.initialized || !api.modules || !api.dict_next || !api.dict_size ||
	    !api.module_dict || !api.module_type)
		api.initialized = NULL;
	return api.type && api.decref && api.type_flags && api.tuple_size && api.tuple_item &&
			       api.str_length && api.str_char
		       ? 0
		       : -1;
}

/* Whether obj's type has a Py_TPFLAGS_*_SUBCLASS flag: PyObject_Type
 * returns a new reference to a type the object keeps alive, so giving it
 * back frees nothing. */
static int type_has(PyObject *obj, unsigned long flag)
{
	PyObject *type = api.type(obj);
	unsigned long flags = api.type_flags((PyTypeObject *)type);
	api.decref(type);
	return (flags & flag) != 0;
}

void *mt_pyobj_first_item(void *tuple)
{
	PyObject *t = tuple;
	if (!t || !type_has(t, Py_TPFLAGS_TUPLE_SUBCLASS) || api.tuple_size(t) < 1)
		return NULL;
	return api.tuple_item(t, 0);
}

/* One code point as UTF-8; surrogates (lone ones, or the bytes
 * surrogateescape kept) become U+FFFD, so the text is always valid. */
static size_t utf8_put(char *out, Py_UCS4 c)
{
	if (c < 0x80) {
		out[0] = (char)c;
		return 1;
	}
	if (c < 0x800) {
		out[0] = (char)(0xc0 | c >> 6);
		out[1] = (char)(0x80 | (c & 0x3f));
		return 2;
	}
	if ((c >= 0xd800 && c < 0xe000) || c > 0x10ffff)
		c = 0xfffd;
	if (c < 0x10000) {
		out[0] = (char)(0xe0 | c >> 12);
		out[1] = (char)(0x80 | ((c >> 6) & 0x3f));
		out[2] = (char)(0x80 | (c & 0x3f));
		return 3;
	}
	out[0] = (char)(0xf0 | c >> 18);
	out[1] = (char)(0x80 | ((c >> 12) & 0x3f));
	out[2] = (char)(0x80 | ((c >> 6) & 0x3f));
	out[3] = (char)(0x80 | (c & 0x3f));
	return 4;
}

static int is_str(PyObject *obj)
{
	return obj && type_has(obj, Py_TPFLAGS_UNICODE_SUBCLASS);
}

size_t mt_pyobj_utf8(void *str, char *buf, size_t cap)
{
	PyObject *obj = str;
	if (!is_str(obj))
		return SIZE_MAX;
	Py_ssize_t n = api.str_length(obj);
	size_t len = 0;
	char c[4];
	for (Py_ssize_t i = 0; i < n; i++) {
		size_t k = utf8_put(c, api.str_char(obj, i));
		if (len + k > cap)
			break;
		memcpy(buf + len, c, k);
		len += k;
	}
	return len;
}

int mt_pyobj_str_is(void *str, const char *text, size_t len)
{
	PyObject *obj = str;
	if (!is_str(obj))
		return 0;
	Py_ssize_t n = api.str_length(obj);
	size_t at = 0;
	char c[4];
	for (Py_ssize_t i = 0; i < n; i++) {
		size_t k = utf8_put(c, api.str_char(obj, i));
		if (at + k > len || memcmp(text + at, c, k))
			return 0;
		at += k;
	}
	return at == len;
}

uint64_t mt_pyobj_string_id(void *str)
{
	size_t n = mt_pyobj_utf8(str, api.utf8, sizeof api.utf8);
	return n == SIZE_MAX ? 0 : mt_meta_string(api.utf8, n);
}

/* The value of dict's item under the str key, or NULL; PyDict_Next
 * borrows. */
static PyObject *dict_item(PyObject *dict, const char *key)
{
	PyObject *k, *v;
	Py_ssize_t pos = 0;
	while (api.dict_next(dict, &pos, &k, &v))
		if (mt_pyobj_str_is(k, key, strlen(key)))
			return v;
	return NULL;
}

/* PyObject_Type gives a new reference to a type the object keeps alive. */
static int is_module(PyObject *obj)
{
	PyObject *type = api.type(obj);
	api.decref(type);
	return type == api.module_type;
}

/* Only while the interpreter is up: PyImport_GetModuleDict is fatal once
 * finalization has dropped sys.modules. */
void *mt_pyobj_main_globals(void)
{
	if (!api.initialized || !api.initialized())
		return NULL;
	PyObject *main = dict_item(api.modules(), "__main__");
	return main && is_module(main) ? api.module_dict(main) : NULL;
}

void *mt_pyobj_main_file(void *globals, long *size)
{
	if (!api.initialized || !api.initialized())
		return NULL;
	Py_ssize_t n = api.dict_size(globals);
	if (n == *size)
		return NULL;
	*size = n;
	PyObject *file = dict_item(globals, "__file__");
	return is_str(file) ? file : NULL;
}
