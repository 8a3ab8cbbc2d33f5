/*
 * fuzz_common.c - see fuzz_common.h.
 */
#include "fuzz_common.h"

#include <stdlib.h>

#include <jansson.h>

#include "codec.h"
#include "export.h"
#include "output.h"
#include "render.h"
#include "report.h"

FILE *fuzz_sink(void)
{
	static FILE *sink;
	if (!sink)
		sink = fopen("/dev/null", "w");
	if (!sink)
		abort();
	return sink;
}

/* fmemopen refuses an empty buffer; an empty file is what it should be. */
static FILE *open_bytes(const uint8_t *data, size_t size)
{
	FILE *f = size ? fmemopen((void *)data, size, "rb") : fopen("/dev/null", "rb");
	if (!f)
		abort();
	return f;
}

/* The reader and decoder on their own: every record of every block, past
 * anything the report builder would stop at. */
static void decode_all(FILE *f)
{
	struct mt_reader rd;
	int type;
	if (mt_reader_open(&rd, f) == MT_READ_OK) {
		while (mt_reader_next(&rd, &type) == MT_READ_OK) {
			if (type == MT_BLOCK_EVENTS) {
				struct mt_dec top, seg;
				struct mt_rec r;
				uint64_t stream;
				mt_dec_init(&top, rd.raw, rd.raw_len);
				while (mt_dec_segment(&top, &stream, &seg) == 1)
					for (seg.prev_addr = 0; mt_dec_next(&seg, &r) == 1;)
						;
			} else {
				struct mt_kv kv;
				size_t pos = 0;
				while (mt_kv_next(rd.raw, rd.raw_len, &pos, &kv) == 1)
					;
			}
		}
	}
	mt_reader_close(&rd);
}

static void render_all(const struct mt_report *rep)
{
	FILE *sink = fuzz_sink();
	json_t *j = mt_report_to_json(rep);
	if (j) {
		char *text = json_dumps(j, JSON_COMPACT);
		free(text);
		mt_render_html(j, "fuzz.trace", sink);
		mt_render_folded(j, sink);
		json_decref(j);
	}
	mt_output_json(rep, sink);
	mt_output_text(rep, "fuzz.trace", sink);
	fflush(sink);
}

void fuzz_trace_bytes(const uint8_t *data, size_t size)
{
	FILE *f = open_bytes(data, size);
	decode_all(f);
	fclose(f);

	struct mt_report rep;
	f = open_bytes(data, size);
	enum mt_report_status st = mt_report_build(f, &rep);
	fclose(f);
	if (st == MT_REPORT_OK || st == MT_REPORT_TORN)
		render_all(&rep);
	mt_report_free(&rep);

	/* the exports, from a build of their own */
	static const struct mt_export_opts opts = { MT_INUSE_PEAK, "memtrace@fuzz", "fuzz.trace" };
	f = open_bytes(data, size);
	st = mt_report_build_flags(f, &rep, NULL, MT_BUILD_PER_THREAD, NULL, NULL);
	fclose(f);
	if (st == MT_REPORT_OK || st == MT_REPORT_TORN) {
		mt_export_pprof(&rep, &opts, fuzz_sink());
		mt_export_speedscope(&rep, &opts, fuzz_sink());
		fflush(fuzz_sink());
	}
	mt_report_free(&rep);
}
