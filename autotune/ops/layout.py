"""Ops that move int8 values without arithmetic: RESHAPE (TFLM reshape.cc), PAD
(reference_ops::Pad; C: at_pad_s8.c), CONCATENATION (reference_ops::Concatenation;
C: at_concat_s8.c), STRIDED_SLICE (reference_ops::StridedSlice) and TRANSPOSE
(reference_ops::Transpose), both one gather through strides (C: at_gather_s8.c)."""
from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np

from autotune.ir.graph import Graph, Op
from autotune.ir.kernel_plan import KernelCall, frozen_map
from autotune.ops import fixedpoint as fp
from autotune.ops.base import OpDef, OpError, Operand, fused_activation, has_input, zero_point
from autotune.ops.elementwise import MAX_RANK, pad4


@dataclass(frozen=True)
class ReshapeParams:
    shape: tuple[int, ...]


def _reads_graph_input(graph: Graph, t: int) -> bool:
    """Tensor t is the graph's input, or a reshape of it (the same memory)."""
    while t not in graph.inputs:
        producer = next((op for op in graph.ops if t in op.outputs), None)
        if producer is None or producer.kind != "RESHAPE":
            return False
        t = producer.inputs[0]
    return True


class Reshape(OpDef):
    kind = "RESHAPE"
    tflm_kernel = "reshape.cc (a copy, or nothing in place)"
    operands = (Operand("input"), Operand("shape", ("int32",), constant=True, optional=True))
    options_type = "ReshapeOptions"

    def parse_options(self, o, graph: Graph, inputs: tuple[int, ...]) -> dict:
        if len(inputs) > 1 and inputs[1] >= 0:
            new_shape = graph.tensor(inputs[1]).data
        elif o is not None and o.newShape is not None:
            new_shape = o.newShape
        else:
            return {}
        return dict(new_shape=tuple(int(d) for d in np.ravel(new_shape)))

    def output_shape(self, graph: Graph, op: Op) -> tuple[int, ...]:
        """TFLM takes the output tensor's dims, resolving one -1; the new shape, if the model
        gives one, must say the same."""
        size, out = graph.tensor(op.inputs[0]).size, graph.tensor(op.outputs[0]).shape
        new = op.options.get("new_shape")
        if new is None:
            shape = out
        else:
            if sum(d == -1 for d in new) > 1 or any(d < -1 for d in new):
                raise OpError(f"has new shape {list(new)}", op.inputs[1] if has_input(op, 1) else None)
            known = int(np.prod([d for d in new if d != -1], dtype=np.int64))
            shape = tuple(size // known if d == -1 and known else d for d in new)
        if int(np.prod(shape, dtype=np.int64)) != size:
            raise OpError(f"reshapes {size} values to {list(new or out)}")
        return shape

    def prepare(self, graph: Graph, op: Op) -> ReshapeParams:
        return ReshapeParams(graph.tensor(op.outputs[0]).shape)

    def run(self, graph: Graph, op: Op, p: ReshapeParams, x: np.ndarray) -> np.ndarray:
        return x.reshape((x.shape[0],) + p.shape[1:])

    def lower(self, graph: Graph, index: int, op: Op, p: ReshapeParams) -> tuple[KernelCall, ...]:
        src, dst = op.inputs[0], op.outputs[0]
        size = graph.tensor(dst).logical_bytes
        # The output is the input's memory, unless both are the caller's buffers: then a copy.
        if _reads_graph_input(graph, src) and dst in graph.outputs:
            return (KernelCall(op=index, kind=op.kind, name=f"op{index}", symbol="memcpy", source=None,
                               inputs=(src,), outputs=(dst,), dims=frozen_map(bytes=size),
                               work=frozen_map(calls=1, bytes=size), params=p),)
        return (KernelCall(op=index, kind=op.kind, name=f"op{index}", symbol=None, source=None,
                           inputs=(src,), outputs=(dst,), dims=frozen_map(bytes=size), alias=True, params=p),)

    def emit(self, c, call: KernelCall) -> None:
        if call.alias:
            c.line("    /* no code: the output is the input's memory */")
            return
        c.line(f"    memcpy({c.ref(call.outputs[0])}, {c.ref(call.inputs[0])}, {call.dims['bytes']});")


@dataclass(frozen=True)
class PadParams:
    paddings: tuple[tuple[int, int], ...]  # (before, after) per dimension
    pad_value: int  # the output zero point


class Pad(OpDef):
    kind = "PAD"
    tflm_kernel = "reference_ops::Pad"
    operands = (Operand("input"), Operand("paddings", ("int32",), constant=True))

    def output_shape(self, graph: Graph, op: Op) -> tuple[int, ...]:
        shape, paddings = graph.tensor(op.inputs[0]).shape, graph.tensor(op.inputs[1]).data
        if len(shape) > MAX_RANK:
            raise OpError(f"input has rank {len(shape)}, above {MAX_RANK}", op.inputs[0])
        if paddings.shape != (len(shape), 2) or (paddings < 0).any() or (paddings > 1 << 20).any():
            raise OpError(f"has paddings {paddings.tolist()} for a rank-{len(shape)} input", op.inputs[1])
        if paddings[0].any():
            raise OpError("pads the batch dimension", op.inputs[1])
        return tuple(int(n + b + a) for n, (b, a) in zip(shape, paddings))

    def prepare(self, graph: Graph, op: Op) -> PadParams:
        paddings = graph.tensor(op.inputs[1]).data
        return PadParams(tuple((int(b), int(a)) for b, a in paddings), zero_point(graph.tensor(op.outputs[0])))

    def run(self, graph: Graph, op: Op, p: PadParams, x: np.ndarray) -> np.ndarray:
        return np.pad(x, ((0, 0),) + p.paddings[1:], constant_values=p.pad_value)

    def lower(self, graph: Graph, index: int, op: Op, p: PadParams) -> tuple[KernelCall, ...]:
        out = pad4(graph.tensor(op.outputs[0]).shape)
        return (KernelCall(op=index, kind=op.kind, name=f"op{index}", symbol="at_pad_s8", source="at_pad_s8.c",
                           inputs=(op.inputs[0],), outputs=(op.outputs[0],),
                           dims=frozen_map(**dict(zip(("d0", "d1", "d2", "d3"), out))),
                           work=frozen_map(calls=1, bytes=int(np.prod(out)), rows=int(np.prod(out[:3]))),
                           params=p),)

    def emit(self, c, call: KernelCall) -> None:
        op, p = c.graph.ops[call.op], call.params
        inp, out = c.graph.tensor(op.inputs[0]).shape, c.graph.tensor(op.outputs[0]).shape
        before = (0,) * (MAX_RANK - len(inp)) + tuple(b for b, _ in p.paddings)
        c.struct("at_pad_params_t", call.name, dict(in_dims=pad4(inp), out_dims=pad4(out), before=before,
                                                     pad_value=p.pad_value))
        c.call(call, c.ref(op.inputs[0]), c.ref(op.outputs[0]))


@dataclass(frozen=True)
class ConcatParams:
    axis: int  # non-negative; TFLM copies int8 inputs unchanged (all share one quantization)


class Concatenation(OpDef):
    kind = "CONCATENATION"
    tflm_kernel = "reference_ops::Concatenation"
    operands = (Operand("input", constant=None, variadic=True),)
    options_type = "ConcatenationOptions"

    def parse_options(self, o, graph: Graph, inputs: tuple[int, ...]) -> dict:
        if o is None:
            raise OpError("has no options")
        if fused_activation(o) != "NONE":
            raise OpError("has a fused activation")
        return dict(axis=int(o.axis), activation="NONE")

    def output_shape(self, graph: Graph, op: Op) -> tuple[int, ...]:
        shapes = [graph.tensor(t).shape for t in op.inputs]
        rank, axis = len(shapes[0]), op.options["axis"]
        if not -rank <= axis < rank or axis % rank == 0:
            raise OpError(f"has axis {axis} for rank-{rank} inputs (the batch axis is 0)")
        axis %= rank
        for t, s in zip(op.inputs, shapes):
            if len(s) != rank or s[:axis] + s[axis + 1:] != shapes[0][:axis] + shapes[0][axis + 1:]:
                raise OpError(f"input shaped {s} does not concatenate with {shapes[0]} along axis {axis}", t)
        return shapes[0][:axis] + (sum(s[axis] for s in shapes),) + shapes[0][axis + 1:]

    def check(self, graph: Graph, op: Op) -> None:
        q = graph.tensor(op.outputs[0]).quant
        for t in op.inputs:
            if (graph.tensor(t).quant.scale[0], graph.tensor(t).quant.zero_point[0]) != (q.scale[0], q.zero_point[0]):
                raise OpError("mixes quantization parameters across inputs and output", t)

    def prepare(self, graph: Graph, op: Op) -> ConcatParams:
        return ConcatParams(op.options["axis"] % len(graph.tensor(op.outputs[0]).shape))

    def run(self, graph: Graph, op: Op, p: ConcatParams, *xs: np.ndarray) -> np.ndarray:
        n = max(x.shape[0] for x in xs)  # constant operands carry the graph's batch of 1
        return np.concatenate([np.broadcast_to(x, (n,) + x.shape[1:]) for x in xs], axis=p.axis)

    def lower(self, graph: Graph, index: int, op: Op, p: ConcatParams) -> tuple[KernelCall, ...]:
        out = graph.tensor(op.outputs[0])
        outer = int(np.prod(out.shape[:p.axis]))
        return (KernelCall(op=index, kind=op.kind, name=f"op{index}", symbol="at_concat_s8",
                           source="at_concat_s8.c", inputs=op.inputs, outputs=(op.outputs[0],),
                           dims=frozen_map(outer=outer, count=len(op.inputs)),
                           work=frozen_map(calls=1, bytes=out.size, copies=outer * len(op.inputs)),
                           params=p),)

    def emit(self, c, call: KernelCall) -> None:
        op, p = c.graph.ops[call.op], call.params
        slot = call.dims.get("slot")  # a call of concat_slots: one input into its slot
        if slot in (None, 0):  # the op's parameters, once
            sizes = [int(np.prod(c.graph.tensor(t).shape[p.axis:])) for t in op.inputs]
            table = c.array("int32_t", f"{call.name}_sizes", np.array(sizes), 8)
            c.struct("at_concat_params_t", call.name, dict(outer=call.dims["outer"], count=len(sizes), sizes=table))
        if slot is not None:
            c.call(call, str(slot), c.ref(call.inputs[0]), c.ref(op.outputs[0]))
            return
        ins = ", ".join(c.ref(t) for t in op.inputs)
        c.line(f"    {{\n        const int8_t *const inputs[{len(op.inputs)}] = {{{ins}}};")
        c.call(call, "inputs", c.ref(op.outputs[0]), indent=8)
        c.line("    }")


def slot_lead(outer: int, size: int, total: int, offset: int, alignment: int = 4) -> int:
    """Bytes before its one input at which the output of a concatenation call that copies just
    that input (elements `offset` to `offset + size` of each of `outer` rows of `total`) may
    start: copied in order, element j of the input (row o, element i) lands at o * total +
    offset + i, never above where it is read from (the input from the lead on: j). Rounded up
    to `alignment`."""
    return -(-((outer - 1) * (total - size) + offset) // alignment) * alignment


def concat_slots(graph: Graph, calls: tuple[KernelCall, ...], eager: bool) -> tuple[KernelCall, ...]:
    """The calls with every CONCATENATION of several inputs split into one call per input, each
    copying its input into its slot of the output (at_concat_slot_s8). `eager`: each right
    after the call that computes its input (where the concatenation was, for an input no call
    computes), so the inputs die one by one, the first of them copying over its input from
    slot_lead bytes before it; else all where the last input is computed, that one first and
    over itself, so its input takes no bytes of its own."""
    out = list(calls)
    for call in calls:
        if call.kind != "CONCATENATION" or len(call.inputs) < 2:
            continue
        p, outer = call.params, call.dims["outer"]
        sizes = [int(np.prod(graph.tensor(t).shape[p.axis:])) for t in call.inputs]
        at = next(i for i, c in enumerate(out) if c is call)
        del out[at]
        after = {t: max((i + 1 for i, c in enumerate(out[:at]) if t in c.outputs), default=at) for t in call.inputs}
        computed = [k for k, t in enumerate(call.inputs) if not graph.tensor(t).is_constant]
        last = max(computed, key=lambda k: after[call.inputs[k]], default=None)
        order = sorted(range(len(sizes)), key=lambda k: (after[call.inputs[k]], k)) if eager else \
            ([last] if last is not None else []) + [k for k in range(len(sizes)) if k != last]
        first = computed and min(computed, key=order.index)
        for k in reversed(order):  # each inserted before those after it
            where = after[call.inputs[k]] if eager else (after[call.inputs[last]] if last is not None else at)
            slot = replace(call, symbol="at_concat_slot_s8", inputs=(call.inputs[k],),
                           dims=frozen_map(outer=outer, count=len(sizes), slot=k),
                           work=frozen_map(calls=1, bytes=outer * sizes[k], copies=outer))
            if computed and k == first:
                slot = replace(slot, overwrites=slot.inputs,
                               overwrite_lead=slot_lead(outer, sizes[k], sum(sizes), sum(sizes[:k])))
            out.insert(where, slot)
    return tuple(out)


def _start(begin: int, size: int, stride: int, masked: bool) -> int:
    """TFLM strided_slice StartForAxis: the first index, negative indices from the end, clamped."""
    if masked:
        begin = fp.INT32_MIN if stride > 0 else fp.INT32_MAX
    if begin < 0:
        begin += size
    return min(max(begin, 0), size) if stride > 0 else min(max(begin, -1), size - 1)


def _stop(end: int, size: int, stride: int, masked: bool) -> int:
    """TFLM strided_slice StopForAxis, for an axis that is not shrunk."""
    if masked:
        end = fp.INT32_MAX if stride > 0 else fp.INT32_MIN
    if end < 0:
        end += size
    return min(max(end, 0), size) if stride > 0 else min(max(end, -1), size - 1)


@dataclass(frozen=True)
class StridedSliceParams:
    start: tuple[int, ...]  # per input axis
    stride: tuple[int, ...]
    count: tuple[int, ...]  # elements taken along each input axis (1 for a shrunk axis)
    shrink: tuple[bool, ...]


class StridedSlice(OpDef):
    kind = "STRIDED_SLICE"
    tflm_kernel = "reference_ops::StridedSlice"
    operands = (Operand("input"), Operand("begin", ("int32",), constant=True),
                Operand("end", ("int32",), constant=True), Operand("strides", ("int32",), constant=True))
    options_type = "StridedSliceOptions"

    def parse_options(self, o, graph: Graph, inputs: tuple[int, ...]) -> dict:
        if o is None:
            return dict(begin_mask=0, end_mask=0, shrink_axis_mask=0)
        # TFLM ignores the ellipsis and new-axis masks and the offset flag: refused, not misread
        if o.ellipsisMask or o.newAxisMask or getattr(o, "offset", False):
            raise OpError("uses an ellipsis or new-axis mask or offset indices")
        return dict(begin_mask=int(o.beginMask), end_mask=int(o.endMask), shrink_axis_mask=int(o.shrinkAxisMask))

    def slicing(self, graph: Graph, op: Op) -> StridedSliceParams:
        shape = graph.tensor(op.inputs[0]).shape
        if not 1 <= len(shape) <= MAX_RANK:
            raise OpError(f"input has rank {len(shape)}; 1 to {MAX_RANK} are supported", op.inputs[0])
        vectors = [graph.tensor(t).data for t in op.inputs[1:4]]
        for t, v in zip(op.inputs[1:4], vectors):
            if v.shape != (len(shape),):
                raise OpError(f"has {v.shape} indices for a rank-{len(shape)} input", t)
        o = op.options
        start, stride, count, shrink = [], [], [], []
        for axis, (size, b, e, s) in enumerate(zip(shape, *(v.tolist() for v in vectors))):
            if s == 0 or abs(s) > 1 << 24:
                raise OpError(f"has stride {s} on axis {axis}", op.inputs[3])
            first = _start(b, size, s, bool(o["begin_mask"] >> axis & 1))
            shrunk = bool(o["shrink_axis_mask"] >> axis & 1)
            if shrunk:
                if not 0 <= first < size:
                    raise OpError(f"takes index {b} of axis {axis}, which has {size}", op.inputs[1])
                n = 1
            else:
                n = max(0, math.ceil((_stop(e, size, s, bool(o["end_mask"] >> axis & 1)) - first) / s))
            start.append(first), stride.append(s), count.append(n), shrink.append(shrunk)
        if (start[0], count[0], shrink[0]) != (0, shape[0], False) or 0 in count:
            raise OpError(f"takes {count} elements along the axes (the batch whole, none empty)", op.inputs[1])
        return StridedSliceParams(tuple(start), tuple(stride), tuple(count), tuple(shrink))

    def output_shape(self, graph: Graph, op: Op) -> tuple[int, ...]:
        p = self.slicing(graph, op)
        return tuple(n for n, shrunk in zip(p.count, p.shrink) if not shrunk)

    def prepare(self, graph: Graph, op: Op) -> StridedSliceParams:
        return self.slicing(graph, op)

    def run(self, graph: Graph, op: Op, p: StridedSliceParams, x: np.ndarray) -> np.ndarray:
        index = tuple(slice(None) if axis == 0 else slice(first, first + n * s if first + n * s >= 0 else None, s)
                      for axis, (first, s, n) in enumerate(zip(p.start, p.stride, p.count)))
        return x[index].reshape((x.shape[0],) + graph.tensor(op.outputs[0]).shape[1:])

    def lower(self, graph: Graph, index: int, op: Op, p: StridedSliceParams) -> tuple[KernelCall, ...]:
        return (_gather_call(index, op, pad4(p.count), p, self.run(graph, op, p, _positions(graph, op))),)

    def emit(self, c, call: KernelCall) -> None:
        op, p = c.graph.ops[call.op], call.params
        strides = _row_major(pad4(c.graph.tensor(op.inputs[0]).shape))
        lead = MAX_RANK - len(p.start)
        first = (0,) * lead + p.start
        _emit_gather(c, call, int(sum(f * s for f, s in zip(first, strides))),
                     tuple(s * k for s, k in zip(strides, (1,) * lead + p.stride)))


def _positions(graph: Graph, op: Op) -> np.ndarray:
    """The op's input holding each element's own index: run through the op, it says where each
    output is read from."""
    shape = graph.tensor(op.inputs[0]).shape
    return np.arange(int(np.prod(shape, dtype=np.int64)), dtype=np.int64).reshape(shape)


def gather_lead(read: np.ndarray, alignment: int = 4) -> int:
    """Bytes before its input at which a gather's output may start, written element by element
    in order: the write of output k must miss every input element a later output reads
    (read[k] is the input element output k reads). Rounded up to `alignment`."""
    read = read.reshape(-1)
    later = np.append(np.minimum.accumulate(read[::-1])[::-1][1:], np.iinfo(np.int64).max)
    lead = max(0, int(np.max(np.arange(len(read)) + 1 - later)))
    return -(-lead // alignment) * alignment


def _gather_call(index: int, op: Op, dims: tuple[int, ...], p, read: np.ndarray) -> KernelCall:
    """The at_gather_s8 call of a STRIDED_SLICE or TRANSPOSE over 4-D output dims; `read`: the
    input element each output reads. It writes outputs in order, one at a time, so the output
    may overwrite a dying input from gather_lead bytes before it, where that is less than the
    output's size."""
    size = int(np.prod(dims))
    lead = gather_lead(read)
    return KernelCall(op=index, kind=op.kind, name=f"op{index}", symbol="at_gather_s8", source="at_gather_s8.c",
                      inputs=(op.inputs[0],), outputs=(op.outputs[0],),
                      dims=frozen_map(**dict(zip(("d0", "d1", "d2", "d3"), dims))),
                      work=frozen_map(calls=1, outputs=size, rows=size // dims[-1]), params=p,
                      overwrites=(op.inputs[0],) if lead < size else (), overwrite_lead=lead if lead < size else 0)


def _emit_gather(c, call: KernelCall, offset: int, strides: tuple[int, ...]) -> None:
    op = c.graph.ops[call.op]
    c.struct("at_gather_params_t", call.name, dict(
        dims=tuple(call.dims[k] for k in ("d0", "d1", "d2", "d3")), offset=offset, strides=strides))
    c.call(call, c.ref(op.inputs[0]), c.ref(op.outputs[0]))


def _row_major(dims: tuple[int, ...]) -> tuple[int, ...]:
    return tuple(int(np.prod(dims[k + 1:], dtype=np.int64)) for k in range(len(dims)))


@dataclass(frozen=True)
class TransposeParams:
    perm: tuple[int, ...]


class Transpose(OpDef):
    kind = "TRANSPOSE"
    tflm_kernel = "reference_ops::Transpose"
    operands = (Operand("input"), Operand("perm", ("int32",), constant=True))

    def permutation(self, graph: Graph, op: Op) -> tuple[int, ...]:
        shape, perm = graph.tensor(op.inputs[0]).shape, graph.tensor(op.inputs[1]).data
        if not 1 <= len(shape) <= MAX_RANK:
            raise OpError(f"input has rank {len(shape)}; 1 to {MAX_RANK} are supported", op.inputs[0])
        perm = tuple(int(a) % len(shape) if -len(shape) <= a < len(shape) else -1 for a in np.ravel(perm))
        if sorted(perm) != list(range(len(shape))) or perm[0] != 0:
            raise OpError(f"has permutation {np.ravel(graph.tensor(op.inputs[1]).data).tolist()} for a "
                          f"rank-{len(shape)} input (the batch axis stays first)", op.inputs[1])
        return perm

    def output_shape(self, graph: Graph, op: Op) -> tuple[int, ...]:
        shape = graph.tensor(op.inputs[0]).shape
        return tuple(shape[a] for a in self.permutation(graph, op))

    def prepare(self, graph: Graph, op: Op) -> TransposeParams:
        return TransposeParams(self.permutation(graph, op))

    def run(self, graph: Graph, op: Op, p: TransposeParams, x: np.ndarray) -> np.ndarray:
        return np.transpose(x, p.perm)

    def lower(self, graph: Graph, index: int, op: Op, p: TransposeParams) -> tuple[KernelCall, ...]:
        return (_gather_call(index, op, pad4(graph.tensor(op.outputs[0]).shape), p,
                             self.run(graph, op, p, _positions(graph, op))),)

    def emit(self, c, call: KernelCall) -> None:
        p = call.params
        shape = c.graph.tensor(c.graph.ops[call.op].inputs[0]).shape
        strides = _row_major(shape)
        _emit_gather(c, call, 0, (0,) * (MAX_RANK - len(shape)) + tuple(strides[a] for a in p.perm))
