/* ADD and SUB, int8, with broadcasting (TFLM reference_integer_ops::AddFunc over
 * BroadcastAdd6DSlow, reference_ops::SubElementwise over BroadcastQuantSubSlow; without
 * broadcasting the generator passes dims {1, 1, 1, size} and unit strides).
 * MultiplyByQuantizedMultiplierSmallerThanOneExp is at_mbqm for the shifts <= 0 they use. */
#include "at_common.h"
#include "at_kernels.h"

static int8_t add_one(const at_add_params_t *p, int32_t x1, int32_t x2, int32_t sign)
{
    const int32_t s1 = (int32_t)((uint32_t)(x1 + p->input1_offset) << p->left_shift);
    const int32_t s2 = (int32_t)((uint32_t)(x2 + p->input2_offset) << p->left_shift);
    const int32_t sum = at_mbqm(s1, p->input1_multiplier, p->input1_shift)
                        + sign * at_mbqm(s2, p->input2_multiplier, p->input2_shift);
    return at_clamp_s8(at_mbqm(sum, p->output_multiplier, p->output_shift) + p->output_offset,
                       p->act_min, p->act_max);
}

static void add_or_sub(const at_add_params_t *params, const int8_t *input1, const int8_t *input2,
                       int8_t *output, int32_t sign)
{
    const at_add_params_t copy = *params; /* the stores to output could alias the params */
    const at_add_params_t *const p = &copy;
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
                    *output++ = add_one(p, *x1, *x2, sign);
                }
            }
        }
    }
}

void at_add_s8(const at_add_params_t *p, const int8_t *input1, const int8_t *input2, int8_t *output)
{
    add_or_sub(p, input1, input2, output, 1);
}

void at_sub_s8(const at_add_params_t *p, const int8_t *input1, const int8_t *input2, int8_t *output)
{
    add_or_sub(p, input1, input2, output, -1);
}
