/* CONCATENATION, int8 (TFLM reference_ops::Concatenation): a copy per input and outer index;
 * or one input's copies alone (at_concat_slot_s8), which may overlap their source, starting
 * before it (autotune.ops.layout.slot_lead): memmove. */
#include <string.h>

#include "at_kernels.h"

void at_concat_s8(const at_concat_params_t *p, const int8_t *const *inputs, int8_t *output)
{
    int32_t o, i;
    for (o = 0; o < p->outer; ++o) {
        for (i = 0; i < p->count; ++i) {
            memcpy(output, inputs[i] + o * p->sizes[i], (size_t)p->sizes[i]);
            output += p->sizes[i];
        }
    }
}

void at_concat_slot_s8(const at_concat_params_t *p, int32_t slot, const int8_t *input, int8_t *output)
{
    const int32_t size = p->sizes[slot];
    int32_t total = 0, i, o;
    for (i = 0; i < p->count; ++i) {
        total += p->sizes[i];
        output += i < slot ? p->sizes[i] : 0;
    }
    for (o = 0; o < p->outer; ++o, input += size, output += total) {
        memmove(output, input, (size_t)size);
    }
}
