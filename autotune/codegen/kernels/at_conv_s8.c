/* CONV_2D, int8, per-channel requantization (TFLM reference_integer_ops::ConvPerChannel).
 *
 * Each output is acc_init (see at_channel_t) plus one dot product of its filter with the input
 * window, which at_window_s8 gives in the filter's [filter_h][filter_w][in_c] layout: in place
 * for most outputs of 1D and 1x1 convolutions, else copied to scratch once per pixel.
 */
#include "at_common.h"
#include "at_kernels.h"

/* All output channels of one pixel, its window at x. Out of line, this loop gets registers of
 * its own; the requantization is inline, as around a call GCC spills the loop's pointers. */
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

void at_conv_s8(const at_conv_params_t *p, const int8_t *input, int8_t *output, int8_t *scratch)
{
    const at_window_t *win = &p->win;
    int32_t b, oy, ox;
    for (b = 0; b < p->batches; ++b) {
        const int8_t *in_b = input + b * win->in_h * win->in_w * win->in_c;
        for (oy = 0; oy < p->out_h; ++oy) {
            for (ox = 0; ox < p->out_w; ++ox) {
                output = conv_pixel(p, at_window_s8(win, in_b, oy, ox, scratch), output);
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
            conv_pixel(p, at_window_s8(&p->win, input, oy, ox, scratch), output + (oy * p->out_w + ox) * p->out_c);
        }
    }
}

int32_t at_conv_s8_get_buffer_size(const at_conv_params_t *p)
{
    return at_window_buffer_size(&p->win, p->out_h, p->out_w);
}
