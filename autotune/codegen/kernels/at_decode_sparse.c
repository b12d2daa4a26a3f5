/* sparse: (gap, value) byte pairs, `gap` zeros then `value`; zeros after the last pair. */
#include "at_decode.h"

static int sparse_chunk(const at_chunk_t *c, int8_t *out, uint32_t params)
{
    const uint8_t *in = c->in, *const end = c->in + c->in_size;
    const uint32_t n = c->out_size;
    uint32_t pos = 0;
    if (params != 0) {
        return AT_DECODE_E_HEADER;
    }
    if (c->in_size & 1u) {
        return AT_DECODE_E_TRUNCATED;
    }
    out += c->out_offset;
    while (in != end) {
        uint32_t gap = in[0];
        if (gap >= n - pos) {
            return AT_DECODE_E_CORRUPT;
        }
        while (gap--) {
            out[pos++] = 0;
        }
        out[pos++] = (int8_t)in[1];
        in += 2;
    }
    while (pos < n) {
        out[pos++] = 0;
    }
    return AT_DECODE_OK;
}

int at_decode_sparse(const at_blob_t *blob, int8_t *out, uint32_t out_size, uint8_t *scratch, uint32_t scratch_size)
{
    at_blob_header_t h;
    at_chunk_t c;
    uint32_t k, chunks;
    int err = at_blob_whole(blob, AT_CODEC_SPARSE, 0u, out_size, &h, &chunks, &c);
    (void)scratch;
    (void)scratch_size;
    for (k = 0; err == AT_DECODE_OK && k < chunks; ++k) {
        err = at_blob_next(&h, &c);
        if (err == AT_DECODE_OK) {
            err = sparse_chunk(&c, out, h.param0 | h.param1 | h.table_size);
        }
    }
    return err;
}

int at_decode_sparse_row(const at_blob_t *blob, uint32_t row, int8_t *out, uint32_t out_size, uint8_t *scratch,
                         uint32_t scratch_size)
{
    at_blob_header_t h;
    at_chunk_t c;
    int err = at_blob_row(blob, AT_CODEC_SPARSE, 0u, row, out_size, &h, &c);
    (void)scratch;
    (void)scratch_size;
    return err != AT_DECODE_OK ? err : sparse_chunk(&c, out, h.param0 | h.param1 | h.table_size);
}

uint32_t at_decode_sparse_get_buffer_size(const uint8_t *blob, uint32_t blob_size)
{
    (void)blob;
    (void)blob_size;
    return 0;
}
