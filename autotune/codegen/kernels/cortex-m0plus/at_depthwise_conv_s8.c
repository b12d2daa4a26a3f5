/* DEPTHWISE_CONV_2D, int8, per-channel requantization
 * (TFLM reference_integer_ops::DepthwiseConvPerChannel), for the Cortex-M0+.
 *
 * The sums are those of the generic kernel (../at_depthwise_conv_s8.c): acc_init plus the dot
 * product of each channel's taps, out_c apart, with the input window. Here by chunks of
 * channels, summed two channels a pass (at_m0_dot_step_rows) then requantized
 * (at_m0_requantize); windows wholly inside the input are read in place along a row of output
 * pixels without a call per pixel. Pixels are written one after another, channel c from
 * input channel c only.
 */
#include "at_common.h"
#include "at_kernels.h"
#include "at_m0plus.h"

/* `count` output pixels, all channels each, their windows `step` bytes apart from x: the sums
 * of rq->pixels pixels then their requantization in one call where the channels are few; else per
 * chunk of channels the sums, then their requantization. */
static AT_NOINLINE int8_t *depthwise_pixels(const at_depthwise_conv_params_t *p, at_m0_channels_t *rq,
                                            const int8_t *x, int32_t step, int32_t count, int8_t *out)
{
    const at_output_t q = p->output_quant; /* a copy: the stores to out could alias p's */
    const int32_t out_c = p->out_c;
    const int32_t taps = p->win.filter_h * p->win.filter_w;
    int32_t sums[AT_M0_CHANNELS];
    while (count > 0) {
        int32_t c, chunk;
        if (rq->pixels > 1) {
            const int32_t pixels = count < rq->pixels ? count : rq->pixels;
            if ((out_c & 1) == 0) {
                at_m0_dot2_step(x, p->filter, (taps - 1) * out_c, out_c, out_c >> 1, sums, pixels, step);
                x += pixels * step;
            }
            for (c = 0; (out_c & 1) && c < pixels; ++c, x += step) {
                at_m0_dot_step_rows(x, p->filter, taps, out_c, out_c, sums + c * out_c);
            }
            at_m0_requantize(sums, rq->ch, &q, out, pixels * out_c);
            out += pixels * out_c;
            count -= pixels;
            continue;
        }
        for (c = 0; c < out_c; c += chunk, out += chunk) {
            chunk = out_c - c < AT_M0_CHUNK ? out_c - c : AT_M0_CHUNK;
            if ((chunk & 1) == 0) {
                at_m0_dot2_step(x + c, p->filter + c, (taps - 1) * out_c, out_c, chunk >> 1, sums, 1, 0);
            } else {
                at_m0_dot_step_rows(x + c, p->filter + c, taps, out_c, chunk, sums);
            }
            at_m0_requantize(sums, at_m0_chunk(rq, c, chunk), &q, out, chunk);
        }
        --count;
        x += step;
    }
    return out;
}

void at_depthwise_conv_s8(const at_depthwise_conv_params_t *p, const int8_t *input,
                          int8_t *output, int8_t *scratch)
{
    at_m0_channels_t rq;
    at_m0_channels_init(&rq, p->channels, p->out_c, 1);
    AT_M0_PIXEL_RUNS(p, &rq, input, output, scratch, depthwise_pixels);
}

int32_t at_depthwise_conv_s8_get_buffer_size(const at_depthwise_conv_params_t *p)
{
    return at_window_buffer_size(&p->win, p->out_h, p->out_w);
}
