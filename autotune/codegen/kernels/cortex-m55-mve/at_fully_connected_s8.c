/* FULLY_CONNECTED, int8 (TFLM reference_integer_ops::FullyConnected and
 * FullyConnectedPerChannel), Helium: four output units at a time, an input row of at most 32
 * bytes held in registers against the filter rows one after another (at_mve_short), a longer
 * one sharing each 16-byte load among the four rows (VMLADAVA, at_mve_rows). The sums are those
 * of ../at_fully_connected_s8.c; requantized in mode AT_MVE_ANY: on these short layers a scan of
 * the shifts for a cheaper mode costs more than it saves. */
#include "at_common.h"
#include "at_kernels.h"
#include "at_mve.h"

/* Groups of four consecutive filter rows of n <= 32 bytes (FULLY_CONNECTED's short layers), out[c]
 * = requantized(acc_init[c] + extra + x . w[c]) in mode AT_MVE_ANY, four a group. The input is
 * held in x0 and x1 (bytes 16-31), zero past n: per row one or two 16-byte loads walking the
 * filter (the input's zero lanes cancel the bytes past the row, which belong to the next row or
 * are the zeros after the filter array, AT_WEIGHT_TAIL) and VMLADAV(A); per group
 * the four sums requantized in four lanes (the channels' constants gathered from their records,
 * `records` stepped 48 bytes a group, as at_mve_rows_run) and stored whole. With no input
 * pointer, chunk loop or row pointers to keep, a group of 32-byte rows takes about 20 cycles of
 * multiply-accumulates and 27 of requantization (the constants' gathers interleaved with
 * the chain). In assembly (GCC 12 spills); VPR is written:
 * out of line, the call clobbers it. */
static AT_NOINLINE void at_mve_short_run(const at_fully_connected_params_t *p, const int8_t *input, int8_t *out,
                                         int32_t groups, int32_t extra)
{
    const int32_t n = p->accum_depth, offset = p->output_quant.offset;
    const int8_t *w = p->filter;
    const int32x4_t x0 = vreinterpretq_s32_s8(vldrbq_z_s8(input, vctp8q((uint32_t)n)));
    const int32x4_t x1 = vreinterpretq_s32_s8(vldrbq_z_s8(input + 16, vctp8q((uint32_t)(n > 16 ? n - 16 : 0))));
    const int32x4_t lo = vdupq_n_s32(p->output_quant.min), hi = vdupq_n_s32(p->output_quant.max);
    uint32x4_t records = at_mve_records(p->channels);
#define AT_SHORT_ROW(SUM) "vldrb.u8 %q[w], [%[wp]]\n\t"                                               \
    "add %[wp], %[n]\n\t"                                                                        \
    "vmladav.s8 " SUM ", %q[x0], %q[w]\n\t"
#define AT_LONG_ROW(SUM) "vldrb.u8 %q[w], [%[wp]]\n\t"                                                \
    "vmladav.s8 " SUM ", %q[x0], %q[w]\n\t"                                                      \
    "vldrb.u8 %q[w], [%[wp], #16]\n\t"                                                          \
    "vmladava.s8 " SUM ", %q[x1], %q[w]\n\t"                                                     \
    "add %[wp], %[n]\n\t"
#define AT_SHORT(ROW)                                                                            \
    __asm__ volatile("movs %[step], #48\n\t"                                                     \
                     "dls lr, %[groups]\n"                                                       \
                     "2:\n\t" ROW("r0") ROW("r2") ROW("r4") ROW("r6")                            \
                     "vldrw.u32 %q[s], [%q[q], #8]\n\t"                                          \
                     "vmov %q[a][2], %q[a][0], r0, r4\n\t"                                       \
                     "vldrw.u32 %q[w], [%q[q]]\n\t"                                              \
                     "vmov %q[a][3], %q[a][1], r2, r6\n\t"                                       \
                     "vadd.i32 %q[a], %q[a], %q[w]\n\t"                                          \
                     "vldrw.u32 %q[w], [%q[q], #4]\n\t"                                          \
                     "vadd.i32 %q[a], %q[a], %[extra]\n\t"                                       \
                     "vpt.s32 gt, %q[s], zr\n\t"                                                 \
                     "vshlt.s32 %q[a], %q[a], %q[s]\n\t"                                         \
                     "movs r0, #1\n\t"                                                           \
                     "vqrdmulh.s32 %q[a], %q[a], %q[w]\n\t"                                      \
                     "vadd.i32 %q[q], %q[q], %[step]\n\t"                                        \
                     "vptt.s32 lt, %q[s], zr\n\t"                                                \
                     "vcmpt.s32 lt, %q[a], zr\n\t"                                               \
                     "vqsubt.s32 %q[a], %q[a], r0\n\t"                                           \
                     "vpt.s32 le, %q[s], zr\n\t"                                                 \
                     "vrshlt.s32 %q[a], %q[a], %q[s]\n\t"                                        \
                     "vadd.i32 %q[a], %q[a], %[offset]\n\t"                                      \
                     "vmax.s32 %q[a], %q[a], %q[lo]\n\t"                                         \
                     "vmin.s32 %q[a], %q[a], %q[hi]\n\t"                                         \
                     "vstrb.32 %q[a], [%[out]]\n\t"                                              \
                     "adds %[out], #4\n\t"                                                       \
                     "le lr, 2b"                                                                  \
                     : [w] "=&w"(wv), [a] "=&w"(a), [s] "=&w"(sv), [q] "+w"(records), [wp] "+r"(w),  \
                       [out] "+l"(out), [step] "=&r"(step)                                        \
                     : [n] "r"(n), [groups] "r"(groups), [x0] "w"(x0), [x1] "w"(x1), [extra] "r"(extra), \
                       [offset] "r"(offset), [lo] "w"(lo), [hi] "w"(hi)                           \
                     : "r0", "r2", "r4", "r6", "lr", "memory")
    int32x4_t wv, a, sv;
    int32_t step;
    if (n <= 16) {
        AT_SHORT(AT_SHORT_ROW);
    } else {
        AT_SHORT(AT_LONG_ROW);
    }
#undef AT_SHORT_ROW
#undef AT_LONG_ROW
#undef AT_SHORT
}

/* at_mve_rows out of line: its record on the stack stays out of the short path's frame */
static AT_NOINLINE int8_t *rows(const int8_t *x, const int8_t *filter, int32_t n, int32_t count,
                                const at_channel_t *ch, int32_t extra, const at_output_t *q, int8_t *out,
                                int32_t mode)
{
    return at_mve_rows(x, filter, n, count, ch, extra, q, out, mode);
}

void at_fully_connected_s8(const at_fully_connected_params_t *p, const int8_t *input,
                           int8_t *output)
{
    const at_output_t q = p->output_quant; /* a copy: the stores to output could alias p's */
    const int32_t depth = p->accum_depth, units = p->out_depth;
    /* units taken four at a time by at_mve_short_run: not for one group and a rest (two calls cost more) */
    const int32_t whole = depth <= 32 && (units % 4 == 0 || units >= 8) ? units & ~3 : 0;
    const int32_t mode = AT_MVE_ANY; /* dense layers are short: finding a cheaper mode costs more */
    int32_t b;
    for (b = 0; b < p->batches; ++b, input += depth, output += units) {
        int32_t input_term = 0; /* filter_offset * sum(x + input_offset); int8 filters have 0 */
        if (p->filter_offset != 0) {
            input_term = p->filter_offset * (at_sum_s8(input, depth) + depth * p->input_offset);
        }
        if (whole) {
            at_mve_short_run(p, input, output, whole >> 2, input_term);
        }
        if (whole < units) {
            rows(input, p->filter + whole * depth, depth, units - whole, p->channels + whole, input_term, &q,
                 output + whole, mode);
        }
    }
}
