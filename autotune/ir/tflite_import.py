"""Read an int8 .tflite flatbuffer into the IR, trusting nothing in the file.

Every length, index, dimension, zero point and scale is range-checked before anything is built
from it; every op is checked by its registry definition (autotune.ops): operand dtypes, options,
quantization, and each output shape recomputed from the op's semantics must equal the file's.
Whatever is accepted is also lowered to kernel calls, so it runs in the reference executor and
as generated C. A model failing any check is refused with a ModelImportError of one line naming
the file, the op index, the op and the tensor.
"""
from __future__ import annotations

import linecache
import math
import re
import struct
from pathlib import Path

import numpy as np

# The flatbuffer reader generated from TFLite's schema, as shipped inside the tflite-micro wheel we
# already pin for ground truth: no extra dependency, no TensorFlow import (about 0.3 s), and its
# schema is the one the TFLM interpreter itself reads.
from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as fb

from autotune.errors import ModelImportError
from autotune.ir.graph import Graph, Op, Quant, Tensor
from autotune.ops import OpDef, OpError, op_for_builtin

MAX_FILE_BYTES = 64 << 20
MAX_RANK = 6
MAX_ELEMENTS = 1 << 22  # per tensor: far above any microcontroller's memory, far below a MemoryError
SCALE_RANGE = (1e-20, 1e20)

_DTYPES = {fb.TensorType.INT8: "int8", fb.TensorType.INT32: "int32", fb.TensorType.FLOAT32: "float32"}
_TYPE_NAMES = {v: k for k, v in vars(fb.TensorType).items() if not k.startswith("_")}
_OP_NAMES = {v: k for k, v in vars(fb.BuiltinOperator).items() if not k.startswith("_")}
_OPTION_NAMES = {v: k for k, v in vars(fb.BuiltinOptions).items() if not k.startswith("_")}


def import_tflite(source: bytes | str | Path, name: str | None = None) -> Graph:
    """Parse an int8 TFLite model (float32 only at a QUANTIZE input or DEQUANTIZE output).

    Raises ModelImportError naming the file (and the op, its index and the tensor) for anything
    the IR cannot represent exactly or that is inconsistent: other ops, dtypes or options, shapes
    that do not follow from the ops, out-of-range quantization, a corrupt or truncated file.
    """
    if isinstance(source, (str, Path)):
        label = str(source)
        try:
            if Path(source).stat().st_size > MAX_FILE_BYTES:
                raise ModelImportError(f"{label}: larger than {MAX_FILE_BYTES >> 20} MB")
            buf = Path(source).read_bytes()
        except OSError as e:
            raise ModelImportError(f"{label}: cannot read: {e.strerror}") from None
        name = name or Path(source).stem
    else:
        buf = bytes(source)
        label = name or "<tflite bytes>"
    if len(buf) > MAX_FILE_BYTES:
        raise ModelImportError(f"{label}: larger than {MAX_FILE_BYTES >> 20} MB")
    if len(buf) < 8 or not fb.Model.ModelBufferHasIdentifier(buf, 0):
        raise ModelImportError(f"{label}: not a TFLite flatbuffer (no 'TFL3' identifier)")
    return _Importer(buf, label).graph(name or "model")


class _Corrupt(Exception):
    """A flatbuffer offset or length that points outside the file."""


# Errors the generated flatbuffer reader raises on offsets and lengths outside the buffer.
_READ_ERRORS = (_Corrupt, IndexError, ValueError, TypeError, OverflowError, UnicodeDecodeError, struct.error)
# A reader call in the generated object API's _UnPack, e.g. `subGraph.Tensors(i)`, `tensor.ShapeAsNumpy()`.
_UNPACK_CALL = re.compile(r"\b[a-z]\w*\.([A-Z]\w*?)(?:IsNone|Length|AsNumpy)?\((\w*)\)")


def _schema_path(exc: BaseException) -> str:
    """Where the generated reader's whole-model parse failed, as schema fields, from the
    _UnPack frames of its traceback: e.g. ': subgraphs[0].tensors[12].quantization.scale'."""
    fields = []
    tb = exc.__traceback__
    while tb is not None:
        frame = tb.tb_frame
        if frame.f_code.co_filename == fb.__file__ and frame.f_code.co_name == "_UnPack":
            call = _UNPACK_CALL.search(linecache.getline(fb.__file__, tb.tb_lineno))
            if call:
                field, index = call.groups()
                snake = re.sub(r"(?<!^)([A-Z])", r"_\1", field).lower()
                fields.append(snake + (f"[{frame.f_locals.get(index)}]" if index else ""))
        tb = tb.tb_next
    return ": " + ".".join(fields) if fields else ""


class _Importer:
    def __init__(self, buf: bytes, label: str):
        self.buf, self.label = buf, label

    # ---- failing

    def fail(self, msg: str, op: int | None = None, kind: str | None = None, tensor: int | None = None):
        where = f" op {op} ({kind})" if op is not None else ""
        if tensor is not None:
            where += f" tensor {tensor} {self.tensor_name(tensor)!r}:"
        raise ModelImportError(f"{self.label}:{where} {msg}")

    def read(self, what: str, f, *args):
        """Call a flatbuffer accessor; an offset or length outside the file is a corrupt file."""
        try:
            return f(*args)
        except _READ_ERRORS as e:
            raise ModelImportError(f"{self.label}: corrupt or truncated TFLite file (reading {what}"
                                   f"{_schema_path(e)}: {type(e).__name__})") from None

    def count(self, what: str, n: int, element_bytes: int) -> int:
        """A vector length, checked against the file size before anything loops over it."""
        if not 0 <= n <= len(self.buf) // element_bytes:
            raise _Corrupt(f"{what}: {n} entries")
        return n

    def tensor_name(self, t: int) -> str:
        try:
            raw = self.sg.Tensors(t).Name() or b""
            return raw.decode(errors="replace")[:80]
        except _READ_ERRORS:
            return "?"

    # ---- the model

    def graph(self, name: str) -> Graph:
        model = self.read("the model", fb.Model.GetRootAs, self.buf, 0)
        # All of it must parse, as TFLM's Python interpreter parses all of it before it runs: a
        # corrupt field nothing here reads (metadata, signatures) still makes the file corrupt.
        # Each vector it walks ends at the end of the file, so this is bounded by the file size.
        self.read("the model", fb.ModelT.InitFromObj, model)
        n_subgraphs = self.read("subgraphs", lambda: self.count("subgraphs", model.SubgraphsLength(), 4))
        if n_subgraphs != 1:
            self.fail(f"expected one subgraph, found {n_subgraphs}")
        self.model = model
        self.sg = self.read("the subgraph", model.Subgraphs, 0)
        self.n_buffers = self.read("buffers", lambda: self.count("buffers", model.BuffersLength(), 4))
        self.n_codes = self.read("operator codes", lambda: self.count("codes", model.OperatorCodesLength(), 4))
        n_tensors = self.read("tensors", lambda: self.count("tensors", self.sg.TensorsLength(), 4))
        n_ops = self.read("operators", lambda: self.count("operators", self.sg.OperatorsLength(), 4))
        inputs = self.indices("the subgraph's inputs", self.sg.InputsAsNumpy, self.sg.InputsIsNone)
        outputs = self.indices("the subgraph's outputs", self.sg.OutputsAsNumpy, self.sg.OutputsIsNone)
        for t in inputs + outputs:
            if not 0 <= t < n_tensors:
                self.fail(f"the subgraph names tensor {t} as an input or output; it has {n_tensors} tensors")
        if len(inputs) != 1 or len(outputs) != 1:
            self.fail(f"has {len(inputs)} inputs and {len(outputs)} outputs; one of each is supported")

        raw_ops = [self.read(f"operator {i}", self.sg.Operators, i) for i in range(n_ops)]
        op_io = [self.op_io(i, o, n_tensors) for i, o in enumerate(raw_ops)]
        users: dict[int, str] = {}  # tensor -> the first op that reads or writes it
        for i, (o, (ins, outs)) in enumerate(zip(raw_ops, op_io)):
            for t in ins + outs:
                users.setdefault(t, f" op {i} ({self.kind_name(o)})")
        tensors = [self.tensor(t, users.get(t, "")) for t in range(n_tensors)]
        graph = Graph(name, tensors, [], list(inputs), list(outputs))
        for t in inputs:
            if tensors[t].is_constant or tensors[t].shape[:1] != (1,):
                self.fail(f"is the model's input: it must be an activation of batch 1, shape {tensors[t].shape}",
                          tensor=t)
        written = set(inputs)
        for i, (o, (ins, outs)) in enumerate(zip(raw_ops, op_io)):
            graph.ops.append(self.op(graph, i, o, ins, outs, written))
            written.update(outs)
        for t in outputs:
            if t not in written or t in inputs:
                self.fail("is the model's output but no op writes it", tensor=t)
            if tensors[t].shape[:1] != (1,):
                self.fail(f"is the model's output: it must have batch 1, shape {tensors[t].shape}", tensor=t)
        return graph

    def indices(self, what: str, as_numpy, is_none) -> list[int]:
        if self.read(what, is_none):
            return []
        return [int(v) for v in self.read(what, as_numpy)]

    def op_io(self, i: int, o: fb.Operator, n_tensors: int) -> tuple[list[int], list[int]]:
        ins = self.indices(f"op {i} inputs", o.InputsAsNumpy, o.InputsIsNone)
        outs = self.indices(f"op {i} outputs", o.OutputsAsNumpy, o.OutputsIsNone)
        for t in ins + outs:
            if not -1 <= t < n_tensors:
                self.fail(f"names tensor {t}; the model has {n_tensors} tensors", i, self.kind_name(o))
        if len(outs) != 1 or outs[0] < 0:
            self.fail(f"has {len(outs)} outputs {outs}; one is supported", i, self.kind_name(o))
        return ins, outs

    # ---- tensors

    def tensor(self, index: int, user: str) -> Tensor:
        """Tensor `index`, every field checked; `user` names the first op using it in messages."""
        t = self.read(f"tensor {index}", self.sg.Tensors, index)

        def fail(msg: str):
            raise ModelImportError(f"{self.label}:{user} tensor {index} {self.tensor_name(index)!r} {msg}")

        name = self.tensor_name(index)
        code = self.read(f"tensor {index}", t.Type)
        if code not in _DTYPES:
            fail(f"has unsupported dtype {_TYPE_NAMES.get(code, code)}")
        dtype = _DTYPES[code]
        if self.read(f"tensor {index}", t.IsVariable):
            fail("is a variable tensor")
        if self.read(f"tensor {index}", t.Sparsity) is not None:
            fail("is sparse")
        shape = [] if self.read(f"tensor {index}", t.ShapeIsNone) else [int(d) for d in self.read(
            f"tensor {index} shape", t.ShapeAsNumpy)]
        if len(shape) > MAX_RANK:
            fail(f"has rank {len(shape)}, above {MAX_RANK}")
        # A dynamic batch is -1 in the shape signature and 1 in the shape, which TFLM allocates:
        # the shape is what counts, and a -1 in it is refused with any other size outside 1..max.
        if any(not 1 <= d <= MAX_ELEMENTS for d in shape) or math.prod(shape) > MAX_ELEMENTS:
            fail(f"has shape {shape}: every dimension and the size must be within 1..{MAX_ELEMENTS}")
        quant = self.quantization(t, index, dtype, tuple(shape), fail)
        data = self.buffer(t, index, tuple(shape), dtype, fail)
        return Tensor(name, tuple(shape), dtype, quant, data)

    def quantization(self, t: fb.Tensor, index: int, dtype: str, shape: tuple[int, ...], fail) -> Quant | None:
        q = self.read(f"tensor {index} quantization", t.Quantization)
        if q is None or self.read(f"tensor {index}", q.ScaleIsNone):
            if dtype == "int8":
                fail("is int8 without quantization parameters")
            return None
        scales = self.read(f"tensor {index} scales", q.ScaleAsNumpy)
        zero_points = ([] if self.read(f"tensor {index}", q.ZeroPointIsNone)
                       else self.read(f"tensor {index} zero points", q.ZeroPointAsNumpy))
        axis = self.read(f"tensor {index}", q.QuantizedDimension)
        if dtype == "float32":
            return None  # unused: float tensors are the model's edges
        if len(scales) == 0:
            if dtype == "int8":
                fail("is int8 without quantization parameters")
            return None
        if len(zero_points) != len(scales):
            fail(f"has {len(scales)} scales and {len(zero_points)} zero points")
        if len(scales) > 1 and not (0 <= axis < len(shape) and shape[axis] == len(scales)):
            fail(f"has {len(scales)} scales along dimension {axis} of shape {list(shape)}")
        lo, hi = SCALE_RANGE
        bad = [float(s) for s in scales if not (math.isfinite(s) and lo <= s <= hi)]
        if bad:
            fail(f"has scale {bad[0]!r}, outside {lo:g}..{hi:g}")
        if dtype == "int8" and any(not -128 <= z <= 127 for z in zero_points):
            fail(f"has zero point {next(int(z) for z in zero_points if not -128 <= z <= 127)}, outside -128..127")
        if dtype == "int32" and any(z != 0 for z in zero_points):
            fail("is int32 with a zero point other than 0")
        return Quant(tuple(float(s) for s in scales), tuple(int(z) for z in zero_points), int(axis))

    def buffer(self, t: fb.Tensor, index: int, shape: tuple[int, ...], dtype: str, fail) -> np.ndarray | None:
        b = self.read(f"tensor {index}", t.Buffer)
        if not 0 <= b < max(self.n_buffers, 1):
            fail(f"names buffer {b}; the model has {self.n_buffers}")
        if self.n_buffers == 0:
            return None
        buffer = self.read(f"buffer {b}", self.model.Buffers, b)
        offset, size = self.read(f"buffer {b}", buffer.Offset), self.read(f"buffer {b}", buffer.Size)
        if offset > 1:  # large models keep constants after the flatbuffer
            if offset + size > len(self.buf):
                fail(f"has data at bytes {offset}..{offset + size} of a {len(self.buf)}-byte file (truncated?)")
            raw = np.frombuffer(self.buf, np.uint8, count=size, offset=offset)
        elif not self.read(f"buffer {b}", buffer.DataIsNone) and self.read(f"buffer {b}", buffer.DataLength) > 0:
            raw = self.read(f"buffer {b} data", buffer.DataAsNumpy)
        else:
            return None
        want = math.prod(shape) * np.dtype(dtype).itemsize
        if raw.size != want:
            fail(f"has {raw.size} bytes of data, expected {want} (truncated?)")
        data = raw.view(np.dtype(dtype).newbyteorder("<")).astype(dtype).reshape(shape)
        data.flags.writeable = False
        return data

    # ---- ops

    def kind_name(self, o: fb.Operator) -> str:
        code = self.builtin(o)
        if code == fb.BuiltinOperator.CUSTOM:
            custom = self.read("a custom op", self.model.OperatorCodes(o.OpcodeIndex()).CustomCode) or b""
            return f"CUSTOM {custom.decode(errors='replace')}".strip()
        return _OP_NAMES.get(code, f"builtin {code}")

    def builtin(self, o: fb.Operator) -> int:
        index = self.read("an opcode index", o.OpcodeIndex)
        if not 0 <= index < self.n_codes:
            raise ModelImportError(f"{self.label}: an op has opcode index {index}; the model has {self.n_codes}")
        code = self.read("an operator code", self.model.OperatorCodes, index)
        # TFLite's GetBuiltinCode: the larger of the two fields (the deprecated one is an int8)
        return max(self.read("an operator code", code.BuiltinCode),
                   self.read("an operator code", code.DeprecatedBuiltinCode))

    def op(self, graph: Graph, i: int, o: fb.Operator, ins: list[int], outs: list[int], written: set[int]) -> Op:
        kind = self.kind_name(o)
        definition = op_for_builtin(self.builtin(o))
        if definition is None:
            self.fail("is not supported", i, kind)
        try:
            self.check_operands(graph, definition, Op(kind, tuple(ins), tuple(outs)), written)
            options = definition.parse_options(self.options(o, definition, i, kind), graph, tuple(ins))
            op = Op(kind, tuple(ins), tuple(outs), options)
            inferred = definition.output_shape(graph, op)
            if inferred != graph.tensor(outs[0]).shape:
                raise OpError(f"has shape {list(graph.tensor(outs[0]).shape)} in the file; the op gives "
                              f"{list(inferred)}", outs[0])
            definition.check(graph, op)
            if not self.float_edge(graph, op):  # the C runs it: the kernel library must express it
                definition.lower(graph, i, op, definition.prepare(graph, op))
        except OpError as e:
            self.fail(str(e), i, kind, e.tensor)
        return op

    def options(self, o: fb.Operator, definition: OpDef, i: int, kind: str):
        code = self.read(f"op {i} options", o.BuiltinOptionsType)
        if definition.options_type is None or code == fb.BuiltinOptions.NONE:
            return None
        if _OPTION_NAMES.get(code) != definition.options_type:
            self.fail(f"has {_OPTION_NAMES.get(code, code)} options, expected {definition.options_type}", i, kind)
        table = self.read(f"op {i} options", o.BuiltinOptions)
        if table is None:
            return None
        return self.read(f"op {i} options", getattr(fb, definition.options_type + "T").InitFromBuf,
                         table.Bytes, table.Pos)

    def check_operands(self, graph: Graph, d: OpDef, op: Op, written: set[int]) -> None:
        """Count, dtype and constness of every operand; activations written before they are read."""
        specs = list(d.operands)
        if specs[-1].variadic:
            specs += [specs[-1]] * (len(op.inputs) - len(specs))
        required = sum(1 for s in specs if not s.optional)
        if not required <= len(op.inputs) <= len(specs):
            raise OpError(f"has {len(op.inputs)} inputs, expected {required}"
                          + (f" to {len(specs)}" if len(specs) > required else ""))
        for spec, t in zip(specs, op.inputs):
            if t < 0:
                if not spec.optional:
                    raise OpError(f"is missing its {spec.role}")
                continue
            tensor = graph.tensor(t)
            if tensor.dtype not in spec.dtypes:
                raise OpError(f"{spec.role} has dtype {tensor.dtype}, expected {'/'.join(spec.dtypes)}", t)
            if spec.constant is not None and tensor.is_constant != spec.constant:
                raise OpError(f"{spec.role} must {'' if spec.constant else 'not '}be a constant", t)
            if not tensor.is_constant and t not in written:
                raise OpError(f"{spec.role} is read before any op writes it", t)
            if tensor.quant is not None and tensor.quant.per_channel and not tensor.is_constant:
                raise OpError(f"activation {spec.role} is per-channel quantized", t)
        out = op.outputs[0]
        tensor = graph.tensor(out)
        if tensor.shape[:1] != (1,):  # the executor runs batches along this axis
            raise OpError(f"output has shape {list(tensor.shape)}; activations have a batch of 1 first", out)
        if tensor.dtype != d.result_dtype:
            raise OpError(f"output has dtype {tensor.dtype}, expected {d.result_dtype}", out)
        if tensor.is_constant or out in written:
            raise OpError("output is a constant or written by an earlier op", out)
        if tensor.quant is not None and tensor.quant.per_channel:
            raise OpError("output is per-channel quantized", out)

    @staticmethod
    def float_edge(graph: Graph, op: Op) -> bool:
        """The float32 QUANTIZE at the model's input or DEQUANTIZE at its output."""
        first = op.inputs[0]
        return ((op.kind == "QUANTIZE" and first in graph.inputs and graph.tensor(first).dtype == "float32")
                or (op.kind == "DEQUANTIZE" and op.outputs[0] in graph.outputs))
