/* DEPTHWISE_CONV_2D, int8, per-channel requantization
 * (TFLM reference_integer_ops::DepthwiseConvPerChannel). The input offset is folded out of the
 * MAC loop as in at_conv_s8.c: sum(w * (x + off)) = sum(w * x) + off * sum(w). */
#include "at_common.h"
#include "at_kernels.h"

void at_depthwise_conv_s8(const at_depthwise_conv_params_t *p, const int8_t *input,
                          int8_t *output)
{
    const int32_t in_row = p->in_w * p->in_c;
    const int32_t x_step = p->dilation_w * p->in_c;
    const int32_t y_step = p->dilation_h * in_row;
    const int32_t w_step = p->out_c; /* between filter taps */
    const int32_t filter_row = p->filter_w * p->out_c;
    int32_t b, oy, ox, ic, m, fy, fx;

    for (b = 0; b < p->batches; ++b) {
        const int8_t *in_b = input + b * p->in_h * in_row;
        for (oy = 0; oy < p->out_h; ++oy) {
            const int32_t iy0 = oy * p->stride_h - p->pad_h;
            int32_t fy0, fy1;
            at_tap_range(iy0, p->dilation_h, p->filter_h, p->in_h, &fy0, &fy1);
            for (ox = 0; ox < p->out_w; ++ox) {
                const int32_t ix0 = ox * p->stride_w - p->pad_w;
                int32_t fx0, fx1, taps, clipped, oc = 0;
                const int8_t *x_first;
                const int8_t *w_first;
                at_tap_range(ix0, p->dilation_w, p->filter_w, p->in_w, &fx0, &fx1);
                taps = fx1 - fx0;
                clipped = fy1 - fy0 != p->filter_h || taps != p->filter_w;
                x_first = in_b + (iy0 + fy0 * p->dilation_h) * in_row
                          + (ix0 + fx0 * p->dilation_w) * p->in_c;
                w_first = p->filter + fy0 * filter_row + fx0 * p->out_c;
                for (ic = 0; ic < p->in_c; ++ic) {
                    for (m = 0; m < p->depth_multiplier; ++m, ++oc) {
                        const int8_t *xr = x_first + ic;
                        const int8_t *wr = w_first + oc;
                        int32_t acc = p->bias[oc];
                        int32_t wsum = clipped ? 0 : p->kernel_sum[oc];
                        for (fy = fy0; fy < fy1; ++fy, xr += y_step, wr += filter_row) {
                            const int8_t *x = xr;
                            const int8_t *w = wr;
                            for (fx = 0; fx < taps; ++fx, x += x_step, w += w_step) {
                                acc += *x * *w;
                            }
                            if (clipped) {
                                for (w = wr, fx = 0; fx < taps; ++fx, w += w_step) {
                                    wsum += *w;
                                }
                            }
                        }
                        acc += p->input_offset * wsum;
                        *output++ = at_output_s8(acc, p->multiplier[oc], p->shift[oc],
                                                 p->output_offset, p->act_min, p->act_max);
                    }
                }
            }
        }
    }
}
