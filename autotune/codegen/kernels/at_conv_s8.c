/* CONV_2D, int8, per-channel requantization (TFLM reference_integer_ops::ConvPerChannel).
 *
 * Each output is acc_init (see at_channel_t) plus one dot product of its filter with the input
 * window, which at_window_s8 gives in the filter's [filter_h][filter_w][in_c] layout: in place
 * for most outputs of 1D and 1x1 convolutions, else copied to scratch once per pixel.
 */
#include "at_common.h"
#include "at_kernels.h"

void at_conv_s8(const at_conv_params_t *p, const int8_t *input, int8_t *output, int8_t *scratch)
{
    const at_window_t *win = &p->win;
    int32_t b, oy, ox;
    for (b = 0; b < p->batches; ++b) {
        const int8_t *in_b = input + b * win->in_h * win->in_w * win->in_c;
        for (oy = 0; oy < p->out_h; ++oy) {
            for (ox = 0; ox < p->out_w; ++ox) {
                output = at_conv_pixel_s8(p, at_window_s8(win, in_b, oy, ox, scratch), output);
            }
        }
    }
}

/* Last pixel first (one batch): the output may start after the input's start. */
void at_conv_reverse_s8(const at_conv_params_t *p, const int8_t *input, int8_t *output, int8_t *scratch)
{
    int32_t oy, ox;
    for (oy = p->out_h - 1; oy >= 0; --oy) {
        for (ox = p->out_w - 1; ox >= 0; --ox) {
            at_conv_pixel_s8(p, at_window_s8(&p->win, input, oy, ox, scratch), output + (oy * p->out_w + ox) * p->out_c);
        }
    }
}

int32_t at_conv_s8_get_buffer_size(const at_conv_params_t *p)
{
    return at_window_buffer_size(&p->win, p->out_h, p->out_w);
}
