"""Element-wise int8 -> int8 activations: LOGISTIC (TFLM reference_integer_ops::Logistic), TANH
(reference_integer_ops::Tanh), HARD_SWISH (reference_ops::HardSwish), LEAKY_RELU
(reference_ops::QuantizeLeakyRelu), RELU (ReluQuantized) and RELU6 (Relu6Quantized).

The reference kernels compute each output from its input alone, in TFLM's fixed point. The C
looks every value up in a 256-entry table those same kernels fill at generation time
(at_lut_s8.c): one kernel for all of them, exact by construction, about 6 cycles a value on the
Cortex-M0+ whatever the function.
"""
from __future__ import annotations

import math
from abc import abstractmethod
from dataclasses import dataclass

import numpy as np

from autotune.ir.graph import Graph, Op
from autotune.ir.kernel_plan import KernelCall, frozen_map
from autotune.ops import fixedpoint as fp
from autotune.ops.base import OpDef, OpError, requantization, scale, zero_point

ALL_INT8 = np.arange(fp.INT8_MIN, fp.INT8_MAX + 1, dtype=np.int64)


class _Lookup(OpDef):
    """An element-wise int8 function: the reference computes it, the C looks it up."""

    def output_shape(self, graph: Graph, op: Op) -> tuple[int, ...]:
        return graph.tensor(op.inputs[0]).shape

    def check(self, graph: Graph, op: Op) -> None:
        self.prepare(graph, op)  # every parameter TFLM's Prepare would refuse is refused there

    @abstractmethod
    def apply(self, p, x: np.ndarray) -> np.ndarray:
        """The op on int8 values held in int64, any shape -> int8."""

    def run(self, graph: Graph, op: Op, p, x: np.ndarray) -> np.ndarray:
        return self.apply(p, x.astype(np.int64))

    def lower(self, graph: Graph, index: int, op: Op, p) -> tuple[KernelCall, ...]:
        size = graph.tensor(op.inputs[0]).size
        return (KernelCall(op=index, kind=op.kind, name=f"op{index}", symbol="at_lut_s8", source="at_lut_s8.c",
                           inputs=(op.inputs[0],), outputs=(op.outputs[0],), dims=frozen_map(size=size),
                           overwrites=(op.inputs[0],), work=frozen_map(calls=1, outputs=size),
                           const_bytes=256, params=p),)

    def emit(self, c, call: KernelCall) -> None:
        op = c.graph.ops[call.op]
        table = c.array("int8_t", f"{call.name}_table", self.apply(call.params, ALL_INT8))
        c.struct("at_lut_params_t", call.name, dict(size=call.dims["size"], table=table))
        c.call(call, c.ref(op.inputs[0]), c.ref(op.outputs[0]))


def _input_multiplier(graph: Graph, op: Op, integer_bits: int) -> tuple[int, int, int]:
    """TFLM's LOGISTIC / TANH Prepare: (multiplier, left shift, input radius) taking an input
    value to Q4.27: frexp(scale * 2**27), the fraction rounded to a q31."""
    q, left_shift = math.frexp(scale(graph.tensor(op.inputs[0])) * float(1 << (31 - integer_bits)))
    multiplier = int(fp.f32_round_half_away(np.float64(q * (1 << 31))))  # std::round in double
    if left_shift < 0 or left_shift > 30 or multiplier >= 1 << 31:
        raise OpError(f"input scale {scale(graph.tensor(op.inputs[0])):.6g} is outside what TFLM's fixed point "
                      "takes", op.inputs[0])
    return multiplier, left_shift, fp.calculate_input_radius(integer_bits, left_shift)


def _saturated(v: np.ndarray, radius: int, out: np.ndarray) -> np.ndarray:
    """The outputs of inputs at or beyond the radius saturate, as TFLM's kernels branch."""
    return np.where(v <= -radius, fp.INT8_MIN, np.where(v >= radius, fp.INT8_MAX, out)).astype(np.int8)


@dataclass(frozen=True)
class SigmoidParams:
    """LOGISTIC and TANH: input - zero point, saturated beyond the radius, else to Q4.27."""

    input_zero_point: int
    input_radius: int
    multiplier: int
    left_shift: int


class Logistic(_Lookup):
    kind = "LOGISTIC"
    tflm_kernel = "reference_integer_ops::Logistic (gemmlowp fixed point)"

    def check(self, graph: Graph, op: Op) -> None:
        if zero_point(graph.tensor(op.outputs[0])) != fp.INT8_MIN:
            raise OpError("output zero point must be -128", op.outputs[0])
        super().check(graph, op)

    def prepare(self, graph: Graph, op: Op) -> SigmoidParams:
        multiplier, shift, radius = _input_multiplier(graph, op, 4)
        return SigmoidParams(zero_point(graph.tensor(op.inputs[0])), radius, multiplier, shift)

    def apply(self, p: SigmoidParams, x: np.ndarray) -> np.ndarray:
        v = x - p.input_zero_point
        q4 = fp.multiply_by_quantized_multiplier(np.clip(v, -p.input_radius, p.input_radius), p.multiplier,
                                                 p.left_shift)
        out = np.clip(fp.rounding_divide_by_pot(fp.logistic_q4(q4), 23) - 128, fp.INT8_MIN, fp.INT8_MAX)
        return _saturated(v, p.input_radius, out)


class Tanh(_Lookup):
    kind = "TANH"
    tflm_kernel = "reference_integer_ops::Tanh (gemmlowp fixed point)"

    def prepare(self, graph: Graph, op: Op) -> SigmoidParams:
        multiplier, shift, radius = _input_multiplier(graph, op, 4)
        return SigmoidParams(zero_point(graph.tensor(op.inputs[0])), radius, multiplier, shift)

    def apply(self, p: SigmoidParams, x: np.ndarray) -> np.ndarray:
        v = x - p.input_zero_point
        q4 = fp.multiply_by_quantized_multiplier(np.clip(v, -p.input_radius, p.input_radius), p.multiplier,
                                                 p.left_shift)
        out = np.clip(fp.rounding_divide_by_pot(fp.tanh_q4(q4), 24), fp.INT8_MIN, fp.INT8_MAX)
        return _saturated(v, p.input_radius, out)


# ---------------------------------------------------------------- HARD_SWISH: 16-bit fixed point


def _srdhm16(a: np.ndarray, b: int) -> np.ndarray:
    """gemmlowp SaturatingRoundingDoublingHighMul on int16."""
    ab = a * b
    out = _c_div(ab + np.where(ab >= 0, 1 << 14, 1 - (1 << 14)), 1 << 15)
    return np.where((a == -32768) & (b == -32768), 32767, out)


def _sdhm16(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """TFLM SaturatingDoublingHighMul: the same, truncating toward zero."""
    return np.where((a == -32768) & (b == -32768), 32767, _c_div(a * b, 1 << 15))


def _c_div(a: np.ndarray, b: int) -> np.ndarray:
    """C's integer division: toward zero."""
    return np.where(a < 0, -((-a) // b), a // b)


def _saturating_left_shift16(x: np.ndarray, amount: int) -> np.ndarray:
    return np.clip(x * (1 << amount), -32768, 32767)


def _int16_multiplier(real: float) -> tuple[int, int]:
    """QuantizeMultiplier then DownScaleInt32ToInt16Multiplier: (q15 multiplier, exponent)."""
    multiplier, exponent = fp.quantize_multiplier(real)
    if multiplier >= fp.INT32_MAX - (1 << 15):
        return 32767, exponent
    return (multiplier + (1 << 15)) >> 16, exponent


@dataclass(frozen=True)
class HardSwishParams:
    input_zero_point: int
    output_zero_point: int
    output_multiplier: int  # q15
    output_exponent: int  # <= 0
    reluish_multiplier: int  # q15
    reluish_exponent: int


class HardSwish(_Lookup):
    kind = "HARD_SWISH"
    tflm_kernel = "reference_ops::HardSwish (16-bit fixed point)"

    def prepare(self, graph: Graph, op: Op) -> HardSwishParams:
        inp, out = graph.tensor(op.inputs[0]), graph.tensor(op.outputs[0])
        # TFLM's Prepare divides in float32, then widens to double
        hires = np.float32(1.0 / 128.0) * np.float32(scale(inp))
        output_m, output_e = _int16_multiplier(float(hires / np.float32(scale(out))))
        reluish_m, reluish_e = _int16_multiplier(float(hires / (np.float32(3.0) / np.float32(32768.0))))
        if not -15 <= output_e <= 0 or not -15 <= reluish_e <= 15:
            raise OpError(f"scales give shifts {output_e} and {reluish_e}, outside TFLM's 16-bit fixed point",
                          op.outputs[0])
        return HardSwishParams(zero_point(inp), zero_point(out), output_m, output_e, reluish_m, reluish_e)

    def apply(self, p: HardSwishParams, x: np.ndarray) -> np.ndarray:
        hires = (x - p.input_zero_point) * 128
        preshift_output = _srdhm16(hires, p.output_multiplier)
        reluish = hires
        if p.reluish_exponent > 0:
            reluish = _saturating_left_shift16(reluish, p.reluish_exponent - 1)
        reluish = _srdhm16(reluish, p.reluish_multiplier)
        if p.reluish_exponent > 0:
            reluish = _saturating_left_shift16(reluish, 1)
        if p.reluish_exponent < 0:
            reluish = fp.rounding_divide_by_pot(reluish, -p.reluish_exponent)
        reluish = (reluish + (1 << 15)) >> 1
        out = fp.rounding_divide_by_pot(_sdhm16(reluish, preshift_output), -p.output_exponent)
        return np.clip(out + p.output_zero_point, fp.INT8_MIN, fp.INT8_MAX).astype(np.int8)


# ---------------------------------------------------------------- rectifiers


@dataclass(frozen=True)
class LeakyReluParams:
    input_zero_point: int
    output_zero_point: int
    identity_multiplier: int
    identity_shift: int
    alpha_multiplier: int
    alpha_shift: int


class LeakyRelu(_Lookup):
    kind = "LEAKY_RELU"
    tflm_kernel = "reference_ops::QuantizeLeakyRelu"
    options_type = "LeakyReluOptions"

    def parse_options(self, o, graph: Graph, inputs: tuple[int, ...]) -> dict:
        alpha = float(o.alpha) if o is not None else 0.0
        if not (math.isfinite(alpha) and 0.0 <= alpha <= 1e3):
            raise OpError(f"has alpha {alpha}")
        return dict(alpha=alpha)

    def prepare(self, graph: Graph, op: Op) -> LeakyReluParams:
        inp, out = graph.tensor(op.inputs[0]), graph.tensor(op.outputs[0])
        # in float32, as TFLM's Prepare: scale * alpha / scale, then widened to double
        real_alpha = np.float32(scale(inp)) * np.float32(op.options["alpha"]) / np.float32(scale(out))
        alpha_m, alpha_s = requantization(float(real_alpha), op.outputs[0])
        identity_m, identity_s = requantization(scale(inp) / scale(out), op.outputs[0])
        return LeakyReluParams(zero_point(inp), zero_point(out), identity_m, identity_s, alpha_m, alpha_s)

    def apply(self, p: LeakyReluParams, x: np.ndarray) -> np.ndarray:
        v = x - p.input_zero_point
        mbqm = fp.multiply_by_quantized_multiplier
        out = np.where(v >= 0, mbqm(v, p.identity_multiplier, p.identity_shift),
                       mbqm(v, p.alpha_multiplier, p.alpha_shift)) + p.output_zero_point
        return np.clip(out, fp.INT8_MIN, fp.INT8_MAX).astype(np.int8)


@dataclass(frozen=True)
class ReluParams:
    input_zero_point: int
    output_zero_point: int
    multiplier: int
    shift: int
    act_min: int
    act_max: int


class Relu(_Lookup):
    kind = "RELU"
    tflm_kernel = "ReluQuantized (activations.cc)"

    def prepare(self, graph: Graph, op: Op) -> ReluParams:
        inp, out = graph.tensor(op.inputs[0]), graph.tensor(op.outputs[0])
        multiplier, shift = requantization(scale(inp) / scale(out), op.outputs[0])
        return ReluParams(zero_point(inp), zero_point(out), multiplier, shift,
                          max(fp.INT8_MIN, zero_point(out)), fp.INT8_MAX)  # roundf(0 / scale) is 0

    def apply(self, p: ReluParams, x: np.ndarray) -> np.ndarray:
        out = fp.multiply_by_quantized_multiplier(x - p.input_zero_point, p.multiplier, p.shift) + p.output_zero_point
        return np.clip(out, p.act_min, p.act_max).astype(np.int8)


@dataclass(frozen=True)
class Relu6Params:
    zero: int  # the input's zero point
    six: int  # 6.0 on the input's scale, clamped to int8


class Relu6(_Lookup):
    kind = "RELU6"
    tflm_kernel = "Relu6Quantized (activations.cc): a clamp on the input's scale"

    def prepare(self, graph: Graph, op: Op) -> Relu6Params:
        inp = graph.tensor(op.inputs[0])
        six = int(fp.f32_round_half_away(np.float32(6.0) / np.float32(scale(inp)))) + zero_point(inp)
        return Relu6Params(zero_point(inp), min(max(six, fp.INT8_MIN), fp.INT8_MAX))

    def apply(self, p: Relu6Params, x: np.ndarray) -> np.ndarray:
        return np.where(x > p.six, p.six, np.where(x < p.zero, p.zero, x)).astype(np.int8)
