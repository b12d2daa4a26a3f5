/* Test-only dispatch over the weight decoders by storage id (the firmware calls one decoder
 * directly; a test harness may use function pointers). */
#ifndef DECODE_ANY_H
#define DECODE_ANY_H

#include <stdint.h>

#include "at_decode.h"

#define DECODE_ANY_CODECS 11u

/* at_decode_<codec>: the whole tensor; row >= 0: at_decode_<codec>_row. AT_DECODE_E_ARG for
 * an unknown codec. */
int decode_any(uint32_t codec, const at_blob_t *blob, int64_t row, int8_t *out, uint32_t out_size,
               uint8_t *scratch, uint32_t scratch_size);
uint32_t decode_any_buffer_size(uint32_t codec, const uint8_t *blob, uint32_t blob_size);
/* The CRC the header should carry (so mutated blobs reach the decoders past the CRC check). */
void decode_any_fix_crc(uint8_t *blob, uint32_t blob_size);

#endif
