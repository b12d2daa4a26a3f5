"""Quantization arithmetic exactly as TFLite Micro computes it: the set-up helpers of its kernels'
Prepare() (QuantizeMultiplier, CalculateActivationRange) and the
run-time fixed point of common.h and gemmlowp, vectorised over numpy arrays.

The op definitions (autotune.ops) derive each op's integers with these once, ahead of time, so
the reference executor and the generated C read the same integers and neither needs floating
point at run time (except QUANTIZE/DEQUANTIZE of a float model edge).

Shift convention is TFLM's: `shift > 0` multiplies by 2**shift, `shift < 0` divides (rounding).
The fixed-point helpers are TFLM's double-rounding variants (TFLITE_SINGLE_ROUNDING undefined,
as in the tflite-micro wheel: checked bit-exact against its interpreter in tests/test_executor.py).
"""
from __future__ import annotations

import math

import numpy as np

from autotune.ir.graph import Tensor

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


def _newton_reciprocal_q2_29(a: np.ndarray) -> np.ndarray:
    """gemmlowp's Newton-Raphson for 1 / (1 + a), a a Q0.31 in [0, 1): the Q2.29 estimate of
    1 / half_denominator, half_denominator = (1 + a) / 2 (RoundingHalfSum(a, F0::One()))."""
    mul = saturating_rounding_doubling_high_mul
    s = a + INT32_MAX
    half_denominator = np.where(s >= 0, s + 1, s - 1)
    half_denominator = np.where(half_denominator < 0, -((-half_denominator) // 2), half_denominator // 2)
    x = 1515870810 + mul(half_denominator, -1010580540)  # 48/17 - 32/17 * d, Q2.29
    for _ in range(3):
        one_minus = (1 << 29) - mul(half_denominator, x)
        x = x + _saturating_shift_left(mul(x, one_minus), 2)
    return x


def _one_over_one_plus_x_for_x_in_0_1(a: np.ndarray) -> np.ndarray:
    """gemmlowp: 1 / (1 + a) for a Q0.31 in [0, 1), result Q0.31."""
    return _saturating_shift_left(_newton_reciprocal_q2_29(a), 1)


def _one_minus_x_over_one_plus_x_for_x_in_0_1(a: np.ndarray) -> np.ndarray:
    """gemmlowp: (1 - a) / (1 + a) for a Q0.31 in [0, 1), result Q0.31."""
    return _saturating_shift_left(_newton_reciprocal_q2_29(a) - (1 << 29), 2)


def get_reciprocal(x: np.ndarray, x_integer_digits: int) -> tuple[np.ndarray, np.ndarray]:
    """TFLM GetReciprocal: (Q0.31 reciprocal of x scaled into [0.5, 1), num_bits_over_unit)."""
    x = np.asarray(x, dtype=np.int64)
    headroom_plus_one = 32 - np.frexp(x.astype(np.float64))[1]  # CountLeadingZeros(uint32 x), x > 0
    num_bits_over_unit = x_integer_digits - headroom_plus_one
    shifted_minus_one = _wrap_int32((x << headroom_plus_one) - (1 << 31))
    return _one_over_one_plus_x_for_x_in_0_1(shifted_minus_one), num_bits_over_unit


def exp_on_negative_values(a: np.ndarray, integer_bits: int) -> np.ndarray:
    """gemmlowp exp_on_negative_values: raw values <= 0 of a fixed point with `integer_bits`
    integer bits -> Q0.31 raw exp, elementwise."""
    mul, rdbpot = saturating_rounding_doubling_high_mul, rounding_divide_by_pot
    a = np.asarray(a, dtype=np.int64)
    frac_bits = 31 - integer_bits
    quarter = 1 << (frac_bits - 2)
    a_mod_quarter_minus_quarter = (a & (quarter - 1)) - quarter
    # exp on [-1/4, 0): Taylor expansion around -1/8, in Q0.31
    x = _saturating_shift_left(a_mod_quarter_minus_quarter, integer_bits) + (1 << 28)
    x2 = mul(x, x)
    x3 = mul(x2, x)
    x4 = mul(x2, x2)
    poly = rdbpot(mul(rdbpot(x4, 2) + x3, 715827883) + x2, 1)
    result = 1895147668 + mul(1895147668, x + poly)
    # the rest of -a, one bit at a time: multiply by exp(-2**k) for each set bit the format has
    remainder = a_mod_quarter_minus_quarter - a
    for exponent, multiplier in ((-2, 1672461947), (-1, 1302514674), (0, 790015084), (1, 290630308),
                                 (2, 39332535), (3, 720401), (4, 242)):
        if integer_bits > exponent:
            result = np.where(remainder & (1 << (frac_bits + exponent)), mul(result, multiplier), result)
    return np.where(a == 0, INT32_MAX, result)


def logistic_q4(a: np.ndarray) -> np.ndarray:
    """gemmlowp logistic: Q4.27 raw -> Q0.31 raw, elementwise."""
    a = np.asarray(a, dtype=np.int64)
    positive = _one_over_one_plus_x_for_x_in_0_1(exp_on_negative_values(-np.abs(a), 4))
    return np.where(a == 0, 1 << 30, np.where(a > 0, positive, INT32_MAX - positive))


def tanh_q4(a: np.ndarray) -> np.ndarray:
    """gemmlowp tanh: Q4.27 raw -> Q0.31 raw, elementwise (exp of 2a: the same raw as Q5.26)."""
    a = np.asarray(a, dtype=np.int64)
    t = _one_minus_x_over_one_plus_x_for_x_in_0_1(exp_on_negative_values(-np.abs(a), 5))
    return np.where(a == 0, 0, np.where(a < 0, -t, t))


def calculate_input_radius(integer_bits: int, left_shift: int, total_signed_bits: int = 31) -> int:
    """TFLM CalculateInputRadius (left_shift >= 0): the largest |input| whose rescaled value fits
    the fixed point, in double."""
    return math.floor(1.0 * ((1 << integer_bits) - 1) * (1 << (total_signed_bits - integer_bits)) / (1 << left_shift))
