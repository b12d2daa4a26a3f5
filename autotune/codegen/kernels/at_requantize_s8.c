/* QUANTIZE int8 -> int8 (TFLM reference_ops::Requantize). */
#include "at_common.h"
#include "at_kernels.h"

void at_requantize_s8(const at_requantize_params_t *p, const int8_t *input, int8_t *output)
{
    int32_t i;
    for (i = 0; i < p->size; ++i) {
        const int32_t q = at_mbqm(input[i] - p->input_zero_point, p->multiplier, p->shift);
        output[i] = at_clamp_s8(q + p->output_zero_point, INT8_MIN, INT8_MAX);
    }
}
