/*
 * fuzz_trace.c - libFuzzer target: the input is a trace file, as
 * `memtrace report` would read it.  Reaches the preamble and block checks;
 * fuzz_records gets past the blocks' checksums.
 */
#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	fuzz_trace_bytes(data, size);
	return 0;
}
