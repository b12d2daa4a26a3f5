"""Single-op .tflite models written directly with the TFLite schema: any shape, quantization and
options, without a TensorFlow conversion (milliseconds, not seconds)."""
from __future__ import annotations

from dataclasses import dataclass

import flatbuffers
import numpy as np
from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as fb

_TYPES = {"int8": fb.TensorType.INT8, "int32": fb.TensorType.INT32, "float32": fb.TensorType.FLOAT32}


@dataclass(frozen=True)
class Spec:
    """One tensor: an activation (data None) or a constant."""

    shape: tuple[int, ...]
    scale: float | None = None
    zero_point: int = 0
    dtype: str = "int8"
    data: np.ndarray | None = None


def single_op(kind: str, inputs: list[Spec], output: Spec, options=None) -> bytes:
    """A model of one op reading the (one) activation among `inputs` and the constants, writing
    `output`; `options` an fb.*OptionsT (its class gives the union type). The same Spec object
    twice is the same tensor read twice."""
    model = fb.ModelT()
    model.version = 3
    code = fb.OperatorCodeT()
    code.builtinCode = getattr(fb.BuiltinOperator, kind)
    code.deprecatedBuiltinCode = min(code.builtinCode, 127)
    code.version = 1
    model.operatorCodes = [code]
    model.buffers = [fb.BufferT()]  # buffer 0: the empty sentinel
    sg = fb.SubGraphT()
    sg.tensors = []
    specs = list({id(s): s for s in [*inputs, output]}.values())
    index = {id(s): k for k, s in enumerate(specs)}
    for k, spec in enumerate(specs):
        t = fb.TensorT()
        t.name = f"t{k}".encode()
        t.shape = np.array(spec.shape, np.int32)
        t.type = _TYPES[spec.dtype]
        t.buffer = 0
        if spec.data is not None:
            b = fb.BufferT()
            b.data = np.frombuffer(np.asarray(spec.data, spec.dtype).astype(np.dtype(spec.dtype).newbyteorder("<"))
                                   .tobytes(), np.uint8)
            model.buffers.append(b)
            t.buffer = len(model.buffers) - 1
        if spec.scale is not None:
            q = fb.QuantizationParametersT()
            q.scale = np.array([spec.scale], np.float32)
            q.zeroPoint = np.array([spec.zero_point], np.int64)
            t.quantization = q
        sg.tensors.append(t)
    activations = sorted({index[id(s)] for s in inputs if s.data is None})
    assert len(activations) == 1, "one model input"
    op = fb.OperatorT()
    op.opcodeIndex = 0
    op.inputs = np.array([index[id(s)] for s in inputs], np.int32)
    op.outputs = np.array([index[id(output)]], np.int32)
    if options is not None:
        op.builtinOptionsType = getattr(fb.BuiltinOptions, type(options).__name__[:-1])
        op.builtinOptions = options
    sg.operators = [op]
    sg.inputs = np.array(activations, np.int32)
    sg.outputs = np.array([index[id(output)]], np.int32)
    model.subgraphs = [sg]
    builder = flatbuffers.Builder(1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


def options(cls_name: str, **fields):
    """An fb.<cls_name>T with `fields` set."""
    o = getattr(fb, cls_name + "T")()
    for k, v in fields.items():
        setattr(o, k, v)
    return o
