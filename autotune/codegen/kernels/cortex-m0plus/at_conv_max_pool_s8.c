/* CONV_2D followed by MAX_POOL_2D, fused (../at_conv_max_pool_s8.c), for the Cortex-M0+.
 *
 * Requantization is monotonic in the accumulator where no sum can wrap acc_init + sum and no
 * left shift can wrap the accumulator (shift <= 0, multiplier >= 0), and so is the clamp: the
 * maximum of the requantized conv outputs of a pool window is then the requantization of the
 * largest sum. The kernel plan decides where that holds with the channels in blocks of four (at
 * most AT_M0_CHANNELS), autotune.ops.conv.m0_pools_sums, and says so in pool_sums; such a call keeps
 * each channel's largest sum over the window (at_m0_dot4_max keeps them as it sums, a run of
 * windows a call) and requantizes once per pool output, clamped to both ranges. The other calls
 * run the conv pixels of one pool window through the Cortex-M0+ conv's pixel loop
 * (at_m0_pixels) into scratch and pool them there (at_max_pixels_s8, as the generic kernel). Either way a row of
 * windows inside the input is read in place; output pixels in row-major order.
 */
#include "at_common.h"
#include "at_kernels.h"
#include "at_m0plus.h"

void at_conv_max_pool_s8(const at_conv_max_pool_params_t *p, const int8_t *input, int8_t *output,
                         int8_t *scratch)
{
    const at_conv_params_t *const conv = &p->conv;
    const at_pool_params_t *const pool = &p->pool;
    const at_window_t *const win = &conv->win;
    const int32_t step = win->stride_w * win->in_c, out_c = conv->out_c, pool_w = pool->filter_w;
    const int32_t taps = pool->filter_h * pool_w;
    const int32_t n = win->filter_h * win->filter_w * win->in_c;
    int8_t *const window = scratch + taps * out_c; /* the conv's gathered window, if any */
    at_output_t q = conv->output_quant; /* both clamps in one where the ranges meet */
    const at_m0_layer_t l = {conv, n};
    int32_t best[AT_M0_CHANNELS];
    int32_t py, px, fy, fx, k;
    q.min = q.min > pool->act_min ? q.min : pool->act_min;
    q.max = q.max < pool->act_max ? q.max : pool->act_max;
    for (py = 0; py < pool->out_h; ++py) {
        for (px = 0; px < pool->out_w; ++px, output += out_c) {
            const int32_t ox = px * pool->stride_w;
            int8_t *pixel = scratch;
            for (k = 0; p->pool_sums && k < out_c; k += 4) { /* below every sum; channels in fours */
                best[k] = best[k + 1] = best[k + 2] = best[k + 3] = INT32_MIN;
            }
            for (fy = 0; fy < pool->filter_h; ++fy) {
                const int32_t oy = py * pool->stride_h + fy;
                const int32_t run = win->in_place && oy >= win->inside_y[0] && oy < win->inside_y[1]
                                    && ox >= win->inside_x[0] && ox + pool_w <= win->inside_x[1];
                const int32_t count = run ? pool_w : 1; /* the row's windows in one run */
                for (fx = 0; fx < pool_w; fx += count) {
                    const int8_t *x = at_window_s8(win, input, oy, ox + fx, window);
                    if (p->pool_sums) {
                        at_m0_dot4_max(x, conv->filter, n, out_c >> 2, best, count, step);
                    } else {
                        pixel = at_m0_pixels(&l, x, step, count, pixel);
                    }
                }
            }
            if (p->pool_sums) {
                at_m0_requantize(best, conv->channels, &q, output, out_c, 1);
            } else {
                at_max_pixels_s8(scratch, taps, out_c, pool->act_min, pool->act_max, output);
            }
        }
    }
}

int32_t at_conv_max_pool_s8_get_buffer_size(const at_conv_max_pool_params_t *p)
{
    return p->pool.filter_h * p->pool.filter_w * p->conv.out_c
           + at_window_buffer_size(&p->conv.win, p->conv.out_h, p->conv.out_w);
}
