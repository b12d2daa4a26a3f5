/* Helpers of the Cortex-M0+ kernels (ARMv6-M: no DSP, no 32 x 32 -> 64 multiply; on the RP2040
 * MULS takes 1 cycle, a load 2, a taken branch 2). Private to the cortex-m0plus variants.
 *
 * A kernel sums a chunk of output channels of a pixel into an array on its stack, then
 * requantizes the chunk: two tight loops, each in assembly on ARMv6-M (at_common.c; GCC spills
 * either when they share a function), in portable C elsewhere (host tests).
 */
#ifndef AT_M0PLUS_H
#define AT_M0PLUS_H

#include <stdint.h>

#include "at_common.h"
#include "at_kernels.h"

/* The assembly helpers' frame: the start of a global Thumb function in a section of its own
 * (the linker drops it where unused), and r4-r11 saved and restored (r8-r11 through r4-r7). */
#define AT_M0_FUNCTION(NAME)                                                                        \
    ".syntax unified\n\t"                                                                          \
    ".section .text." NAME ",\"ax\",%progbits\n\t"                                               \
    ".align 1\n\t"                                                                                 \
    ".global " NAME "\n\t"                                                                         \
    ".thumb_func\n\t"                                                                              \
    ".type " NAME ", %function\n" NAME ":\n\t"
#define AT_M0_END(NAME) ".size " NAME ", .-" NAME "\n\t.text"
#define AT_M0_SAVE                                                                                  \
    "push {r4, r5, r6, r7, lr}\n\t"                                                                \
    "mov r4, r8\n\t"                                                                               \
    "mov r5, r9\n\t"                                                                               \
    "mov r6, r10\n\t"                                                                              \
    "mov r7, r11\n\t"                                                                              \
    "push {r4, r5, r6, r7}\n\t"
#define AT_M0_RESTORE                                                                               \
    "pop {r4, r5, r6, r7}\n\t"                                                                     \
    "mov r8, r4\n\t"                                                                               \
    "mov r9, r5\n\t"                                                                               \
    "mov r10, r6\n\t"                                                                              \
    "mov r11, r7\n\t"                                                                              \
    "pop {r4, r5, r6, r7, pc}\n\t"

/* Output channels a kernel sums before it requantizes them: its stack holds their sums. */
#define AT_M0_CHUNK 16

/* sums[k] = the dot product of x with filter row k, the rows n bytes apart from w, k < count.
 * Rows go four at a time: each input byte is loaded once for four filters, the four sums live
 * in high registers (ADD to a high register takes 1 cycle like ADDS), so a tap of four rows is
 * LDRSB + 4 x (LDRSB, MULS, ADD) and 2 cycles of loop (two taps an iteration): 5 cycles per
 * MAC; the rows left over by at_dot_s8. */
void at_m0_dot_rows(const int8_t *x, const int8_t *w, int32_t n, int32_t count, int32_t *sums);

/* at_m0_dot_rows of 4 blocks rows, blocks >= 1: the assembly it calls. */
void at_m0_dot4_blocks(const int8_t *x, const int8_t *w, int32_t n, int32_t blocks, int32_t *sums);

/* best[k] = max(best[k], the dot product of x + j step with filter row k) over pixels j <
 * pixels, k < 4 blocks (blocks, pixels >= 1): at_m0_dot4_blocks keeping the largest sums. */
void at_m0_dot4_max(const int8_t *x, const int8_t *w, int32_t n, int32_t blocks, int32_t *best, int32_t pixels,
                    int32_t step);

/* sums[k] = sum over taps t of x[k + t * step] * w[k + t * step] (the last tap at offset `last`)
 * for the 2 pairs (>= 1) adjacent depthwise channels k, for each of `pixels` (>= 1) windows
 * pixel_step bytes apart from x, their sums one pixel after another: two channels a pass on one
 * index and one loop (7.5 cycles per MAC). */
void at_m0_dot2_step(const int8_t *x, const int8_t *w, int32_t last, int32_t step, int32_t pairs,
                     int32_t *sums, int32_t pixels, int32_t pixel_step);

/* floor((a * b + nudge) / 2^31) for a, b < 2^31 (a = 2^31 too), nudge < 2^31, from four 16 x 16
 * products: a * b + nudge = ah bh 2^32 + mid 2^16 + lo + nudge, mid = ah bl + al bh < 2^32 - 2^17
 * (ah, bh <= 2^15), so floor(/ 2^16) = ah bh 2^16 + s with s = mid + floor((lo + nudge) / 2^16)
 * < 2^32, and the result is 2 ah bh + s / 2^15. */
AT_INLINE uint32_t at_m0_mul_shr31(uint32_t a, uint32_t b, uint32_t nudge)
{
    const uint32_t ah = a >> 16, al = a & 0xFFFFu, bh = b >> 16, bl = b & 0xFFFFu;
    const uint32_t lo = al * bl;
    const uint32_t s = ah * bl + al * bh + (lo >> 16) + (((lo & 0xFFFFu) + nudge) >> 16);
    return ((ah * bh) << 1) + (s >> 15);
}

/* at_output_s8 (at_common.h) of an accumulator: the same TFLM arithmetic, the form the whole
 * way of at_m0_requantize's assembly follows. */
AT_INLINE int8_t at_m0_output(int32_t acc, int32_t multiplier, int32_t shift, const at_output_t *q)
{
    uint32_t neg, mag;
    int32_t out;
    if (shift > 0) {
        acc = (int32_t)((uint32_t)acc << shift);
        shift = 0;
    }
    if (acc < 0 && q->min >= q->offset) {
        return (int8_t)q->min;
    }
    neg = (uint32_t)(acc >> 31);
    mag = at_m0_mul_shr31(((uint32_t)acc ^ neg) - neg, (uint32_t)multiplier, (1u << 30) + neg);
    if (shift < 0) {
        mag = (mag + (1u << (-shift - 1))) >> -shift;
    }
    out = (int32_t)((mag ^ neg) - neg) + q->offset;
    return (int8_t)(out < q->min ? q->min : out > q->max ? q->max : out);
}

/* out[j count + k] = at_output_s8 of acc_init + sums[j count + k] for channel k < count (>= 1)
 * of ch, pixel j < pixels (>= 1): the channels' own at_channel_t, read as they are (no per-call
 * records). With 1 <= r = -shift the two roundings of MultiplyByQuantizedMultiplier are one:
 * floor((floor((a m + 2^30) / 2^31) + 2^(r-1)) / 2^r) = floor((a m + 2^30 + 2^(30+r)) / 2^(31+r))
 * for an accumulator a >= 0, and for a < 2^16, m = mh 2^16 + ml, w = a mh + (a ml >> 16) < 2^32,
 * that is ((((w + 2^14) >> 15) >> (r - 1)) + 1) >> 1 (floors of floors): two 16 x 16 products
 * in 32 bits, the short path (about 35 cycles an output with its clamp and store; below zero
 * under a ReLU about 24).
 * The other accumulators go the whole way (at_m0_output). */
void at_m0_requantize(const int32_t *sums, const at_channel_t *ch, const at_output_t *q, int8_t *out,
                      int32_t count, int32_t pixels);

/* Sums kept on a kernel's stack: the pixels of up to AT_M0_CHANNELS outputs go to one
 * at_m0_requantize where a pixel has at most AT_M0_CHUNK channels. */
#define AT_M0_CHANNELS 32

/* What the pixel loop of conv and depthwise reads: their parameters (one type, at_kernels.h) and
 * n, a conv filter row's length, 0 for depthwise (its taps are the window's). One loop for both
 * kernels, so an image with both carries it once. */
typedef struct {
    const at_conv_params_t *p;
    int32_t n;
} at_m0_layer_t;

/* `count` output pixels (all channels of each), their windows `step` bytes apart from x,
 * written from out; returns the end of what it wrote. By chunks of up to AT_M0_CHUNK channels
 * summed then requantized; with at most AT_M0_CHUNK channels the sums of several pixels go to
 * one requantization. */
int8_t *at_m0_pixels(const at_m0_layer_t *l, const int8_t *x, int32_t step, int32_t count, int8_t *out);

/* The sums of depthwise channels [c, c + chunk) of `pixels` windows `step` bytes apart from
 * x (channel c's first tap), one pixel after another (at_depthwise_conv_s8.c). */
void at_m0_depthwise_sums(const at_conv_params_t *p, const int8_t *x, int32_t c, int32_t chunk, int32_t *sums,
                          int32_t pixels, int32_t step);

/* The forward pass over every output pixel: in-place windows of a row go to at_m0_pixels as one
 * run (consecutive windows win->stride_w * in_c bytes apart), every other window one at a
 * time through at_window_s8. */
void at_m0_windows(const at_m0_layer_t *l, const int8_t *input, int8_t *output, int8_t *scratch);

/* out[c] = the maximum over taps t of x[c + t * step] (one row of a window) and, with act[2]
 * nonzero, of out[c] (the rows before), clamped to [act_min, act_max] = act[0..1], c < count.
 * Clamping is monotonic, so clamping each row's maximum clamps the window's. */
void at_m0_max_taps(const int8_t *x, int8_t *out, int32_t count, int32_t step, int32_t taps,
                    const int32_t act[3]);

#endif /* AT_M0PLUS_H */
