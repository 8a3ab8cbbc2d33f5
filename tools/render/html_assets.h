/*
 * html_assets.h - the HTML report's stylesheet and script, from
 * tools/render/html/report.css and report.js, embedded at build time
 * (tools/render/html/embed.cmake) so that the memtrace command is all one needs.
 */
#ifndef MEMTRACE_HTML_ASSETS_H
#define MEMTRACE_HTML_ASSETS_H

extern const char mt_html_css[];
extern const char mt_html_js[];

#endif
