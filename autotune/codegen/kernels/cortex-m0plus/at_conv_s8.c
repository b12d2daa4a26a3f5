/* CONV_2D, int8, per-channel requantization (TFLM reference_integer_ops::ConvPerChannel), for
 * the Cortex-M0+.
 *
 * The sums are those of the generic kernel (../at_conv_s8.c): acc_init plus the dot product of
 * each filter with the pixel's input window, by chunks of output channels summed
 * (at_m0_dot_rows: four filters per load of a window byte) then requantized
 * (at_m0_requantize). Windows wholly inside the input are read in place along a row of output
 * pixels without a call per pixel, the others gathered by at_window_s8. Pixels are written one
 * after another, all channels of each.
 */
#include "at_common.h"
#include "at_kernels.h"
#include "at_m0plus.h"

/* `count` output pixels, all channels each, their windows `step` bytes apart from x: per chunk
 * of channels the sums, then their requantization. */
static AT_NOINLINE int8_t *conv_pixels(const at_conv_params_t *p, const int8_t *x, int32_t step,
                                       int32_t count, int8_t *out)
{
    const at_output_t q = p->output_quant; /* a copy: the stores to out could alias p's */
    const int32_t n = p->win.filter_h * p->win.filter_w * p->win.in_c;
    int32_t sums[AT_M0_CHUNK];
    for (; count > 0; --count, x += step) {
        int32_t c, chunk;
        for (c = 0; c < p->out_c; c += chunk, out += chunk) {
            chunk = p->out_c - c < AT_M0_CHUNK ? p->out_c - c : AT_M0_CHUNK;
            if ((chunk & 3) == 0) {
                at_m0_dot4_blocks(x, p->filter + c * n, n, chunk >> 2, sums);
            } else {
                at_m0_dot_rows(x, p->filter + c * n, n, chunk, sums);
            }
            at_m0_requantize(sums, p->channels + c, &q, out, chunk);
        }
    }
    return out;
}

void at_conv_s8(const at_conv_params_t *p, const int8_t *input, int8_t *output, int8_t *scratch)
{
    const at_window_t *win = &p->win;
    const int32_t step = win->stride_w * win->in_c; /* from one in-place window to the next */
    int32_t b, oy, ox;
    for (b = 0; b < p->batches; ++b) {
        const int8_t *in_b = input + b * win->in_h * win->in_w * win->in_c;
        for (oy = 0; oy < p->out_h; ++oy) {
            const int32_t inside = win->in_place && oy >= win->inside_y[0] && oy < win->inside_y[1];
            for (ox = 0; ox < p->out_w;) {
                const int32_t run = inside && ox >= win->inside_x[0] && ox < win->inside_x[1];
                const int32_t count = run ? win->inside_x[1] - ox : 1;
                output = conv_pixels(p, at_window_s8(win, in_b, oy, ox, scratch), run ? step : 0, count,
                                     output);
                ox += count;
            }
        }
    }
}

int32_t at_conv_s8_get_buffer_size(const at_conv_params_t *p)
{
    return at_window_buffer_size(&p->win, p->out_h, p->out_w);
}
