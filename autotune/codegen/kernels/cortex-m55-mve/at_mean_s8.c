/* MEAN, int8 (TFLM reference_ops::QuantizedMeanOrSum, integer form), Helium: where the last kept
 * dimension is contiguous (the channels of a global average pool), eight outputs are summed in
 * int16 lanes where at most 256 values make a sum, else four in int32 lanes, each reduced
 * position one widening load; other layouts as ../at_mean_s8.c,
 * one output at a time. The sums and their requantization are the generic kernel's. */
#include "at_common.h"
#include "at_kernels.h"
#include "at_mve.h"

/* Eight contiguous outputs (predicate pred) whose sums fit int16: each reduced position one
 * widening load of eight channels into int16 lanes; the even and odd channels widened to int32,
 * requantized, clamped and stored interleaved as they were. */
AT_INLINE int8_t *mean8(const at_mean_params_t *p, const int8_t *base, mve_pred16_t pred, int8_t *output)
{
    const int32_t *r = p->reduce_dims;
    const int32_t *rs = p->reduce_strides;
    const int32x4_t lo = vdupq_n_s32(INT8_MIN), hi = vdupq_n_s32(INT8_MAX);
    int16x8_t sum = vdupq_n_s16(0);
    int32x4_t even, odd;
    int32_t r0, r1, r2, r3;
    for (r0 = 0; r0 < r[0]; ++r0) {
        for (r1 = 0; r1 < r[1]; ++r1) {
            for (r2 = 0; r2 < r[2]; ++r2) {
                const int8_t *x = base + r0 * rs[0] + r1 * rs[1] + r2 * rs[2];
                for (r3 = r[3]; r3 > 0; --r3, x += rs[3]) {
                    sum = vaddq_s16(sum, vldrbq_z_s16(x, pred));
                }
            }
        }
    }
    even = vaddq_n_s32(vmovlbq_s16(sum), p->sum_offset);
    odd = vaddq_n_s32(vmovltq_s16(sum), p->sum_offset);
    even = vaddq_n_s32(at_mve_mbqm_n(even, p->multiplier, p->shift, AT_MVE_ANY), p->output_offset);
    odd = vaddq_n_s32(at_mve_mbqm_n(odd, p->multiplier, p->shift, AT_MVE_ANY), p->output_offset);
    even = vminq_s32(vmaxq_s32(even, lo), hi);
    odd = vminq_s32(vmaxq_s32(odd, lo), hi);
    vstrbq_p_s16(output, vmovntq_s32(vreinterpretq_s16_s32(even), odd), pred);
    return output;
}

AT_MVE_FAST void at_mean_s8(const at_mean_params_t *p, const int8_t *input, int8_t *output)
{
    const int32_t *os = p->out_strides;
    const int32_t *r = p->reduce_dims;
    const int32_t *rs = p->reduce_strides;
    const int32_t lanes = os[3] == 1 ? 4 : 1; /* outputs summed at once */
    /* at most 256 values a sum: |sum| <= 32768 fits int16 lanes, eight outputs at once */
    const int32_t narrow = os[3] == 1 && r[0] * r[1] * r[2] * r[3] <= 256;
    const int32x4_t lo = vdupq_n_s32(INT8_MIN), hi = vdupq_n_s32(INT8_MAX);
    int32_t o0, o1, o2, o3, r0, r1, r2, r3;
    for (o0 = 0; o0 < p->out_dims[0]; ++o0) {
        for (o1 = 0; o1 < p->out_dims[1]; ++o1) {
            for (o2 = 0; o2 < p->out_dims[2]; ++o2) {
                for (o3 = 0; narrow && o3 < p->out_dims[3]; o3 += 8) {
                    const int32_t count = p->out_dims[3] - o3 < 8 ? p->out_dims[3] - o3 : 8;
                    const int8_t *base = input + o0 * os[0] + o1 * os[1] + o2 * os[2] + o3;
                    output = mean8(p, base, vctp16q((uint32_t)count), output) + count;
                }
                for (o3 = narrow ? p->out_dims[3] : 0; o3 < p->out_dims[3]; o3 += lanes) {
                    const int32_t count = p->out_dims[3] - o3 < lanes ? p->out_dims[3] - o3 : lanes;
                    const mve_pred16_t pred = vctp32q((uint32_t)count);
                    const int8_t *base = input + o0 * os[0] + o1 * os[1] + o2 * os[2] + o3 * os[3];
                    int32x4_t sum = vdupq_n_s32(p->sum_offset);
                    for (r0 = 0; r0 < r[0]; ++r0) {
                        for (r1 = 0; r1 < r[1]; ++r1) {
                            for (r2 = 0; r2 < r[2]; ++r2) {
                                const int8_t *x = base + r0 * rs[0] + r1 * rs[1] + r2 * rs[2];
                                for (r3 = r[3]; r3 > 0; --r3, x += rs[3]) {
                                    sum = vaddq_s32(sum, vldrbq_z_s32(x, pred));
                                }
                            }
                        }
                    }
                    sum = vaddq_n_s32(at_mve_mbqm_n(sum, p->multiplier, p->shift, AT_MVE_ANY), p->output_offset);
                    vstrbq_p_s32(output, vminq_s32(vmaxq_s32(sum, lo), hi), pred);
                    output += count;
                }
            }
        }
    }
}
