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
#include <string.h>

#include "at_common.h"
#include "at_kernels.h"
#include "at_mve.h"
#include "at_mve_conv.h"

/* Where the input windows of a block of output pixels are. */
typedef struct {
    const int8_t *x[4]; /* first byte of each pixel's window; past `count`, the last again */
    int32_t count;      /* output pixels in the block, 1-4 */
    int32_t rows;       /* filter rows, each `len` contiguous bytes, `pitch` bytes apart */
    int32_t len, pitch;
} block_t;

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
        const run_t r = {step, pixels * step, out_c, (pixels - 1) * out_c, p->filter, p->channels, NULL, 0, 0,
                         0xFFFFu};
        /* two pixels: lanes 2 and 3 repeat lanes 0 and 1 */
        const uint32x4_t at = vmulq_n_u32(vandq_u32(vidupq_n_u32(0u, 1), vdupq_n_u32((uint32_t)pixels - 1)),
                                          (uint32_t)out_c);
        const int32x4_t lo = vdupq_n_s32(p->output_quant.min), hi = vdupq_n_s32(p->output_quant.max);
        const mve_pred16_t pl = vctp8q((uint32_t)(pixels == 4 ? len : len - 16));
        const int32_t blocks = count / pixels, rest = count - blocks * pixels;
        conv_run(&r, pixels, x, blocks, len, pl, out, at, p->output_quant.offset, lo, hi, mode, 0);
        if (rest) { /* the last block again: the overlap is written twice, alike */
            conv_run(&r, pixels, x + (count - pixels) * step, 1, len, pl, out + (count - pixels) * out_c, at,
                     p->output_quant.offset, lo, hi, mode, 0);
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

/* Runs conv_run on the gathered windows; slots past count hold the last window again, whose
 * outputs the scatter writes twice to one place. */
static AT_NOINLINE void flush(const at_conv_params_t *p, gathered_t *g, int32_t n, int32_t pixels, int32_t mode)
{
    const run_t r = {n, pixels * n, p->out_c, (pixels - 1) * p->out_c, p->filter, p->channels, NULL, 0, 0, 0xFFFFu};
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
             p->output_quant.offset, lo, hi, mode, 0);
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
    gathered_init(&g, win);
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
