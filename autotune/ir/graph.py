"""The integer IR: the single description of a quantized, compressed model.

Everything downstream (reference executor, C generation, memory planning, cost features,
reports) reads a `Graph`; nothing re-derives a model from Keras.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

# Ops the IR carries. Fused activations live in `Op.options["activation"]`.
OP_KINDS = (
    "CONV_2D",
    "DEPTHWISE_CONV_2D",
    "FULLY_CONNECTED",
    "AVERAGE_POOL_2D",
    "MAX_POOL_2D",
    "MEAN",
    "RESHAPE",
    "SOFTMAX",
    "ADD",
    "PAD",
    "CONCATENATION",
    "QUANTIZE",
    "DEQUANTIZE",
)
ACTIVATIONS = ("NONE", "RELU", "RELU6")
DTYPES = ("int8", "int16", "int32", "uint8", "float32")


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
    """How a constant is stored in flash. Plain int8 today; sub-8-bit packing and codecs follow."""

    bitwidth: int = 8
    packing: str = "none"  # "none" | "bitpack"
    codec: str = "none"  # "none" | "rle" | "delta_rle" | "heatshrink" | "lz4" | "huffman" | "palette"


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
    def nbytes(self) -> int:
        return self.size * np.dtype(self.dtype).itemsize


@dataclass(frozen=True, eq=False)
class Op:
    """One integer op. `inputs`/`outputs` index `Graph.tensors`; -1 marks an absent optional input.

    Options by kind (all present where they apply):
      CONV_2D / DEPTHWISE_CONV_2D: stride_h, stride_w, dilation_h, dilation_w, padding
        ("SAME" | "VALID"), activation; DEPTHWISE_CONV_2D also depth_multiplier.
      FULLY_CONNECTED: activation, keep_num_dims.
      AVERAGE_POOL_2D / MAX_POOL_2D: filter_h, filter_w, stride_h, stride_w, padding, activation.
      MEAN: axis (tuple), keep_dims.  SOFTMAX: beta.  ADD: activation.
      CONCATENATION: axis, activation.  RESHAPE, PAD, QUANTIZE, DEQUANTIZE: none.
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
