/* sparse: (gap, value) byte pairs, `gap` zeros then `value`; zeros after the last pair. */
#include "at_decode.h"

static int sparse_chunk(const at_blob_header_t *h, const at_chunk_t *c, int8_t *out)
{
    const uint8_t *in = c->in, *const end = c->in + c->in_size;
    const uint32_t n = c->out_size;
    uint32_t pos = 0;
    if ((h->param0 | h->param1 | h->table_size) != 0) {
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

AT_DEFINE_CHUNK_DECODER(sparse, AT_CODEC_SPARSE, sparse_chunk)
