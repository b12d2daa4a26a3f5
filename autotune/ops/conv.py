"""CONV_2D and DEPTHWISE_CONV_2D, int8 with per-channel requantization
(TFLM reference_integer_ops::ConvPerChannel / DepthwiseConvPerChannel; C: at_conv_s8.c,
at_depthwise_conv_s8.c)."""
from __future__ import annotations

import math

from dataclasses import dataclass, replace
from typing import ClassVar

import numpy as np

from autotune.ir.graph import Graph, Op
from autotune.ir.kernel_plan import KernelCall, frozen_map
from autotune.ops import fixedpoint as fp
from autotune.ops import window
from autotune.ops.base import (OpDef, OpError, Operand, activation_range, bias_type, frozen, fused_activation,
                               has_input, padding, require_rank, requantization, scale, weight_storage,
                               zero_point)
from autotune.ops.pool import pool_fields

MVE_GROUP = 8  # output channels per channel group of the Helium depthwise kernel
FUSED_MAX_POOL = "at_conv_max_pool_s8"  # CONV_2D and the MAX_POOL_2D after it in one call
REVERSE = "at_conv_reverse_s8"  # CONV_2D written last pixel first (ConvParams.reverse)


def span(lead: int, in_bytes: int, out_bytes: int) -> int:
    """Bytes an input and an output starting `lead` bytes before it take together."""
    return max(in_bytes, out_bytes - lead) - min(0, -lead)


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
    reverse: bool = False  # at_conv_reverse_s8 writes output pixels last first (lower chooses: in_place)
    may_reverse: bool = True  # lower may choose reverse (autotune.lowering.lower tries both)


@dataclass(frozen=True, eq=False)
class ConvMaxPoolParams:
    """The params of a CONV_2D call and the MAX_POOL_2D call over its output, fused into one."""

    conv: ConvParams
    pool: KernelCall


def fuse_max_pool(graph: Graph, conv: KernelCall, pool: KernelCall) -> KernelCall | None:
    """One at_conv_max_pool_s8 call (at_kernels.h) for a CONV_2D call and the MAX_POOL_2D call
    after it, where only the pool reads the conv's output, which is not the graph's, and the pool
    has no padding and windows that do not overlap (stride >= filter), over one batch; else None.
    Its work: the conv's for the conv outputs the pool reads (its terms scaled to them), the
    pool's as pool_<term>, and the Helium variant's: each conv pixel through at_mve_rows."""
    if conv.symbol != Conv2D.symbol or pool.kind != "MAX_POOL_2D":  # (a decoder call has no outputs)
        return None
    if conv.weights[0].format == "decoded_row":  # its C loops over filters (Conv2D.filter_at_a_time)
        return None
    out, q = conv.outputs[0], pool.params
    if (pool.inputs != (out,)
            or out in graph.outputs or sum(out in op.inputs for op in graph.ops) != 1
            or conv.dims["batches"] != 1 or q.pad_h or q.pad_w or q.stride_h < q.filter_h or q.stride_w < q.filter_w):
        return None
    d = pool.dims
    computed = d["out_h"] * q.filter_h * d["out_w"] * q.filter_w  # conv pixels the pool reads
    share = computed / (conv.dims["out_h"] * conv.dims["out_w"])
    out_c = conv.dims["out_c"]
    work = {t: round(v * share) if t != "calls" else v for t, v in conv.work.items() if not t.startswith("mve_")}
    work.update({f"pool_{t}": v for t, v in pool.work.items() if not t.startswith("mve_") and t != "calls"})
    p = conv.params
    win = Conv2D().window(graph, graph.ops[conv.op], p)
    work.update(mve_conv_pool_work(win, q, d["out_h"], d["out_w"], out_c,
                                   mve_mode(p.shift, p.act_min, p.output_offset)))
    by_sums = m0_pools_sums(graph, conv, q)
    work.update(m0_pool_sums=computed * out_c if by_sums else 0, m0_pool_pixels=computed if by_sums else 0,
                m0_pool_outputs=graph.tensor(pool.outputs[0]).size if by_sums else 0)
    return replace(conv, symbol=FUSED_MAX_POOL, source=f"{FUSED_MAX_POOL}.c", outputs=pool.outputs,
                   scratch_bytes=q.filter_h * q.filter_w * out_c + conv.scratch_bytes,
                   scratch_symbol=f"{FUSED_MAX_POOL}_get_buffer_size", overwrites=(), overwrite_lead=0, lead_step=0,
                   macs=round(conv.macs * share), work=frozen_map(**work),
                   params=ConvMaxPoolParams(replace(conv.params, reverse=False), pool))


M0_POOLED_CHANNELS = 32  # cortex-m0plus/at_m0plus.h AT_M0_CHANNELS
M0_CHUNK = 16  # cortex-m0plus/at_m0plus.h AT_M0_CHUNK: channels summed before their requantization


def m0_pools_sums(graph: Graph, conv: KernelCall, pool) -> bool:
    """Whether the Cortex-M0+ fused conv + max pool (cortex-m0plus/at_conv_max_pool_s8.c) pools
    each window's largest sums and requantizes once per pool output: at most 32 channels in blocks
    of four, no left shift, no negative multiplier, no sum that can wrap acc_init + sum (|x w| <= 2^14), and the
    conv's and pool's clamp ranges meeting. Its work terms m0_pool_* count that path."""
    p, op, d = conv.params, graph.ops[conv.op], conv.dims
    out_c, n = d["out_c"], d["filter_h"] * d["filter_w"] * d["in_c"]
    if out_c > M0_POOLED_CHANNELS or out_c % 4 or n >= 2**17 or p.act_min > pool.act_max or pool.act_min > p.act_max:
        return False
    if np.any(p.shift > 0) or np.any(p.multiplier < 0):
        return False
    filt = graph.tensor(op.inputs[1]).data.astype(np.int64).reshape(out_c, -1)
    bias = graph.tensor(op.inputs[2]).data if has_input(op, 2) else np.zeros(out_c, dtype=np.int64)
    acc_init, bound = channel_rows(bias, filt, p.input_offset), n << 14
    return bool(np.all(acc_init <= 2**31 - 1 - bound) and np.all(acc_init >= -(2**31) + bound))


def channel_multipliers(graph: Graph, op: Op, channels: int) -> tuple[np.ndarray, np.ndarray]:
    """PopulateConvolutionQuantizationParams: in_scale * filter_scale[c] / out_scale, in double."""
    inp, filt, out = (graph.tensor(i) for i in (op.inputs[0], op.inputs[1], op.outputs[0]))
    scales = filt.quant.scale if filt.quant.per_channel else filt.quant.scale * channels
    pairs = [requantization(scale(inp) * s / scale(out), op.outputs[0]) for s in scales]
    return (frozen(np.array([m for m, _ in pairs], dtype=np.int32)),
            frozen(np.array([s for _, s in pairs], dtype=np.int32)))


def check_filter_quantization(graph: Graph, op: Op, channels: int, axis: int) -> None:
    """Symmetric int8 weights, one scale or one per output channel along `axis` (TFLM's checks)."""
    filt = graph.tensor(op.inputs[1])
    q = filt.quant
    if len(q.scale) not in (1, channels) or len(q.zero_point) != len(q.scale):
        raise OpError(f"filter has {len(q.scale)} scales and {len(q.zero_point)} zero points for "
                      f"{channels} output channels", op.inputs[1])
    if q.per_channel and q.axis != axis:
        raise OpError(f"filter is quantized along dimension {q.axis}, expected {axis}", op.inputs[1])
    if any(z != 0 for z in q.zero_point):
        raise OpError("filter zero point is not 0 (int8 weights are symmetric)", op.inputs[1])
    if has_input(op, 2):
        bias = graph.tensor(op.inputs[2])
        if bias.shape != (channels,):
            raise OpError(f"bias has shape {bias.shape}, expected ({channels},)", op.inputs[2])


def check_accumulator(graph: Graph, op: Op, by_channel: np.ndarray) -> None:
    """TFLM sums filter * (input - zero point) over a window in an int32, then adds the bias,
    and checks neither (signed overflow: undefined behaviour in C). Refused where some int8 input
    takes either sum out of int32: there TFLM's output is not defined. `by_channel`: one row of
    filter values per output channel."""
    zp = int(graph.tensor(op.inputs[0]).quant.zero_point[0])
    w = by_channel.astype(np.int64)
    high = np.where(w > 0, w * (127 - zp), w * (-128 - zp)).sum(axis=1)  # the largest sum per channel
    low = np.where(w > 0, w * (-128 - zp), w * (127 - zp)).sum(axis=1)
    bias = graph.tensor(op.inputs[2]).data.astype(np.int64) if has_input(op, 2) else np.zeros(len(w), np.int64)
    over = (high > fp.INT32_MAX) | (low < fp.INT32_MIN) | (bias + high > fp.INT32_MAX) | (bias + low < fp.INT32_MIN)
    if over.any():
        c = int(np.flatnonzero(over)[0])
        raise OpError(f"output channel {c}: bias {bias[c]} plus the filter's sums over int8 inputs "
                      f"({low[c]}..{high[c]}) overflow TFLM's int32 accumulator",
                      op.inputs[2] if has_input(op, 2) else op.inputs[1])


def channel_rows(bias: np.ndarray, by_channel: np.ndarray, input_offset: int) -> np.ndarray:
    """at_channel_t.acc_init per output channel (a row of `by_channel`): bias + input_offset *
    sum(filter), wrapped to int32 (the kernels add to it modulo 2**32, so the accumulator is
    TFLM's whenever TFLM's own fits)."""
    acc = np.asarray(bias, dtype=np.int64) + input_offset * by_channel.astype(np.int64).sum(axis=1)
    return ((acc + 2**31) & 0xFFFFFFFF) - 2**31


FILTERS_PER_PASS = 4  # the M0+ conv kernel's filters per load of an input byte (at_m0_dot_rows)


def filters_per_pass(out_c: int) -> int:
    """The output channels a filter-at-a-time convolution decodes and runs together: four, or
    the largest of 2 and 1 that divides out_c."""
    return next(g for g in (FILTERS_PER_PASS, 2, 1) if out_c % g == 0)


def output_work(outputs: int, act_min: int, output_offset: int) -> dict[str, int]:
    """Outputs requantized in full, and outputs under a ReLU (act_min >= the zero point): at_output_s8
    skips the multiply for those whose accumulator is negative, about half of them."""
    relu = act_min >= output_offset
    return dict(outputs=0 if relu else outputs, relu_outputs=outputs if relu else 0)


def _up(a: int, b: int) -> int:
    return -(-a // b)


def mve_rows_work(windows: int, n: int, rows: int) -> dict[str, int]:
    """Loop counts of at_mve_rows (cortex-m55-mve/at_mve.h) on `windows` inputs of `n` bytes
    against `rows` filter rows: per group of four rows a requantization of four lanes, per
    16-byte chunk of the input and group four VMLADAVA."""
    return dict(mve_groups=windows * _up(rows, 4), mve_group_chunks=windows * _up(rows, 4) * _up(n, 16))


def one_run(win: dict, out_h: int, out_w: int) -> bool:
    """Every window of the conv inside the input, one contiguous row each, and each row of
    windows continuing the last: the Helium kernel's single run (1x1 convolutions, mostly), the
    only convs it writes last pixel first in runs (`reverse`)."""
    return ((win["filter_w"] == 1 or win["dilation_w"] == 1) and win["filter_h"] == 1
            and tuple(win["inside_y"]) == (0, out_h) and tuple(win["inside_x"]) == (0, out_w)
            and win["stride_h"] * win["in_w"] == out_w * win["stride_w"])


def mve_conv_work(win: dict, batches: int, out_h: int, out_w: int, out_c: int, any_mode: bool,
                  reverse: bool = False) -> dict[str, int]:
    """Loop counts of the Helium CONV_2D (cortex-m55-mve/at_conv_s8.c), whose runs of output
    pixels take one of three paths, followed here as the C chooses them: conv_run (windows of at
    most 32 bytes, read in place or gathered side by side: per block of four pixels, two above
    16 bytes, and output channel one dot product and one four-lane requantization; a block of
    fewer gathered windows fills its empty slots with copies), conv_block (rows read in place,
    longer or in requantization mode AT_MVE_ANY: per block of four pixels and channel a C loop
    over the rows' 16-byte chunks) and conv_window (anything else: at_mve_rows on the gathered
    window). `any_mode`: at_mve_mode gives AT_MVE_ANY. `reverse` (one_run, one batch): the run in
    runs of REVERSE_AHEAD pixels from the last."""
    fh, fw, c = win["filter_h"], win["filter_w"], win["in_c"]
    n, length = fh * fw * c, fw * c
    contiguous = fw == 1 or win["dilation_w"] == 1
    gathering = n <= 32 and not any_mode
    pixels = 4 if n <= 16 else 2
    (y0, y1), (x0, x1) = win["inside_y"], win["inside_x"]
    work = dict(mve_runs=0, mve_run_blocks=0, mve_slot_copies=0, mve_block_channels=0, mve_block_chunks=0,
                mve_groups=0, mve_group_chunks=0)

    def inside(count: int) -> None:  # conv_inside
        per = 4 if length <= 16 else 2
        if fh == 1 and length <= 32 and not any_mode and count >= per:
            blocks = count // per + (count % per > 0)
            work["mve_runs"] += 1 + (count % per > 0)
            work["mve_run_blocks"] += out_c * blocks
        else:
            work["mve_block_channels"] += out_c * _up(count, 4)
            work["mve_block_chunks"] += out_c * _up(count, 4) * fh * _up(length, 16)

    def flush(gathered: int) -> int:  # a block of gathered windows, its empty slots copies of the last
        if gathered:
            work["mve_runs"] += 1
            work["mve_run_blocks"] += out_c
            work["mve_slot_copies"] += pixels - gathered
        return 0

    if reverse:  # one run, in runs of REVERSE_AHEAD pixels from the last (the top one shorter)
        total, ahead = out_h * out_w, window.REVERSE_AHEAD
        for count in ([total % ahead] if total % ahead else []) + [ahead] * (total // ahead):
            inside(count)
        return work
    for _ in range(batches):
        if one_run(win, out_h, out_w):
            inside(out_h * out_w)
            continue
        gathered = 0
        for oy in range(out_h):
            begin, end = (x0, x1) if contiguous and fh == 1 and y0 <= oy < y1 else (out_w, out_w)
            ox = 0
            while ox < out_w:
                if ox == begin and begin < end and (not gathering or end - begin >= pixels):
                    gathered = flush(gathered)
                    inside(end - begin)
                    ox = end
                    continue
                if gathering:
                    gathered += 1
                    if gathered == pixels:
                        gathered = flush(gathered)
                else:
                    for term, count in mve_rows_work(1, n, out_c).items():
                        work[term] += count
                ox += 1
        flush(gathered)
    return work


def mve_conv_pool_work(win: dict, pool, out_h: int, out_w: int, out_c: int, mode: str) -> dict[str, int]:
    """Loop counts of the Helium CONV_2D + MAX_POOL_2D (cortex-m55-mve/at_conv_max_pool_s8.c) over a
    pool output of out_h x out_w. Where a row of a pool window is whole blocks of conv_run (four
    pixels for windows of at most 16 bytes, two for at most 32) and the mode is not "any", per pool
    output row its fill (`mve_pool_rows`) and per row and block of the pool windows: the pool windows whose
    conv windows are read in place in one run, each other one a run of its own on its conv
    windows copied side by side (inside the input: `mve_window_copies`, pieces of a row
    `mve_copy_pieces`; at a border: `mve_border_windows`); per block and output channel one dot
    product, requantization and maximum (mve_run_blocks, as the conv's; pool windows of two
    pixels, two apart, of windows up to 16 bytes read in place: two a block of four pixels,
    mve_pair_blocks, an odd last one a block of its own). Otherwise each conv pixel
    through at_mve_rows and each pool window's maximum in 16 lanes (`mve_pool_pixels`)."""
    fh, fw, c = win["filter_h"], win["filter_w"], win["in_c"]
    n = fh * fw * c
    pixels = 4 if n <= 16 and pool.filter_w % 4 == 0 else 2 if n <= 32 and pool.filter_w % 2 == 0 else 0
    # pool windows of two pixels, two apart, windows up to 16 bytes: two a block of four pixels in place
    paired = pixels == 2 and n <= 16 and pool.filter_w == 2 and pool.stride_w == 2
    work = dict(mve_runs=0, mve_run_blocks=0, mve_pair_blocks=0, mve_pool_rows=0, mve_window_copies=0,
                mve_copy_pieces=0, mve_border_windows=0, mve_groups=0, mve_group_chunks=0, mve_pool_pixels=0)
    if mode == "any" or not pixels:
        work.update(mve_rows_work(out_h * out_w * pool.filter_h * pool.filter_w, n, out_c),
                    mve_pool_pixels=out_h * out_w)
    else:
        contiguous = fw == 1 or win["dilation_w"] == 1
        pieces = 1 if contiguous else fw
        (y0, y1), (x0, x1) = win["inside_y"], win["inside_x"]
        begin = -(-x0 // pool.stride_w)
        last = x1 - pool.filter_w  # the first conv pixel of the last pool window read in place
        end = min(max(last // pool.stride_w + 1 if last >= 0 else 0, begin), out_w)
        for py in range(out_h):
            work["mve_pool_rows"] += 1
            for oy in range(py * pool.stride_h, py * pool.stride_h + pool.filter_h):
                row_inside = y0 <= oy < y1
                in_place = end - begin if contiguous and fh == 1 and row_inside and begin < end else 0
                for fx in range(0, pool.filter_w, pixels):  # a block of each pool window's row
                    pairs = in_place // 2 if paired else 0  # four-pixel blocks of two windows
                    work["mve_runs"] += (pairs > 0) + (in_place - 2 * pairs > 0) + out_w - in_place
                    work["mve_pair_blocks"] += out_c * pairs
                    work["mve_run_blocks"] += out_c * (out_w - 2 * pairs)
                    for px in (p for p in range(out_w) if not (in_place and begin <= p < end)):
                        for ox in range(px * pool.stride_w + fx, px * pool.stride_w + fx + pixels):
                            if row_inside and x0 <= ox < x1:
                                work["mve_window_copies"] += 1
                                work["mve_copy_pieces"] += fh * pieces
                            else:
                                work["mve_border_windows"] += 1
    requantizations = work["mve_run_blocks"] + work["mve_pair_blocks"] + work["mve_groups"]
    work["mve_fixups"] = 0 if mode == "relu" else requantizations
    return work


def mve_depthwise_work(win: dict, batches: int, out_h: int, out_w: int, out_c: int,
                       any_mode: bool) -> dict[str, int]:
    """Loop counts of the Helium DEPTHWISE_CONV_2D (cortex-m55-mve/at_depthwise_conv_s8.c), per
    group of eight channels: the pixels of a row whose windows lie inside the input (depth
    multiplier 1, mode not AT_MVE_ANY) in pairs through depthwise_run, per pair and tap; every
    other pixel through depthwise_pixel in C, per pixel and tap; with a depth multiplier above 1
    its window gathered by at_window_s8, for each group again."""
    groups, taps = _up(out_c, MVE_GROUP), win["filter_h"] * win["filter_w"]
    (y0, y1), (x0, x1) = win["inside_y"], win["inside_x"]
    inside = 0 if win["repeat"] != 1 or any_mode or x1 <= x0 else x1 - x0  # run pixels of an inside row
    rows = batches * max(0, min(y1, out_h) - max(y0, 0)) if inside else 0
    runs = rows * (int(inside >= 2) + inside % 2)
    pairs = rows * (inside // 2 + inside % 2)
    pixels = batches * out_h * out_w - rows * inside
    gathered = pixels if win["repeat"] != 1 else 0  # at_window_s8 per pixel and group: taps x out_c bytes
    return dict(mve_runs=groups * runs, mve_pairs=groups * pairs, mve_pair_taps=groups * pairs * taps,
                mve_pixels=groups * pixels, mve_pixel_taps=groups * pixels * taps,
                mve_window_taps=groups * gathered * taps, mve_window_bytes=groups * gathered * taps * out_c)


def mve_mode(shift: np.ndarray, act_min: int, output_offset: int) -> str:
    """The requantization mode at_mve_mode (cortex-m55-mve/at_mve.h) picks: "relu" (no fix-up),
    "right" (the fix-up on every lane) or "any" (left shifts too)."""
    hi = max(-1, int(np.max(shift)))
    if hi <= 0 and act_min >= output_offset:
        return "relu"
    return "right" if hi < 0 else "any"


def _exact_float(x_bound: int, w: np.ndarray, terms: int) -> type:
    """float32 when every partial sum is an integer below 2**24 (exact in any order), else float64."""
    return np.float32 if x_bound * int(np.abs(w).max(initial=0)) * terms < 2**24 else np.float64


def requantize(acc: np.ndarray, multiplier, shift, output_offset: int, act_min: int, act_max: int) -> np.ndarray:
    out = fp.multiply_by_quantized_multiplier(acc, multiplier, shift)
    out += output_offset
    return np.clip(out, act_min, act_max, out=out).astype(np.int8)


class _Conv(OpDef):
    operands = (Operand("input"), Operand("filter", constant=True),
                Operand("bias", ("int32",), constant=True, optional=True))
    depthwise: ClassVar[bool]
    symbol: ClassVar[str]

    def parse_options(self, o, graph: Graph, inputs: tuple[int, ...]) -> dict:
        if o is None:
            raise OpError("has no options")
        bias_type(o)
        return dict(stride_h=int(o.strideH), stride_w=int(o.strideW), dilation_h=int(o.dilationHFactor),
                    dilation_w=int(o.dilationWFactor), padding=padding(o.padding), activation=fused_activation(o))

    def output_shape(self, graph: Graph, op: Op) -> tuple[int, ...]:
        n, h, w, c = require_rank(graph, op.inputs[0], (4,), "input")
        _, kh, kw, fc = require_rank(graph, op.inputs[1], (4,), "filter")
        o = op.options
        for key in ("stride_h", "stride_w", "dilation_h", "dilation_w"):
            if not 1 <= o[key] <= window.MAX_WINDOW:
                raise OpError(f"has {key} {o[key]}")
        oh, pad_h = window.compute_padding(o["padding"], h, kh, o["stride_h"], o["dilation_h"])
        ow, pad_w = window.compute_padding(o["padding"], w, kw, o["stride_w"], o["dilation_w"])
        if oh < 1 or ow < 1:
            raise OpError(f"filter {kh}x{kw} does not fit the {h}x{w} input", op.inputs[1])
        if max(pad_h, pad_w) > window.MAX_WINDOW:
            raise OpError(f"pads {max(pad_h, pad_w)}, beyond TFLM's int16 padding", op.inputs[1])
        return n, oh, ow, self.output_channels(graph, op)

    def output_channels(self, graph: Graph, op: Op) -> int:
        raise NotImplementedError

    def prepare(self, graph: Graph, op: Op) -> ConvParams:
        inp, filt, out = (graph.tensor(i) for i in (op.inputs[0], op.inputs[1], op.outputs[0]))
        o = op.options
        _, kh, kw, _ = filt.shape
        _, pad_h = window.compute_padding(o["padding"], inp.shape[1], kh, o["stride_h"], o["dilation_h"])
        _, pad_w = window.compute_padding(o["padding"], inp.shape[2], kw, o["stride_w"], o["dilation_w"])
        mult, shift = channel_multipliers(graph, op, out.shape[-1])
        act_min, act_max = activation_range(o["activation"], graph, op.outputs[0])
        return ConvParams(-zero_point(inp), zero_point(out), mult, shift, act_min, act_max, o["stride_h"],
                          o["stride_w"], o["dilation_h"], o["dilation_w"], pad_h, pad_w,
                          o.get("depth_multiplier", 1))

    def run(self, graph: Graph, op: Op, p: ConvParams, x: np.ndarray) -> np.ndarray:
        filt = graph.tensor(op.inputs[1]).data
        out_shape = graph.tensor(op.outputs[0]).shape
        _, kh, kw, cin = filt.shape
        ftype = _exact_float(128 + abs(p.input_offset), filt, kh * kw * (1 if self.depthwise else cin))
        xo = x.astype(ftype) + ftype(p.input_offset)  # padding contributes 0, as TFLM skips it
        if self.depthwise and p.depth_multiplier > 1:
            xo = np.repeat(xo, p.depth_multiplier, axis=-1)  # output channel c reads input c // dm
        taps = window.tap_views(xo, (kh, kw), (p.stride_h, p.stride_w), (p.dilation_h, p.dilation_w),
                                (p.pad_h, p.pad_w), out_shape[1:3], 0)
        if self.depthwise:
            w = filt.reshape(kh * kw, -1).astype(ftype)
            acc = taps[0] * w[0]
            for tap, wt in zip(taps[1:], w[1:]):
                acc += tap * wt
        else:  # im2col: one matrix product over (ky, kx, c), the filter's own layout
            cols = taps[0] if len(taps) == 1 else np.concatenate(taps, axis=-1)
            acc = cols @ filt.reshape(filt.shape[0], -1).T.astype(ftype)
        acc = acc.astype(np.int64)
        if has_input(op, 2):
            acc += graph.tensor(op.inputs[2]).data
        return requantize(acc, p.multiplier, p.shift, p.output_offset, p.act_min, p.act_max)

    # ---- lowering

    def window(self, graph: Graph, op: Op, p: ConvParams) -> dict[str, object]:
        """The at_window_t of the call: where its filter windows fall in the input."""
        (_, in_h, in_w, in_c), (_, out_h, out_w, _) = (graph.tensor(op.inputs[0]).shape,
                                                       graph.tensor(op.outputs[0]).shape)
        _, filter_h, filter_w, _ = graph.tensor(op.inputs[1]).shape
        repeat = p.depth_multiplier if self.depthwise else 1
        # one filter row of adjacent columns, each input channel once: a window inside the input is
        # already laid out as the filter reads it
        in_place = filter_h == 1 and (filter_w == 1 or p.dilation_w == 1) and repeat == 1
        return dict(in_h=in_h, in_w=in_w, in_c=in_c, filter_h=filter_h, filter_w=filter_w,
                    stride_h=p.stride_h, stride_w=p.stride_w, dilation_h=p.dilation_h,
                    dilation_w=p.dilation_w, pad_h=p.pad_h, pad_w=p.pad_w,
                    inside_y=window.inside(in_h, out_h, filter_h, p.stride_h, p.dilation_h, p.pad_h),
                    inside_x=window.inside(in_w, out_w, filter_w, p.stride_w, p.dilation_w, p.pad_w),
                    zero_point=-p.input_offset, repeat=repeat, in_place=int(in_place))

    # the mve_* terms that count four- (conv) or eight-lane (depthwise) requantizations
    mve_requantizations: ClassVar[tuple[str, ...]] = ("mve_run_blocks", "mve_block_channels", "mve_groups")

    def mve_work(self, win: dict, n: int, out_h: int, out_w: int, out_c: int, p: ConvParams) -> dict[str, int]:
        """The Helium kernel's loop counts (terms mve_*: the cortex-m55 table's)."""
        mode = mve_mode(p.shift, p.act_min, p.output_offset)
        work = (mve_depthwise_work(win, n, out_h, out_w, out_c, mode == "any") if self.depthwise
                else mve_conv_work(win, n, out_h, out_w, out_c, mode == "any", p.reverse))
        # the rounding fix-up on negative lanes, in every requantization outside mode "relu"
        work["mve_fixups"] = 0 if mode == "relu" else sum(work[t] for t in self.mve_requantizations)
        return work

    def m0_rest_macs(self, positions: int, out_c: int, taps: int, in_c: int) -> int:
        """MACs of the output channels the Cortex-M0+ kernels (cortex-m0plus/) sum one at a time:
        past the last block of four filters (conv); depthwise, every channel of a chunk (of up to
        M0_CHUNK channels) of odd size, the last chunk where out_c is odd."""
        if self.depthwise:
            return positions * (out_c % M0_CHUNK) * taps if out_c % 2 else 0
        return positions * (out_c % 4) * taps * in_c

    def lower(self, graph: Graph, index: int, op: Op, p: ConvParams) -> tuple[KernelCall, ...]:
        inp, out = op.inputs[0], op.outputs[0]
        n, out_h, out_w, out_c = graph.tensor(out).shape
        win = self.window(graph, op, p)
        sharing = self.in_place(win, inp, n, out_h, out_w, out_c, p.may_reverse)
        if sharing.pop("reverse", False):
            p = replace(p, reverse=True)
        weights = (weight_storage(graph, op.inputs[1], "filter"),)  # the bias is in the channel table
        taps = win["filter_h"] * win["filter_w"]
        tap_bytes = win["in_c"] * win["repeat"]
        # Windows gathered into scratch (at_window_s8): every position unless read in place, and
        # then those that touch the padding. Bytes a gathered tap fills (memset) or copies.
        rows = window.taps_inside(win["in_h"], out_h, win["filter_h"], p.stride_h, p.dilation_h, p.pad_h)
        cols = window.taps_inside(win["in_w"], out_w, win["filter_w"], p.stride_w, p.dilation_w, p.pad_w)
        inside_taps = np.outer(rows, cols)
        gathered = np.ones((out_h, out_w), dtype=bool)
        if win["in_place"]:
            (y0, y1), (x0, x1) = win["inside_y"], win["inside_x"]
            gathered[y0:y1, x0:x1] = False
        gathers = n * int(gathered.sum())
        copied_taps = n * int(inside_taps[gathered].sum())
        copy_bytes = copied_taps * tap_bytes
        call = KernelCall(
            op=index, kind=op.kind, name=f"op{index}", symbol=REVERSE if p.reverse else self.symbol,
            source=f"{self.symbol}.c",
            inputs=(inp,), outputs=(out,),
            dims=frozen_map(batches=n, in_h=win["in_h"], in_w=win["in_w"], in_c=win["in_c"], out_h=out_h,
                            out_w=out_w, out_c=out_c, filter_h=win["filter_h"], filter_w=win["filter_w"],
                            depth_multiplier=win["repeat"]),
            weights=weights,
            scratch_bytes=self.scratch_bytes(win, out_h, out_w),
            scratch_symbol=f"{self.symbol}_get_buffer_size",
            macs=graph.tensor(out).size * taps * (1 if self.depthwise else win["in_c"]),
            work=frozen_map(calls=1, **output_work(graph.tensor(out).size, p.act_min, p.output_offset),
                            positions=n * out_h * out_w,
                            gathers=gathers, gather_taps=gathers * taps,
                            fill_bytes=gathers * taps * tap_bytes - copy_bytes,
                            copy_bytes=copy_bytes if win["repeat"] == 1 else 0,
                            repeat_bytes=copy_bytes if win["repeat"] > 1 else 0,
                            repeat_channels=copied_taps * win["in_c"] if win["repeat"] > 1 else 0,
                            m0_rest_macs=self.m0_rest_macs(n * out_h * out_w, out_c, taps, win["in_c"]),
                            **self.mve_work(win, n, out_h, out_w, out_c, p)),
            const_bytes=12 * out_c,  # at_channel_t per output channel
            params=p,
            **sharing,
        )
        return (call,)

    def in_place(self, win: dict[str, object], inp: int, batches: int, out_h: int, out_w: int,
                 out_c: int, may_reverse: bool) -> dict[str, object]:
        """The output may overwrite the input if it starts far enough before it
        (window.overwrite_lead): the kernels write pixels in row-major order, a few at a time, each
        from its own window (at_kernels.h). A depthwise convolution of depth multiplier 1 computes
        each channel from the same input channel and needs only whole pixels of lead (TinyEngine's
        in-place depthwise, without its per-channel buffer). With a depth multiplier above 1 only up
        to MVE_GROUP output channels: the Helium kernel runs channel groups over all pixels, so only
        a single group writes whole pixels in order."""
        if batches != 1 or (self.depthwise and win["repeat"] != 1 and out_c > MVE_GROUP):
            return {}
        in_hw, out_hw = (win["in_h"], win["in_w"]), (out_h, out_w)
        stride, pad = (win["stride_h"], win["stride_w"]), (win["pad_h"], win["pad_w"])
        channel_local = self.depthwise and win["repeat"] == 1
        rereads = window.helium_rereads(out_w, win["inside_y"], win["inside_x"]) if channel_local else ()
        lead = window.overwrite_lead(in_hw, out_hw, stride, pad, win["in_c"], out_c, channel_local,
                                     rereads=rereads)
        if not self.depthwise and one_run(win, out_h, out_w):  # or last first, from `lag` after the input
            lag = window.reverse_lag(in_hw, out_hw, stride, pad, (win["filter_h"], win["filter_w"]),
                                     (win["dilation_h"], win["dilation_w"]), win["in_c"], out_c)
            in_bytes, out_bytes = in_hw[0] * in_hw[1] * win["in_c"], out_h * out_w * out_c
            # an output larger than its input then grows upwards from it, where a forward one
            # would start far below: in a chain of such pairs the arena does not drift down
            if may_reverse and out_bytes > in_bytes:
                return dict(overwrites=(inp,), overwrite_lead=-lag, reverse=True)
        # more lead moves every write further behind the reads; a channel-local kernel's by whole
        # pixels (the Helium kernel's channel groups each run over all pixels)
        step = math.lcm(win["in_c"], 4) if channel_local else 4
        return dict(overwrites=(inp,), overwrite_lead=lead, lead_step=step)

    @staticmethod
    def scratch_bytes(win: dict[str, object], out_h: int, out_w: int) -> int:
        """at_conv_s8_get_buffer_size / at_depthwise_conv_s8_get_buffer_size: one gathered window,
        none if every window is read in place."""
        everywhere = tuple(win["inside_y"]) == (0, out_h) and tuple(win["inside_x"]) == (0, out_w)
        if win["in_place"] and everywhere:
            return 0
        return win["filter_h"] * win["filter_w"] * win["in_c"] * win["repeat"]

    def filter_at_a_time(self, graph: Graph, call: KernelCall) -> KernelCall | None:
        """A convolution (forward, one batch; not depthwise, whose filters are not the rows of
        its weights) whose weights' storage decodes one output channel's filter on its own: per
        group of FILTERS_PER_PASS channels (fewer where out_c is not a multiple), their filters
        decoded into scratch, the kernel for those channels alone into a plane of out_h x out_w
        x group bytes (the call's scratch, the window after it), then copied into the output's
        channels. Groups of four keep the M0+ kernel's four filters per load of an input byte
        (one channel at a time sums every MAC on its own: twice the cycles). Every group reads
        the whole input, so the output does not overwrite it."""
        w, p, d = call.weights[0], call.params, call.dims
        if (self.depthwise or call.symbol != self.symbol or w.format != "decoded" or not w.encoded.per_row
                or d["batches"] != 1):
            return None
        op, out_c, plane = graph.ops[call.op], d["out_c"], d["out_h"] * d["out_w"]
        group = filters_per_pass(out_c)
        passes = out_c // group
        win, taps = self.window(graph, op, p), d["filter_h"] * d["filter_w"]
        one = {**{k: v * passes for k, v in call.work.items() if k not in ("outputs", "relu_outputs")},
               **output_work(plane * out_c, p.act_min, p.output_offset),
               "m0_rest_macs": passes * self.m0_rest_macs(plane, group, taps, d["in_c"]),
               **{k: v * passes for k, v in self.mve_work(win, 1, d["out_h"], d["out_w"], group, p).items()}}
        return replace(call, weights=(replace(w, format="decoded_row"),), overwrites=(), overwrite_lead=0,
                       dims=frozen_map(**d, filters_per_pass=group),
                       scratch_bytes=-(-plane * group // 4) * 4 + call.scratch_bytes, work=frozen_map(**one))

    def emit(self, c, call: KernelCall) -> None:
        if call.weights and call.weights[0].format == "decoded_row":
            self.emit_by_filter(c, call)
            return
        if isinstance(call.params, ConvMaxPoolParams):
            c.struct("at_conv_max_pool_params_t", call.name, dict(
                conv=self.params_struct(c, call, call.params.conv), pool=pool_fields(call.params.pool),
                pool_sums=int(call.work.get("m0_pool_sums", 0) > 0)))
        else:
            c.struct(f"{self.symbol[:-3]}_params_t", call.name, self.params_struct(c, call, call.params))
        c.call(call, c.ref(c.graph.ops[call.op].inputs[0]), c.ref(call.outputs[0]), c.scratch(call))

    def emit_by_filter(self, c, call: KernelCall) -> None:
        """filter_at_a_time's loop: per group of channels, decode their filters, run the kernel
        for them alone into the plane, copy the plane into the output's channels."""
        op, d = c.graph.ops[call.op], call.dims
        out_c, plane, group = d["out_c"], d["out_h"] * d["out_w"], d["filters_per_pass"]
        fields = self.params_struct(c, call, call.params)
        c.struct(f"{self.symbol[:-3]}_params_t", call.name, {**fields, "out_c": group}, const=False)
        scratch, out = c.scratch(call), c.ref(call.outputs[0])
        c.line("    {")
        c.line("        uint32_t channel, i, k;")
        c.line(f"        for (channel = 0; channel < {out_c}u; channel += {group}u) {{")
        c.body += c.decode_filters(call, call.weights[0], "channel", group, "k", " " * 12)
        c.line("            {")
        c.line(f"                int8_t *const plane = {scratch};")
        c.line(f"                {call.name}.channels = {fields['channels']} + channel; /* these channels */")
        c.call(call, c.ref(op.inputs[0]), "plane", f"plane + {-(-plane * group // 4) * 4}", indent=16)
        c.line(f"                for (i = 0; i < {plane}u; ++i) {{")
        c.line(f"                    for (k = 0; k < {group}u; ++k) {{")
        c.line(f"                        {out}[i * {out_c}u + channel + k] = plane[i * {group}u + k];")
        c.line("                    }")
        c.line("                }")
        c.line("            }")
        c.line("        }")
        c.line("    }")

    def params_struct(self, c, call: KernelCall, p: ConvParams) -> dict[str, object]:
        """The fields of the call's at_conv_params_t (at_depthwise_conv_params_t); declares its
        filter and channel table."""
        g, op = c.graph, c.graph.ops[call.op]
        filt = g.tensor(op.inputs[1]).data.astype(np.int64)
        out_c = call.dims["out_c"]
        bias = g.tensor(op.inputs[2]).data if has_input(op, 2) else np.zeros(out_c, dtype=np.int64)
        by_channel = filt.reshape(-1, out_c).T if self.depthwise else filt.reshape(out_c, -1)
        filter_name = c.weight(call, call.weights[0])
        channels = c.channels(f"{call.name}_channels", channel_rows(bias, by_channel, p.input_offset),
                              p.multiplier, p.shift)
        return dict(
            batches=call.dims["batches"], out_h=call.dims["out_h"], out_w=call.dims["out_w"], out_c=out_c,
            win=self.window(g, op, p), output_quant=(p.output_offset, p.act_min, p.act_max),
            filter=filter_name, channels=channels)


class Conv2D(_Conv):
    kind = "CONV_2D"
    tflm_kernel = "reference_integer_ops::ConvPerChannel"
    depthwise = False
    symbol = "at_conv_s8"
    options_type = "Conv2DOptions"

    def output_channels(self, graph: Graph, op: Op) -> int:
        in_c, (out_c, _, _, depth) = graph.tensor(op.inputs[0]).shape[3], graph.tensor(op.inputs[1]).shape
        if depth != in_c:
            raise OpError(f"is a grouped convolution ({in_c} input channels, filter depth {depth})", op.inputs[1])
        return out_c

    def check(self, graph: Graph, op: Op) -> None:
        check_filter_quantization(graph, op, graph.tensor(op.inputs[1]).shape[0], axis=0)
        filt = graph.tensor(op.inputs[1])
        check_accumulator(graph, op, filt.data.reshape(filt.shape[0], -1))


class DepthwiseConv2D(_Conv):
    kind = "DEPTHWISE_CONV_2D"
    tflm_kernel = "reference_integer_ops::DepthwiseConvPerChannel"
    depthwise = True
    symbol = "at_depthwise_conv_s8"
    mve_requantizations = ("mve_pairs", "mve_pixels")
    options_type = "DepthwiseConv2DOptions"
    # the bias is required: TFLM's depthwise kernel crashes on an absent one (index -1)
    operands = (Operand("input"), Operand("filter", constant=True), Operand("bias", ("int32",), constant=True))

    def parse_options(self, o, graph: Graph, inputs: tuple[int, ...]) -> dict:
        return {**super().parse_options(o, graph, inputs), "depth_multiplier": int(o.depthMultiplier)}

    def output_channels(self, graph: Graph, op: Op) -> int:
        in_c, (one, _, _, out_c) = graph.tensor(op.inputs[0]).shape[3], graph.tensor(op.inputs[1]).shape
        if one != 1:
            raise OpError(f"filter has {one} in its first dimension, expected 1", op.inputs[1])
        # TFLM loops over the option's depth multiplier: it must be what the shapes say
        if op.options["depth_multiplier"] < 1 or in_c * op.options["depth_multiplier"] != out_c:
            raise OpError(f"has depth multiplier {op.options['depth_multiplier']} for {in_c} input and "
                          f"{out_c} output channels", op.inputs[1])
        return out_c

    def check(self, graph: Graph, op: Op) -> None:
        check_filter_quantization(graph, op, graph.tensor(op.inputs[1]).shape[3], axis=3)
        filt = graph.tensor(op.inputs[1])
        check_accumulator(graph, op, filt.data.reshape(-1, filt.shape[3]).T)
