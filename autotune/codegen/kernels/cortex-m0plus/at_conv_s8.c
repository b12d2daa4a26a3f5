/* CONV_2D, int8, per-channel requantization (TFLM reference_integer_ops::ConvPerChannel), for
 * the Cortex-M0+.
 *
 * The sums are those of the generic kernel (../at_conv_s8.c): acc_init plus the dot product of
 * each filter with the pixel's input window, by chunks of output channels summed
 * (at_m0_dot_rows: four filters per load of a window byte) then requantized
 * (at_m0_requantize), in the pixel loop conv and depthwise share (at_m0_pixels). Windows wholly
 * inside the input are read in place along a row of output pixels without a call per pixel,
 * the others gathered by at_window_s8. Pixels are written one after another, all channels of
 * each.
 */
#include "at_common.h"
#include "at_kernels.h"
#include "at_m0plus.h"

void at_conv_s8(const at_conv_params_t *p, const int8_t *input, int8_t *output, int8_t *scratch)
{
    const at_m0_layer_t l = {p, p->win.filter_h * p->win.filter_w * p->win.in_c};
    at_m0_windows(&l, input, output, scratch);
}

int32_t at_conv_s8_get_buffer_size(const at_conv_params_t *p)
{
    return at_window_buffer_size(&p->win, p->out_h, p->out_w);
}

/* Last pixel first (one batch), as the generic kernel: the output may start after the input's start. */
void at_conv_reverse_s8(const at_conv_params_t *p, const int8_t *input, int8_t *output, int8_t *scratch)
{
    const at_m0_layer_t l = {p, p->win.filter_h * p->win.filter_w * p->win.in_c};
    int32_t oy, ox;
    for (oy = p->out_h - 1; oy >= 0; --oy) {
        for (ox = p->out_w - 1; ox >= 0; --ox) {
            at_m0_pixels(&l, at_window_s8(&p->win, input, oy, ox, scratch), 0, 1,
                         output + (oy * p->out_w + ox) * p->out_c);
        }
    }
}
