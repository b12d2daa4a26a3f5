/* Host harness for the weight decoders (built with ASan/UBSan by tests/test_codecs_c.py).
 *
 *   harness decode  < requests   each request: u8 op (0 whole, 1 row, 2 get_buffer_size),
 *                                u8 codec, u32 row, u32 out_size, u32 scratch_size, u32 blob_size,
 *                                blob; answers i32 result (the return code, or the buffer size),
 *                                then out_size bytes of out for ops 0 and 1.
 *   harness mutate N SEED < seeds   each seed: u32 blob_size, blob. Decodes N corrupted or
 *                                truncated copies of every seed, every one in buffers of exactly
 *                                its size so any stray access is an ASan error; prints the count
 *                                of each return code as JSON.
 * All sizes little-endian. Exit status 0 unless the input is malformed (or a sanitizer aborts).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "decode_any.h"

#define MAX_OUT (1u << 20)

static int read_exact(void *p, size_t n)
{
    return fread(p, 1, n, stdin) == n;
}

static int read_u32(uint32_t *v)
{
    uint8_t b[4];
    if (!read_exact(b, 4)) {
        return 0;
    }
    *v = (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
    return 1;
}

static void *copy_of(const void *p, size_t n)
{
    void *q = malloc(n ? n : 1); /* exactly n bytes: ASan sees one byte past */
    if (q == NULL) {
        abort();
    }
    if (n) {
        memcpy(q, p, n);
    }
    return q;
}

static int serve_decode(void)
{
    uint8_t op_codec[2];
    while (read_exact(op_codec, 2)) {
        uint32_t row, out_size, scratch_size, blob_size;
        uint8_t *blob, *scratch;
        int8_t *out;
        int32_t result;
        if (!read_u32(&row) || !read_u32(&out_size) || !read_u32(&scratch_size) || !read_u32(&blob_size) ||
            out_size > MAX_OUT || scratch_size > MAX_OUT) {
            return 2;
        }
        blob = malloc(blob_size ? blob_size : 1);
        if (blob == NULL || !read_exact(blob, blob_size)) {
            return 2;
        }
        out = calloc(out_size ? out_size : 1, 1);
        scratch = calloc(scratch_size ? scratch_size : 1, 1);
        if (op_codec[0] == 2) {
            result = (int32_t)decode_any_buffer_size(op_codec[1], blob, blob_size);
        } else {
            at_blob_t b = {blob, blob_size, NULL};
            result = decode_any(op_codec[1], &b, op_codec[0] == 1 ? (int64_t)row : -1, out, out_size,
                                scratch_size ? scratch : NULL, scratch_size);
        }
        fwrite(&result, 4, 1, stdout);
        if (op_codec[0] != 2) {
            fwrite(out, 1, out_size, stdout);
        }
        free(blob);
        free(out);
        free(scratch);
    }
    return 0;
}

static uint64_t rng_state;

static uint32_t rnd(uint32_t n) /* uniform enough in [0, n), n > 0 */
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (uint32_t)(rng_state >> 11) % n;
}

/* A corrupted or truncated copy of seed in *size bytes (malloc'd). Most mutations hit the table
 * and payload, where the decoders proper read; the CRC is fixed afterwards by the caller. */
static uint8_t *mutate(const uint8_t *seed, uint32_t seed_size, uint32_t *size)
{
    const uint32_t body = seed_size - AT_BLOB_HEADER_BYTES - AT_BLOB_CRC_BYTES; /* table and payload */
    const uint32_t table = (uint32_t)seed[10] | (uint32_t)seed[11] << 8;
    const uint32_t payload = table <= body ? body - table : 0;
    uint32_t n = seed_size, i, k, kind = rnd(7);
    uint8_t *m;
    if (kind == 0) { /* cut anywhere: the header no longer matches */
        n = rnd(seed_size + 1);
    } else if (kind == 1) { /* junk appended */
        n = seed_size + 1 + rnd(64);
    } else if (kind == 5 && payload != 0) { /* the payload's tail cut: the header still fits */
        n = seed_size - 1 - rnd(payload); /* (the CRC then ends inside the old payload) */
    }
    m = malloc(n ? n : 1);
    if (m == NULL) {
        abort();
    }
    for (i = 0; i < n; ++i) {
        m[i] = i < seed_size ? seed[i] : (uint8_t)rnd(256);
    }
    if (kind == 2 && n) { /* bit flips anywhere */
        for (k = 1 + rnd(3); k--;) {
            m[rnd(n)] ^= (uint8_t)(1u << rnd(8));
        }
    }
    if ((kind == 3 || kind == 6) && body) { /* bytes of the table and payload: set or flipped */
        for (k = 1 + rnd(kind == 3 ? 8 : 3); k--;) {
            i = AT_BLOB_HEADER_BYTES + rnd(body);
            m[i] = kind == 3 ? (uint8_t)rnd(256) : (uint8_t)(m[i] ^ (1u << rnd(8)));
        }
    }
    if (kind == 4) { /* a header field: params, rows, row_len or table size */
        static const uint8_t fields[] = {3, 4, 6, 7, 8, 9, 10, 11};
        m[fields[rnd(sizeof fields)]] = (uint8_t)rnd(256);
    }
    *size = n;
    return m;
}

static int serve_mutate(uint32_t per_seed, uint64_t seed_value)
{
    long counts[8] = {0};
    long total = 0, blobs = 0;
    uint32_t seed_size;
    rng_state = seed_value | 1u;
    while (read_u32(&seed_size)) {
        uint8_t *seed = malloc(seed_size ? seed_size : 1);
        uint32_t k;
        if (seed == NULL || !read_exact(seed, seed_size) || seed_size < AT_BLOB_HEADER_BYTES + AT_BLOB_CRC_BYTES) {
            return 2;
        }
        for (k = 0; k < per_seed; ++k) {
            uint32_t size, codec, rows, row_len, want, out_size, scratch_size;
            uint8_t *m = mutate(seed, seed_size, &size);
            uint8_t *blob = copy_of(m, size), checked = 0, *scratch;
            int8_t *out;
            int64_t row;
            at_blob_t b;
            int rc;
            if (rnd(4) != 0) {
                decode_any_fix_crc(blob, size); /* most reach the decoder proper */
            }
            codec = size > 1 ? blob[1] : seed[1];
            if (codec >= DECODE_ANY_CODECS || rnd(8) == 0) {
                codec = seed[1]; /* keep decoding with the seed's decoder */
            }
            rows = size >= 12 ? (uint32_t)blob[6] | (uint32_t)blob[7] << 8 : 1u;
            row_len = size >= 12 ? (uint32_t)blob[8] | (uint32_t)blob[9] << 8 : 1u;
            want = rows && row_len <= MAX_OUT / rows ? rows * row_len : MAX_OUT;
            out_size = rnd(8) == 0 ? rnd(want + 1) : want; /* sometimes too small */
            scratch_size = decode_any_buffer_size(codec, blob, size);
            if (scratch_size > MAX_OUT || rnd(8) == 0) {
                scratch_size = rnd(1024);
            }
            out = malloc(out_size ? out_size : 1);
            scratch = malloc(scratch_size ? scratch_size : 1);
            b.data = blob;
            b.size = size;
            b.checked = rnd(2) ? &checked : NULL;
            row = rnd(3) == 0 ? -1 : (int64_t)rnd(rows + 2); /* sometimes past the last row */
            rc = decode_any(codec, &b, -1, out, out_size, scratch, scratch_size);
            counts[rc <= 0 && rc >= -7 ? -rc : 7]++;
            rc = decode_any(codec, &b, row < 0 ? 0 : row, out, row_len < out_size ? row_len : out_size, scratch,
                            scratch_size);
            counts[rc <= 0 && rc >= -7 ? -rc : 7]++;
            total += 2;
            blobs += 1;
            free(m);
            free(blob);
            free(out);
            free(scratch);
        }
        free(seed);
    }
    printf("{\"blobs\": %ld, \"decodes\": %ld, \"ok\": %ld, \"arg\": %ld, \"header\": %ld, \"crc\": %ld, \"truncated\": %ld, "
           "\"corrupt\": %ld, \"other\": %ld}\n",
           blobs, total, counts[0], counts[1], counts[2], counts[3], counts[4], counts[5], counts[6] + counts[7]);
    return counts[6] + counts[7] ? 1 : 0;
}

int main(int argc, char **argv)
{
    if (argc == 2 && strcmp(argv[1], "decode") == 0) {
        return serve_decode();
    }
    if (argc == 4 && strcmp(argv[1], "mutate") == 0) {
        return serve_mutate((uint32_t)strtoul(argv[2], NULL, 10), strtoull(argv[3], NULL, 10));
    }
    fprintf(stderr, "usage: %s decode | mutate N SEED\n", argv[0]);
    return 2;
}
