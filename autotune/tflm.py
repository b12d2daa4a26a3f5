"""The TFLite Micro interpreter: the ground truth for integer arithmetic on the device."""
from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from autotune.capture import captured_fd
from autotune.errors import AutotuneError


class TflmMismatch(AutotuneError):
    """Our integer arithmetic disagrees with TFLite Micro's."""


HOST_ARENA_BYTES = 32 << 20


def _interpreter(tflite: bytes):
    from tflite_micro.python.tflite_micro import runtime

    # TFLM's default arena (10x the model size) is too small for small models with large
    # activations; this host arena only bounds the allocation, TFLM reports what it used.
    return runtime.Interpreter.from_bytes(tflite, arena_size=10 * len(tflite) + HOST_ARENA_BYTES)


def tflm_outputs(tflite: bytes, x_int8: np.ndarray) -> np.ndarray:
    """Run each example through TFLM; x_int8 has shape (N, *input_shape)."""
    it = _interpreter(tflite)
    shape = tuple(it.get_input_details(0)["shape"])
    outputs = []
    for x in x_int8:
        it.set_input(x.reshape(shape), 0)
        it.invoke()
        outputs.append(np.array(it.get_output(0)).reshape(-1))
    return np.stack(outputs)


@dataclass(frozen=True)
class TflmArena:
    """The arena TFLM allocates for a model (host build; read from print_allocations)."""

    head: int  # non-persistent: the planned activations (input and output included) and kernel scratch
    tail: int  # persistent: tensor and node structs, each kernel's prepared data
    total: int  # head + tail


def tflm_arena(tflite: bytes) -> TflmArena:
    it = _interpreter(tflite)
    with captured_fd(2) as printed:  # print_allocations writes to the C stderr
        it.print_allocations()
    text = printed[0]
    sizes = dict(re.findall(r"Arena allocation (total|head|tail) (\d+) bytes", text))
    if len(sizes) != 3:
        raise RuntimeError(f"TFLM did not report its arena size: {text[:200]!r}")
    return TflmArena(**{k: int(v) for k, v in sizes.items()})


def check_matches_tflm(tflite: bytes, x_int8: np.ndarray, outputs: np.ndarray, name: str) -> None:
    """TFLM stays the check: `outputs` (ours, for `x_int8`) must equal TFLM's exactly."""
    tflm = tflm_outputs(tflite, x_int8).reshape(len(x_int8), -1)
    differ = np.any(tflm != outputs.reshape(len(x_int8), -1), axis=1)
    if differ.any():
        raise TflmMismatch(f"{name}: the reference executor and TFLite Micro differ on input {int(np.argmax(differ))}")
