/* AVERAGE_POOL_2D and MAX_POOL_2D, int8 (TFLM reference_integer_ops::AveragePool / MaxPool).
 * The window is clipped to the input; the average divides by the clipped count. */
#include "at_common.h"
#include "at_kernels.h"

void at_avg_pool_s8(const at_pool_params_t *p, const int8_t *input, int8_t *output)
{
    const int32_t channels = p->channels;
    const int32_t in_row = p->in_w * channels;
    int32_t b, oy, ox, c, fy, fx;
    for (b = 0; b < p->batches; ++b) {
        const int8_t *in_b = input + b * p->in_h * in_row;
        for (oy = 0; oy < p->out_h; ++oy) {
            const int32_t iy0 = oy * p->stride_h - p->pad_h;
            int32_t fy0, fy1;
            at_tap_range(iy0, 1, p->filter_h, p->in_h, &fy0, &fy1);
            for (ox = 0; ox < p->out_w; ++ox) {
                const int32_t ix0 = ox * p->stride_w - p->pad_w;
                int32_t fx0, fx1, rows, taps, count;
                uint32_t reciprocal;
                const int8_t *x;
                at_tap_range(ix0, 1, p->filter_w, p->in_w, &fx0, &fx1);
                rows = fy1 - fy0;
                taps = fx1 - fx0;
                count = rows * taps; /* >= 1 for SAME and VALID padding */
                reciprocal = count == p->filter_h * p->filter_w ? p->reciprocal : 0;
                x = in_b + (iy0 + fy0) * in_row + (ix0 + fx0) * channels;
                for (c = 0; c < channels; ++c, ++x) {
                    const int8_t *xr = x;
                    int32_t sum = 0;
                    for (fy = rows; fy > 0; --fy, xr += in_row) {
                        const int8_t *xc = xr;
                        for (fx = taps; fx > 0; --fx, xc += channels) {
                            sum += *xc;
                        }
                    }
                    *output++ = at_clamp_s8(at_rounded_average(sum, count, reciprocal), p->act_min,
                                            p->act_max);
                }
            }
        }
    }
}

/* The running maximum of each channel lives in the output itself, so the loop over a window's
 * taps is an inner loop over adjacent channels. Starting it at the clamped first tap and capping
 * updates at act_max clamps as TFLM does: clamping is monotonic, so it commutes with the maximum.
 * The first tap is read before anything is written, so the pool may run in place. */
void at_max_pool_s8(const at_pool_params_t *p, const int8_t *input, int8_t *output)
{
    const int32_t channels = p->channels;
    const int32_t in_row = p->in_w * channels;
    const int32_t act_min = p->act_min;
    const int32_t act_max = p->act_max;
    int32_t b, oy, ox, c, fy, fx;
    for (b = 0; b < p->batches; ++b) {
        const int8_t *in_b = input + b * p->in_h * in_row;
        for (oy = 0; oy < p->out_h; ++oy) {
            const int32_t iy0 = oy * p->stride_h - p->pad_h;
            int32_t fy0, fy1;
            at_tap_range(iy0, 1, p->filter_h, p->in_h, &fy0, &fy1);
            for (ox = 0; ox < p->out_w; ++ox, output += channels) {
                const int32_t ix0 = ox * p->stride_w - p->pad_w;
                const int8_t *xr;
                int32_t fx0, fx1;
                at_tap_range(ix0, 1, p->filter_w, p->in_w, &fx0, &fx1);
                xr = in_b + (iy0 + fy0) * in_row + (ix0 + fx0) * channels;
                for (c = 0; c < channels; ++c) { /* the first tap: in place, it is output[c] */
                    output[c] = at_clamp_s8(xr[c], act_min, act_max);
                }
                for (fy = fy0; fy < fy1; ++fy, xr += in_row) {
                    const int8_t *x = xr;
                    for (fx = fx0; fx < fx1; ++fx, x += channels) {
                        for (c = 0; c < channels; ++c) {
                            if (x[c] > output[c]) {
                                output[c] = (int8_t)(x[c] < act_max ? x[c] : act_max);
                            }
                        }
                    }
                }
            }
        }
    }
}
