/* Helium (MVE) helpers of the cortex-m55-mve kernels: requantization of four int32 lanes at a
 * time, bit-exact with at_mbqm / at_output_s8 in ../at_common.h.
 *
 * VQRDMULH is gemmlowp's SaturatingRoundingDoublingHighMul exactly (for a product >= 0 both are
 * floor((a b + 2^30) / 2^31); below, both round a remainder of exactly 2^30 toward zero, and
 * both saturate INT32_MIN * INT32_MIN). VRSHL by -e rounds halves up; RoundingDivideByPOT
 * rounds them away from zero, so a negative lane first gets -1 (saturating), as TFLM's NEON
 * and CMSIS-NN's MVE paths do.
 */
#ifndef AT_MVE_H
#define AT_MVE_H

#include <arm_mve.h>
#include <stdint.h>

#include "at_common.h"

#if !defined(__ARM_FEATURE_MVE)
#error "the cortex-m55-mve kernels need Helium: compile with -mcpu=cortex-m55"
#endif

/* The kernels' loops are built for -O2 scheduling and unrolling whatever the image's -Os. */
#define AT_MVE_FAST __attribute__((optimize("O2")))

/* Byte offsets of four consecutive at_channel_t records, for gathering one field of each. */
AT_INLINE uint32x4_t at_mve_channel_offsets(void)
{
    return vmulq_n_u32(vidupq_n_u32(0u, 1), (uint32_t)sizeof(at_channel_t));
}

/* at_mbqm on four lanes, each with its own multiplier and shift. `exact_negative` 0 skips the
 * rounding fix-up of negative lanes, for outputs whose activation maps every value <= 0 alike. */
AT_INLINE int32x4_t at_mve_mbqm(int32x4_t x, int32x4_t multiplier, int32x4_t shift,
                                int32_t exact_negative)
{
    const int32x4_t zero = vdupq_n_s32(0);
    const int32x4_t right = vminq_s32(shift, zero); /* -exponent of RoundingDivideByPOT */
    x = vqrdmulhq_s32(vshlq_s32(x, vmaxq_s32(shift, zero)), multiplier); /* VSHL wraps like TFLM */
    if (exact_negative) {
        x = vqaddq_s32(x, vshrq_n_s32(vandq_s32(x, right), 31));
    }
    return vrshlq_s32(x, right);
}

/* at_output_s8 on four accumulators: requantize, add the output zero point, clamp. */
AT_INLINE int32x4_t at_mve_output(int32x4_t acc, int32x4_t multiplier, int32x4_t shift,
                                  const at_output_t *q)
{
    /* With act_min >= the zero point (ReLU) every value <= 0 ends at act_min: the rounding of
     * negative values cannot show. */
    const int32x4_t y = at_mve_mbqm(acc, multiplier, shift, q->min < q->offset);
    return vminq_s32(vmaxq_s32(vaddq_n_s32(y, q->offset), vdupq_n_s32(q->min)), vdupq_n_s32(q->max));
}

/* The channel constants of up to AT_MVE_CHANNELS channels as three contiguous arrays, built once
 * per kernel call: a group of four is then three vector loads instead of three gathers from the
 * at_channel_t records (on the stack: 3 * 4 * AT_MVE_CHANNELS bytes). */
#define AT_MVE_CHANNELS 64
typedef struct {
    int32_t acc_init[AT_MVE_CHANNELS], multiplier[AT_MVE_CHANNELS], shift[AT_MVE_CHANNELS];
} at_mve_channels_t;

/* Fills `t` from `ch` and returns it, or NULL if there are too many channels to hold. */
AT_INLINE const at_mve_channels_t *at_mve_hoist(at_mve_channels_t *t, const at_channel_t *ch,
                                                int32_t count)
{
    int32_t c;
    if (count > AT_MVE_CHANNELS) {
        return 0;
    }
    for (c = 0; c < count; ++c) {
        t->acc_init[c] = ch[c].acc_init;
        t->multiplier[c] = ch[c].multiplier;
        t->shift[c] = ch[c].shift;
    }
    return t;
}

/* Channels c..c+3 (lanes past `p` zero): from the hoisted arrays if there are, else gathered. */
AT_INLINE void at_mve_channels(const at_mve_channels_t *t, const at_channel_t *ch, int32_t c,
                               mve_pred16_t p, int32x4_t *init, int32x4_t *multiplier,
                               int32x4_t *shift)
{
    if (t != 0) {
        *init = vldrwq_z_s32(t->acc_init + c, p);
        *multiplier = vldrwq_z_s32(t->multiplier + c, p);
        *shift = vldrwq_z_s32(t->shift + c, p);
    } else {
        const uint32x4_t offsets = at_mve_channel_offsets();
        *init = vldrwq_gather_offset_z_s32(&ch[c].acc_init, offsets, p);
        *multiplier = vldrwq_gather_offset_z_s32(&ch[c].multiplier, offsets, p);
        *shift = vldrwq_gather_offset_z_s32(&ch[c].shift, offsets, p);
    }
}

/* The dot products of x with four rows of n values, n > 0: full blocks of 16 unpredicated, then
 * one predicated tail that loads zeros past n. Each 16-byte load of x feeds four VMLADAVA
 * (64 MACs per 5 loads). Out of line, the loop has the core registers to itself. */
static AT_NOINLINE AT_MVE_FAST int32x4_t at_mve_dot4(const int8_t *x, const int8_t *w,
                                                     const int8_t *w1, const int8_t *w2,
                                                     const int8_t *w3, int32_t n)
{
    const mve_pred16_t p = vctp8q((uint32_t)(n & 15));
    int32_t a0 = 0, a1 = 0, a2 = 0, a3 = 0, i;
    for (i = n >> 4; i > 0; --i) {
        const int8x16_t xv = vldrbq_s8(x);
        a0 = vmladavaq_s8(a0, xv, vldrbq_s8(w));
        a1 = vmladavaq_s8(a1, xv, vldrbq_s8(w1));
        a2 = vmladavaq_s8(a2, xv, vldrbq_s8(w2));
        a3 = vmladavaq_s8(a3, xv, vldrbq_s8(w3));
        x += 16;
        w += 16;
        w1 += 16;
        w2 += 16;
        w3 += 16;
    }
    if (n & 15) {
        const int8x16_t xv = vldrbq_z_s8(x, p);
        a0 = vmladavaq_s8(a0, xv, vldrbq_z_s8(w, p));
        a1 = vmladavaq_s8(a1, xv, vldrbq_z_s8(w1, p));
        a2 = vmladavaq_s8(a2, xv, vldrbq_z_s8(w2, p));
        a3 = vmladavaq_s8(a3, xv, vldrbq_z_s8(w3, p));
    }
    return vsetq_lane_s32(a3, vsetq_lane_s32(a2, vsetq_lane_s32(a1, vdupq_n_s32(a0), 1), 2), 3);
}

/* Every output channel of one position: out[c] = requantized(acc_init[c] + extra + x . w[c]),
 * filter rows n apart; shared by CONV_2D (x a window) and FULLY_CONNECTED (x an input row).
 * Four rows at a time; a last group of fewer reads its last row again for the missing ones and
 * stores only its own outputs. `t`: the hoisted channel constants, or NULL. */
AT_INLINE int8_t *at_mve_rows(const int8_t *x, const int8_t *filter, int32_t n, int32_t rows,
                              const at_channel_t *ch, const at_mve_channels_t *t, int32_t extra,
                              const at_output_t *q, int8_t *out)
{
    int32_t r;
    for (r = 0; r < rows; r += 4, filter += 4 * n) {
        const int32_t count = rows - r < 4 ? rows - r : 4;
        const mve_pred16_t p = vctp32q((uint32_t)count);
        const int8_t *last = filter + (count - 1) * n;
        int32x4_t init, multiplier, shift, acc;
        at_mve_channels(t, ch, r, p, &init, &multiplier, &shift);
        acc = at_mve_dot4(x, filter, count > 1 ? filter + n : last, count > 2 ? filter + 2 * n : last,
                          last, n);
        acc = vaddq_s32(vaddq_n_s32(init, extra), acc);
        vstrbq_p_s32(out, at_mve_output(acc, multiplier, shift, q), p);
        out += count;
    }
    return out;
}

#endif /* AT_MVE_H */
