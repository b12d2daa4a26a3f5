/* STRIDED_SLICE and TRANSPOSE, int8 (TFLM reference_ops::StridedSlice, reference_ops::Transpose):
 * every output in order, each read from input[offset + sum of index * stride], the slice's start
 * and steps, or the permutation, folded into the offset and strides ahead of time. */
#include "at_kernels.h"

void at_gather_s8(const at_gather_params_t *p, const int8_t *input, int8_t *output)
{
    const int32_t *d = p->dims;
    const int32_t *s = p->strides;
    int32_t i0, i1, i2, i3;
    for (i0 = 0; i0 < d[0]; ++i0) {
        for (i1 = 0; i1 < d[1]; ++i1) {
            for (i2 = 0; i2 < d[2]; ++i2) {
                const int8_t *x = input + p->offset + i0 * s[0] + i1 * s[1] + i2 * s[2];
                for (i3 = 0; i3 < d[3]; ++i3, x += s[3]) {
                    *output++ = *x;
                }
            }
        }
    }
}
