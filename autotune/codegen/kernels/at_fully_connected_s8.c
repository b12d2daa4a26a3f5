/* FULLY_CONNECTED, int8 (TFLM reference_integer_ops::FullyConnected and FullyConnectedPerChannel).
 * TFLM sums (w + filter_offset) * (x + input_offset); expanded, that is
 * sum(w * x) + input_offset * sum(w) + filter_offset * (sum(x) + accum_depth * input_offset),
 * so the MAC loop is a plain dot product, the second term in at_channel_t.acc_init. */
#include "at_common.h"
#include "at_kernels.h"

void at_fully_connected_s8(const at_fully_connected_params_t *p, const int8_t *input,
                           int8_t *output)
{
    const at_output_t q = p->output_quant; /* a copy: the stores to output could alias p's */
    const int32_t depth = p->accum_depth;
    int32_t b;
    for (b = 0; b < p->batches; ++b, input += depth) {
        const at_channel_t *ch = p->channels;
        const at_channel_t *const end = ch + p->out_depth;
        const int8_t *w = p->filter;
        int32_t input_term = 0; /* filter_offset * sum(x + input_offset); int8 filters have 0 */
        if (p->filter_offset != 0) {
            input_term = p->filter_offset * (at_sum_s8(input, depth) + depth * p->input_offset);
        }
        for (; ch < end; ++ch, w += depth) {
            const int32_t acc = at_add_wrap(ch->acc_init, at_dot_s8(input, w, depth) + input_term);
            *output++ = at_output_s8(acc, ch->multiplier, ch->shift, q.offset, q.min, q.max);
        }
    }
}
