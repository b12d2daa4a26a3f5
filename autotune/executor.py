"""Reference executor: runs an integer IR graph on a batch of inputs, bit-exact with TFLite Micro.

Each kernel mirrors TFLM's reference kernel (tensorflow/lite/kernels/internal/reference/...) and
reads its integers from `autotune.ir.params`, the same ones generated C uses. Kernels are
vectorised over the batch: activations are arrays (N, *tensor.shape[1:]), the graph's batch of 1
becoming N. Convolutions accumulate with BLAS float matrix products, which are exact: every
partial sum is an integer below 2**24 (float32, checked per layer) or 2**53 (float64).
"""
from __future__ import annotations

from typing import Callable

import numpy as np

from autotune.ir import params as P
from autotune.ir.graph import Graph, Op

_mbqm = P.multiply_by_quantized_multiplier


def _requantize(acc: np.ndarray, multiplier, shift, output_offset: int, act_min: int, act_max: int) -> np.ndarray:
    out = _mbqm(acc, multiplier, shift)
    out += output_offset
    return np.clip(out, act_min, act_max, out=out).astype(np.int8)


def _windows(x: np.ndarray, kernel: tuple[int, int], stride: tuple[int, int], dilation: tuple[int, int],
             pad: tuple[int, int], out_hw: tuple[int, ...], fill: int) -> list[np.ndarray]:
    """One view per kernel tap (ky, kx), row-major: view[n, oy, ox, c] is input pixel
    (oy * stride_h - pad_h + ky * dilation_h, ox * stride_w - pad_w + kx * dilation_w), or `fill`
    where that lies outside the input."""
    (kh, kw), (sh, sw), (dh, dw), (ph, pw), (oh, ow) = kernel, stride, dilation, pad, out_hw
    bottom = max(0, (oh - 1) * sh + (kh - 1) * dh + 1 - x.shape[1] - ph)
    right = max(0, (ow - 1) * sw + (kw - 1) * dw + 1 - x.shape[2] - pw)
    xp = np.pad(x, ((0, 0), (ph, bottom), (pw, right), (0, 0)), constant_values=fill)
    return [xp[:, ky * dh:ky * dh + (oh - 1) * sh + 1:sh, kx * dw:kx * dw + (ow - 1) * sw + 1:sw]
            for ky in range(kh) for kx in range(kw)]


def _exact_float(x_bound: int, w: np.ndarray, terms: int) -> type:
    """float32 when every partial sum is an integer below 2**24 (exact in any order), else float64."""
    return np.float32 if x_bound * int(np.abs(w).max(initial=0)) * terms < 2**24 else np.float64


def _conv(graph: Graph, op: Op, p: P.ConvParams, x: np.ndarray) -> np.ndarray:
    filt = graph.tensor(op.inputs[1]).data
    out_shape = graph.tensor(op.outputs[0]).shape
    depthwise = op.kind == "DEPTHWISE_CONV_2D"
    _, kh, kw, cin = filt.shape
    ftype = _exact_float(128 + abs(p.input_offset), filt, kh * kw * (1 if depthwise else cin))
    xo = x.astype(ftype) + ftype(p.input_offset)  # padding contributes 0, as TFLM skips it
    if depthwise and p.depth_multiplier > 1:
        xo = np.repeat(xo, p.depth_multiplier, axis=-1)  # output channel c reads input c // dm
    taps = _windows(xo, (kh, kw), (p.stride_h, p.stride_w), (p.dilation_h, p.dilation_w), (p.pad_h, p.pad_w),
                    out_shape[1:3], 0)
    if depthwise:
        w = filt.reshape(kh * kw, -1).astype(ftype)
        acc = taps[0] * w[0]
        for tap, wt in zip(taps[1:], w[1:]):
            acc += tap * wt
    else:  # im2col: one matrix product over (ky, kx, c), the filter's own layout
        cols = taps[0] if len(taps) == 1 else np.concatenate(taps, axis=-1)
        acc = cols @ filt.reshape(filt.shape[0], -1).T.astype(ftype)
    acc = acc.astype(np.int64)
    if len(op.inputs) > 2 and op.inputs[2] >= 0:
        acc += graph.tensor(op.inputs[2]).data
    return _requantize(acc, p.multiplier, p.shift, p.output_offset, p.act_min, p.act_max)


def _fully_connected(graph: Graph, op: Op, p: P.FullyConnectedParams, x: np.ndarray) -> np.ndarray:
    filt = graph.tensor(op.inputs[1]).data.astype(np.int32) + p.filter_offset
    n = x.shape[0]
    ftype = _exact_float(128 + abs(p.input_offset), filt, filt.shape[1])
    rows = x.reshape(n, -1, filt.shape[1]).astype(ftype) + ftype(p.input_offset)
    acc = (rows @ filt.T.astype(ftype)).astype(np.int64)
    if len(op.inputs) > 2 and op.inputs[2] >= 0:
        acc += graph.tensor(op.inputs[2]).data
    out = _requantize(acc, p.multiplier, p.shift, p.output_offset, p.act_min, p.act_max)
    return out.reshape((n,) + graph.tensor(op.outputs[0]).shape[1:])


def _pool_windows(x: np.ndarray, p: P.PoolParams, out_hw: tuple[int, ...], fill: int) -> list[np.ndarray]:
    return _windows(x, (p.filter_h, p.filter_w), (p.stride_h, p.stride_w), (1, 1), (p.pad_h, p.pad_w), out_hw, fill)


def _average_pool(graph: Graph, op: Op, p: P.PoolParams, x: np.ndarray) -> np.ndarray:
    out_hw = graph.tensor(op.outputs[0]).shape[1:3]
    acc = sum(_pool_windows(x.astype(np.int64), p, out_hw, 0))
    count = sum(_pool_windows(np.ones((1,) + x.shape[1:3] + (1,), np.int64), p, out_hw, 0))  # unpadded inputs
    half = count // 2  # TFLM: round half away from zero, then C division (truncation)
    num = np.where(acc > 0, acc + half, acc - half)
    avg = np.sign(num) * (np.abs(num) // count)
    return np.clip(avg, p.act_min, p.act_max).astype(np.int8)


def _max_pool(graph: Graph, op: Op, p: P.PoolParams, x: np.ndarray) -> np.ndarray:
    low = P.INT8_MIN - 1  # padding never wins: every window holds at least one input
    out = np.maximum.reduce(_pool_windows(x.astype(np.int16), p, graph.tensor(op.outputs[0]).shape[1:3], low))
    return np.clip(out, p.act_min, p.act_max).astype(np.int8)


def _mean(graph: Graph, op: Op, p: P.MeanParams, x: np.ndarray) -> np.ndarray:
    sums = x.sum(axis=p.axis, dtype=np.int64) - p.input_zero_point * p.count
    out = _mbqm(sums, p.multiplier, p.shift) + p.output_zero_point
    out = np.clip(out, P.INT8_MIN, P.INT8_MAX).astype(np.int8)
    return out.reshape((x.shape[0],) + graph.tensor(op.outputs[0]).shape[1:])


def _softmax(graph: Graph, op: Op, p: P.SoftmaxParams, x: np.ndarray) -> np.ndarray:
    x = x.astype(np.int64)
    diff = x.max(axis=-1, keepdims=True) - x  # 0..255
    exp_sum = p.exp_sum_table.astype(np.int64)[diff].sum(axis=-1, keepdims=True)
    recip, bits_over_unit = P.get_reciprocal(exp_sum, P.SOFTMAX_ACCUM_INTEGER_BITS)
    prob = P.saturating_rounding_doubling_high_mul(recip, p.exp_table.astype(np.int64)[diff])
    out = P.rounding_divide_by_pot(prob, bits_over_unit + 31 - 8) + P.INT8_MIN
    return np.clip(out, P.INT8_MIN, P.INT8_MAX).astype(np.int8)


def _add(graph: Graph, op: Op, p: P.AddParams, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a = _mbqm((a.astype(np.int64) + p.input1_offset) << p.left_shift, p.input1_multiplier, p.input1_shift)
    b = _mbqm((b.astype(np.int64) + p.input2_offset) << p.left_shift, p.input2_multiplier, p.input2_shift)
    return _requantize(a + b, p.output_multiplier, p.output_shift, p.output_offset, p.act_min, p.act_max)


def _concatenation(graph: Graph, op: Op, p: P.ConcatParams, *xs: np.ndarray) -> np.ndarray:
    n = max(x.shape[0] for x in xs)  # constant operands carry the graph's batch of 1
    return np.concatenate([np.broadcast_to(x, (n,) + x.shape[1:]) for x in xs], axis=p.axis)


def _pad(graph: Graph, op: Op, p: P.PadParams, x: np.ndarray) -> np.ndarray:
    return np.pad(x, ((0, 0),) + p.paddings[1:], constant_values=p.pad_value)


def _reshape(graph: Graph, op: Op, p: P.ReshapeParams, x: np.ndarray) -> np.ndarray:
    return x.reshape((x.shape[0],) + p.shape[1:])


def _quantize(graph: Graph, op: Op, p: P.QuantizeParams, x: np.ndarray) -> np.ndarray:
    if x.dtype == np.float32:  # AffineQuantize: round(x / scale) in float32, half away from zero
        q = P.f32_round_half_away(x / np.float32(p.output_scale)) + p.output_zero_point
        return np.clip(q, P.INT8_MIN, P.INT8_MAX).astype(np.int8)
    q = _mbqm(x.astype(np.int64) - p.input_zero_point, p.multiplier, p.shift) + p.output_zero_point
    return np.clip(q, P.INT8_MIN, P.INT8_MAX).astype(np.int8)


def _dequantize(graph: Graph, op: Op, p: P.DequantizeParams, x: np.ndarray) -> np.ndarray:
    return (p.scale * (x.astype(np.float64) - p.zero_point)).astype(np.float32)


_KERNELS: dict[str, Callable] = {
    "CONV_2D": _conv, "DEPTHWISE_CONV_2D": _conv, "FULLY_CONNECTED": _fully_connected,
    "AVERAGE_POOL_2D": _average_pool, "MAX_POOL_2D": _max_pool, "MEAN": _mean, "SOFTMAX": _softmax,
    "ADD": _add, "CONCATENATION": _concatenation, "PAD": _pad, "RESHAPE": _reshape,
    "QUANTIZE": _quantize, "DEQUANTIZE": _dequantize,
}


def quantize_input(graph: Graph, x: np.ndarray) -> np.ndarray:
    """Float data -> what `run` takes for the graph's input: int8 as TFLM's QUANTIZE would produce
    it, or the float32 data itself when the graph quantizes its own input."""
    t = graph.tensor(graph.inputs[0])
    x = np.asarray(x, dtype=np.float32)
    if t.dtype == "float32":
        return x
    p = P.QuantizeParams(0, t.quant.zero_point[0], 0, 0, t.quant.scale[0])
    return _quantize(graph, Op("QUANTIZE", (), ()), p, x)


def run_layers(graph: Graph, x: np.ndarray) -> dict[int, np.ndarray]:
    """Every activation tensor (graph input included), by tensor index, each (N, *shape[1:])."""
    t = graph.tensor(graph.inputs[0])
    x = np.asarray(x)
    if x.shape[1:] != t.shape[1:] or x.dtype != np.dtype(t.dtype):
        raise ValueError(f"{graph.name}: input must be {t.dtype} (N, {', '.join(map(str, t.shape[1:]))}), "
                         f"got {x.dtype} {x.shape} (quantize_input converts float data)")
    values = {graph.inputs[0]: x}
    for op in graph.ops:
        # the tensors a kernel computes on; the other inputs (weights, shapes, axes) are in op_params
        n_in = {"ADD": 2, "CONCATENATION": len(op.inputs)}.get(op.kind, 1)
        args = [values[i] if i in values else graph.tensor(i).data for i in op.inputs[:n_in]]
        values[op.outputs[0]] = _KERNELS[op.kind](graph, op, P.op_params(graph, op), *args)
    return values


def run(graph: Graph, x: np.ndarray) -> np.ndarray:
    """The graph's (first) output for a batch x of shape (N, *input_shape[1:]): int8, or float32
    when the graph ends in DEQUANTIZE."""
    return run_layers(graph, x)[graph.outputs[0]]
