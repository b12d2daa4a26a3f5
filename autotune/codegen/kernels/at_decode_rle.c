/* rle0 and delta_rle: a control byte c, then c < 0x80: c + 1 literal bytes; c >= 0x80:
 * (c & 0x7F) + 1 zeros. delta_rle codes the differences of consecutive values (mod 256, from 0
 * at each chunk start): its zero runs repeat the last value. */
#include "at_decode.h"

static int rle_chunk(const at_chunk_t *c, int8_t *out, uint32_t delta, uint32_t params)
{
    const uint8_t *in = c->in, *const end = c->in + c->in_size;
    uint32_t left = c->out_size;
    uint8_t value = 0;
    if (params != 0) {
        return AT_DECODE_E_HEADER;
    }
    out += c->out_offset;
    while (left != 0) {
        uint32_t ctrl, count;
        if (in == end) {
            return AT_DECODE_E_TRUNCATED;
        }
        ctrl = *in++;
        count = (ctrl & 0x7Fu) + 1u;
        if (count > left) {
            return AT_DECODE_E_CORRUPT;
        }
        left -= count;
        if (ctrl & 0x80u) {
            const int8_t run = delta ? (int8_t)value : 0;
            while (count--) {
                *out++ = run;
            }
        } else {
            if (count > (uint32_t)(end - in)) {
                return AT_DECODE_E_TRUNCATED;
            }
            while (count--) {
                value = (uint8_t)(delta ? value + *in++ : *in++);
                *out++ = (int8_t)value;
            }
        }
    }
    return in == end ? AT_DECODE_OK : AT_DECODE_E_CORRUPT;
}

static int rle_whole(const at_blob_t *blob, uint32_t codec, int8_t *out, uint32_t out_size)
{
    at_blob_header_t h;
    at_chunk_t c;
    uint32_t k, chunks;
    int err = at_blob_whole(blob, codec, 0u, out_size, &h, &chunks, &c);
    for (k = 0; err == AT_DECODE_OK && k < chunks; ++k) {
        err = at_blob_next(&h, &c);
        if (err == AT_DECODE_OK) {
            err = rle_chunk(&c, out, codec == AT_CODEC_DELTA_RLE, h.param0 | h.param1 | h.table_size);
        }
    }
    return err;
}

static int rle_row(const at_blob_t *blob, uint32_t codec, uint32_t row, int8_t *out, uint32_t out_size)
{
    at_blob_header_t h;
    at_chunk_t c;
    int err = at_blob_row(blob, codec, 0u, row, out_size, &h, &c);
    return err != AT_DECODE_OK ? err
                               : rle_chunk(&c, out, codec == AT_CODEC_DELTA_RLE, h.param0 | h.param1 | h.table_size);
}

int at_decode_rle0(const at_blob_t *blob, int8_t *out, uint32_t out_size, uint8_t *scratch, uint32_t scratch_size)
{
    (void)scratch;
    (void)scratch_size;
    return rle_whole(blob, AT_CODEC_RLE0, out, out_size);
}

int at_decode_rle0_row(const at_blob_t *blob, uint32_t row, int8_t *out, uint32_t out_size, uint8_t *scratch,
                       uint32_t scratch_size)
{
    (void)scratch;
    (void)scratch_size;
    return rle_row(blob, AT_CODEC_RLE0, row, out, out_size);
}

uint32_t at_decode_rle0_get_buffer_size(const uint8_t *blob, uint32_t blob_size)
{
    (void)blob;
    (void)blob_size;
    return 0;
}

int at_decode_delta_rle(const at_blob_t *blob, int8_t *out, uint32_t out_size, uint8_t *scratch,
                        uint32_t scratch_size)
{
    (void)scratch;
    (void)scratch_size;
    return rle_whole(blob, AT_CODEC_DELTA_RLE, out, out_size);
}

int at_decode_delta_rle_row(const at_blob_t *blob, uint32_t row, int8_t *out, uint32_t out_size, uint8_t *scratch,
                            uint32_t scratch_size)
{
    (void)scratch;
    (void)scratch_size;
    return rle_row(blob, AT_CODEC_DELTA_RLE, row, out, out_size);
}

uint32_t at_decode_delta_rle_get_buffer_size(const uint8_t *blob, uint32_t blob_size)
{
    (void)blob;
    (void)blob_size;
    return 0;
}
