/* rle0 and delta_rle: a control byte c, then c < 0x80: c + 1 literal bytes; c >= 0x80:
 * (c & 0x7F) + 1 zeros. delta_rle codes the differences of consecutive values (mod 256, from 0
 * at each chunk start): its zero runs repeat the last value. */
#include "at_decode.h"

static int rle_chunk(const at_blob_header_t *h, const at_chunk_t *c, int8_t *out, uint32_t delta)
{
    const uint8_t *in = c->in, *const end = c->in + c->in_size;
    uint32_t left = c->out_size;
    uint8_t value = 0;
    if ((h->param0 | h->param1 | h->table_size) != 0) {
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

static int rle0_chunk(const at_blob_header_t *h, const at_chunk_t *c, int8_t *out)
{
    return rle_chunk(h, c, out, 0u);
}

static int delta_rle_chunk(const at_blob_header_t *h, const at_chunk_t *c, int8_t *out)
{
    return rle_chunk(h, c, out, 1u);
}

AT_DEFINE_CHUNK_DECODER(rle0, AT_CODEC_RLE0, rle0_chunk)
AT_DEFINE_CHUNK_DECODER(delta_rle, AT_CODEC_DELTA_RLE, delta_rle_chunk)
