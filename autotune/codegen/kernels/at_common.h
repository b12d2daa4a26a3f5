/* Fixed-point helpers shared by the autotune kernels.
 *
 * Bit-exact with TFLite Micro's common.h / gemmlowp fixed point (the double-rounding
 * MultiplyByQuantizedMultiplier, TFLITE_SINGLE_ROUNDING undefined, as TFLM builds by default).
 * Requantization is at_mbqm / at_output_s8 here and nowhere else.
 */
#ifndef AT_COMMON_H
#define AT_COMMON_H

#include <stdint.h>

#include "at_kernels.h"

#if defined(__GNUC__)
#define AT_INLINE static inline __attribute__((always_inline))
#define AT_NOINLINE __attribute__((noinline))
#else
#define AT_INLINE static inline
#define AT_NOINLINE
#endif

/* floor((a * b + nudge) / 2^31) for a, b <= 2^31 with a * b + nudge < 2^63: the high bits of
 * an exact unsigned 64-bit product. */
#if defined(__ARM_ARCH_6M__) || defined(AT_SPLIT_MULTIPLY)
/* ARMv6-M (Cortex-M0+) has no 32 x 32 -> 64 multiply; GCC would call the general 64 x 64
 * __aeabi_lmul and spill int64 values to the stack. Here the product is built from four
 * 16 x 16 -> 32 MULS in two 32-bit words (hi:lo). AT_SPLIT_MULTIPLY tests this form on a host. */
AT_INLINE uint32_t at_mul_shr31(uint32_t a, uint32_t b, uint32_t nudge)
{
    const uint32_t ah = a >> 16, al = a & 0xFFFFu, bh = b >> 16, bl = b & 0xFFFFu;
    const uint32_t mid = ah * bl + al * bh; /* each term < 2^31 as ah, bh <= 2^15: no carry */
    uint32_t lo = al * bl, hi = ah * bh + (mid >> 16), t;
    t = lo + (mid << 16);
    hi += t < lo; /* carry */
    lo = t + nudge;
    hi += lo < t;
    return (hi << 1) | (lo >> 31);
}
#else
AT_INLINE uint32_t at_mul_shr31(uint32_t a, uint32_t b, uint32_t nudge)
{
    return (uint32_t)(((uint64_t)a * b + nudge) >> 31);
}
#endif

AT_INLINE uint32_t at_abs_u32(int32_t x)
{
    return x < 0 ? 0u - (uint32_t)x : (uint32_t)x;
}

/* gemmlowp SaturatingRoundingDoublingHighMul: (a * b + nudge) / 2^31, the division truncating,
 * nudge 2^30 for a product >= 0 and 1 - 2^30 below. In magnitudes: floor((|a b| + 2^30) / 2^31),
 * and for a negative product floor((|a b| + 2^30 - 1) / 2^31). */
AT_INLINE int32_t at_srdhm(int32_t a, int32_t b)
{
    const uint32_t neg = (a < 0) != (b < 0);
    uint32_t mag;
    if (a == b && a == INT32_MIN) {
        return INT32_MAX;
    }
    mag = at_mul_shr31(at_abs_u32(a), at_abs_u32(b), (1u << 30) - neg); /* < 2^31 */
    return (int32_t)(neg ? 0u - mag : mag);
}

/* gemmlowp RoundingDivideByPOT: x / 2^exponent rounded to nearest, ties away from zero.
 * exponent in [0, 31]. */
AT_INLINE int32_t at_rdbpot(int32_t x, int32_t exponent)
{
    const int32_t mask = (int32_t)((1u << exponent) - 1u);
    const int32_t remainder = x & mask;
    const int32_t threshold = (mask >> 1) + (x < 0);
    return (x >> exponent) + (remainder > threshold);
}

/* TFLM MultiplyByQuantizedMultiplier: x * multiplier * 2^(shift - 31) for a multiplier >= 0,
 * RoundingDivideByPOT(SaturatingRoundingDoublingHighMul(x << left, multiplier), right).
 * Both round symmetrically about zero but for SRDHM's negative halves, so the work is done on
 * magnitudes and the sign put back at the end; ties away from zero in RoundingDivideByPOT are
 * halves rounded up in magnitude. The left shift wraps like TFLM's int32 `x * (1 << left)`. */
AT_INLINE int32_t at_mbqm(int32_t x, int32_t multiplier, int32_t shift)
{
    uint32_t neg, mag;
    if (shift > 0) {
        x = (int32_t)((uint32_t)x << shift);
        shift = 0;
    }
    neg = x < 0 ? 0xFFFFFFFFu : 0u; /* |x| = (x ^ neg) - neg, and back */
    mag = at_mul_shr31(((uint32_t)x ^ neg) - neg, (uint32_t)multiplier, (1u << 30) + neg);
    if (shift < 0) { /* mag < 2^31: the sum fits */
        mag = (mag + (1u << (-shift - 1))) >> -shift;
    }
    return (int32_t)((mag ^ neg) - neg);
}

/* a + b as two's complement int32 arithmetic: at_channel_t.acc_init may have wrapped, the sum is
 * TFLM's accumulator again. (The unsigned -> int32 conversion is modular in GCC and Clang.) */
AT_INLINE int32_t at_add_wrap(int32_t a, int32_t b)
{
    return (int32_t)((uint32_t)a + (uint32_t)b);
}

AT_INLINE int8_t at_clamp_s8(int32_t x, int32_t lo, int32_t hi)
{
    return (int8_t)(x < lo ? lo : x > hi ? hi : x);
}

/* out[c] = the largest of count pixels of `channels` values at x, clamped to [lo, hi]: a max
 * pool over a window gathered pixel after pixel. */
AT_INLINE void at_max_pixels_s8(const int8_t *x, int32_t count, int32_t channels, int32_t lo, int32_t hi,
                                int8_t *out)
{
    int32_t c, k;
    for (c = 0; c < channels; ++c) {
        int32_t max = x[c];
        for (k = 1; k < count; ++k) {
            max = x[k * channels + c] > max ? x[k * channels + c] : max;
        }
        out[c] = at_clamp_s8(max, lo, hi);
    }
}

/* An int32 accumulator to an int8 output: requantize, add the output zero point, clamp to
 * the fused activation range (the tail of every TFLM int8 conv / fully connected kernel).
 * MultiplyByQuantizedMultiplier keeps the sign of the shifted accumulator, so a negative one
 * ends at act_min whenever act_min >= the zero point (ReLU): that case skips the multiply. */
AT_INLINE int8_t at_output_s8(int32_t acc, int32_t multiplier, int32_t shift,
                              int32_t output_offset, int32_t act_min, int32_t act_max)
{
    if (shift > 0) { /* at_mbqm's left shift, done first for the sign test */
        acc = (int32_t)((uint32_t)acc << shift);
        shift = 0;
    }
    if (acc < 0 && act_min >= output_offset) {
        return (int8_t)act_min;
    }
    return at_clamp_s8(at_mbqm(acc, multiplier, shift) + output_offset, act_min, act_max);
}

/* sum x[i] * w[i] over n contiguous values; and over values `step` apart in both (depthwise
 * taps in TFLite's [h][w][channel] filter layout). Out of line, in at_common.c. */
int32_t at_dot_s8(const int8_t *x, const int8_t *w, int32_t n);
int32_t at_dot_step_s8(const int8_t *x, const int8_t *w, int32_t n, int32_t step);

/* The input window of output pixel (oy, ox) of a convolution, laid out as its filter reads it:
 * [filter_h][filter_w][in_c * repeat], each input channel `repeat` times in a row. In place,
 * inside the input, when win->in_place says that is the layout there (one filter row of
 * adjacent columns, repeat 1). Else copied to scratch, a tap in the padding reading the input
 * zero point: TFLM adds nothing for such a tap, and w * (zero point + input_offset) is nothing
 * too. So one dot product per output channel covers every window. */
const int8_t *at_window_s8(const at_window_t *win, const int8_t *input, int32_t oy, int32_t ox,
                           int8_t *scratch);

/* The scratch at_window_s8 needs over an out_h x out_w output: one window, or none if every
 * window is read in place. */
int32_t at_window_buffer_size(const at_window_t *win, int32_t out_h, int32_t out_w);

AT_INLINE int32_t at_sum_s8(const int8_t *w, int32_t n)
{
    int32_t sum = 0;
    for (; n > 0; --n) {
        sum += *w++;
    }
    return sum;
}

/* AVERAGE_POOL_2D's division, TFLM's (sum + count / 2) / count for sum > 0, (sum - count / 2) /
 * count otherwise, truncating: halves away from zero, symmetric, so computed on the magnitude.
 * The Cortex-M0+ has no divider: a full window multiplies by the generator's reciprocal, exact
 * for every sum it can have. */
AT_INLINE int32_t at_rounded_average(int32_t sum, int32_t count, uint32_t reciprocal)
{
    const uint32_t n = at_abs_u32(sum) + (uint32_t)count / 2;
    const int32_t q = (int32_t)(reciprocal != 0 ? (n * reciprocal) >> 24 : n / (uint32_t)count);
    return sum < 0 ? -q : q;
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
