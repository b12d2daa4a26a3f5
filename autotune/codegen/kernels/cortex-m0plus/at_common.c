/* The generic out-of-line helpers (../at_common.c) and the Cortex-M0+ kernels' own. */
#include "../at_common.c"

#include "at_m0plus.h"

void at_m0_requantize(const int32_t *sums, const at_channel_t *ch, const at_output_t *q, int8_t *out,
                      int32_t count)
{
    const int32_t offset = q->offset, act_min = q->min, act_max = q->max;
    const int8_t *const end = out + count;
    do {
        *out++ = at_m0_output(*sums++, ch++, offset, act_min, act_max);
    } while (out < end);
}
