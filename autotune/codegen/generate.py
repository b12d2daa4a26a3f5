"""IR graph -> plain C99: `model.h`, `model.c` and the fixed kernels they call.

`model.c` holds the weights as `static const` arrays, one precomputed parameter struct per op
(integers from `autotune.ir.params`, exactly TFLM's Prepare() values), the static activation
arena laid out by `planner.plan_memory`, and `<prefix>_invoke`: the op sequence, one kernel
call per op. No floating point, no allocation, nothing computed at start-up.

A model with float32 edges (QUANTIZE first, DEQUANTIZE last) is generated without them: the C
entry point takes the int8 input of the integer path and returns its int8 output. `model.h`
gives both scales and zero points, so the caller quantizes and dequantizes if it needs floats.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from autotune.codegen.kernel_library import copy_kernels
from autotune.codegen.planner import MemoryPlan, plan_memory, tensor_label
from autotune.errors import AutotuneError
from autotune.escape import c_comment
from autotune.ir import params as P
from autotune.ir.graph import Graph, Op, Tensor, WeightEncoding

KERNEL_COMMON = ("at_common.h", "at_common.c", "at_kernels.h")  # every model needs these
SOFTMAX_MAX_DEPTH = 511  # beyond it the sum of exps can reach 2**28 and TFLM's shifts exceed 31


class CodegenError(AutotuneError):
    """A graph the C generator cannot express: names the graph, the op and why."""


@dataclass(frozen=True)
class GeneratedC:
    out_dir: Path
    header: Path  # <prefix>.h
    source: Path  # <prefix>.c
    kernel_files: tuple[Path, ...]  # the kernel library files copied beside them
    entry: str  # <prefix>_invoke
    input_size: int  # bytes (int8 elements)
    output_size: int
    plan: MemoryPlan

    @property
    def sources(self) -> tuple[Path, ...]:
        """Every .c file to compile."""
        return (self.source,) + tuple(p for p in self.kernel_files if p.suffix == ".c")

    @property
    def arena_bytes(self) -> int:
        return self.plan.arena_bytes


def integer_core(graph: Graph) -> Graph:
    """`graph` without a float32 -> int8 QUANTIZE at its input or an int8 -> float32 DEQUANTIZE at
    its output: the integer path the generated C runs. Other graphs come back unchanged."""
    ops, inputs, outputs = list(graph.ops), list(graph.inputs), list(graph.outputs)
    for k, t in enumerate(inputs):
        edge = [op for op in ops if op.kind == "QUANTIZE" and op.inputs[0] == t]
        if graph.tensor(t).dtype == "float32" and len(edge) == 1:
            inputs[k] = edge[0].outputs[0]
            ops.remove(edge[0])
    for k, t in enumerate(outputs):
        edge = [op for op in ops if op.kind == "DEQUANTIZE" and op.outputs[0] == t]
        if graph.tensor(t).dtype == "float32" and len(edge) == 1:
            outputs[k] = edge[0].inputs[0]
            ops.remove(edge[0])
    if (ops, inputs, outputs) == (graph.ops, graph.inputs, graph.outputs):
        return graph
    return Graph(graph.name, graph.tensors, ops, inputs, outputs)


def generate_c(graph: Graph, out_dir: Path | str, prefix: str = "model") -> GeneratedC:
    """Write `<prefix>.h`, `<prefix>.c` and the kernels they use into `out_dir`.

    The entry point is `int <prefix>_invoke(const int8_t *input, int8_t *output)`; the sizes are
    `<PREFIX>_INPUT_SIZE` and `<PREFIX>_OUTPUT_SIZE` (the device harness expects the default
    prefix). `input` and `output` must not overlap; the output buffer may hold intermediate
    values while the model runs.
    """
    if not re.fullmatch(r"[A-Za-z_]\w*", prefix):
        raise ValueError(f"prefix {prefix!r} is not a C identifier")
    core = integer_core(graph)
    if len(core.inputs) != 1 or len(core.outputs) != 1:
        raise CodegenError(f"{graph.name}: the C entry point takes one input and one output, "
                           f"the graph has {len(core.inputs)} and {len(core.outputs)}")
    for t in (core.inputs[0], core.outputs[0]):
        if core.tensor(t).dtype != "int8":
            raise CodegenError(f"{graph.name}: {tensor_label(core, t)} is {core.tensor(t).dtype}, "
                               "the C entry point takes and returns int8")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    windows = {}  # conv op -> (its at_window_t fields, the scratch bytes its kernel needs)
    for i, op in enumerate(core.ops):
        if op.kind in ("CONV_2D", "DEPTHWISE_CONV_2D"):
            try:
                windows[i] = _conv_window(core, op)
            except (ValueError, KeyError) as e:
                raise _op_error(core, i, op, e) from None
    plan = plan_memory(core, {i: scratch for i, (_, scratch) in windows.items()})
    writer = _Writer(core, plan, prefix, {i: win for i, (win, _) in windows.items()})
    for i, op in enumerate(core.ops):
        writer.op(i, op)

    header = out_dir / f"{prefix}.h"
    source = out_dir / f"{prefix}.c"
    header.write_text(writer.header(graph))
    source.write_text(writer.source())
    kernel_files = copy_kernels((*KERNEL_COMMON, *sorted(writer.kernel_files)), out_dir)
    return GeneratedC(out_dir, header, source, kernel_files, f"{prefix}_invoke",
                      core.tensor(core.inputs[0]).size, core.tensor(core.outputs[0]).size, plan)


# --------------------------------------------------------------------------- C text helpers


def _op_error(graph: Graph, i: int, op: Op, e: Exception) -> CodegenError:
    return CodegenError(f"{graph.name}: op {i} {op.kind} (output "
                        f"{tensor_label(graph, op.outputs[0])}): {e}")


def _c_array(ctype: str, name: str, values: np.ndarray, per_line: int = 16) -> str:
    flat = [str(int(v)) for v in np.asarray(values).reshape(-1)]
    rows = [", ".join(flat[k:k + per_line]) for k in range(0, len(flat), per_line)]
    body = "".join(f"    {row},\n" for row in rows)
    return f"static const {ctype} {name}[{len(flat)}] = {{\n{body}}};\n"


def _c_struct(ctype: str, name: str, fields: dict[str, object]) -> str:
    """A designated initializer, fields packed into lines of about 96 characters; a nested
    struct (a dict) the same way, indented, between lines of its own."""
    return f"static const {ctype} {name} = {{\n" + "\n".join(_c_fields(fields, "    ")) + "\n};\n"


def _c_fields(fields: dict[str, object], indent: str) -> list[str]:
    lines, line = [], ""
    for k, v in fields.items():
        if isinstance(v, dict):
            lines += [line] if line else []
            lines += [f"{indent}.{k} = {{", *_c_fields(v, indent + "    "), f"{indent}}},"]
            line = ""
            continue
        item = f".{k} = {_c_value(v)},"
        if line and len(line) + len(item) > 95:
            lines.append(line)
            line = ""
        line = f"{line} {item}" if line else indent + item
    return lines + ([line] if line else [])


def _c_value(v: object) -> str:
    if isinstance(v, (tuple, list)):
        return "{" + ", ".join(_c_value(x) for x in v) + "}"
    if isinstance(v, (int, np.integer)):
        return str(int(v))
    return str(v)  # an identifier


def _comment(text: str) -> str:
    """Text safe inside a C block comment, line by line (tensor and model names come from the
    .tflite file: anything at all)."""
    return "\n".join(c_comment(line, limit=400) for line in text.split("\n"))


def _c_channels(name: str, bias: np.ndarray, filters: np.ndarray, input_offset: int,
                multiplier: np.ndarray, shift: np.ndarray) -> str:
    """`at_channel_t name[]`: per output channel (a row of `filters`) acc_init = bias +
    input_offset * sum(filter), wrapped to int32 (the kernels add to it modulo 2**32, so the
    accumulator is TFLM's whenever TFLM's own fits), then multiplier and shift."""
    bias = np.asarray(bias, dtype=np.int64)
    acc_init = ((bias + input_offset * filters.sum(axis=1) + 2**31) & 0xFFFFFFFF) - 2**31
    rows = "".join(f"    {{{a}, {m}, {s}}},\n" for a, m, s in
                   zip(acc_init.tolist(), np.asarray(multiplier).tolist(), np.asarray(shift).tolist()))
    return f"static const at_channel_t {name}[{len(bias)}] = {{\n{rows}}};\n"


def _conv_window(graph: Graph, op: Op) -> tuple[dict[str, object], int]:
    """The at_window_t of a CONV_2D or DEPTHWISE_CONV_2D, and the scratch bytes its kernel needs:
    none if every window is read in place (at_window_s8 in kernels/at_common.c)."""
    p = P.op_params(graph, op)
    (_, in_h, in_w, in_c), (_, out_h, out_w, out_c) = (graph.tensor(op.inputs[0]).shape,
                                                       graph.tensor(op.outputs[0]).shape)
    _, filter_h, filter_w, _ = graph.tensor(op.inputs[1]).shape
    repeat = p.depth_multiplier if op.kind == "DEPTHWISE_CONV_2D" else 1
    # one filter row of adjacent columns, each input channel once: a window inside the input is
    # already laid out as the filter reads it
    in_place = filter_h == 1 and (filter_w == 1 or p.dilation_w == 1) and repeat == 1
    win = dict(in_h=in_h, in_w=in_w, in_c=in_c, filter_h=filter_h, filter_w=filter_w,
               stride_h=p.stride_h, stride_w=p.stride_w, dilation_h=p.dilation_h,
               dilation_w=p.dilation_w, pad_h=p.pad_h, pad_w=p.pad_w,
               inside_y=_inside(in_h, out_h, filter_h, p.stride_h, p.dilation_h, p.pad_h),
               inside_x=_inside(in_w, out_w, filter_w, p.stride_w, p.dilation_w, p.pad_w),
               zero_point=-p.input_offset, repeat=repeat, in_place=int(in_place))
    everywhere = win["inside_y"] == (0, out_h) and win["inside_x"] == (0, out_w)
    return win, 0 if in_place and everywhere else filter_h * filter_w * in_c * repeat


def _inside(size: int, out: int, filt: int, stride: int, dilation: int, pad: int) -> tuple[int, int]:
    """The outputs [begin, end) along one axis whose filter window lies wholly inside the input:
    begin * stride - pad >= 0 and end - 1 its last with (filt - 1) * dilation more below size."""
    begin = -(-pad // stride)
    end = max((size - 1 + pad - (filt - 1) * dilation) // stride + 1, 0)
    end = min(end, out)
    return min(begin, end), end


def _average_reciprocal(count: int) -> int:
    """ceil(2**24 / count) if (n * it) >> 24 == n // count in uint32 for every n an average pool
    of `count` int8 values can divide (|sum| + count // 2 <= 128 * count + count // 2), else 0
    (the kernel divides). Checked exhaustively; it holds for counts up to a few hundred."""
    reciprocal = -(-(1 << 24) // count)
    n = np.arange(128 * count + count // 2 + 1, dtype=np.int64)
    exact = int(n[-1]) * reciprocal < 2**32 and np.array_equal((n * reciprocal) >> 24, n // count)
    return reciprocal if exact else 0


def _pad4(shape: tuple[int, ...], what: str) -> tuple[int, ...]:
    if len(shape) > 4:
        raise ValueError(f"{what}: rank {len(shape)} above 4")
    return (1,) * (4 - len(shape)) + tuple(shape)


def _strides(dims: tuple[int, ...]) -> tuple[int, ...]:
    return tuple(int(np.prod(dims[k + 1:], dtype=np.int64)) for k in range(len(dims)))


# --------------------------------------------------------------------------- the writer


class _Writer:
    """Accumulates model.c: constant data and params (`decls`) and the call sequence (`body`)."""

    def __init__(self, graph: Graph, plan: MemoryPlan, prefix: str, windows: dict[int, dict[str, object]]):
        self.graph, self.plan, self.prefix = graph, plan, prefix
        self.windows = windows  # conv op -> its at_window_t fields
        self.decls: list[str] = []
        self.body: list[str] = []
        self.kernel_files: set[str] = set()
        self.pointers: dict[int, str] = {}  # tensor -> declaration of its local pointer

    # ---- tensors

    def ref(self, t: int) -> str:
        """The C name of tensor t's data; declares it on first use."""
        name = f"t{t}"
        if t in self.pointers:
            return name
        tensor = self.graph.tensor(t)
        if tensor.is_constant:
            self.const_tensor(t, tensor)
            self.pointers[t] = ""
            return name
        if tensor.dtype != "int8":
            raise ValueError(f"{tensor_label(self.graph, t)} is {tensor.dtype}; activations must be int8")
        b = self.plan.buffer_of(t)
        where = {"input": "input", "output": "output"}.get(b.place, f"arena.bytes + {b.offset}")
        const = "const " if b.place == "input" else ""
        live = f", ops {b.first}-{b.last}" if b.in_arena else ""
        self.pointers[t] = (f"    {const}int8_t *const {name} = {where}; "
                            f"/* {c_comment(tensor_label(self.graph, t).split(' ', 1)[1])}{live} */")
        return name

    def const_tensor(self, t: int, tensor: Tensor) -> None:
        if tensor.dtype != "int8":
            raise ValueError(f"constant {tensor_label(self.graph, t)} is {tensor.dtype}, expected int8")
        self.weight(tensor)
        self.decls.append(_c_array("int8_t", f"t{t}", tensor.data))

    def weight(self, tensor: Tensor) -> np.ndarray:
        if tensor.encoding != WeightEncoding():
            raise ValueError(f"weights {tensor.name!r} are encoded as {tensor.encoding}; "
                             "only plain int8 is generated so far")
        return tensor.data

    # ---- ops

    def op(self, i: int, op: Op) -> None:
        g = self.graph
        shapes = " + ".join("x".join(map(str, g.tensor(t).shape)) for t in op.inputs
                            if t >= 0 and not g.tensor(t).is_constant)
        act = op.options.get("activation", "NONE")
        self.body.append(f"    /* op {i}: {op.kind} {shapes} -> "
                         f"{'x'.join(map(str, g.tensor(op.outputs[0]).shape))}"
                         f"{'' if act == 'NONE' else ', ' + act} */")
        emit = getattr(self, "_" + op.kind.lower(), None)
        if emit is None:
            raise CodegenError(f"{g.name}: op {i} {op.kind} has no C kernel")
        try:
            emit(i, op)
        except (ValueError, KeyError) as e:
            raise _op_error(g, i, op, e) from None

    def call(self, kernel: str, file: str, params: str, tensors: list[int], *extra: str) -> None:
        self.kernel_files.add(file)
        args = ", ".join([f"&{params}", *(self.ref(t) for t in tensors), *extra])
        self.body.append(f"    {kernel}({args});")

    def _per_channel_conv(self, i: int, op: Op, depthwise: bool) -> None:
        g = self.graph
        p = P.op_params(g, op)
        inp, out = g.tensor(op.inputs[0]), g.tensor(op.outputs[0])
        filt = self.weight(g.tensor(op.inputs[1])).astype(np.int64)
        oc = out.shape[3]
        if not depthwise and filt.shape[3] != inp.shape[3]:
            raise ValueError(f"a grouped convolution ({inp.shape[3]} input channels, "
                             f"filter depth {filt.shape[3]})")
        bias = (g.tensor(op.inputs[2]).data if len(op.inputs) > 2 and op.inputs[2] >= 0
                else np.zeros(oc, dtype=np.int64))
        by_channel = filt.reshape(-1, oc).T if depthwise else filt.reshape(oc, -1)
        name = f"op{i}"
        self.decls += [
            _c_array("int8_t", f"{name}_filter", filt),
            _c_channels(f"{name}_channels", bias, by_channel, p.input_offset, p.multiplier, p.shift),
        ]
        fields = dict(batches=inp.shape[0], out_h=out.shape[1], out_w=out.shape[2], out_c=oc,
                      win=self.windows[i],
                      output_quant=(p.output_offset, p.act_min, p.act_max),
                      filter=f"{name}_filter", channels=f"{name}_channels")
        kind = "depthwise_conv" if depthwise else "conv"
        self.decls.append(_c_struct(f"at_{kind}_params_t", name, fields))
        scratch = self.plan.scratch_of(i)
        self.call(f"at_{kind}_s8", f"at_{kind}_s8.c", name, [op.inputs[0], op.outputs[0]],
                  f"arena.bytes + {scratch.offset}" if scratch else "0")

    def _conv_2d(self, i: int, op: Op) -> None:
        self._per_channel_conv(i, op, depthwise=False)

    def _depthwise_conv_2d(self, i: int, op: Op) -> None:
        self._per_channel_conv(i, op, depthwise=True)

    def _fully_connected(self, i: int, op: Op) -> None:
        g = self.graph
        p = P.op_params(g, op)
        filt = self.weight(g.tensor(op.inputs[1])).astype(np.int64)
        units, depth = filt.shape
        bias = (g.tensor(op.inputs[2]).data if len(op.inputs) > 2 and op.inputs[2] >= 0
                else np.zeros(units, dtype=np.int64))
        name = f"op{i}"
        self.decls += [
            _c_array("int8_t", f"{name}_filter", filt),
            _c_channels(f"{name}_channels", bias, filt, p.input_offset,
                        np.broadcast_to(p.multiplier, units), np.broadcast_to(p.shift, units)),
        ]
        self.decls.append(_c_struct("at_fully_connected_params_t", name, dict(
            batches=g.tensor(op.inputs[0]).size // depth, accum_depth=depth, out_depth=units,
            input_offset=p.input_offset, filter_offset=p.filter_offset,
            output_quant=(p.output_offset, p.act_min, p.act_max),
            filter=f"{name}_filter", channels=f"{name}_channels")))
        self.call("at_fully_connected_s8", "at_fully_connected_s8.c", name,
                  [op.inputs[0], op.outputs[0]])

    def _pool(self, i: int, op: Op, kernel: str) -> None:
        g = self.graph
        p = P.op_params(g, op)
        inp, out = g.tensor(op.inputs[0]), g.tensor(op.outputs[0])
        self.decls.append(_c_struct("at_pool_params_t", f"op{i}", dict(
            batches=inp.shape[0], in_h=inp.shape[1], in_w=inp.shape[2], channels=inp.shape[3],
            out_h=out.shape[1], out_w=out.shape[2], filter_h=p.filter_h, filter_w=p.filter_w,
            stride_h=p.stride_h, stride_w=p.stride_w, pad_h=p.pad_h, pad_w=p.pad_w,
            act_min=p.act_min, act_max=p.act_max,
            reciprocal=_average_reciprocal(p.filter_h * p.filter_w) if kernel == "at_avg_pool_s8" else 0)))
        self.call(kernel, "at_pool_s8.c", f"op{i}", [op.inputs[0], op.outputs[0]])

    def _average_pool_2d(self, i: int, op: Op) -> None:
        self._pool(i, op, "at_avg_pool_s8")

    def _max_pool_2d(self, i: int, op: Op) -> None:
        self._pool(i, op, "at_max_pool_s8")

    def _mean(self, i: int, op: Op) -> None:
        g = self.graph
        p = P.op_params(g, op)
        shape = g.tensor(op.inputs[0]).shape
        strides = _strides(shape)
        kept = [(shape[d], strides[d]) for d in range(len(shape)) if d not in p.axis]
        reduced = sorted(((shape[d], strides[d]) for d in p.axis), key=lambda ds: -ds[1])
        if max(len(kept), len(reduced)) > 4:
            raise ValueError(f"more than 4 kept or reduced dimensions in {shape}")
        (out_dims, out_strides), (reduce_dims, reduce_strides) = (
            zip(*([(1, 0)] * (4 - len(dims)) + dims)) for dims in (kept, reduced))
        self.decls.append(_c_struct("at_mean_params_t", f"op{i}", dict(
            out_dims=out_dims, out_strides=out_strides, reduce_dims=reduce_dims,
            reduce_strides=reduce_strides, sum_offset=-p.count * p.input_zero_point,
            multiplier=p.multiplier, shift=p.shift, output_offset=p.output_zero_point)))
        self.call("at_mean_s8", "at_mean_s8.c", f"op{i}", [op.inputs[0], op.outputs[0]])

    def _softmax(self, i: int, op: Op) -> None:
        g = self.graph
        p = P.op_params(g, op)
        inp = g.tensor(op.inputs[0])
        depth = inp.shape[-1]
        if depth > SOFTMAX_MAX_DEPTH:
            raise ValueError(f"depth {depth} above {SOFTMAX_MAX_DEPTH}")
        self.decls.append(_c_array("int32_t", f"op{i}_exp", p.exp_table, 8))
        self.decls.append(_c_struct("at_softmax_params_t", f"op{i}", dict(
            rows=inp.size // depth, depth=depth, exp_table=f"op{i}_exp")))
        self.call("at_softmax_s8", "at_softmax_s8.c", f"op{i}", [op.inputs[0], op.outputs[0]])

    def _add(self, i: int, op: Op) -> None:
        g = self.graph
        p = P.op_params(g, op)
        shifts = (p.input1_shift, p.input2_shift, p.output_shift)
        if max(shifts) > 0:  # TFLM's MultiplyByQuantizedMultiplierSmallerThanOneExp needs <= 0
            raise ValueError(f"requantization shifts {shifts} must be <= 0 (output scale too small)")
        a, b, out = (g.tensor(t).shape for t in (op.inputs[0], op.inputs[1], op.outputs[0]))
        if a == b == out:
            dims, s1, s2 = (1, 1, 1, int(np.prod(out))), (0, 0, 0, 1), (0, 0, 0, 1)
        else:  # broadcast: stride 0 along dimensions of size 1
            dims = _pad4(out, "ADD output")
            s1, s2 = ([0 if n == 1 else s for n, s in zip(_pad4(x, "ADD input"), _strides(_pad4(x, "")))]
                      for x in (a, b))
        self.decls.append(_c_struct("at_add_params_t", f"op{i}", dict(
            dims=dims, strides1=s1, strides2=s2,
            input1_offset=p.input1_offset, input2_offset=p.input2_offset,
            output_offset=p.output_offset, left_shift=p.left_shift,
            input1_multiplier=p.input1_multiplier, input1_shift=p.input1_shift,
            input2_multiplier=p.input2_multiplier, input2_shift=p.input2_shift,
            output_multiplier=p.output_multiplier, output_shift=p.output_shift,
            act_min=p.act_min, act_max=p.act_max)))
        self.call("at_add_s8", "at_add_s8.c", f"op{i}",
                  [op.inputs[0], op.inputs[1], op.outputs[0]])

    def _pad(self, i: int, op: Op) -> None:
        g = self.graph
        p = P.op_params(g, op)
        inp, out = g.tensor(op.inputs[0]).shape, g.tensor(op.outputs[0]).shape
        before = (0,) * (4 - len(inp)) + tuple(b for b, _ in p.paddings)
        self.decls.append(_c_struct("at_pad_params_t", f"op{i}", dict(
            in_dims=_pad4(inp, "PAD input"), out_dims=_pad4(out, "PAD output"), before=before,
            pad_value=p.pad_value)))
        self.call("at_pad_s8", "at_pad_s8.c", f"op{i}", [op.inputs[0], op.outputs[0]])

    def _concatenation(self, i: int, op: Op) -> None:
        g = self.graph
        p = P.op_params(g, op)
        if op.options.get("activation", "NONE") != "NONE":
            raise ValueError("a fused activation on CONCATENATION")
        out = g.tensor(op.outputs[0])
        sizes = [int(np.prod(g.tensor(t).shape[p.axis:])) for t in op.inputs]
        self.decls.append(_c_array("int32_t", f"op{i}_sizes", np.array(sizes), 8))
        self.decls.append(_c_struct("at_concat_params_t", f"op{i}", dict(
            outer=int(np.prod(out.shape[:p.axis])), count=len(sizes), sizes=f"op{i}_sizes")))
        ins = ", ".join(self.ref(t) for t in op.inputs)
        self.body.append(f"    {{\n        const int8_t *const inputs[{len(sizes)}] = {{{ins}}};")
        self.kernel_files.add("at_concat_s8.c")
        self.body.append(f"        at_concat_s8(&op{i}, inputs, {self.ref(op.outputs[0])});\n    }}")

    def _reshape(self, i: int, op: Op) -> None:
        src, dst = op.inputs[0], op.outputs[0]
        if self.plan.buffer_of(src) == self.plan.buffer_of(dst):
            self.body.append("    /* no code: the output is the input's memory */")
            return
        self.body.append(f"    memcpy({self.ref(dst)}, {self.ref(src)}, {self.graph.tensor(dst).nbytes});")

    def _quantize(self, i: int, op: Op) -> None:
        g = self.graph
        if g.tensor(op.inputs[0]).dtype != "int8":
            raise ValueError("float32 QUANTIZE inside the graph (only at its input)")
        p = P.op_params(g, op)
        self.decls.append(_c_struct("at_requantize_params_t", f"op{i}", dict(
            size=g.tensor(op.inputs[0]).size, input_zero_point=p.input_zero_point,
            output_zero_point=p.output_zero_point, multiplier=p.multiplier, shift=p.shift)))
        self.call("at_requantize_s8", "at_requantize_s8.c", f"op{i}",
                  [op.inputs[0], op.outputs[0]])

    # ---- files

    def header(self, original: Graph) -> str:
        g, macro = self.graph, self.prefix.upper()
        inp, out = g.tensor(g.inputs[0]), g.tensor(g.outputs[0])
        guard = f"{macro}_H"
        lines = [
            f"/* generated by autotune from {c_comment(original.name)}; do not edit */",
            f"#ifndef {guard}", f"#define {guard}", "", "#include <stdint.h>", "",
        ]
        for what, t, float_edge in (("INPUT", inp, original.inputs != g.inputs),
                                    ("OUTPUT", out, original.outputs != g.outputs)):
            scale, zp = t.quant.scale[0], t.quant.zero_point[0]
            shape = "x".join(map(str, t.shape))
            lines.append(f"/* {what.lower()}: int8 {shape}, real value = {scale!r} * (q - ({zp})) */")
            if float_edge:
                lines.append("/* (the .tflite model has a float32 "
                             + ("input: quantize q = round(x / scale) + zero point, clamped to int8"
                                if what == "INPUT" else "output: dequantize it as above") + ") */")
            lines += [f"#define {macro}_{what}_SIZE {t.size}",
                      f"#define {macro}_{what}_ZERO_POINT ({zp})", ""]
        lines += [
            "/* static RAM the model uses besides the caller's input and output buffers */",
            f"#define {macro}_ARENA_SIZE {self.plan.arena_bytes}", "",
            f"/* Runs the model on one int8 input; writes {macro}_OUTPUT_SIZE int8 values to output.",
            " * input and output must not overlap. Returns 0. */",
            f"int {self.prefix}_invoke(const int8_t *input, int8_t *output);", "",
            f"#endif /* {guard} */", "",
        ]
        return "\n".join(lines)

    def source(self) -> str:
        g, plan = self.graph, self.plan
        uses_memcpy = any("memcpy(" in line for line in self.body)
        lines = [
            f"/* generated by autotune from {c_comment(g.name)}; do not edit */",
            *(["#include <string.h>", ""] if uses_memcpy else []),
            f'#include "{self.prefix}.h"', '#include "at_kernels.h"', "",
            "/*", *(" * " + ln for ln in _comment(plan.format(g)).splitlines()), " */", "",
        ]
        if plan.arena_bytes:
            lines += [
                "/* The activation arena. Tensor offsets are multiples of 4: word-aligned. */",
                "static union {", "    int32_t align;", f"    int8_t bytes[{plan.arena_bytes}];",
                "} arena;", "",
            ]
        lines += self.decls
        lines += [f"int {self.prefix}_invoke(const int8_t *input, int8_t *output)", "{"]
        lines += [decl for _, decl in sorted(self.pointers.items()) if decl]
        lines += ["", *self.body, "    return 0;", "}", ""]
        return "\n".join(lines)
