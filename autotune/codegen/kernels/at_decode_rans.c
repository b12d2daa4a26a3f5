/* rans: static rANS, byte-wise renormalisation (state in [2^23, 2^31)), frequencies summing to
 * 2^param0 (8..13). Table: the smallest value (int8), the count - 1 of values from it up, then
 * their frequencies as codes: a byte below 0x80 is a frequency; 0x80 | h, l the frequency
 * h << 8 | l; 0xC0 | r stands for r + 1 values that do not occur. A chunk: the
 * encoder's final state (u32 LE), then the renormalisation bytes.
 * Scratch (at_decode_rans_get_buffer_size, 2-byte aligned): the cumulative frequencies
 * u16[values + 1], then a bucket index u8[64]: for each 64th of the range, the value its first
 * slot falls in, where the search for a slot's value starts. */
#include <stddef.h>

#include "at_decode.h"

#define RANS_L (1u << 23)
#define BUCKET_BITS 6u

typedef struct {
    const uint16_t *cum;
    const uint8_t *bucket;
    uint32_t scale, low;
} rans_table_t;

/* The table into scratch. */
static int build_table(const at_blob_header_t *h, uint8_t *scratch, uint32_t scratch_size, rans_table_t *t)
{
    const uint8_t *p, *const end = h->table + h->table_size;
    const uint32_t count = h->table_size < 2u ? 0u : h->table[1] + 1u, shift = h->param0 - BUCKET_BITS;
    uint16_t *cum;
    uint8_t *bucket;
    uint32_t k, b = 0, sum = 0;
    if (h->param0 < 8u || h->param0 > 13u || h->param1 != 0) {
        return AT_DECODE_E_HEADER; /* (no table, count 0: the total check below fails) */
    }
    if (((uintptr_t)scratch & 1u) != 0 || scratch_size < 2u * count + 66u) {
        return AT_DECODE_E_ARG;
    }
    p = h->table + 2;
    cum = (uint16_t *)(void *)scratch;
    bucket = scratch + 2u * (count + 1u);
    for (k = 0; k < count;) {
        uint32_t f, run = 1;
        if (p == end) {
            return AT_DECODE_E_HEADER;
        }
        f = *p++;
        if (f >= 0xC0u) { /* values that do not occur */
            run = (f & 0x3Fu) + 1u;
            f = 0;
        } else if (f >= 0x80u) {
            if (p == end) {
                return AT_DECODE_E_HEADER;
            }
            f = (f & 0x3Fu) << 8 | *p++;
        }
        if (run > count - k) {
            return AT_DECODE_E_HEADER;
        }
        for (; run != 0; --run, ++k) {
            cum[k] = (uint16_t)sum; /* sum < 2^22: no overflow; a wrong total fails below */
            sum += f;
        }
    }
    if (p != end || sum != 1u << h->param0) {
        return AT_DECODE_E_HEADER;
    }
    cum[count] = (uint16_t)sum;
    for (k = 0; b < (1u << BUCKET_BITS); ++b) { /* bucket b: the value its first slot falls in */
        while (cum[k + 1] <= b << shift) {
            ++k;
        }
        bucket[b] = (uint8_t)k;
    }
    t->cum = cum;
    t->bucket = bucket;
    t->scale = h->param0;
    t->low = h->table[0];
    return AT_DECODE_OK;
}

static int rans_chunk(const rans_table_t *t, const at_chunk_t *c, int8_t *out)
{
    const uint8_t *in = c->in, *const end = c->in + c->in_size;
    const uint16_t *const cum = t->cum;
    const uint32_t scale = t->scale;
    int8_t *const stop = out + c->out_offset + c->out_size;
    uint32_t x;
    if (c->in_size < 4u) {
        return AT_DECODE_E_TRUNCATED;
    }
    x = at_read_le(in, 4);
    in += 4;
    for (out += c->out_offset; out != stop; ++out) {
        const uint32_t slot = x & ((1u << scale) - 1u);
        uint32_t s = t->bucket[slot >> (scale - BUCKET_BITS)];
        while (cum[s + 1] <= slot) { /* cum[count] = 2^scale > slot: stops at the last value */
            ++s;
        }
        *out = (int8_t)(uint8_t)(t->low + s); /* symbol s is the value low + s */
        /* freq * (x >> scale) + slot - cum < 2^32: freq <= 2^scale */
        x = (uint32_t)(cum[s + 1] - cum[s]) * (x >> scale) + slot - cum[s];
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
    int err = at_blob_whole(blob, AT_CODEC_RANS, 0u, out_size, &h, &chunks, &c);
    if (err == AT_DECODE_OK) {
        err = build_table(&h, scratch, scratch_size, &t);
    }
    for (k = 0; err == AT_DECODE_OK && k < chunks; ++k) {
        err = at_blob_next(&h, &c);
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
    return err != AT_DECODE_OK ? err : rans_chunk(&t, &c, out);
}

uint32_t at_decode_rans_get_buffer_size(const uint8_t *blob, uint32_t blob_size)
{
    if (blob == NULL || blob_size < AT_BLOB_HEADER_BYTES + 2u) {
        return 0;
    }
    return 2u * (blob[AT_BLOB_HEADER_BYTES + 1] + 1u) + 66u;
}
