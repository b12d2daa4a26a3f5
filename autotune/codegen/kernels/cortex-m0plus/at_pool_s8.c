/* AVERAGE_POOL_2D and MAX_POOL_2D for the Cortex-M0+: the generic average pool, and a max pool
 * that keeps each channel's running maximum in a register (the generic one keeps it in the
 * output: a load and a compare-and-store per tap).
 *
 * Each output byte is written after the last read of its channel's window, later than the
 * generic kernel writes it, so the pool may still run in place. */
#include "at_common.h"
#include "at_kernels.h"

#define at_max_pool_s8 at_max_pool_s8_generic /* replaced below; the linker drops it */
void at_max_pool_s8(const at_pool_params_t *p, const int8_t *input, int8_t *output);
#include "../at_pool_s8.c"
#undef at_max_pool_s8

/* The maximum of each of `channels` channels over rows x taps (>= 1 each), clamped, into out.
 * A row's taps go by one index from the last tap's offset up to 0, as in at_dot_step_s8. */
static AT_NOINLINE __attribute__((optimize("O2"))) void max_pixel(const int8_t *x, int32_t channels,
                                                                 int32_t in_row, int32_t rows, int32_t taps,
                                                                 int32_t act_min, int32_t act_max, int8_t *out)
{
    const int32_t last = (taps - 1) * channels;
    const int8_t *const end = out + channels;
    for (x += last; out < end; ++out, ++x) {
        const int8_t *row = x;
        int32_t m = act_min; /* clamping is monotonic: max(act_min, taps) then min act_max */
        int32_t fy;
        for (fy = rows; fy > 0; --fy, row += in_row) {
            int32_t i = -last;
            do {
                const int32_t v = row[i];
                m = v > m ? v : m;
                i += channels;
            } while (i <= 0);
        }
        *out = (int8_t)(m < act_max ? m : act_max);
    }
}

void at_max_pool_s8(const at_pool_params_t *p, const int8_t *input, int8_t *output)
{
    const int32_t channels = p->channels;
    const int32_t in_row = p->in_w * channels;
    int32_t b, oy, ox;
    for (b = 0; b < p->batches; ++b) {
        const int8_t *in_b = input + b * p->in_h * in_row;
        for (oy = 0; oy < p->out_h; ++oy) {
            const int32_t iy0 = oy * p->stride_h - p->pad_h;
            int32_t fy0, fy1;
            at_tap_range(iy0, 1, p->filter_h, p->in_h, &fy0, &fy1);
            for (ox = 0; ox < p->out_w; ++ox, output += channels) {
                const int32_t ix0 = ox * p->stride_w - p->pad_w;
                int32_t fx0, fx1;
                at_tap_range(ix0, 1, p->filter_w, p->in_w, &fx0, &fx1);
                max_pixel(in_b + (iy0 + fy0) * in_row + (ix0 + fx0) * channels, channels, in_row,
                          fy1 - fy0, fx1 - fx0, p->act_min, p->act_max, output);
            }
        }
    }
}
