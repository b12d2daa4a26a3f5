"""Cycles of the generated kernels: the fit of the analytic model's Cortex-M0+ and Cortex-M55
tables, and the model against rp2040-sim and apollo5-sim.

1. Single kernel calls: graphs of one op, built directly in the IR over a grid of shapes (random
   int8 weights and inputs: timing hardly depends on their values), generated, built for the
   rp2040 and run on rp2040-sim. Cycles are attributed to the kernel plan's calls by symbol.
2. Per kernel symbol, zero-wait cycles = sum over its work terms (KernelCall.work and MACs) of
   cycles per unit x units, fitted by non-negative least squares on the relative error; the
   entry function's own cycles as a + b x kernel calls.
3. The XIP term (cost_models.analytic.FlashCache): MLPs of 15-170 KB of code and weights run
   twice (cold, then warm); the fraction of the lines they touch that miss per warm inference
   against how far they exceed the cache.
4. Whole models (the search-space families and the LARUN-like CNN of DESIGN.md, converted with
   TensorFlow), warm with the XIP cache: simulated cycles against the analytic model of
   cost_models/analytic.py, and cycles per multiply-accumulate.
The same single-op firmware built for the nano33ble runs on nano33ble-sim: per kernel, the
instructions the Cortex-M4 executes per Cortex-M0+ instruction (the M4 table's scale).
5. The Cortex-M55 table, the same way on apollo5-sim (the apollo5 build, Helium kernels, linked
   for QEMU): the same single-op graphs and `sweep_helium`'s, fitted on the Helium kernels' loop
   counts (work terms mve_*) in place of their per-element terms; then every test-zoo model and
   the benchmark's own models against the prediction ("apollo5" in the results).
Writes benchmarks/results/kernels.json and the fitted constants to cost_models/fitted_cycles.json,
which cost_models/analytic.py reads (the one place the constants live). In kernels.json
"predicted_over_measured" is the table the run started from, "this_fit_over_measured" the new fit.
"""
from __future__ import annotations

import json
import sys
import tempfile
from collections import defaultdict
from dataclasses import replace
from pathlib import Path

import numpy as np
from scipy.optimize import nnls

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))  # the test zoo's model builders

from autotune.codegen import generate_c  # noqa: E402
from autotune.ir.graph import Graph, Op, Quant, Tensor  # noqa: E402
from autotune.ir.kernel_plan import attribute_cycles  # noqa: E402
from autotune.ops.conv import FUSED_MAX_POOL  # noqa: E402
from autotune.ops import window  # noqa: E402
from cost_models.analytic import (CORTEX_M0PLUS, FITTED_PATH, TABLES, ZOO_SOLVED, AnalyticCostModel,  # noqa: E402
                                  CoreTable)
from cost_models.features import extract_features  # noqa: E402
from device_runners.build import build  # noqa: E402
from device_runners.rp2040_sim import Rp2040Sim  # noqa: E402
from device_runners.runners import open_runner, runner_image  # noqa: E402

SPECTRAL = {"blocks": 3, "filters_0": 8, "filters_1": 16, "filters_2": 16, "kernel": 5, "pool": 2,
            "separable": False, "dense": 16, "stem_stride": 4}
# MLPs whose weights stream through the XIP cache: (units of the first layer, input length)
XIP_LADDER = ((96, 128), (112, 128), (128, 128), (160, 128), (256, 256), (256, 512))
MODELS = {  # name: (family, parameters, input shape); family None: the model of tests/model_zoo.py
    "larun": (None, None, None),  # strided
    "larun_design": (None, None, None),  # DESIGN.md's layout
    "spectral_plain": ("spectral_cnn", SPECTRAL, (1, 1024, 1)),
    "spectral_separable": ("spectral_cnn", {**SPECTRAL, "separable": True, "kernel": 7}, (1, 1024, 1)),
    "spectral_wide": ("spectral_cnn", {**SPECTRAL, "blocks": 2, "filters_0": 32, "filters_1": 32, "kernel": 3,
                                       "pool": 4, "dense": 32, "stem_stride": 2}, (1, 512, 1)),
    "spectral_deep": ("spectral_cnn", {**SPECTRAL, "blocks": 4, "filters_3": 32, "kernel": 11, "separable": True,
                                       "stem_stride": 2}, (1, 1024, 2)),
    "spectral_tiny": ("spectral_cnn", {**SPECTRAL, "blocks": 2, "filters_1": 8, "kernel": 3, "pool": 4,
                                       "dense": 8, "stem_stride": 8}, (1, 1024, 1)),
    "ds_cnn_small": ("ds_cnn", {"first_filters": 8, "first_kernel": 3, "first_stride": 2, "blocks": 2,
                                "block_filters": 16, "block_stride": 2}, (24, 24, 1)),
    "ds_cnn_wide": ("ds_cnn", {"first_filters": 32, "first_kernel": 5, "first_stride": 2, "blocks": 3,
                               "block_filters": 32, "block_stride": 1}, (16, 16, 3)),
    "mlp": ("mlp", {"layers": 2, "units_0": 64, "units_1": 32}, (1, 128, 1)),
}


# ------------------------------------------------------------------ single-op graphs


def _q(scale: float, zero_point: int = 0) -> Quant:
    return Quant((float(scale),), (int(zero_point),))


def _input(shape: tuple[int, ...]) -> Tensor:
    return Tensor("x", shape, "int8", _q(0.05, -3))


def _graph(name: str, kind: str, tensors: list[Tensor], inputs: tuple[int, ...], options: dict) -> Graph:
    """One op reading `inputs` of `tensors` and writing the last tensor."""
    out = len(tensors) - 1
    return Graph(name, tensors, [Op(kind, inputs, (out,), options)], [0], [out])


def conv(rng, h: int, w: int, cin: int, cout: int, kh: int, kw: int, stride: int = 1, dilation: int = 1,
         padding: str = "SAME", depthwise: bool = False, dm: int = 1, act: str = "NONE") -> Graph:
    if depthwise:
        cout, shape, axis = cin * dm, (1, kh, kw, cin * dm), 3
    else:
        shape, axis = (cout, kh, kw, cin), 0
    scales = rng.uniform(0.005, 0.02, cout)
    filt = Tensor("w", shape, "int8", Quant(tuple(scales), (0,) * cout, axis),
                  rng.integers(-127, 128, shape).astype(np.int8))
    bias = Tensor("b", (cout,), "int32", Quant(tuple(scales * 0.05), (0,) * cout),
                  rng.integers(-2000, 2000, cout).astype(np.int32))
    oh = window.out_size(padding, h, kh, stride if h > 1 else 1, dilation if kh > 1 else 1)
    ow = window.out_size(padding, w, kw, stride, dilation)
    taps = kh * kw * (1 if depthwise else cin)
    out = Tensor("y", (1, oh, ow, cout), "int8", _q(0.05 * scales.mean() * np.sqrt(taps) * 75 * 73 / 40, 2))
    options = dict(stride_h=stride if h > 1 else 1, stride_w=stride, dilation_h=dilation if kh > 1 else 1,
                   dilation_w=dilation, padding=padding, activation=act, depth_multiplier=dm)
    kind = "DEPTHWISE_CONV_2D" if depthwise else "CONV_2D"
    return _graph(f"{kind}_{h}x{w}x{cin}_{cout}_{kh}x{kw}_s{stride}_d{dilation}_{padding}_m{dm}", kind,
                  [_input((1, h, w, cin)), filt, bias, out], (0, 1, 2), options)


def fully_connected(rng, rows: int, depth: int, units: int, act: str = "NONE") -> Graph:
    scales = rng.uniform(0.005, 0.02, units)
    filt = Tensor("w", (units, depth), "int8", Quant(tuple(scales), (0,) * units, 0),
                  rng.integers(-127, 128, (units, depth)).astype(np.int8))
    out = Tensor("y", (1, rows, units), "int8", _q(0.05 * scales.mean() * np.sqrt(depth) * 75 * 73 / 40))
    return _graph(f"FC_{rows}x{depth}_{units}_{act}", "FULLY_CONNECTED", [_input((1, rows, depth)), filt, out],
                  (0, 1), dict(activation=act, keep_num_dims=True))


def pool(rng, kind: str, h: int, w: int, c: int, fh: int, fw: int, stride: int, padding: str) -> Graph:
    sh = stride if h > 1 else 1
    oh, ow = window.out_size(padding, h, fh, sh), window.out_size(padding, w, fw, stride)
    return _graph(f"{kind}_{h}x{w}x{c}_{fh}x{fw}_s{stride}_{padding}", kind,
                  [_input((1, h, w, c)), Tensor("y", (1, oh, ow, c), "int8", _q(0.05, -3))], (0,),
                  dict(filter_h=fh, filter_w=fw, stride_h=sh, stride_w=stride, padding=padding, activation="NONE"))


def conv_max_pool(rng, h: int, w: int, cin: int, cout: int, k: int, pool_h: int, pool_w: int, stride: int = 1,
                  padding: str = "SAME", act: str = "RELU") -> Graph:
    """A CONV_2D (k x k, 1 x k on one row) and the VALID MAX_POOL_2D of pool_h x pool_w, strided by
    its size, over its output: one fused call (autotune.ops.conv.fuse_max_pool)."""
    graph = conv(rng, h, w, cin, cout, 1 if h == 1 else k, k, stride, padding=padding, act=act)
    y = graph.tensors[-1]
    _, oh, ow, _ = y.shape
    out = Tensor("z", (1, (oh - pool_h) // pool_h + 1, (ow - pool_w) // pool_w + 1, cout), "int8", y.quant)
    pooling = Op("MAX_POOL_2D", (len(graph.tensors) - 1,), (len(graph.tensors),),
                 dict(filter_h=pool_h, filter_w=pool_w, stride_h=pool_h, stride_w=pool_w, padding="VALID",
                      activation="NONE"))
    return Graph(f"{graph.name}_MAX_POOL_{pool_h}x{pool_w}", [*graph.tensors, out], [*graph.ops, pooling], [0],
                 [len(graph.tensors)])


def mean(rng, h: int, w: int, c: int, axis: tuple[int, ...]) -> Graph:
    shape = (1, h, w, c)
    out = tuple(n for d, n in enumerate(shape) if d not in axis)
    axis_t = Tensor("axis", (len(axis),), "int32", None, np.array(axis, np.int32))
    return _graph(f"MEAN_{h}x{w}x{c}_{axis}", "MEAN", [_input(shape), axis_t, Tensor("y", out, "int8", _q(0.03, 1))],
                  (0, 1), dict(axis=axis, keep_dims=False))


def elementwise(rng, kind: str, shape: tuple[int, ...], other: tuple[int, ...] | None = None) -> Graph:
    """ADD (and other binary ops) of the input with a constant of shape `other` (broadcast), or
    with itself."""
    tensors = [_input(shape)]
    inputs: tuple[int, ...] = (0, 0)
    if other is not None:
        tensors.append(Tensor("c", other, "int8", _q(0.04, 5), rng.integers(-128, 128, other).astype(np.int8)))
        inputs = (0, 1)
    tensors.append(Tensor("y", shape, "int8", _q(0.08, -2)))
    return _graph(f"{kind}_{shape}_{other}", kind, tensors, inputs, dict(activation="NONE"))


def unary(rng, kind: str, shape: tuple[int, ...], out_quant: Quant | None = None, **options) -> Graph:
    """One op of one input and an output of the same shape."""
    return _graph(f"{kind}_{shape}", kind, [_input(shape), Tensor("y", shape, "int8", out_quant or _q(0.07, 4))],
                  (0,), options)


def strided_slice(rng, shape: tuple[int, ...], begin: list[int], end: list[int], strides: list[int]) -> Graph:
    out = tuple(len(range(b, e, s)) for b, e, s in zip(begin, end, strides))
    vectors = [Tensor(k, (len(shape),), "int32", None, np.array(v, np.int32))
               for k, v in (("begin", begin), ("end", end), ("strides", strides))]
    return _graph(f"STRIDED_SLICE_{shape}_{begin}_{end}_{strides}", "STRIDED_SLICE",
                  [_input(shape), *vectors, Tensor("y", out, "int8", _q(0.05, -3))], (0, 1, 2, 3),
                  dict(begin_mask=0, end_mask=0, shrink_axis_mask=0))


def transpose(rng, shape: tuple[int, ...], perm: tuple[int, ...]) -> Graph:
    return _graph(f"TRANSPOSE_{shape}_{perm}", "TRANSPOSE",
                  [_input(shape), Tensor("perm", (len(perm),), "int32", None, np.array(perm, np.int32)),
                   Tensor("y", tuple(shape[a] for a in perm), "int8", _q(0.05, -3))], (0, 1), {})


def pad(rng, h: int, w: int, c: int, before: int, after: int) -> Graph:
    paddings = np.array([[0, 0], [0, 0], [before, after], [0, 0]], np.int32)
    out = (1, h, w + before + after, c)
    return _graph(f"PAD_{h}x{w}x{c}_{before}_{after}", "PAD",
                  [_input((1, h, w, c)), Tensor("p", (4, 2), "int32", None, paddings),
                   Tensor("y", out, "int8", _q(0.05, -3))], (0, 1), {})


def concat(rng, h: int, w: int, c: int, copies: int) -> Graph:
    return _graph(f"CONCAT_{h}x{w}x{c}_{copies}", "CONCATENATION",
                  [_input((1, h, w, c)), Tensor("y", (1, h, w, c * copies), "int8", _q(0.05, -3))],
                  (0,) * copies, dict(axis=3, activation="NONE"))


def sweep(rng) -> list[Graph]:
    """Single-op graphs over a grid of shapes for every kernel of the library."""
    graphs = []
    for h, w, cin, cout, k, s, d, pad_ in [(1, 256, 1, 8, 7, 1, 1, "SAME"), (1, 128, 8, 16, 5, 2, 1, "SAME"),
                                           (1, 64, 16, 16, 3, 1, 1, "VALID"), (1, 200, 4, 8, 11, 4, 1, "SAME"),
                                           (1, 96, 3, 6, 3, 1, 2, "SAME"), (1, 96, 6, 6, 3, 1, 3, "VALID"),
                                           (1, 64, 8, 32, 1, 1, 1, "VALID"), (1, 128, 16, 8, 1, 1, 1, "VALID"),
                                           (1, 32, 32, 32, 1, 1, 1, "VALID"), (1, 300, 2, 4, 5, 3, 1, "VALID"),
                                           (1, 50, 12, 24, 4, 3, 1, "SAME"), (1, 512, 1, 16, 9, 8, 1, "SAME"),
                                           (12, 12, 3, 8, 3, 1, 1, "SAME"), (16, 16, 1, 8, 3, 2, 1, "SAME"),
                                           (10, 10, 8, 16, 3, 1, 1, "VALID"), (8, 8, 16, 16, 1, 1, 1, "VALID"),
                                           (9, 9, 4, 8, 5, 2, 1, "SAME"), (6, 20, 8, 4, 2, 2, 1, "VALID"),
                                           (12, 12, 6, 6, 3, 1, 2, "SAME"), (24, 24, 1, 4, 5, 2, 1, "SAME"),
                                           (1, 64, 4, 5, 3, 1, 1, "SAME"), (8, 8, 3, 7, 3, 1, 1, "SAME"),
                                           (1, 16, 2, 4, 3, 1, 1, "SAME"), (4, 4, 2, 8, 3, 1, 1, "SAME")]:
        kh = 1 if h == 1 else k
        graphs.append(conv(rng, h, w, cin, cout, kh, k, s, d, pad_, act="RELU" if cin % 2 else "NONE"))
    for h, w, c, k, s, d, pad_, dm in [(1, 256, 8, 5, 1, 1, "SAME", 1), (1, 128, 16, 3, 2, 1, "SAME", 1),
                                       (1, 100, 8, 7, 1, 1, "VALID", 1), (1, 64, 32, 3, 1, 1, "SAME", 1),
                                       (1, 96, 6, 3, 1, 2, "SAME", 1), (1, 80, 4, 3, 2, 1, "VALID", 2),
                                       (1, 64, 8, 5, 1, 1, "SAME", 2), (1, 40, 3, 3, 1, 1, "SAME", 4),
                                       (1, 128, 2, 9, 4, 1, "SAME", 3), (1, 200, 16, 11, 2, 1, "SAME", 1),
                                       (10, 10, 8, 3, 1, 1, "SAME", 1), (12, 12, 16, 3, 2, 1, "SAME", 1),
                                       (8, 8, 4, 3, 1, 1, "VALID", 2), (14, 14, 8, 5, 1, 1, "SAME", 1),
                                       (9, 9, 6, 3, 1, 2, "SAME", 1), (6, 6, 3, 3, 1, 1, "SAME", 3)]:
        kh = 1 if h == 1 else k
        graphs.append(conv(rng, h, w, c, c * dm, kh, k, s, d, pad_, depthwise=True, dm=dm,
                           act="RELU6" if c % 2 else "NONE"))
    for rows, depth, units in [(1, 16, 6), (1, 32, 16), (1, 128, 64), (1, 512, 32), (1, 64, 10), (4, 24, 8),
                               (16, 8, 4), (1, 7, 3), (2, 200, 20), (1, 1024, 6), (1, 48, 32), (3, 33, 17),
                               (1, 24, 12), (1, 12, 8), (1, 28, 4)]:
        graphs.append(fully_connected(rng, rows, depth, units))
        graphs.append(fully_connected(rng, rows, depth, units, "RELU"))
    for kind in ("AVERAGE_POOL_2D", "MAX_POOL_2D"):
        for h, w, c, fh, fw, s, pad_ in [(1, 256, 8, 1, 4, 4, "VALID"), (1, 128, 16, 1, 2, 2, "VALID"),
                                         (1, 100, 4, 1, 3, 1, "SAME"), (1, 64, 32, 1, 4, 2, "SAME"),
                                         (1, 300, 2, 1, 5, 3, "VALID"), (8, 8, 16, 2, 2, 2, "VALID"),
                                         (12, 12, 8, 3, 3, 2, "SAME"), (6, 6, 32, 3, 3, 1, "SAME"),
                                         (16, 16, 4, 2, 2, 2, "VALID"), (1, 50, 12, 1, 7, 7, "VALID")]:
            graphs.append(pool(rng, kind, h, w, c, fh, fw, s, pad_))
    for h, w, c, axis in [(1, 62, 32, (1, 2)), (1, 128, 16, (1, 2)), (4, 4, 64, (1, 2)), (1, 16, 8, (1, 2)),
                          (1, 200, 4, (1, 2)), (6, 6, 12, (1, 2)), (1, 32, 48, (2,)), (3, 40, 8, (2,))]:
        graphs.append(mean(rng, h, w, c, axis))
    for rows, depth in [(1, 6), (1, 10), (1, 64), (4, 12), (1, 200), (8, 4)]:
        graphs.append(unary(rng, "SOFTMAX", (1, rows, depth), _q(1 / 256, -128), beta=1.0))
    for shape, other in [((1, 1, 64, 8), None), ((1, 1, 256, 16), None), ((1, 8, 8, 8), (1, 1, 1, 8)),
                         ((1, 1, 100, 4), (1, 1, 100, 4)), ((1, 4, 4, 16), (1, 4, 1, 16)), ((1, 1, 30, 3), None)]:
        graphs.append(elementwise(rng, "ADD", shape, other))
    for h, w, c, before, after in [(1, 30, 3, 2, 3), (1, 100, 8, 1, 1), (4, 16, 4, 2, 0), (1, 64, 16, 5, 5),
                                   (8, 8, 8, 1, 1)]:
        graphs.append(pad(rng, h, w, c, before, after))
    for h, w, c, copies in [(1, 24, 4, 2), (1, 64, 8, 3), (4, 4, 16, 2), (1, 100, 1, 4), (6, 6, 6, 2)]:
        graphs.append(concat(rng, h, w, c, copies))
    for size in (16, 64, 256, 1000):
        graphs.append(unary(rng, "QUANTIZE", (1, size), _q(0.11, -7)))
    for size in (8, 100, 1000):  # the input straight to the output: a copy
        graphs.append(unary(rng, "RESHAPE", (1, size), _q(0.05, -3)))
    for size in (16, 100, 512, 2000):  # every element-wise activation is one table lookup
        graphs.append(unary(rng, "TANH", (1, size), _q(1 / 128)))
    for kind in ("SUB", "MUL"):
        for shape, other in [((1, 1, 64, 8), None), ((1, 8, 8, 8), (1, 1, 1, 8)), ((1, 1, 100, 4), (1, 1, 100, 4)),
                             ((1, 4, 4, 16), (1, 4, 1, 16)), ((1, 1, 30, 3), None)]:
            graphs.append(elementwise(rng, kind, shape, other))
    for shape, begin, end, strides in [((1, 1, 64, 4), [0, 0, 3, 0], [1, 1, 59, 4], [1, 1, 1, 1]),
                                       ((1, 1, 100, 8), [0, 0, 0, 0], [1, 1, 100, 8], [1, 1, 2, 1]),
                                       ((1, 6, 6, 16), [0, 1, 1, 0], [1, 5, 5, 16], [1, 1, 1, 2]),
                                       ((1, 1, 300, 2), [0, 0, 10, 0], [1, 1, 290, 2], [1, 1, 3, 1])]:
        graphs.append(strided_slice(rng, shape, begin, end, strides))
    for shape, perm in [((1, 1, 64, 8), (0, 1, 3, 2)), ((1, 6, 6, 16), (0, 3, 1, 2)), ((1, 1, 200, 3), (0, 3, 2, 1)),
                        ((1, 10, 20), (0, 2, 1))]:
        graphs.append(transpose(rng, shape, perm))
    return graphs


def sweep_helium(rng) -> list[Graph]:
    """More single-op graphs for the Helium kernels (apollo5-sim): the convolutions of `sweep`
    again with the other activation (ReLU where they had none, none where they had one), as the
    kernels requantize without the rounding fix-up under a ReLU (mve_fixups), which the sweep
    alone ties to the shapes that have one; rows of up to 192 bytes read in place (conv_block's
    16-byte chunks), small calls (the per-call set-up), max pools through max4_run and dense
    layers in the grouped-tails layout."""
    graphs = []
    for graph in sweep(rng):
        op = graph.ops[0]
        if op.kind in ("CONV_2D", "DEPTHWISE_CONV_2D"):
            act = "NONE" if op.options["activation"] != "NONE" else "RELU"
            graphs.append(replace(graph, name=f"{graph.name}_{act}",
                                  ops=[replace(op, options={**op.options, "activation": act})]))
    for h, w, cin, cout, k, s, act in [(1, 64, 32, 32, 3, 1, "RELU"), (1, 32, 64, 16, 3, 1, "NONE"),
                                       (1, 40, 24, 8, 5, 2, "RELU"), (1, 19, 8, 5, 1, 1, "RELU"),
                                       (1, 16, 4, 4, 3, 1, "NONE"), (4, 4, 8, 8, 1, 1, "RELU"),
                                       (1, 8, 16, 8, 3, 1, "RELU"), (3, 3, 4, 4, 3, 1, "NONE")]:
        graphs.append(conv(rng, h, w, cin, cout, 1 if h == 1 else k, k, s, act=act))
    for h, w, c, k, s, act in [(1, 16, 8, 3, 1, "RELU"), (4, 4, 8, 3, 1, "NONE"), (1, 12, 24, 5, 1, "RELU"),
                               (3, 3, 16, 3, 1, "RELU")]:
        graphs.append(conv(rng, h, w, c, c, 1 if h == 1 else k, k, s, depthwise=True, act=act))
    # conv + max pool, fused: pool windows of four and two conv pixels as conv_run blocks (in place,
    # copied, at a border, 2-D windows and pools, windows of one chunk or two, pairs of two-pixel
    # windows in a four-pixel block, an odd one left), and the others
    # through at_mve_rows (short windows and long)
    fused = [(1, 256, 1, 8, 7, 1, 4, 1, "SAME"), (1, 128, 8, 32, 1, 1, 4, 1, "VALID"), (1, 96, 4, 12, 3, 1, 4, 1, "SAME"),
             (1, 64, 6, 24, 3, 1, 2, 1, "SAME"), (1, 80, 8, 24, 3, 1, 2, 1, "VALID"), (1, 40, 2, 4, 3, 1, 4, 1, "VALID"),
             (8, 8, 8, 12, 1, 2, 2, 1, "VALID"), (12, 12, 3, 8, 3, 2, 2, 1, "SAME"), (10, 10, 1, 8, 3, 1, 4, 1, "SAME"),
             (4, 16, 2, 16, 3, 2, 2, 1, "SAME"), (1, 48, 4, 8, 3, 1, 3, 1, "SAME"), (6, 6, 4, 16, 3, 2, 2, 1, "SAME"),
             (1, 64, 4, 16, 3, 1, 2, 1, "SAME"), (1, 96, 8, 16, 3, 1, 4, 1, "SAME"),
             (1, 64, 6, 12, 5, 1, 4, 1, "VALID"), (1, 120, 2, 8, 5, 1, 3, 1, "SAME"),
             (1, 64, 16, 32, 3, 1, 4, 1, "SAME"), (1, 48, 32, 64, 3, 1, 4, 1, "SAME"),
             (1, 128, 16, 32, 1, 1, 2, 1, "VALID"), (1, 38, 8, 16, 1, 1, 2, 1, "VALID")]
    for h, w, cin, cout, k, ph, pw, s, pad_ in fused:
        for act in ("RELU", "NONE"):
            graphs.append(conv_max_pool(rng, h, w, cin, cout, k, ph, pw, s, pad_, act))
    # max pools through max4_run: short rows (a call's set-up), SAME's clipped columns (runs of one)
    for h, w, c, fw, s, pad_ in [(1, 17, 4, 3, 3, "VALID"), (1, 5, 4, 2, 1, "SAME"), (1, 40, 8, 3, 1, "SAME"),
                                 (1, 24, 16, 4, 4, "SAME"), (2, 30, 12, 2, 2, "VALID")]:
        graphs.append(pool(rng, "MAX_POOL_2D", h, w, c, 1, fw, s, pad_))
    # dense layers in the grouped-tails layout (tails_layer), both modes
    for depth, units, act in [(20, 16, "RELU"), (20, 16, "NONE"), (24, 32, "RELU"), (20, 4, "NONE"), (24, 8, "RELU")]:
        graphs.append(fully_connected(rng, 1, depth, units, act))
    return graphs


# ------------------------------------------------------------------ measuring


def simulate(graph: Graph, scratch: Path, rng, m4: dict[str, list[tuple[int, int]]] | None = None) -> tuple:
    """(the generated C, the warm simulation, its cycles per kernel-plan call) of `graph` on one
    random input, run twice to warm the XIP cache; with `m4`, the same C built for the nano33ble
    runs the same input on nano33ble-sim and each call's (M0+, M4) instructions are added to
    m4[symbol]."""
    generated = generate_c(graph, scratch / "src")
    firmware = build(scratch / "src", "rp2040", out_dir=scratch, cache_dir=scratch / "cache")
    x = rng.integers(-128, 128, graph.tensor(graph.inputs[0]).shape[1:]).astype(np.int8)
    sim = Rp2040Sim(firmware.elf_path)
    sim.run(x)
    result = sim.run(x)
    profile = attribute_cycles(generated.kernel_plan, result.ops)
    if m4 is not None:
        m4_firmware = build(scratch / "src", "nano33ble", out_dir=scratch, cache_dir=scratch / "cache")
        m4_result = open_runner("nano33ble-sim", m4_firmware.elf_path).run(x)
        m4_profile = attribute_cycles(generated.kernel_plan, m4_result.ops)
        for on_m0, on_m4 in zip(profile, m4_profile):
            assert on_m0.call == on_m4.call, (graph.name, on_m0, on_m4)
            m4[on_m0.symbol].append((on_m0.instructions, on_m4.instructions))
    return generated, result, profile


def simulate_apollo5(graph: Graph, scratch: Path, rng, m4=None) -> tuple:
    """As `simulate`, on apollo5-sim: the apollo5 objects (Helium kernels) linked for QEMU, one
    run (zero-wait TCM, no cache to warm). apollo5-sim counts the entry's own code between calls
    to the call that follows, so the calls add up to the total."""
    generated = generate_c(graph, scratch / "src")
    image = runner_image("apollo5-sim", scratch / "src", "apollo5", out_dir=scratch, cache_dir=scratch / "cache")
    x = rng.integers(-128, 128, graph.tensor(graph.inputs[0]).shape[1:]).astype(np.int8)
    result = open_runner("apollo5-sim", image.elf_path).run(x)
    return generated, result, attribute_cycles(generated.kernel_plan, result.ops)


SIMULATE = {"rp2040": simulate, "apollo5": simulate_apollo5}  # target -> how its calls are measured


def _fitted_cycles(record) -> int:
    """What the table fits: zero-wait cycles where the runner models wait states (rp2040-sim's
    XIP cache, a term of its own), else the cycles."""
    return record.cycles if record.zero_wait_cycles is None else record.zero_wait_cycles


# Terms of the scalar kernels that a Helium kernel's loop counts (mve_*) replace: per element, and
# for depthwise, which gathers no window at depth multiplier 1, the scalar kernel's gathering.
VECTORISED = {"macs", "outputs", "relu_outputs", "positions", "reads", "window_rows", "window_taps"}
VECTORISED_BY = {"at_depthwise_conv_s8": VECTORISED | {"gathers", "gather_taps", "fill_bytes", "copy_bytes",
                                                       "repeat_bytes", "repeat_channels"}}
# Kernels whose Helium loop counts replace every scalar term: the fused conv + max pool's scalar
# terms are its parts' (scaled), which its Helium variant does not follow.
HELIUM_ONLY = {"at_conv_max_pool_s8"}


def fit(samples: dict[str, list[tuple[dict[str, int], int]]], vector_terms: bool = False) -> dict[str, dict]:
    """Per kernel symbol: cycles per unit of each of its work terms, minimising relative error.
    The Helium kernels' loop counts (terms mve_*) only with `vector_terms`, and then in place of
    the scalar per-element terms (VECTORISED) for a kernel that has them, without the Cortex-M0+
    kernels' terms (m0_*)."""
    fitted = {}
    for symbol, rows in sorted(samples.items()):
        terms = {t for counts, _ in rows for t, n in counts.items() if n}
        vector = {t for t in terms if t.startswith("mve_")}
        if vector_terms:  # the Helium table; terms m0_* are the Cortex-M0+ kernels'
            terms -= {t for t in terms if t.startswith("m0_")}
            terms -= VECTORISED_BY.get(symbol, VECTORISED) if vector else set()
            if symbol in HELIUM_ONLY:
                terms = {t for t in terms if t in vector or t == "calls"}
        terms = sorted(terms if vector_terms else terms - vector)
        a = np.array([[counts.get(t, 0) for t in terms] for counts, _ in rows], float)
        y = np.array([c for _, c in rows], float)
        coef, _ = nnls(a / y[:, None], np.ones_like(y))
        error = np.abs(a @ coef / y - 1)
        fitted[symbol] = {"cycles": {t: round(float(c), 2) for t, c in zip(terms, coef) if c > 0},
                          "max_relative_error": round(float(error.max()), 3), "calls": len(rows)}
    return fitted


def _tf_model(name: str, scratch: Path, family: str | None = None, params: dict | None = None,
              shape: tuple[int, ...] | None = None):
    """A model of MODELS (or of `family` with `params` on inputs `shape`), converted to int8."""
    import model_zoo
    from autotune.ir.tflite_import import import_tflite

    if family is None:
        family, params, shape = MODELS[name]
    if family is None:
        return import_tflite(model_zoo.tflite_bytes(name, scratch), name)
    from search_spaces import get_family

    import tf_keras
    tf_keras.utils.set_random_seed(0)
    model = get_family(family)({}).build(params, shape, 6)
    return import_tflite(model_zoo.convert(model), name)


def _zoo_or_family(name: str, zoo_dir: Path):
    """The integer graph of a test-zoo model (tests/model_zoo.py, converted once into `zoo_dir`),
    else of a model of MODELS."""
    import model_zoo
    from autotune.ir.tflite_import import import_tflite
    from autotune.lowering import integer_core

    if name in model_zoo.SUPPORTED:
        return integer_core(import_tflite(model_zoo.tflite_bytes(name, zoo_dir), name))
    return _tf_model(name, zoo_dir)


def fit_xip() -> dict:
    """The FlashCache slope: warm misses as a fraction of the lines the model touches, against
    the excess of its footprint over the cache (least squares through the origin, on the models
    not yet missing every line)."""
    model = AnalyticCostModel("rp2040")
    cache = model.table.flash_cache
    points = []
    for units, length in XIP_LADDER:
        with tempfile.TemporaryDirectory() as scratch:
            params = {"layers": 2, "units_0": units, "units_1": units // 2}
            graph = _tf_model("mlp", Path(scratch), "mlp", params, (1, length, 1))
            generated = generate_c(graph, Path(scratch) / "src")
            firmware = build(Path(scratch) / "src", "rp2040", out_dir=Path(scratch), cache_dir=Path(scratch) / "cache")
            sim = Rp2040Sim(firmware.elf_path)
            x = np.zeros(graph.tensor(graph.inputs[0]).shape[1:], np.int8)
            cold, warm = sim.run(x), sim.run(x)
        features = extract_features(generated.kernel_plan, activation_bytes=0)
        footprint = model.cached_footprint(features)
        points.append({"units": units, "input": length, "flash_bytes": firmware.flash_bytes,
                       "footprint_bytes": round(footprint), "cold_misses": cold.xip_misses,
                       "warm_misses": warm.xip_misses, "zero_wait_cycles": warm.zero_wait_cycles,
                       "warm_cycles": warm.cycles, "predicted_cycles": round(model.cycles(features)),
                       "miss_fraction": round(warm.xip_misses / (footprint / cache.line_bytes), 3),
                       "excess": round(max(0.0, footprint - cache.bytes) / cache.bytes, 3)})
        print(f"mlp {units}x{length}: footprint {footprint:.0f} B, warm misses {warm.xip_misses} "
              f"(cold {cold.xip_misses}), cycles {warm.cycles} (zero-wait {warm.zero_wait_cycles})")
    rising = [p for p in points if 0 < p["excess"] and p["miss_fraction"] < 0.9]
    slope = sum(p["miss_fraction"] * p["excess"] for p in rising) / sum(p["excess"] ** 2 for p in rising)
    return {"slope": round(slope, 2), "line_bytes": cache.line_bytes, "miss_cycles": cache.miss_cycles,
            "cache_bytes": cache.bytes, "points": points}


def measure_sweep(target: str, graphs: list[Graph], rng, m4: dict | None = None) -> tuple[dict, list]:
    """Every single-op graph on the target's simulator: per kernel symbol (work counts, cycles)
    of each call, and per graph (kernel calls, cycles of the entry function outside them)."""
    samples: dict[str, list[tuple[dict[str, int], int]]] = defaultdict(list)
    entry = []
    for graph in graphs:
        with tempfile.TemporaryDirectory() as scratch:
            generated, result, profile = SIMULATE[target](graph, Path(scratch), rng, m4)
        for record in profile:
            call = generated.kernel_plan.calls[record.call]
            samples[call.symbol].append(({"macs": call.macs, **call.work}, _fitted_cycles(record)))
        entry.append((len(profile), _fitted_cycles(result) - sum(_fitted_cycles(p) for p in profile)))
    return samples, entry


def macs_per_output(call) -> int:
    """MACs per output value of a conv, depthwise or dense call (a fused call's: per conv output)."""
    d = call.dims
    outputs = d["batches"] * (d["out_depth"] if "out_depth" in d else d["out_h"] * d["out_w"] * d["out_c"])
    return call.macs // outputs


def measure_models(target: str, names: list[str], rng, zoo_dir: Path) -> list[tuple]:
    """(name, features, simulation, layers) of each model on the target's simulator; layers: per
    kernel call its symbol, MACs (conv, depthwise and dense only), zero-wait cycles and, with
    MACs, cycles per MAC and MACs per output."""
    runs = []
    for name in names:
        with tempfile.TemporaryDirectory() as scratch:
            graph = _zoo_or_family(name, zoo_dir) if target == "apollo5" else _tf_model(name, Path(scratch))
            generated, result, profile = SIMULATE[target](graph, Path(scratch), rng)
        features = extract_features(generated.kernel_plan, activation_bytes=0)
        layers = [{"symbol": r.symbol, "macs": features.calls[r.call].macs, "cycles": _fitted_cycles(r),
                   **({"cycles_per_mac": round(_fitted_cycles(r) / features.calls[r.call].macs, 2),
                       "macs_per_output": macs_per_output(generated.kernel_plan.calls[r.call])}
                      if features.calls[r.call].macs else {})} for r in profile]
        runs.append((name, features, result, layers))
    return runs


def fit_entry(entry: list[tuple[int, int]]) -> tuple[float, float]:
    """The entry function's own cycles as (per inference, per kernel call), least squares."""
    calls, glue = (np.array(c, float) for c in zip(*entry))
    (invoke, per_call), *_ = np.linalg.lstsq(np.stack([np.ones_like(calls), calls], 1), glue, rcond=None)
    return round(float(invoke)), round(float(per_call), 1)


def compare(target: str, runs: list[tuple], fitted_table: CoreTable) -> list[dict]:
    """Each model's simulated cycles against the analytic model as committed and as just fitted."""
    models = []
    table, refit = AnalyticCostModel(target), AnalyticCostModel(target, table=fitted_table)
    for name, features, result, layers in runs:
        predicted, with_fit = table.cycles(features), refit.cycles(features)
        row = {"name": name, "macs": features.macs, "cycles": result.cycles}
        if result.zero_wait_cycles is not None:
            row.update(zero_wait_cycles=result.zero_wait_cycles, xip_misses=result.xip_misses)
        models.append({**row, "cycles_per_mac": round(result.cycles / max(features.macs, 1), 2),
                       "milliseconds": round(result.milliseconds, 4), "predicted_cycles": round(predicted),
                       "predicted_over_measured": round(predicted / result.cycles, 3),
                       "this_fit_over_measured": round(with_fit / result.cycles, 3), "layers": layers})
        print(f"{target} {name}: {features.macs} MACs, {result.cycles} cycles ({result.milliseconds:.3f} ms), "
              f"analytic {predicted / result.cycles:.3f}x, this fit {with_fit / result.cycles:.3f}x")
    return models


def _summary(fitted: dict, fitted_table: CoreTable, table: CoreTable, models: list[dict]) -> dict:
    for symbol, f in fitted.items():
        print(f"{symbol}: max error {f['max_relative_error']:.1%} over {f['calls']} calls")
    return {"fit": fitted, "invoke_cycles": fitted_table.invoke_cycles, "call_cycles": fitted_table.call_cycles,
            "analytic_table_is_this_fit": fitted_table.cycles == table.cycles
            and (fitted_table.invoke_cycles, fitted_table.call_cycles) == (table.invoke_cycles, table.call_cycles),
            "models": models,
            "analytic_worst_ratio": max((m["predicted_over_measured"] for m in models), key=lambda r: abs(r - 1))}


def fit_pooled_sums(runs: list[tuple], table: CoreTable) -> tuple[float, float]:
    """CoreTable.pooled_sums: the fused conv + max pool calls of the benchmark's models that pool
    their largest sums (work m0_pool_*), cycles per conv output and per conv pixel beyond the
    fitted parts, least squares on the relative error."""
    base_model = AnalyticCostModel("rp2040", table=replace(table, pooled_sums=(0.0, 0.0)))
    rows, measured, base = [], [], []
    for _, features, _, layers in runs:
        calls = [c for c in features.calls if c.symbol == FUSED_MAX_POOL]
        for call, layer in zip(calls, [x for x in layers if x["symbol"] == FUSED_MAX_POOL]):
            if call.count("m0_pool_sums"):
                rows.append([call.count("m0_pool_sums"), call.count("m0_pool_pixels")])
                measured.append(layer["cycles"])
                base.append(base_model.call_cycles(call) - table.call_cycles)
    a, m, b = np.array(rows, float), np.array(measured, float), np.array(base, float)
    (per_sum, per_pixel), *_ = np.linalg.lstsq(a / m[:, None], (m - b) / m, rcond=None)
    return round(float(per_sum), 2), round(float(per_pixel), 1)


def fit_rp2040(graphs: list[Graph], rng, zoo_dir: Path) -> dict:
    """The Cortex-M0+ table from rp2040-sim, the M4 instruction ratio and the XIP term."""
    m4: dict[str, list[tuple[int, int]]] = defaultdict(list)  # symbol -> (M0+, M4) instructions per call
    samples, entry = measure_sweep("rp2040", graphs, rng, m4)
    fitted = fit(samples)
    runs = measure_models("rp2040", list(MODELS), rng, zoo_dir)
    entry += [(len(r.ops), r.zero_wait_cycles - sum(op.zero_wait_cycles for op in r.ops)) for _, _, r, _ in runs]
    invoke, per_call = fit_entry(entry)
    m4_ratio = {s: round(sum(b for _, b in rows) / sum(a for a, _ in rows), 3) for s, rows in sorted(m4.items())}
    print(f"M4_INSTRUCTION_RATIO = {m4_ratio}")
    xip = fit_xip()
    fitted_table = replace(CORTEX_M0PLUS, cycles={s: f["cycles"] for s, f in fitted.items()},
                           invoke_cycles=invoke, call_cycles=per_call,
                           flash_cache=replace(CORTEX_M0PLUS.flash_cache, slope=xip["slope"]))
    print(f"RP2040_XIP slope={xip['slope']}")
    fitted_table = replace(fitted_table, pooled_sums=fit_pooled_sums(runs, fitted_table))
    print(f"pooled_sums={fitted_table.pooled_sums}")
    summary = _summary(fitted, fitted_table, CORTEX_M0PLUS, compare("rp2040", runs, fitted_table))
    summary["analytic_table_is_this_fit"] = fitted_table == CORTEX_M0PLUS
    return {"simulator": "rp2040-sim (Cortex-M0+ timings; fit on zero-wait cycles, models warm with the XIP cache)",
            **summary, "xip": xip, "pooled_sums": list(fitted_table.pooled_sums),
            "cortex_m4_instruction_ratio": m4_ratio}


def fit_apollo5(graphs: list[Graph], rng, zoo_dir: Path) -> dict:
    """The Cortex-M55 table from apollo5-sim (Helium kernels), checked on every test-zoo model
    and the benchmark's own models."""
    import model_zoo

    table = TABLES["cortex-m55"]
    samples, _ = measure_sweep("apollo5", graphs + sweep_helium(np.random.default_rng(2)), rng)
    fitted = fit(samples, vector_terms=True)
    names = list(model_zoo.SUPPORTED) + [n for n in MODELS if n not in model_zoo.SUPPORTED]
    runs = measure_models("apollo5", names, rng, zoo_dir)
    # apollo5-sim counts the entry's own code to the kernel calls: none is left to fit
    # the zoo-solved kernels (analytic.ZOO_SOLVED) stay: the single-op graphs do not reach them
    fitted_table = replace(table, cycles={**{s: f["cycles"] for s, f in fitted.items()}, **ZOO_SOLVED["cortex-m55"]},
                           invoke_cycles=0, call_cycles=0)
    return {"simulator": "apollo5-sim (QEMU Cortex-M55, Helium kernels, LLVM's Cortex-M55 scheduling model, "
                         "zero-wait TCM); the entry's code between calls counts to the call that follows",
            **_summary(fitted, fitted_table, table, compare("apollo5", runs, fitted_table))}


def main(targets: tuple[str, ...] = ("rp2040", "apollo5")) -> dict:
    """Both fits, or the named targets' alone (`python benchmarks/bench_kernels.py apollo5`): the
    results of a target not run are kept from benchmarks/results/kernels.json."""
    from autotune.capture import import_tensorflow

    out = ROOT / "benchmarks" / "results" / "kernels.json"
    result = json.loads(out.read_text()) if out.exists() and set(targets) != {"rp2040", "apollo5"} else {}
    import_tensorflow()
    rng = np.random.default_rng(0)  # the shapes' data, then the rp2040 inputs
    graphs = sweep(rng)
    with tempfile.TemporaryDirectory() as zoo_dir:
        if "rp2040" in targets:
            result = {**fit_rp2040(graphs, rng, Path(zoo_dir)), "apollo5": result.get("apollo5")}
        if "apollo5" in targets:
            result["apollo5"] = fit_apollo5(graphs, np.random.default_rng(1), Path(zoo_dir))
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    FITTED_PATH.write_text(json.dumps(fitted_constants(result), indent=1, sort_keys=True) + "\n")
    return result


def fitted_constants(result: dict) -> dict:
    """What cost_models/fitted_cycles.json holds: per core table the fitted cycles, entry-function
    cycles and runner; the Cortex-M0+ XIP slope and M4 instruction ratios besides."""
    def table(fit: dict) -> dict:
        return {"cycles": {s: f["cycles"] for s, f in fit["fit"].items()}, "invoke_cycles": fit["invoke_cycles"],
                "call_cycles": fit["call_cycles"]}
    return {"cortex-m0plus": {**table(result), "fitted_to": CORTEX_M0PLUS.fitted_to,
                              "xip_slope": result["xip"]["slope"], "pooled_sums": result["pooled_sums"],
                              "cortex_m4_instruction_ratio": result["cortex_m4_instruction_ratio"]},
            "cortex-m55": {**table(result["apollo5"]), "fitted_to": TABLES["cortex-m55"].fitted_to}}


if __name__ == "__main__":
    main(tuple(sys.argv[1:]) or ("rp2040", "apollo5"))
