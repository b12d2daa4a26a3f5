/* FULLY_CONNECTED, int8 (TFLM reference_integer_ops::FullyConnected and
 * FullyConnectedPerChannel), Helium: four output units at a time, an input row of at most 32
 * bytes held in registers against the filter rows one after another (short_layer), rows of 20 or
 * 24 bytes in the code generator's grouped-tails layout with four rows' tails in two loads
 * (tails_<T>_<mode>), a longer one sharing each 16-byte load among the four rows (VMLADAVA,
 * at_mve_long_run, at_mve_rows); the path chosen by the code generator (`path`). The sums are
 * those of ../at_fully_connected_s8.c. short_layer requantizes in mode AT_MVE_RIGHT unless a shift
 * is 0 or above, the tails layers in the mode the code generator chose, the others in mode
 * AT_MVE_ANY: on these short layers a scan of the shifts for a cheaper mode costs more than it
 * saves. */
#include "at_common.h"
#include "at_kernels.h"
#include "at_mve.h"

/* at_mve_rows out of line: its record on the stack stays out of the short path's frame */
static AT_NOINLINE int8_t *rows(const int8_t *x, const int8_t *filter, int32_t n, int32_t count,
                                const at_channel_t *ch, int32_t extra, const at_output_t *q, int8_t *out,
                                int32_t mode)
{
    return at_mve_rows(x, filter, n, count, ch, extra, q, out, mode);
}

/* Groups of four consecutive filter rows of n bytes, n a multiple of 16 above 32 (filter zero
 * point 0): out[c] = requantized(acc_init[c] + x . w[c]) in mode AT_MVE_ANY, as at_mve_rows_run
 * (each 16-byte load of the input feeding four VMLADAVA) with its state in registers: the rows of
 * a group follow the last group's, so its row pointers end where the next group's first row
 * starts; the constants are gathered 48 bytes ahead of the records vector, the last gather
 * stepping it (no step register); the rounding fix-up as at_mve_mbqm's (a lane's sign and its
 * shift's, no VPT). In assembly (GCC 12 spills); VPR is written: out of line, the call clobbers it. */
static AT_NOINLINE void at_mve_long_run(const at_fully_connected_params_t *p, const int8_t *input, int8_t *out,
                                        int32_t groups)
{
    const int32_t n = p->accum_depth, offset = p->output_quant.offset;
    const int8_t *wa = p->filter;
    const int32x4_t lo = vdupq_n_s32(p->output_quant.min), hi = vdupq_n_s32(p->output_quant.max);
    uint32x4_t records = vsubq_n_u32(at_mve_records(p->channels), 48u);
    int32x4_t x, w, a, s;
    const int8_t *wb, *wc, *wd;
    __asm__ volatile("add %[wb], %[wa], %[n]\n\t"
                     "add %[wc], %[wb], %[n]\n\t"
                     "add %[wd], %[wc], %[n]\n"
                     "2:\n\t"
                     "movs r0, #0\n\t"
                     "movs r2, #0\n\t"
                     "movs r4, #0\n\t"
                     "movs r6, #0\n\t"
                     "lsrs lr, %[n], #4\n\t"
                     "dls lr, lr\n"
                     "1:\n\t"
                     "vldrb.u8 %q[x], [%[xt]], #16\n\t"
                     "vldrb.u8 %q[w], [%[wa]], #16\n\t"
                     "vmladava.s8 r0, %q[x], %q[w]\n\t"
                     "vldrb.u8 %q[w], [%[wb]], #16\n\t"
                     "vmladava.s8 r2, %q[x], %q[w]\n\t"
                     "vldrb.u8 %q[w], [%[wc]], #16\n\t"
                     "vmladava.s8 r4, %q[x], %q[w]\n\t"
                     "vldrb.u8 %q[w], [%[wd]], #16\n\t"
                     "vmladava.s8 r6, %q[x], %q[w]\n\t"
                     "le lr, 1b\n\t"
                     "vldrw.u32 %q[s], [%q[q], #56]\n\t"
                     "vmov %q[a][2], %q[a][0], r0, r4\n\t"
                     "vldrw.u32 %q[w], [%q[q], #48]!\n\t"
                     "vmov %q[a][3], %q[a][1], r2, r6\n\t"
                     "vadd.i32 %q[a], %q[a], %q[w]\n\t"
                     "vldrw.u32 %q[w], [%q[q], #4]\n\t"
                     "subs %[xt], %[n]\n\t"
                     "vpt.s32 gt, %q[s], zr\n\t"
                     "vshlt.s32 %q[a], %q[a], %q[s]\n\t"
                     "vqrdmulh.s32 %q[a], %q[a], %q[w]\n\t"
                     "mov %[wa], %[wd]\n\t"
                     "vand %q[w], %q[a], %q[s]\n\t"
                     "add %[wb], %[wa], %[n]\n\t"
                     "vshr.s32 %q[w], %q[w], #31\n\t"
                     "add %[wc], %[wb], %[n]\n\t"
                     "vqadd.s32 %q[a], %q[a], %q[w]\n\t"
                     "add %[wd], %[wc], %[n]\n\t"
                     "vpt.s32 le, %q[s], zr\n\t"
                     "vrshlt.s32 %q[a], %q[a], %q[s]\n\t"
                     "vadd.i32 %q[a], %q[a], %[offset]\n\t"
                     "vmax.s32 %q[a], %q[a], %q[lo]\n\t"
                     "vmin.s32 %q[a], %q[a], %q[hi]\n\t"
                     "vstrb.32 %q[a], [%[out]], #4\n\t"
                     "subs %[groups], #1\n\t"
                     "bne 2b"
                     : [x] "=&w"(x), [w] "=&w"(w), [a] "=&w"(a), [s] "=&w"(s), [q] "+w"(records),
                       [xt] "+r"(input), [wa] "+r"(wa), [wb] "=&r"(wb), [wc] "=&r"(wc), [wd] "=&r"(wd),
                       [out] "+r"(out), [groups] "+r"(groups)
                     : [n] "r"(n), [offset] "r"(offset), [lo] "w"(lo), [hi] "w"(hi)
                     : "r0", "r2", "r4", "r6", "lr", "cc", "memory");
}

/* The common short layer: one input row of n <= 32 bytes, `groups` groups of four units, filter
 * zero point 0; out[c] = requantized(acc_init[c] + x . w[c]), four a group. The input is held in
 * x0 and x1 (bytes 16-31), zero past n: per row one or two 16-byte loads walking the filter (the
 * input's zero lanes cancel the bytes past the row, which belong to the next row or are the zeros
 * after the filter array, AT_WEIGHT_TAIL) and VMLADAV(A), rows of exactly 16 or 32 bytes by
 * post-incremented loads; per group the four sums requantized in four lanes (the channels'
 * constants gathered from their records, the records vector stepped 48 bytes a group by the
 * gather of acc_init, the gathers of acc_init and shift issued before the dot products, as their
 * results come late) and stored whole, post-incremented. Requantized as mode AT_MVE_RIGHT, with
 * no VPT, which would end QEMU's translation blocks and, on the core, costs an instruction: the
 * rounding fix-up (a saturating -1 on negative lanes) is exact whatever the clamp, as long as
 * every shift is below 0 (a shift of 0 divides by 1: the -1 would stay); the largest shift is kept
 * as the groups go (VMAXV, from below 0): 0 or above, the outputs are wrong and are done again by
 * at_mve_rows in mode AT_MVE_ANY. With no input pointer, chunk
 * loop or row pointers to keep, LLVM's Cortex-M55 model issues about one instruction a cycle.
 * In assembly (GCC 12 spills, and builds each predicate anew through VMRS and VMSR); VPR is
 * written: out of line, the call clobbers it. */
static AT_NOINLINE void short_layer(const at_fully_connected_params_t *p, const int8_t *input, int8_t *output,
                                    int32_t groups)
{
    const int32_t n = p->accum_depth, offset = p->output_quant.offset;
    const int8_t *w = p->filter;
    int32x4_t lo, hi, wv, a, sv, x0, x1;
    uint32x4_t records;
    int8_t *out;
    int32_t top = -1;
    out = output;
    lo = vdupq_n_s32(p->output_quant.min);
    hi = vdupq_n_s32(p->output_quant.max);
    records = vsubq_n_u32(at_mve_records(p->channels), 48u);
#define AT_ROW_16(SUM) "vldrb.u8 %q[w], [%[wp]], #16\n\t"                                             \
    "vmladav.s8 " SUM ", %q[x0], %q[w]\n\t"
#define AT_ROW_32(SUM) "vldrb.u8 %q[w], [%[wp]], #16\n\t"                                             \
    "vmladav.s8 " SUM ", %q[x0], %q[w]\n\t"                                                      \
    "vldrb.u8 %q[w], [%[wp]], #16\n\t"                                                           \
    "vmladava.s8 " SUM ", %q[x1], %q[w]\n\t"
#define AT_SHORT_ROW(SUM) "vldrb.u8 %q[w], [%[wp]]\n\t"                                               \
    "add %[wp], %[n]\n\t"                                                                        \
    "vmladav.s8 " SUM ", %q[x0], %q[w]\n\t"
#define AT_LONG_ROW(SUM) "vldrb.u8 %q[w], [%[wp]]\n\t"                                                \
    "vmladav.s8 " SUM ", %q[x0], %q[w]\n\t"                                                      \
    "vldrb.u8 %q[w], [%[wp], #16]\n\t"                                                          \
    "vmladava.s8 " SUM ", %q[x1], %q[w]\n\t"                                                     \
    "add %[wp], %[n]\n\t"
/* the input: x0, and x1 for rows above 16 bytes (`top` a scratch, then ~(n - 16) < 0 as its start) */
#define AT_X0 "vctp.8 %[n]\n\tvpst\n\tvldrbt.u8 %q[x0], [%[in]]\n\t"
#define AT_X1 AT_X0 "subs %[top], %[n], #16\n\tvctp.8 %[top]\n\tvpst\n\t"                         \
    "vldrbt.u8 %q[x1], [%[in], #16]\n\tmvns %[top], %[top]\n\t"
#define AT_SHORT(X, ROW)                                                                         \
    __asm__ volatile(X "dls lr, %[groups]\n"                                                     \
                     "2:\n\t"                                                                    \
                     "vldrw.u32 %q[s], [%q[q], #56]\n\t"                                         \
                     "vldrw.u32 %q[a], [%q[q], #48]!\n\t"                                        \
                     ROW("r0") ROW("r2") ROW("r4") ROW("r6")                                      \
                     "vmov %q[w][2], %q[w][0], r0, r4\n\t"                                       \
                     "vmov %q[w][3], %q[w][1], r2, r6\n\t"                                       \
                     "vadd.i32 %q[a], %q[a], %q[w]\n\t"                                          \
                     "vldrw.u32 %q[w], [%q[q], #4]\n\t"                                          \
                     "vmaxv.s32 %[top], %q[s]\n\t"                                               \
                     "vqrdmulh.s32 %q[a], %q[a], %q[w]\n\t"                                      \
                     "vshr.s32 %q[w], %q[a], #31\n\t"                                            \
                     "vqadd.s32 %q[a], %q[a], %q[w]\n\t"                                         \
                     "vrshl.s32 %q[a], %q[a], %q[s]\n\t"                                         \
                     "vadd.i32 %q[a], %q[a], %[offset]\n\t"                                      \
                     "vmax.s32 %q[a], %q[a], %q[lo]\n\t"                                         \
                     "vmin.s32 %q[a], %q[a], %q[hi]\n\t"                                         \
                     "vstrb.32 %q[a], [%[out]], #4\n\t"                                          \
                     "le lr, 2b"                                                                  \
                     : [w] "=&w"(wv), [a] "=&w"(a), [s] "=&w"(sv), [x0] "=&w"(x0), [x1] "=&w"(x1),   \
                       [q] "+w"(records), [wp] "+r"(w), [out] "+l"(out), [top] "+r"(top)           \
                     : [n] "r"(n), [in] "r"(input), [groups] "r"(groups), [offset] "r"(offset),     \
                       [lo] "w"(lo), [hi] "w"(hi)                                                   \
                     : "r0", "r2", "r4", "r6", "lr", "cc", "memory")
    if (n > 16) { /* two tests on every path: a taken branch costs the core two cycles more */
        if (n == 32) {
            AT_SHORT(AT_X1, AT_ROW_32);
        } else {
            AT_SHORT(AT_X1, AT_LONG_ROW);
        }
    } else if (n == 16) {
        AT_SHORT(AT_X0, AT_ROW_16);
    } else {
        AT_SHORT(AT_X0, AT_SHORT_ROW);
    }
#undef AT_ROW_16
#undef AT_ROW_32
#undef AT_SHORT_ROW
#undef AT_LONG_ROW
#undef AT_X0
#undef AT_X1
#undef AT_SHORT
    if (top >= 0) {
        rows(input, p->filter, n, 4 * groups, p->channels, 0, &p->output_quant, out - 4 * groups, AT_MVE_ANY);
    }
}

/* A layer whose filter and channel table the code generator stored in the grouped-tails layout
 * (at_kernels.h): one input row of n = 16 + T bytes, T 4 or 8, filter zero point 0, `out_depth` a
 * multiple of 4, every shift below 0 (mode AT_MVE_RIGHT) or at most 0 under a ReLU-like clamp
 * (mode AT_MVE_RELU, no fix-up); one function per tail and mode (tails_<T>_<mode>), the entry
 * branching to it. A group of four rows is their first 16 bytes each, then their four tails
 * together (4 T bytes): each row takes one load and one VMLADAV against x0 (the input's first 16
 * bytes), and two loads of the tails feed the four rows' last VMLADAVAs against xt (the input's
 * last T bytes at lanes 0 to T - 1, zeros elsewhere) and xu (the same at lanes T to 2 T - 1): 14
 * loads and dot products a group, where rows read one after another take 16 and four pointer
 * steps. The group's constants are 48 contiguous bytes (acc_init, multipliers, shifts), read by
 * one pointer. Software-pipelined: each group's requantization (sharing the one scratch register
 * with the filter loads) is interleaved with the next group's dot products, 26 instructions and
 * 28 cycles a group in LLVM's Cortex-M55 model; the first group's dot products before the loop,
 * the last group's requantization after it. In assembly (GCC 12 spills); VPR is written: out of
 * line, the call clobbers it. */
/* the dot products of a group: four rows' first 16 bytes, then the tails (OFF 2 T, STEP 4 T) */
#define AT_DOTS(OFF, STEP) "vldrb.u8 %q[w], [%[wp]], #16\n\t"                                          \
    "vmladav.s8 r4, %q[x0], %q[w]\n\t"                                                           \
    "vldrb.u8 %q[w], [%[wp]], #16\n\t"                                                           \
    "vmladav.s8 r6, %q[x0], %q[w]\n\t"                                                           \
    "vldrb.u8 %q[w], [%[wp]], #16\n\t"                                                           \
    "vmladav.s8 r8, %q[x0], %q[w]\n\t"                                                           \
    "vldrb.u8 %q[w], [%[wp]], #16\n\t"                                                           \
    "vmladav.s8 r10, %q[x0], %q[w]\n\t"                                                           \
    "vldrb.u8 %q[w], [%[wp], #" OFF "]\n\t"                                                     \
    "vmladava.s8 r8, %q[xt], %q[w]\n\t"                                                          \
    "vmladava.s8 r10, %q[xu], %q[w]\n\t"                                                          \
    "vldrb.u8 %q[w], [%[wp]], #" STEP "\n\t"                                                    \
    "vmladava.s8 r4, %q[xt], %q[w]\n\t"                                                          \
    "vmladava.s8 r6, %q[xu], %q[w]\n\t"
/* the four sums plus acc_init into a, the constants' pointer stepped past the group's */
#define AT_SUMS "vldrw.u32 %q[a], [%[cp]], #48\n\t"                                                  \
    "vmov %q[w][2], %q[w][0], r4, r8\n\t"                                                        \
    "vmov %q[w][3], %q[w][1], r6, r10\n\t"                                                        \
    "vadd.i32 %q[a], %q[a], %q[w]\n\t"
/* the fix-up of mode AT_MVE_RIGHT, exact whatever the clamp as every shift is below 0: a
 * saturating -1 on negative lanes */
#define AT_FIX_RIGHT "vshr.s32 %q[w], %q[a], #31\n\t"                                               \
    "vqadd.s32 %q[a], %q[a], %q[w]\n\t"
#define AT_FIX_RELU ""
/* the loop: group i's dot products, group i - 1's requantization between them */
#define AT_PIPE(OFF, STEP, FIX) "vldrb.u8 %q[w], [%[wp]], #16\n\t"                                   \
    "vmladav.s8 r4, %q[x0], %q[w]\n\t"                                                           \
    "vldrw.u32 %q[w], [%[cp], #-32]\n\t"                                                         \
    "vqrdmulh.s32 %q[a], %q[a], %q[w]\n\t"                                                       \
    "vldrb.u8 %q[w], [%[wp]], #16\n\t"                                                           \
    "vmladav.s8 r6, %q[x0], %q[w]\n\t"                                                           \
    FIX                                                                                          \
    "vldrw.u32 %q[w], [%[cp], #-16]\n\t"                                                         \
    "vrshl.s32 %q[a], %q[a], %q[w]\n\t"                                                          \
    "vldrb.u8 %q[w], [%[wp]], #16\n\t"                                                           \
    "vmladav.s8 r8, %q[x0], %q[w]\n\t"                                                           \
    "vadd.i32 %q[a], %q[a], %[offset]\n\t"                                                       \
    "vldrb.u8 %q[w], [%[wp]], #16\n\t"                                                           \
    "vmladav.s8 r10, %q[x0], %q[w]\n\t"                                                           \
    "vmax.s32 %q[a], %q[a], %q[lo]\n\t"                                                          \
    "vldrb.u8 %q[w], [%[wp], #" OFF "]\n\t"                                                     \
    "vmladava.s8 r8, %q[xt], %q[w]\n\t"                                                          \
    "vmin.s32 %q[a], %q[a], %q[hi]\n\t"                                                          \
    "vmladava.s8 r10, %q[xu], %q[w]\n\t"                                                          \
    "vldrb.u8 %q[w], [%[wp]], #" STEP "\n\t"                                                    \
    "vmladava.s8 r4, %q[xt], %q[w]\n\t"                                                          \
    "vstrb.32 %q[a], [%[out]], #4\n\t"                                                           \
    "vmladava.s8 r6, %q[xu], %q[w]\n\t" AT_SUMS
/* the last group's requantization */
#define AT_LAST(FIX) "vldrw.u32 %q[w], [%[cp], #-32]\n\t"                                            \
    "vqrdmulh.s32 %q[a], %q[a], %q[w]\n\t" FIX                                                   \
    "vldrw.u32 %q[w], [%[cp], #-16]\n\t"                                                         \
    "vrshl.s32 %q[a], %q[a], %q[w]\n\t"                                                          \
    "vadd.i32 %q[a], %q[a], %[offset]\n\t"                                                       \
    "vmax.s32 %q[a], %q[a], %q[lo]\n\t"                                                          \
    "vmin.s32 %q[a], %q[a], %q[hi]\n\t"                                                          \
    "vstrb.32 %q[a], [%[out]]\n\t"
/* The set-up, the sums' registers free until the dot products: the filter and constants'
 * pointers, the clamp, the output zero point, the groups after the first; x0, and xt and xu from
 * the input's last T bytes (word loads, which may be unaligned, and lane moves: VMOV Q[i + 2],
 * Q[i], Rt, Rt2 sets lane i to Rt; zero in r8) */
#define AT_SETUP "ldrd %[wp], %[cp], [%[p], #32]\n\t"                                                  \
    "ldrd r4, r6, [%[p], #24]\n\t"                                                               \
    "ldr %[offset], [%[p], #20]\n\t"                                                             \
    "ldr %[rest], [%[p], #8]\n\t"                                                                \
    "vdup.32 %q[lo], r4\n\t"                                                                     \
    "vdup.32 %q[hi], r6\n\t"                                                                     \
    "movs r8, #0\n\t"                                                                            \
    "asrs %[rest], %[rest], #2\n\t"                                                              \
    "vldrb.u8 %q[x0], [%[in]]\n\t"                                                               \
    "ldr r4, [%[in], #16]\n\t"                                                                   \
    "subs %[rest], #1\n\t"
#define AT_X_4 "vmov %q[xt][2], %q[xt][0], r4, r8\n\t"                                                \
    "vmov %q[xu][2], %q[xu][0], r8, r8\n\t"                                                      \
    "vmov %q[xt][3], %q[xt][1], r8, r8\n\t"                                                      \
    "vmov %q[xu][3], %q[xu][1], r4, r8\n\t"
#define AT_X_8 "ldr r6, [%[in], #20]\n\t"                                                           \
    "vmov %q[xt][2], %q[xt][0], r4, r8\n\t"                                                      \
    "vmov %q[xu][2], %q[xu][0], r8, r4\n\t"                                                      \
    "vmov %q[xt][3], %q[xt][1], r6, r8\n\t"                                                      \
    "vmov %q[xu][3], %q[xu][1], r8, r6\n\t"
#define AT_TAILS(NAME, T, OFF, STEP, MODE)                                                         \
    static AT_NOINLINE void NAME(const at_fully_connected_params_t *p, const int8_t *input, int8_t *output) \
    {                                                                                              \
        const int8_t *w;                                                                           \
        const at_channel_t *cp;                                                                    \
        int8_t *out = output;                                                                      \
        int32_t offset, rest;                                                                      \
        int8x16_t x0, xt, xu;                                                                      \
        int32x4_t wv, a, lo, hi;                                                                   \
        __asm__ volatile(AT_SETUP AT_X_##T AT_DOTS(OFF, STEP) AT_SUMS                              \
                         "wls lr, %[rest], 1f\n"                                                   \
                         "2:\n\t" AT_PIPE(OFF, STEP, AT_FIX_##MODE)                                \
                         "le lr, 2b\n"                                                             \
                         "1:\n\t" AT_LAST(AT_FIX_##MODE)                                           \
                         : [w] "=&w"(wv), [a] "=&w"(a), [x0] "=&w"(x0), [xt] "=&w"(xt), [xu] "=&w"(xu), \
                           [lo] "=&w"(lo), [hi] "=&w"(hi), [wp] "=&r"(w), [cp] "=&r"(cp),            \
                           [offset] "=&r"(offset), [rest] "=&r"(rest), [out] "+r"(out)               \
                         : [p] "r"(p), [in] "r"(input)                                              \
                         : "r4", "r6", "r8", "r10", "lr", "cc", "memory");                         \
    }
AT_TAILS(tails_4_relu, 4, "8", "16", RELU)
AT_TAILS(tails_4_right, 4, "8", "16", RIGHT)
AT_TAILS(tails_8_relu, 8, "16", "32", RELU)
AT_TAILS(tails_8_right, 8, "16", "32", RIGHT)
#undef AT_DOTS
#undef AT_SUMS
#undef AT_FIX_RIGHT
#undef AT_FIX_RELU
#undef AT_PIPE
#undef AT_LAST
#undef AT_SETUP
#undef AT_X_4
#undef AT_X_8
#undef AT_TAILS

/* Any layer but a short or long one: per input row, whole groups of four units as the short
 * layer where they take it, the other units through at_mve_rows. */
static AT_NOINLINE void other(const at_fully_connected_params_t *p, const int8_t *input, int8_t *output)
{
    const int32_t depth = p->accum_depth, units = p->out_depth;
    /* units taken four at a time as the short layer (filters of zero point 0): not for one group
     * and a rest (two calls cost more) */
    const int32_t whole = depth <= 32 && p->filter_offset == 0 && (units % 4 == 0 || units >= 8) ? units & ~3 : 0;
    const at_output_t q = p->output_quant; /* a copy: the stores to output could alias p's */
    int32_t b;
    for (b = 0; b < p->batches; ++b, input += depth, output += units) {
        int32_t input_term = 0; /* filter_offset * sum(x + input_offset); int8 filters have 0 */
        if (p->filter_offset != 0) {
            input_term = p->filter_offset * (at_sum_s8(input, depth) + depth * p->input_offset);
        }
        if (whole) {
            short_layer(p, input, output, whole >> 2);
        }
        if (whole < units) {
            rows(input, p->filter + whole * depth, depth, units - whole, p->channels + whole, input_term, &q,
                 output + whole, AT_MVE_ANY);
        }
    }
}


/* The entry: a branch by the code generator's choice of path (`path`, MVE_PATHS in
 * autotune/ops/fully_connected.py: its tests are those this kernel would make), each path
 * tail-called with the caller's arguments (GCC makes the switch a TBB, no frame). */
AT_MVE_FAST void at_fully_connected_s8(const at_fully_connected_params_t *p, const int8_t *input, int8_t *output)
{
    switch (p->path) { /* one line a path, each a tail call */
    case 0: other(p, input, output); return;
    case 1: short_layer(p, input, output, p->out_depth >> 2); return;
    case 2: at_mve_long_run(p, input, output, p->out_depth >> 2); return;
    case 3: tails_4_relu(p, input, output); return;
    case 4: tails_4_right(p, input, output); return;
    case 5: tails_8_relu(p, input, output); return;
    case 6: tails_8_right(p, input, output); return;
    default: __builtin_unreachable(); /* none: the code generator writes 0 to 6 */
    }
}
