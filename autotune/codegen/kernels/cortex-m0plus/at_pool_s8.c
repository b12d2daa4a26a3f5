/* AVERAGE_POOL_2D and MAX_POOL_2D for the Cortex-M0+: the generic average pool, and a max pool
 * that keeps each channel's running maximum in a register (the generic one keeps it in the
 * output: a load and a compare-and-store per tap), in assembly, one row of a window a call.
 *
 * Each output byte is written after the last read of its channel's window, later than the
 * generic kernel writes it, so the pool may still run in place. */
#include "at_common.h"
#include "at_kernels.h"
#include "at_m0plus.h"

#define at_max_pool_s8 at_max_pool_s8_generic /* replaced below; the linker drops it */
void at_max_pool_s8(const at_pool_params_t *p, const int8_t *input, int8_t *output);
#include "../at_pool_s8.c"
#undef at_max_pool_s8

/* out[c] = the maximum over taps t of x[c + t * step] (one row of a window) and, with act[2]
 * nonzero, of out[c] (the rows before), clamped to [act_min, act_max] = act[0..1], c < count.
 * Clamping is monotonic, so clamping each row's maximum clamps the window's. */
void at_m0_max_taps(const int8_t *x, int8_t *out, int32_t count, int32_t step, int32_t taps,
                    const int32_t act[3]);
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

void at_max_pool_s8(const at_pool_params_t *p, const int8_t *input, int8_t *output)
{
    const int32_t channels = p->channels;
    const int32_t in_row = p->in_w * channels;
    int32_t act[3];
    int32_t b, oy, ox;
    for (b = 0; b < p->batches; ++b) {
        const int8_t *in_b = input + b * p->in_h * in_row;
        for (oy = 0; oy < p->out_h; ++oy) {
            const int32_t iy0 = oy * p->stride_h - p->pad_h;
            int32_t fy0, fy1;
            at_tap_range(iy0, 1, p->filter_h, p->in_h, &fy0, &fy1);
            for (ox = 0; ox < p->out_w; ++ox, output += channels) {
                const int32_t ix0 = ox * p->stride_w - p->pad_w;
                const int8_t *x;
                int32_t fx0, fx1, fy;
                at_tap_range(ix0, 1, p->filter_w, p->in_w, &fx0, &fx1);
                x = in_b + (iy0 + fy0) * in_row + (ix0 + fx0) * channels;
                act[0] = p->act_min;
                act[1] = p->act_max;
                for (act[2] = 0, fy = fy0; fy < fy1; ++fy, x += in_row, act[2] = 1) {
                    at_m0_max_taps(x, output, channels, channels, fx1 - fx0, act);
                }
            }
        }
    }
}
