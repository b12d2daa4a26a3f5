/* QUANTIZE int8 -> int8 (TFLM reference_ops::Requantize), Helium: four values at a time. */
#include "at_common.h"
#include "at_kernels.h"
#include "at_mve.h"

AT_MVE_FAST void at_requantize_s8(const at_requantize_params_t *p, const int8_t *input,
                                  int8_t *output)
{
    const int32x4_t multiplier = vdupq_n_s32(p->multiplier);
    const int32x4_t shift = vdupq_n_s32(p->shift);
    int32_t i;
    for (i = 0; i < p->size; i += 4) {
        const mve_pred16_t pred = vctp32q((uint32_t)(p->size - i));
        const int32x4_t x = vsubq_n_s32(vldrbq_z_s32(input + i, pred), p->input_zero_point);
        const int32x4_t y = vaddq_n_s32(at_mve_mbqm(x, multiplier, shift, AT_MVE_ANY), p->output_zero_point);
        vstrbq_p_s32(output + i, vminq_s32(vmaxq_s32(y, vdupq_n_s32(INT8_MIN)), vdupq_n_s32(INT8_MAX)),
                     pred);
    }
}
