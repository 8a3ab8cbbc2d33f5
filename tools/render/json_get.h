/*
 * json_get.h - forgiving lookups in the JSON report for the renderers that
 * read it (HTML, folded): a key that is missing or of the wrong type reads
 * as absent (NULL, 0), so any object renders without crashing.
 */
#ifndef MEMTRACE_JSON_GET_H
#define MEMTRACE_JSON_GET_H

#include <math.h>
#include <stddef.h>

#include <jansson.h>

static inline json_t *jg(const json_t *o, const char *key)
{
	return json_is_object(o) ? json_object_get(o, key) : NULL;
}

/* An object member, or NULL when it is not an object. */
static inline json_t *jg_obj(const json_t *o, const char *key)
{
	json_t *v = jg(o, key);
	return json_is_object(v) ? v : NULL;
}

/* An array member, or NULL when it is not an array. */
static inline json_t *jg_arr(const json_t *o, const char *key)
{
	json_t *v = jg(o, key);
	return json_is_array(v) ? v : NULL;
}

static inline size_t jg_len(const json_t *a)
{
	return json_is_array(a) ? json_array_size(a) : 0;
}

static inline double jv_num(const json_t *v)
{
	double d = json_is_number(v) ? json_number_value(v) : 0;
	return isfinite(d) ? d : 0;
}

/* A number member as a double (0 when absent). */
static inline double jg_num(const json_t *o, const char *key)
{
	return jv_num(jg(o, key));
}

static inline int jg_has_num(const json_t *o, const char *key)
{
	return json_is_number(jg(o, key));
}

/* A string member, or NULL. */
static inline const char *jg_str(const json_t *o, const char *key)
{
	json_t *v = jg(o, key);
	return json_is_string(v) ? json_string_value(v) : NULL;
}

#endif
