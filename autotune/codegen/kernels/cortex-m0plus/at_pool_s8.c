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
