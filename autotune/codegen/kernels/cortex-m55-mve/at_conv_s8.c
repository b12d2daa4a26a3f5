/* CONV_2D, int8, per-channel requantization (TFLM reference_integer_ops::ConvPerChannel), Helium.
 *
 * The sums are those of the generic kernel (../at_conv_s8.c): acc_init plus the dot product of
 * each filter with its input window. Windows wholly inside the input whose rows are contiguous
 * (filter_w 1 or dilation_w 1) are read in place, row by row, four output pixels at a time: per
 * output channel one load of the filter feeds four VMLADAVA, one per pixel, and the four sums
 * are requantized in four vector lanes with the channel's scalars and stored with one scatter.
 * Windows that reach into the padding (or are not contiguous) are gathered by at_window_s8 into
 * scratch and take at_mve_rows: four channels per load of the window.
 */
#include <stddef.h>
#include <string.h>

#include "at_common.h"
#include "at_kernels.h"
#include "at_mve.h"

/* Where the input windows of a block of output pixels are. */
typedef struct {
    const int8_t *x[4]; /* first byte of each pixel's window; past `count`, the last again */
    int32_t count;      /* output pixels in the block, 1-4 */
    int32_t rows;       /* filter rows, each `len` contiguous bytes, `pitch` bytes apart */
    int32_t len, pitch;
} block_t;

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
typedef char at_run_fields_at[offsetof(run_t, channels) == 20 && offsetof(run_t, pl) == 32 ? 1 : -1];

/* The run in assembly: GCC 12 spills the loops' pointers and builds the vector of sums through
 * the stack. Per block: the windows into x0..x3 (zero past len, predicate pl), which stay in
 * registers across the channels (four pixels: one 16-byte chunk each; two pixels: x0, x1 and
 * x2, x3); the block's state lives in the run_t, so that the channel loop has registers for
 * its constants. Per channel: the filter row, loaded whole (the window's zero lanes cancel the
 * bytes past len, which belong to the next rows or, for the last, lie at most 15 bytes past the
 * filter array in the image's constants), VMLADAVA per pixel and chunk, the sums into the four
 * lanes (two pixels: each twice, stored twice to one place), acc_init, multiplier and shift by
 * one LDM, requantized and stored by one scatter to out + at[k]. The Cortex-M55 issues another
 * instruction in the shadow of each two-cycle VMLADAV, so the pointer steps and the LDM sit
 * between them (out runs one byte behind, stepped before the store). Modes AT_MVE_RELU and
 * AT_MVE_RIGHT (whose fix-up, a saturating -1 on negative lanes, takes the predicate register,
 * so pl is set again per block). VPR is written, which GCC 12 cannot name as clobbered: out of
 * line, the call clobbers it (the Armv8.1-M procedure call standard does not preserve VPR). */
static AT_NOINLINE void conv_run(const run_t *run, int32_t pixels, const int8_t *x, int32_t blocks,
                                 int32_t len, mve_pred16_t pl, int8_t *out, uint32x4_t at, int32_t offset,
                                 int32x4_t lo, int32x4_t hi, int32_t mode)
{
#define AT_CONV_RUN(BLOCK, BODY, FIXUP)                                                            \
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
                     "vadd.i32 %q[t], %q[t], r1\n\t"                                               \
                     "vqrdmulh.s32 %q[t], %q[t], r3\n\t" FIXUP                                     \
                     "vrshl.s32 %q[t], r12\n\t"                                                    \
                     "vadd.i32 %q[t], %q[t], %[offset]\n\t"                                        \
                     "vmax.s32 %q[t], %q[t], %q[lo]\n\t"                                           \
                     "vmin.s32 %q[t], %q[t], %q[hi]\n\t"                                           \
                     "vstrb.32 %q[t], [%[out], %q[at]]\n\t"                                        \
                     "le lr, 1b\n\t"                                                               \
                     "ldr r0, [%[r], #" AT_RUN_BLOCK_OUT "]\n\t"                                   \
                     "add %[out], r0\n\t"                                                          \
                     "ldr r0, [%[r], #" AT_RUN_BLOCKS "]\n\t"                                      \
                     "subs r0, #1\n\t"                                                             \
                     "str r0, [%[r], #" AT_RUN_BLOCKS "]\n\t"                                      \
                     "bne 2b"                                                                       \
                     : [t] "=&w"(t), [x0] "=&w"(x0), [x1] "=&w"(x1), [x2] "=&w"(x2), [x3] "=&w"(x3), \
                       [out] "+r"(out), [w] "=&r"(w), [ch] "=&r"(ch)                                \
                     : [r] "r"(&state), [len] "r"(len), [at] "w"(at), [offset] "r"(offset),         \
                       [lo] "w"(lo), [hi] "w"(hi)                                                   \
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
    "adds %[out], #1\n\t" \
    "vmladav.s8 r6, %q[x3], %q[t]\n\t"
/* the windows of two pixels from r1, step apart, each two chunks */
#define AT_TWO_BLOCK "ldr r0, [%[r], #" AT_RUN_STEP "]\n\t" \
    "adds r2, r1, r0\n\t" \
    "vldrb.u8 %q[x0], [r1]\n\t" \
    "vldrb.u8 %q[x2], [r2]\n\t" \
    "ldr r0, [%[r], #" AT_RUN_PL "]\n\t" \
    "vmsr p0, r0\n\t" \
    "vpstt\n\t" \
    "vldrbt.u8 %q[x1], [r1, #16]\n\t" \
    "vldrbt.u8 %q[x3], [r2, #16]\n\t"
#define AT_TWO_BODY "vldrb.u8 %q[t], [%[w]]\n\t" \
    "vmladav.s8 r0, %q[x0], %q[t]\n\t" \
    "adds %[out], #1\n\t" \
    "vmladav.s8 r2, %q[x2], %q[t]\n\t" \
    "vldrb.u8 %q[t], [%[w], #16]\n\t" \
    "vmladava.s8 r0, %q[x1], %q[t]\n\t" \
    "add %[w], %[len]\n\t" \
    "vmladava.s8 r2, %q[x3], %q[t]\n\t" \
    "ldm %[ch]!, {r1, r3, r12}\n\t" \
    "mov r4, r0\n\t" \
    "mov r6, r2\n\t"
#define AT_FIXUP "movs r6, #1\n\tvpt.s32 lt, %q[t], zr\n\tvqsubt.s32 %q[t], %q[t], r6\n\t"
    run_t state = *run;
    int32x4_t t, x0, x1, x2, x3;
    const int8_t *w;
    const at_channel_t *ch;
    state.x = x;
    state.blocks = blocks;
    state.pl = (uint32_t)pl;
    if (pixels == 4) {
        if (mode == AT_MVE_RELU) {
            AT_CONV_RUN(AT_FOUR_BLOCK, AT_FOUR_BODY, "");
        } else {
            AT_CONV_RUN(AT_FOUR_BLOCK, AT_FOUR_BODY, AT_FIXUP);
        }
    } else if (mode == AT_MVE_RELU) {
        AT_CONV_RUN(AT_TWO_BLOCK, AT_TWO_BODY, "");
    } else {
        AT_CONV_RUN(AT_TWO_BLOCK, AT_TWO_BODY, AT_FIXUP);
    }
#undef AT_CONV_RUN
#undef AT_FOUR_BLOCK
#undef AT_FOUR_BODY
#undef AT_TWO_BLOCK
#undef AT_TWO_BODY
#undef AT_FIXUP
}

/* Every output channel of up to four output pixels whose windows are rows of input; pixel k's
 * outputs at out + k * out_c; any mode, any window. */
static AT_NOINLINE void conv_block(const at_conv_params_t *p, const block_t *b, int8_t *out, int32_t mode)
{
    const int32_t out_c = p->out_c, len = b->len;
    const at_output_t q = p->output_quant;
    const int32x4_t lo = vdupq_n_s32(q.min), hi = vdupq_n_s32(q.max);
    /* lanes past count store where the last pixel's lane does, the same value */
    const uint32x4_t at = vmulq_n_u32(vminq_u32(vidupq_n_u32(0u, 1), vdupq_n_u32((uint32_t)b->count - 1)),
                                      (uint32_t)out_c);
    const at_channel_t *ch = p->channels;
    const at_channel_t *const end = ch + out_c;
    const int8_t *w = p->filter;
    for (; ch < end; ++ch, ++out) {
        int32_t a0 = 0, a1 = 0, a2 = 0, a3 = 0, r, i, k = 0;
        int32x4_t acc;
        for (r = 0; r < b->rows; ++r, k += b->pitch, w += len) {
            for (i = 0; i < len; i += 16) {
                const mve_pred16_t pl = vctp8q((uint32_t)(len - i));
                const int8x16_t wv = vldrbq_z_s8(w + i, pl);
                a0 = vmladavaq_s8(a0, vldrbq_z_s8(b->x[0] + k + i, pl), wv);
                a1 = vmladavaq_s8(a1, vldrbq_z_s8(b->x[1] + k + i, pl), wv);
                a2 = vmladavaq_s8(a2, vldrbq_z_s8(b->x[2] + k + i, pl), wv);
                a3 = vmladavaq_s8(a3, vldrbq_z_s8(b->x[3] + k + i, pl), wv);
            }
        }
        acc = vaddq_n_s32(at_mve_lanes(a0, a1, a2, a3), ch->acc_init);
        acc = at_mve_mbqm_n(acc, ch->multiplier, ch->shift, mode);
        vstrbq_scatter_offset_s32(out, at, at_mve_clamp(acc, q.offset, lo, hi));
    }
}

/* The output pixels [begin, end) of a row, whose windows lie inside the input, row by row
 * contiguous; `x` is the window of pixel `begin`, `step` bytes to the next. */
static AT_NOINLINE int8_t *conv_inside(const at_conv_params_t *p, const int8_t *x, int32_t step,
                              int32_t count, int8_t *out, int32_t mode)
{
    const at_window_t *win = &p->win;
    const int32_t len = win->filter_w * win->in_c, out_c = p->out_c;
    block_t blk;
    int32_t done, k;
    const int32_t pixels = len <= 16 ? 4 : 2; /* per block of a run */
    if (win->filter_h == 1 && len <= 32 && mode != AT_MVE_ANY && count >= pixels) {
        const run_t r = {step, pixels * step, out_c, (pixels - 1) * out_c, p->filter, p->channels, NULL, 0, 0};
        /* two pixels: lanes 2 and 3 repeat lanes 0 and 1 */
        const uint32x4_t at = vmulq_n_u32(vandq_u32(vidupq_n_u32(0u, 1), vdupq_n_u32((uint32_t)pixels - 1)),
                                          (uint32_t)out_c);
        const int32x4_t lo = vdupq_n_s32(p->output_quant.min), hi = vdupq_n_s32(p->output_quant.max);
        const mve_pred16_t pl = vctp8q((uint32_t)(pixels == 4 ? len : len - 16));
        const int32_t blocks = count / pixels, rest = count - blocks * pixels;
        conv_run(&r, pixels, x, blocks, len, pl, out, at, p->output_quant.offset, lo, hi, mode);
        if (rest) { /* the last block again: the overlap is written twice, alike */
            conv_run(&r, pixels, x + (count - pixels) * step, 1, len, pl, out + (count - pixels) * out_c, at,
                     p->output_quant.offset, lo, hi, mode);
        }
        return out + count * out_c;
    }
    blk.rows = win->filter_h;
    blk.len = len;
    blk.pitch = win->dilation_h * win->in_w * win->in_c;
    for (done = 0; done < count; done += blk.count, out += blk.count * out_c) {
        blk.count = count - done < 4 ? count - done : 4;
        for (k = 0; k < 4; ++k) {
            blk.x[k] = x + (done + (k < blk.count ? k : blk.count - 1)) * step;
        }
        conv_block(p, &blk, out, mode);
    }
    return out;
}

/* The output channels of one window of n > 32 bytes (or in mode AT_MVE_ANY), `x` its bytes in
 * the filter's layout; out of line, as conv_block, to keep the caller's frame small. */
static AT_NOINLINE int8_t *conv_window(const at_conv_params_t *p, const int8_t *x, int8_t *out, int32_t mode)
{
    const int32_t n = p->win.filter_h * p->win.filter_w * p->win.in_c;
    return at_mve_rows(x, p->filter, n, p->out_c, p->channels, 0, &p->output_quant, out, mode);
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

/* Runs conv_run on the gathered windows; slots past count hold the last window again, whose
 * outputs the scatter writes twice to one place. */
static AT_NOINLINE void flush(const at_conv_params_t *p, gathered_t *g, int32_t n, int32_t pixels, int32_t mode)
{
    const run_t r = {n, pixels * n, p->out_c, (pixels - 1) * p->out_c, p->filter, p->channels, NULL, 0, 0};
    const int32x4_t lo = vdupq_n_s32(p->output_quant.min), hi = vdupq_n_s32(p->output_quant.max);
    const uint32x4_t lane = vandq_u32(vidupq_n_u32(0u, 1), vdupq_n_u32((uint32_t)pixels - 1));
    const uint32x4_t at = vmulq_n_u32(vminq_u32(lane, vdupq_n_u32((uint32_t)g->count - 1)), (uint32_t)p->out_c);
    int32_t k;
    if (g->count == 0) {
        return;
    }
    for (k = g->count; k < pixels; ++k) {
        memcpy(g->windows + k * n, g->windows + (g->count - 1) * n, (size_t)n);
    }
    conv_run(&r, pixels, g->windows, 1, n, vctp8q((uint32_t)(pixels == 4 ? n : n - 16)), g->out, at,
             p->output_quant.offset, lo, hi, mode);
    g->count = 0;
}

AT_MVE_FAST void at_conv_s8(const at_conv_params_t *p, const int8_t *input, int8_t *output,
                            int8_t *scratch)
{
    const int32_t mode = at_mve_mode(p->channels, p->out_c, &p->output_quant);
    const at_window_t *win = &p->win;
    const int32_t n = win->filter_h * win->filter_w * win->in_c;
    const int32_t col = win->in_c, row = win->in_w * win->in_c, step = win->stride_w * col;
    /* Rows of a window lie contiguous in the input unless the filter skips columns. */
    const int32_t contiguous = win->filter_w == 1 || win->dilation_w == 1;
    /* Windows of at most 32 bytes not read in place are copied side by side for conv_run. */
    const int32_t gathering = n <= 32 && mode != AT_MVE_ANY;
    const int32_t pixels = n <= 16 ? 4 : 2;
    gathered_t g;
    int32_t b, oy, ox;
    g.count = 0;
    g.rows = win->filter_h;
    g.row_pitch = win->dilation_h * row;
    g.pieces = contiguous ? 1 : win->filter_w;
    g.piece = contiguous ? win->filter_w * col : col;
    g.piece_pitch = win->dilation_w * col;
    for (b = 0; b < p->batches; ++b) {
        const int8_t *in_b = input + b * win->in_h * row;
        if (contiguous && win->filter_h == 1 && win->inside_y[0] == 0 && win->inside_y[1] == p->out_h
            && win->inside_x[0] == 0 && win->inside_x[1] == p->out_w && win->stride_h * row == p->out_w * step) {
            /* every window inside, each row's windows continuing the last: one run (1x1 convs) */
            output = conv_inside(p, in_b - win->pad_h * row - win->pad_w * col, step, p->out_h * p->out_w,
                                 output, mode);
            continue;
        }
        for (oy = 0; oy < p->out_h; ++oy) {
            const int32_t inside_row = contiguous && win->filter_h == 1 && oy >= win->inside_y[0]
                                       && oy < win->inside_y[1];
            const int32_t begin = inside_row ? win->inside_x[0] : p->out_w;
            const int32_t end = inside_row ? win->inside_x[1] : p->out_w;
            for (ox = 0; ox < p->out_w; ++ox) {
                if (ox == begin && begin < end && (!gathering || end - begin >= pixels)) {
                    const int32_t iy0 = oy * win->stride_h - win->pad_h;
                    const int32_t ix0 = begin * win->stride_w - win->pad_w;
                    flush(p, &g, n, pixels, mode);
                    output = conv_inside(p, in_b + iy0 * row + ix0 * col, step, end - begin, output, mode);
                    ox = end - 1;
                } else if (gathering) {
                    gather(&g, win, in_b, oy, ox, n, output);
                    output += p->out_c;
                    if (g.count == pixels) {
                        flush(p, &g, n, pixels, mode);
                    }
                } else {
                    output = conv_window(p, at_window_s8(win, in_b, oy, ox, scratch), output, mode);
                }
            }
        }
    }
    flush(p, &g, n, pixels, mode);
}

/* A single run (autotune.ops.conv.one_run) last pixel first: in runs of AT_REVERSE_AHEAD pixels
 * from the last, the top one shorter, each through conv_inside. */
AT_MVE_FAST void at_conv_reverse_s8(const at_conv_params_t *p, const int8_t *input, int8_t *output,
                                    int8_t *scratch)
{
    const int32_t mode = at_mve_mode(p->channels, p->out_c, &p->output_quant);
    const at_window_t *win = &p->win;
    const int32_t col = win->in_c, step = win->stride_w * col;
    const int8_t *x = input - win->pad_h * win->in_w * col - win->pad_w * col;
    int32_t k = p->out_h * p->out_w, count;
    (void)scratch;
    for (; k > 0; k -= count) {
        count = k % AT_REVERSE_AHEAD ? k % AT_REVERSE_AHEAD : AT_REVERSE_AHEAD;
        conv_inside(p, x + (k - count) * step, step, count, output + (k - count) * p->out_c, mode);
    }
}
