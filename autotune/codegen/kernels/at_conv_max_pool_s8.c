/* CONV_2D followed by MAX_POOL_2D over its output, fused (TFLM reference_integer_ops::
 * ConvPerChannel, then MaxPool): the conv outputs of one pool window at a time go to scratch and
 * are pooled there, so the conv's output never exists whole. Each conv output as at_conv_s8
 * computes it; windows of the pool without padding and not overlapping (stride >= filter), so
 * no conv output is computed twice. Output pixels in row-major order.
 */
#include "at_common.h"
#include "at_kernels.h"

/* All output channels of one conv pixel, its window at x: at_conv_s8.c's conv_pixel (static
 * there, which saves the call a few bytes; a kernel library may replace that file). */
static AT_NOINLINE int8_t *conv_pixel(const at_conv_params_t *p, const int8_t *x, int8_t *out)
{
    const at_output_t q = p->output_quant; /* a copy: the stores to out could alias p's */
    const int32_t n = p->win.filter_h * p->win.filter_w * p->win.in_c;
    const at_channel_t *ch = p->channels;
    const at_channel_t *const end = ch + p->out_c;
    const int8_t *w = p->filter;
    for (; ch < end; ++ch, w += n) {
        const int32_t acc = at_add_wrap(ch->acc_init, at_dot_s8(x, w, n));
        *out++ = at_output_s8(acc, ch->multiplier, ch->shift, q.offset, q.min, q.max);
    }
    return out;
}

void at_conv_max_pool_s8(const at_conv_max_pool_params_t *p, const int8_t *input, int8_t *output,
                         int8_t *scratch)
{
    const at_conv_params_t *conv = &p->conv;
    const at_pool_params_t *pool = &p->pool;
    const int32_t out_c = conv->out_c;
    const int32_t taps = pool->filter_h * pool->filter_w;
    int8_t *const window = scratch + taps * out_c; /* the conv's gathered window, if any */
    int32_t py, px, fy, fx;
    for (py = 0; py < pool->out_h; ++py) {
        for (px = 0; px < pool->out_w; ++px, output += out_c) {
            int8_t *pixel = scratch;
            for (fy = 0; fy < pool->filter_h; ++fy) {
                for (fx = 0; fx < pool->filter_w; ++fx, pixel += out_c) {
                    const int32_t oy = py * pool->stride_h + fy, ox = px * pool->stride_w + fx;
                    conv_pixel(conv, at_window_s8(&conv->win, input, oy, ox, window), pixel);
                }
            }
            at_max_pixels_s8(scratch, taps, out_c, pool->act_min, pool->act_max, output);
        }
    }
}

int32_t at_conv_max_pool_s8_get_buffer_size(const at_conv_max_pool_params_t *p)
{
    return p->pool.filter_h * p->pool.filter_w * p->conv.out_c
           + at_window_buffer_size(&p->conv.win, p->conv.out_h, p->conv.out_w);
}
