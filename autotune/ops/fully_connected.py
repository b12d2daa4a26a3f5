"""FULLY_CONNECTED, int8 (TFLM reference_integer_ops::FullyConnected and
FullyConnectedPerChannel; C: at_fully_connected_s8.c)."""
from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as fb

from autotune.ir.graph import Graph, Op
from autotune.ir.kernel_plan import KernelCall, frozen_map
from autotune.ops.base import (OpDef, OpError, Operand, activation_range, bias_type, fused_activation, has_input,
                               require_rank, weight_storage)
from autotune.ops.conv import (_exact_float, channel_multipliers, channel_rows, check_accumulator, filters_per_pass,
                               mve_rows_work, output_work, requantize)


def grouped_tails(rows: int, depth: int, units: int, p: "FullyConnectedParams") -> int:
    """0, or 1 + the Helium requantization mode (at_mve.h: AT_MVE_RELU 0, AT_MVE_RIGHT 1) of a layer
    whose filter and channel table the generated model stores in the grouped-tails layout under
    Helium (at_kernels.h, AT_GROUPED_TAILS): one input row of 20 or 24 bytes (16 + a tail of 4 or
    8), units a multiple of 4, filter zero point 0, and a mode without left shifts (every shift
    below 0, or at most 0 under a ReLU-like clamp), which the kernel's tails layers take whatever
    the data."""
    if rows != 1 or depth not in (20, 24) or units % 4 or p.filter_offset:
        return 0
    top = int(np.max(p.shift))
    if top <= 0 and p.act_min >= p.output_offset:
        return 1
    return 2 if top < 0 else 0


# at_fully_connected_params_t.path under Helium: the function the kernel's entry branches to
MVE_PATHS = ("other", "short_layer", "at_mve_long_run", "tails_4_relu", "tails_4_right", "tails_8_relu",
             "tails_8_right")


def mve_path(rows: int, depth: int, units: int, filter_offset: int, grouped: int) -> int:
    """The Helium kernel's path (MVE_PATHS) for these dimensions, as mve_dense_work counts it: a
    grouped-tails layer its variant by tail and mode; one input row of whole groups of four
    units with filters of zero point 0 the short layer (rows of at most 32 bytes) or the long
    one (a multiple of 16 bytes); any other call `other`."""
    if grouped:
        return (3 if depth == 20 else 5) + grouped - 1
    if rows == 1 and filter_offset == 0 and units % 4 == 0:
        if depth <= 32:
            return 1
        if depth % 16 == 0:
            return 2
    return 0


def grouped_rows(filt: np.ndarray) -> np.ndarray:
    """A [units][16 + t] filter in the grouped-tails layout: per group of four rows their first 16
    bytes each, then their four tails of t bytes."""
    units, depth = filt.shape
    groups = filt.reshape(units // 4, 4, depth)
    return np.concatenate([groups[:, :, :16].reshape(units // 4, -1), groups[:, :, 16:].reshape(units // 4, -1)],
                          axis=1).reshape(-1)


def mve_dense_work(rows: int, depth: int, units: int, filter_offset: int = 0, grouped: int = 0) -> dict[str, int]:
    """Loop counts of the Helium FULLY_CONNECTED (cortex-m55-mve/at_fully_connected_s8.c). Filters
    of zero point 0: input rows of at most 32 bytes take whole groups of four units (unless one
    group and a rest) through short_layer (per call mve_short_runs, per group
    mve_short_groups and its 16-byte chunks mve_short_chunks); one input row of a multiple of 16
    bytes above 32 and whole groups at_mve_long_run (mve_long_runs, mve_long_groups,
    mve_long_chunks). The other units at_mve_rows (mve_groups, mve_group_chunks). The kernel's
    entry tail-calls a one-row layer of whole groups, short or long; any other call goes through
    an out-of-line function with a frame of its own (mve_other_calls). A grouped-tails layer
    (`grouped`, from grouped_tails) takes tails_layer: per call mve_grouped_runs, per group after
    the first mve_grouped_groups (the first group's dot products and the last's requantization
    are the run's own), in mode AT_MVE_RIGHT besides mve_grouped_fixups."""
    if grouped:
        return dict(mve_grouped_runs=1, mve_grouped_groups=units // 4 - 1,
                    mve_grouped_fixups=units // 4 if grouped == 2 else 0)
    short = depth <= 32 and filter_offset == 0 and (units % 4 == 0 or units >= 8)
    whole = units // 4 * 4 if short else 0
    chunks = -(-depth // 16)
    long = rows == 1 and whole < units and depth % 16 == 0 and filter_offset == 0 and units % 4 == 0
    direct = long or (rows == 1 and 0 < whole == units)
    work = dict(mve_short_runs=rows * (whole > 0), mve_short_groups=rows * whole // 4,
                mve_short_chunks=rows * whole // 4 * chunks, mve_long_runs=int(long),
                mve_long_groups=units // 4 if long else 0, mve_long_chunks=units // 4 * chunks if long else 0,
                mve_other_calls=int(not direct))
    return {**work, **mve_rows_work(0 if long or whole == units else rows, depth, units - whole)}


@dataclass(frozen=True, eq=False)
class FullyConnectedParams:
    input_offset: int
    filter_offset: int  # -filter zero point (0: int8 weights are symmetric)
    output_offset: int
    multiplier: np.ndarray  # int32, length 1 (per tensor) or one per output unit
    shift: np.ndarray
    act_min: int
    act_max: int


class FullyConnected(OpDef):
    kind = "FULLY_CONNECTED"
    tflm_kernel = "reference_integer_ops::FullyConnected / FullyConnectedPerChannel"
    operands = (Operand("input"), Operand("filter", constant=True),
                Operand("bias", ("int32",), constant=True, optional=True))
    symbol = "at_fully_connected_s8"
    options_type = "FullyConnectedOptions"

    def parse_options(self, o, graph: Graph, inputs: tuple[int, ...]) -> dict:
        if o is not None and o.weightsFormat != fb.FullyConnectedOptionsWeightsFormat.DEFAULT:
            raise OpError("uses shuffled weights")
        bias_type(o)
        return dict(activation=fused_activation(o), keep_num_dims=bool(o.keepNumDims) if o is not None else False)

    def output_shape(self, graph: Graph, op: Op) -> tuple[int, ...]:
        units, depth = require_rank(graph, op.inputs[1], (2,), "filter")
        inp = graph.tensor(op.inputs[0])
        if depth < 1 or inp.size % depth:
            raise OpError(f"input of {inp.size} values is not a whole number of rows of {depth}", op.inputs[0])
        if op.options["keep_num_dims"]:
            if inp.shape[-1] != depth:
                raise OpError(f"keeps its dimensions but the input's last is {inp.shape[-1]}, not {depth}",
                              op.inputs[0])
            return inp.shape[:-1] + (units,)
        return inp.size // depth, units

    def check(self, graph: Graph, op: Op) -> None:
        units = graph.tensor(op.inputs[1]).shape[0]
        q = graph.tensor(op.inputs[1]).quant
        if len(q.scale) not in (1, units) or len(q.zero_point) != len(q.scale) or (q.per_channel and q.axis != 0):
            raise OpError(f"filter has {len(q.scale)} scales along dimension {q.axis} for {units} units",
                          op.inputs[1])
        if q.per_channel and any(z != 0 for z in q.zero_point):
            raise OpError("per-channel filter with a zero point other than 0", op.inputs[1])
        if has_input(op, 2) and graph.tensor(op.inputs[2]).shape != (units,):
            raise OpError(f"bias has shape {graph.tensor(op.inputs[2]).shape}, expected ({units},)", op.inputs[2])
        filt = graph.tensor(op.inputs[1])
        check_accumulator(graph, op, filt.data.astype(np.int64) - filt.quant.zero_point[0])

    def prepare(self, graph: Graph, op: Op) -> FullyConnectedParams:
        inp, filt, out = (graph.tensor(i) for i in (op.inputs[0], op.inputs[1], op.outputs[0]))
        channels = out.shape[-1] if filt.quant.per_channel else 1
        mult, shift = channel_multipliers(graph, op, channels)
        act_min, act_max = activation_range(op.options["activation"], graph, op.outputs[0])
        return FullyConnectedParams(-inp.quant.zero_point[0], -filt.quant.zero_point[0], out.quant.zero_point[0],
                                    mult, shift, act_min, act_max)

    def run(self, graph: Graph, op: Op, p: FullyConnectedParams, x: np.ndarray) -> np.ndarray:
        filt = graph.tensor(op.inputs[1]).data.astype(np.int32) + p.filter_offset
        n = x.shape[0]
        ftype = _exact_float(128 + abs(p.input_offset), filt, filt.shape[1])
        rows = x.reshape(n, -1, filt.shape[1]).astype(ftype) + ftype(p.input_offset)
        acc = (rows @ filt.T.astype(ftype)).astype(np.int64)
        if has_input(op, 2):
            acc += graph.tensor(op.inputs[2]).data
        out = requantize(acc, p.multiplier, p.shift, p.output_offset, p.act_min, p.act_max)
        return out.reshape((n,) + graph.tensor(op.outputs[0]).shape[1:])

    def lower(self, graph: Graph, index: int, op: Op, p: FullyConnectedParams) -> tuple[KernelCall, ...]:
        units, depth = graph.tensor(op.inputs[1]).shape
        rows = graph.tensor(op.inputs[0]).size // depth
        storage = weight_storage(graph, op.inputs[1], "filter")
        grouped = grouped_tails(rows, depth, units, p) if storage.format == "dense_int8" else 0
        if grouped:
            storage = replace(storage, format="grouped_int8")
        return (KernelCall(
            op=index, kind=op.kind, name=f"op{index}", symbol=self.symbol, source=f"{self.symbol}.c",
            inputs=(op.inputs[0],), outputs=(op.outputs[0],),
            dims=frozen_map(batches=rows, accum_depth=depth, out_depth=units),
            weights=(storage,),  # the bias is in the channel table
            macs=rows * units * depth,
            work=frozen_map(calls=1, **output_work(rows * units, p.act_min, p.output_offset), rows=rows,
                            m0_rest_macs=rows * (units % 4) * depth,  # past the M0+ kernel's blocks of four
                            **mve_dense_work(rows, depth, units, p.filter_offset, grouped)),
            const_bytes=12 * units, params=p),)

    def filter_at_a_time(self, graph: Graph, call: KernelCall) -> KernelCall | None:
        """One input row (batches 1) and weights whose storage decodes one unit's row on its own:
        per group of units (conv.filters_per_pass: four, the M0+ kernel's block), their rows
        decoded into scratch, then the kernel for those units alone. (The output never overlaps
        the input: every unit reads the whole input.)"""
        w, p = call.weights[0], call.params
        if w.format != "decoded" or call.dims["batches"] != 1 or not w.encoded.per_row:
            return None
        units, depth = call.dims["out_depth"], call.dims["accum_depth"]
        group = filters_per_pass(units)
        passes = units // group
        work = {k: passes * v for k, v in mve_dense_work(1, depth, group).items()}
        return replace(call, weights=(replace(w, format="decoded_row"),),
                       dims=frozen_map(**call.dims, filters_per_pass=group), work=frozen_map(
            calls=passes, **output_work(units, p.act_min, p.output_offset), rows=passes,
            m0_rest_macs=passes * (group % 4) * depth, **work))

    def emit(self, c, call: KernelCall) -> None:
        g, op, p = c.graph, c.graph.ops[call.op], call.params
        filt = g.tensor(op.inputs[1]).data.astype(np.int64)
        units = call.dims["out_depth"]
        bias = g.tensor(op.inputs[2]).data if has_input(op, 2) else np.zeros(units, dtype=np.int64)
        filter_name = c.weight(call, call.weights[0],
                               grouped_rows(filt) if call.weights[0].format == "grouped_int8" else None)
        grouped = grouped_tails(call.dims["batches"], call.dims["accum_depth"], units, p) \
            if call.weights[0].format == "grouped_int8" else 0
        channels = c.channels(f"{call.name}_channels", channel_rows(bias, filt, p.input_offset),
                              np.broadcast_to(p.multiplier, units), np.broadcast_to(p.shift, units),
                              grouped=grouped > 0)
        by_unit = call.weights[0].format == "decoded_row"
        group = call.dims.get("filters_per_pass", 1)
        rows, depth, out_depth = call.dims["batches"], call.dims["accum_depth"], group if by_unit else units
        c.struct("at_fully_connected_params_t", call.name, dict(
            batches=rows, accum_depth=depth, out_depth=out_depth,
            input_offset=p.input_offset, filter_offset=p.filter_offset,
            output_quant=(p.output_offset, p.act_min, p.act_max), filter=filter_name, channels=channels),
            const=not by_unit, helium=dict(path=mve_path(rows, depth, out_depth, p.filter_offset, grouped)))
        if not by_unit:
            c.call(call, c.ref(op.inputs[0]), c.ref(op.outputs[0]))
            return
        # a pass of `group` units: their rows into the scratch, then the kernel for them alone
        # (the struct in RAM, out_depth `group`, its channel table moved along)
        c.line("    {")
        c.line("        uint32_t unit, k;")
        c.line(f"        for (unit = 0; unit < {units}u; unit += {group}u) {{")
        c.body += c.decode_filters(call, call.weights[0], "unit", group, "k", " " * 12)
        c.line(f"            {call.name}.channels = {channels} + unit;")
        c.call(call, c.ref(op.inputs[0]), f"{c.ref(op.outputs[0])} + unit", indent=12)
        c.line("        }")
        c.line("    }")
