"""Quantization arithmetic and per-op integer parameters, exactly as TFLite Micro computes them.

TFLM derives these in each kernel's Prepare() (QuantizeMultiplier, CalculateActivationRange,
ComputePaddingHeightWidth, PreprocessSoftmaxScaling, ...). We derive them once here, ahead of
time, so the reference executor and the generated C read the same integers and neither needs
floating point at run time (except QUANTIZE/DEQUANTIZE of a float model edge).

Shift convention is TFLM's: `shift > 0` multiplies by 2**shift, `shift < 0` divides (rounding).
The fixed-point helpers are TFLM's double-rounding variants (TFLITE_SINGLE_ROUNDING undefined,
as in the tflite-micro wheel: checked bit-exact against its interpreter in tests/test_executor.py).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from autotune.ir.graph import Graph, Op, Tensor

INT8_MIN, INT8_MAX = -128, 127
INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1
ADD_LEFT_SHIFT = 20  # TFLM add_common.cc: left_shift for int8 outputs (15 for int16)
SOFTMAX_SCALED_DIFF_INTEGER_BITS = 5  # exp() input is Q5.26
SOFTMAX_ACCUM_INTEGER_BITS = 12  # sum of exps is Q12.19


# ---------------------------------------------------------------- scalar set-up arithmetic


def quantize_multiplier(real: float) -> tuple[int, int]:
    """TFLM QuantizeMultiplier: real ~= multiplier * 2**(shift - 31), multiplier a q31 in [2**30, 2**31)."""
    if real == 0.0:
        return 0, 0
    q, shift = math.frexp(real)
    # std::round; exact: |q| * 2**31 < 2**31 has at most 22 fraction bits, so + 0.5 does not round
    q_fixed = int(math.copysign(math.floor(abs(q) * (1 << 31) + 0.5), q))
    if q_fixed == 1 << 31:
        q_fixed //= 2
        shift += 1
    if shift < -31:  # everything would be shifted out: TFLM encodes that as a zero multiplier
        return 0, 0
    return q_fixed, shift


def f32_round_half_away(x: np.ndarray) -> np.ndarray:
    """std::round on float32 values, elementwise, returned as float64 holding integers."""
    x = np.asarray(x, dtype=np.float64)  # float32 -> float64 is exact
    r = np.trunc(x)
    return r + np.where(np.abs(x - r) >= 0.5, np.sign(x), 0.0)


def _quantize_f32(scale: float, zero_point: int, f: float) -> int:
    """TFLM kernel_util Quantize(): zero_point + round(f / scale) in float32."""
    q = np.float32(f) / np.float32(scale)
    return zero_point + int(f32_round_half_away(q))


def activation_range(activation: str, out: Tensor) -> tuple[int, int]:
    """CalculateActivationRangeQuantized for an int8 output."""
    scale, zp = out.quant.scale[0], out.quant.zero_point[0]
    if activation == "NONE":
        return INT8_MIN, INT8_MAX
    lo = max(INT8_MIN, _quantize_f32(scale, zp, 0.0))
    if activation == "RELU":
        return lo, INT8_MAX
    if activation == "RELU6":
        return lo, min(INT8_MAX, _quantize_f32(scale, zp, 6.0))
    raise ValueError(f"unsupported activation {activation!r}")


def _compute_out_size(padding: str, size: int, filt: int, stride: int, dilation: int) -> int:
    eff = (filt - 1) * dilation + 1
    return (size + stride - 1) // stride if padding == "SAME" else (size + stride - eff) // stride


def compute_padding(padding: str, size: int, filt: int, stride: int, dilation: int = 1) -> tuple[int, int]:
    """ComputePaddingHeightWidth for one dimension: (output size, leading pad)."""
    out = _compute_out_size(padding, size, filt, stride, dilation)
    total = (out - 1) * stride + (filt - 1) * dilation + 1 - size
    return out, max(total, 0) // 2


# ---------------------------------------------------------------- run-time integer arithmetic
# Vectorised over numpy arrays of int64 holding int32 values; bit-exact with TFLM common.h.


def saturating_rounding_doubling_high_mul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """gemmlowp SaturatingRoundingDoublingHighMul on int32 values held in int64.

    Its nudge-then-truncate rounds halves toward +inf for either sign, which is exactly
    floor((a*b + 2**30) / 2**31): one add and one arithmetic shift.
    """
    a = np.asarray(a, dtype=np.int64)
    b = np.asarray(b, dtype=np.int64)
    out = (a * b + (1 << 30)) >> 31
    return np.where((a == INT32_MIN) & (b == INT32_MIN), INT32_MAX, out)


def rounding_divide_by_pot(x: np.ndarray, exponent: np.ndarray | int) -> np.ndarray:
    """gemmlowp RoundingDivideByPOT: x / 2**exponent, halves away from zero (exponent >= 0)."""
    x = np.asarray(x, dtype=np.int64)
    exponent = np.asarray(exponent, dtype=np.int64)
    half = (np.int64(1) << exponent) >> 1
    # (x + half) >> e rounds halves up; negative halves must go down: one less before the shift.
    return (x + half - ((x < 0) & (exponent > 0))) >> exponent


def _wrap_int32(x: np.ndarray) -> np.ndarray:
    return ((np.asarray(x, dtype=np.int64) + 2**31) & 0xFFFFFFFF) - 2**31


def multiply_by_quantized_multiplier(x: np.ndarray, multiplier: np.ndarray | int,
                                     shift: np.ndarray | int) -> np.ndarray:
    """TFLM MultiplyByQuantizedMultiplier(int32 x, q31 multiplier >= 0, shift); int64 in and out.

    RoundingDivideByPOT(SaturatingRoundingDoublingHighMul(x << left, m), right) in one step:
    floor(floor(A / 2**31) / 2**r) == floor(A / 2**(31 + r)), so both roundings become one bias,
    2**30 + 2**(r-1) * 2**31, less 2**31 for negative x when r > 0 (RoundingDivideByPOT's halves
    away from zero). x < 0 stands in for "the high half is negative": where they differ both give 0.
    """
    x = np.asarray(x, dtype=np.int64)
    shift = np.asarray(shift, dtype=np.int64)
    if np.any(shift > 0):
        x = _wrap_int32(x << np.maximum(shift, 0))  # int32 `x * (1 << left_shift)`
    right = np.maximum(-shift, 0)
    out = x * np.asarray(multiplier, dtype=np.int64)  # < 2**62: no SRDHM saturation, m >= 0
    out += (1 << 30) + (((np.int64(1) << right) >> 1) << 31)
    if np.any(right > 0):
        neg = x >> 63  # -1 where x < 0: cheaper than np.where on large arrays
        neg <<= 31
        out += neg if np.all(right > 0) else neg * (right > 0)
    out >>= 31 + right
    return out


def _saturating_shift_left(x: np.ndarray, exponent: int) -> np.ndarray:
    """gemmlowp SaturatingRoundingMultiplyByPOT for a positive exponent on int32 raw values."""
    threshold = (1 << (31 - exponent)) - 1
    return np.where(x > threshold, INT32_MAX, np.where(x < -threshold, INT32_MIN, x << exponent))


def _one_over_one_plus_x_for_x_in_0_1(a: np.ndarray) -> np.ndarray:
    """gemmlowp: 1 / (1 + a) for a Q0.31 in [0, 1); Newton-Raphson on Q2.29, result Q0.31."""
    mul = saturating_rounding_doubling_high_mul
    s = a + INT32_MAX  # RoundingHalfSum(a, F0::One())
    half_denominator = np.where(s >= 0, s + 1, s - 1)
    half_denominator = np.where(half_denominator < 0, -((-half_denominator) // 2), half_denominator // 2)
    x = 1515870810 + mul(half_denominator, -1010580540)  # 48/17 - 32/17 * d, Q2.29
    for _ in range(3):
        one_minus = (1 << 29) - mul(half_denominator, x)
        x = x + _saturating_shift_left(mul(x, one_minus), 2)
    return _saturating_shift_left(x, 1)


def get_reciprocal(x: np.ndarray, x_integer_digits: int) -> tuple[np.ndarray, np.ndarray]:
    """TFLM GetReciprocal: (Q0.31 reciprocal of x scaled into [0.5, 1), num_bits_over_unit)."""
    x = np.asarray(x, dtype=np.int64)
    headroom_plus_one = 32 - np.frexp(x.astype(np.float64))[1]  # CountLeadingZeros(uint32 x), x > 0
    num_bits_over_unit = x_integer_digits - headroom_plus_one
    shifted_minus_one = _wrap_int32((x << headroom_plus_one) - (1 << 31))
    return _one_over_one_plus_x_for_x_in_0_1(shifted_minus_one), num_bits_over_unit


def exp_on_negative_values_q5_26(a: np.ndarray) -> np.ndarray:
    """gemmlowp exp_on_negative_values: Q5.26 raw values <= 0 -> Q0.31 raw exp, elementwise."""
    mul, rdbpot = saturating_rounding_doubling_high_mul, rounding_divide_by_pot
    a = np.asarray(a, dtype=np.int64)
    frac_bits = 31 - SOFTMAX_SCALED_DIFF_INTEGER_BITS
    quarter = 1 << (frac_bits - 2)
    a_mod_quarter_minus_quarter = (a & (quarter - 1)) - quarter
    # exp on [-1/4, 0): Taylor expansion around -1/8, in Q0.31
    x = _saturating_shift_left(a_mod_quarter_minus_quarter, SOFTMAX_SCALED_DIFF_INTEGER_BITS) + (1 << 28)
    x2 = mul(x, x)
    x3 = mul(x2, x)
    x4 = mul(x2, x2)
    poly = rdbpot(mul(rdbpot(x4, 2) + x3, 715827883) + x2, 1)
    result = 1895147668 + mul(1895147668, x + poly)
    # the rest of -a, one bit at a time: multiply by exp(-2**k) for each set bit
    remainder = a_mod_quarter_minus_quarter - a
    for exponent, multiplier in ((-2, 1672461947), (-1, 1302514674), (0, 790015084), (1, 290630308),
                                 (2, 39332535), (3, 720401), (4, 242)):
        result = np.where(remainder & (1 << (frac_bits + exponent)), mul(result, multiplier), result)
    return np.where(a == 0, INT32_MAX, result)


# ---------------------------------------------------------------- per-op parameters


@dataclass(frozen=True, eq=False)
class ConvParams:
    """CONV_2D and DEPTHWISE_CONV_2D (depth_multiplier is 1 for CONV_2D)."""

    input_offset: int  # -input zero point, added to every input value
    output_offset: int  # output zero point
    multiplier: np.ndarray  # int32, one per output channel
    shift: np.ndarray  # int32, one per output channel
    act_min: int
    act_max: int
    stride_h: int
    stride_w: int
    dilation_h: int
    dilation_w: int
    pad_h: int  # leading padding rows (TFLM padding_values.height)
    pad_w: int
    depth_multiplier: int


@dataclass(frozen=True, eq=False)
class FullyConnectedParams:
    input_offset: int
    filter_offset: int  # -filter zero point (0: int8 weights are symmetric)
    output_offset: int
    multiplier: np.ndarray  # int32, length 1 (per tensor) or one per output unit
    shift: np.ndarray
    act_min: int
    act_max: int


@dataclass(frozen=True)
class PoolParams:
    """AVERAGE_POOL_2D and MAX_POOL_2D; input and output share one quantization."""

    filter_h: int
    filter_w: int
    stride_h: int
    stride_w: int
    pad_h: int
    pad_w: int
    act_min: int
    act_max: int


@dataclass(frozen=True)
class MeanParams:
    """MEAN over `axis` (TFLM reduce.h QuantizedMeanOrSum, integer since 2024): the 1/count is
    folded into the multiplier, out = MBQM(sum - zp_in * count, multiplier, shift) + zp_out."""

    axis: tuple[int, ...]
    count: int  # elements summed per output
    input_zero_point: int
    output_zero_point: int
    multiplier: int
    shift: int


@dataclass(frozen=True, eq=False)
class SoftmaxParams:
    """int8 -> int8 SOFTMAX (TFLM reference_ops::Softmax, gemmlowp fixed point).

    The exp of every possible input difference (max - x in 0..255) is tabulated here, so run time
    is: sum = sum(exp_sum_table[d]); (recip, bits) = GetReciprocal(sum, 12);
    out = RoundingDivideByPOT(SRDHM(recip, exp_table[d]), bits + 23) - 128, clamped to int8.
    """

    input_multiplier: int
    input_left_shift: int
    diff_min: int  # differences below this contribute nothing (table entries are 0)
    exp_table: np.ndarray  # int32[256], Q0.31 exp(-d * beta * s_in)
    exp_sum_table: np.ndarray  # int32[256], the same rescaled to Q12.19


@dataclass(frozen=True)
class AddParams:
    input1_offset: int
    input2_offset: int
    output_offset: int
    left_shift: int
    input1_multiplier: int
    input1_shift: int
    input2_multiplier: int
    input2_shift: int
    output_multiplier: int
    output_shift: int
    act_min: int
    act_max: int


@dataclass(frozen=True)
class PadParams:
    paddings: tuple[tuple[int, int], ...]  # (before, after) per dimension
    pad_value: int  # the output zero point


@dataclass(frozen=True)
class ConcatParams:
    axis: int  # non-negative; TFLM copies int8 inputs unchanged (all share one quantization)


@dataclass(frozen=True)
class ReshapeParams:
    shape: tuple[int, ...]


@dataclass(frozen=True)
class QuantizeParams:
    """float32 -> int8 (q = round(x / scale) + zp in float32) or int8 -> int8 requantization."""

    input_zero_point: int  # int8 input only
    output_zero_point: int
    multiplier: int  # int8 input only: q_out = zp_out + MBQM(q_in - zp_in, multiplier, shift)
    shift: int
    output_scale: float  # float input only: the one float a float model edge needs


@dataclass(frozen=True)
class DequantizeParams:
    zero_point: int
    scale: float  # x = float32(double(scale) * (q - zero_point))


OpParams = (ConvParams | FullyConnectedParams | PoolParams | MeanParams | SoftmaxParams | AddParams
            | PadParams | ConcatParams | ReshapeParams | QuantizeParams | DequantizeParams)


def _frozen(a: np.ndarray) -> np.ndarray:
    a.flags.writeable = False
    return a


def _scale(t: Tensor) -> float:
    return t.quant.scale[0]


def _zp(t: Tensor) -> int:
    return t.quant.zero_point[0]


def _channel_multipliers(inp: Tensor, filt: Tensor, out: Tensor, channels: int) -> tuple[np.ndarray, np.ndarray]:
    """PopulateConvolutionQuantizationParams: in_scale * filter_scale[c] / out_scale, in double."""
    scales = filt.quant.scale if filt.quant.per_channel else filt.quant.scale * channels
    pairs = [quantize_multiplier(_scale(inp) * s / _scale(out)) for s in scales]
    return (_frozen(np.array([m for m, _ in pairs], dtype=np.int32)),
            _frozen(np.array([s for _, s in pairs], dtype=np.int32)))


def _conv(graph: Graph, op: Op) -> ConvParams:
    inp, filt, out = (graph.tensor(i) for i in (op.inputs[0], op.inputs[1], op.outputs[0]))
    o = op.options
    _, kh, kw, _ = filt.shape
    _, pad_h = compute_padding(o["padding"], inp.shape[1], kh, o["stride_h"], o["dilation_h"])
    _, pad_w = compute_padding(o["padding"], inp.shape[2], kw, o["stride_w"], o["dilation_w"])
    mult, shift = _channel_multipliers(inp, filt, out, out.shape[-1])
    act_min, act_max = activation_range(o["activation"], out)
    return ConvParams(-_zp(inp), _zp(out), mult, shift, act_min, act_max, o["stride_h"], o["stride_w"],
                      o["dilation_h"], o["dilation_w"], pad_h, pad_w, o.get("depth_multiplier", 1))


def _fully_connected(graph: Graph, op: Op) -> FullyConnectedParams:
    inp, filt, out = (graph.tensor(i) for i in (op.inputs[0], op.inputs[1], op.outputs[0]))
    channels = out.shape[-1] if filt.quant.per_channel else 1
    mult, shift = _channel_multipliers(inp, filt, out, channels)
    act_min, act_max = activation_range(op.options["activation"], out)
    return FullyConnectedParams(-_zp(inp), -_zp(filt), _zp(out), mult, shift, act_min, act_max)


def _pool(graph: Graph, op: Op) -> PoolParams:
    inp, out = graph.tensor(op.inputs[0]), graph.tensor(op.outputs[0])
    o = op.options
    _, pad_h = compute_padding(o["padding"], inp.shape[1], o["filter_h"], o["stride_h"])
    _, pad_w = compute_padding(o["padding"], inp.shape[2], o["filter_w"], o["stride_w"])
    act_min, act_max = activation_range(o["activation"], out)
    return PoolParams(o["filter_h"], o["filter_w"], o["stride_h"], o["stride_w"], pad_h, pad_w,
                      act_min, act_max)


def _mean(graph: Graph, op: Op) -> MeanParams:
    inp, out = graph.tensor(op.inputs[0]), graph.tensor(op.outputs[0])
    axis = tuple(sorted(a % len(inp.shape) for a in op.options["axis"]))
    count = int(np.prod([inp.shape[a] for a in axis]))
    multiplier, shift = quantize_multiplier(_scale(inp) / _scale(out))
    # Fold 1/count in, keeping shift - fold >= -31 (MBQM's precondition) and the product in int64.
    fold = min(count.bit_length() - 1, 32, 31 + shift)
    multiplier = (multiplier << fold) // count  # non-negative, so // is C's truncating division
    return MeanParams(axis, count, _zp(inp), _zp(out), multiplier, shift - fold)


def _softmax(graph: Graph, op: Op) -> SoftmaxParams:
    inp = graph.tensor(op.inputs[0])
    # PreprocessSoftmaxScaling: beta * s_in * 2**(31 - 5), capped, as a q31 multiplier >= 1
    real = min(op.options["beta"] * _scale(inp) * (1 << (31 - SOFTMAX_SCALED_DIFF_INTEGER_BITS)),
               (1 << 31) - 1.0)
    mult, left_shift = quantize_multiplier(real)
    # CalculateInputRadius(5, left_shift): largest difference whose rescaled value fits Q5.26
    radius = math.floor(((1 << SOFTMAX_SCALED_DIFF_INTEGER_BITS) - 1)
                        * (1 << (31 - SOFTMAX_SCALED_DIFF_INTEGER_BITS)) / (1 << left_shift))
    diff_min = -radius
    diff = -np.arange(256, dtype=np.int64)
    used = diff >= diff_min
    # MultiplyByQuantizedMultiplierGreaterThanOne(diff, mult, left_shift), only where it fits
    rescaled = saturating_rounding_doubling_high_mul(np.where(used, diff << left_shift, 0), mult)
    exp_table = np.where(used, exp_on_negative_values_q5_26(rescaled), 0)
    exp_sum_table = rounding_divide_by_pot(exp_table, SOFTMAX_ACCUM_INTEGER_BITS)  # Rescale<12>
    return SoftmaxParams(mult, left_shift, diff_min, _frozen(exp_table.astype(np.int32)),
                         _frozen(exp_sum_table.astype(np.int32)))


def _add(graph: Graph, op: Op) -> AddParams:
    in1, in2, out = (graph.tensor(i) for i in (op.inputs[0], op.inputs[1], op.outputs[0]))
    twice_max = 2 * max(_scale(in1), _scale(in2))
    m1, s1 = quantize_multiplier(_scale(in1) / twice_max)
    m2, s2 = quantize_multiplier(_scale(in2) / twice_max)
    mo, so = quantize_multiplier(twice_max / ((1 << ADD_LEFT_SHIFT) * _scale(out)))
    act_min, act_max = activation_range(op.options["activation"], out)
    return AddParams(-_zp(in1), -_zp(in2), _zp(out), ADD_LEFT_SHIFT, m1, s1, m2, s2, mo, so,
                     act_min, act_max)


def _pad(graph: Graph, op: Op) -> PadParams:
    paddings = graph.tensor(op.inputs[1]).data
    return PadParams(tuple((int(b), int(a)) for b, a in paddings), _zp(graph.tensor(op.outputs[0])))


def _quantize(graph: Graph, op: Op) -> QuantizeParams:
    inp, out = graph.tensor(op.inputs[0]), graph.tensor(op.outputs[0])
    if inp.dtype == "float32":
        return QuantizeParams(0, _zp(out), 0, 0, _scale(out))
    mult, shift = quantize_multiplier(_scale(inp) / _scale(out))
    return QuantizeParams(_zp(inp), _zp(out), mult, shift, _scale(out))


def op_params(graph: Graph, op: Op) -> OpParams:
    """Everything op `op` of `graph` needs at run time, derived as TFLM's Prepare() does."""
    kind = op.kind
    if kind in ("CONV_2D", "DEPTHWISE_CONV_2D"):
        return _conv(graph, op)
    if kind == "FULLY_CONNECTED":
        return _fully_connected(graph, op)
    if kind in ("AVERAGE_POOL_2D", "MAX_POOL_2D"):
        return _pool(graph, op)
    if kind == "MEAN":
        return _mean(graph, op)
    if kind == "SOFTMAX":
        return _softmax(graph, op)
    if kind == "ADD":
        return _add(graph, op)
    if kind == "PAD":
        return _pad(graph, op)
    if kind == "CONCATENATION":
        return ConcatParams(op.options["axis"] % len(graph.tensor(op.outputs[0]).shape))
    if kind == "RESHAPE":
        return ReshapeParams(graph.tensor(op.outputs[0]).shape)
    if kind == "QUANTIZE":
        return _quantize(graph, op)
    if kind == "DEQUANTIZE":
        t = graph.tensor(op.inputs[0])
        return DequantizeParams(_zp(t), _scale(t))
    raise ValueError(f"no parameters for op kind {kind!r}")
