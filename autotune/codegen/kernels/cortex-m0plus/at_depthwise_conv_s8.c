/* DEPTHWISE_CONV_2D, int8, per-channel requantization
 * (TFLM reference_integer_ops::DepthwiseConvPerChannel), for the Cortex-M0+.
 *
 * The sums are those of the generic kernel (../at_depthwise_conv_s8.c): acc_init plus the dot
 * product of each channel's taps, out_c apart, with the input window. Here by chunks of
 * channels, summed two channels a pass (at_m0_dot2_step, a run of windows a call) then
 * requantized (at_m0_requantize), in the pixel loop conv and depthwise share (at_m0_pixels);
 * windows wholly inside the input are read in place along a row of output pixels without a
 * call per pixel. Pixels are written one after another, channel c from input channel c only.
 */
#include "at_common.h"
#include "at_kernels.h"
#include "at_m0plus.h"

void at_m0_depthwise_sums(const at_conv_params_t *p, const int8_t *x, int32_t c, int32_t chunk, int32_t *sums,
                          int32_t pixels, int32_t step)
{
    const int32_t taps = p->win.filter_h * p->win.filter_w, out_c = p->out_c;
    const int8_t *const w = p->filter + c;
    int32_t k;
    if ((chunk & 1) == 0) { /* every pixel's pairs in one call */
        at_m0_dot2_step(x, w, (taps - 1) * out_c, out_c, chunk >> 1, sums, pixels, step);
        return;
    }
    for (; pixels > 0; --pixels, x += step) { /* an odd chunk: a channel at a time */
        for (k = 0; k < chunk; ++k) {
            *sums++ = at_dot_step_s8(x + k, w + k, taps, out_c);
        }
    }
}

void at_depthwise_conv_s8(const at_depthwise_conv_params_t *p, const int8_t *input,
                          int8_t *output, int8_t *scratch)
{
    const at_m0_layer_t l = {p, 0};
    at_m0_windows(&l, input, output, scratch);
}

int32_t at_depthwise_conv_s8_get_buffer_size(const at_depthwise_conv_params_t *p)
{
    return at_window_buffer_size(&p->win, p->out_h, p->out_w);
}
