"""What an op definition is: everything the rest of autotune needs to know about one op kind.

Like TFLM's TFLMRegistration (init/prepare/invoke) and TVM's op attributes (type relation,
compute, schedule), one `OpDef` per op kind holds, in one place:
  * its TFLite builtin, operand signature and options parsing (`operands`, `parse_options`);
  * shape inference and validation (`output_shape`, `check`): the importer recomputes every
    output shape and compares it with the file's;
  * the prepared parameters, TFLM's Prepare() ahead of time (`prepare`);
  * the reference kernel, bit-exact with TFLM (`run`);
  * its lowering to kernel calls (`lower`): kernel symbol, dimensions, weight storage, scratch
    bytes from the kernel's size function (mirrored by `<kernel>_get_buffer_size` in C),
    in-place capability and cost features (MACs, and other work counted as what it is);
  * the C emitter for its calls (`emit`).
Adding an op is one OpDef subclass registered in autotune/ops/__init__.py, its C kernel and tests.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as fb

from autotune.codecs import CodecError, encode
from autotune.ir.graph import Graph, Op, Tensor
from autotune.ir.kernel_plan import KernelCall, WeightStorage
from autotune.ops import fixedpoint as fp

if TYPE_CHECKING:
    from autotune.codegen.writer import CSource


class OpError(ValueError):
    """An op its definition cannot accept or express: the message says why, `tensor` names the
    tensor at fault (a graph tensor index) where there is one."""

    def __init__(self, message: str, tensor: int | None = None):
        super().__init__(message)
        self.tensor = tensor


@dataclass(frozen=True)
class Operand:
    """One input of an op, as its TFLite kernel reads it."""

    role: str  # "input", "filter", "bias", "shape", ...
    dtypes: tuple[str, ...] = ("int8",)
    constant: bool | None = False  # True: must be a constant; False: must not; None: either
    optional: bool = False  # may be absent (index -1) or missing at the end
    variadic: bool = False  # one or more of these (the last operand only)


PADDING = {fb.Padding.SAME: "SAME", fb.Padding.VALID: "VALID"}
ACTIVATIONS = {fb.ActivationFunctionType.NONE: "NONE", fb.ActivationFunctionType.RELU: "RELU",
               fb.ActivationFunctionType.RELU6: "RELU6"}
_ACTIVATION_NAMES = {v: k for k, v in vars(fb.ActivationFunctionType).items() if not k.startswith("_")}


class OpDef(ABC):
    """The definition of one op kind. Instances are stateless; every method is pure."""

    kind: ClassVar[str]  # the TFLite builtin's name, e.g. "CONV_2D"
    tflm_kernel: ClassVar[str]  # the TFLM reference kernel the reference and C kernels mirror
    operands: ClassVar[tuple[Operand, ...]] = (Operand("input"),)
    result_dtype: ClassVar[str] = "int8"
    options_type: ClassVar[str | None] = None  # the fb.BuiltinOptions table `parse_options` reads

    @property
    def builtin(self) -> int:
        """The fb.BuiltinOperator code."""
        return getattr(fb.BuiltinOperator, self.kind)

    # ---- entering the graph

    def parse_options(self, options: Any, graph: Graph, inputs: tuple[int, ...]) -> dict:
        """The IR's `Op.options` from the builtin options table (an fb.*OptionsT, or None).
        `graph` holds every tensor (constants with their data) and the ops before this one."""
        return {}

    def data_inputs(self, op: Op) -> int:
        """How many leading inputs the kernel computes on; the rest are read by `prepare`."""
        if self.operands[-1].variadic:
            return len(op.inputs)
        return sum(1 for o in self.operands if o.constant is not True)

    @abstractmethod
    def output_shape(self, graph: Graph, op: Op) -> tuple[int, ...]:
        """The output shape the op's semantics give for its inputs (TFLM's Prepare checks)."""

    def check(self, graph: Graph, op: Op) -> None:
        """What TFLM's Prepare requires beyond operand dtypes and shapes: quantization, ranges."""

    # ---- run time

    @abstractmethod
    def prepare(self, graph: Graph, op: Op) -> Any:
        """Every integer the kernel needs at run time, derived as TFLM's Prepare() does."""

    @abstractmethod
    def run(self, graph: Graph, op: Op, params: Any, *inputs: np.ndarray) -> np.ndarray:
        """The reference kernel on a batch: inputs (N, *shape[1:]) -> output (N, *shape[1:])."""

    @abstractmethod
    def lower(self, graph: Graph, index: int, op: Op, params: Any) -> tuple[KernelCall, ...]:
        """The kernel calls that run op `index` of `graph`, in order."""

    @abstractmethod
    def emit(self, c: CSource, call: KernelCall) -> None:
        """Declare the call's parameters and constants in `c` and append the call."""

    def filter_at_a_time(self, graph: Graph, call: KernelCall) -> KernelCall | None:
        """`call` with its coded weights decoded a few output channels' filters at a time, just
        before those channels are computed (format "decoded_row"), or None where it cannot be."""
        return None


# ---------------------------------------------------------------- helpers for definitions


def scale(t: Tensor) -> float:
    return t.quant.scale[0]


def zero_point(t: Tensor) -> int:
    return t.quant.zero_point[0]


def frozen(a: np.ndarray) -> np.ndarray:
    a.flags.writeable = False
    return a


def requantization(real: float, tensor: int, what: str = "requantization") -> tuple[int, int]:
    """QuantizeMultiplier(real), refused when its left shift exceeds what TFLM's int32
    MultiplyByQuantizedMultiplier can take (a scale far off, as in a corrupt file)."""
    multiplier, shift = fp.quantize_multiplier(real)
    if shift > 30:
        raise OpError(f"{what} by {real:.6g} is outside TFLM's fixed point (scales far apart)", tensor)
    return multiplier, shift


def activation_range(activation: str, graph: Graph, t: int) -> tuple[int, int]:
    """CalculateActivationRangeQuantized for int8 output tensor t; refused where TFLM's
    zero_point + int32(round(f / scale)) would overflow."""
    out = graph.tensor(t)
    for bound in (0.0, 6.0)[:{"NONE": 0, "RELU": 1, "RELU6": 2}[activation]]:
        if abs(float(np.float32(bound) / np.float32(scale(out)))) >= 2**31 - 256:
            raise OpError(f"output scale {scale(out):.6g} puts {activation} outside int32", t)
    return fp.activation_range(activation, out)


def padding(code: int) -> str:
    if code not in PADDING:
        raise OpError(f"has unknown padding {code}")
    return PADDING[code]


def activation(code: int) -> str:
    """A fused activation the int8 kernels implement (as an output range)."""
    if code not in ACTIVATIONS:
        raise OpError(f"has unsupported fused activation {_ACTIVATION_NAMES.get(code, code)}")
    return ACTIVATIONS[code]


def fused_activation(options: Any) -> str:
    return activation(options.fusedActivationFunction if options is not None else 0)


def bias_type(options: Any) -> None:
    """Conv and fully connected options may name the bias type: unset (0) or int32 here; TFLM
    refuses a type it does not know."""
    code = getattr(options, "quantizedBiasType", 0) if options is not None else 0
    if code not in (0, fb.TensorType.INT32):
        raise OpError(f"has quantized bias type {code}")


def require_rank(graph: Graph, t: int, ranks: tuple[int, ...], role: str) -> tuple[int, ...]:
    shape = graph.tensor(t).shape
    if len(shape) not in ranks:
        raise OpError(f"{role} has rank {len(shape)}, expected {' or '.join(map(str, ranks))}", t)
    return shape


def same_quantization(graph: Graph, a: int, b: int, what: str) -> None:
    qa, qb = graph.tensor(a).quant, graph.tensor(b).quant
    if (qa.scale[0], qa.zero_point[0]) != (qb.scale[0], qb.zero_point[0]):
        raise OpError(f"{what}: input and output quantization differ", b)


def weight_storage(graph: Graph, t: int, role: str) -> WeightStorage:
    """How the kernel's weight tensor t reaches it: the plain array, or, for a tensor in a weight
    storage of autotune.codecs (Tensor.encoding), the int8 values its decoder call writes into
    planned scratch (`autotune.lowering` puts that call before the kernel's)."""
    tensor = graph.tensor(t)
    if tensor.encoding.storage == "none":
        return WeightStorage(t, role, f"dense_{tensor.dtype}", tensor.logical_bytes, tensor.logical_bytes)
    if tensor.dtype != "int8":
        raise OpError(f"weights {tensor.name!r} are {tensor.dtype}; only int8 weights are coded", t)
    try:  # decoded whole, in the kernel's layout: rows are the first dimension
        encoded = encode(tensor.data, tensor.encoding.storage, **dict(tensor.encoding.params))
    except CodecError as e:
        raise OpError(f"weights {tensor.name!r} cannot be stored as {tensor.encoding.storage}: {e}", t) from None
    return WeightStorage(t, role, "decoded", tensor.logical_bytes, 0,
                         decoder=encoded.decode_call().symbol, encoded=encoded)


def has_input(op: Op, k: int) -> bool:
    return len(op.inputs) > k and op.inputs[k] >= 0


def c_shape(graph: Graph, t: int) -> str:
    return "x".join(map(str, graph.tensor(t).shape))
