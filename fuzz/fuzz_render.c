/*
 * fuzz_render.c - libFuzzer target for the renderers that read a JSON
 * object (render.h: the report's HTML and folded stacks, the diff's text
 * and HTML): the input is JSON, any shape.  They must treat
 * whatever they get as data, never crash on it.
 */
#include <jansson.h>

#include "fuzz_common.h"
#include "render.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	json_t *j = json_loadb((const char *)data, size, JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL);
	if (!j)
		return 0;
	FILE *sink = fuzz_sink();
	mt_render_html(j, "fuzz.trace", sink);
	mt_render_folded(j, sink);
	mt_render_diff_text(j, 20, sink);
	mt_render_diff_html(j, sink);
	fflush(sink);
	json_decref(j);
	return 0;
}
