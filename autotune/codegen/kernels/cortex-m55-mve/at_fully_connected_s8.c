/* FULLY_CONNECTED, int8 (TFLM reference_integer_ops::FullyConnected and
 * FullyConnectedPerChannel), Helium: four output units at a time share each 16-byte load of the
 * input row (VMLADAVA, at_mve_rows). The sums are those of ../at_fully_connected_s8.c. Dense
 * layers are short: requantization mode AT_MVE_ANY costs less than finding a cheaper one. */
#include "at_common.h"
#include "at_kernels.h"
#include "at_mve.h"

void at_fully_connected_s8(const at_fully_connected_params_t *p, const int8_t *input,
                           int8_t *output)
{
    const at_output_t q = p->output_quant; /* a copy: the stores to output could alias p's */
    const int32_t depth = p->accum_depth;
    int32_t b;
    for (b = 0; b < p->batches; ++b, input += depth) {
        int32_t input_term = 0; /* filter_offset * sum(x + input_offset); int8 filters have 0 */
        if (p->filter_offset != 0) {
            input_term = p->filter_offset * (at_sum_s8(input, depth) + depth * p->input_offset);
        }
        output = at_mve_rows(input, p->filter, depth, p->out_depth, p->channels, input_term, &q, output,
                             AT_MVE_ANY);
    }
}
