/* The autotune int8 kernel library: one pure function per op, bit-exact with TFLite Micro's
 * int8 reference kernels.
 *
 * Every parameter is passed explicitly in a const struct computed ahead of time by the code
 * generator (autotune/codegen, from the op definitions in autotune/ops): no allocation, no
 * hidden state, no floating point. Tensors are NHWC int8 arrays, batch first. A kernel that
 * needs scratch memory takes a `scratch` pointer and has a `<kernel>_get_buffer_size` giving its
 * size for the same parameters (CMSIS-NN style; mirrored in Python by the op definition, which
 * the kernel plan reads); the generator places it in the arena, live during the call only.
 */
#ifndef AT_KERNELS_H
#define AT_KERNELS_H

#include <stdint.h>

/* Spare zero bytes after each int8 weight array of the generated model, where the Helium kernels
 * (cortex-m55-mve) read filter rows whole in 16-byte loads: up to 15 bytes past a row's end, the
 * next row's or, after the last row, these (multiplied by an input lane of zero). None elsewhere. */
#if defined(__ARM_FEATURE_MVE)
#define AT_WEIGHT_TAIL 15
#else
#define AT_WEIGHT_TAIL 0
#endif

/* The grouped-tails layout of a FULLY_CONNECTED filter and channel table, chosen by the code
 * generator for the Helium kernel (autotune/ops/fully_connected.py, `grouped_tails`): rows of 16 + t
 * bytes (t 4 or 8) in groups of four rows, each group the four rows' first 16 bytes, then their
 * four tails; the channels' records by groups of four, their four acc_init, then multipliers,
 * then shifts. The generated model stores such a layer that way where this is 1 (Helium), row
 * after row and record after record elsewhere. */
#if defined(__ARM_FEATURE_MVE)
#define AT_GROUPED_TAILS 1
#else
#define AT_GROUPED_TAILS 0
#endif

/* An int8 output's zero point and fused activation range. */
typedef struct {
    int32_t offset, min, max;
} at_output_t;

/* Per output channel constants of CONV_2D, DEPTHWISE_CONV_2D and FULLY_CONNECTED, together so
 * that one pointer walks them. TFLM sums filter * (input + input_offset); that is
 * sum(filter * input) + input_offset * sum(filter), so the MAC loops are plain dot products
 * that start from acc_init. */
typedef struct {
    int32_t acc_init;   /* bias + input_offset * sum(filter), wrapped to int32 */
    int32_t multiplier; /* requantization: TFLM's per-channel (or per-tensor) values */
    int32_t shift;
} at_channel_t;

/* Where the filter windows of CONV_2D and DEPTHWISE_CONV_2D fall in the input. */
typedef struct {
    int32_t in_h, in_w, in_c;
    int32_t filter_h, filter_w;
    int32_t stride_h, stride_w, dilation_h, dilation_w, pad_h, pad_w;
    int32_t inside_y[2], inside_x[2]; /* output rows and columns [begin, end) whose window lies
                                       * wholly inside the input: no tap in the padding */
    int32_t zero_point;                /* the input's: what a tap in the padding reads */
    int32_t repeat;                    /* copies of each input channel the filter reads: the
                                        * depth multiplier of a depthwise filter, else 1 */
    int32_t in_place;                  /* 1 if a window inside the input is already laid out
                                        * as the filter reads it (see at_window_s8) */
} at_window_t;

/* CONV_2D (TFLM reference_integer_ops::ConvPerChannel); not grouped: filter depth = in_c.
 * scratch: at_conv_s8_get_buffer_size(p) bytes: one window, or none if every window is read
 * in place.
 * The output may overlap the input, starting before it (autotune.ops.window.overwrite_lead).
 * Every variant must keep to what that assumes: output pixels are written in row-major order,
 * and a kernel writes output pixel p only after its last read of the windows of pixels before
 * p - 3 (a few pixels per pass, all their channels, then the next ones).
 * at_conv_reverse_s8 the other way round (one batch, and only where every window lies inside
 * the input, one contiguous row each, each row of windows continuing the last:
 * autotune.ops.conv.one_run): the output may start after the input's start
 * (autotune.ops.window.reverse_lag), pixels are written from the last, and output pixel p only
 * after the last read of the windows of pixels after p + AT_REVERSE_AHEAD - 1 (runs of that many
 * pixels from the last, each run forward). */
#define AT_REVERSE_AHEAD 16
typedef struct {
    int32_t batches, out_h, out_w, out_c;
    at_window_t win;
    at_output_t output_quant;
    const int8_t *filter;      /* [out_c][filter_h][filter_w][in_c] */
    const at_channel_t *channels; /* [out_c] */
} at_conv_params_t;
void at_conv_s8(const at_conv_params_t *p, const int8_t *input, int8_t *output, int8_t *scratch);
void at_conv_reverse_s8(const at_conv_params_t *p, const int8_t *input, int8_t *output, int8_t *scratch);
int32_t at_conv_s8_get_buffer_size(const at_conv_params_t *p);

/* DEPTHWISE_CONV_2D (TFLM reference_integer_ops::DepthwiseConvPerChannel).
 * scratch: at_depthwise_conv_s8_get_buffer_size(p) bytes: one window of in_c * depth multiplier
 * channels, or none if every window is read in place.
 * With depth multiplier 1 the output may overlap the input, starting a whole number of pixels
 * before it (autotune.ops.window.overwrite_lead); with a larger one and at most 8 output channels
 * (one channel group of the Helium kernel) too, the written bytes then ending before the first
 * byte a window still to be read needs. Every variant must keep to what that assumes:
 * output channel c is computed from input channel c alone, pixels are written in row-major order
 * (channel groups one after another are fine), and a kernel writes output pixel p only after its
 * last read of the windows of pixels before p - 3; with depth multiplier 1, channel c of output
 * pixel p only after its last read of channel c of the windows of pixels up to p, except that the
 * Helium kernel reads window p again after writing p where p is the next to last pixel of an
 * odd run of three or more windows inside the input (autotune.ops.window.helium_rereads).
 * The parameters are at_conv_params_t's (one type, so a kernel library may run both through one
 * loop): out_c = in_c * depth multiplier (win.repeat), filter [filter_h][filter_w][out_c]. */
typedef at_conv_params_t at_depthwise_conv_params_t;
void at_depthwise_conv_s8(const at_depthwise_conv_params_t *p, const int8_t *input,
                          int8_t *output, int8_t *scratch);
int32_t at_depthwise_conv_s8_get_buffer_size(const at_depthwise_conv_params_t *p);

/* FULLY_CONNECTED (TFLM reference_integer_ops::FullyConnected / FullyConnectedPerChannel). */
typedef struct {
    int32_t batches, accum_depth, out_depth;
    int32_t input_offset, filter_offset;
    at_output_t output_quant;
    const int8_t *filter;      /* [out_depth][accum_depth] */
    const at_channel_t *channels; /* [out_depth]; one multiplier and shift repeated if per tensor */
#if defined(__ARM_FEATURE_MVE)
    /* the Helium kernel's path for these parameters, chosen by the code generator
     * (autotune/ops/fully_connected.py, MVE_PATHS); from 3 on, the filter and channels are in
     * the grouped-tails layout (AT_GROUPED_TAILS) */
    int32_t path;
#endif
} at_fully_connected_params_t;
void at_fully_connected_s8(const at_fully_connected_params_t *p, const int8_t *input,
                           int8_t *output);

/* AVERAGE_POOL_2D and MAX_POOL_2D (TFLM reference_integer_ops::AveragePool / MaxPool). */
typedef struct {
    int32_t batches, in_h, in_w, channels, out_h, out_w;
    int32_t filter_h, filter_w, stride_h, stride_w, pad_h, pad_w;
    int32_t act_min, act_max;
    uint32_t reciprocal;       /* average pool: ceil(2^24 / (filter_h * filter_w)) where it divides
                                * every possible rounded sum of a full window exactly, else 0 */
} at_pool_params_t;
void at_avg_pool_s8(const at_pool_params_t *p, const int8_t *input, int8_t *output);
void at_max_pool_s8(const at_pool_params_t *p, const int8_t *input, int8_t *output);

/* CONV_2D then MAX_POOL_2D over its output, fused (the pool without padding, its stride at
 * least its filter): the conv outputs of one pool window at a time in scratch, so the conv
 * output never exists whole. conv as for at_conv_s8; pool's input is conv's output.
 * scratch: at_conv_max_pool_s8_get_buffer_size(p) bytes: one pool window of conv outputs and the
 * conv's window. The output does not overlap the input. */
typedef struct {
    at_conv_params_t conv;
    at_pool_params_t pool;
    int32_t pool_sums; /* 1 where the largest sum of a pool window gives its largest output and the
                        * Cortex-M0+ kernel pools sums (autotune.ops.conv.m0_pools_sums); the
                        * others ignore it */
} at_conv_max_pool_params_t;
void at_conv_max_pool_s8(const at_conv_max_pool_params_t *p, const int8_t *input, int8_t *output,
                         int8_t *scratch);
int32_t at_conv_max_pool_s8_get_buffer_size(const at_conv_max_pool_params_t *p);

/* MEAN over any set of axes of a tensor padded to 4-D (TFLM reference_ops::QuantizedMeanOrSum):
 * output = MBQM(sum - count * input zero point, multiplier, shift) + output zero point, the
 * 1/count folded into the multiplier ahead of time. */
typedef struct {
    int32_t out_dims[4], out_strides[4];       /* the kept input dims, in order, padded with 1s */
    int32_t reduce_dims[4], reduce_strides[4]; /* the reduced ones; input strides in elements */
    int32_t sum_offset;                        /* -count * input zero point */
    int32_t multiplier, shift, output_offset;
} at_mean_params_t;
void at_mean_s8(const at_mean_params_t *p, const int8_t *input, int8_t *output);

/* SOFTMAX over the last axis (TFLM reference_ops::Softmax, int8 in and out). exp() of every
 * possible difference d = row max - x (0..255) is tabulated ahead of time. */
typedef struct {
    int32_t rows, depth;
    const int32_t *exp_table; /* [256] Q0.31, 0 where -d is below TFLM's diff_min */
} at_softmax_params_t;
void at_softmax_s8(const at_softmax_params_t *p, const int8_t *input, int8_t *output);

/* ADD and SUB with broadcasting (TFLM reference_integer_ops::Add / BroadcastAdd6DSlow,
 * reference_ops::SubElementwise / BroadcastQuantSubSlow): the same parameters, input 2 added or
 * subtracted after its rescaling. */
typedef struct {
    int32_t dims[4];        /* output dims, padded to 4-D */
    int32_t strides1[4];    /* input 1 strides, 0 along broadcast dimensions */
    int32_t strides2[4];
    int32_t input1_offset, input2_offset, output_offset, left_shift;
    int32_t input1_multiplier, input1_shift, input2_multiplier, input2_shift;
    int32_t output_multiplier, output_shift, act_min, act_max;
} at_add_params_t;
void at_add_s8(const at_add_params_t *p, const int8_t *input1, const int8_t *input2,
               int8_t *output);
void at_sub_s8(const at_add_params_t *p, const int8_t *input1, const int8_t *input2,
               int8_t *output);

/* MUL with broadcasting (TFLM reference_integer_ops::Mul / BroadcastMul4DSlow):
 * output = MBQM((x1 + input1_offset) * (x2 + input2_offset), multiplier, shift) + output_offset,
 * clamped to the fused activation range. dims and strides as in at_add_params_t. */
typedef struct {
    int32_t dims[4], strides1[4], strides2[4];
    int32_t input1_offset, input2_offset, output_offset, multiplier, shift, act_min, act_max;
} at_mul_params_t;
void at_mul_s8(const at_mul_params_t *p, const int8_t *input1, const int8_t *input2,
               int8_t *output);

/* PAD with a constant (TFLM reference_ops::Pad), tensors padded to 4-D. */
typedef struct {
    int32_t in_dims[4], out_dims[4], before[4];
    int32_t pad_value;
} at_pad_params_t;
void at_pad_s8(const at_pad_params_t *p, const int8_t *input, int8_t *output);

/* CONCATENATION (TFLM reference_ops::Concatenation): inputs share the output quantization. */
typedef struct {
    int32_t outer;          /* product of the dims before the axis */
    int32_t count;          /* number of inputs */
    const int32_t *sizes;   /* [count]: elements each input contributes per outer index */
} at_concat_params_t;
void at_concat_s8(const at_concat_params_t *p, const int8_t *const *inputs, int8_t *output);
/* Input `slot` alone into its slot of the output (a concatenation one input at a time, each as
 * soon as it is computed). The output may overlap the input, starting before it
 * (autotune.ops.layout.slot_lead): every variant must copy in order, outer index by outer index. */
void at_concat_slot_s8(const at_concat_params_t *p, int32_t slot, const int8_t *input, int8_t *output);

/* QUANTIZE int8 -> int8 (TFLM reference_ops::Requantize). */
typedef struct {
    int32_t size, input_zero_point, output_zero_point, multiplier, shift;
} at_requantize_params_t;
void at_requantize_s8(const at_requantize_params_t *p, const int8_t *input, int8_t *output);

/* STRIDED_SLICE and TRANSPOSE (TFLM reference_ops::StridedSlice, Transpose), padded to 4-D:
 * output element (i0..i3) is input[offset + i0 * strides[0] + ... + i3 * strides[3]]. A slice
 * folds its start into offset and its steps into the strides (a shrunk axis is a dim of 1); a
 * transpose lists the input's strides in the output's order.
 * The output may overlap the input, starting before it (autotune.ops.layout.gather_lead): every
 * variant must write the outputs in order, each after reading its own input element. */
typedef struct {
    int32_t dims[4];    /* output dims */
    int32_t offset;     /* the first element taken */
    int32_t strides[4]; /* in input elements; may be negative */
} at_gather_params_t;
void at_gather_s8(const at_gather_params_t *p, const int8_t *input, int8_t *output);

/* An element-wise int8 -> int8 function by table: LOGISTIC, TANH, HARD_SWISH, LEAKY_RELU, RELU
 * and RELU6, the table filled ahead of time by TFLM's fixed point for each of the 256 inputs.
 * Element i is read before it is written: the output may be the input. */
typedef struct {
    int32_t size;
    const int8_t *table; /* [256], the output for input value v at table[v + 128] */
} at_lut_params_t;
void at_lut_s8(const at_lut_params_t *p, const int8_t *input, int8_t *output);

#endif /* AT_KERNELS_H */
