#include "decode_any.h"

typedef int (*whole_fn)(const at_blob_t *, int8_t *, uint32_t, uint8_t *, uint32_t);
typedef int (*row_fn)(const at_blob_t *, uint32_t, int8_t *, uint32_t, uint8_t *, uint32_t);
typedef uint32_t (*size_fn)(const uint8_t *, uint32_t);

static const whole_fn WHOLE[DECODE_ANY_CODECS] = {
    at_decode_dense, at_decode_bitpack, at_decode_palette, at_decode_rle0, at_decode_delta_rle,
    at_decode_sparse, at_decode_rans, at_decode_heatshrink, at_decode_lz4, at_decode_rans_binned,
    at_decode_rans_grid,
};
static const row_fn ROW[DECODE_ANY_CODECS] = {
    at_decode_dense_row, at_decode_bitpack_row, at_decode_palette_row, at_decode_rle0_row,
    at_decode_delta_rle_row, at_decode_sparse_row, at_decode_rans_row, at_decode_heatshrink_row,
    at_decode_lz4_row, at_decode_rans_binned_row, at_decode_rans_grid_row,
};
static const size_fn SIZE[DECODE_ANY_CODECS] = {
    at_decode_dense_get_buffer_size, at_decode_bitpack_get_buffer_size, at_decode_palette_get_buffer_size,
    at_decode_rle0_get_buffer_size, at_decode_delta_rle_get_buffer_size, at_decode_sparse_get_buffer_size,
    at_decode_rans_get_buffer_size, at_decode_heatshrink_get_buffer_size, at_decode_lz4_get_buffer_size,
    at_decode_rans_binned_get_buffer_size, at_decode_rans_grid_get_buffer_size,
};

int decode_any(uint32_t codec, const at_blob_t *blob, int64_t row, int8_t *out, uint32_t out_size,
               uint8_t *scratch, uint32_t scratch_size)
{
    if (codec >= DECODE_ANY_CODECS) {
        return AT_DECODE_E_ARG;
    }
    if (row < 0) {
        return WHOLE[codec](blob, out, out_size, scratch, scratch_size);
    }
    return ROW[codec](blob, (uint32_t)row, out, out_size, scratch, scratch_size);
}

uint32_t decode_any_buffer_size(uint32_t codec, const uint8_t *blob, uint32_t blob_size)
{
    return codec < DECODE_ANY_CODECS ? SIZE[codec](blob, blob_size) : 0u;
}

void decode_any_fix_crc(uint8_t *blob, uint32_t blob_size)
{
    uint32_t crc, i;
    if (blob_size < AT_BLOB_HEADER_BYTES + AT_BLOB_CRC_BYTES) {
        return;
    }
    crc = at_crc32(0, blob, blob_size - AT_BLOB_CRC_BYTES);
    for (i = 0; i < 4; ++i) {
        blob[blob_size - AT_BLOB_CRC_BYTES + i] = (uint8_t)(crc >> (8 * i));
    }
}
