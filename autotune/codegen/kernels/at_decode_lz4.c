/* lz4: one LZ4 block (what lz4.block.compress(d, store_size=False) writes): sequences of a
 * token (literal count << 4 | match length - 4, 15 = more bytes follow), literals, a u16 LE
 * offset and the match length's extra bytes; the last sequence is literals only. Matches copy
 * from the output: no scratch. */
#include "at_decode.h"

/* A length whose nibble was 15 goes on in bytes up to one below 255; stops early past `limit`
 * (the caller then rejects it) so the sum cannot wrap. */
static int extend(const uint8_t **in, const uint8_t *end, uint32_t *length, uint32_t limit)
{
    uint32_t b;
    if (*length != 15u) {
        return AT_DECODE_OK;
    }
    do {
        if (*in == end) {
            return AT_DECODE_E_TRUNCATED;
        }
        b = *(*in)++;
        *length += b;
    } while (b == 255u && *length <= limit);
    return AT_DECODE_OK;
}

static int lz4_chunk(const at_blob_header_t *h, const at_chunk_t *c, int8_t *out)
{
    const uint8_t *in = c->in, *const end = c->in + c->in_size;
    const uint32_t n = c->out_size;
    uint32_t pos = 0;
    int err;
    if (h->param0 != 0 || h->param1 != 0 || h->table_size != 0) {
        return AT_DECODE_E_HEADER;
    }
    out += c->out_offset;
    while (in != end) {
        const uint32_t token = *in++;
        uint32_t literals = token >> 4, match = token & 15u, offset;
        err = extend(&in, end, &literals, n);
        if (err != AT_DECODE_OK) {
            return err;
        }
        if (literals > n - pos) {
            return AT_DECODE_E_CORRUPT;
        }
        if (literals > (uint32_t)(end - in)) {
            return AT_DECODE_E_TRUNCATED;
        }
        while (literals--) {
            out[pos++] = (int8_t)*in++;
        }
        if (in == end) {
            break; /* the last sequence: literals only */
        }
        if (end - in < 2) {
            return AT_DECODE_E_TRUNCATED;
        }
        offset = (uint32_t)in[0] | (uint32_t)in[1] << 8;
        in += 2;
        if (offset == 0 || offset > pos) {
            return AT_DECODE_E_CORRUPT;
        }
        err = extend(&in, end, &match, n);
        if (err != AT_DECODE_OK) {
            return err;
        }
        match += 4u;
        if (match > n - pos) {
            return AT_DECODE_E_CORRUPT;
        }
        for (; match != 0; --match, ++pos) {
            out[pos] = out[pos - offset];
        }
    }
    return pos == n ? AT_DECODE_OK : AT_DECODE_E_TRUNCATED;
}

AT_DEFINE_CHUNK_DECODER(lz4, AT_CODEC_LZ4, lz4_chunk)
