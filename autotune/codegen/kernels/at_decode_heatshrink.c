/* heatshrink: the raw LZSS stream of the heatshrink library (what heatshrink2.compress writes),
 * window_sz2 = param0 (4..15), lookahead_sz2 = param1 (3..window_sz2 - 1). Read MSB first: tag
 * 1 and an 8-bit literal, or tag 0, window_sz2 bits of offset - 1 and lookahead_sz2 bits of
 * count - 1, a copy from the output `offset` bytes back (zeros before the chunk's start, as the
 * library's window starts zeroed). The output is the window: no scratch. */
#include "at_decode.h"

typedef struct {
    const uint8_t *in, *end;
    uint32_t acc, have; /* the low `have` bits of acc are the next bits */
} bit_reader_t;

/* Bits not yet read. */
static uint32_t bits_left(const bit_reader_t *r)
{
    return r->have + 8u * (uint32_t)(r->end - r->in);
}

/* The next k (<= 15) bits; the caller has checked bits_left. */
static uint32_t take(bit_reader_t *r, uint32_t k)
{
    while (r->have < k) {
        r->acc = r->acc << 8 | *r->in++;
        r->have += 8u;
    }
    r->have -= k;
    return (r->acc >> r->have) & ((1u << k) - 1u);
}

static int heatshrink_chunk(const at_blob_header_t *h, const at_chunk_t *c, int8_t *out)
{
    const uint32_t window = h->param0, lookahead = h->param1, n = c->out_size;
    bit_reader_t r;
    uint32_t pos = 0;
    if (window < 4u || window > 15u || lookahead < 3u || lookahead >= window || h->table_size != 0) {
        return AT_DECODE_E_HEADER;
    }
    r.in = c->in;
    r.end = c->in + c->in_size;
    r.acc = r.have = 0;
    out += c->out_offset;
    while (pos < n) {
        const uint32_t left = bits_left(&r);
        if (left == 0) {
            return AT_DECODE_E_TRUNCATED;
        }
        if (take(&r, 1u)) {
            if (left < 9u) {
                return AT_DECODE_E_TRUNCATED;
            }
            out[pos++] = (int8_t)take(&r, 8u);
        } else {
            uint32_t offset, count;
            if (left < 1u + window + lookahead) {
                return AT_DECODE_E_TRUNCATED;
            }
            offset = take(&r, window) + 1u;
            count = take(&r, lookahead) + 1u;
            if (count > n - pos) {
                return AT_DECODE_E_CORRUPT;
            }
            for (; count != 0; --count, ++pos) {
                out[pos] = offset <= pos ? out[pos - offset] : 0;
            }
        }
    }
    /* only the zero bits that pad the last byte may remain */
    if (bits_left(&r) >= 8u || (r.acc & ((1u << r.have) - 1u)) != 0) {
        return AT_DECODE_E_CORRUPT;
    }
    return AT_DECODE_OK;
}

int at_decode_heatshrink(const at_blob_t *blob, int8_t *out, uint32_t out_size, uint8_t *scratch,
                         uint32_t scratch_size)
{
    at_blob_header_t h;
    at_chunk_t c;
    uint32_t k, chunks;
    int err = at_blob_whole(blob, AT_CODEC_HEATSHRINK, 0u, out_size, &h, &chunks);
    (void)scratch;
    (void)scratch_size;
    for (k = 0; err == AT_DECODE_OK && k < chunks; ++k) {
        err = at_blob_chunk(&h, k, &c);
        if (err == AT_DECODE_OK) {
            err = heatshrink_chunk(&h, &c, out);
        }
    }
    return err;
}

int at_decode_heatshrink_row(const at_blob_t *blob, uint32_t row, int8_t *out, uint32_t out_size, uint8_t *scratch,
                             uint32_t scratch_size)
{
    at_blob_header_t h;
    at_chunk_t c;
    int err = at_blob_row(blob, AT_CODEC_HEATSHRINK, 0u, row, out_size, &h, &c);
    (void)scratch;
    (void)scratch_size;
    c.out_offset = 0;
    return err != AT_DECODE_OK ? err : heatshrink_chunk(&h, &c, out);
}

uint32_t at_decode_heatshrink_get_buffer_size(const uint8_t *blob, uint32_t blob_size)
{
    (void)blob;
    (void)blob_size;
    return 0;
}
