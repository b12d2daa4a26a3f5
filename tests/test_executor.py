"""The reference executor against TFLite Micro, bit for bit, op by op; and the fixed-point helpers."""
from __future__ import annotations


import numpy as np
import pytest

import model_zoo
from autotune import executor
from autotune.ops import fixedpoint as P
from autotune.ir.graph import Graph
from autotune.ir.tflite_import import import_tflite

N_INPUTS = 200


def _random_inputs(graph, n: int, seed: int = 0) -> np.ndarray:
    t = graph.tensor(graph.inputs[0])
    rng = np.random.default_rng(seed)
    if t.dtype == "float32":
        return rng.normal(0.0, 2.0, (n,) + t.shape[1:]).astype(np.float32)
    return rng.integers(-128, 128, (n,) + t.shape[1:]).astype(np.int8)  # the full range: saturation too


# ------------------------------------------------------------------ bit-exact with TFLite Micro


@pytest.mark.slow
@pytest.mark.parametrize("name", model_zoo.SUPPORTED)
def test_matches_tflm_every_layer(name, zoo_dir):
    from tflite_micro.python.tflite_micro import runtime

    model = model_zoo.tflite_bytes(name, zoo_dir)
    graph = import_tflite(model, name)
    x = _random_inputs(graph, N_INPUTS)
    ours = executor.run_layers(graph, x)
    # kPreserveAllTensors keeps every intermediate tensor in the arena after Invoke(), so
    # GetTensor(i) reads each layer's output directly: no sub-models needed.
    tflm = runtime.Interpreter.from_bytes(model, intrepreter_config=runtime.InterpreterConfig.kPreserveAllTensors)
    for n in range(N_INPUTS):
        tflm.set_input(x[n:n + 1], 0)
        tflm.invoke()
        for k, op in enumerate(graph.ops):
            out = op.outputs[0]
            want = tflm.GetTensor(out, 0)["tensor_data"]
            got = ours[out][n:n + 1].reshape(want.shape)
            if not np.array_equal(got, want):
                diff = np.flatnonzero(got != want)
                pytest.fail(f"{name}: op {k} {op.kind} (tensor {out}) differs from TFLM on input {n}: "
                            f"{diff.size} values, first at {diff[0]}: ours {got.flat[diff[0]]}, "
                            f"TFLM {want.flat[diff[0]]}")
        np.testing.assert_array_equal(executor.run(graph, x[n:n + 1])[0], tflm.get_output(0)[0],
                                      err_msg=f"{name}: final output, input {n}")


@pytest.mark.slow
def test_quantize_input_is_the_edge_quantize(zoo_dir):
    """quantize_input on an int8-input graph gives what a QUANTIZE op (checked against TFLM in
    float_io) gives; a graph with a float input takes the float data itself."""
    f_graph = import_tflite(model_zoo.tflite_bytes("float_io", zoo_dir), "float_io")
    x = _random_inputs(f_graph, 50)
    np.testing.assert_array_equal(executor.quantize_input(f_graph, x), x)
    quantize = f_graph.ops[0]
    assert quantize.kind == "QUANTIZE"
    int8_graph = Graph("no_quantize", f_graph.tensors, f_graph.ops[1:], [quantize.outputs[0]], f_graph.outputs)
    q = executor.quantize_input(int8_graph, x)
    np.testing.assert_array_equal(q, executor.run_layers(f_graph, x)[quantize.outputs[0]])
    np.testing.assert_array_equal(executor.run(int8_graph, q), executor.run(f_graph, x))


@pytest.mark.slow
def test_rejects_wrong_input_shape(zoo_dir):
    graph = import_tflite(model_zoo.tflite_bytes("dense", zoo_dir), "dense")
    with pytest.raises(ValueError, match=r"dense: input must be int8 \(N, 20\), got int8 \(4, 21\)"):
        executor.run(graph, np.zeros((4, 21), np.int8))
    with pytest.raises(ValueError, match=r"got float32 \(4, 20\) \(quantize_input converts float data\)"):
        executor.run(graph, np.zeros((4, 20), np.float32))


@pytest.mark.slow
def test_large_batches_run_in_chunks_with_the_same_outputs(zoo_dir, monkeypatch):
    graph = import_tflite(model_zoo.tflite_bytes("dense", zoo_dir), "dense")
    x = _random_inputs(graph, 50)
    whole = executor.run_layers(graph, x)[graph.outputs[0]]
    largest = max(int(np.prod(graph.tensor(t).shape[1:])) for op in graph.ops for t in op.outputs)
    monkeypatch.setattr(executor, "CHUNK_ELEMENTS", 7 * largest)  # chunks of 7: the last one short
    calls = []
    real = executor.run_layers
    monkeypatch.setattr(executor, "run_layers", lambda g, xs: calls.append(len(xs)) or real(g, xs))
    np.testing.assert_array_equal(executor.run(graph, x), whole)
    assert calls == [7] * 7 + [1]


# ------------------------------------------------------------------ fixed point, against TFLM's C
# Scalar transcriptions of tensorflow/lite/kernels/internal/common.h and gemmlowp fixedpoint.h.


def _srdhm(a: int, b: int) -> int:
    if a == b == -(2**31):
        return 2**31 - 1
    ab = a * b
    t = ab + ((1 << 30) if ab >= 0 else 1 - (1 << 30))
    return (abs(t) >> 31) * (1 if t >= 0 else -1)  # C division truncates


def _rdbpot(x: int, e: int) -> int:
    mask = (1 << e) - 1
    return (x >> e) + ((x & mask) > (mask >> 1) + (x < 0))


def _mbqm(x: int, m: int, shift: int) -> int:
    shifted = ((x << max(shift, 0)) + 2**31) % 2**32 - 2**31
    return _rdbpot(_srdhm(shifted, m), max(-shift, 0))


def test_multiply_by_quantized_multiplier_matches_tflm():
    rng = np.random.default_rng(0)
    xs = np.concatenate([np.arange(-3000, 3000), rng.integers(-2**31, 2**31, 3000)])
    multipliers = [0, 1, 2**30, 2**30 + 1, 3 * 2**29, 1717986918, 2**31 - 1]  # ties and extremes
    for m in multipliers:
        for shift in (-31, -12, -5, -1, 0, 1, 3):
            x = xs >> max(shift, 0) if shift > 0 else xs
            want = [_mbqm(int(v), m, shift) for v in x]
            got = P.multiply_by_quantized_multiplier(x, m, shift)
            assert got.tolist() == want, f"m={m} shift={shift}"
    # per-channel multipliers and shifts broadcast along the last axis
    ms, shifts = np.array([2**30 + 7, 2**31 - 1, 1234567890]), np.array([0, -3, 2])
    x = np.arange(-2000, 2000)[:, None] * np.array([1, 37, 3])
    want = [[_mbqm(int(v), int(m), int(s)) for v, m, s in zip(row, ms, shifts)] for row in x]
    assert P.multiply_by_quantized_multiplier(x, ms, shifts).tolist() == want


def test_srdhm_and_rounding_divide_match_gemmlowp():
    rng = np.random.default_rng(1)
    a = rng.integers(-2**31, 2**31, 5000)
    b = np.concatenate([rng.integers(-2**31, 2**31, 4999), [-2**31]])
    a[-1] = -2**31  # the one saturating case
    assert P.saturating_rounding_doubling_high_mul(a, b).tolist() == [_srdhm(int(p), int(q)) for p, q in zip(a, b)]
    for e in (0, 1, 2, 7, 31):
        assert P.rounding_divide_by_pot(a, e).tolist() == [_rdbpot(int(v), e) for v in a]


def test_quantize_multiplier():
    assert P.quantize_multiplier(0.0) == (0, 0)
    assert P.quantize_multiplier(0.5) == (2**30, 0)
    assert P.quantize_multiplier(1.5) == (3 * 2**29, 1)
    assert P.quantize_multiplier(1.0 - 2**-40) == (2**30, 1)  # rounds up to 2**31: halved, shift + 1
    assert P.quantize_multiplier(2**-40) == (0, 0)  # below 2**-32: TFLM's zero multiplier
    m, s = P.quantize_multiplier(0.0123)
    assert abs(m * 2.0 ** (s - 31) - 0.0123) < 1e-11


def test_softmax_tables_track_exp_and_reciprocal():
    diffs = -np.arange(0, 2**26 * 8, 2**20)
    got = P.exp_on_negative_values(diffs, 5) / 2**31
    np.testing.assert_allclose(got, np.exp(diffs / 2**26), atol=1e-6)
    x = np.array([1, 3, 100, 4095]) << 19  # Q12.19 values 1, 3, 100, 4095
    recip, bits = P.get_reciprocal(x, 12)
    np.testing.assert_allclose(recip / 2**31 / 2.0**bits, 1 / np.array([1, 3, 100, 4095]), rtol=1e-8)
