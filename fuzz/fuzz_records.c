/*
 * fuzz_records.c - libFuzzer target that gets past the block checksums:
 * the input is a list of block payloads, each
 *
 *     u8 type  u16 length (LE)  length bytes
 *
 * which are compressed into well-formed blocks of a trace file (type 1
 * header, 2 events, 3 footer; other values wrap), so that mutations land in
 * the records, key/value lists and the report's accounting rather than in
 * zstd's checksums.  make_seeds writes inputs in this form from real and
 * synthetic traces.
 */
#include <stdlib.h>
#include <string.h>

#include <zstd.h>

#include "codec.h"
#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static ZSTD_CCtx *cctx;
	static uint8_t *trace, *block;
	static size_t cap;
	if (!cctx) {
		cctx = ZSTD_createCCtx();
		block = malloc(mt_block_bound(0xffff));
		if (!cctx || !block)
			abort();
	}
	/* at most one block per 3 input bytes, each at most its bound */
	size_t need = MT_PREAMBLE_LEN + (size / 3 + 1) * mt_block_bound(0) + size * 2;
	if (need > cap) {
		free(trace);
		cap = need;
		trace = malloc(cap);
		if (!trace)
			abort();
	}
	size_t len = MT_PREAMBLE_LEN;
	mt_preamble(trace);
	for (size_t i = 0; i + 3 <= size;) {
		int type = MT_BLOCK_HEADER + data[i] % 3;
		size_t n = data[i + 1] | (size_t)data[i + 2] << 8;
		i += 3;
		if (n > size - i)
			n = size - i;
		size_t got = mt_block_encode(cctx, type, data + i, n, block, mt_block_bound(0xffff));
		i += n;
		if (!got || len + got > cap)
			break;
		memcpy(trace + len, block, got);
		len += got;
	}
	fuzz_trace_bytes(trace, len);
	return 0;
}
