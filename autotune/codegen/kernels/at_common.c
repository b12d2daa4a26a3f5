/* The helpers of the conv and fully connected kernels that are out of line: one copy each in
 * flash, and called, they leave the kernels' loops their registers (at_common.h). */
#include <string.h>

#include "at_common.h"

/* Two MACs per iteration, a loop GCC compiles for the Cortex-M0+ with one index register per
 * MAC and no spills (about 8.5 cycles per MAC; unrolled further it runs out of registers). */
int32_t at_dot_s8(const int8_t *x, const int8_t *w, int32_t n)
{
    int32_t acc = 0;
    int32_t i = 0;
    if (n & 1) {
        acc = x[0] * w[0];
        i = 1;
    }
    if (i < n) {
        do {
            acc += x[i] * w[i];
            ++i;
            acc += x[i] * w[i];
            ++i;
        } while (i < n);
    }
    return acc;
}

/* sum x[k * step] * w[k * step] over k < n: one index for both, from the first tap relative to
 * the last up to 0 (about 10 cycles per MAC). */
int32_t at_dot_step_s8(const int8_t *x, const int8_t *w, int32_t n, int32_t step)
{
    const int32_t last = (n - 1) * step;
    int32_t acc = 0;
    int32_t i = -last;
    if (n > 0) {
        x += last;
        w += last;
        do {
            acc += x[i] * w[i];
            i += step;
        } while (i <= 0);
    }
    return acc;
}

const int8_t *at_window_s8(const at_window_t *win, const int8_t *input, int32_t oy, int32_t ox,
                           int8_t *scratch)
{
    const int32_t iy0 = oy * win->stride_h - win->pad_h;
    const int32_t ix0 = ox * win->stride_w - win->pad_w;
    const int32_t n = win->in_c * win->repeat; /* bytes a tap */
    int8_t *buf = scratch;
    int32_t fy, fx, c, r;
    if (win->in_place && oy >= win->inside_y[0] && oy < win->inside_y[1]
        && ox >= win->inside_x[0] && ox < win->inside_x[1]) {
        return input + (iy0 * win->in_w + ix0) * win->in_c;
    }
    for (fy = 0; fy < win->filter_h; ++fy) {
        const int32_t iy = iy0 + fy * win->dilation_h;
        for (fx = 0; fx < win->filter_w; ++fx, buf += n) {
            const int32_t ix = ix0 + fx * win->dilation_w;
            const int8_t *x;
            if (iy < 0 || iy >= win->in_h || ix < 0 || ix >= win->in_w) {
                memset(buf, win->zero_point, (size_t)n);
                continue;
            }
            x = input + (iy * win->in_w + ix) * win->in_c;
            if (win->repeat == 1) {
                memcpy(buf, x, (size_t)n);
                continue;
            }
            for (c = 0; c < win->in_c; ++c) {
                for (r = 0; r < win->repeat; ++r) {
                    buf[c * win->repeat + r] = x[c];
                }
            }
        }
    }
    return scratch;
}

int32_t at_window_buffer_size(const at_window_t *win, int32_t out_h, int32_t out_w)
{
    const int32_t everywhere = win->inside_y[0] == 0 && win->inside_y[1] == out_h
                               && win->inside_x[0] == 0 && win->inside_x[1] == out_w;
    if (win->in_place && everywhere) {
        return 0;
    }
    return win->filter_h * win->filter_w * win->in_c * win->repeat;
}
