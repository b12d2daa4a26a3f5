/* FULLY_CONNECTED, int8 (TFLM reference_integer_ops::FullyConnected and FullyConnectedPerChannel).
 * TFLM sums (w + filter_offset) * (x + input_offset); expanded, that is
 * sum(w * x) + input_offset * sum(w) + filter_offset * (sum(x) + accum_depth * input_offset),
 * so the MAC loop is a plain dot product. */
#include "at_common.h"
#include "at_kernels.h"

void at_fully_connected_s8(const at_fully_connected_params_t *p, const int8_t *input,
                           int8_t *output)
{
    int32_t b, o;
    for (b = 0; b < p->batches; ++b, input += p->accum_depth) {
        const int8_t *w = p->filter;
        int32_t input_term = 0; /* filter_offset * sum(x + input_offset); int8 filters have 0 */
        if (p->filter_offset != 0) {
            input_term = p->filter_offset
                         * (at_sum_s8(input, p->accum_depth) + p->accum_depth * p->input_offset);
        }
        for (o = 0; o < p->out_depth; ++o, w += p->accum_depth) {
            const int32_t q = p->per_channel ? o : 0;
            const int32_t acc = p->bias[o] + at_dot_s8(input, w, p->accum_depth)
                                + p->input_offset * p->kernel_sum[o] + input_term;
            *output++ = at_output_s8(acc, p->multiplier[q], p->shift[q], p->output_offset,
                                     p->act_min, p->act_max);
        }
    }
}
