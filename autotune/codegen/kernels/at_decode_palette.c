/* palette: K = param1 + 1 int8 entries (the table), each value an index of param0 =
 * ceil(log2 K) bits, packed LSB first as bitpack does. */
#include "at_decode.h"

#define MAX_ENTRIES 128u

static uint32_t index_bits(uint32_t k)
{
    uint32_t bits = 0;
    while ((1u << bits) < k) {
        ++bits;
    }
    return bits;
}

static int lookup_rows(const at_blob_header_t *h, uint32_t row, uint32_t rows, int8_t *out)
{
    const uint32_t k = h->param1 + 1u;
    uint32_t bit, r, i;
    int err;
    if (k > MAX_ENTRIES || h->param0 != index_bits(k) || h->table_size != k) {
        return AT_DECODE_E_HEADER;
    }
    for (r = 0; r < rows; ++r) {
        uint8_t *u = (uint8_t *)out + r * h->row_len;
        err = at_blob_fixed_row(h, h->param0, row + r, &bit);
        if (err != AT_DECODE_OK) {
            return err;
        }
        at_unpack_fields(h->payload, bit, h->param0, h->row_len, u);
        for (i = 0; i < h->row_len; ++i) {
            if (u[i] >= k) {
                return AT_DECODE_E_CORRUPT;
            }
            u[i] = h->table[u[i]];
        }
    }
    return AT_DECODE_OK;
}

AT_DEFINE_ROWS_DECODER(palette, AT_CODEC_PALETTE, lookup_rows)
