"""QUANTIZE (float32 -> int8 at a model's input: reference_ops::AffineQuantize; int8 -> int8:
reference_ops::Requantize, C: at_requantize_s8.c) and DEQUANTIZE (int8 -> float32 at a model's
output). The generated C runs the integer path only: float edges are the caller's."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from autotune.ir.graph import Graph, Op
from autotune.ir.kernel_plan import KernelCall, frozen_map
from autotune.ops import fixedpoint as fp
from autotune.ops.base import OpDef, OpError, Operand, requantization, scale, zero_point


@dataclass(frozen=True)
class QuantizeParams:
    """float32 -> int8 (q = round(x / scale) + zp in float32) or int8 -> int8 requantization."""

    input_zero_point: int  # int8 input only
    output_zero_point: int
    multiplier: int  # int8 input only: q_out = zp_out + MBQM(q_in - zp_in, multiplier, shift)
    shift: int
    output_scale: float  # float input only: the one float a float model edge needs


def quantize_float(x: np.ndarray, output_scale: float, output_zero_point: int) -> np.ndarray:
    """AffineQuantize: round(x / scale) in float32, half away from zero, plus the zero point."""
    q = fp.f32_round_half_away(np.asarray(x, np.float32) / np.float32(output_scale)) + output_zero_point
    return np.clip(q, fp.INT8_MIN, fp.INT8_MAX).astype(np.int8)


class Quantize(OpDef):
    kind = "QUANTIZE"
    tflm_kernel = "reference_ops::AffineQuantize / Requantize"
    operands = (Operand("input", ("float32", "int8")),)

    def output_shape(self, graph: Graph, op: Op) -> tuple[int, ...]:
        return graph.tensor(op.inputs[0]).shape

    def check(self, graph: Graph, op: Op) -> None:
        self.prepare(graph, op)

    def prepare(self, graph: Graph, op: Op) -> QuantizeParams:
        inp, out = graph.tensor(op.inputs[0]), graph.tensor(op.outputs[0])
        if inp.dtype == "float32":
            return QuantizeParams(0, zero_point(out), 0, 0, scale(out))
        mult, shift = requantization(scale(inp) / scale(out), op.outputs[0])
        return QuantizeParams(zero_point(inp), zero_point(out), mult, shift, scale(out))

    def run(self, graph: Graph, op: Op, p: QuantizeParams, x: np.ndarray) -> np.ndarray:
        if x.dtype == np.float32:
            return quantize_float(x, p.output_scale, p.output_zero_point)
        q = fp.multiply_by_quantized_multiplier(x.astype(np.int64) - p.input_zero_point, p.multiplier, p.shift)
        return np.clip(q + p.output_zero_point, fp.INT8_MIN, fp.INT8_MAX).astype(np.int8)

    def lower(self, graph: Graph, index: int, op: Op, p: QuantizeParams) -> tuple[KernelCall, ...]:
        inp = graph.tensor(op.inputs[0])
        if inp.dtype != "int8":
            raise OpError("float32 QUANTIZE inside the graph (only at its input)", op.inputs[0])
        return (KernelCall(op=index, kind=op.kind, name=f"op{index}", symbol="at_requantize_s8",
                           source="at_requantize_s8.c", inputs=(op.inputs[0],), outputs=(op.outputs[0],),
                           dims=frozen_map(size=inp.size), work=frozen_map(calls=1, outputs=inp.size),
                           overwrites=(op.inputs[0],), params=p),)

    def emit(self, c, call: KernelCall) -> None:
        op, p = c.graph.ops[call.op], call.params
        c.struct("at_requantize_params_t", call.name, dict(
            size=call.dims["size"], input_zero_point=p.input_zero_point, output_zero_point=p.output_zero_point,
            multiplier=p.multiplier, shift=p.shift))
        c.call(call, c.ref(op.inputs[0]), c.ref(op.outputs[0]))


@dataclass(frozen=True)
class DequantizeParams:
    zero_point: int
    scale: float  # x = float32(double(scale) * (q - zero_point))


class Dequantize(OpDef):
    kind = "DEQUANTIZE"
    tflm_kernel = "reference_ops::Dequantize"
    result_dtype = "float32"

    def output_shape(self, graph: Graph, op: Op) -> tuple[int, ...]:
        return graph.tensor(op.inputs[0]).shape

    def prepare(self, graph: Graph, op: Op) -> DequantizeParams:
        t = graph.tensor(op.inputs[0])
        return DequantizeParams(zero_point(t), scale(t))

    def run(self, graph: Graph, op: Op, p: DequantizeParams, x: np.ndarray) -> np.ndarray:
        return (p.scale * (x.astype(np.float64) - p.zero_point)).astype(np.float32)

    def lower(self, graph: Graph, index: int, op: Op, p: DequantizeParams) -> tuple[KernelCall, ...]:
        raise OpError("DEQUANTIZE inside the graph (only at its output)", op.outputs[0])

    def emit(self, c, call: KernelCall) -> None:
        raise AssertionError("DEQUANTIZE is never lowered")
