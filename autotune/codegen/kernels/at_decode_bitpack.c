/* bitpack: b-bit two's complement values (b = param0, 1..7), LSB first; in the per-row layout
 * each row starts on a byte. Packed-weight kernels can read this layout directly. */
#include "at_decode.h"

/* `rows` rows from `row`: unpack the fields, then sign-extend each from bit b - 1. */
static int unpack_rows(const at_blob_header_t *h, uint32_t row, uint32_t rows, int8_t *out)
{
    const uint32_t bits = h->param0;
    uint32_t bit, r, i;
    int err;
    if (bits < 1u || bits > 7u || h->param1 != 0 || h->table_size != 0) {
        return AT_DECODE_E_HEADER;
    }
    for (r = 0; r < rows; ++r) { /* a row at a time: per-row rows start on a byte */
        uint8_t *u = (uint8_t *)out + r * h->row_len;
        err = at_blob_fixed_row(h, bits, row + r, &bit);
        if (err != AT_DECODE_OK) {
            return err;
        }
        at_unpack_fields(h->payload, bit, bits, h->row_len, u);
        for (i = 0; i < h->row_len; ++i) {
            const uint32_t sign = 1u << (bits - 1u);
            u[i] = (uint8_t)((u[i] ^ sign) - sign); /* b-bit two's complement -> int8 */
        }
    }
    return AT_DECODE_OK;
}

AT_DEFINE_ROWS_DECODER(bitpack, AT_CODEC_BITPACK, unpack_rows)
