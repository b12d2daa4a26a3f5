"""Element-wise binary ops with broadcasting, int8: ADD (TFLM reference_integer_ops::Add /
BroadcastAdd6DSlow) and SUB (reference_ops::SubElementwise; C for both: at_add_s8.c), MUL
(reference_integer_ops::Mul / BroadcastMul4DSlow; C: at_mul_s8.c)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from autotune.ir.graph import Graph, Op
from autotune.ir.kernel_plan import KernelCall, frozen_map
from autotune.ops import fixedpoint as fp
from autotune.ops.base import (OpDef, OpError, Operand, activation_range, fused_activation, requantization, scale,
                               zero_point)

MAX_RANK = 4  # the C kernels walk 4-D index spaces


def broadcast_shape(graph: Graph, op: Op) -> tuple[int, ...]:
    """numpy's broadcasting, which TFLM's broadcast kernels follow, up to rank 4."""
    a, b = (graph.tensor(t).shape for t in op.inputs[:2])
    if max(len(a), len(b)) > MAX_RANK:
        raise OpError(f"has inputs of rank {max(len(a), len(b))}, above {MAX_RANK}")
    try:
        return tuple(int(n) for n in np.broadcast_shapes(a, b))
    except ValueError:
        raise OpError(f"cannot broadcast {a} with {b}") from None


def pad4(shape: tuple[int, ...]) -> tuple[int, ...]:
    return (1,) * (MAX_RANK - len(shape)) + tuple(shape)


def strides(dims: tuple[int, ...]) -> tuple[int, ...]:
    return tuple(int(np.prod(dims[k + 1:], dtype=np.int64)) for k in range(len(dims)))


def broadcast_fields(graph: Graph, op: Op) -> dict[str, tuple[int, ...]]:
    """dims and per-input strides of the 4-D walk: stride 0 along broadcast dimensions; one flat
    dimension without broadcasting."""
    a, b, out = (graph.tensor(t).shape for t in (op.inputs[0], op.inputs[1], op.outputs[0]))
    if a == b == out:
        size = int(np.prod(out, dtype=np.int64))
        return dict(dims=(1, 1, 1, size), strides1=(0, 0, 0, 1), strides2=(0, 0, 0, 1))
    s1, s2 = ([0 if n == 1 else s for n, s in zip(pad4(x), strides(pad4(x)))] for x in (a, b))
    return dict(dims=pad4(out), strides1=tuple(s1), strides2=tuple(s2))


def elementwise_work(graph: Graph, op: Op) -> dict[str, int]:
    dims = broadcast_fields(graph, op)["dims"]
    return dict(calls=1, outputs=int(np.prod(dims)), rows=int(np.prod(dims[:3])))


def smaller_than_one(real: float, what: str, tensor: int) -> tuple[int, int]:
    """TFLM QuantizeMultiplierSmallerThanOneExp: aborts unless the shift is <= 0."""
    multiplier, shift = fp.quantize_multiplier(real)
    if not real < 1.0 or shift > 0:
        raise OpError(f"{what} scale ratio {real:.6g} is not below 1", tensor)
    return multiplier, shift


class _Binary(OpDef):
    operands = (Operand("input1", constant=None), Operand("input2", constant=None))

    def parse_options(self, o, graph: Graph, inputs: tuple[int, ...]) -> dict:
        return dict(activation=fused_activation(o))

    def output_shape(self, graph: Graph, op: Op) -> tuple[int, ...]:
        return broadcast_shape(graph, op)

    @staticmethod
    def aligned(graph: Graph, op: Op, *xs: np.ndarray) -> list[np.ndarray]:
        """The inputs as batches broadcasting like their graph shapes: a lower-rank activation
        (N, *shape[1:]) gets size-1 axes after its batch axis, as right-aligned broadcasting
        puts its graph batch of 1 there; constants broadcast as they are."""
        rank = len(graph.tensor(op.outputs[0]).shape)
        out = []
        for t, x in zip(op.inputs, xs):
            shape = graph.tensor(t).shape
            if not graph.tensor(t).is_constant and len(shape) < rank:
                x = x.reshape((x.shape[0],) + (1,) * (rank - len(shape)) + shape[1:])
            out.append(x.astype(np.int64))
        return out

    def in_place(self, graph: Graph, op: Op) -> tuple[int, ...]:
        """Inputs of the output's own shape: element i of each is read before element i is written."""
        out = graph.tensor(op.outputs[0]).shape
        return tuple(t for t in op.inputs[:2] if graph.tensor(t).shape == out and not graph.tensor(t).is_constant)


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


class Add(_Binary):
    kind = "ADD"
    tflm_kernel = "reference_integer_ops::Add / BroadcastAdd6DSlow"
    options_type = "AddOptions"
    symbol = "at_add_s8"
    sign = 1

    def check(self, graph: Graph, op: Op) -> None:
        self.prepare(graph, op)  # TFLM's Prepare aborts on an output scale too small

    def prepare(self, graph: Graph, op: Op) -> AddParams:
        in1, in2, out = (graph.tensor(i) for i in (op.inputs[0], op.inputs[1], op.outputs[0]))
        twice_max = 2 * max(scale(in1), scale(in2))
        m1, s1 = smaller_than_one(scale(in1) / twice_max, "input 1", op.inputs[0])
        m2, s2 = smaller_than_one(scale(in2) / twice_max, "input 2", op.inputs[1])
        mo, so = smaller_than_one(twice_max / ((1 << fp.ADD_LEFT_SHIFT) * scale(out)), "output", op.outputs[0])
        act_min, act_max = activation_range(op.options["activation"], graph, op.outputs[0])
        return AddParams(-zero_point(in1), -zero_point(in2), zero_point(out), fp.ADD_LEFT_SHIFT, m1, s1, m2, s2,
                         mo, so, act_min, act_max)

    def run(self, graph: Graph, op: Op, p: AddParams, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        mbqm = fp.multiply_by_quantized_multiplier
        a, b = self.aligned(graph, op, a, b)
        a = mbqm((a + p.input1_offset) << p.left_shift, p.input1_multiplier, p.input1_shift)
        b = mbqm((b + p.input2_offset) << p.left_shift, p.input2_multiplier, p.input2_shift)
        out = mbqm(a + self.sign * b, p.output_multiplier, p.output_shift) + p.output_offset
        return np.clip(out, p.act_min, p.act_max).astype(np.int8)

    def lower(self, graph: Graph, index: int, op: Op, p: AddParams) -> tuple[KernelCall, ...]:
        return (KernelCall(
            op=index, kind=op.kind, name=f"op{index}", symbol=self.symbol, source="at_add_s8.c",
            inputs=op.inputs[:2], outputs=(op.outputs[0],),
            dims=frozen_map(**dict(zip(("d0", "d1", "d2", "d3"), broadcast_fields(graph, op)["dims"]))),
            overwrites=self.in_place(graph, op), work=frozen_map(**elementwise_work(graph, op)), params=p),)

    def emit(self, c, call: KernelCall) -> None:
        op, p = c.graph.ops[call.op], call.params
        c.struct("at_add_params_t", call.name, dict(
            **broadcast_fields(c.graph, op),
            input1_offset=p.input1_offset, input2_offset=p.input2_offset,
            output_offset=p.output_offset, left_shift=p.left_shift,
            input1_multiplier=p.input1_multiplier, input1_shift=p.input1_shift,
            input2_multiplier=p.input2_multiplier, input2_shift=p.input2_shift,
            output_multiplier=p.output_multiplier, output_shift=p.output_shift,
            act_min=p.act_min, act_max=p.act_max))
        c.call(call, c.ref(op.inputs[0]), c.ref(op.inputs[1]), c.ref(op.outputs[0]))


class Sub(Add):
    """SUB: ADD's arithmetic with the second input subtracted after its rescaling. Its multipliers
    are ADD's, computed in double: what the pinned TFLM wheel does (tested; the newest TFLM
    source computes them in float32, which differs by one on some outputs)."""

    kind = "SUB"
    tflm_kernel = "reference_ops::SubElementwise / BroadcastQuantSubSlow"
    options_type = "SubOptions"
    symbol = "at_sub_s8"
    sign = -1


@dataclass(frozen=True)
class MulParams:
    input1_offset: int
    input2_offset: int
    output_offset: int
    multiplier: int
    shift: int
    act_min: int
    act_max: int


class Mul(_Binary):
    kind = "MUL"
    tflm_kernel = "reference_integer_ops::Mul / BroadcastMul4DSlow"
    options_type = "MulOptions"

    def check(self, graph: Graph, op: Op) -> None:
        self.prepare(graph, op)  # refuses what TFLM's Prepare cannot represent

    def prepare(self, graph: Graph, op: Op) -> MulParams:
        in1, in2, out = (graph.tensor(i) for i in (op.inputs[0], op.inputs[1], op.outputs[0]))
        multiplier, shift = requantization(scale(in1) * scale(in2) / scale(out), op.outputs[0])
        act_min, act_max = activation_range(op.options["activation"], graph, op.outputs[0])
        return MulParams(-zero_point(in1), -zero_point(in2), zero_point(out), multiplier, shift, act_min, act_max)

    def run(self, graph: Graph, op: Op, p: MulParams, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        a, b = self.aligned(graph, op, a, b)
        product = (a + p.input1_offset) * (b + p.input2_offset)
        out = fp.multiply_by_quantized_multiplier(product, p.multiplier, p.shift) + p.output_offset
        return np.clip(out, p.act_min, p.act_max).astype(np.int8)

    def lower(self, graph: Graph, index: int, op: Op, p: MulParams) -> tuple[KernelCall, ...]:
        return (KernelCall(
            op=index, kind=op.kind, name=f"op{index}", symbol="at_mul_s8", source="at_mul_s8.c",
            inputs=op.inputs[:2], outputs=(op.outputs[0],),
            dims=frozen_map(**dict(zip(("d0", "d1", "d2", "d3"), broadcast_fields(graph, op)["dims"]))),
            overwrites=self.in_place(graph, op), work=frozen_map(**elementwise_work(graph, op)), params=p),)

    def emit(self, c, call: KernelCall) -> None:
        op, p = c.graph.ops[call.op], call.params
        c.struct("at_mul_params_t", call.name, dict(
            **broadcast_fields(c.graph, op), input1_offset=p.input1_offset, input2_offset=p.input2_offset,
            output_offset=p.output_offset, multiplier=p.multiplier, shift=p.shift,
            act_min=p.act_min, act_max=p.act_max))
        c.call(call, c.ref(op.inputs[0]), c.ref(op.inputs[1]), c.ref(op.outputs[0]))
