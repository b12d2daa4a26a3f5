/* MEAN, int8 (TFLM reference_ops::QuantizedMeanOrSum, integer form): sum each reduced box,
 * then requantize. No scratch: each output sums its own box, the innermost loop along the
 * reduced dimension with the smallest stride. */
#include "at_common.h"
#include "at_kernels.h"

/* sum of n values `step` apart; out of line, as inlined GCC spills the caller's loop state
 * into this loop on the Cortex-M0+ (about 8 cycles a value) */
static AT_NOINLINE int32_t sum_strided(const int8_t *x, int32_t step, int32_t n)
{
    const int32_t last = (n - 1) * step;
    int32_t sum = 0;
    int32_t i = -last;
    if (n > 0) {
        x += last;
        do {
            sum += x[i];
            i += step;
        } while (i <= 0);
    }
    return sum;
}

void at_mean_s8(const at_mean_params_t *p, const int8_t *input, int8_t *output)
{
    const int32_t *os = p->out_strides;
    const int32_t *r = p->reduce_dims;
    const int32_t *rs = p->reduce_strides;
    int32_t o0, o1, o2, o3, r0, r1, r2;
    for (o0 = 0; o0 < p->out_dims[0]; ++o0) {
        for (o1 = 0; o1 < p->out_dims[1]; ++o1) {
            for (o2 = 0; o2 < p->out_dims[2]; ++o2) {
                for (o3 = 0; o3 < p->out_dims[3]; ++o3) {
                    const int8_t *base = input + o0 * os[0] + o1 * os[1] + o2 * os[2] + o3 * os[3];
                    int32_t sum = p->sum_offset;
                    for (r0 = 0; r0 < r[0]; ++r0) {
                        for (r1 = 0; r1 < r[1]; ++r1) {
                            for (r2 = 0; r2 < r[2]; ++r2) {
                                sum += sum_strided(base + r0 * rs[0] + r1 * rs[1] + r2 * rs[2],
                                                   rs[3], r[3]);
                            }
                        }
                    }
                    *output++ = at_output_s8(sum, p->multiplier, p->shift, p->output_offset,
                                             INT8_MIN, INT8_MAX);
                }
            }
        }
    }
}
