/* The autotune int8 kernel library: one pure function per op, bit-exact with TFLite Micro's
 * int8 reference kernels.
 *
 * Every parameter is passed explicitly in a const struct computed ahead of time by the code
 * generator (autotune/codegen/generate.py, from autotune/ir/params.py): no allocation, no
 * hidden state, no floating point. Tensors are NHWC int8 arrays, batch first. No kernel here
 * needs scratch memory; one that does declares `<kernel>_scratch_size` beside it.
 */
#ifndef AT_KERNELS_H
#define AT_KERNELS_H

#include <stdint.h>

/* CONV_2D (TFLM reference_integer_ops::ConvPerChannel), grouped when filter_c < in_c. */
typedef struct {
    int32_t batches, in_h, in_w, in_c;
    int32_t out_h, out_w, out_c;
    int32_t filter_h, filter_w, filter_c;
    int32_t group_out_c;       /* output channels per group: out_c unless grouped */
    int32_t stride_h, stride_w, dilation_h, dilation_w, pad_h, pad_w;
    int32_t input_offset, output_offset, act_min, act_max;
    const int8_t *filter;      /* [out_c][filter_h][filter_w][filter_c] */
    const int32_t *bias;       /* [out_c] */
    const int32_t *kernel_sum; /* [out_c]: sum of each filter; moves input_offset out of the MAC loop */
    const int32_t *multiplier; /* [out_c] */
    const int32_t *shift;      /* [out_c] */
} at_conv_params_t;
void at_conv_s8(const at_conv_params_t *p, const int8_t *input, int8_t *output);

/* DEPTHWISE_CONV_2D (TFLM reference_integer_ops::DepthwiseConvPerChannel). */
typedef struct {
    int32_t batches, in_h, in_w, in_c;
    int32_t out_h, out_w, out_c; /* out_c = in_c * depth_multiplier */
    int32_t filter_h, filter_w, depth_multiplier;
    int32_t stride_h, stride_w, dilation_h, dilation_w, pad_h, pad_w;
    int32_t input_offset, output_offset, act_min, act_max;
    const int8_t *filter;      /* [filter_h][filter_w][out_c] */
    const int32_t *bias;       /* [out_c] */
    const int32_t *kernel_sum; /* [out_c] */
    const int32_t *multiplier; /* [out_c] */
    const int32_t *shift;      /* [out_c] */
} at_depthwise_conv_params_t;
void at_depthwise_conv_s8(const at_depthwise_conv_params_t *p, const int8_t *input,
                          int8_t *output);

/* FULLY_CONNECTED (TFLM reference_integer_ops::FullyConnected / FullyConnectedPerChannel). */
typedef struct {
    int32_t batches, accum_depth, out_depth;
    int32_t input_offset, filter_offset, output_offset, act_min, act_max;
    int32_t per_channel;       /* 1: multiplier/shift per output unit; 0: one pair for all */
    const int8_t *filter;      /* [out_depth][accum_depth] */
    const int32_t *bias;       /* [out_depth] */
    const int32_t *kernel_sum; /* [out_depth] */
    const int32_t *multiplier;
    const int32_t *shift;
} at_fully_connected_params_t;
void at_fully_connected_s8(const at_fully_connected_params_t *p, const int8_t *input,
                           int8_t *output);

/* AVERAGE_POOL_2D and MAX_POOL_2D (TFLM reference_integer_ops::AveragePool / MaxPool). */
typedef struct {
    int32_t batches, in_h, in_w, channels, out_h, out_w;
    int32_t filter_h, filter_w, stride_h, stride_w, pad_h, pad_w;
    int32_t act_min, act_max;
} at_pool_params_t;
void at_avg_pool_s8(const at_pool_params_t *p, const int8_t *input, int8_t *output);
void at_max_pool_s8(const at_pool_params_t *p, const int8_t *input, int8_t *output);

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

/* ADD with broadcasting (TFLM reference_integer_ops::Add / BroadcastAdd6DSlow). */
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

/* QUANTIZE int8 -> int8 (TFLM reference_ops::Requantize). */
typedef struct {
    int32_t size, input_zero_point, output_zero_point, multiplier, shift;
} at_requantize_params_t;
void at_requantize_s8(const at_requantize_params_t *p, const int8_t *input, int8_t *output);

#endif /* AT_KERNELS_H */
