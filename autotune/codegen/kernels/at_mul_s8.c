/* MUL, int8, with broadcasting (TFLM reference_integer_ops::MulElementwise over
 * BroadcastMul4DSlow; without broadcasting the generator passes dims {1, 1, 1, size}). */
#include "at_common.h"
#include "at_kernels.h"

void at_mul_s8(const at_mul_params_t *params, const int8_t *input1, const int8_t *input2,
               int8_t *output)
{
    const at_mul_params_t copy = *params; /* the stores to output could alias the params */
    const at_mul_params_t *const p = &copy;
    const int32_t *d = p->dims;
    int32_t i0, i1, i2, i3;
    for (i0 = 0; i0 < d[0]; ++i0) {
        for (i1 = 0; i1 < d[1]; ++i1) {
            for (i2 = 0; i2 < d[2]; ++i2) {
                const int8_t *x1 = input1 + i0 * p->strides1[0] + i1 * p->strides1[1]
                                   + i2 * p->strides1[2];
                const int8_t *x2 = input2 + i0 * p->strides2[0] + i1 * p->strides2[1]
                                   + i2 * p->strides2[2];
                for (i3 = 0; i3 < d[3]; ++i3, x1 += p->strides1[3], x2 += p->strides2[3]) {
                    const int32_t product = (*x1 + p->input1_offset) * (*x2 + p->input2_offset);
                    const int32_t q = at_mbqm(product, p->multiplier, p->shift) + p->output_offset;
                    *output++ = at_clamp_s8(q, p->act_min, p->act_max);
                }
            }
        }
    }
}
