/* dense: the int8 values as stored. A kernel may read them in place instead; this copy is for
 * plans that want them in RAM. */
#include "at_decode.h"

static int copy_rows(const at_blob_header_t *h, uint32_t row, uint32_t n, int8_t *out)
{
    uint32_t bit;
    const int err = at_blob_fixed_row(h, 8u, row, &bit);
    const uint8_t *in = h->payload + (bit >> 3);
    if (err != AT_DECODE_OK) {
        return err;
    }
    while (n--) {
        *out++ = (int8_t)*in++;
    }
    return AT_DECODE_OK;
}

int at_decode_dense(const at_blob_t *blob, int8_t *out, uint32_t out_size, uint8_t *scratch, uint32_t scratch_size)
{
    at_blob_header_t h;
    at_chunk_t c;
    uint32_t chunks;
    int err = at_blob_whole(blob, AT_CODEC_DENSE, 1u, out_size, &h, &chunks, &c);
    (void)scratch;
    (void)scratch_size;
    return err != AT_DECODE_OK ? err : copy_rows(&h, 0u, h.rows * h.row_len, out);
}

int at_decode_dense_row(const at_blob_t *blob, uint32_t row, int8_t *out, uint32_t out_size, uint8_t *scratch,
                        uint32_t scratch_size)
{
    at_blob_header_t h;
    at_chunk_t c;
    int err = at_blob_row(blob, AT_CODEC_DENSE, 1u, row, out_size, &h, &c);
    (void)scratch;
    (void)scratch_size;
    return err != AT_DECODE_OK ? err : copy_rows(&h, row, h.row_len, out);
}

uint32_t at_decode_dense_get_buffer_size(const uint8_t *blob, uint32_t blob_size)
{
    (void)blob;
    (void)blob_size;
    return 0;
}
