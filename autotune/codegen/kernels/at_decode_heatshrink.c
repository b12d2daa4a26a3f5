/* heatshrink: the raw LZSS stream of the heatshrink library (what heatshrink2.compress writes),
 * window_sz2 = param0 (4..15), lookahead_sz2 = param1 (3..window_sz2 - 1). Read MSB first: tag
 * 1 and an 8-bit literal, or tag 0, window_sz2 bits of offset - 1 and lookahead_sz2 bits of
 * count - 1, a copy from the output `offset` bytes back (zeros before the chunk's start, as the
 * library's window starts zeroed). The output is the window: no scratch. */
#include "at_decode.h"

static int heatshrink_chunk(const at_blob_header_t *h, const at_chunk_t *c, int8_t *out)
{
    const uint32_t window = h->param0, lookahead = h->param1, n = c->out_size;
    const uint8_t *in = c->in, *const end = c->in + c->in_size;
    uint32_t acc = 0, have = 0; /* the low `have` bits of acc are the next bits of the stream */
    uint32_t pos = 0, left = 8u * c->in_size; /* bits not yet read */
    if (window < 4u || window > 15u || lookahead < 3u || lookahead >= window || h->table_size != 0) {
        return AT_DECODE_E_HEADER;
    }
    out += c->out_offset;
    while (pos < n) {
        uint32_t op, width;
        if (have < 8u && in != end) { /* at least 16 bits once refilled: tag and a literal */
            acc = acc << 8 | *in++;
            have += 8u;
        }
        if (have < 16u && in != end) {
            acc = acc << 8 | *in++;
            have += 8u;
        }
        if (left == 0) {
            return AT_DECODE_E_TRUNCATED;
        }
        op = (acc >> (have - 1u)) & 1u; /* the tag: 1 literal, 0 back-reference */
        width = op ? 9u : 1u + window + lookahead;
        if (left < width) {
            return AT_DECODE_E_TRUNCATED;
        }
        left -= width;
        if (op) {
            have -= 9u;
            out[pos++] = (int8_t)(acc >> have);
        } else {
            uint32_t offset, count;
            /* tag and offset are in acc: 16 bits after the refill, or all that is left */
            have -= 1u + window;
            offset = ((acc >> have) & ((1u << window) - 1u)) + 1u;
            while (have < lookahead) { /* acc never holds more than 23 bits */
                acc = acc << 8 | *in++;
                have += 8u;
            }
            have -= lookahead;
            count = ((acc >> have) & ((1u << lookahead) - 1u)) + 1u;
            if (count > n - pos) {
                return AT_DECODE_E_CORRUPT;
            }
            for (; count != 0; --count, ++pos) {
                out[pos] = offset <= pos ? out[pos - offset] : 0;
            }
        }
    }
    /* only the zero bits that pad the last byte may remain */
    if (left >= 8u || (acc & ((1u << left) - 1u)) != 0) {
        return AT_DECODE_E_CORRUPT;
    }
    return AT_DECODE_OK;
}

AT_DEFINE_CHUNK_DECODER(heatshrink, AT_CODEC_HEATSHRINK, heatshrink_chunk)
