/* AVERAGE_POOL_2D and MAX_POOL_2D, int8 (TFLM reference_integer_ops::AveragePool / MaxPool),
 * Helium: sums over four channels and maxima over sixteen at a time. The window is clipped to
 * the input; the average divides by the clipped count, as in ../at_pool_s8.c. */
#include "at_common.h"
#include "at_kernels.h"
#include "at_mve.h"

AT_MVE_FAST void at_avg_pool_s8(const at_pool_params_t *p, const int8_t *input, int8_t *output)
{
    const int32_t channels = p->channels;
    const int32_t in_row = p->in_w * channels;
    int32_t b, oy, ox, c, fy, fx, k;
    for (b = 0; b < p->batches; ++b) {
        const int8_t *in_b = input + b * p->in_h * in_row;
        for (oy = 0; oy < p->out_h; ++oy) {
            const int32_t iy0 = oy * p->stride_h - p->pad_h;
            int32_t fy0, fy1;
            at_tap_range(iy0, 1, p->filter_h, p->in_h, &fy0, &fy1);
            for (ox = 0; ox < p->out_w; ++ox) {
                const int32_t ix0 = ox * p->stride_w - p->pad_w;
                int32_t fx0, fx1, count;
                uint32_t reciprocal;
                const int8_t *x;
                at_tap_range(ix0, 1, p->filter_w, p->in_w, &fx0, &fx1);
                count = (fy1 - fy0) * (fx1 - fx0); /* >= 1 for SAME and VALID padding */
                reciprocal = count == p->filter_h * p->filter_w ? p->reciprocal : 0;
                x = in_b + (iy0 + fy0) * in_row + (ix0 + fx0) * channels;
                for (c = 0; c < channels; c += 4) {
                    const mve_pred16_t pred = vctp32q((uint32_t)(channels - c));
                    const int8_t *xr = x + c;
                    int32x4_t sum = vdupq_n_s32(0);
                    int32_t sums[4];
                    for (fy = fy0; fy < fy1; ++fy, xr += in_row) {
                        const int8_t *xc = xr;
                        for (fx = fx0; fx < fx1; ++fx, xc += channels) {
                            sum = vaddq_s32(sum, vldrbq_z_s32(xc, pred));
                        }
                    }
                    vstrwq_s32(sums, sum);
                    for (k = 0; k < 4 && c + k < channels; ++k) {
                        *output++ = at_clamp_s8(at_rounded_average(sums[k], count, reciprocal),
                                                p->act_min, p->act_max);
                    }
                }
            }
        }
    }
}

/* The maximum of m and `taps` loads of up to 16 channels `pitch` bytes apart, four a pass:
 * independent maxima that the vector pipes overlap, and one loop branch per four taps. */
AT_INLINE int8x16_t max_taps(int8x16_t m, const int8_t *x, int32_t taps, int32_t pitch, mve_pred16_t pred)
{
    for (; taps >= 4; taps -= 4, x += 4 * pitch) {
        const int8x16_t a = vmaxq_s8(vldrbq_z_s8(x, pred), vldrbq_z_s8(x + pitch, pred));
        const int8x16_t b = vmaxq_s8(vldrbq_z_s8(x + 2 * pitch, pred), vldrbq_z_s8(x + 3 * pitch, pred));
        m = vmaxq_s8(m, vmaxq_s8(a, b));
    }
    for (; taps > 0; --taps, x += pitch) {
        m = vmaxq_s8(m, vldrbq_z_s8(x, pred));
    }
    return m;
}

/* max_run's common case in assembly (GCC 12 spills its pointers): `count` windows of one row of
 * up to four taps of up to 16 channels (predicate pl), taps at x, x + o1, x + o2, x + o3 (a
 * missing tap repeats the last), the loads interleaved with the maxima so that the two vector
 * pipes overlap; clamped only if `clamp`. VPR is written: out of line, the call clobbers it. */
static AT_NOINLINE void max4_run(const int8_t *x, int32_t count, uint32_t o1, uint32_t o2, uint32_t o3,
                                 int32_t step, int8_t *out, int32_t channels, mve_pred16_t pl, int8x16_t lo,
                                 int8x16_t hi, int32_t clamp)
{
#define AT_MAX4_RUN(CLAMP)                                                                          \
    __asm__ volatile("vmsr p0, %[pl]\n\t"                                                          \
                     "dls lr, %[count]\n"                                                          \
                     "1:\n\t"                                                                      \
                     "add r0, %[x], %[o1]\n\t"                                                     \
                     "add r1, %[x], %[o2]\n\t"                                                     \
                     "add r2, %[x], %[o3]\n\t"                                                     \
                     "vpstttt\n\t"                                                                 \
                     "vldrbt.u8 %q[a], [%[x]]\n\t"                                                 \
                     "vldrbt.u8 %q[b], [r0]\n\t"                                                   \
                     "vmaxt.s8 %q[a], %q[a], %q[b]\n\t"                                            \
                     "vldrbt.u8 %q[b], [r1]\n\t"                                                   \
                     "vpstt\n\t"                                                                   \
                     "vmaxt.s8 %q[a], %q[a], %q[b]\n\t"                                            \
                     "vldrbt.u8 %q[b], [r2]\n\t"                                                   \
                     "vmax.s8 %q[a], %q[a], %q[b]\n\t" CLAMP                                       \
                     "add %[x], %[step]\n\t"                                                       \
                     "vpst\n\t"                                                                    \
                     "vstrbt.8 %q[a], [%[out]]\n\t"                                                \
                     "add %[out], %[channels]\n\t"                                                 \
                     "le lr, 1b"                                                                    \
                     : [a] "=&w"(a), [b] "=&w"(b), [x] "+r"(x), [out] "+r"(out)                     \
                     : [count] "r"(count), [o1] "r"(o1), [o2] "r"(o2), [o3] "r"(o3), [step] "r"(step), \
                       [channels] "r"(channels), [pl] "r"((uint32_t)pl), [lo] "w"(lo), [hi] "w"(hi)  \
                     : "r0", "r1", "r2", "lr", "memory")
    int8x16_t a, b;
    if (clamp) {
        AT_MAX4_RUN("vmax.s8 %q[a], %q[a], %q[lo]\n\tvmin.s8 %q[a], %q[a], %q[hi]\n\t");
    } else {
        AT_MAX4_RUN("");
    }
#undef AT_MAX4_RUN
}

/* The maxima of `count` output pixels of a row whose windows lie across the input's columns
 * (`rows` filter rows of `taps` columns from x, `step` bytes from one window to the next), each
 * 16-channel slice reduced in a register and clamped before it is stored (act_min is the
 * maximum's start). */
AT_INLINE int8_t *max_run(const at_pool_params_t *p, const int8_t *x, int32_t count, int32_t rows, int32_t taps,
                          int8_t *output, int8x16_t lo, int8x16_t hi)
{
    const int32_t channels = p->channels, in_row = p->in_w * channels;
    const int32_t step = p->stride_w * channels;
    int32_t k, c, fy;
    if (rows == 1 && channels <= 16 && taps <= 4) { /* the common 1D pool */
        /* taps past filter_w read the last tap again: the maximum is unchanged */
        const int32_t last = taps - 1;
        const uint32_t o1 = (uint32_t)((last < 1 ? last : 1) * channels);
        const uint32_t o2 = (uint32_t)((last < 2 ? last : 2) * channels), o3 = (uint32_t)(last * channels);
        max4_run(x, count, o1, o2, o3, step, output, channels, vctp8q((uint32_t)channels), lo, hi,
                 p->act_min > -128 || p->act_max < 127);
        return output + count * channels;
    }
    if (rows == 1 && channels <= 16) { /* one filter row, one slice */
        const mve_pred16_t pred = vctp8q((uint32_t)channels);
        for (k = count; k > 0; --k, x += step, output += channels) {
            vstrbq_p_s8(output, vminq_s8(max_taps(lo, x, taps, channels, pred), hi), pred);
        }
        return output;
    }
    for (k = count; k > 0; --k, x += step, output += channels) {
        for (c = 0; c < channels; c += 16) {
            const mve_pred16_t pred = vctp8q((uint32_t)(channels - c));
            const int8_t *xr = x + c;
            int8x16_t m = lo;
            for (fy = rows; fy > 0; --fy, xr += in_row) {
                m = max_taps(m, xr, taps, channels, pred);
            }
            vstrbq_p_s8(output + c, vminq_s8(m, hi), pred);
        }
    }
    return output;
}

/* Each 16-channel slice of a window is reduced in a register before its output is stored, so the
 * pool may run in place (the output of a pixel never lies after its window's first tap).
 * Clamping is monotonic, so it commutes with the maximum: each tap is clamped, then maxed.
 * Output columns whose windows need no clipping (all but the padding's) run without it. */
AT_MVE_FAST void at_max_pool_s8(const at_pool_params_t *p, const int8_t *input, int8_t *output)
{
    const int32_t channels = p->channels;
    const int32_t in_row = p->in_w * channels;
    const int8x16_t lo = vdupq_n_s8((int8_t)p->act_min);
    const int8x16_t hi = vdupq_n_s8((int8_t)p->act_max);
    /* columns [begin, end) whose windows start at or after column 0 and end inside the row */
    const int32_t begin = (p->pad_w + p->stride_w - 1) / p->stride_w;
    const int32_t last = p->in_w + p->pad_w - p->filter_w; /* the last window start, + pad_w */
    int32_t end = last < 0 ? 0 : last / p->stride_w + 1;
    int32_t b, oy, ox;
    end = end > p->out_w ? p->out_w : end;
    for (b = 0; b < p->batches; ++b) {
        const int8_t *in_b = input + b * p->in_h * in_row;
        for (oy = 0; oy < p->out_h; ++oy) {
            const int32_t iy0 = oy * p->stride_h - p->pad_h;
            int32_t fy0, fy1;
            at_tap_range(iy0, 1, p->filter_h, p->in_h, &fy0, &fy1);
            for (ox = 0; ox < p->out_w; ++ox) {
                const int32_t ix0 = ox * p->stride_w - p->pad_w;
                const int8_t *x = in_b + (iy0 + fy0) * in_row;
                if (ox == begin && begin < end) {
                    output = max_run(p, x + ix0 * channels, end - begin, fy1 - fy0, p->filter_w, output, lo, hi);
                    ox = end - 1;
                } else { /* clipped columns: a run of one window over its columns inside */
                    int32_t fx0, fx1;
                    at_tap_range(ix0, 1, p->filter_w, p->in_w, &fx0, &fx1);
                    output = max_run(p, x + (ix0 + fx0) * channels, 1, fy1 - fy0, fx1 - fx0, output, lo, hi);
                }
            }
        }
    }
}
