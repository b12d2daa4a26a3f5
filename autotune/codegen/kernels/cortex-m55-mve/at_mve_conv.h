/* The runs of output pixels of the Helium CONV_2D (at_conv_s8.c), shared with the fused CONV_2D
 * + MAX_POOL_2D (at_conv_max_pool_s8.c): whole blocks of pixels whose windows are one row of at
 * most 32 bytes, read in place or copied side by side. */
#ifndef AT_MVE_CONV_H
#define AT_MVE_CONV_H

#include <stddef.h>
#include <string.h>

#include "at_common.h"
#include "at_kernels.h"
#include "at_mve.h"

/* A run of whole blocks of output pixels whose windows are one row of at most 32 bytes: four
 * pixels a block for at most 16 bytes, two for at most 32 (two 16-byte chunks a window). */
typedef struct {
    int32_t step;                 /* input bytes from one pixel's window to the next */
    int32_t advance;              /* input bytes from one block's first window to the next */
    int32_t out_c;
    int32_t block_out;            /* output bytes of a block less out_c */
    const int8_t *filter;         /* [out_c][len] */
    const at_channel_t *channels; /* [out_c] */
    const int8_t *x;              /* conv_run's: the next block's first window */
    int32_t blocks;               /* conv_run's: blocks left */
    uint32_t pl;                  /* conv_run's: predicate of the windows' (last) chunk */
    uint32_t pl_first;            /* two pixels a block: predicate of the windows' first chunk */
} run_t;

#define AT_RUN_STEP "0"
#define AT_RUN_ADVANCE "4"
#define AT_RUN_OUT_C "8"
#define AT_RUN_BLOCK_OUT "12"
#define AT_RUN_FILTER "16"
#define AT_RUN_CHANNELS "20"
#define AT_RUN_X "24"
#define AT_RUN_BLOCKS "28"
#define AT_RUN_PL "32"
#define AT_RUN_PL_FIRST "36"
typedef char at_run_fields_at[offsetof(run_t, channels) == 20 && offsetof(run_t, pl_first) == 36 ? 1 : -1];

/* The run in assembly: GCC 12 spills the loops' pointers and builds the vector of sums through
 * the stack. Per block: the windows into x0..x3 (zero past len, predicate pl), which stay in
 * registers across the channels (four pixels: one 16-byte chunk each; two pixels: x0, x1 and
 * x2, x3, or with `pool` one chunk each); the block's state lives in the run_t, so that the channel loop has registers for
 * its constants. Per channel: the filter row, loaded whole (the window's zero lanes cancel the
 * bytes past len, which belong to the next rows or, for the last, are the zeros after the filter
 * array, AT_WEIGHT_TAIL), VMLADAVA per pixel and chunk, the sums into the four
 * lanes (two pixels: each twice, stored twice to one place), acc_init, multiplier and shift by
 * one LDM, requantized and stored by one scatter to out + at[k], or with `pool` 1 (the block's
 * pixels one max pool window's row; hi less the zero point, lo unused) the largest lane and the
 * byte already at out (the window's rows before, at least lo) to out, or with `pool` 2 (four
 * pixels, the rows of two pool windows of two pixels each; at {0, 0, out_c, out_c}; lo a scratch)
 * each lane first with the byte already at its window's output (gathered), then with its pair's
 * lane (VREV64), scattered. The Cortex-M55 issues another
 * instruction in the shadow of each two-cycle VMLADAV, so the pointer steps and the LDM sit
 * between them (out runs one byte behind, stepped before the store, by a 32-bit ADD: in LLVM's
 * M55 model the 16-bit ADDS, which GCC's choice of a low register would give, issues a cycle late
 * after a VMLADAV). Modes AT_MVE_RELU and
 * AT_MVE_RIGHT (whose fix-up, a saturating -1 on negative lanes, takes the predicate register,
 * so pl is set again per block). VPR is written, which GCC 12 cannot name as clobbered: out of
 * line, the call clobbers it (the Armv8.1-M procedure call standard does not preserve VPR). */
static AT_NOINLINE __attribute__((unused)) void conv_run(const run_t *run, int32_t pixels, const int8_t *x,
                                                         int32_t blocks, int32_t len, mve_pred16_t pl, int8_t *out,
                                                         uint32x4_t at, int32_t offset, int32x4_t lo, int32x4_t hi,
                                                         int32_t mode, int32_t pool)
{
#define AT_CONV_RUN(BLOCK, BODY, FIXUP, STORE)                                                     \
    __asm__ volatile("subs %[out], #1\n"                                                           \
                     "2:\n\t"                                                                      \
                     "ldr r1, [%[r], #" AT_RUN_X "]\n\t" BLOCK                                     \
                     "ldr r0, [%[r], #" AT_RUN_ADVANCE "]\n\t"                                     \
                     "add r1, r0\n\t"                                                              \
                     "str r1, [%[r], #" AT_RUN_X "]\n\t"                                           \
                     "ldr %[w], [%[r], #" AT_RUN_FILTER "]\n\t"                                    \
                     "ldr %[ch], [%[r], #" AT_RUN_CHANNELS "]\n\t"                                 \
                     "ldr r0, [%[r], #" AT_RUN_OUT_C "]\n\t"                                       \
                     "dls lr, r0\n"                                                                \
                     "1:\n\t" BODY                                                                 \
                     "vmov %q[t][2], %q[t][0], r0, r4\n\t"                                         \
                     "vmov %q[t][3], %q[t][1], r2, r6\n\t"                                         \
                     "vadd.i32 %q[t], %q[t], r1\n\t" STORE##_LOAD                                  \
                     "vqrdmulh.s32 %q[t], %q[t], r3\n\t" STORE##_PRIOR FIXUP                       \
                     "vrshl.s32 %q[t], r12\n\t"                                                    \
                     STORE                                                                         \
                     "le lr, 1b\n\t"                                                               \
                     "ldr r0, [%[r], #" AT_RUN_BLOCK_OUT "]\n\t"                                   \
                     "add %[out], r0\n\t"                                                          \
                     "ldr r0, [%[r], #" AT_RUN_BLOCKS "]\n\t"                                      \
                     "subs r0, #1\n\t"                                                             \
                     "str r0, [%[r], #" AT_RUN_BLOCKS "]\n\t"                                      \
                     "bne 2b"                                                                       \
                     : [t] "=&w"(t), [x0] "=&w"(x0), [x1] "=&w"(x1), [x2] "=&w"(x2), [x3] "=&w"(x3), \
                       [out] "+r"(out), [w] "=&r"(w), [ch] "=&r"(ch), [lo] "+w"(lo)                 \
                     : [r] "r"(&state), [len] "r"(len), [at] "w"(at), [offset] "r"(offset),         \
                       [hi] "w"(hi)                                                                 \
                     : "r0", "r1", "r2", "r3", "r4", "r6", "r12", "lr", "cc", "memory")
/* the windows of four pixels from r1, step apart */
#define AT_FOUR_BLOCK "ldr r0, [%[r], #" AT_RUN_STEP "]\n\t" \
    "adds r2, r1, r0\n\t" \
    "adds r4, r2, r0\n\t" \
    "adds r6, r4, r0\n\t" \
    "ldr r0, [%[r], #" AT_RUN_PL "]\n\t" \
    "vmsr p0, r0\n\t" \
    "vpstttt\n\t" \
    "vldrbt.u8 %q[x0], [r1]\n\t" \
    "vldrbt.u8 %q[x1], [r2]\n\t" \
    "vldrbt.u8 %q[x2], [r4]\n\t" \
    "vldrbt.u8 %q[x3], [r6]\n\t"
#define AT_FOUR_BODY "vldrb.u8 %q[t], [%[w]]\n\t" \
    "vmladav.s8 r0, %q[x0], %q[t]\n\t" \
    "add %[w], %[len]\n\t" \
    "vmladav.s8 r2, %q[x1], %q[t]\n\t" \
    "ldm %[ch]!, {r1, r3, r12}\n\t" \
    "vmladav.s8 r4, %q[x2], %q[t]\n\t" \
    "add.w %[out], %[out], #1\n\t" \
    "vmladav.s8 r6, %q[x3], %q[t]\n\t"
/* the windows of two pixels from r1, step apart, each two chunks */
#define AT_TWO_BLOCK "ldr r0, [%[r], #" AT_RUN_STEP "]\n\t" \
    "adds r2, r1, r0\n\t" \
    "ldr r0, [%[r], #" AT_RUN_PL_FIRST "]\n\t" \
    "vmsr p0, r0\n\t" \
    "vpstt\n\t" \
    "vldrbt.u8 %q[x0], [r1]\n\t" \
    "vldrbt.u8 %q[x2], [r2]\n\t" \
    "ldr r0, [%[r], #" AT_RUN_PL "]\n\t" \
    "vmsr p0, r0\n\t" \
    "vpstt\n\t" \
    "vldrbt.u8 %q[x1], [r1, #16]\n\t" \
    "vldrbt.u8 %q[x3], [r2, #16]\n\t"
#define AT_TWO_BODY "vldrb.u8 %q[t], [%[w]]\n\t" \
    "vmladav.s8 r0, %q[x0], %q[t]\n\t" \
    "add.w %[out], %[out], #1\n\t" \
    "vmladav.s8 r2, %q[x2], %q[t]\n\t" \
    "vldrb.u8 %q[t], [%[w], #16]\n\t" \
    "vmladava.s8 r0, %q[x1], %q[t]\n\t" \
    "add %[w], %[len]\n\t" \
    "vmladava.s8 r2, %q[x3], %q[t]\n\t" \
    "ldm %[ch]!, {r1, r3, r12}\n\t" \
    "mov r4, r0\n\t" \
    "mov r6, r2\n\t"
/* two pixels whose windows are one chunk (the pool's blocks only) */
#define AT_TWO_SHORT_BODY "vldrb.u8 %q[t], [%[w]]\n\t" \
    "vmladav.s8 r0, %q[x0], %q[t]\n\t" \
    "add.w %[out], %[out], #1\n\t" \
    "vmladav.s8 r2, %q[x2], %q[t]\n\t" \
    "add %[w], %[len]\n\t" \
    "ldm %[ch]!, {r1, r3, r12}\n\t" \
    "mov r4, r0\n\t" \
    "mov r6, r2\n\t"
#define AT_FIXUP "movs r6, #1\n\tvpt.s32 lt, %q[t], zr\n\tvqsubt.s32 %q[t], %q[t], r6\n\t"
/* The zero point added, clamped, the four lanes to out + at[k]; or (hi less the zero point) the
 * lanes clamped above, their largest and the byte at out (loaded into r1 once acc_init is added,
 * less the zero point) to out with the zero point added: the byte at out is >= lo, so the
 * maximum is too, and no lane overflows. */
#define AT_SCATTER_STORE "vadd.i32 %q[t], %q[t], %[offset]\n\t" \
    "vmax.s32 %q[t], %q[t], %q[lo]\n\t" \
    "vmin.s32 %q[t], %q[t], %q[hi]\n\t" \
    "vstrb.32 %q[t], [%[out], %q[at]]\n\t"
#define AT_SCATTER_STORE_LOAD ""
#define AT_SCATTER_STORE_PRIOR ""
#define AT_POOL_STORE "vmin.s32 %q[t], %q[t], %q[hi]\n\t" \
    "vmaxv.s32 r1, %q[t]\n\t" \
    "add r1, %[offset]\n\t" \
    "strb r1, [%[out]]\n\t"
#define AT_POOL_STORE_LOAD "ldrsb r1, [%[out]]\n\t"
#define AT_POOL_STORE_PRIOR "sub r1, %[offset]\n\t"
/* (the gather of the bytes already there issued early, as its result comes late) */
#define AT_PAIR_STORE "vmin.s32 %q[t], %q[t], %q[hi]\n\t" \
    "vadd.i32 %q[t], %q[t], %[offset]\n\t" \
    "vmax.s32 %q[t], %q[t], %q[lo]\n\t" \
    "vrev64.32 %q[lo], %q[t]\n\t" \
    "vmax.s32 %q[t], %q[t], %q[lo]\n\t" \
    "vstrb.32 %q[t], [%[out], %q[at]]\n\t"
#define AT_PAIR_STORE_LOAD "vldrb.s32 %q[lo], [%[out], %q[at]]\n\t"
#define AT_PAIR_STORE_PRIOR ""
    run_t state = *run;
    int32x4_t t, x0, x1, x2, x3;
    const int8_t *w;
    const at_channel_t *ch;
    state.x = x;
    state.blocks = blocks;
    state.pl = (uint32_t)pl;
    if (pixels == 4 && pool == 2) {
        if (mode == AT_MVE_RELU) {
            AT_CONV_RUN(AT_FOUR_BLOCK, AT_FOUR_BODY, "", AT_PAIR_STORE);
        } else {
            AT_CONV_RUN(AT_FOUR_BLOCK, AT_FOUR_BODY, AT_FIXUP, AT_PAIR_STORE);
        }
    } else if (pixels == 4 && mode == AT_MVE_RELU) {
        if (pool) {
            AT_CONV_RUN(AT_FOUR_BLOCK, AT_FOUR_BODY, "", AT_POOL_STORE);
        } else {
            AT_CONV_RUN(AT_FOUR_BLOCK, AT_FOUR_BODY, "", AT_SCATTER_STORE);
        }
    } else if (pixels == 4) {
        if (pool) {
            AT_CONV_RUN(AT_FOUR_BLOCK, AT_FOUR_BODY, AT_FIXUP, AT_POOL_STORE);
        } else {
            AT_CONV_RUN(AT_FOUR_BLOCK, AT_FOUR_BODY, AT_FIXUP, AT_SCATTER_STORE);
        }
    } else if (pool && len <= 16) {
        if (mode == AT_MVE_RELU) {
            AT_CONV_RUN(AT_TWO_BLOCK, AT_TWO_SHORT_BODY, "", AT_POOL_STORE);
        } else {
            AT_CONV_RUN(AT_TWO_BLOCK, AT_TWO_SHORT_BODY, AT_FIXUP, AT_POOL_STORE);
        }
    } else if (mode == AT_MVE_RELU) {
        if (pool) {
            AT_CONV_RUN(AT_TWO_BLOCK, AT_TWO_BODY, "", AT_POOL_STORE);
        } else {
            AT_CONV_RUN(AT_TWO_BLOCK, AT_TWO_BODY, "", AT_SCATTER_STORE);
        }
    } else if (pool) {
        AT_CONV_RUN(AT_TWO_BLOCK, AT_TWO_BODY, AT_FIXUP, AT_POOL_STORE);
    } else {
        AT_CONV_RUN(AT_TWO_BLOCK, AT_TWO_BODY, AT_FIXUP, AT_SCATTER_STORE);
    }
#undef AT_CONV_RUN
#undef AT_FOUR_BLOCK
#undef AT_FOUR_BODY
#undef AT_TWO_BLOCK
#undef AT_TWO_BODY
#undef AT_TWO_SHORT_BODY
#undef AT_FIXUP
#undef AT_SCATTER_STORE
#undef AT_SCATTER_STORE_LOAD
#undef AT_SCATTER_STORE_PRIOR
#undef AT_POOL_STORE
#undef AT_POOL_STORE_LOAD
#undef AT_POOL_STORE_PRIOR
#undef AT_PAIR_STORE
#undef AT_PAIR_STORE_LOAD
#undef AT_PAIR_STORE_PRIOR
}

/* Windows copied side by side for conv_run: those not read in place (2D, dilated, at a border),
 * n <= 32 bytes each, up to `pixels` of them, whose outputs follow each other from `out`. */
typedef struct {
    int8_t windows[4 * 16];
    int32_t count;
    int8_t *out;
    /* how a window inside the input is copied: `rows` rows `row_pitch` apart in the input, each
     * `pieces` pieces of `piece` bytes (a whole row if contiguous, else one tap) `piece_pitch`
     * apart */
    int32_t rows, row_pitch, pieces, piece, piece_pitch;
} gathered_t;

/* g empty, set to copy the windows of `win`. */
AT_INLINE void gathered_init(gathered_t *g, const at_window_t *win)
{
    /* rows of a window lie contiguous in the input unless the filter skips columns */
    const int32_t contiguous = win->filter_w == 1 || win->dilation_w == 1;
    g->count = 0;
    g->rows = win->filter_h;
    g->row_pitch = win->dilation_h * win->in_w * win->in_c;
    g->pieces = contiguous ? 1 : win->filter_w;
    g->piece = contiguous ? win->filter_w * win->in_c : win->in_c;
    g->piece_pitch = win->dilation_w * win->in_c;
}

/* At most 32 bytes: `len` copies of the zero point (fill) or `len` bytes from x, by predicated
 * 16-byte loads and stores. */
AT_INLINE void copy32(int8_t *dst, const int8_t *x, int32_t len, const int8x16_t *fill)
{
    int32_t i;
    for (i = 0; i < len; i += 16) {
        const mve_pred16_t p = vctp8q((uint32_t)(len - i));
        vstrbq_p_s8(dst + i, fill ? *fill : vldrbq_z_s8(x + i, p), p);
    }
}

/* The window of (oy, ox), reaching into the padding, whose filter rows of `len` <= 32 bytes are
 * contiguous in the input: per row the zero point (what a padding tap reads, as at_window_s8
 * copies it), the taps inside the input copied over it. */
AT_INLINE void border(const at_window_t *win, const int8_t *in_b, int32_t oy, int32_t ox, int8_t *dst, int32_t len)
{
    const int32_t iy0 = oy * win->stride_h - win->pad_h, ix0 = ox * win->stride_w - win->pad_w;
    const int8x16_t zero_point = vdupq_n_s8((int8_t)win->zero_point);
    int32_t fy, fx0, fx1;
    at_tap_range(ix0, 1, win->filter_w, win->in_w, &fx0, &fx1);
    for (fy = 0; fy < win->filter_h; ++fy, dst += len) {
        const int32_t iy = iy0 + fy * win->dilation_h;
        copy32(dst, NULL, len, &zero_point);
        if (iy >= 0 && iy < win->in_h && fx0 < fx1) {
            copy32(dst + fx0 * win->in_c, in_b + (iy * win->in_w + ix0 + fx0) * win->in_c, (fx1 - fx0) * win->in_c,
                   NULL);
        }
    }
}

/* Copies the window of output pixel (oy, ox) into the next slot: piece by piece with one
 * predicated load and store each (two above 16 bytes) when it lies inside the input, else
 * at_window_s8 (the padding's taps read the zero point). */
AT_INLINE void gather(gathered_t *g, const at_window_t *win, const int8_t *in_b, int32_t oy, int32_t ox,
                      int32_t n, int8_t *out)
{
    int8_t *dst = g->windows + g->count * n;
    const int8_t *x;
    int32_t r, k;
    if (g->count++ == 0) {
        g->out = out;
    }
    if (oy < win->inside_y[0] || oy >= win->inside_y[1] || ox < win->inside_x[0] || ox >= win->inside_x[1]) {
        if (g->pieces == 1) { /* rows contiguous: each the zero point, its taps inside copied over it */
            border(win, in_b, oy, ox, dst, g->piece);
            return;
        }
        x = at_window_s8(win, in_b, oy, ox, dst);
        if (x != dst) { /* read in place: copied */
            memcpy(dst, x, (size_t)n);
        }
        return;
    }
    x = in_b + ((oy * win->stride_h - win->pad_h) * win->in_w + ox * win->stride_w - win->pad_w) * win->in_c;
    if (g->piece <= 16) {
        const mve_pred16_t p = vctp8q((uint32_t)g->piece);
        for (r = g->rows; r > 0; --r, x += g->row_pitch) {
            const int8_t *xk = x;
            for (k = g->pieces; k > 0; --k, xk += g->piece_pitch, dst += g->piece) {
                vstrbq_p_s8(dst, vldrbq_z_s8(xk, p), p);
            }
        }
        return;
    }
    for (r = g->rows; r > 0; --r, x += g->row_pitch) {
        const int8_t *xk = x;
        for (k = g->pieces; k > 0; --k, xk += g->piece_pitch, dst += g->piece) {
            memcpy(dst, xk, (size_t)g->piece);
        }
    }
}

#endif /* AT_MVE_CONV_H */
