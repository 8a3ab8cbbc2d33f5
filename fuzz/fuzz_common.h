/*
 * fuzz_common.h - what the libFuzzer targets share: a trace in memory run
 * through everything that reads traces (the block reader and record
 * decoder, the report builder, every output), and a sink for the output.
 */
#ifndef MEMTRACE_FUZZ_COMMON_H
#define MEMTRACE_FUZZ_COMMON_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* /dev/null, opened once: outputs are written for real, then dropped. */
FILE *fuzz_sink(void);

/* Decodes the trace file held in data, builds its report and renders it
 * in every format, and exports it (a build of its own). */
void fuzz_trace_bytes(const uint8_t *data, size_t size);

#endif
