/* libFuzzer target for the weight decoders (benchmarks/bench_codecs_fuzz.py builds it with
 * clang -fsanitize=fuzzer,address,undefined). The first input byte picks the call: bit 0 the
 * row decoder, bit 1 leave the CRC as it is (else it is fixed so the decoder proper runs), bits
 * 2-7 the row; the rest is the blob, copied into a buffer of exactly its size. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "decode_any.h"

#define MAX_OUT (1u << 16)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t mode, *blob, *scratch;
    int8_t *out;
    uint32_t n, codec, rows, row_len, want, scratch_size;
    at_blob_t b;
    if (size < 1 + 12 || size > (1u << 20)) {
        return 0;
    }
    mode = data[0];
    n = (uint32_t)size - 1u;
    blob = malloc(n);
    memcpy(blob, data + 1, n);
    if (!(mode & 2u)) {
        decode_any_fix_crc(blob, n);
    }
    codec = blob[1] % DECODE_ANY_CODECS;
    rows = (uint32_t)blob[6] | (uint32_t)blob[7] << 8;
    row_len = (uint32_t)blob[8] | (uint32_t)blob[9] << 8;
    want = rows && row_len <= MAX_OUT / rows ? rows * row_len : MAX_OUT;
    if (mode & 1u) {
        want = row_len < MAX_OUT ? row_len : MAX_OUT;
    }
    scratch_size = decode_any_buffer_size(codec, blob, n);
    if (scratch_size > MAX_OUT) {
        scratch_size = MAX_OUT;
    }
    out = malloc(want ? want : 1);
    scratch = malloc(scratch_size ? scratch_size : 1);
    b.data = blob;
    b.size = n;
    b.checked = NULL;
    (void)decode_any(codec, &b, (mode & 1u) ? (int64_t)(mode >> 2) : -1, out, want, scratch, scratch_size);
    free(blob);
    free(out);
    free(scratch);
    return 0;
}
