/* Requantization, in one place. Out of line: one copy in flash (on the Cortex-M0+, 700 bytes
 * less for a five-layer CNN than inlining it in each kernel, for 2 % more instructions). */
#include "at_common.h"

/* The left shift wraps like TFLM's int32 `x * (1 << left_shift)` (done unsigned: no UB). */
int32_t at_mbqm(int32_t x, int32_t multiplier, int32_t shift)
{
    const int32_t left = shift > 0 ? shift : 0;
    const int32_t right = shift > 0 ? 0 : -shift;
    return at_rdbpot(at_srdhm((int32_t)((uint32_t)x << left), multiplier), right);
}

int8_t at_output_s8(int32_t acc, int32_t multiplier, int32_t shift, int32_t output_offset,
                    int32_t act_min, int32_t act_max)
{
    return at_clamp_s8(at_mbqm(acc, multiplier, shift) + output_offset, act_min, act_max);
}
