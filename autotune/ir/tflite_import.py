"""Read an int8 .tflite flatbuffer into the IR."""
from __future__ import annotations

from pathlib import Path

import numpy as np

# The flatbuffer reader generated from TFLite's schema, as shipped inside the tflite-micro wheel we
# already pin for ground truth: no extra dependency, no TensorFlow import (about 0.3 s), and its
# schema is the one the TFLM interpreter itself reads.
from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as fb

from autotune.errors import ModelImportError
from autotune.ir.graph import Graph, Op, Quant, Tensor

_DTYPES = {fb.TensorType.INT8: "int8", fb.TensorType.INT32: "int32", fb.TensorType.FLOAT32: "float32"}
_OPS = {getattr(fb.BuiltinOperator, k): k for k in (
    "CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED", "AVERAGE_POOL_2D", "MAX_POOL_2D", "MEAN",
    "RESHAPE", "SOFTMAX", "ADD", "PAD", "CONCATENATION", "QUANTIZE", "DEQUANTIZE")}
_OP_NAMES = {v: k for k, v in vars(fb.BuiltinOperator).items() if not k.startswith("_")}
_ACTIVATIONS = {fb.ActivationFunctionType.NONE: "NONE", fb.ActivationFunctionType.RELU: "RELU",
                fb.ActivationFunctionType.RELU6: "RELU6"}
_ACT_NAMES = {v: k for k, v in vars(fb.ActivationFunctionType).items() if not k.startswith("_")}
_PADDING = {fb.Padding.SAME: "SAME", fb.Padding.VALID: "VALID"}


def import_tflite(source: bytes | str | Path, name: str | None = None) -> Graph:
    """Parse an int8 TFLite model (float32 only at a QUANTIZE input or DEQUANTIZE output).

    Raises ModelImportError naming the file (and the op and its index) for anything the IR
    cannot represent exactly: other ops, dtypes or fused activations, or a corrupt file.
    """
    if isinstance(source, (str, Path)):
        label = str(source)
        try:
            buf = Path(source).read_bytes()
        except OSError as e:
            raise ModelImportError(f"{label}: cannot read: {e.strerror}") from None
        name = name or Path(source).stem
    else:
        buf = bytes(source)
        label = name or "<tflite bytes>"
    if len(buf) < 8 or not fb.Model.ModelBufferHasIdentifier(buf, 0):
        raise ModelImportError(f"{label}: not a TFLite flatbuffer (no 'TFL3' identifier)")
    try:
        model = fb.ModelT.InitFromObj(fb.Model.GetRootAsModel(buf, 0))
    except Exception as e:  # the generated reader raises whatever a bad offset produces
        raise ModelImportError(f"{label}: corrupt or truncated TFLite file ({type(e).__name__}: {e})") from None
    try:
        return _Importer(model, buf, label).graph(name or "model")
    except ModelImportError:
        raise
    except Exception as e:
        raise ModelImportError(f"{label}: corrupt or truncated TFLite file ({type(e).__name__}: {e})") from None


class _Importer:
    def __init__(self, model: fb.ModelT, buf: bytes, label: str):
        self.model, self.buf, self.label = model, buf, label
        if not model.subgraphs or len(model.subgraphs) != 1:
            raise ModelImportError(f"{label}: expected one subgraph, found {len(model.subgraphs or [])}")
        self.sg = model.subgraphs[0]

    def fail(self, msg: str, op_index: int | None = None, op_name: str | None = None):
        where = f" op {op_index} ({op_name})" if op_index is not None else ""
        raise ModelImportError(f"{self.label}:{where} {msg}")

    def graph(self, name: str) -> Graph:
        tensors = [self.tensor(i, t) for i, t in enumerate(self.sg.tensors or [])]
        ops = [self.op(i, o, tensors) for i, o in enumerate(self.sg.operators or [])]
        g = Graph(name, tensors, ops, [int(i) for i in self.sg.inputs], [int(i) for i in self.sg.outputs])
        for i in g.inputs + g.outputs:
            if tensors[i].shape[:1] != (1,):
                self.fail(f"tensor {tensors[i].name!r} has batch size {tensors[i].shape[:1]}, expected 1")
        return g

    def tensor(self, index: int, t: fb.TensorT) -> Tensor:
        tname = t.name.decode() if isinstance(t.name, bytes) else str(t.name)
        if t.type not in _DTYPES:
            type_name = {v: k for k, v in vars(fb.TensorType).items()}.get(t.type, t.type)
            self.fail(f"tensor {index} {tname!r} has unsupported dtype {type_name}")
        dtype = _DTYPES[t.type]
        shape = [int(d) for d in (t.shape if t.shape is not None else [])]
        signature = t.shapeSignature if t.shapeSignature is not None else shape
        if len(shape) > 0 and signature[0] == -1:  # a dynamic batch runs here as a batch of one
            shape[0] = 1
        if any(d < 0 for d in shape):
            self.fail(f"tensor {index} {tname!r} has a dynamic shape {shape}")
        shape = tuple(shape)
        quant = None
        q = t.quantization
        if q is not None and q.scale is not None and len(q.scale) > 0:
            quant = Quant(tuple(float(s) for s in q.scale), tuple(int(z) for z in q.zeroPoint),
                          int(q.quantizedDimension))
        if dtype == "int8" and quant is None:
            self.fail(f"tensor {index} {tname!r} is int8 without quantization parameters")
        return Tensor(tname, shape, dtype, quant, self.buffer(index, tname, t.buffer, shape, dtype))

    def buffer(self, index: int, tname: str, b: int, shape: tuple, dtype: str) -> np.ndarray | None:
        buffer = self.model.buffers[b] if self.model.buffers and b < len(self.model.buffers) else None
        if buffer is None:
            return None
        if buffer.offset > 1:  # large models keep constants after the flatbuffer
            raw = np.frombuffer(self.buf, np.uint8, count=buffer.size, offset=buffer.offset)
        elif buffer.data is not None and len(buffer.data) > 0:
            raw = np.asarray(buffer.data, dtype=np.uint8)
        else:
            return None
        want = int(np.prod(shape, dtype=np.int64)) * np.dtype(dtype).itemsize
        if raw.size != want:
            self.fail(f"tensor {index} {tname!r} has {raw.size} bytes of data, expected {want} (truncated?)")
        data = raw.view(np.dtype(dtype).newbyteorder("<")).astype(dtype).reshape(shape)
        data.flags.writeable = False
        return data

    def op(self, index: int, o: fb.OperatorT, tensors: list[Tensor]) -> Op:
        code = self.model.operatorCodes[o.opcodeIndex]
        builtin = max(code.builtinCode, code.deprecatedBuiltinCode)
        op_name = _OP_NAMES.get(builtin, f"builtin {builtin}")
        if builtin == fb.BuiltinOperator.CUSTOM:
            op_name = f"CUSTOM {code.customCode.decode() if code.customCode else ''}".strip()
        if builtin not in _OPS:
            self.fail("is not supported", index, op_name)
        kind = _OPS[builtin]
        inputs = tuple(int(i) for i in o.inputs)
        outputs = tuple(int(i) for i in o.outputs)
        opts = self.options(kind, o.builtinOptions, index, inputs, tensors)
        self.check(kind, index, inputs, outputs, tensors)
        return Op(kind, inputs, outputs, opts)

    def activation(self, code: int, index: int, kind: str) -> str:
        if code not in _ACTIVATIONS:
            self.fail(f"has unsupported fused activation {_ACT_NAMES.get(code, code)}", index, kind)
        return _ACTIVATIONS[code]

    def options(self, kind: str, b, index: int, inputs: tuple, tensors: list[Tensor]) -> dict:
        act = lambda: self.activation(b.fusedActivationFunction if b is not None else 0, index, kind)  # noqa: E731
        if kind in ("CONV_2D", "DEPTHWISE_CONV_2D"):
            opts = dict(stride_h=b.strideH, stride_w=b.strideW, dilation_h=b.dilationHFactor,
                        dilation_w=b.dilationWFactor, padding=_PADDING[b.padding], activation=act())
            if kind == "DEPTHWISE_CONV_2D":
                in_ch, out_ch = tensors[inputs[0]].shape[-1], tensors[inputs[1]].shape[-1]
                opts["depth_multiplier"] = out_ch // in_ch  # the stored option is optional/legacy
            return opts
        if kind == "FULLY_CONNECTED":
            if b is not None and b.weightsFormat != fb.FullyConnectedOptionsWeightsFormat.DEFAULT:
                self.fail("uses shuffled weights", index, kind)
            return dict(activation=act(), keep_num_dims=bool(b.keepNumDims) if b is not None else False)
        if kind in ("AVERAGE_POOL_2D", "MAX_POOL_2D"):
            return dict(filter_h=b.filterHeight, filter_w=b.filterWidth, stride_h=b.strideH,
                        stride_w=b.strideW, padding=_PADDING[b.padding], activation=act())
        if kind == "MEAN":
            axis = tensors[inputs[1]].data
            if axis is None:
                self.fail("has a non-constant axis", index, kind)
            axis = tuple(int(a) % len(tensors[inputs[0]].shape) for a in np.ravel(axis))
            if 0 in axis:
                self.fail("reduces over the batch axis", index, kind)
            return dict(axis=axis, keep_dims=bool(b.keepDims))
        if kind == "SOFTMAX":
            return dict(beta=float(b.beta))
        if kind in ("ADD", "CONCATENATION"):
            opts = dict(activation=act())
            if kind == "CONCATENATION":
                opts["axis"] = int(b.axis)
            return opts
        return {}

    def check(self, kind: str, index: int, inputs: tuple, outputs: tuple, tensors: list[Tensor]):
        def want(i: int, dtypes: tuple, role: str, const: bool | None = None):
            if i < 0:
                if role != "bias":
                    self.fail(f"is missing its {role}", index, kind)
                return
            t = tensors[i]
            if t.dtype not in dtypes:
                self.fail(f"{role} {t.name!r} has dtype {t.dtype}, expected {'/'.join(dtypes)}", index, kind)
            if const is not None and t.is_constant != const:
                self.fail(f"{role} {t.name!r} must {'' if const else 'not '}be a constant", index, kind)

        n_act = {"ADD": 2, "CONCATENATION": len(inputs)}.get(kind, 1)
        for i in inputs[:n_act]:  # only ADD and CONCATENATION may take a constant operand
            want(i, ("float32",) if kind == "QUANTIZE" and tensors[i].dtype == "float32" else ("int8",),
                 "input", const=None if n_act > 1 else False)
        for i in outputs:
            want(i, ("float32",) if kind == "DEQUANTIZE" else ("int8",), "output")
        if kind in ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED"):
            want(inputs[1], ("int8",), "filter", const=True)
            want(inputs[2] if len(inputs) > 2 else -1, ("int32",), "bias", const=True)
        if kind in ("CONV_2D", "DEPTHWISE_CONV_2D"):
            in_ch, filt = tensors[inputs[0]].shape[-1], tensors[inputs[1]].shape
            if kind == "CONV_2D" and filt[-1] != in_ch:
                self.fail(f"is a grouped convolution ({in_ch} input channels, filter depth {filt[-1]})", index, kind)
            if kind == "DEPTHWISE_CONV_2D" and filt[-1] % in_ch:
                self.fail(f"has {filt[-1]} output channels for {in_ch} input channels", index, kind)
        if kind in ("RESHAPE", "MEAN", "PAD") and len(inputs) > 1:
            want(inputs[1], ("int32",), "shape/axis/paddings", const=True)
        if kind == "PAD" and len(inputs) > 2:
            self.fail("has explicit pad values (PADV2 form)", index, kind)
        if kind == "CONCATENATION":
            quants = {tensors[i].quant for i in inputs + outputs}
            if len(quants) > 1:
                self.fail("mixes quantization parameters across inputs and output", index, kind)
        if kind in ("AVERAGE_POOL_2D", "MAX_POOL_2D") and tensors[inputs[0]].quant != tensors[outputs[0]].quant:
            self.fail("has different input and output quantization", index, kind)
        if kind == "SOFTMAX":
            q = tensors[outputs[0]].quant
            if q.zero_point[0] != -128 or q.scale[0] != 1 / 256:
                self.fail("output quantization must be scale 1/256, zero point -128", index, kind)
        for i in inputs:
            t = tensors[i] if i >= 0 else None
            if t is not None and t.quant is not None and t.quant.per_channel and not t.is_constant:
                self.fail(f"activation {t.name!r} is per-channel quantized", index, kind)
