/* PAD with a constant, int8 (TFLM reference_ops::Pad): rows of the innermost dimension are
 * filled or copied whole. */
#include <string.h>

#include "at_kernels.h"

void at_pad_s8(const at_pad_params_t *p, const int8_t *input, int8_t *output)
{
    const int32_t *in = p->in_dims;
    const int32_t *out = p->out_dims;
    const int32_t *before = p->before;
    const size_t after = (size_t)(out[3] - before[3] - in[3]);
    int32_t d0, d1, d2;
    for (d0 = 0; d0 < out[0]; ++d0) {
        const int32_t i0 = d0 - before[0];
        for (d1 = 0; d1 < out[1]; ++d1) {
            const int32_t i1 = d1 - before[1];
            for (d2 = 0; d2 < out[2]; ++d2, output += out[3]) {
                const int32_t i2 = d2 - before[2];
                if (i0 < 0 || i0 >= in[0] || i1 < 0 || i1 >= in[1] || i2 < 0 || i2 >= in[2]) {
                    memset(output, p->pad_value, (size_t)out[3]);
                    continue;
                }
                memset(output, p->pad_value, (size_t)before[3]);
                memcpy(output + before[3], input + ((i0 * in[1] + i1) * in[2] + i2) * in[3],
                       (size_t)in[3]);
                memset(output + before[3] + in[3], p->pad_value, after);
            }
        }
    }
}
