/* rans: static rANS, byte-wise renormalisation (state in [2^23, 2^31)), frequencies summing to
 * 2^param0 (8..15). Table: a 32-byte bitmap of the byte values present, then each one's
 * frequency as a LEB128 varint. A chunk: the encoder's final state (u32 LE), then the
 * renormalisation bytes. Scratch (at_decode_rans_get_buffer_size, 2-byte aligned): cumulative
 * frequencies u16[symbols + 1], then the symbols u8[symbols]; each value is found by binary
 * search, so the decoder needs no 2^param0-entry table. */
#include <stddef.h>

#include "at_decode.h"

#define RANS_L (1u << 23)

typedef struct {
    const uint16_t *cum;
    const uint8_t *sym;
    uint32_t count, scale;
} rans_table_t;

static uint32_t symbol_count(const uint8_t *bitmap)
{
    uint32_t i, n = 0;
    for (i = 0; i < 256u; ++i) {
        n += (bitmap[i >> 3] >> (i & 7u)) & 1u;
    }
    return n;
}

/* The table into scratch: cumulative frequencies and symbols. */
static int build_table(const at_blob_header_t *h, uint8_t *scratch, uint32_t scratch_size, rans_table_t *t)
{
    const uint8_t *p = h->table + 32, *const end = h->table + h->table_size;
    uint16_t *cum = (uint16_t *)(void *)scratch;
    uint8_t *sym;
    uint32_t v, k = 0, total = 0;
    if (h->param0 < 8u || h->param0 > 15u || h->param1 != 0 || h->table_size < 32u) {
        return AT_DECODE_E_HEADER;
    }
    t->count = symbol_count(h->table);
    t->scale = h->param0;
    if (t->count == 0) {
        return AT_DECODE_E_HEADER;
    }
    if (scratch == NULL || ((uintptr_t)scratch & 1u) != 0 || scratch_size < 3u * t->count + 2u) {
        return AT_DECODE_E_ARG;
    }
    sym = scratch + 2u * (t->count + 1u);
    for (v = 0; v < 256u; ++v) {
        uint32_t f = 0, shift = 0, b;
        if (!((h->table[v >> 3] >> (v & 7u)) & 1u)) {
            continue;
        }
        do { /* a varint of at most 3 bytes */
            if (p == end || shift > 14u) {
                return AT_DECODE_E_HEADER;
            }
            b = *p++;
            f |= (b & 0x7Fu) << shift;
            shift += 7u;
        } while (b & 0x80u);
        if (f == 0 || f > (1u << t->scale) - total) {
            return AT_DECODE_E_HEADER;
        }
        cum[k] = (uint16_t)total;
        sym[k++] = (uint8_t)v;
        total += f;
    }
    if (p != end || total != 1u << t->scale) {
        return AT_DECODE_E_HEADER;
    }
    cum[k] = (uint16_t)total;
    t->cum = cum;
    t->sym = sym;
    return AT_DECODE_OK;
}

static int rans_chunk(const rans_table_t *t, const at_chunk_t *c, int8_t *out)
{
    const uint8_t *in = c->in, *const end = c->in + c->in_size;
    const uint32_t mask = (1u << t->scale) - 1u;
    uint32_t x, n = c->out_size;
    if (c->in_size < 4u) {
        return AT_DECODE_E_TRUNCATED;
    }
    x = (uint32_t)in[0] | (uint32_t)in[1] << 8 | (uint32_t)in[2] << 16 | (uint32_t)in[3] << 24;
    in += 4;
    out += c->out_offset;
    while (n--) {
        const uint32_t slot = x & mask;
        uint32_t lo = 0, hi = t->count; /* cum[lo] <= slot < cum[hi] */
        while (hi - lo > 1u) {
            const uint32_t mid = (lo + hi) >> 1;
            if (t->cum[mid] <= slot) {
                lo = mid;
            } else {
                hi = mid;
            }
        }
        *out++ = (int8_t)t->sym[lo];
        /* freq * (x >> scale) + slot - cum < 2^32: freq <= 2^scale */
        x = (uint32_t)(t->cum[lo + 1] - t->cum[lo]) * (x >> t->scale) + slot - t->cum[lo];
        while (x < RANS_L) {
            if (in == end) {
                return AT_DECODE_E_TRUNCATED;
            }
            x = x << 8 | *in++;
        }
    }
    return x == RANS_L && in == end ? AT_DECODE_OK : AT_DECODE_E_CORRUPT;
}

int at_decode_rans(const at_blob_t *blob, int8_t *out, uint32_t out_size, uint8_t *scratch, uint32_t scratch_size)
{
    at_blob_header_t h;
    at_chunk_t c;
    rans_table_t t;
    uint32_t k, chunks;
    int err = at_blob_whole(blob, AT_CODEC_RANS, 0u, out_size, &h, &chunks);
    if (err == AT_DECODE_OK) {
        err = build_table(&h, scratch, scratch_size, &t);
    }
    for (k = 0; err == AT_DECODE_OK && k < chunks; ++k) {
        err = at_blob_chunk(&h, k, &c);
        if (err == AT_DECODE_OK) {
            err = rans_chunk(&t, &c, out);
        }
    }
    return err;
}

int at_decode_rans_row(const at_blob_t *blob, uint32_t row, int8_t *out, uint32_t out_size, uint8_t *scratch,
                       uint32_t scratch_size)
{
    at_blob_header_t h;
    at_chunk_t c;
    rans_table_t t;
    int err = at_blob_row(blob, AT_CODEC_RANS, 0u, row, out_size, &h, &c);
    if (err == AT_DECODE_OK) {
        err = build_table(&h, scratch, scratch_size, &t);
    }
    c.out_offset = 0;
    return err != AT_DECODE_OK ? err : rans_chunk(&t, &c, out);
}

uint32_t at_decode_rans_get_buffer_size(const uint8_t *blob, uint32_t blob_size)
{
    if (blob == NULL || blob_size < AT_BLOB_HEADER_BYTES + 32u) {
        return 0;
    }
    return 3u * symbol_count(blob + AT_BLOB_HEADER_BYTES) + 2u;
}
