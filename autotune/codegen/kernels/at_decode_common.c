/* Blob header, CRC-32, chunks and bit fields shared by the weight decoders (at_decode.h). */
#include "at_decode.h"

#define AT_BLOB_MAGIC 0xA7u
#define FLAG_PER_ROW 1u
#define FLAG_OFFSETS16 2u

static uint32_t rd16(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8;
}

static uint32_t rd32(const uint8_t *p)
{
    return rd16(p) | rd16(p + 2) << 16;
}

uint32_t at_crc32(uint32_t crc, const uint8_t *p, uint32_t n)
{
    /* A nibble at a time: a 64-byte table instead of 1 KB, about 2x the speed of bit by bit. */
    static const uint32_t nibble[16] = {
        0x00000000u, 0x1DB71064u, 0x3B6E20C8u, 0x26D930ACu, 0x76DC4190u, 0x6B6B51F4u,
        0x4DB26158u, 0x5005713Cu, 0xEDB88320u, 0xF00F9344u, 0xD6D6A3E8u, 0xCB61B38Cu,
        0x9B64C2B0u, 0x86D3D2D4u, 0xA00AE278u, 0xBDBDF21Cu,
    };
    crc = ~crc;
    while (n--) {
        crc ^= *p++;
        crc = (crc >> 4) ^ nibble[crc & 15u];
        crc = (crc >> 4) ^ nibble[crc & 15u];
    }
    return ~crc;
}

static int open_blob(const at_blob_t *blob, uint32_t codec, uint32_t fixed_rows, at_blob_header_t *h)
{
    const uint8_t *d;
    uint32_t size, flags, index, rest;
    if (blob == 0 || blob->data == 0) {
        return AT_DECODE_E_ARG;
    }
    d = blob->data;
    size = blob->size;
    if (size < AT_BLOB_HEADER_BYTES || size >= AT_BLOB_MAX_BYTES) {
        return AT_DECODE_E_HEADER;
    }
    flags = d[2];
    if (d[0] != AT_BLOB_MAGIC || d[5] != 0 || (flags & ~(FLAG_PER_ROW | FLAG_OFFSETS16)) != 0) {
        return AT_DECODE_E_HEADER;
    }
    if (d[1] != codec) {
        return AT_DECODE_E_ARG;
    }
    h->per_row = flags & FLAG_PER_ROW;
    h->offsets16 = (flags & FLAG_OFFSETS16) != 0;
    if (h->offsets16 && !(h->per_row && !fixed_rows)) {
        return AT_DECODE_E_HEADER;
    }
    h->param0 = d[3];
    h->param1 = d[4];
    h->rows = rd16(d + 6);
    h->row_len = rd32(d + 8);
    h->payload_size = rd32(d + 12);
    /* rows * row_len < 2^28 without a division (a library call on the M0+): rows < 2^16, so
     * (row_len >> 14) * rows < 2^30, and below 2^14 the full product fits 32 bits */
    if (h->rows == 0 || h->row_len == 0 || h->row_len >= AT_BLOB_MAX_BYTES ||
        (h->row_len >> 14) * h->rows >= (1u << 14) || h->rows * h->row_len >= AT_BLOB_MAX_BYTES) {
        return AT_DECODE_E_HEADER;
    }
    index = h->per_row && !fixed_rows ? h->rows * (h->offsets16 ? 2u : 4u) : 0u;
    rest = size - AT_BLOB_HEADER_BYTES;
    if (index > rest || h->payload_size > rest - index) {
        return AT_DECODE_E_HEADER;
    }
    h->table = d + AT_BLOB_HEADER_BYTES;
    h->table_size = rest - index - h->payload_size;
    h->offsets = index ? h->table + h->table_size : 0;
    h->payload = d + size - h->payload_size;
    if (blob->checked == 0 || *blob->checked == 0) {
        if (at_crc32(at_crc32(0, d, 16), d + AT_BLOB_HEADER_BYTES, rest) != rd32(d + 16)) {
            return AT_DECODE_E_CRC;
        }
        if (blob->checked != 0) {
            *blob->checked = 1;
        }
    }
    return AT_DECODE_OK;
}

static uint32_t row_end(const at_blob_header_t *h, uint32_t row)
{
    return h->offsets16 ? rd16(h->offsets + 2 * row) : rd32(h->offsets + 4 * row);
}

int at_blob_whole(const at_blob_t *blob, uint32_t codec, uint32_t fixed_rows, uint32_t out_size,
                  at_blob_header_t *h, uint32_t *chunks)
{
    int err = open_blob(blob, codec, fixed_rows, h);
    if (err != AT_DECODE_OK) {
        return err;
    }
    if (out_size < h->rows * h->row_len) {
        return AT_DECODE_E_ARG;
    }
    *chunks = h->per_row ? h->rows : 1u;
    if (h->offsets != 0 && row_end(h, h->rows - 1) != h->payload_size) {
        return AT_DECODE_E_CORRUPT; /* bytes after the last row */
    }
    return AT_DECODE_OK;
}

int at_blob_row(const at_blob_t *blob, uint32_t codec, uint32_t fixed_rows, uint32_t row, uint32_t out_size,
                at_blob_header_t *h, at_chunk_t *c)
{
    int err = open_blob(blob, codec, fixed_rows, h);
    if (err != AT_DECODE_OK) {
        return err;
    }
    if (row >= h->rows || out_size < h->row_len || (!fixed_rows && !h->per_row)) {
        return AT_DECODE_E_ARG;
    }
    return fixed_rows ? AT_DECODE_OK : at_blob_chunk(h, row, c);
}

int at_blob_chunk(const at_blob_header_t *h, uint32_t k, at_chunk_t *c)
{
    uint32_t start = 0, end = h->payload_size;
    if (h->offsets != 0) {
        start = k ? row_end(h, k - 1) : 0u;
        end = row_end(h, k);
        if (start > end || end > h->payload_size) {
            return AT_DECODE_E_HEADER;
        }
    }
    c->in = h->payload + start;
    c->in_size = end - start;
    c->out_offset = h->per_row ? k * h->row_len : 0u;
    c->out_size = h->per_row ? h->row_len : h->rows * h->row_len;
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
        if ((h->rows * h->row_len * bits + 7u) >> 3 != h->payload_size) {
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
