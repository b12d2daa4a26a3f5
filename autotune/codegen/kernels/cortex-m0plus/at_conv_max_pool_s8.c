/* CONV_2D followed by MAX_POOL_2D, fused (../at_conv_max_pool_s8.c), for the Cortex-M0+.
 *
 * Requantization is monotonic in the accumulator where no sum can wrap acc_init + sum and no
 * left shift can wrap the accumulator (shift <= 0, multiplier >= 0), and so is the clamp: the
 * maximum of the requantized conv outputs of a pool window is then the requantization of the
 * largest sum. Such a call with its channels in blocks of four (at most AT_M0_CHANNELS) keeps
 * each channel's largest sum over the window (at_m0_dot4_max keeps them as it sums, a run of
 * windows a call) and requantizes once per pool output, clamped to both ranges. The other calls
 * run the conv pixels of one pool window through the Cortex-M0+ conv's pixel loop
 * (at_m0_pixels) into scratch and pool them there (at_m0_max_taps). Either way a row of
 * windows inside the input is read in place; output pixels in row-major order.
 */
#include "at_common.h"
#include "at_kernels.h"
#include "at_m0plus.h"

/* Whether the largest sum of a window gives its largest output (see above) for every channel:
 * |x w| <= 2^14, so every sum of n products lies within n 2^14 of zero. And whether the channels
 * come in blocks of four, at_m0_dot4_max's. */
static int32_t monotonic(const at_conv_params_t *conv, int32_t n)
{
    const at_channel_t *ch = conv->channels;
    int32_t c, bound;
    if (conv->out_c > AT_M0_CHANNELS || (conv->out_c & 3) != 0 || n >= (1 << 17)) {
        return 0;
    }
    bound = n << 14;
    for (c = 0; c < conv->out_c; ++c, ++ch) {
        if (ch->shift > 0 || ch->multiplier < 0 || ch->acc_init > INT32_MAX - bound
            || ch->acc_init < INT32_MIN + bound) {
            return 0;
        }
    }
    return 1;
}

void at_conv_max_pool_s8(const at_conv_max_pool_params_t *p, const int8_t *input, int8_t *output,
                         int8_t *scratch)
{
    const at_conv_params_t *conv = &p->conv;
    const at_pool_params_t *pool = &p->pool;
    const at_window_t *win = &conv->win;
    const int32_t in_place = win->in_place, step = win->stride_w * win->in_c;
    const int32_t out_c = conv->out_c;
    const int32_t taps = pool->filter_h * pool->filter_w;
    const int32_t n = win->filter_h * win->filter_w * win->in_c;
    int8_t *const window = scratch + taps * out_c; /* the conv's gathered window, if any */
    const int32_t act[3] = {pool->act_min, pool->act_max, 0};
    at_output_t q = conv->output_quant; /* both clamps in one where the ranges meet */
    const int32_t by_sums = monotonic(conv, n) && q.min <= pool->act_max && pool->act_min <= q.max;
    const at_m0_layer_t l = AT_M0_LAYER(conv, n);
    int32_t best[AT_M0_CHANNELS];
    int32_t py, px, fy, fx;
    q.min = q.min > pool->act_min ? q.min : pool->act_min;
    q.max = q.max < pool->act_max ? q.max : pool->act_max;
    for (py = 0; py < pool->out_h; ++py) {
        for (px = 0; px < pool->out_w; ++px, output += out_c) {
            int8_t *pixel = scratch;
            int32_t *b = best;
            do { /* below every sum; four at a time (best has room for out_c rounded up to 4) */
                b[0] = b[1] = b[2] = b[3] = INT32_MIN;
                b += 4;
            } while (by_sums && b < best + out_c);
            for (fy = 0; fy < pool->filter_h; ++fy) {
                const int32_t oy = py * pool->stride_h + fy, ox = px * pool->stride_w;
                const int32_t run = in_place && oy >= win->inside_y[0] && oy < win->inside_y[1]
                                    && ox >= win->inside_x[0] && ox + pool->filter_w <= win->inside_x[1];
                for (fx = 0; fx < pool->filter_w; fx += run ? pool->filter_w : 1) {
                    const int8_t *x = at_window_s8(win, input, oy, ox + fx, window);
                    const int32_t count = run ? pool->filter_w : 1; /* the row's windows in one run */
                    if (by_sums) {
                        at_m0_dot4_max(x, conv->filter, n, out_c >> 2, best, count, step);
                    } else {
                        pixel = at_m0_pixels(&l, x, step, count, pixel);
                    }
                }
            }
            if (by_sums) {
                at_m0_requantize(best, conv->channels, &q, output, out_c, 1);
            } else {
                at_m0_max_taps(scratch, output, out_c, out_c, taps, act);
            }
        }
    }
}

int32_t at_conv_max_pool_s8_get_buffer_size(const at_conv_max_pool_params_t *p)
{
    return p->pool.filter_h * p->pool.filter_w * p->conv.out_c
           + at_window_buffer_size(&p->conv.win, p->conv.out_h, p->conv.out_w);
}
