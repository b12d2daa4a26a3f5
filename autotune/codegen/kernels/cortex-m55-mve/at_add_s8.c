/* ADD and SUB, int8, with broadcasting (TFLM reference_integer_ops::AddFunc over
 * BroadcastAdd6DSlow, reference_ops::SubElementwise over BroadcastQuantSubSlow), Helium: four
 * outputs of the innermost dimension at a time. Inputs are gathered with their strides (0 along
 * a broadcast dimension), so one loop serves every broadcast; SUB negates the second input's
 * requantized lanes (the generic file's sign). */
#include "at_common.h"
#include "at_kernels.h"
#include "at_mve.h"

/* The four lanes of one input: (x + offset) << left_shift, then requantized. */
AT_INLINE int32x4_t scaled(const int8_t *x, uint32x4_t offsets, mve_pred16_t pred, int32_t offset,
                           int32_t left_shift, int32x4_t multiplier, int32x4_t shift)
{
    const int32x4_t v = vaddq_n_s32(vldrbq_gather_offset_z_s32(x, offsets, pred), offset);
    return at_mve_mbqm(vshlq_s32(v, vdupq_n_s32(left_shift)), multiplier, shift, AT_MVE_ANY);
}

AT_MVE_FAST static void add_or_sub(const at_add_params_t *params, const int8_t *input1,
                                   const int8_t *input2, int8_t *output, int32_t sign)
{
    const at_add_params_t p = *params; /* the stores to output could alias the params */
    const int32x4_t m1 = vdupq_n_s32(p.input1_multiplier), s1 = vdupq_n_s32(p.input1_shift);
    const int32x4_t m2 = vdupq_n_s32(p.input2_multiplier), s2 = vdupq_n_s32(p.input2_shift);
    const int32x4_t mo = vdupq_n_s32(p.output_multiplier), so = vdupq_n_s32(p.output_shift);
    const uint32x4_t lanes = vidupq_n_u32(0u, 1);
    const uint32x4_t step1 = vmulq_n_u32(lanes, (uint32_t)p.strides1[3]);
    const uint32x4_t step2 = vmulq_n_u32(lanes, (uint32_t)p.strides2[3]);
    const int32_t *d = p.dims;
    int32_t i0, i1, i2, i3;
    for (i0 = 0; i0 < d[0]; ++i0) {
        for (i1 = 0; i1 < d[1]; ++i1) {
            for (i2 = 0; i2 < d[2]; ++i2) {
                const int8_t *x1 = input1 + i0 * p.strides1[0] + i1 * p.strides1[1] + i2 * p.strides1[2];
                const int8_t *x2 = input2 + i0 * p.strides2[0] + i1 * p.strides2[1] + i2 * p.strides2[2];
                for (i3 = 0; i3 < d[3]; i3 += 4, x1 += 4 * p.strides1[3], x2 += 4 * p.strides2[3]) {
                    const mve_pred16_t pred = vctp32q((uint32_t)(d[3] - i3));
                    const int32x4_t sum = vaddq_s32(
                        scaled(x1, step1, pred, p.input1_offset, p.left_shift, m1, s1),
                        vmulq_n_s32(scaled(x2, step2, pred, p.input2_offset, p.left_shift, m2, s2), sign));
                    const int32x4_t y = vaddq_n_s32(at_mve_mbqm(sum, mo, so, AT_MVE_ANY), p.output_offset);
                    vstrbq_p_s32(output, vminq_s32(vmaxq_s32(y, vdupq_n_s32(p.act_min)), vdupq_n_s32(p.act_max)),
                                 pred);
                    output += d[3] - i3 < 4 ? d[3] - i3 : 4;
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
