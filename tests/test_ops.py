"""The registry's ops one at a time: single-op models over several shapes, quantizations and
options, bit-exact with the TFLite Micro interpreter in the reference executor (200 inputs each),
and the first case of every op also as generated C under ASan and UBSan."""
from __future__ import annotations

import subprocess

import numpy as np
import pytest
from tflite_micro.python.tflite_micro import runtime
from tflite_writer import Spec, options, single_op

from autotune import executor
from autotune.codegen import generate_c
from autotune.ir.tflite_import import import_tflite
from device_runners.build import build_host

N_INPUTS = 200
RNG = np.random.default_rng(7)


def _const(shape: tuple[int, ...], scale: float, zero_point: int) -> Spec:
    return Spec(shape, scale, zero_point, data=RNG.integers(-128, 128, shape))


def _vector(values: list[int]) -> Spec:
    return Spec((len(values),), dtype="int32", data=np.array(values))


def _unary(kind: str, shape: tuple[int, ...], q_in: tuple, q_out: tuple, opts=None) -> bytes:
    return single_op(kind, [Spec(shape, *q_in)], Spec(shape, *q_out), opts)


def _binary(kind: str, shape: tuple[int, ...], other: Spec | None, q_in: tuple, q_out: tuple,
            activation: int = 0) -> bytes:
    """`kind` of the input and a constant `other`, or of the input with itself."""
    x = Spec(shape, *q_in)
    out_shape = tuple(int(n) for n in np.broadcast_shapes(shape, other.shape)) if other else shape
    return single_op(kind, [x, other or x], Spec(out_shape, *q_out),
                     options(f"{kind.title()}Options", fusedActivationFunction=activation))


def _slice(shape, begin, end, strides, out_shape, **masks) -> bytes:
    return single_op("STRIDED_SLICE", [Spec(shape, 0.05, 3), _vector(begin), _vector(end), _vector(strides)],
                     Spec(out_shape, 0.05, 3), options("StridedSliceOptions", **masks))


def _transpose(shape, perm) -> bytes:
    return single_op("TRANSPOSE", [Spec(shape, 0.05, -7), _vector(perm)],
                     Spec(tuple(shape[a] for a in perm), 0.05, -7))


SIGMOID_OUT, TANH_OUT = (1 / 256, -128), (1 / 128, 0)
CASES = {
    "LOGISTIC": [_unary("LOGISTIC", (1, 40), (0.1, 3), SIGMOID_OUT),
                 _unary("LOGISTIC", (1, 2, 8, 3), (0.02, -50), SIGMOID_OUT),
                 _unary("LOGISTIC", (1, 1, 64, 2), (0.5, 100), SIGMOID_OUT)],
    "TANH": [_unary("TANH", (1, 1, 30, 4), (0.03, -10), TANH_OUT),
             _unary("TANH", (1, 50), (0.2, 0), TANH_OUT),
             _unary("TANH", (1, 3, 3, 7), (0.004, 60), TANH_OUT)],
    "HARD_SWISH": [_unary("HARD_SWISH", (1, 1, 40, 3), (0.05, -20), (0.04, -60)),
                   _unary("HARD_SWISH", (1, 24), (0.2, 10), (0.15, -100)),
                   _unary("HARD_SWISH", (1, 4, 4, 5), (0.01, 0), (0.008, -120))],
    "LEAKY_RELU": [_unary("LEAKY_RELU", (1, 1, 32, 4), (0.05, -5), (0.04, -20), options("LeakyReluOptions", alpha=0.2)),
                   _unary("LEAKY_RELU", (1, 60), (0.1, 30), (0.1, 30), options("LeakyReluOptions", alpha=0.01)),
                   _unary("LEAKY_RELU", (1, 2, 5, 6), (0.02, 0), (0.03, 10), options("LeakyReluOptions", alpha=0.5))],
    "RELU": [_unary("RELU", (1, 1, 32, 4), (0.05, -10), (0.03, -128)),
             _unary("RELU", (1, 40), (0.1, 20), (0.1, 20)),
             _unary("RELU", (1, 3, 3, 2), (0.02, -100), (0.05, -90))],
    "RELU6": [_unary("RELU6", (1, 1, 32, 4), (0.05, -10), (0.05, -10)),
              _unary("RELU6", (1, 40), (0.02, -128), (0.02, -128)),
              _unary("RELU6", (1, 3, 3, 2), (0.1, 50), (0.1, 50))],
    "QUANTIZE": [_unary("QUANTIZE", (1, 1, 32, 4), (0.05, -10), (0.08, 7)),
                 _unary("QUANTIZE", (1, 40), (0.02, 100), (0.01, -30))],
    "ADD": [_binary("ADD", (1, 1, 16, 4), _const((1, 1, 1, 4), 0.04, 5), (0.05, -3), (0.08, -2), activation=1),
            _binary("ADD", (1, 2, 3, 5), None, (0.05, -3), (0.1, 0))],
    "SUB": [_binary("SUB", (1, 1, 16, 4), _const((1, 4), 0.04, 5), (0.05, -3), (0.08, -2)),
            _binary("SUB", (1, 2, 3, 5), _const((1, 2, 3, 5), 0.03, -20), (0.05, -3), (0.06, 10), activation=3),
            _binary("SUB", (1, 24), _const((1, 1), 0.2, 0), (0.05, 0), (0.1, 0))],
    "MUL": [_binary("MUL", (1, 1, 16, 4), _const((1, 4), 0.04, 5), (0.05, -3), (0.02, 1)),
            _binary("MUL", (1, 2, 3, 5), _const((1, 2, 1, 5), 0.03, -20), (0.05, -3), (0.05, 10), activation=1),
            _binary("MUL", (1, 30), None, (0.1, 7), (0.3, -100))],
    "STRIDED_SLICE": [_slice((1, 1, 64, 4), [0, 0, 3, 0], [1, 1, 59, 4], [1, 1, 1, 1], (1, 1, 56, 4)),
                      _slice((1, 1, 40, 6), [0, 0, 1, 0], [1, 1, 40, 6], [1, 1, 3, 2], (1, 1, 13, 3)),
                      _slice((1, 5, 8, 3), [0, 4, -1, 2], [1, 0, 0, 3], [1, -1, -2, 1], (1, 4, 4),
                             shrinkAxisMask=8),
                      _slice((1, 30, 4), [0, 0, 0], [0, 0, 0], [1, 2, 1], (1, 15, 4), beginMask=7, endMask=7)],
    "TRANSPOSE": [_transpose((1, 1, 20, 6), [0, 1, 3, 2]), _transpose((1, 3, 4, 5), [0, 3, 1, 2]),
                  _transpose((1, 7, 9), [0, 2, 1])],
}


def _inputs(graph, seed: int) -> np.ndarray:
    shape = graph.tensor(graph.inputs[0]).shape
    return np.random.default_rng(seed).integers(-128, 128, (N_INPUTS, *shape)).astype(np.int8)


def _tflm(model: bytes, x: np.ndarray) -> np.ndarray:
    it = runtime.Interpreter.from_bytes(model)
    out = []
    for xi in x:
        it.set_input(xi, 0)
        it.invoke()
        out.append(np.array(it.get_output(0)))
    return np.stack(out)


@pytest.mark.parametrize("kind, case", [(k, i) for k, cases in CASES.items() for i in range(len(cases))])
def test_executor_matches_tflm(kind, case):
    model = CASES[kind][case]
    graph = import_tflite(model, f"{kind.lower()}_{case}")
    assert [op.kind for op in graph.ops] == [kind]
    x = _inputs(graph, case)
    want = _tflm(model, x)
    got = executor.run(graph, x.reshape((N_INPUTS,) + graph.tensor(graph.inputs[0]).shape[1:]))
    bad = np.argwhere(got.reshape(want.shape) != want)
    assert not len(bad), (f"{graph.name}: differs from TFLM on {len(bad)} values, first at input {bad[0][0]}: "
                          f"ours {got.reshape(want.shape)[tuple(bad[0])]}, TFLM {want[tuple(bad[0])]}")


@pytest.mark.slow
@pytest.mark.parametrize("kind", CASES)
def test_generated_c_matches_the_executor(kind, tmp_path):
    graph = import_tflite(CASES[kind][0], kind.lower())
    generated = generate_c(graph, tmp_path / "c")
    exe = build_host(generated.out_dir, tmp_path / "model", sanitize=True)
    x = _inputs(graph, 11)
    proc = subprocess.run([str(exe)], input=x.tobytes(), capture_output=True, timeout=120)
    assert proc.returncode == 0, proc.stderr.decode(errors="replace")[-2000:]
    got = np.frombuffer(proc.stdout, np.int8).reshape(N_INPUTS, -1)
    want = executor.run(graph, x.reshape((N_INPUTS,) + graph.tensor(graph.inputs[0]).shape[1:]))
    np.testing.assert_array_equal(got, want.reshape(N_INPUTS, -1), err_msg=kind)
