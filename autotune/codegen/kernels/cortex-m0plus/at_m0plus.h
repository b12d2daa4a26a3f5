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

/* sums[k] = sum over taps t < taps of x[k + t * step] * w[k + t * step], k < count: depthwise
 * channels, two at a time (one index and one loop for both: 7.5 cycles per MAC). */
void at_m0_dot_step_rows(const int8_t *x, const int8_t *w, int32_t taps, int32_t step, int32_t count,
                         int32_t *sums);

/* at_m0_dot_step_rows of 2 pairs channels, pairs >= 1, the last tap at offset `last`, for each
 * of `pixels` (>= 1) windows pixel_step bytes apart from x, their sums one pixel after another:
 * the assembly it calls. */
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

/* One output channel's requantization as at_m0_requantize reads it (at_m0_prepare makes it
 * from the channel's at_channel_t). With 1 <= r = -shift <= 16 the two roundings of
 * MultiplyByQuantizedMultiplier are one: floor((floor((a m + 2^30) / 2^31) + 2^(r-1)) / 2^r) =
 * floor((a m + 2^30 + 2^(30+r)) / 2^(31+r)) for an accumulator a >= 0, and for a < 2^16 that is
 * (a mh + (a ml >> 16) + 2^14 + 2^(14+r)) >> (15 + r), m = mh 2^16 + ml: two 16 x 16 products
 * in 32 bits, the short path (about 32 cycles an output; below zero under a ReLU about 24).
 * The other accumulators go the whole way, multiplier and shift rebuilt from the record. */
typedef struct {
    int32_t acc_init;
    uint32_t limit; /* the short path for 0 <= acc < limit: 2^16 with r in [1, 16], else 0 */
    uint32_t ml, mh;
    uint32_t round; /* 2^14 + 2^(14+r) */
    uint32_t s;     /* 15 - shift */
} at_m0_channel_t;

void at_m0_prepare(const at_channel_t *ch, int32_t count, at_m0_channel_t *out);

/* out[k] = at_output_s8 of acc_init + sums[k] for channel k < count (>= 1), from its record. */
void at_m0_requantize(const int32_t *sums, const at_m0_channel_t *ch, const at_output_t *q, int8_t *out,
                      int32_t count);

/* The records of a kernel call's output channels, on its stack: all of them, prepared once,
 * when there are at most AT_M0_CHANNELS; else each chunk's when its turn comes. Up to 16
 * channels they repeat to fill the array, so that one at_m0_requantize covers `pixels` pixels. */
#define AT_M0_CHANNELS 32
typedef struct {
    at_m0_channel_t ch[AT_M0_CHANNELS];
    const at_channel_t *from; /* the channels to prepare chunk by chunk; NULL: all prepared */
    int32_t pixels;           /* whole pixels of records in ch: 1 unless the channels repeat */
} at_m0_channels_t;

/* by_pixels: repeat the records (up to 16 channels) for at_m0_requantize over whole pixels. */
void at_m0_channels_init(at_m0_channels_t *rq, const at_channel_t *ch, int32_t count, int32_t by_pixels);

/* The records of channels [c, c + count), count <= AT_M0_CHUNK. */
AT_INLINE const at_m0_channel_t *at_m0_chunk(at_m0_channels_t *rq, int32_t c, int32_t count)
{
    if (rq->from == 0) {
        return rq->ch + c;
    }
    at_m0_prepare(rq->from + c, count, rq->ch);
    return rq->ch;
}

/* `count` conv output pixels (all channels of each, requantized by rq: p's channels), their
 * windows `step` bytes apart from x, written from out; returns the end of what it wrote
 * (at_conv_s8 and the fused conv + max pool). */
int8_t *at_m0_conv_pixels(const at_conv_params_t *p, at_m0_channels_t *rq, const int8_t *x, int32_t step,
                          int32_t count, int8_t *out);

/* out[c] = the maximum over taps t of x[c + t * step] (one row of a window) and, with act[2]
 * nonzero, of out[c] (the rows before), clamped to [act_min, act_max] = act[0..1], c < count.
 * Clamping is monotonic, so clamping each row's maximum clamps the window's. */
void at_m0_max_taps(const int8_t *x, int8_t *out, int32_t count, int32_t step, int32_t taps,
                    const int32_t act[3]);

/* Forward pass of a windowed kernel (conv, depthwise) over every output pixel: in-place windows
 * of a row go to `pixels` as one run (consecutive windows `step` bytes apart), every other window
 * one at a time through at_window_s8. A macro, not a callback, so each kernel keeps its direct
 * call; `pixels(p, rq, x, step, count, output)` returns the output after the pixels it wrote. */
#define AT_M0_PIXEL_RUNS(p, rq, input, output, scratch, pixels)                                       \
    do {                                                                                            \
        const at_window_t *win_ = &(p)->win;                                                        \
        const int32_t step_ = win_->stride_w * win_->in_c; /* from one in-place window to the next */ \
        int32_t b_, oy_, ox_;                                                                       \
        for (b_ = 0; b_ < (p)->batches; ++b_) {                                                     \
            const int8_t *in_b_ = (input) + b_ * win_->in_h * win_->in_w * win_->in_c;              \
            for (oy_ = 0; oy_ < (p)->out_h; ++oy_) {                                                \
                const int32_t inside_ = win_->in_place && oy_ >= win_->inside_y[0] && oy_ < win_->inside_y[1]; \
                for (ox_ = 0; ox_ < (p)->out_w;) {                                                  \
                    const int32_t run_ = inside_ && ox_ >= win_->inside_x[0] && ox_ < win_->inside_x[1]; \
                    const int32_t count_ = run_ ? win_->inside_x[1] - ox_ : 1;                      \
                    (output) = pixels((p), (rq), at_window_s8(win_, in_b_, oy_, ox_, (scratch)),    \
                                      run_ ? step_ : 0, count_, (output));                          \
                    ox_ += count_;                                                                  \
                }                                                                                   \
            }                                                                                       \
        }                                                                                           \
    } while (0)

#endif /* AT_M0PLUS_H */
