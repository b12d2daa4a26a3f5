/* CONV_2D followed by MAX_POOL_2D, fused (../at_conv_max_pool_s8.c), Helium.
 *
 * Where a pool window's row is whole blocks of the conv's runs (at_mve_conv.h: four pixels of
 * windows up to 16 bytes, two up to 32) and the requantization needs no left shift, the conv
 * pixels of each pool window row go through conv_run in blocks, which keep the largest lane of
 * each channel instead of storing the four: the pool is done in registers and no conv output is
 * stored. A run covers the pool windows of a row whose conv windows are read in place; the
 * others' conv windows are copied side by side first. Pool windows of two pixels, two apart, of
 * windows up to 16 bytes: the run takes two of them a block of four pixels, which shares each
 * filter load among four pixels as the conv does (an odd last window a block of its own). The
 * blocks of a pool window after its first take the maximum with the output written by the
 * blocks before. Any other layer: each conv pixel
 * through at_mve_rows into scratch (four output channels per load of its window), pooled there
 * in 16 lanes.
 */
#include "at_common.h"
#include "at_kernels.h"
#include "at_mve.h"
#include "at_mve_conv.h"

/* All output channels of one conv pixel through at_mve_rows; out of line, as the Helium conv's
 * conv_window. */
static AT_NOINLINE int8_t *conv_pixel(const at_conv_params_t *p, const int8_t *x, int8_t *out, int32_t mode)
{
    const int32_t n = p->win.filter_h * p->win.filter_w * p->win.in_c;
    return at_mve_rows(x, p->filter, n, p->out_c, p->channels, 0, &p->output_quant, out, mode);
}

/* at_max_pixels_s8 in 16 int8 lanes. */
static AT_NOINLINE void max_pixels(const int8_t *x, int32_t count, int32_t channels, int32_t lo, int32_t hi,
                                   int8_t *out)
{
    int32_t c, k;
    for (c = 0; c < channels; c += 16) {
        const mve_pred16_t lanes = vctp8q((uint32_t)(channels - c));
        int8x16_t max = vldrbq_z_s8(x + c, lanes);
        for (k = 1; k < count; ++k) {
            max = vmaxq_s8(max, vldrbq_z_s8(x + k * channels + c, lanes));
        }
        max = vminq_s8(vmaxq_s8(max, vdupq_n_s8((int8_t)lo)), vdupq_n_s8((int8_t)hi));
        vstrbq_p_s8(out + c, max, lanes);
    }
}

/* v clamped to [lo, hi]. */
AT_INLINE int32_t clamp(int32_t v, int32_t lo, int32_t hi)
{
    return v < lo ? lo : v > hi ? hi : v;
}

/* `count` > 0 bytes `v` at out: a tail-predicated loop (DLSTP/LETP), one store of 16 bytes an
 * iteration (GCC 12 builds each predicate anew, through VMRS and VMSR). */
AT_INLINE void fill(int8_t *out, int8x16_t v, int32_t count)
{
    __asm__ volatile("dlstp.8 lr, %[count]\n"
                     "1:\n\t"
                     "vstrb.8 %q[v], [%[out]], #16\n\t"
                     "letp lr, 1b"
                     : [out] "+r"(out) : [v] "w"(v), [count] "r"(count) : "lr", "memory");
}

/* The pool windows' rows as blocks of conv_run of `pixels` conv pixels each (filter_w of them a
 * row), windows of n bytes. */
static AT_NOINLINE void pooled_runs(const at_conv_max_pool_params_t *p, const int8_t *input, int8_t *output,
                                    int32_t n, int32_t pixels, int32_t mode)
{
    const at_conv_params_t *conv = &p->conv;
    const at_pool_params_t *pool = &p->pool;
    const at_window_t *win = &conv->win;
    const int32_t out_c = conv->out_c;
    const int32_t col = win->in_c, row = win->in_w * col, step = win->stride_w * col;
    const int32_t contiguous = win->filter_w == 1 || win->dilation_w == 1;
    /* the conv's clamp, then the pool's: one clamp to where the pool's maps the conv's bounds;
     * the output starts at lo, conv_run clamps above (less the zero point, as it adds it last) */
    const int32_t lo = clamp(conv->output_quant.min, pool->act_min, pool->act_max);
    const int32x4_t hi = vdupq_n_s32(clamp(conv->output_quant.max, pool->act_min, pool->act_max)
                                     - conv->output_quant.offset);
    /* four pixels: each window one chunk; two: each up to two, the first (predicate) or both short */
    const mve_pred16_t pl = vctp8q((uint32_t)(pixels == 4 ? n : n > 16 ? n - 16 : 0));
    const uint32_t first = vctp8q((uint32_t)(n < 16 ? n : 16));
    const run_t in_place = {step, pool->stride_w * step, out_c, 0, conv->filter, conv->channels, NULL, 0, 0, first};
    const run_t copied = {n, 0, out_c, 0, conv->filter, conv->channels, NULL, 0, 0, first};
    /* two pool windows a block of four pixels (pool 2 of conv_run): the lanes' outputs */
    const int32_t paired = pixels == 2 && n <= 16 && pool->filter_w == 2 && pool->stride_w == 2;
    const run_t pairs = {step, 4 * step, out_c, out_c, conv->filter, conv->channels, NULL, 0, 0, first};
    const uint32x4_t at_pairs = vmulq_n_u32(vshrq_n_u32(vidupq_n_u32(0u, 1), 1), (uint32_t)out_c);
    const uint32x4_t unused = vdupq_n_u32(0u);
    const int32_t row_bytes = pool->out_w * out_c;
    /* pool windows [begin, end) of a row: conv windows all inside the input, read in place */
    const int32_t begin = (win->inside_x[0] + pool->stride_w - 1) / pool->stride_w;
    const int32_t last = win->inside_x[1] - pool->filter_w; /* the last inside window's first conv pixel */
    const int32_t end = clamp(last < 0 ? 0 : last / pool->stride_w + 1, begin, pool->out_w);
    gathered_t g;
    int32_t py, fy, fx, px, k;
    gathered_init(&g, win);
    for (py = 0; py < pool->out_h; ++py, output += row_bytes) {
        fill(output, vdupq_n_s8((int8_t)lo), row_bytes);
        for (fy = 0; fy < pool->filter_h; ++fy) {
            const int32_t oy = py * pool->stride_h + fy;
            const int32_t inside = contiguous && win->filter_h == 1 && oy >= win->inside_y[0] && oy < win->inside_y[1];
            for (fx = 0; fx < pool->filter_w; fx += pixels) { /* a block of each pool window's row */
                for (px = 0; px < pool->out_w; ++px) {
                    if (inside && px == begin && begin < end) {
                        const int32_t iy = oy * win->stride_h - win->pad_h;
                        const int32_t ix = (begin * pool->stride_w + fx) * win->stride_w - win->pad_w;
                        const int8_t *x = input + iy * row + ix * col;
                        int8_t *out = output + begin * out_c;
                        int32_t count = end - begin;
                        if (paired && count >= 2) {
                            conv_run(&pairs, 4, x, count >> 1, n, vctp8q((uint32_t)n), out, at_pairs,
                                     conv->output_quant.offset, hi, hi, mode, 2);
                            x += (count & ~1) * pool->stride_w * step;
                            out += (count & ~1) * out_c;
                            count &= 1;
                        }
                        if (count) {
                            conv_run(&in_place, pixels, x, count, n, pl, out, unused, conv->output_quant.offset,
                                     hi, hi, mode, 1);
                        }
                        px = end - 1;
                        continue;
                    }
                    for (k = 0; k < pixels; ++k) {
                        gather(&g, win, input, oy, px * pool->stride_w + fx + k, n, NULL);
                    }
                    conv_run(&copied, pixels, g.windows, 1, n, pl, output + px * out_c, unused,
                             conv->output_quant.offset, hi, hi, mode, 1);
                    g.count = 0;
                }
            }
        }
    }
}

AT_MVE_FAST void at_conv_max_pool_s8(const at_conv_max_pool_params_t *p, const int8_t *input,
                                     int8_t *output, int8_t *scratch)
{
    const at_conv_params_t *conv = &p->conv;
    const at_pool_params_t *pool = &p->pool;
    const int32_t mode = at_mve_mode(conv->channels, conv->out_c, &conv->output_quant);
    const int32_t out_c = conv->out_c;
    const int32_t taps = pool->filter_h * pool->filter_w;
    const int32_t n = conv->win.filter_h * conv->win.filter_w * conv->win.in_c;
    int8_t *const window = scratch + taps * out_c;
    int32_t py, px, fy, fx;
    /* four-pixel blocks where a pool window's row is whole ones of windows up to 16 bytes, else two */
    const int32_t pixels = n <= 16 && pool->filter_w % 4 == 0 ? 4 : n <= 32 && pool->filter_w % 2 == 0 ? 2 : 0;
    if (mode != AT_MVE_ANY && pixels) {
        pooled_runs(p, input, output, n, pixels, mode);
        return;
    }
    for (py = 0; py < pool->out_h; ++py) {
        for (px = 0; px < pool->out_w; ++px, output += out_c) {
            int8_t *pixel = scratch;
            for (fy = 0; fy < pool->filter_h; ++fy) {
                for (fx = 0; fx < pool->filter_w; ++fx) {
                    const int32_t oy = py * pool->stride_h + fy, ox = px * pool->stride_w + fx;
                    pixel = conv_pixel(conv, at_window_s8(&conv->win, input, oy, ox, window), pixel, mode);
                }
            }
            max_pixels(scratch, taps, out_c, pool->act_min, pool->act_max, output);
        }
    }
}

int32_t at_conv_max_pool_s8_get_buffer_size(const at_conv_max_pool_params_t *p)
{
    return p->pool.filter_h * p->pool.filter_w * p->conv.out_c
           + at_window_buffer_size(&p->conv.win, p->conv.out_h, p->conv.out_w);
}
