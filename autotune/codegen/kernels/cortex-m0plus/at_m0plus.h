/* Helpers of the Cortex-M0+ kernels (ARMv6-M: no DSP, no 32 x 32 -> 64 multiply; on the RP2040
 * MULS takes 1 cycle, a load 2, a taken branch 2). Private to the cortex-m0plus variants.
 *
 * The MAC loops work on blocks of four output channels: each input byte is loaded once for
 * four filters, the four sums live in high registers (ADD to a high register takes 1 cycle
 * like ADDS), so a tap of four channels is LDRSB + 4 x (LDRSB, MULS, ADD): 4.5 cycles per MAC
 * plus 1.5 per tap of loop. On ARMv6-M the loops are inline assembly (GCC spills them); on
 * other cores (host tests) the same sums in C.
 */
#ifndef AT_M0PLUS_H
#define AT_M0PLUS_H

#include <stdint.h>

#include "at_common.h"
#include "at_kernels.h"

/* The four sums of a block of four output channels, started at their acc_init. */
typedef struct {
    int32_t s[4];
} at_m0_sums_t;

/* s[k] += sum over i < n of x[i * step] * w[k * wstep + i * step], k < 4; n >= 1.
 * step 1 reads contiguous taps (conv, dense); a depthwise filter reads its taps out_c apart. */
AT_INLINE void at_m0_dot4(const int8_t *x, const int8_t *w, int32_t n, int32_t wstep,
                          at_m0_sums_t *sums)
{
#if defined(__ARM_ARCH_6M__)
    const int8_t *wa = w + n, *wb = wa + wstep, *wc = wb + wstep, *wd = wc + wstep;
    int32_t i = -n, xv, wv;
    /* GCC's asm constraints give neither all eight low registers (r7, its Thumb frame
     * pointer, only when named) nor four high ones ("h" allows one): these are named. */
    register const int8_t *xn __asm__("r7") = x + n;
    register int32_t s0 __asm__("r8") = sums->s[0];
    register int32_t s1 __asm__("r9") = sums->s[1];
    register int32_t s2 __asm__("r10") = sums->s[2];
    register int32_t s3 __asm__("r11") = sums->s[3];
    /* two taps an iteration; an odd count enters at the second */
#define AT_M0_TAP                                                                                   \
    "ldrsb %[xv], [%[x], %[i]]\n\t"                                                                \
    "ldrsb %[wv], [%[wa], %[i]]\n\t"                                                               \
    "muls %[wv], %[xv], %[wv]\n\t"                                                                 \
    "add %[s0], %[wv]\n\t"                                                                         \
    "ldrsb %[wv], [%[wb], %[i]]\n\t"                                                               \
    "muls %[wv], %[xv], %[wv]\n\t"                                                                 \
    "add %[s1], %[wv]\n\t"                                                                         \
    "ldrsb %[wv], [%[wc], %[i]]\n\t"                                                               \
    "muls %[wv], %[xv], %[wv]\n\t"                                                                 \
    "add %[s2], %[wv]\n\t"                                                                         \
    "ldrsb %[wv], [%[wd], %[i]]\n\t"                                                               \
    "muls %[wv], %[xv], %[wv]\n\t"                                                                 \
    "add %[s3], %[wv]\n\t"                                                                         \
    "adds %[i], #1\n\t"
    /* GCC hands Thumb-1 inline assembly to the assembler in divided syntax */
    __asm__(".syntax unified\n\t"
            "lsls %[wv], %[i], #31\n\t"
            "bne 2f\n"
            "1:\n\t" AT_M0_TAP
            "2:\n\t" AT_M0_TAP
            "bne 1b\n\t"
            ".syntax divided\n\t"
            : [i] "+l"(i), [xv] "=&l"(xv), [wv] "=&l"(wv),
              [s0] "+r"(s0), [s1] "+r"(s1), [s2] "+r"(s2), [s3] "+r"(s3)
            : [x] "l"(xn), [wa] "l"(wa), [wb] "l"(wb), [wc] "l"(wc), [wd] "l"(wd)
            : "cc", "memory");
#undef AT_M0_TAP
    sums->s[0] = s0;
    sums->s[1] = s1;
    sums->s[2] = s2;
    sums->s[3] = s3;
#else
    int32_t i, k;
    for (k = 0; k < 4; ++k) {
        uint32_t s = (uint32_t)sums->s[k];
        for (i = 0; i < n; ++i) {
            s += (uint32_t)(x[i] * w[k * wstep + i]);
        }
        sums->s[k] = (int32_t)s;
    }
#endif
}

/* floor((a * b + nudge) / 2^31) for a, b < 2^31, nudge < 2^31, from four 16 x 16 products:
 * a * b + nudge = ah bh 2^32 + mid 2^16 + lo + nudge, mid = ah bl + al bh < 2^32 - 2^17 (ah,
 * bh < 2^15), so floor(/ 2^16) = ah bh 2^16 + s with s = mid + floor((lo + nudge) / 2^16)
 * < 2^32, and the result is 2 ah bh + s / 2^15. */
AT_INLINE uint32_t at_m0_mul_shr31(uint32_t a, uint32_t b, uint32_t nudge)
{
    const uint32_t ah = a >> 16, al = a & 0xFFFFu, bh = b >> 16, bl = b & 0xFFFFu;
    const uint32_t lo = al * bl;
    const uint32_t s = ah * bl + al * bh + (lo >> 16) + (((lo & 0xFFFFu) + nudge) >> 16);
    return ((ah * bh) << 1) + (s >> 15);
}

/* at_output_s8 (at_common.h) of acc_init + sum for one channel: the same TFLM arithmetic. */
AT_INLINE int8_t at_m0_output(int32_t sum, const at_channel_t *ch, int32_t offset, int32_t act_min,
                              int32_t act_max)
{
    int32_t acc = at_add_wrap(ch->acc_init, sum);
    int32_t shift = ch->shift;
    uint32_t neg, mag;
    int32_t out;
    if (shift > 0) {
        acc = (int32_t)((uint32_t)acc << shift);
        shift = 0;
    }
    if (acc < 0 && act_min >= offset) {
        return (int8_t)act_min;
    }
    neg = (uint32_t)(acc >> 31);
    mag = at_m0_mul_shr31(((uint32_t)acc ^ neg) - neg, (uint32_t)ch->multiplier, (1u << 30) + neg);
    if (shift < 0) {
        mag = (mag + (1u << (-shift - 1))) >> -shift;
    }
    out = (int32_t)((mag ^ neg) - neg) + offset;
    return (int8_t)(out < act_min ? act_min : out > act_max ? act_max : out);
}

/* out[k] = at_m0_output(sums[k], channel k) for k < count: out of line, so that the MAC
 * loops around it keep their registers. */
void at_m0_requantize(const int32_t *sums, const at_channel_t *ch, const at_output_t *q, int8_t *out,
                      int32_t count);

#endif /* AT_M0PLUS_H */
