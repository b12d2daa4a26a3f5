/* Blob header, CRC-32, chunks and bit fields shared by the weight decoders (at_decode.h). */
#include "at_decode.h"

#define AT_BLOB_MAGIC 0xA7u

#if defined(__GNUC__)
#define NOINLINE __attribute__((noinline))
#else
#define NOINLINE
#endif

uint32_t at_read_le(const uint8_t *p, uint32_t n)
{
    uint32_t v = 0;
    while (n--) {
        v = v << 8 | p[n];
    }
    return v;
}

uint32_t at_crc32(uint32_t crc, const uint8_t *p, uint32_t n)
{
    /* Bit by bit: no table, the smallest code; it runs once per blob (before its first use). */
    uint32_t k;
    crc = ~crc;
    while (n--) {
        crc ^= *p++;
        for (k = 0; k < 8u; ++k) {
            crc = (crc >> 1) ^ (0xEDB88320u & (0u - (crc & 1u)));
        }
    }
    return ~crc;
}

static int open_blob(const at_blob_t *blob, uint32_t codec, uint32_t fixed_rows, at_blob_header_t *h)
{
    const uint8_t *d;
    uint32_t size, body;
    if (blob == 0 || blob->data == 0) {
        return AT_DECODE_E_ARG;
    }
    d = blob->data;
    size = blob->size;
    body = size - AT_BLOB_HEADER_BYTES - AT_BLOB_CRC_BYTES; /* table and payload */
    if (body >= AT_BLOB_MAX_BYTES || d[0] != AT_BLOB_MAGIC || d[2] > 1u || d[5] != 0) {
        return AT_DECODE_E_HEADER; /* (a blob under 16 bytes wraps body round) */
    }
    if (d[1] != codec) {
        return AT_DECODE_E_ARG;
    }
    h->per_row = d[2];
    h->chunked = d[2] && !fixed_rows;
    h->param0 = d[3];
    h->param1 = d[4];
    h->rows = at_read_le(d + 6, 2);
    h->row_len = at_read_le(d + 8, 2);
    h->table_size = at_read_le(d + 10, 2);
    /* 1 to 65535 rows of 1 to 65535 values: the product fits 32 bits */
    h->elements = h->rows * h->row_len;
    if (h->rows == 0 || h->row_len == 0 || h->elements >= AT_BLOB_MAX_BYTES || h->table_size > body) {
        return AT_DECODE_E_HEADER;
    }
    h->table = d + AT_BLOB_HEADER_BYTES;
    h->payload_size = body - h->table_size;
    h->payload = h->table + h->table_size;
    if (blob->checked == 0 || *blob->checked == 0) {
        if (at_crc32(0, d, size - AT_BLOB_CRC_BYTES) != at_read_le(d + size - AT_BLOB_CRC_BYTES, 4)) {
            return AT_DECODE_E_CRC;
        }
        if (blob->checked != 0) {
            *blob->checked = 1;
        }
    }
    return AT_DECODE_OK;
}

int at_blob_whole(const at_blob_t *blob, uint32_t codec, uint32_t fixed_rows, uint32_t out_size,
                  at_blob_header_t *h, uint32_t *chunks, at_chunk_t *c)
{
    int err = open_blob(blob, codec, fixed_rows, h);
    if (err != AT_DECODE_OK) {
        return err;
    }
    *chunks = h->chunked ? h->rows : 1u;
    c->in = h->payload;
    c->in_size = c->out_offset = c->out_size = 0;
    return out_size < h->elements ? AT_DECODE_E_ARG : AT_DECODE_OK;
}

int at_blob_row(const at_blob_t *blob, uint32_t codec, uint32_t fixed_rows, uint32_t row, uint32_t out_size,
                at_blob_header_t *h, at_chunk_t *c)
{
    uint32_t k;
    int err = open_blob(blob, codec, fixed_rows, h);
    if (err != AT_DECODE_OK) {
        return err;
    }
    /* chunked == fixed_rows: a fixed-size storage chunked, or a variable one not laid out per row */
    if (row >= h->rows || out_size < h->row_len || h->chunked == fixed_rows) {
        return AT_DECODE_E_ARG;
    }
    c->in = h->payload;
    c->in_size = c->out_offset = c->out_size = 0;
    for (k = fixed_rows ? row + 1u : 0u; k <= row && err == AT_DECODE_OK; ++k) {
        err = at_blob_next(h, c); /* walks the records before it: a few cycles each */
    }
    c->out_offset = 0;
    return err;
}

int at_blob_next(const at_blob_header_t *h, at_chunk_t *c)
{
    const uint8_t *p = c->in + c->in_size;
    uint32_t left = h->payload_size - (uint32_t)(p - h->payload), size = left;
    c->out_offset += c->out_size;
    c->out_size = h->chunked ? h->row_len : h->elements;
    if (h->chunked) {
        if (left < 2u || (size = at_read_le(p, 2)) > left - 2u) {
            return AT_DECODE_E_TRUNCATED;
        }
        p += 2;
        if (c->out_offset + c->out_size == h->elements && size != left - 2u) {
            return AT_DECODE_E_CORRUPT; /* bytes after the last row */
        }
    }
    c->in = p;
    c->in_size = size;
    return AT_DECODE_OK;
}

int at_blob_fixed_row(const at_blob_header_t *h, uint32_t bits, uint32_t row, uint32_t *bit)
{
    /* rows * row_len < 2^28 (open_blob), so every product below fits 32 bits */
    if (h->per_row) {
        const uint32_t row_bytes = (h->row_len * bits + 7u) >> 3;
        if (row_bytes * h->rows != h->payload_size) {
            return AT_DECODE_E_CORRUPT;
        }
        *bit = row * row_bytes * 8u;
    } else {
        if ((h->elements * bits + 7u) >> 3 != h->payload_size) {
            return AT_DECODE_E_CORRUPT;
        }
        *bit = row * h->row_len * bits;
    }
    return AT_DECODE_OK;
}

void at_unpack_fields(const uint8_t *p, uint32_t bit, uint32_t bits, uint32_t n, uint8_t *out)
{
    const uint32_t mask = (1u << bits) - 1u;
    uint32_t acc = 0, have = 0; /* bits == 0: reads nothing, writes zeros */
    p += bit >> 3;
    if (n != 0 && (bit & 7u) != 0) {
        acc = (uint32_t)*p++ >> (bit & 7u);
        have = 8u - (bit & 7u);
    }
    while (n--) {
        if (have < bits) { /* reads only bytes the fields lie in */
            acc |= (uint32_t)*p++ << have;
            have += 8u;
        }
        *out++ = (uint8_t)(acc & mask);
        acc >>= bits;
        have -= bits;
    }
}
