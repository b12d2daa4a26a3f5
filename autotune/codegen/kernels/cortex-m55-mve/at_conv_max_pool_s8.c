/* CONV_2D followed by MAX_POOL_2D, fused (../at_conv_max_pool_s8.c), Helium: each conv pixel
 * through at_mve_rows (four output channels per load of its window), the pooling in 16 lanes. */
#include "at_common.h"
#include "at_kernels.h"
#include "at_mve.h"

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

AT_MVE_FAST void at_conv_max_pool_s8(const at_conv_max_pool_params_t *p, const int8_t *input,
                                     int8_t *output, int8_t *scratch)
{
    const at_conv_params_t *conv = &p->conv;
    const at_pool_params_t *pool = &p->pool;
    const int32_t mode = at_mve_mode(conv->channels, conv->out_c, &conv->output_quant);
    const int32_t out_c = conv->out_c;
    const int32_t taps = pool->filter_h * pool->filter_w;
    int8_t *const window = scratch + taps * out_c;
    int32_t py, px, fy, fx;
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
