"""The op registry: one definition per op kind (autotune.ops.base.OpDef).

The importer, reference executor, lowering (kernel plan), C generator, memory planner and cost
features all ask this registry about an op; an op kind not registered is refused where a graph
enters (the importer), never given a default. To add an op: write its OpDef (in the module of its
family), its C kernel in autotune/codegen/kernels/, and list it in `_DEFINITIONS` below.
"""
from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from autotune.ops.activations import HardSwish, LeakyRelu, Logistic, Relu, Relu6, Tanh
from autotune.ops.base import OpDef, OpError, Operand
from autotune.ops.conv import Conv2D, DepthwiseConv2D
from autotune.ops.elementwise import Add, Mul, Sub
from autotune.ops.fully_connected import FullyConnected
from autotune.ops.layout import Concatenation, Pad, Reshape, StridedSlice, Transpose
from autotune.ops.mean import Mean
from autotune.ops.pool import AveragePool2D, MaxPool2D
from autotune.ops.quantize import Dequantize, Quantize
from autotune.ops.softmax import Softmax

_DEFINITIONS: tuple[OpDef, ...] = (
    Conv2D(), DepthwiseConv2D(), FullyConnected(), AveragePool2D(), MaxPool2D(), Mean(), Softmax(), Add(),
    Reshape(), Pad(), Concatenation(), Quantize(), Dequantize(),
    Logistic(), Tanh(), HardSwish(), LeakyRelu(), Relu(), Relu6(), Sub(), Mul(), StridedSlice(), Transpose(),
)

OPS: Mapping[str, OpDef] = MappingProxyType({d.kind: d for d in _DEFINITIONS})
_BY_BUILTIN: Mapping[int, OpDef] = MappingProxyType({d.builtin: d for d in _DEFINITIONS})


def get_op(kind: str) -> OpDef:
    """The definition of op kind `kind`; OpError if there is none."""
    try:
        return OPS[kind]
    except KeyError:
        raise OpError(f"op kind {kind!r} is not supported (supported: {', '.join(sorted(OPS))})") from None


def op_for_builtin(code: int) -> OpDef | None:
    """The definition of a TFLite builtin operator code, or None if it is not supported."""
    return _BY_BUILTIN.get(code)


__all__ = ["OPS", "OpDef", "OpError", "Operand", "get_op", "op_for_builtin"]
