/* The generic out-of-line helpers (../at_common.c) and the Cortex-M0+ kernels' own
 * (at_m0plus.h): on ARMv6-M in assembly, elsewhere in C. */
#include "../at_common.c"

#include "at_m0plus.h"

#if defined(__ARM_ARCH_6M__)

/* sums[4 b + k] for each block b < blocks of four rows (at_m0_dot_rows).
 * Tap loop: r7 = x + n, r1-r4 = the four rows + n, r0 = i from -n up to 0 (two taps an
 * iteration, an odd n entering at the second), r5 the input byte, r6 a weight and product,
 * r8-r11 the sums. Between blocks: n in lr, the sums pointer in r12, the blocks left at [sp]. */
#define AT_M0_TAP                                                                                   \
    "ldrsb r5, [r7, r0]\n\t"                                                                       \
    "ldrsb r6, [r1, r0]\n\t"                                                                       \
    "muls r6, r5, r6\n\t"                                                                          \
    "add r8, r6\n\t"                                                                               \
    "ldrsb r6, [r2, r0]\n\t"                                                                       \
    "muls r6, r5, r6\n\t"                                                                          \
    "add r9, r6\n\t"                                                                               \
    "ldrsb r6, [r3, r0]\n\t"                                                                       \
    "muls r6, r5, r6\n\t"                                                                          \
    "add r10, r6\n\t"                                                                              \
    "ldrsb r6, [r4, r0]\n\t"                                                                       \
    "muls r6, r5, r6\n\t"                                                                          \
    "add r11, r6\n\t"                                                                              \
    "adds r0, #1\n\t"
/* Label 0: a block of four rows from r4 (the row before the first, less n; r4 ends at the next
 * block's), n in lr, x + n in r7: the rows' pointers, the sums zeroed, the taps. */
#define AT_M0_BLOCK                                                                                 \
    "0:\n\t"                                                                                        \
    "mov r6, lr\n\t"                                                                                \
    "adds r1, r4, r6\n\t"                                                                           \
    "adds r2, r1, r6\n\t"                                                                           \
    "adds r3, r2, r6\n\t"                                                                           \
    "adds r4, r3, r6\n\t"                                                                           \
    "movs r5, #0\n\t"                                                                               \
    "mov r8, r5\n\t"                                                                                \
    "mov r9, r5\n\t"                                                                                \
    "mov r10, r5\n\t"                                                                               \
    "mov r11, r5\n\t"                                                                               \
    "negs r0, r6\n\t"                                                                               \
    "lsls r5, r0, #31\n\t"                                                                          \
    "bne 2f\n"                                                                                      \
    "1:\n\t" AT_M0_TAP                                                                              \
    "2:\n\t" AT_M0_TAP                                                                              \
    "bne 1b\n\t"
__asm__(AT_M0_FUNCTION("at_m0_dot4_blocks") AT_M0_SAVE
        "push {r3}\n\t"
        "ldr r4, [sp, #40]\n\t" /* sums: the fifth argument, above the 40 bytes pushed */
        "mov r12, r4\n\t"
        "mov lr, r2\n\t"
        "adds r7, r0, r2\n\t"
        "movs r4, r1\n" /* the row before the first, less n */
        AT_M0_BLOCK
        "mov r6, r12\n\t"
        "mov r5, r8\n\t"
        "str r5, [r6, #0]\n\t"
        "mov r5, r9\n\t"
        "str r5, [r6, #4]\n\t"
        "mov r5, r10\n\t"
        "str r5, [r6, #8]\n\t"
        "mov r5, r11\n\t"
        "str r5, [r6, #12]\n\t"
        "adds r6, #16\n\t"
        "mov r12, r6\n\t"
        "ldr r5, [sp]\n\t"
        "subs r5, #1\n\t"
        "str r5, [sp]\n\t"
        "bne 0b\n\t"
        "add sp, #4\n\t"
        AT_M0_RESTORE
        AT_M0_END("at_m0_dot4_blocks"));

/* best[4 b + k] = max(best[4 b + k], the dot product of x + j step with row 4 b + k) for each
 * pixel j < pixels and block b < blocks (at_m0_dot4_max): at_m0_dot4_blocks's blocks, the
 * largest sums kept in place of the sums. Frame: [sp] x, [sp, #4] w, [sp, #8] blocks, [sp, #12]
 * the blocks left; the arguments best, pixels (counted down) and step above the 52 bytes pushed. */
#define AT_M0_MAX_STORE(HI, OFF)                                                                  \
    "mov r5, " HI "\n\t"                                                                           \
    "ldr r0, [r6, #" OFF "]\n\t"                                                                   \
    "cmp r5, r0\n\t"                                                                               \
    "ble 3f\n\t"                                                                                   \
    "str r5, [r6, #" OFF "]\n"                                                                     \
    "3:\n\t"
__asm__(AT_M0_FUNCTION("at_m0_dot4_max") AT_M0_SAVE
        "push {r0, r1, r3, r4}\n\t"
        "mov lr, r2\n"
        "9:\n\t"                 /* a pixel */
        "ldr r4, [sp, #52]\n\t"
        "mov r12, r4\n\t"
        "ldr r4, [sp, #8]\n\t"
        "str r4, [sp, #12]\n\t"
        "ldr r0, [sp, #0]\n\t"
        "add r0, lr\n\t"
        "movs r7, r0\n\t"
        "ldr r4, [sp, #4]\n"
        AT_M0_BLOCK
        "mov r6, r12\n\t"
        AT_M0_MAX_STORE("r8", "0") AT_M0_MAX_STORE("r9", "4") AT_M0_MAX_STORE("r10", "8")
        AT_M0_MAX_STORE("r11", "12")
        "adds r6, #16\n\t"
        "mov r12, r6\n\t"
        "ldr r5, [sp, #12]\n\t"
        "subs r5, #1\n\t"
        "str r5, [sp, #12]\n\t"
        "bne 0b\n\t"
        "ldr r0, [sp, #0]\n\t"   /* the next pixel's window */
        "ldr r5, [sp, #60]\n\t"
        "adds r0, r0, r5\n\t"
        "str r0, [sp, #0]\n\t"
        "ldr r5, [sp, #56]\n\t"
        "subs r5, #1\n\t"
        "str r5, [sp, #56]\n\t"
        "bne 9b\n\t"
        "add sp, #16\n\t"
        AT_M0_RESTORE
        AT_M0_END("at_m0_dot4_max"));
#undef AT_M0_MAX_STORE
#undef AT_M0_BLOCK
#undef AT_M0_TAP

void at_m0_dot_rows(const int8_t *x, const int8_t *w, int32_t n, int32_t count, int32_t *sums)
{
    const int32_t blocks = count >> 2;
    if (blocks > 0) {
        at_m0_dot4_blocks(x, w, n, blocks, sums);
    }
    for (count -= 4 * blocks, w += 4 * blocks * n, sums += 4 * blocks; count > 0; --count, w += n) {
        *sums++ = at_dot_s8(x, w, n);
    }
}

/* sums[2 j], sums[2 j + 1] for each pair j < pairs of adjacent channels (at_m0_dot2_step),
 * for each of `pixels` windows pixel_step bytes apart, the sums one pixel after another.
 * Tap loop: r0, r2 the two channels' inputs + last, r1, r4 their filters + last, r5 = i from
 * -last up to 0 by r3 = step, r6 an input byte, r7 a weight and product, r8 r9 the sums.
 * Between pairs: last in lr, the pairs left in r11, the sums pointer in r12; the arguments pairs,
 * sums, pixels (counted down) and pixel_step above the 36 bytes pushed. */
__asm__(AT_M0_FUNCTION("at_m0_dot2_step") AT_M0_SAVE
        "ldr r4, [sp, #40]\n\t"
        "mov r12, r4\n\t"
        "mov lr, r2\n\t"
        "adds r0, r0, r2\n\t"
        "adds r1, r1, r2\n"
        "9:\n\t"                 /* a pixel */
        "ldr r4, [sp, #36]\n\t"
        "mov r11, r4\n"
        "0:\n\t"                 /* a pair of channels */
        "adds r2, r0, #1\n\t"
        "adds r4, r1, #1\n\t"
        "mov r5, lr\n\t"
        "negs r5, r5\n\t"
        "movs r6, #0\n\t"
        "mov r8, r6\n\t"
        "mov r9, r6\n"
        "1:\n\t"
        "ldrsb r6, [r0, r5]\n\t"
        "ldrsb r7, [r1, r5]\n\t"
        "muls r7, r6, r7\n\t"
        "add r8, r7\n\t"
        "ldrsb r6, [r2, r5]\n\t"
        "ldrsb r7, [r4, r5]\n\t"
        "muls r7, r6, r7\n\t"
        "add r9, r7\n\t"
        "adds r5, r5, r3\n\t"
        "ble 1b\n\t"
        "mov r2, r12\n\t"
        "mov r6, r8\n\t"
        "mov r7, r9\n\t"
        "stm r2!, {r6, r7}\n\t"
        "mov r12, r2\n\t"
        "adds r0, #2\n\t"
        "adds r1, #2\n\t"
        "mov r6, r11\n\t"
        "subs r6, #1\n\t"
        "mov r11, r6\n\t"
        "bne 0b\n\t"
        "ldr r6, [sp, #36]\n\t"  /* back to the first pair, on to the next window */
        "lsls r6, r6, #1\n\t"
        "subs r1, r1, r6\n\t"
        "subs r0, r0, r6\n\t"
        "ldr r6, [sp, #48]\n\t"
        "adds r0, r0, r6\n\t"
        "ldr r6, [sp, #44]\n\t"
        "subs r6, #1\n\t"
        "str r6, [sp, #44]\n\t"
        "bne 9b\n\t"
        AT_M0_RESTORE
        AT_M0_END("at_m0_dot2_step"));

/* at_m0_requantize. Registers: r0 sums, r1 the channels, r2 out, r12 the end of the pixel's
 * outputs; r8 the output zero point, r9 act_min, r10 act_max, r11 2^14 (on the whole way the
 * sign, 0 or -1, then 2^14 again); per output r4 the accumulator, r3 acc_init then scratch,
 * r6 the multiplier, r7 the shift (lr once it is <= 0 on the whole way), r5 r - 1 then scratch.
 * [sp] the channels, [sp, #4] count; count and pixels (counted down) above the 44 bytes pushed.
 * The whole way follows at_m0_output (at_m0plus.h) step by step. */
__asm__(AT_M0_FUNCTION("at_m0_requantize") AT_M0_SAVE
        "ldr r4, [sp, #36]\n\t" /* count: the fifth argument, above the 36 bytes pushed */
        "push {r1, r4}\n\t"
        "adds r4, r3, r4\n\t"
        "mov r12, r4\n\t"
        "ldm r2!, {r4, r5, r6}\n\t" /* at_output_t: offset, min, max */
        "mov r8, r4\n\t"
        "mov r9, r5\n\t"
        "mov r10, r6\n\t"
        "movs r2, r3\n\t"
        "movs r4, #1\n\t"
        "lsls r4, r4, #14\n\t"
        "mov r11, r4\n"
        "0:\n\t"
        "ldm r0!, {r4}\n\t"
        "ldm r1!, {r3, r6, r7}\n\t" /* at_channel_t: acc_init, multiplier, shift */
        "adds r4, r4, r3\n\t"
        "bmi 6f\n\t"
        "lsrs r5, r4, #16\n\t"
        "bne 8f\n\t"
        "mvns r5, r7\n\t"          /* r - 1 */
        "bmi 8f\n\t"
        "uxth r3, r6\n\t"          /* the short path: ml */
        "muls r3, r4, r3\n\t"
        "lsrs r3, r3, #16\n\t"
        "lsrs r6, r6, #16\n\t"     /* mh */
        "muls r4, r6, r4\n\t"
        "adds r4, r4, r3\n\t"      /* w */
        "add r4, r11\n\t"
        "lsrs r4, r4, #15\n\t"
        "lsrs r4, r4, r5\n\t"
        "adds r4, #1\n\t"
        "lsrs r4, r4, #1\n\t"
        "add r4, r8\n"
        "12:\n\t"
        "cmp r4, r9\n\t"
        "blt 7f\n\t"
        "cmp r4, r10\n\t"
        "ble 4f\n\t"
        "mov r4, r10\n"
        "4:\n\t"
        "strb r4, [r2]\n\t"
        "adds r2, #1\n\t"
        "cmp r2, r12\n\t"
        "bne 0b\n\t"
        "ldr r4, [sp, #48]\n\t"    /* the next pixel: the same channels */
        "subs r4, #1\n\t"
        "beq 13f\n\t"
        "str r4, [sp, #48]\n\t"
        "ldr r1, [sp]\n\t"
        "ldr r4, [sp, #4]\n\t"
        "add r12, r4\n\t"
        "b 0b\n"
        "13:\n\t"
        "add sp, #8\n\t"
        AT_M0_RESTORE
        "6:\n\t"                   /* below zero, shift <= 0, under a ReLU: act_min */
        "cmp r7, #0\n\t"
        "bgt 8f\n\t"
        "cmp r9, r8\n\t"
        "blt 8f\n"
        "7:\n\t"
        "mov r4, r9\n\t"
        "b 4b\n"
        "8:\n\t"                   /* the whole way */
        "cmp r7, #0\n\t"
        "bgt 5f\n"
        "1:\n\t"
        "cmp r4, #0\n\t"
        "blt 11f\n"
        "2:\n\t"
        "mov lr, r7\n\t"
        "asrs r7, r4, #31\n\t"
        "mov r11, r7\n\t"
        "eors r4, r7\n\t"
        "subs r4, r4, r7\n\t"      /* |acc| */
        "lsrs r3, r4, #16\n\t"     /* ah */
        "uxth r4, r4\n\t"          /* al */
        "lsrs r5, r6, #16\n\t"     /* bh */
        "uxth r6, r6\n\t"          /* bl */
        "movs r7, r4\n\t"
        "muls r7, r6, r7\n\t"      /* lo = al bl */
        "muls r6, r3, r6\n\t"      /* ah bl */
        "muls r4, r5, r4\n\t"      /* al bh */
        "muls r3, r5, r3\n\t"      /* ah bh */
        "adds r4, r4, r6\n\t"      /* mid */
        "lsrs r6, r7, #16\n\t"
        "adds r4, r4, r6\n\t"
        "uxth r7, r7\n\t"
        "movs r6, #1\n\t"
        "lsls r6, r6, #30\n\t"
        "add r6, r11\n\t"          /* nudge: 2^30, 2^30 - 1 below zero */
        "adds r7, r7, r6\n\t"
        "lsrs r7, r7, #16\n\t"
        "adds r4, r4, r7\n\t"      /* s */
        "lsrs r4, r4, #15\n\t"
        "lsls r3, r3, #1\n\t"
        "adds r4, r4, r3\n\t"      /* SaturatingRoundingDoublingHighMul, in magnitude */
        "mov r6, lr\n\t"
        "negs r6, r6\n\t"
        "beq 3f\n\t"
        "subs r5, r6, #1\n\t"
        "movs r3, #1\n\t"
        "lsls r3, r3, r5\n\t"
        "adds r4, r4, r3\n\t"
        "lsrs r4, r4, r6\n"        /* RoundingDivideByPOT, in magnitude */
        "3:\n\t"
        "mov r7, r11\n\t"
        "eors r4, r7\n\t"
        "subs r4, r4, r7\n\t"
        "add r4, r8\n\t"
        "movs r7, #1\n\t"
        "lsls r7, r7, #14\n\t"
        "mov r11, r7\n\t"
        "b 12b\n"
        "5:\n\t"                   /* left shift: TFLM's x * (1 << shift), wrapping */
        "lsls r4, r4, r7\n\t"
        "movs r7, #0\n\t"
        "b 1b\n"
        "11:\n\t"                  /* below zero: act_min under a ReLU, else the whole way */
        "cmp r9, r8\n\t"
        "blt 2b\n\t"
        "b 7b\n\t"
        AT_M0_END("at_m0_requantize"));

#else

void at_m0_dot4_blocks(const int8_t *x, const int8_t *w, int32_t n, int32_t blocks, int32_t *sums)
{
    at_m0_dot_rows(x, w, n, 4 * blocks, sums);
}

void at_m0_dot2_step(const int8_t *x, const int8_t *w, int32_t last, int32_t step, int32_t pairs,
                     int32_t *sums, int32_t pixels, int32_t pixel_step)
{
    for (; pixels > 0; --pixels, x += pixel_step) {
        int32_t k;
        for (k = 0; k < 2 * pairs; ++k) {
            *sums++ = at_dot_step_s8(x + k, w + k, last / step + 1, step);
        }
    }
}

void at_m0_dot4_max(const int8_t *x, const int8_t *w, int32_t n, int32_t blocks, int32_t *best, int32_t pixels,
                    int32_t step)
{
    for (; pixels > 0; --pixels, x += step) {
        int32_t k;
        for (k = 0; k < 4 * blocks; ++k) {
            const int32_t sum = at_dot_s8(x, w + k * n, n);
            best[k] = sum > best[k] ? sum : best[k];
        }
    }
}

void at_m0_dot_rows(const int8_t *x, const int8_t *w, int32_t n, int32_t count, int32_t *sums)
{
    for (; count > 0; --count, w += n) {
        *sums++ = at_dot_s8(x, w, n);
    }
}

void at_m0_requantize(const int32_t *sums, const at_channel_t *ch, const at_output_t *q, int8_t *out,
                      int32_t count, int32_t pixels)
{
    for (; pixels > 0; --pixels) {
        int32_t k;
        for (k = 0; k < count; ++k) {
            const int32_t acc = at_add_wrap(ch[k].acc_init, *sums++);
            const uint32_t a = (uint32_t)acc, m = (uint32_t)ch[k].multiplier;
            if (a < 65536u && ch[k].shift < 0) { /* the short path, as the assembly's */
                const uint32_t w = a * (m >> 16) + ((a * (m & 0xFFFFu)) >> 16);
                const int32_t y = (int32_t)(((((w + (1u << 14)) >> 15) >> (-ch[k].shift - 1)) + 1u) >> 1) + q->offset;
                *out++ = (int8_t)(y < q->min ? q->min : y > q->max ? q->max : y);
            } else {
                *out++ = at_m0_output(acc, ch[k].multiplier, ch[k].shift, q);
            }
        }
    }
}

#endif

/* Where the image has no depthwise call, its sums never run: this stub stands in for them and
 * the depthwise kernel's file, when the model has one, replaces it (so conv-only images carry no
 * depthwise code). */
__attribute__((weak)) void at_m0_depthwise_sums(const at_conv_params_t *p, const int8_t *x, int32_t c, int32_t chunk,
                                                int32_t *sums, int32_t pixels, int32_t step)
{
    (void)p, (void)x, (void)c, (void)chunk, (void)sums, (void)pixels, (void)step;
}

int8_t *at_m0_pixels(const at_m0_layer_t *l, const int8_t *x, int32_t step, int32_t count, int8_t *out)
{
    const at_conv_params_t *const p = l->p;
    const int32_t out_c = p->out_c, n = l->n;
    int32_t sums[AT_M0_CHANNELS];
    int32_t per = 1, k;
    for (k = 2 * out_c; out_c <= AT_M0_CHUNK && k <= AT_M0_CHANNELS; k += out_c) {
        ++per; /* AT_M0_CHANNELS / out_c pixels a requantization, without a division call */
    }
    while (count > 0) {
        const int32_t pixels = count < per ? count : per;
        int32_t c, chunk;
        for (c = 0; c < out_c; c += chunk) {
            chunk = out_c - c < AT_M0_CHUNK ? out_c - c : AT_M0_CHUNK;
            if (n == 0) {
                at_m0_depthwise_sums(p, x + c, c, chunk, sums, pixels, step);
            }
            for (k = 0; n != 0 && k < pixels; ++k) {
                at_m0_dot_rows(x + k * step, p->filter + c * n, n, chunk, sums + k * chunk);
            }
            at_m0_requantize(sums, p->channels + c, &p->output_quant, out + c, chunk, pixels);
        }
        out += pixels * out_c;
        x += pixels * step;
        count -= pixels;
    }
    return out;
}

void at_m0_windows(const at_m0_layer_t *l, const int8_t *input, int8_t *output, int8_t *scratch)
{
    const at_conv_params_t *const p = l->p;
    const at_window_t *const win = &p->win;
    const int32_t step = win->stride_w * win->in_c; /* from one in-place window to the next */
    int32_t b, oy, ox;
    for (b = 0; b < p->batches; ++b, input += win->in_h * win->in_w * win->in_c) {
        for (oy = 0; oy < p->out_h; ++oy) {
            const int32_t inside = win->in_place && oy >= win->inside_y[0] && oy < win->inside_y[1];
            for (ox = 0; ox < p->out_w;) {
                const int32_t run = inside && ox >= win->inside_x[0] && ox < win->inside_x[1];
                const int32_t count = run ? win->inside_x[1] - ox : 1;
                output = at_m0_pixels(l, at_window_s8(win, input, oy, ox, scratch), step, count, output);
                ox += count;
            }
        }
    }
}

#if defined(__ARM_ARCH_6M__)
/* One channel's taps from label TAPS on, its clamp and store, flags set for "more channels". */
#define AT_M0_MAX_CHANNEL(TAPS)                                                                   \
    "ldrsb r5, [r0, r4]\n\t"                                                                     \
    "cmp r5, r6\n\t"                                                                             \
    "ble 2f\n\t"                                                                                 \
    "movs r6, r5\n"                                                                               \
    "2:\n\t"                                                                                     \
    "adds r4, r4, r3\n\t"                                                                        \
    "ble " TAPS "\n\t"                                                                           \
    "cmp r6, r9\n\t"                                                                             \
    "ble 3f\n\t"                                                                                 \
    "mov r6, r9\n"                                                                                \
    "3:\n\t"                                                                                     \
    "strb r6, [r1]\n\t"                                                                          \
    "adds r1, #1\n\t"                                                                            \
    "adds r0, #1\n\t"                                                                            \
    "cmp r1, r2\n\t"
/* r0 = the channel's last tap, r4 = i from -(taps - 1) step up to 0 by r3 = step, r5 a tap,
 * r6 the running maximum (from act_min, or out[c]), r1 out, r2 out + count, r7 =
 * -(taps - 1) step; r8, r9, r10 = act_min, act_max, act[2]. About 8 cycles a tap, 12 a channel. */
__asm__(AT_M0_FUNCTION("at_m0_max_taps")
        "push {r4, r5, r6, r7, lr}\n\t"
        "mov r4, r8\n\t"
        "mov r5, r9\n\t"
        "mov r6, r10\n\t"
        "push {r4, r5, r6}\n\t"
        "ldr r4, [sp, #36]\n\t" /* act: the sixth argument; taps the fifth, above 32 bytes */
        "ldm r4!, {r5, r6, r7}\n\t"
        "mov r8, r5\n\t"
        "mov r9, r6\n\t"
        "mov r10, r7\n\t"
        "ldr r7, [sp, #32]\n\t"
        "subs r7, #1\n\t"
        "muls r7, r3, r7\n\t"
        "adds r0, r0, r7\n\t"
        "negs r7, r7\n\t"
        "adds r2, r1, r2\n\t"
        "mov r5, r10\n\t"
        "cmp r5, #0\n\t"
        "bne 5f\n"
        "0:\n\t"                      /* from act_min */
        "movs r4, r7\n\t"
        "mov r6, r8\n"
        "1:\n\t" AT_M0_MAX_CHANNEL("1b")
        "bne 0b\n\t"
        "b 6f\n"
        "5:\n\t"                      /* from out[c] */
        "movs r4, r7\n\t"
        "ldrb r6, [r1]\n\t"
        "sxtb r6, r6\n"
        "4:\n\t" AT_M0_MAX_CHANNEL("4b")
        "bne 5b\n"
        "6:\n\t"
        "pop {r4, r5, r6}\n\t"
        "mov r8, r4\n\t"
        "mov r9, r5\n\t"
        "mov r10, r6\n\t"
        "pop {r4, r5, r6, r7, pc}\n\t"
        AT_M0_END("at_m0_max_taps"));
#undef AT_M0_MAX_CHANNEL
#else
void at_m0_max_taps(const int8_t *x, int8_t *out, int32_t count, int32_t step, int32_t taps,
                    const int32_t act[3])
{
    for (; count > 0; --count, ++x, ++out) {
        int32_t m = act[2] ? *out : act[0], t;
        for (t = 0; t < taps; ++t) {
            m = x[t * step] > m ? x[t * step] : m;
        }
        *out = (int8_t)(m < act[1] ? m : act[1]);
    }
}
#endif
