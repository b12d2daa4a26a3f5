/* CONCATENATION, int8 (TFLM reference_ops::Concatenation): a copy per input and outer index; an
 * input given as NULL leaves its slot of the output as it is (a concatenation done one input at
 * a time, each as soon as it is computed). A copy may overlap its source, starting before it
 * (autotune.ops.layout.slot_lead): memmove.
 */
#include <string.h>

#include "at_kernels.h"

void at_concat_s8(const at_concat_params_t *p, const int8_t *const *inputs, int8_t *output)
{
    int32_t o, i;
    for (o = 0; o < p->outer; ++o) {
        for (i = 0; i < p->count; ++i) {
            if (inputs[i]) {
                memmove(output, inputs[i] + o * p->sizes[i], (size_t)p->sizes[i]);
            }
            output += p->sizes[i];
        }
    }
}
