/* FULLY_CONNECTED, int8 (TFLM reference_integer_ops::FullyConnected and FullyConnectedPerChannel),
 * for the Cortex-M0+: the sums of the generic kernel (../at_fully_connected_s8.c) by chunks of
 * output rows, summed (at_m0_dot_rows) then requantized (at_m0_requantize, from the rows'
 * at_channel_t as they are: a row requantizes once per batch). */
#include "at_common.h"
#include "at_kernels.h"
#include "at_m0plus.h"

void at_fully_connected_s8(const at_fully_connected_params_t *p, const int8_t *input, int8_t *output)
{
    const int32_t depth = p->accum_depth;
    int32_t sums[AT_M0_CHUNK];
    int32_t b, c, k, chunk;
    for (b = 0; b < p->batches; ++b, input += depth) {
        int32_t input_term = 0; /* filter_offset * sum(x + input_offset); int8 filters have 0 */
        if (p->filter_offset != 0) {
            input_term = p->filter_offset * (at_sum_s8(input, depth) + depth * p->input_offset);
        }
        for (c = 0; c < p->out_depth; c += chunk, output += chunk) {
            chunk = p->out_depth - c < AT_M0_CHUNK ? p->out_depth - c : AT_M0_CHUNK;
            at_m0_dot_rows(input, p->filter + c * depth, depth, chunk, sums);
            for (k = 0; input_term != 0 && k < chunk; ++k) {
                sums[k] = at_add_wrap(sums[k], input_term);
            }
            at_m0_requantize(sums, p->channels + c, &p->output_quant, output, chunk, 1);
        }
    }
}
