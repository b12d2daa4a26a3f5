/* Weight storage decoders: a weight tensor stored in flash as a blob (autotune/codecs), decoded
 * on demand into planned scratch, the whole tensor at once or one output channel's filter (a
 * "row") at a time.
 *
 * Blob: a 12-byte header (magic 0xA7, storage id, flags, two parameters, rows, row length,
 * table bytes), the storage's table, the payload, a CRC-32 of all before it; see
 * autotune/codecs/_container.py. Every decoder checks the header and, the first time a blob is
 * used, its CRC-32; it returns an error code for a corrupt or truncated blob and never reads
 * outside the blob or writes outside `out` or `scratch`, whatever the bytes (fuzzed with
 * ASan/UBSan). No malloc, no floating point.
 *
 * For each storage <s> (dense, bitpack, palette, rle0, delta_rle, sparse, rans, heatshrink, lz4, rans_binned,
 * rans_grid):
 *   int at_decode_<s>(const at_blob_t *blob, int8_t *out, uint32_t out_size,
 *                     uint8_t *scratch, uint32_t scratch_size);
 *       the whole tensor, rows x row_len int8 values, into out[0, rows * row_len).
 *   int at_decode_<s>_row(const at_blob_t *blob, uint32_t row, int8_t *out, uint32_t out_size,
 *                         uint8_t *scratch, uint32_t scratch_size);
 *       output channel `row`'s filter alone into out[0, row_len); dense, bitpack and palette
 *       always, the others when the blob was encoded per row (else AT_DECODE_E_ARG).
 *   uint32_t at_decode_<s>_get_buffer_size(const uint8_t *blob, uint32_t blob_size);
 *       bytes of `scratch` the decoder needs beyond `out` (2-byte aligned); 0 for all but the rans ones.
 * Each returns AT_DECODE_OK or one of the negative codes below.
 */
#ifndef AT_DECODE_H
#define AT_DECODE_H

#include <stdint.h>

#define AT_DECODE_OK 0
#define AT_DECODE_E_ARG (-1)       /* out or scratch too small or misaligned, row out of range,
                                    * blob of another storage, not laid out per row */
#define AT_DECODE_E_HEADER (-2)    /* bad magic, flags, parameters, table or sizes */
#define AT_DECODE_E_CRC (-3)       /* CRC-32 mismatch */
#define AT_DECODE_E_TRUNCATED (-4) /* the payload ends before the tensor is complete */
#define AT_DECODE_E_CORRUPT (-5)   /* an invalid code: a copy from before the start, a run past
                                    * the end, an index outside the palette, bytes left over */

/* Storage ids: the header's byte 1 (Storage.codec_id in Python). */
#define AT_CODEC_DENSE 0
#define AT_CODEC_BITPACK 1
#define AT_CODEC_PALETTE 2
#define AT_CODEC_RLE0 3
#define AT_CODEC_DELTA_RLE 4
#define AT_CODEC_SPARSE 5
#define AT_CODEC_RANS 6
#define AT_CODEC_HEATSHRINK 7
#define AT_CODEC_LZ4 8
#define AT_CODEC_RANS_BINNED 9
#define AT_CODEC_RANS_GRID 10

/* A blob in flash and the caller's flag (RAM, zero at start-up) that remembers its CRC-32 has
 * matched, so it is checked before the first use only; NULL checks it on every call. */
typedef struct {
    const uint8_t *data;
    uint32_t size;
    uint8_t *checked;
} at_blob_t;

#define AT_DECLARE_DECODER(name)                                                                        \
    int at_decode_##name(const at_blob_t *blob, int8_t *out, uint32_t out_size, uint8_t *scratch,       \
                         uint32_t scratch_size);                                                        \
    int at_decode_##name##_row(const at_blob_t *blob, uint32_t row, int8_t *out, uint32_t out_size,     \
                               uint8_t *scratch, uint32_t scratch_size);                                \
    uint32_t at_decode_##name##_get_buffer_size(const uint8_t *blob, uint32_t blob_size);

AT_DECLARE_DECODER(dense)
AT_DECLARE_DECODER(bitpack)
AT_DECLARE_DECODER(palette)
AT_DECLARE_DECODER(rle0)
AT_DECLARE_DECODER(delta_rle)
AT_DECLARE_DECODER(sparse)
AT_DECLARE_DECODER(rans)
AT_DECLARE_DECODER(heatshrink)
AT_DECLARE_DECODER(lz4)
AT_DECLARE_DECODER(rans_binned)
AT_DECLARE_DECODER(rans_grid)

/* ---- shared by the decoders (at_decode_common.c) ------------------------------------------ */

#define AT_BLOB_HEADER_BYTES 12u
#define AT_BLOB_CRC_BYTES 4u
#define AT_BLOB_MAX_BYTES (1u << 28) /* blobs and tensors below 256 MB: bit offsets fit 32 bits */

/* CRC-32 (IEEE 802.3, reflected, as zlib.crc32): crc of the bytes before, then these. */
uint32_t at_crc32(uint32_t crc, const uint8_t *p, uint32_t n);
/* An n-byte (0..4) little-endian field. */
uint32_t at_read_le(const uint8_t *p, uint32_t n);

/* A checked header: where the blob's parts are. */
typedef struct {
    uint32_t rows, row_len, elements; /* elements = rows * row_len */
    uint32_t per_row;  /* laid out per row */
    uint32_t chunked;  /* per row, and variable-length: the payload is [u16 length][chunk] per row */
    uint32_t param0, param1;
    const uint8_t *table;
    uint32_t table_size;
    const uint8_t *payload;
    uint32_t payload_size;
} at_blob_header_t;

/* A chunk of the payload and where its values go. */
typedef struct {
    const uint8_t *in;
    uint32_t in_size;
    uint32_t out_offset, out_size;
} at_chunk_t;

/* The whole-tensor call: the header is sane for `codec`, the CRC matches (once), out holds the
 * tensor; *chunks is how many chunks to take with at_blob_next (1, or rows if chunked), *c the
 * position before the first. `fixed_rows`: a storage whose rows have a fixed size (dense,
 * bitpack, palette), never chunked. */
int at_blob_whole(const at_blob_t *blob, uint32_t codec, uint32_t fixed_rows, uint32_t out_size,
                  at_blob_header_t *h, uint32_t *chunks, at_chunk_t *c);
/* The one-row call: as at_blob_whole, and `row` exists and fits out; a variable-length storage
 * must be chunked, and *c is then the row's chunk, its values for out[0, row_len). */
int at_blob_row(const at_blob_t *blob, uint32_t codec, uint32_t fixed_rows, uint32_t row, uint32_t out_size,
                at_blob_header_t *h, at_chunk_t *c);
/* The chunk after *c. The last one must end the payload. */
int at_blob_next(const at_blob_header_t *h, at_chunk_t *c);

/* Bit offset of row `row` of a storage with `bits`-bit fields (dense 8, bitpack, palette), after
 * checking that the payload has exactly the size the layout needs. */
int at_blob_fixed_row(const at_blob_header_t *h, uint32_t bits, uint32_t row, uint32_t *bit);
/* n unsigned `bits`-bit fields (0 to 8), LSB first, from bit `bit` of p, into out. */
void at_unpack_fields(const uint8_t *p, uint32_t bit, uint32_t bits, uint32_t n, uint8_t *out);

/* The three entry points of a variable-length storage without scratch, around its
 * `static int chunk(const at_blob_header_t *h, const at_chunk_t *c, int8_t *out)` that decodes
 * one chunk into out + c->out_offset. (A macro, not a function pointer: the firmware's stack
 * bound needs direct calls.) */
#define AT_DEFINE_CHUNK_DECODER(name, codec, chunk)                                                    \
    int at_decode_##name(const at_blob_t *blob, int8_t *out, uint32_t out_size, uint8_t *scratch,       \
                         uint32_t scratch_size)                                                         \
    {                                                                                                   \
        at_blob_header_t h;                                                                             \
        at_chunk_t c;                                                                                   \
        uint32_t k, chunks;                                                                             \
        int err = at_blob_whole(blob, codec, 0u, out_size, &h, &chunks, &c);                            \
        (void)scratch;                                                                                  \
        (void)scratch_size;                                                                             \
        for (k = 0; err == AT_DECODE_OK && k < chunks; ++k) {                                           \
            err = at_blob_next(&h, &c);                                                                 \
            if (err == AT_DECODE_OK) {                                                                  \
                err = chunk(&h, &c, out);                                                               \
            }                                                                                           \
        }                                                                                               \
        return err;                                                                                     \
    }                                                                                                   \
    int at_decode_##name##_row(const at_blob_t *blob, uint32_t row, int8_t *out, uint32_t out_size,     \
                               uint8_t *scratch, uint32_t scratch_size)                                 \
    {                                                                                                   \
        at_blob_header_t h;                                                                             \
        at_chunk_t c;                                                                                   \
        int err = at_blob_row(blob, codec, 0u, row, out_size, &h, &c);                                  \
        (void)scratch;                                                                                  \
        (void)scratch_size;                                                                             \
        return err != AT_DECODE_OK ? err : chunk(&h, &c, out);                                          \
    }                                                                                                   \
    uint32_t at_decode_##name##_get_buffer_size(const uint8_t *blob, uint32_t blob_size)                \
    {                                                                                                   \
        (void)blob;                                                                                     \
        (void)blob_size;                                                                                \
        return 0;                                                                                       \
    }

/* The same for a storage with fixed-size rows, around its
 * `static int decode_rows(const at_blob_header_t *h, uint32_t row, uint32_t rows, int8_t *out)`
 * that decodes `rows` rows from `row` into out. */
#define AT_DEFINE_ROWS_DECODER(name, codec, decode_rows)                                               \
    int at_decode_##name(const at_blob_t *blob, int8_t *out, uint32_t out_size, uint8_t *scratch,       \
                         uint32_t scratch_size)                                                         \
    {                                                                                                   \
        at_blob_header_t h;                                                                             \
        at_chunk_t c;                                                                                   \
        uint32_t chunks;                                                                                \
        int err = at_blob_whole(blob, codec, 1u, out_size, &h, &chunks, &c);                            \
        (void)scratch;                                                                                  \
        (void)scratch_size;                                                                             \
        return err != AT_DECODE_OK ? err : decode_rows(&h, 0u, h.rows, out);                            \
    }                                                                                                   \
    int at_decode_##name##_row(const at_blob_t *blob, uint32_t row, int8_t *out, uint32_t out_size,     \
                               uint8_t *scratch, uint32_t scratch_size)                                 \
    {                                                                                                   \
        at_blob_header_t h;                                                                             \
        at_chunk_t c;                                                                                   \
        int err = at_blob_row(blob, codec, 1u, row, out_size, &h, &c);                                  \
        (void)scratch;                                                                                  \
        (void)scratch_size;                                                                             \
        return err != AT_DECODE_OK ? err : decode_rows(&h, row, 1u, out);                               \
    }                                                                                                   \
    uint32_t at_decode_##name##_get_buffer_size(const uint8_t *blob, uint32_t blob_size)                \
    {                                                                                                   \
        (void)blob;                                                                                     \
        (void)blob_size;                                                                                \
        return 0;                                                                                       \
    }

#endif /* AT_DECODE_H */
