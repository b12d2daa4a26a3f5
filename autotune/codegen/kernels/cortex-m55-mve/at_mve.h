/* Helium (MVE) helpers of the cortex-m55-mve kernels: requantization of four int32 lanes at a
 * time, bit-exact with at_mbqm / at_output_s8 in ../at_common.h, and the dot products of the
 * conv and fully connected kernels.
 *
 * VQRDMULH is gemmlowp's SaturatingRoundingDoublingHighMul exactly (for a product >= 0 both are
 * floor((a b + 2^30) / 2^31); below, both round a remainder of exactly 2^30 toward zero, and
 * both saturate INT32_MIN * INT32_MIN). VRSHL by -e rounds halves up; RoundingDivideByPOT
 * rounds them away from zero, so a negative lane first gets -1 (saturating), as TFLM's NEON
 * and CMSIS-NN's MVE paths do. That fix-up and TFLM's left shift cost instructions that most
 * layers do not need, so a kernel picks one of three requantization modes per call
 * (at_mve_mode); its assembly loops have a variant per mode.
 */
#ifndef AT_MVE_H
#define AT_MVE_H

#include <arm_mve.h>
#include <stddef.h>
#include <stdint.h>

#include "at_common.h"

#if !defined(__ARM_FEATURE_MVE)
#error "the cortex-m55-mve kernels need Helium: compile with -mcpu=cortex-m55"
#endif

/* The kernels' loops are built for -O2 scheduling and unrolling whatever the image's -Os. */
#define AT_MVE_FAST __attribute__((optimize("O2")))

/* Requantization modes, from the layer's shifts and activation:
 *   AT_MVE_RELU: every shift <= 0 and act_min >= the output zero point: a negative value ends at
 *     act_min however it rounds, so no fix-up; no left shift.
 *   AT_MVE_RIGHT: every shift < 0: the fix-up on every lane, no left shift.
 *   AT_MVE_ANY: left shifts where a shift is > 0, the fix-up where it is < 0. */
enum { AT_MVE_RELU, AT_MVE_RIGHT, AT_MVE_ANY };

AT_INLINE int32_t at_mve_mode(const at_channel_t *ch, int32_t count, const at_output_t *q)
{
    /* the largest shift (only the shifts decide), four channels a gather stepping its addresses */
    uint32x4_t at = vaddq_n_u32(vmulq_n_u32(vidupq_n_u32(0u, 1), (uint32_t)sizeof(at_channel_t)),
                                (uint32_t)(uintptr_t)&ch->shift - 4u * sizeof(at_channel_t));
    int32x4_t top = vdupq_n_s32(-1);
    int32_t c, hi;
    for (c = count; c >= 4; c -= 4) {
        top = vmaxq_s32(top, vldrwq_gather_base_wb_s32(&at, 4 * sizeof(at_channel_t)));
    }
    if (c > 0) {
        const mve_pred16_t p = vctp32q((uint32_t)c);
        top = vmaxq_m_s32(top, top, vldrwq_gather_base_z_s32(at, 4 * sizeof(at_channel_t), p), p);
    }
    hi = vmaxvq_s32(-1, top);
    if (hi <= 0 && q->min >= q->offset) {
        return AT_MVE_RELU;
    }
    return hi < 0 ? AT_MVE_RIGHT : AT_MVE_ANY;
}

/* The output zero point and clamp of at_output_s8, on four lanes. */
AT_INLINE int32x4_t at_mve_clamp(int32x4_t y, int32_t offset, int32x4_t lo, int32x4_t hi)
{
    return vminq_s32(vmaxq_s32(vaddq_n_s32(y, offset), lo), hi);
}

/* at_mbqm of four accumulators of one channel (multiplier and shift scalars). */
AT_INLINE int32x4_t at_mve_mbqm_n(int32x4_t x, int32_t multiplier, int32_t shift, int32_t mode)
{
    if (mode == AT_MVE_ANY) {
        const int32_t left = shift > 0 ? shift : 0;
        const int32_t right = shift - left;
        x = vqrdmulhq_n_s32(vshlq_r_s32(x, left), multiplier);
        x = vqaddq_m_s32(x, x, vshrq_n_s32(x, 31), vctp32q(right < 0 ? 4u : 0u));
        return vrshlq_n_s32(x, right);
    }
    x = vqrdmulhq_n_s32(x, multiplier);
    if (mode == AT_MVE_RIGHT) {
        x = vqaddq_s32(x, vshrq_n_s32(x, 31));
    }
    return vrshlq_n_s32(x, shift);
}

/* at_mbqm of four accumulators, each lane its own channel's multiplier and shift. */
AT_INLINE int32x4_t at_mve_mbqm(int32x4_t x, int32x4_t multiplier, int32x4_t shift, int32_t mode)
{
    if (mode == AT_MVE_ANY) {
        const int32x4_t zero = vdupq_n_s32(0);
        const int32x4_t right = vminq_s32(shift, zero); /* -exponent of RoundingDivideByPOT */
        x = vqrdmulhq_s32(vshlq_s32(x, vmaxq_s32(shift, zero)), multiplier); /* VSHL wraps like TFLM */
        x = vqaddq_s32(x, vshrq_n_s32(vandq_s32(x, right), 31));
        return vrshlq_s32(x, right);
    }
    x = vqrdmulhq_s32(x, multiplier);
    if (mode == AT_MVE_RIGHT) {
        x = vqaddq_s32(x, vshrq_n_s32(x, 31));
    }
    return vrshlq_s32(x, shift);
}

/* Four int32 lanes from four scalars: two VMOVs of two lanes each (no intrinsic; GCC 12 builds
 * the vector from vsetq_lane with four moves, or from vcreateq through the stack). */
AT_INLINE int32x4_t at_mve_lanes(int32_t a, int32_t b, int32_t c, int32_t d)
{
    int32x4_t v;
    __asm__("vmov %q0[2], %q0[0], %1, %3\n\tvmov %q0[3], %q0[1], %2, %4"
            : "=w"(v) : "r"(a), "r"(b), "r"(c), "r"(d));
    return v;
}

/* The addresses of four consecutive at_channel_t records from ch, for gathering one field of each. */
AT_INLINE uint32x4_t at_mve_records(const at_channel_t *ch)
{
    return vaddq_n_u32(vmulq_n_u32(vidupq_n_u32(0u, 1), (uint32_t)sizeof(at_channel_t)), (uint32_t)(uintptr_t)ch);
}

/* The rows of at_mve_rows, as its assembly reads them and updates them group by group. */
typedef struct {
    const int8_t *x;          /* the input: n values */
    int32_t n;
    const int8_t *rows;       /* unused by the assembly after the start: the first row */
    int8_t *out;              /* the next group's first output */
    int32_t left;             /* rows not done yet, > 0 */
    int32_t d1, d2, d3;       /* bytes from a group's first row to its second, third, fourth */
    int32_t extra;            /* added to every accumulator */
    int32_t offset;           /* output zero point */
    int32_t advance;          /* 4 n less the bytes the loop steps a row pointer: to the next group */
} at_mve_rows_t;

#define AT_ROWS_X "0"
#define AT_ROWS_N "4"
#define AT_ROWS_ROWS "8"
#define AT_ROWS_OUT "12"
#define AT_ROWS_LEFT "16"
#define AT_ROWS_D1 "20"
#define AT_ROWS_D2 "24"
#define AT_ROWS_D3 "28"
#define AT_ROWS_EXTRA "32"
#define AT_ROWS_OFFSET "36"
#define AT_ROWS_ADVANCE "40"
typedef char at_rows_fields_at[offsetof(at_mve_rows_t, advance) == 40 && offsetof(at_mve_rows_t, d1) == 20 ? 1 : -1];

/* Every output channel of one position, orientation "one input, four filter rows": out[c] =
 * requantized(acc_init[c] + extra + x . w[c]), filter rows n apart, n > 0; for FULLY_CONNECTED (x
 * an input row) and a conv's border windows. Each 16-byte load of x feeds four VMLADAVA (64 MACs
 * per 5 loads) in a tail-predicated loop (DLSTP/LETP); the four sums are requantized in four
 * lanes with the channels' constants gathered from their records (`records`: the addresses of
 * four consecutive records, stepped 48 bytes a group). Mode AT_MVE_ANY per lane: a left shift
 * where the shift is > 0, the rounding fix-up and shift right where it is < 0 (predicated VSHL,
 * VCMP, VQSUB, VRSHL). Fewer than four rows read the last row again for the missing ones and
 * store only their own outputs (a narrowing store: its pointer in a low register, "l"). In
 * assembly, as GCC 12 spills the pointers of this loop (28 cycles a chunk instead of 11). VPR is written: out of line, the call clobbers it (the
 * Armv8.1-M procedure call standard does not preserve VPR). */
static AT_NOINLINE void at_mve_rows_run(at_mve_rows_t *r, uint32x4_t records, int32x4_t lo, int32x4_t hi,
                                        int32_t mode)
{
#define AT_MVE_ROWS(REQUANT)                                                                       \
    __asm__ volatile("ldr %[wa], [%[r], #" AT_ROWS_ROWS "]\n\t"                                    \
                     "ldr %[out], [%[r], #" AT_ROWS_OUT "]\n"                                       \
                     "2:\n\t"                                                                      \
                     "ldr r0, [%[r], #" AT_ROWS_N "]\n\t"                                          \
                     "ldr r2, [%[r], #" AT_ROWS_D1 "]\n\t"                                         \
                     "add %[wb], %[wa], r2\n\t"                                                    \
                     "ldr r2, [%[r], #" AT_ROWS_D2 "]\n\t"                                         \
                     "add %[wc], %[wa], r2\n\t"                                                    \
                     "ldr r2, [%[r], #" AT_ROWS_D3 "]\n\t"                                         \
                     "add %[wd], %[wa], r2\n\t"                                                    \
                     "ldr %[xt], [%[r], #" AT_ROWS_X "]\n\t"                                       \
                     "dlstp.8 lr, r0\n\t"                                                          \
                     "ldr r0, [%[r], #" AT_ROWS_EXTRA "]\n\t"                                      \
                     "mov r2, r0\n\t"                                                              \
                     "mov r4, r0\n\t"                                                              \
                     "mov r6, r0\n"                                                                \
                     "1:\n\t"                                                                      \
                     "vldrb.u8 %q[x], [%[xt]], #16\n\t"                                            \
                     "vldrb.u8 %q[w], [%[wa]], #16\n\t"                                            \
                     "vmladava.s8 r0, %q[x], %q[w]\n\t"                                            \
                     "vldrb.u8 %q[w], [%[wb]], #16\n\t"                                            \
                     "vmladava.s8 r2, %q[x], %q[w]\n\t"                                            \
                     "vldrb.u8 %q[w], [%[wc]], #16\n\t"                                            \
                     "vmladava.s8 r4, %q[x], %q[w]\n\t"                                            \
                     "vldrb.u8 %q[w], [%[wd]], #16\n\t"                                            \
                     "vmladava.s8 r6, %q[x], %q[w]\n\t"                                            \
                     "letp lr, 1b\n\t"                                                             \
                     "vmov %q[a][2], %q[a][0], r0, r4\n\t"                                         \
                     "vmov %q[a][3], %q[a][1], r2, r6\n\t"                                         \
                     "vldrw.u32 %q[c], [%q[q]]\n\t"                                                \
                     "vldrw.u32 %q[s], [%q[q], #8]\n\t"                                            \
                     "vadd.i32 %q[a], %q[a], %q[c]\n\t"                                            \
                     "vldrw.u32 %q[c], [%q[q], #4]\n\t" REQUANT                                    \
                     "ldr r0, [%[r], #" AT_ROWS_OFFSET "]\n\t"                                     \
                     "vadd.i32 %q[a], %q[a], r0\n\t"                                               \
                     "movs r0, #48\n\t"                                                            \
                     "vmax.s32 %q[a], %q[a], %q[lo]\n\t"                                           \
                     "vadd.i32 %q[q], %q[q], r0\n\t"                                               \
                     "vmin.s32 %q[a], %q[a], %q[hi]\n\t"                                           \
                     "ldr r0, [%[r], #" AT_ROWS_LEFT "]\n\t"                                       \
                     "vctp.32 r0\n\t"                                                              \
                     "vpst\n\t"                                                                    \
                     "vstrbt.32 %q[a], [%[out]]\n\t"                                               \
                     "adds %[out], #4\n\t"                                                         \
                     "ldr r2, [%[r], #" AT_ROWS_ADVANCE "]\n\t"                                    \
                     "add %[wa], %[wd], r2\n\t"                                                    \
                     "ldr r2, [%[r], #" AT_ROWS_D3 "]\n\t"                                         \
                     "subs %[wa], r2\n\t"                                                          \
                     "subs r0, #4\n\t"                                                             \
                     "str r0, [%[r], #" AT_ROWS_LEFT "]\n\t"                                       \
                     "bgt 2b"                                                                       \
                     : [x] "=&w"(x), [w] "=&w"(w), [a] "=&w"(a), [c] "=&w"(c), [s] "=&w"(s),         \
                       [q] "+w"(records), [xt] "=&r"(xt), [wa] "=&r"(wa), [wb] "=&r"(wb),           \
                       [wc] "=&r"(wc), [wd] "=&r"(wd), [out] "=&l"(out)                            \
                     : [r] "r"(r), [lo] "w"(lo), [hi] "w"(hi)                                       \
                     : "r0", "r2", "r4", "r6", "lr", "cc", "memory")
    int32x4_t x, w, a, c, s;
    const int8_t *xt, *wa, *wb, *wc, *wd;
    int8_t *out;
    if (mode == AT_MVE_RELU) {
        AT_MVE_ROWS("vqrdmulh.s32 %q[a], %q[a], %q[c]\n\t"
                    "vrshl.s32 %q[a], %q[a], %q[s]\n\t");
    } else if (mode == AT_MVE_RIGHT) {
        AT_MVE_ROWS("vqrdmulh.s32 %q[a], %q[a], %q[c]\n\t"
                    "movs r0, #1\n\t"
                    "vpt.s32 lt, %q[a], zr\n\t"
                    "vqsubt.s32 %q[a], %q[a], r0\n\t"
                    "vrshl.s32 %q[a], %q[a], %q[s]\n\t");
    } else {
        AT_MVE_ROWS("vpt.s32 gt, %q[s], zr\n\t"
                    "vshlt.s32 %q[a], %q[a], %q[s]\n\t"
                    "vqrdmulh.s32 %q[a], %q[a], %q[c]\n\t"
                    "movs r0, #1\n\t"
                    "vptt.s32 lt, %q[s], zr\n\t"
                    "vcmpt.s32 lt, %q[a], zr\n\t"
                    "vqsubt.s32 %q[a], %q[a], r0\n\t"
                    "vpt.s32 le, %q[s], zr\n\t"
                    "vrshlt.s32 %q[a], %q[a], %q[s]\n\t");
    }
#undef AT_MVE_ROWS
}

/* at_mve_rows_run on `rows` rows; returns out past them. */
AT_INLINE int8_t *at_mve_rows(const int8_t *x, const int8_t *filter, int32_t n, int32_t rows,
                              const at_channel_t *ch, int32_t extra, const at_output_t *q, int8_t *out,
                              int32_t mode)
{
    const int32_t d3 = (rows > 3 ? 3 : rows - 1) * n;
    at_mve_rows_t run = {x, n, filter, out, rows, (rows > 1) * n, (rows > 2 ? 2 : rows - 1) * n, d3,
                         extra, q->offset, 4 * n - ((n + 15) & ~15)};
    at_mve_rows_run(&run, at_mve_records(ch), vdupq_n_s32(q->min), vdupq_n_s32(q->max), mode);
    return out + rows;
}

#endif /* AT_MVE_H */
