/* rans: static rANS, byte-wise renormalisation (state in [2^23, 2^31)), frequencies summing to
 * 2^param0 (8..13). Table: a byte (below), the count - 1 of symbols, then
 * their frequencies as codes: a byte below 0x80 is a frequency; 0x80 | h, l the frequency
 * h << 8 | l; 0xC0 | r stands for r + 1 symbols that do not occur. A chunk: the
 * encoder's final state (u32 LE), then the renormalisation bytes.
 * rans: index s of the table is the value low + s, low (int8) the table's first byte.
 * rans_binned (at_decode_rans_binned.c: this file built with AT_RANS_BINNED; param1 = k lead
 * bits, 1..6): index s is a sign (odd: negative) and the class (s + 1) >> 1 of a magnitude a:
 * below 2^k a itself, else (sh << (k - 1)) + (a >> sh), and the sh trailing bits of a follow
 * the symbol as a uniform step of 2^sh slots (autotune/codecs/rans.py).
 * rans_grid (at_decode_rans_grid.c, built with AT_RANS_GRID; param1 = q, 1..127): index s is a
 * sign (odd: negative) and level j = (s + 1) >> 1 of the grid of q levels a side that low-bit
 * weights are on, the magnitude (254 j + q) / 2q (127 j / q rounded half up).
 * In both the first table byte is 0 and not read.
 * Scratch (get_buffer_size, 2-byte aligned): the cumulative frequencies u16[symbols + 1]; for
 * rans then a bucket index u8[64]: for each 64th of the range, the symbol its first slot falls
 * in, where the search for a slot's symbol starts. rans_binned and rans_grid search from index
 * 0: their symbols come most frequent first for weights (0, -1, 1, -2, ...); rans_grid then
 * keeps the grid's magnitudes u8[q + 1]. */
#include <stddef.h>

#include "at_decode.h"

#if defined(AT_RANS_BINNED)
#define AT_RANS(suffix) at_decode_rans_binned##suffix
#define AT_RANS_CODEC AT_CODEC_RANS_BINNED
#define PARAM1_OK(k) ((k) - 1u < 6u) /* lead bits, 1..6 */
#define SCRATCH_BYTES(count, param1) (2u * (count) + 2u)
#elif defined(AT_RANS_GRID)
#define AT_RANS(suffix) at_decode_rans_grid##suffix
#define AT_RANS_CODEC AT_CODEC_RANS_GRID
#define PARAM1_OK(q) ((q) - 1u < 127u) /* levels a side, 1..127 */
#define SCRATCH_BYTES(count, q) (2u * (count) + 3u + (q))
#else
#define AT_RANS(suffix) at_decode_rans##suffix
#define AT_RANS_CODEC AT_CODEC_RANS
#define PARAM1_OK(k) ((k) == 0u)
#define SCRATCH_BYTES(count, param1) (2u * (count) + 66u)
#endif
#if defined(AT_RANS_BINNED) || defined(AT_RANS_GRID)
#define AT_RANS_ZIGZAG /* symbols 0, -1, 1, -2, ...: searched from 0, no bucket index */
#endif

#define RANS_L (1u << 23)
#define BUCKET_BITS 6u

typedef struct {
    const uint16_t *cum;
    const uint8_t *bucket;
    const uint8_t *magnitudes; /* rans_grid: of each level */
    uint32_t scale, low, lead;
} rans_table_t;

/* The table into scratch. */
static int build_table(const at_blob_header_t *h, uint8_t *scratch, uint32_t scratch_size, rans_table_t *t)
{
    const uint8_t *p, *const end = h->table + h->table_size;
    const uint32_t count = h->table_size < 2u ? 0u : h->table[1] + 1u;
    uint16_t *cum;
    uint32_t k, sum = 0;
#ifndef AT_RANS_ZIGZAG
    uint8_t *bucket;
    uint32_t b = 0;
#endif
    if (h->param0 < 8u || h->param0 > 13u || !PARAM1_OK(h->param1)) {
        return AT_DECODE_E_HEADER; /* (no table, count 0: the total check below fails) */
    }
    if (((uintptr_t)scratch & 1u) != 0 || scratch_size < SCRATCH_BYTES(count, h->param1)) {
        return AT_DECODE_E_ARG;
    }
    p = h->table + 2;
    cum = (uint16_t *)(void *)scratch;
#ifndef AT_RANS_ZIGZAG
    bucket = scratch + 2u * (count + 1u);
#endif
    for (k = 0; k < count;) {
        uint32_t f, run = 1;
        if (p == end) {
            return AT_DECODE_E_HEADER;
        }
        f = *p++;
        if (f >= 0xC0u) { /* symbols that do not occur */
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
#ifdef AT_RANS_GRID
    if (count > 2u * h->param1 + 1u) { /* a level past q */
        return AT_DECODE_E_HEADER;
    }
    { /* magnitude m of level j = (254 j + q) / 2q, by steps; rem its remainder */
        uint8_t *const magnitudes = scratch + 2u * (count + 1u);
        uint32_t m = 0, rem = h->param1;
        for (k = 0; k <= h->param1; ++k) {
            magnitudes[k] = (uint8_t)m;
            for (rem += 254u; rem >= 2u * h->param1; rem -= 2u * h->param1) {
                ++m;
            }
        }
        t->magnitudes = magnitudes;
    }
#endif
#ifndef AT_RANS_ZIGZAG
    for (k = 0; b < (1u << BUCKET_BITS); ++b) { /* bucket b: the symbol its first slot falls in */
        while (cum[k + 1] <= b << (h->param0 - BUCKET_BITS)) {
            ++k;
        }
        bucket[b] = (uint8_t)k;
    }
    t->bucket = bucket;
#endif
    t->cum = cum;
    t->scale = h->param0;
#ifdef AT_RANS_BINNED
    t->lead = h->param1;
#else
    t->low = h->table[0];
#endif
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
#ifdef AT_RANS_ZIGZAG
        uint32_t s = 0, sh = 0, magnitude;
#else
        uint32_t s = t->bucket[slot >> (scale - BUCKET_BITS)], sh = 0;
#endif
        while (cum[s + 1] <= slot) { /* cum[count] = 2^scale > slot: stops at the last symbol */
            ++s;
        }
        /* freq * (x >> scale) + slot - cum < 2^32: freq <= 2^scale */
        x = (uint32_t)(cum[s + 1] - cum[s]) * (x >> scale) + slot - cum[s];
#ifdef AT_RANS_BINNED
        magnitude = (s + 1u) >> 1;
        if (magnitude >= 1u << t->lead) { /* a class: its leading bits; sh raw bits follow */
            sh = (magnitude >> (t->lead - 1u)) - 1u;
            if (sh > 7u) {
                return AT_DECODE_E_CORRUPT;
            }
            magnitude = (magnitude - (sh << (t->lead - 1u))) << sh;
        }
#elif defined(AT_RANS_GRID)
        magnitude = t->magnitudes[(s + 1u) >> 1]; /* s < count <= 2q + 1: level <= q */
#endif
        for (;;) {
            while (x < RANS_L) { /* renormalise */
                if (in == end) {
                    return AT_DECODE_E_TRUNCATED;
                }
                x = x << 8 | *in++;
            }
            if (sh == 0u) {
                break;
            }
#ifdef AT_RANS_BINNED
            magnitude |= x & ((1u << sh) - 1u); /* the raw bits: a step of 2^sh equal slots */
            x >>= sh;
            sh = 0;
#endif
        }
#ifdef AT_RANS_ZIGZAG
        *out = (int8_t)(uint8_t)((s & 1u) != 0u ? 0u - magnitude : magnitude); /* past 127 wraps */
#else
        *out = (int8_t)(uint8_t)(t->low + s); /* past 127 wraps */
#endif
    }
    return x == RANS_L && in == end ? AT_DECODE_OK : AT_DECODE_E_CORRUPT;
}

int AT_RANS()(const at_blob_t *blob, int8_t *out, uint32_t out_size, uint8_t *scratch, uint32_t scratch_size)
{
    at_blob_header_t h;
    at_chunk_t c;
    rans_table_t t;
    uint32_t k, chunks;
    int err = at_blob_whole(blob, AT_RANS_CODEC, 0u, out_size, &h, &chunks, &c);
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

int AT_RANS(_row)(const at_blob_t *blob, uint32_t row, int8_t *out, uint32_t out_size, uint8_t *scratch,
                  uint32_t scratch_size)
{
    at_blob_header_t h;
    at_chunk_t c;
    rans_table_t t;
    int err = at_blob_row(blob, AT_RANS_CODEC, 0u, row, out_size, &h, &c);
    if (err == AT_DECODE_OK) {
        err = build_table(&h, scratch, scratch_size, &t);
    }
    return err != AT_DECODE_OK ? err : rans_chunk(&t, &c, out);
}

uint32_t AT_RANS(_get_buffer_size)(const uint8_t *blob, uint32_t blob_size)
{
    if (blob == NULL || blob_size < AT_BLOB_HEADER_BYTES + 2u) {
        return 0;
    }
    return SCRATCH_BYTES(blob[AT_BLOB_HEADER_BYTES + 1] + 1u, blob[4]); /* blob[4]: param1 */
}
