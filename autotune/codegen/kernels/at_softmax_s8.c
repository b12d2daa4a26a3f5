/* SOFTMAX, int8 in and out (TFLM reference_ops::Softmax, gemmlowp fixed point). exp() comes
 * from a table built at generation time; the reciprocal of the sum is computed here exactly as
 * TFLM's GetReciprocal (gemmlowp one_over_one_plus_x_for_x_in_0_1). */
#include "at_common.h"
#include "at_kernels.h"

static int32_t count_leading_zeros(uint32_t x)
{
    int32_t n = 0;
    for (; !(x & 0x80000000u); x <<= 1) {
        ++n;
    }
    return n;
}

/* gemmlowp SaturatingRoundingMultiplyByPOT for a positive exponent. */
static int32_t saturating_shift_left(int32_t x, int32_t exponent)
{
    const int32_t threshold = (int32_t)((1u << (31 - exponent)) - 1u);
    if (x > threshold) {
        return INT32_MAX;
    }
    if (x < -threshold) {
        return INT32_MIN;
    }
    return (int32_t)((uint32_t)x << exponent);
}

/* 1 / (1 + a) for a Q0.31 a in [0, 1): Newton-Raphson in Q2.29, result Q0.31. */
static int32_t one_over_one_plus_x(int32_t a)
{
    const int64_t sum = (int64_t)a + INT32_MAX;                 /* RoundingHalfSum(a, 1) */
    const int32_t half_denominator = (int32_t)((sum + (sum >= 0 ? 1 : -1)) / 2);
    int32_t x = 1515870810 + at_srdhm(half_denominator, -1010580540); /* 48/17 - 32/17 d */
    int32_t i;
    for (i = 0; i < 3; ++i) {
        const int32_t one_minus = (1 << 29) - at_srdhm(half_denominator, x);
        x += saturating_shift_left(at_srdhm(x, one_minus), 2);
    }
    return saturating_shift_left(x, 1);
}

void at_softmax_s8(const at_softmax_params_t *p, const int8_t *input, int8_t *output)
{
    int32_t row, c;
    for (row = 0; row < p->rows; ++row, input += p->depth) {
        int32_t max = INT8_MIN, sum = 0, headroom, bits, reciprocal;
        for (c = 0; c < p->depth; ++c) {
            max = input[c] > max ? input[c] : max;
        }
        for (c = 0; c < p->depth; ++c) { /* in Q12.19: gemmlowp Rescale<12> */
            sum += at_rdbpot(p->exp_table[max - input[c]], 12);
        }
        /* GetReciprocal(sum, 12): sum >= exp(0) in Q12.19, so sum > 0 */
        headroom = count_leading_zeros((uint32_t)sum);
        bits = 12 - headroom;
        reciprocal = one_over_one_plus_x((int32_t)(((uint32_t)sum << headroom) - 0x80000000u));
        for (c = 0; c < p->depth; ++c) {
            const int32_t e = at_srdhm(reciprocal, p->exp_table[max - input[c]]);
            *output++ = at_clamp_s8(at_rdbpot(e, bits + 23) - 128, INT8_MIN, INT8_MAX);
        }
    }
}
