/* FULLY_CONNECTED, int8 (TFLM reference_integer_ops::FullyConnected and FullyConnectedPerChannel),
 * for the Cortex-M0+: the sums of the generic kernel (../at_fully_connected_s8.c), output rows
 * four at a time (at_m0_dot4: one load of each input byte for four rows of the filter). */
#include "at_common.h"
#include "at_kernels.h"
#include "at_m0plus.h"

void __attribute__((optimize("O2"))) at_fully_connected_s8(const at_fully_connected_params_t *p,
                                                            const int8_t *input, int8_t *output)
{
    const at_output_t q = p->output_quant; /* a copy: the stores to output could alias p's */
    const int32_t depth = p->accum_depth;
    int32_t b, k;
    for (b = 0; b < p->batches; ++b, input += depth) {
        const at_channel_t *ch = p->channels;
        const at_channel_t *const end = ch + p->out_depth;
        const int8_t *w = p->filter;
        int32_t input_term = 0; /* filter_offset * sum(x + input_offset); int8 filters have 0 */
        if (p->filter_offset != 0) {
            input_term = p->filter_offset * (at_sum_s8(input, depth) + depth * p->input_offset);
        }
        for (; end - ch >= 4; ch += 4, w += 4 * depth, output += 4) {
            at_m0_sums_t s = {{input_term, input_term, input_term, input_term}};
            at_m0_dot4(input, w, depth, depth, &s);
            for (k = 0; k < 4; ++k) {
                output[k] = at_m0_output(s.s[k], ch + k, q.offset, q.min, q.max);
            }
        }
        for (; ch < end; ++ch, w += depth) {
            *output++ = at_m0_output(at_add_wrap(at_dot_s8(input, w, depth), input_term), ch, q.offset, q.min,
                                     q.max);
        }
    }
}
