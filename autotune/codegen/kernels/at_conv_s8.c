/* CONV_2D, int8, per-channel requantization (TFLM reference_integer_ops::ConvPerChannel).
 *
 * TFLM sums filter * (input + input_offset) over the taps inside the input. The same integer is
 * sum(filter * input) + input_offset * sum(filter), so the MAC loop is a plain dot product and
 * the offset term is one multiply per output (a precomputed kernel_sum when no tap is clipped).
 */
#include "at_common.h"
#include "at_kernels.h"

/* `taps` filter columns of `depth` channels each; input columns are `x_step` apart. */
static int32_t dot_taps(const int8_t *x, const int8_t *w, int32_t taps, int32_t depth,
                        int32_t x_step)
{
    int32_t acc = 0;
    if (x_step == depth) { /* the columns are contiguous: one dot product */
        return at_dot_s8(x, w, taps * depth);
    }
    for (; taps > 0; --taps, x += x_step, w += depth) {
        acc += at_dot_s8(x, w, depth);
    }
    return acc;
}

void at_conv_s8(const at_conv_params_t *p, const int8_t *input, int8_t *output)
{
    const int32_t in_row = p->in_w * p->in_c;
    const int32_t filter_row = p->filter_w * p->filter_c;
    const int32_t filter_size = p->filter_h * filter_row;
    const int32_t x_step = p->dilation_w * p->in_c;
    const int32_t y_step = p->dilation_h * in_row;
    int32_t b, oy, ox, oc, fy;

    for (b = 0; b < p->batches; ++b) {
        const int8_t *in_b = input + b * p->in_h * in_row;
        for (oy = 0; oy < p->out_h; ++oy) {
            const int32_t iy0 = oy * p->stride_h - p->pad_h;
            int32_t fy0, fy1;
            at_tap_range(iy0, p->dilation_h, p->filter_h, p->in_h, &fy0, &fy1);
            for (ox = 0; ox < p->out_w; ++ox) {
                const int32_t ix0 = ox * p->stride_w - p->pad_w;
                int32_t fx0, fx1, taps, clipped;
                const int8_t *x_first; /* the first tap inside the input */
                const int8_t *w = p->filter;
                at_tap_range(ix0, p->dilation_w, p->filter_w, p->in_w, &fx0, &fx1);
                taps = fx1 - fx0;
                clipped = fy1 - fy0 != p->filter_h || taps != p->filter_w;
                x_first = in_b + (iy0 + fy0 * p->dilation_h) * in_row
                          + (ix0 + fx0 * p->dilation_w) * p->in_c;
                for (oc = 0; oc < p->out_c; x_first += p->filter_c) { /* group by group */
                    const int8_t *x_group = x_first;
                    const int32_t group_end = oc + p->group_out_c;
                    for (; oc < group_end; ++oc, w += filter_size) {
                        const int8_t *w_first = w + fy0 * filter_row + fx0 * p->filter_c;
                        const int8_t *x = x_group;
                        const int8_t *wr;
                        int32_t acc = p->bias[oc];
                        int32_t wsum = p->kernel_sum[oc];
                        if (clipped) { /* the filter sum over the taps inside */
                            for (wsum = 0, wr = w_first, fy = fy0; fy < fy1; ++fy, wr += filter_row) {
                                wsum += at_sum_s8(wr, taps * p->filter_c);
                            }
                        }
                        for (wr = w_first, fy = fy0; fy < fy1; ++fy, x += y_step, wr += filter_row) {
                            acc += dot_taps(x, wr, taps, p->filter_c, x_step);
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
