/*
 * render.c - the renderings of render.h for a struct mt_report: its JSON
 * object (output.h), rendered.
 */
#include "render.h"

#include "output.h"

int mt_output_html(const struct mt_report *rep, const char *trace_name, FILE *out)
{
	json_t *root = mt_report_to_json(rep);
	int r = root ? mt_render_html(root, trace_name, out) : -1;
	json_decref(root);
	return r;
}

int mt_output_folded(const struct mt_report *rep, FILE *out)
{
	json_t *root = mt_report_to_json(rep);
	int r = root ? mt_render_folded(root, out) : -1;
	json_decref(root);
	return r;
}
