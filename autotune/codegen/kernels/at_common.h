/* Fixed-point helpers shared by the autotune kernels.
 *
 * Bit-exact with TFLite Micro's common.h / gemmlowp fixed point (the double-rounding
 * MultiplyByQuantizedMultiplier, TFLITE_SINGLE_ROUNDING undefined, as TFLM builds by default).
 * Requantization is at_mbqm / at_output_s8 in at_common.c and nowhere else.
 */
#ifndef AT_COMMON_H
#define AT_COMMON_H

#include <stdint.h>

#if defined(__GNUC__)
#define AT_INLINE static inline __attribute__((always_inline))
#else
#define AT_INLINE static inline
#endif

/* gemmlowp SaturatingRoundingDoublingHighMul: round(a * b / 2^31), ties away from zero,
 * from the exact 64-bit product: (a * b + nudge) / 2^31, the division truncating as in C. */
#if defined(__ARM_ARCH_6M__) || defined(AT_SPLIT_MULTIPLY)
/* ARMv6-M (Cortex-M0+) has no 32 x 32 -> 64 multiply; GCC would call the general 64 x 64
 * __aeabi_lmul and spill int64 values to the stack. Here the product is built exactly from four
 * 16 x 16 -> 32 MULS in two 32-bit words (hi:lo). AT_SPLIT_MULTIPLY tests this form on a host. */
AT_INLINE int32_t at_srdhm(int32_t a, int32_t b)
{
    const int32_t ah = a >> 16, bh = b >> 16; /* signed high halves */
    const uint32_t al = (uint32_t)a & 0xFFFFu, bl = (uint32_t)b & 0xFFFFu;
    const int32_t m1 = ah * (int32_t)bl, m2 = (int32_t)al * bh; /* |m| < 2^31 */
    int32_t hi = ah * bh;
    uint32_t lo = al * bl, t;
    t = lo + ((uint32_t)m1 << 16); /* + m1 * 2^16 */
    hi += (m1 >> 16) + (t < lo);
    lo = t;
    t = lo + ((uint32_t)m2 << 16); /* + m2 * 2^16 */
    hi += (m2 >> 16) + (t < lo);
    lo = t;
    if (hi >= 0) { /* + nudge: 2^30 for a product >= 0, 1 - 2^30 below */
        t = lo + 0x40000000u;
        hi += t < lo;
    } else {
        t = lo + 0xC0000001u;
        hi += (t < lo) - 1;
    }
    lo = t;
    if (a == b && a == INT32_MIN) {
        return INT32_MAX;
    }
    /* floor(hi:lo / 2^31), plus one for a negative value with a remainder: truncation */
    return (int32_t)(((uint32_t)hi << 1) | (lo >> 31)) + (hi < 0 && (lo & 0x7FFFFFFFu) != 0);
}
#else
AT_INLINE int32_t at_srdhm(int32_t a, int32_t b)
{
    const int64_t ab = (int64_t)a * b;
    const int64_t nudge = ab >= 0 ? (1 << 30) : 1 - (1 << 30);
    if (a == b && a == INT32_MIN) {
        return INT32_MAX;
    }
    return (int32_t)((ab + nudge) / ((int64_t)1 << 31));
}
#endif

/* gemmlowp RoundingDivideByPOT: x / 2^exponent rounded to nearest, ties away from zero.
 * exponent in [0, 31]. */
AT_INLINE int32_t at_rdbpot(int32_t x, int32_t exponent)
{
    const int32_t mask = (int32_t)((1u << exponent) - 1u);
    const int32_t remainder = x & mask;
    const int32_t threshold = (mask >> 1) + (x < 0);
    return (x >> exponent) + (remainder > threshold);
}

/* TFLM MultiplyByQuantizedMultiplier: x * multiplier * 2^(shift - 31), multiplier a q31. */
int32_t at_mbqm(int32_t x, int32_t multiplier, int32_t shift);

AT_INLINE int8_t at_clamp_s8(int32_t x, int32_t lo, int32_t hi)
{
    return (int8_t)(x < lo ? lo : x > hi ? hi : x);
}

/* An int32 accumulator to an int8 output: requantize, add the output zero point, clamp to
 * the fused activation range (the tail of every TFLM int8 conv / fully connected kernel). */
int8_t at_output_s8(int32_t acc, int32_t multiplier, int32_t shift, int32_t output_offset,
                    int32_t act_min, int32_t act_max);

/* sum x[i] * w[i] over n contiguous values, unrolled by four (about 7 Thumb-1 instructions
 * per MAC at -Os; GCC turns other loop shapes into the same or worse). */
AT_INLINE int32_t at_dot_s8(const int8_t *x, const int8_t *w, int32_t n)
{
    int32_t acc = 0;
    for (; n >= 4; n -= 4, x += 4, w += 4) {
        acc += x[0] * w[0] + x[1] * w[1] + x[2] * w[2] + x[3] * w[3];
    }
    for (; n > 0; --n) {
        acc += *x++ * *w++;
    }
    return acc;
}

AT_INLINE int32_t at_sum_s8(const int8_t *w, int32_t n)
{
    int32_t sum = 0;
    for (; n > 0; --n) {
        sum += *w++;
    }
    return sum;
}

/* The filter taps t in [*begin, *end) that land inside the input: 0 <= origin + t * dilation
 * < size. Only border pixels step; no division (a library call on the Cortex-M0+). */
AT_INLINE void at_tap_range(int32_t origin, int32_t dilation, int32_t taps, int32_t size,
                            int32_t *begin, int32_t *end)
{
    int32_t b = 0;
    int32_t e = taps;
    while (b < e && origin + b * dilation < 0) {
        ++b;
    }
    while (e > b && origin + (e - 1) * dilation >= size) {
        --e;
    }
    *begin = b;
    *end = e;
}

#endif /* AT_COMMON_H */
