/* FULLY_CONNECTED, int8 (TFLM reference_integer_ops::FullyConnected and
 * FullyConnectedPerChannel), Helium: four output units at a time, an input row of at most 32
 * bytes held in registers against the filter rows one after another (at_mve_short), a longer
 * one sharing each 16-byte load among the four rows (VMLADAVA, at_mve_rows). The sums are those
 * of ../at_fully_connected_s8.c; the requantization mode is found by a vector scan of the shifts. */
#include "at_common.h"
#include "at_kernels.h"
#include "at_mve.h"

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
    const int32_t whole = depth <= 32 ? units & ~3 : 0; /* rows taken four at a time by at_mve_short_run */
    const int32_t mode = AT_MVE_ANY; /* dense layers are short: finding a cheaper mode costs more */
    int32_t b;
    for (b = 0; b < p->batches; ++b, input += depth, output += units) {
        int32_t input_term = 0; /* filter_offset * sum(x + input_offset); int8 filters have 0 */
        if (p->filter_offset != 0) {
            input_term = p->filter_offset * (at_sum_s8(input, depth) + depth * p->input_offset);
        }
        if (whole) {
            at_mve_short_run(p->filter, depth, whole >> 2, output, at_mve_records(p->channels),
                             vreinterpretq_s32_s8(vldrbq_z_s8(input, vctp8q((uint32_t)depth))),
                             vreinterpretq_s32_s8(vldrbq_z_s8(input + 16, vctp8q((uint32_t)(depth > 16 ? depth - 16 : 0)))),
                             input_term, q.offset, vdupq_n_s32(q.min), vdupq_n_s32(q.max));
        }
        if (whole < units) {
            rows(input, p->filter + whole * depth, depth, units - whole, p->channels + whole, input_term, &q,
                 output + whole, mode);
        }
    }
}
