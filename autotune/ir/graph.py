"""The integer IR: the single description of a quantized, compressed model.

Everything downstream (reference executor, C generation, memory planning, cost features,
reports) reads a `Graph`; nothing re-derives a model from Keras.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class Quant:
    """Affine quantization: real = scale * (q - zero_point), per tensor or per channel."""

    scale: tuple[float, ...]
    zero_point: tuple[int, ...]
    axis: int = 0  # the quantized dimension when there is more than one scale

    @property
    def per_channel(self) -> bool:
        return len(self.scale) > 1


@dataclass(frozen=True)
class WeightEncoding:
    """How a constant weight tensor is stored in flash. "none": the plain array the kernel reads;
    any other `storage` is a weight storage of autotune.codecs (a blob with a CRC-32, decoded by
    a decoder call of the kernel plan into planned scratch before its kernel runs), with its
    hyperparameters `params`, e.g. (("bits", 4),). `bitwidth` is how many bits the values use
    (they lie on the 2^bitwidth levels of the tensor's scales); the int8 data stays what TFLM
    computes with. The kernel plan (autotune.ir.kernel_plan.WeightStorage) says what it costs."""

    storage: str = "none"
    params: tuple[tuple[str, int], ...] = ()
    bitwidth: int = 8


@dataclass(frozen=True, eq=False)
class Tensor:
    name: str
    shape: tuple[int, ...]
    dtype: str
    quant: Quant | None = None
    data: np.ndarray | None = None  # set for constants (weights, biases, shapes)
    encoding: WeightEncoding = field(default_factory=WeightEncoding)

    @property
    def is_constant(self) -> bool:
        return self.data is not None

    @property
    def size(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64))

    @property
    def logical_bytes(self) -> int:
        """Elements x dtype size: what a kernel reads. What flash holds for a constant depends on
        its storage (KernelCall.weights); an activation is stored as it is."""
        return self.size * np.dtype(self.dtype).itemsize


@dataclass(frozen=True, eq=False)
class Op:
    """One integer op. `inputs`/`outputs` index `Graph.tensors`; -1 marks an absent optional input.

    `kind` is a TFLite builtin name registered in autotune.ops; `options` are what its definition's
    `parse_options` gives (fused activations live in `options["activation"]`).
    """

    kind: str
    inputs: tuple[int, ...]
    outputs: tuple[int, ...]
    options: dict = field(default_factory=dict)


@dataclass(eq=False)
class Graph:
    name: str
    tensors: list[Tensor]
    ops: list[Op]
    inputs: list[int]
    outputs: list[int]

    def tensor(self, index: int) -> Tensor:
        return self.tensors[index]

    @property
    def constants(self) -> list[Tensor]:
        return [t for t in self.tensors if t.is_constant]

    @property
    def parameter_count(self) -> int:
        """Weights and biases (what Keras counts), not shape constants."""
        return sum(self.tensors[i].size for op in self.ops for i in op.inputs[1:]
                   if i >= 0 and self.tensors[i].is_constant and op.kind in _PARAMETERISED)


_PARAMETERISED = ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED")


def tensor_label(graph: Graph, index: int) -> str:
    """`t<index> <short name> <shape>`: TFLite names list every fused op after ';'."""
    t = graph.tensor(index)
    name = t.name.split(";")[0]
    name = name if len(name) <= 40 else "..." + name[-37:]
    return f"t{index} {name} {'x'.join(map(str, t.shape))}"
