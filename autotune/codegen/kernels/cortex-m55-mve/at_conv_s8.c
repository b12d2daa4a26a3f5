/* CONV_2D, int8, per-channel requantization (TFLM reference_integer_ops::ConvPerChannel), Helium.
 *
 * As the generic kernel (../at_conv_s8.c): at_window_s8 gives each output pixel's window in the
 * filter's layout, in place or in scratch; then four output channels at a time share each
 * 16-byte load of the window (VMLADAVA), and are requantized in four vector lanes. The channel
 * constants are laid out for vector loads once per call (at_mve_hoist).
 */
#include "at_common.h"
#include "at_kernels.h"
#include "at_mve.h"

AT_MVE_FAST void at_conv_s8(const at_conv_params_t *p, const int8_t *input, int8_t *output,
                            int8_t *scratch)
{
    const at_window_t *win = &p->win;
    const at_output_t q = p->output_quant; /* a copy: the stores to output could alias p's */
    const int32_t n = win->filter_h * win->filter_w * win->in_c;
    at_mve_channels_t hoisted;
    const at_mve_channels_t *t = at_mve_hoist(&hoisted, p->channels, p->out_c);
    int32_t b, oy, ox;
    for (b = 0; b < p->batches; ++b) {
        const int8_t *in_b = input + b * win->in_h * win->in_w * win->in_c;
        for (oy = 0; oy < p->out_h; ++oy) {
            /* Windows inside the input and laid out as the filter reads them are read in place
             * here, without at_window_s8's call and checks (the same test as in at_window_s8). */
            const int32_t row_in_place = win->in_place && oy >= win->inside_y[0] && oy < win->inside_y[1];
            const int8_t *row = in_b + (oy * win->stride_h - win->pad_h) * win->in_w * win->in_c;
            for (ox = 0; ox < p->out_w; ++ox) {
                const int8_t *x = row_in_place && ox >= win->inside_x[0] && ox < win->inside_x[1]
                                      ? row + (ox * win->stride_w - win->pad_w) * win->in_c
                                      : at_window_s8(win, in_b, oy, ox, scratch);
                output = at_mve_rows(x, p->filter, n, p->out_c, p->channels, t, 0, &q, output);
            }
        }
    }
}
