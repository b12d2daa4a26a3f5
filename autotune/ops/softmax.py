"""SOFTMAX over the last axis, int8 in and out (TFLM reference_ops::Softmax, gemmlowp fixed
point; C: at_softmax_s8.c)."""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from autotune.ir.graph import Graph, Op
from autotune.ir.kernel_plan import KernelCall, frozen_map
from autotune.ops import fixedpoint as fp
from autotune.ops.base import OpDef, OpError, frozen, scale

MAX_DEPTH = 511  # beyond it the sum of exps can reach 2**28 and TFLM's shifts exceed 31


@dataclass(frozen=True, eq=False)
class SoftmaxParams:
    """The exp of every possible input difference (max - x in 0..255) is tabulated here, so run time
    is: sum = sum(exp_sum_table[d]); (recip, bits) = GetReciprocal(sum, 12);
    out = RoundingDivideByPOT(SRDHM(recip, exp_table[d]), bits + 23) - 128, clamped to int8.
    """

    input_multiplier: int
    input_left_shift: int
    diff_min: int  # differences below this contribute nothing (table entries are 0)
    exp_table: np.ndarray  # int32[256], Q0.31 exp(-d * beta * s_in)
    exp_sum_table: np.ndarray  # int32[256], the same rescaled to Q12.19


class Softmax(OpDef):
    kind = "SOFTMAX"
    tflm_kernel = "reference_ops::Softmax (int8)"
    options_type = "SoftmaxOptions"

    def parse_options(self, o, graph: Graph, inputs: tuple[int, ...]) -> dict:
        if o is None:  # TFLM's parser then leaves beta 0, and its Prepare aborts the process
            raise OpError("has no options (TFLM takes beta 0 and aborts)")
        beta = float(o.beta)
        if not (math.isfinite(beta) and 0 < beta < 1e6):
            raise OpError(f"has beta {beta}")
        return dict(beta=beta)

    def output_shape(self, graph: Graph, op: Op) -> tuple[int, ...]:
        return graph.tensor(op.inputs[0]).shape

    def check(self, graph: Graph, op: Op) -> None:
        self.prepare(graph, op)
        q = graph.tensor(op.outputs[0]).quant
        if q.zero_point[0] != -128 or q.scale[0] != 1 / 256:
            raise OpError("output quantization must be scale 1/256, zero point -128", op.outputs[0])
        if not graph.tensor(op.inputs[0]).shape:
            raise OpError("input is a scalar", op.inputs[0])

    def prepare(self, graph: Graph, op: Op) -> SoftmaxParams:
        inp = graph.tensor(op.inputs[0])
        # PreprocessSoftmaxScaling: beta * s_in * 2**(31 - 5), capped, as a q31 multiplier >= 1
        real = min(op.options["beta"] * scale(inp) * (1 << (31 - fp.SOFTMAX_SCALED_DIFF_INTEGER_BITS)),
                   (1 << 31) - 1.0)
        mult, left_shift = fp.quantize_multiplier(real)
        if not real > 1.0 or left_shift < 0:  # TFLM's QuantizeMultiplierGreaterThanOne aborts
            raise OpError(f"beta {op.options['beta']:.6g} times the input scale is too small", op.inputs[0])
        # CalculateInputRadius(5, left_shift): largest difference whose rescaled value fits Q5.26
        radius = math.floor(((1 << fp.SOFTMAX_SCALED_DIFF_INTEGER_BITS) - 1)
                            * (1 << (31 - fp.SOFTMAX_SCALED_DIFF_INTEGER_BITS)) / (1 << left_shift))
        diff_min = -radius
        diff = -np.arange(256, dtype=np.int64)
        used = diff >= diff_min
        # MultiplyByQuantizedMultiplierGreaterThanOne(diff, mult, left_shift), only where it fits
        rescaled = fp.saturating_rounding_doubling_high_mul(np.where(used, diff << left_shift, 0), mult)
        exp_table = np.where(used, fp.exp_on_negative_values(rescaled, fp.SOFTMAX_SCALED_DIFF_INTEGER_BITS), 0)
        exp_sum_table = fp.rounding_divide_by_pot(exp_table, fp.SOFTMAX_ACCUM_INTEGER_BITS)  # Rescale<12>
        return SoftmaxParams(mult, left_shift, diff_min, frozen(exp_table.astype(np.int32)),
                             frozen(exp_sum_table.astype(np.int32)))

    def run(self, graph: Graph, op: Op, p: SoftmaxParams, x: np.ndarray) -> np.ndarray:
        x = x.astype(np.int64)
        diff = x.max(axis=-1, keepdims=True) - x  # 0..255
        exp_sum = p.exp_sum_table.astype(np.int64)[diff].sum(axis=-1, keepdims=True)
        recip, bits_over_unit = fp.get_reciprocal(exp_sum, fp.SOFTMAX_ACCUM_INTEGER_BITS)
        prob = fp.saturating_rounding_doubling_high_mul(recip, p.exp_table.astype(np.int64)[diff])
        out = fp.rounding_divide_by_pot(prob, bits_over_unit + 31 - 8) + fp.INT8_MIN
        return np.clip(out, fp.INT8_MIN, fp.INT8_MAX).astype(np.int8)

    def lower(self, graph: Graph, index: int, op: Op, p: SoftmaxParams) -> tuple[KernelCall, ...]:
        inp = graph.tensor(op.inputs[0])
        depth = inp.shape[-1]
        if depth > MAX_DEPTH:
            raise OpError(f"depth {depth} above {MAX_DEPTH}", op.inputs[0])
        return (KernelCall(
            op=index, kind=op.kind, name=f"op{index}", symbol="at_softmax_s8", source="at_softmax_s8.c",
            inputs=(op.inputs[0],), outputs=(op.outputs[0],),
            dims=frozen_map(rows=inp.size // depth, depth=depth),
            work=frozen_map(calls=1, outputs=inp.size, rows=inp.size // depth),
            const_bytes=4 * 256, params=p),)

    def emit(self, c, call: KernelCall) -> None:
        op, p = c.graph.ops[call.op], call.params
        table = c.array("int32_t", f"{call.name}_exp", p.exp_table, 8)
        c.struct("at_softmax_params_t", call.name, dict(rows=call.dims["rows"], depth=call.dims["depth"],
                                                         exp_table=table))
        c.call(call, c.ref(op.inputs[0]), c.ref(op.outputs[0]))
