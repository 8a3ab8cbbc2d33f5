/*
 * output_json.c - the JSON report.  Key names are a contract with scripts:
 * add keys if needed, never rename or remove them without bumping
 * MT_REPORT_SCHEMA_VERSION.  A figure the trace did not carry is null.
 */
#include "output.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

/* JSON integers are signed; only a hostile trace gets near the limit. */
static json_t *num(uint64_t v)
{
	return json_integer(v > INT64_MAX ? INT64_MAX : (json_int_t)v);
}

static json_t *num_if(unsigned have, unsigned bit, uint64_t v)
{
	return have & bit ? num(v) : json_null();
}

/* Paths and arguments are bytes, JSON strings are UTF-8: bytes that do not
 * form UTF-8 are spelled \xNN rather than dropped. */
static json_t *str(const uint8_t *p, size_t n)
{
	json_t *s = json_stringn((const char *)p, n);
	char *buf = s ? NULL : malloc(4 * n + 1);
	if (!buf)
		return s ? s : json_null();
	size_t len = 0;
	for (size_t i = 0; i < n; i++) {
		if (p[i] < 0x80)
			buf[len++] = (char)p[i];
		else
			len += (size_t)sprintf(buf + len, "\\x%02x", p[i]);
	}
	s = json_stringn(buf, len);
	free(buf);
	return s;
}

static json_t *bytes(const struct mt_bytes *b)
{
	return b->p ? str(b->p, b->n) : json_null();
}

static json_t *argv_array(const struct mt_bytes *b)
{
	if (!b->p)
		return json_null();
	json_t *a = json_array();
	for (size_t i = 0; i < b->n;) {
		const uint8_t *nul = memchr(b->p + i, 0, b->n - i);
		size_t len = nul ? (size_t)(nul - (b->p + i)) : b->n - i;
		json_array_append_new(a, str(b->p + i, len));
		i += len + 1;
	}
	return a;
}

static json_t *process_json(const struct mt_process *p)
{
	json_t *o = json_object();
	json_object_set_new(o, "pid", num_if(p->have, MT_HAVE_PID, p->pid));
	json_object_set_new(o, "ppid", num_if(p->have, MT_HAVE_PPID, p->ppid));
	json_object_set_new(o, "exe", bytes(&p->exe));
	json_object_set_new(o, "argv", argv_array(&p->argv));
	json_object_set_new(o, "start_unix_ns", num_if(p->have, MT_HAVE_START, p->start_ns));
	json_object_set_new(o, "page_size", num_if(p->have, MT_HAVE_PAGE_SIZE, p->page_size));
	json_object_set_new(o, "version", bytes(&p->version));
	return o;
}

static json_t *trace_json(const struct mt_report *rep)
{
	const char *reason = mt_end_reason_name(rep->trace.end_reason);
	json_t *o = json_object();
	json_object_set_new(o, "complete", json_boolean(rep->trace.complete));
	json_object_set_new(o, "end_reason", reason ? json_string(reason) : json_null());
	json_object_set_new(o, "blocks", num(rep->trace.blocks));
	json_object_set_new(o, "duration_us", num(rep->trace.duration_us));
	json_object_set_new(o, "threads", num(rep->trace.threads));
	return o;
}

static json_t *events_json(const struct mt_report *rep)
{
	json_t *o = json_object();
	json_object_set_new(o, "total", num(rep->events.total));
	json_object_set_new(o, "lost", num(rep->events.lost));
	json_object_set_new(o, "producer_waits", num(rep->events.producer_waits));
	return o;
}

static json_t *domain_json(const struct mt_dom_stats *s)
{
	json_t *o = json_object();
	json_object_set_new(o, "allocs", num(s->allocs));
	json_object_set_new(o, "frees", num(s->frees));
	json_object_set_new(o, "reallocs", num(s->reallocs));
	json_object_set_new(o, "failed", num(s->failed));
	json_object_set_new(o, "bytes_allocated", num(s->bytes_allocated));
	json_object_set_new(o, "peak_bytes", num(s->peak_bytes));
	json_object_set_new(o, "live_bytes_at_exit", num(s->live_bytes));
	json_object_set_new(o, "live_blocks_at_exit", num(s->live_blocks));
	json_object_set_new(o, "unmatched_frees", num(s->unmatched_frees));
	json_object_set_new(o, "inconsistent", num(s->inconsistent));
	return o;
}

int mt_output_json(const struct mt_report *rep, FILE *out)
{
	json_t *root = json_object(), *doms = json_object();
	for (int d = 0; d < MT_DOM_COUNT; d++)
		json_object_set_new(doms, mt_domain_name(d), domain_json(&rep->dom[d]));
	json_object_set_new(root, "format", json_string("memtrace-report"));
	json_object_set_new(root, "schema_version", json_integer(MT_REPORT_SCHEMA_VERSION));
	json_object_set_new(root, "process", process_json(&rep->process));
	json_object_set_new(root, "trace", trace_json(rep));
	json_object_set_new(root, "events", events_json(rep));
	json_object_set_new(root, "domains", doms);
	int r = json_dumpf(root, out, JSON_INDENT(2));
	json_decref(root);
	return r == 0 && fputc('\n', out) != EOF ? 0 : -1;
}
