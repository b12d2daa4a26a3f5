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

void at_depthwise_conv_s8(const at_depthwise_conv_params_t *p, const int8_t *input,
                          int8_t *output, int8_t *scratch)
{
    const at_m0_layer_t l = AT_M0_LAYER(p, 0);
    at_m0_windows(&l, input, output, scratch);
}

int32_t at_depthwise_conv_s8_get_buffer_size(const at_depthwise_conv_params_t *p)
{
    return at_window_buffer_size(&p->win, p->out_h, p->out_w);
}
