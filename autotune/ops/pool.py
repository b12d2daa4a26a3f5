"""AVERAGE_POOL_2D and MAX_POOL_2D, int8 (TFLM reference_integer_ops::AveragePool / MaxPool;
C: at_pool_s8.c). The window is clipped to the input; the average divides by the clipped count."""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import ClassVar

import numpy as np

from autotune.ir.graph import Graph, Op
from autotune.ir.kernel_plan import KernelCall, frozen_map
from autotune.ops import fixedpoint as fp
from autotune.ops import window
from autotune.ops.base import (OpDef, OpError, activation_range, fused_activation, padding, require_rank,
                               same_quantization)


@dataclass(frozen=True)
class PoolParams:
    """Input and output share one quantization."""

    filter_h: int
    filter_w: int
    stride_h: int
    stride_w: int
    pad_h: int
    pad_w: int
    act_min: int
    act_max: int


@lru_cache(maxsize=None)
def average_reciprocal(count: int) -> int:
    """ceil(2**24 / count) if (n * it) >> 24 == n // count in uint32 for every n an average pool
    of `count` int8 values can divide (|sum| + count // 2 <= 128 * count + count // 2), else 0
    (the kernel divides). Checked exhaustively; it holds for counts up to a few hundred."""
    if count > 4096:
        return 0
    reciprocal = -(-(1 << 24) // count)
    n = np.arange(128 * count + count // 2 + 1, dtype=np.int64)
    exact = int(n[-1]) * reciprocal < 2**32 and np.array_equal((n * reciprocal) >> 24, n // count)
    return reciprocal if exact else 0


def mve_max_work(rows: np.ndarray, cols: np.ndarray, in_w: int, c: int, p: PoolParams,
                 batches: int) -> dict[str, int]:
    """Loop counts of the Helium MAX_POOL_2D (cortex-m55-mve/at_pool_s8.c), given the taps inside
    the input per output row and column: per output row one run over the columns whose windows
    need no clipping, and a run of one for each other column. A run of one filter row, up to 16
    channels and up to four taps takes max4_run (mve_max4_runs, mve_max4_pixels); any other, per
    pixel, filter row and 16-channel slice a loop over the taps (mve_row_slices, mve_tap_slices)."""
    out_w = len(cols)
    begin = -(-p.pad_w // p.stride_w)
    last = in_w + p.pad_w - p.filter_w  # the last window start, + pad_w
    end = min(out_w, 0 if last < 0 else last // p.stride_w + 1)
    clipped = [int(w) for ox, w in enumerate(cols.tolist()) if not begin <= ox < end]
    runs = ([(end - begin, p.filter_w)] if begin < end else []) + [(1, w) for w in clipped]
    slices = -(-c // 16)
    work = dict(mve_max4_runs=0, mve_max4_pixels=0, mve_row_slices=0, mve_tap_slices=0)
    for r in rows.tolist():
        for count, width in runs:
            if r == 1 and c <= 16 and width <= 4:
                work["mve_max4_runs"] += batches
                work["mve_max4_pixels"] += batches * count
            else:
                per = 1 if r == 1 and c <= 16 else slices * r
                work["mve_row_slices"] += batches * count * per
                work["mve_tap_slices"] += batches * count * per * width
    return work


class _Pool(OpDef):
    symbol: ClassVar[str]
    options_type = "Pool2DOptions"

    def parse_options(self, o, graph: Graph, inputs: tuple[int, ...]) -> dict:
        if o is None:
            raise OpError("has no options")
        return dict(filter_h=int(o.filterHeight), filter_w=int(o.filterWidth), stride_h=int(o.strideH),
                    stride_w=int(o.strideW), padding=padding(o.padding), activation=fused_activation(o))

    def output_shape(self, graph: Graph, op: Op) -> tuple[int, ...]:
        n, h, w, c = require_rank(graph, op.inputs[0], (4,), "input")
        o = op.options
        for key in ("filter_h", "filter_w", "stride_h", "stride_w"):
            if not 1 <= o[key] <= window.MAX_WINDOW:
                raise OpError(f"has {key} {o[key]}")
        oh, pad_h = window.compute_padding(o["padding"], h, o["filter_h"], o["stride_h"])
        ow, pad_w = window.compute_padding(o["padding"], w, o["filter_w"], o["stride_w"])
        if oh < 1 or ow < 1:
            raise OpError(f"filter {o['filter_h']}x{o['filter_w']} does not fit the {h}x{w} input")
        if max(pad_h, pad_w) > window.MAX_WINDOW:
            raise OpError(f"pads {max(pad_h, pad_w)}, beyond TFLM's int16 padding")
        # every window must hold an input (an average over none divides by zero in TFLM)
        if (window.taps_inside(h, oh, o["filter_h"], o["stride_h"], 1, pad_h).min() < 1
                or window.taps_inside(w, ow, o["filter_w"], o["stride_w"], 1, pad_w).min() < 1):
            raise OpError(f"filter {o['filter_h']}x{o['filter_w']} has windows outside the {h}x{w} input")
        return n, oh, ow, c

    def check(self, graph: Graph, op: Op) -> None:
        same_quantization(graph, op.inputs[0], op.outputs[0], "a pool")

    def prepare(self, graph: Graph, op: Op) -> PoolParams:
        inp, out = graph.tensor(op.inputs[0]), graph.tensor(op.outputs[0])
        o = op.options
        _, pad_h = window.compute_padding(o["padding"], inp.shape[1], o["filter_h"], o["stride_h"])
        _, pad_w = window.compute_padding(o["padding"], inp.shape[2], o["filter_w"], o["stride_w"])
        act_min, act_max = activation_range(o["activation"], graph, op.outputs[0])
        return PoolParams(o["filter_h"], o["filter_w"], o["stride_h"], o["stride_w"], pad_h, pad_w, act_min, act_max)

    def windows(self, x: np.ndarray, p: PoolParams, out_hw: tuple[int, ...], fill: int) -> list[np.ndarray]:
        return window.tap_views(x, (p.filter_h, p.filter_w), (p.stride_h, p.stride_w), (1, 1), (p.pad_h, p.pad_w),
                                out_hw, fill)

    def lower(self, graph: Graph, index: int, op: Op, p: PoolParams) -> tuple[KernelCall, ...]:
        (n, in_h, in_w, c), (_, out_h, out_w, _) = (graph.tensor(op.inputs[0]).shape,
                                                    graph.tensor(op.outputs[0]).shape)
        rows = window.taps_inside(in_h, out_h, p.filter_h, p.stride_h, 1, p.pad_h)
        cols = window.taps_inside(in_w, out_w, p.filter_w, p.stride_w, 1, p.pad_w)
        taps = n * int(rows.sum()) * int(cols.sum())  # window taps inside the input, over all positions
        work = dict(calls=1, outputs=n * out_h * out_w * c, positions=n * out_h * out_w, window_taps=taps,
                    window_rows=n * int(rows.sum()) * out_w * c, reads=taps * c)
        if self.kind == "MAX_POOL_2D":
            work.update(mve_max_work(rows, cols, in_w, c, p, n))
        if self.kind == "AVERAGE_POOL_2D":  # a clipped window, or one without a reciprocal, divides
            clipped = int((np.outer(rows, cols) < p.filter_h * p.filter_w).sum())
            work["divisions"] = n * c * (out_h * out_w if not average_reciprocal(p.filter_h * p.filter_w) else clipped)
        # Without leading padding every output reads only input elements at or after its own
        # index, and outputs are written in order: the output may overwrite a dying input.
        in_place = p.pad_h == 0 and p.pad_w == 0
        return (KernelCall(
            op=index, kind=op.kind, name=f"op{index}", symbol=self.symbol, source="at_pool_s8.c",
            inputs=(op.inputs[0],), outputs=(op.outputs[0],),
            dims=frozen_map(batches=n, in_h=in_h, in_w=in_w, channels=c, out_h=out_h, out_w=out_w,
                            filter_h=p.filter_h, filter_w=p.filter_w),
            overwrites=(op.inputs[0],) if in_place else (),
            work=frozen_map(**work),
            params=p),)

    def emit(self, c, call: KernelCall) -> None:
        op = c.graph.ops[call.op]
        c.struct("at_pool_params_t", call.name, pool_fields(call))
        c.call(call, c.ref(op.inputs[0]), c.ref(op.outputs[0]))


def pool_fields(call: KernelCall) -> dict[str, object]:
    """The at_pool_params_t of a pool call."""
    p, d = call.params, call.dims
    reciprocal = average_reciprocal(p.filter_h * p.filter_w) if call.kind == "AVERAGE_POOL_2D" else 0
    return dict(batches=d["batches"], in_h=d["in_h"], in_w=d["in_w"], channels=d["channels"], out_h=d["out_h"],
                out_w=d["out_w"], filter_h=p.filter_h, filter_w=p.filter_w, stride_h=p.stride_h,
                stride_w=p.stride_w, pad_h=p.pad_h, pad_w=p.pad_w, act_min=p.act_min, act_max=p.act_max,
                reciprocal=reciprocal)


class AveragePool2D(_Pool):
    kind = "AVERAGE_POOL_2D"
    tflm_kernel = "reference_integer_ops::AveragePool"
    symbol = "at_avg_pool_s8"

    def run(self, graph: Graph, op: Op, p: PoolParams, x: np.ndarray) -> np.ndarray:
        out_hw = graph.tensor(op.outputs[0]).shape[1:3]
        acc = sum(self.windows(x.astype(np.int64), p, out_hw, 0))
        count = sum(self.windows(np.ones((1,) + x.shape[1:3] + (1,), np.int64), p, out_hw, 0))  # unpadded inputs
        half = count // 2  # TFLM: round half away from zero, then C division (truncation)
        num = np.where(acc > 0, acc + half, acc - half)
        avg = np.sign(num) * (np.abs(num) // count)
        return np.clip(avg, p.act_min, p.act_max).astype(np.int8)


class MaxPool2D(_Pool):
    kind = "MAX_POOL_2D"
    tflm_kernel = "reference_integer_ops::MaxPool"
    symbol = "at_max_pool_s8"

    def run(self, graph: Graph, op: Op, p: PoolParams, x: np.ndarray) -> np.ndarray:
        low = fp.INT8_MIN - 1  # padding never wins: every window holds at least one input
        out = np.maximum.reduce(self.windows(x.astype(np.int16), p, graph.tensor(op.outputs[0]).shape[1:3], low))
        return np.clip(out, p.act_min, p.act_max).astype(np.int8)
