/* DEPTHWISE_CONV_2D, int8, per-channel requantization
 * (TFLM reference_integer_ops::DepthwiseConvPerChannel), Helium.
 *
 * As the generic kernel (../at_depthwise_conv_s8.c): at_window_s8 gives each output pixel's
 * window in the [filter_h][filter_w][out_c] layout of the filter; then four channels at a time
 * are four int32 lanes: per tap, a widening load of four window and four filter bytes, a VMUL and
 * a VADD.
 */
#include "at_common.h"
#include "at_kernels.h"
#include "at_mve.h"

static AT_MVE_FAST int8_t *depthwise_pixel(const at_depthwise_conv_params_t *p, const int8_t *x,
                                           const at_mve_channels_t *hoisted, int8_t *out,
                                           const at_output_t *q)
{
    const int32_t taps = p->win.filter_h * p->win.filter_w;
    const int32_t out_c = p->out_c;
    int32_t c, t;
    for (c = 0; c < out_c; c += 4) {
        const mve_pred16_t pred = vctp32q((uint32_t)(out_c - c));
        const int8_t *xc = x + c;
        const int8_t *wc = p->filter + c;
        int32x4_t acc, multiplier, shift;
        at_mve_channels(hoisted, p->channels, c, pred, &acc, &multiplier, &shift);
        for (t = 0; t < taps; ++t, xc += out_c, wc += out_c) {
            acc = vaddq_s32(acc, vmulq_s32(vldrbq_z_s32(xc, pred), vldrbq_z_s32(wc, pred)));
        }
        vstrbq_p_s32(out + c, at_mve_output(acc, multiplier, shift, q), pred);
    }
    return out + out_c;
}

void at_depthwise_conv_s8(const at_depthwise_conv_params_t *p, const int8_t *input,
                          int8_t *output, int8_t *scratch)
{
    const at_window_t *win = &p->win;
    const at_output_t q = p->output_quant; /* a copy: the stores to output could alias p's */
    at_mve_channels_t hoisted;
    const at_mve_channels_t *t = at_mve_hoist(&hoisted, p->channels, p->out_c);
    int32_t b, oy, ox;
    for (b = 0; b < p->batches; ++b) {
        const int8_t *in_b = input + b * win->in_h * win->in_w * win->in_c;
        for (oy = 0; oy < p->out_h; ++oy) {
            for (ox = 0; ox < p->out_w; ++ox) {
                output = depthwise_pixel(p, at_window_s8(win, in_b, oy, ox, scratch), t, output, &q);
            }
        }
    }
}
