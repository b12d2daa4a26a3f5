/* CONV_2D, int8, per-channel requantization (TFLM reference_integer_ops::ConvPerChannel), for
 * the Cortex-M0+.
 *
 * The sums are those of the generic kernel (../at_conv_s8.c): acc_init plus the dot product of
 * each filter with the pixel's input window. Output channels go four at a time (at_m0_dot4:
 * one load of each window byte for four filters); windows wholly inside the input are read in
 * place along a row of output pixels without a call per pixel, the others gathered by
 * at_window_s8. Pixels are written one after another, all channels of each.
 */
#include "at_common.h"
#include "at_kernels.h"
#include "at_m0plus.h"

/* `count` output pixels, all channels each, their windows `step` bytes apart from x. */
static AT_NOINLINE __attribute__((optimize("O2"))) int8_t *conv_pixels(const at_conv_params_t *p, const int8_t *x, int32_t step,
                                       int32_t count, int8_t *out)
{
    const at_output_t q = p->output_quant; /* a copy: the stores to out could alias p's */
    const int32_t n = p->win.filter_h * p->win.filter_w * p->win.in_c;
    const int32_t blocks = p->out_c >> 2;
    const int32_t rest = p->out_c & 3;
    for (; count > 0; --count, x += step) {
        const at_channel_t *ch = p->channels;
        const int8_t *w = p->filter;
        int32_t b, k;
        for (b = blocks; b > 0; --b, ch += 4, w += 4 * n, out += 4) {
            at_m0_sums_t s = {{0, 0, 0, 0}};
            at_m0_dot4(x, w, n, n, &s);
            /* unrolled: a loop spills the sums and costs about 30 cycles an output */
            out[0] = at_m0_output(s.s[0], ch, q.offset, q.min, q.max);
            out[1] = at_m0_output(s.s[1], ch + 1, q.offset, q.min, q.max);
            out[2] = at_m0_output(s.s[2], ch + 2, q.offset, q.min, q.max);
            out[3] = at_m0_output(s.s[3], ch + 3, q.offset, q.min, q.max);
        }
        for (k = rest; k > 0; --k, ++ch, w += n) {
            *out++ = at_m0_output(at_dot_s8(x, w, n), ch, q.offset, q.min, q.max);
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
                if (inside && ox >= win->inside_x[0] && ox < win->inside_x[1]) {
                    const int32_t count = win->inside_x[1] - ox;
                    output = conv_pixels(p, at_window_s8(win, in_b, oy, ox, scratch), step, count, output);
                    ox += count;
                    continue;
                }
                output = conv_pixels(p, at_window_s8(win, in_b, oy, ox, scratch), 0, 1, output);
                ++ox;
            }
        }
    }
}

int32_t at_conv_s8_get_buffer_size(const at_conv_params_t *p)
{
    return at_window_buffer_size(&p->win, p->out_h, p->out_w);
}
