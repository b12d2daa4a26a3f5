/* dense: the int8 values as stored. A kernel may read them in place instead; this copy is for
 * plans that want them in RAM. */
#include "at_decode.h"

static int copy_rows(const at_blob_header_t *h, uint32_t row, uint32_t rows, int8_t *out)
{
    uint32_t bit, n = rows * h->row_len;
    const uint8_t *in;
    const int err = at_blob_fixed_row(h, 8u, row, &bit);
    if (err != AT_DECODE_OK) {
        return err;
    }
    for (in = h->payload + (bit >> 3); n != 0; --n) {
        *out++ = (int8_t)*in++;
    }
    return AT_DECODE_OK;
}

AT_DEFINE_ROWS_DECODER(dense, AT_CODEC_DENSE, copy_rows)
