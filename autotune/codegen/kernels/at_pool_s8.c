/* AVERAGE_POOL_2D and MAX_POOL_2D, int8 (TFLM reference_integer_ops::AveragePool / MaxPool).
 * The window is clipped to the input; the average divides by the clipped count. */
#include "at_common.h"
#include "at_kernels.h"

void at_avg_pool_s8(const at_pool_params_t *p, const int8_t *input, int8_t *output)
{
    const int32_t in_row = p->in_w * p->channels;
    int32_t b, oy, ox, c, fy, fx;
    for (b = 0; b < p->batches; ++b) {
        const int8_t *in_b = input + b * p->in_h * in_row;
        for (oy = 0; oy < p->out_h; ++oy) {
            const int32_t iy0 = oy * p->stride_h - p->pad_h;
            int32_t fy0, fy1;
            at_tap_range(iy0, 1, p->filter_h, p->in_h, &fy0, &fy1);
            for (ox = 0; ox < p->out_w; ++ox) {
                const int32_t ix0 = ox * p->stride_w - p->pad_w;
                int32_t fx0, fx1, count;
                const int8_t *x_first;
                at_tap_range(ix0, 1, p->filter_w, p->in_w, &fx0, &fx1);
                count = (fy1 - fy0) * (fx1 - fx0); /* >= 1 for SAME and VALID padding */
                x_first = in_b + (iy0 + fy0) * in_row + (ix0 + fx0) * p->channels;
                for (c = 0; c < p->channels; ++c) {
                    const int8_t *xr = x_first + c;
                    int32_t acc = 0;
                    for (fy = fy0; fy < fy1; ++fy, xr += in_row) {
                        const int8_t *x = xr;
                        for (fx = fx0; fx < fx1; ++fx, x += p->channels) {
                            acc += *x;
                        }
                    }
                    /* round half away from zero, as TFLM */
                    acc = acc > 0 ? (acc + count / 2) / count : (acc - count / 2) / count;
                    *output++ = at_clamp_s8(acc, p->act_min, p->act_max);
                }
            }
        }
    }
}

void at_max_pool_s8(const at_pool_params_t *p, const int8_t *input, int8_t *output)
{
    const int32_t in_row = p->in_w * p->channels;
    int32_t b, oy, ox, c, fy, fx;
    for (b = 0; b < p->batches; ++b) {
        const int8_t *in_b = input + b * p->in_h * in_row;
        for (oy = 0; oy < p->out_h; ++oy) {
            const int32_t iy0 = oy * p->stride_h - p->pad_h;
            int32_t fy0, fy1;
            at_tap_range(iy0, 1, p->filter_h, p->in_h, &fy0, &fy1);
            for (ox = 0; ox < p->out_w; ++ox) {
                const int32_t ix0 = ox * p->stride_w - p->pad_w;
                int32_t fx0, fx1;
                const int8_t *x_first;
                at_tap_range(ix0, 1, p->filter_w, p->in_w, &fx0, &fx1);
                x_first = in_b + (iy0 + fy0) * in_row + (ix0 + fx0) * p->channels;
                for (c = 0; c < p->channels; ++c) {
                    const int8_t *xr = x_first + c;
                    int32_t max = INT8_MIN;
                    for (fy = fy0; fy < fy1; ++fy, xr += in_row) {
                        const int8_t *x = xr;
                        for (fx = fx0; fx < fx1; ++fx, x += p->channels) {
                            max = *x > max ? *x : max;
                        }
                    }
                    *output++ = at_clamp_s8(max, p->act_min, p->act_max);
                }
            }
        }
    }
}
