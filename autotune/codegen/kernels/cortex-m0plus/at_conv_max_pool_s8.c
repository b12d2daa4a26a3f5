/* CONV_2D followed by MAX_POOL_2D, fused (../at_conv_max_pool_s8.c), for the Cortex-M0+: the conv
 * pixels of one pool window go through the Cortex-M0+ conv's pixel loop (at_m0_conv_pixels: a
 * row of windows inside the input as one run) into scratch and are pooled there by the max
 * pool's assembly (at_m0_max_taps). Output pixels in row-major order.
 */
#include "at_common.h"
#include "at_kernels.h"
#include "at_m0plus.h"

void at_conv_max_pool_s8(const at_conv_max_pool_params_t *p, const int8_t *input, int8_t *output,
                         int8_t *scratch)
{
    const at_conv_params_t *conv = &p->conv;
    const at_pool_params_t *pool = &p->pool;
    const at_window_t *win = &conv->win;
    const int32_t in_place = win->in_place, step = win->stride_w * win->in_c;
    const int32_t out_c = conv->out_c;
    const int32_t taps = pool->filter_h * pool->filter_w;
    int8_t *const window = scratch + taps * out_c; /* the conv's gathered window, if any */
    const int32_t act[3] = {pool->act_min, pool->act_max, 0};
    int32_t py, px, fy, fx;
    for (py = 0; py < pool->out_h; ++py) {
        for (px = 0; px < pool->out_w; ++px, output += out_c) {
            int8_t *pixel = scratch;
            for (fy = 0; fy < pool->filter_h; ++fy) {
                const int32_t oy = py * pool->stride_h + fy, ox = px * pool->stride_w;
                if (in_place && oy >= win->inside_y[0] && oy < win->inside_y[1] && ox >= win->inside_x[0]
                    && ox + pool->filter_w <= win->inside_x[1]) { /* the row's windows in one run */
                    pixel = at_m0_conv_pixels(conv, at_window_s8(win, input, oy, ox, window), step,
                                              pool->filter_w, pixel);
                    continue;
                }
                for (fx = 0; fx < pool->filter_w; ++fx) {
                    pixel = at_m0_conv_pixels(conv, at_window_s8(win, input, oy, ox + fx, window), 0, 1, pixel);
                }
            }
            at_m0_max_taps(scratch, output, out_c, out_c, taps, act);
        }
    }
}

int32_t at_conv_max_pool_s8_get_buffer_size(const at_conv_max_pool_params_t *p)
{
    return p->pool.filter_h * p->pool.filter_w * p->conv.out_c
           + at_window_buffer_size(&p->conv.win, p->conv.out_h, p->conv.out_w);
}
