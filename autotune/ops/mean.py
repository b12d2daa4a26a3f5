"""MEAN, int8 (TFLM reference_ops::QuantizedMeanOrSum, integer since 2024; C: at_mean_s8.c)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from autotune.ir.graph import Graph, Op
from autotune.ir.kernel_plan import KernelCall, frozen_map
from autotune.ops import fixedpoint as fp
from autotune.ops.base import OpDef, OpError, Operand, requantization, scale, zero_point

MAX_DIMS = 4  # kept and reduced dimensions the C kernel walks


@dataclass(frozen=True)
class MeanParams:
    """The 1/count is folded into the multiplier:
    out = MBQM(sum - zp_in * count, multiplier, shift) + zp_out."""

    axis: tuple[int, ...]
    count: int  # elements summed per output
    input_zero_point: int
    output_zero_point: int
    multiplier: int
    shift: int


def _strides(dims: tuple[int, ...]) -> tuple[int, ...]:
    return tuple(int(np.prod(dims[k + 1:], dtype=np.int64)) for k in range(len(dims)))


class Mean(OpDef):
    kind = "MEAN"
    tflm_kernel = "reference_ops::QuantizedMeanOrSum"
    operands = (Operand("input"), Operand("axis", ("int32",), constant=True))
    options_type = "ReducerOptions"

    def parse_options(self, o, graph: Graph, inputs: tuple[int, ...]) -> dict:
        axis_tensor, rank = graph.tensor(inputs[1]), len(graph.tensor(inputs[0]).shape)
        axis = [int(a) for a in np.ravel(axis_tensor.data)]
        if not axis or any(not -rank <= a < rank for a in axis):  # TFLM ResolveAxis
            raise OpError(f"has axes {axis} for a rank-{rank} input", inputs[1])
        axis = tuple(sorted({a % rank for a in axis}))
        if 0 in axis:
            raise OpError("reduces over the batch axis", inputs[1])
        return dict(axis=axis, keep_dims=bool(o.keepDims) if o is not None else False)

    def output_shape(self, graph: Graph, op: Op) -> tuple[int, ...]:
        shape = graph.tensor(op.inputs[0]).shape
        axis = op.options["axis"]
        kept = [d for d in range(len(shape)) if d not in axis]
        if len(kept) > MAX_DIMS or len(axis) > MAX_DIMS:
            raise OpError(f"more than {MAX_DIMS} kept or reduced dimensions in {shape}", op.inputs[0])
        if op.options["keep_dims"]:
            return tuple(1 if d in axis else n for d, n in enumerate(shape))
        return tuple(shape[d] for d in kept)

    def check(self, graph: Graph, op: Op) -> None:
        self.prepare(graph, op)

    def prepare(self, graph: Graph, op: Op) -> MeanParams:
        inp, out = graph.tensor(op.inputs[0]), graph.tensor(op.outputs[0])
        axis = op.options["axis"]
        count = int(np.prod([inp.shape[a] for a in axis]))
        multiplier, shift = requantization(scale(inp) / scale(out), op.outputs[0])
        # Fold 1/count in, keeping shift - fold >= -31 (MBQM's precondition) and the product in int64.
        fold = min(count.bit_length() - 1, 32, 31 + shift)
        multiplier = (multiplier << fold) // count  # non-negative, so // is C's truncating division
        return MeanParams(axis, count, zero_point(inp), zero_point(out), multiplier, shift - fold)

    def run(self, graph: Graph, op: Op, p: MeanParams, x: np.ndarray) -> np.ndarray:
        sums = x.sum(axis=p.axis, dtype=np.int64) - p.input_zero_point * p.count
        out = fp.multiply_by_quantized_multiplier(sums, p.multiplier, p.shift) + p.output_zero_point
        out = np.clip(out, fp.INT8_MIN, fp.INT8_MAX).astype(np.int8)
        return out.reshape((x.shape[0],) + graph.tensor(op.outputs[0]).shape[1:])

    def lower(self, graph: Graph, index: int, op: Op, p: MeanParams) -> tuple[KernelCall, ...]:
        inp, out = graph.tensor(op.inputs[0]), graph.tensor(op.outputs[0])
        strides = _strides(inp.shape)
        innermost = sorted(p.axis, key=lambda a: -strides[a])[-1]  # the C kernel's inner loop, as emitted
        rows = out.size * p.count // inp.shape[innermost]
        # The Helium kernel (cortex-m55-mve/at_mean_s8.c): channels kept contiguous are summed eight
        # at a time in int16 lanes (at most 256 values a sum) or four in int32, else one at a time;
        # per group of outputs a requantization, per group and reduced value a load.
        contiguous = len(inp.shape) - 1 not in p.axis
        lanes = (8 if p.count <= 256 else 4) if contiguous else 1
        vectors = out.size // inp.shape[-1] * -(-inp.shape[-1] // lanes) if contiguous else out.size
        return (KernelCall(
            op=index, kind=op.kind, name=f"op{index}", symbol="at_mean_s8", source="at_mean_s8.c",
            inputs=(op.inputs[0],), outputs=(op.outputs[0],),
            dims=frozen_map(outputs=out.size, count=p.count),
            work=frozen_map(calls=1, outputs=out.size, reads=inp.size, rows=rows, mve_sum_vectors=vectors,
                            mve_sum_loads=vectors * p.count),
            params=p),)

    def emit(self, c, call: KernelCall) -> None:
        op, p = c.graph.ops[call.op], call.params
        shape = c.graph.tensor(op.inputs[0]).shape
        strides = _strides(shape)
        kept = [(shape[d], strides[d]) for d in range(len(shape)) if d not in p.axis]
        reduced = sorted(((shape[d], strides[d]) for d in p.axis), key=lambda ds: -ds[1])
        (out_dims, out_strides), (reduce_dims, reduce_strides) = (
            zip(*([(1, 0)] * (MAX_DIMS - len(dims)) + dims)) for dims in (kept, reduced))
        c.struct("at_mean_params_t", call.name, dict(
            out_dims=out_dims, out_strides=out_strides, reduce_dims=reduce_dims,
            reduce_strides=reduce_strides, sum_offset=-p.count * p.input_zero_point,
            multiplier=p.multiplier, shift=p.shift, output_offset=p.output_zero_point))
        c.call(call, c.ref(op.inputs[0]), c.ref(op.outputs[0]))
