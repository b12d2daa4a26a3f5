"""Model families: sampling, overrides, shapes, QAT compatibility and full-int8 conversion (real TF)."""
from __future__ import annotations

import os

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")

import numpy as np
import optuna
import pytest

from autotune.compress.finetune import weighted_layers

from search_spaces import FAMILIES, get_family
from search_spaces.base import Choice, IntRange

optuna.logging.set_verbosity(optuna.logging.WARNING)

SHAPE_1D, SHAPE_2D, CLASSES = (1, 256, 1), (32, 32, 1), 6
ALLOWED_OPS = {"CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED", "AVERAGE_POOL_2D", "MAX_POOL_2D", "MEAN",
               "RESHAPE", "SOFTMAX", "ADD", "PAD", "CONCATENATION", "QUANTIZE", "DEQUANTIZE"}


def sample_points(space, n: int = 5, seed: int = 0) -> list[dict]:
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=seed))
    return [space.sample(study.ask()) for _ in range(n)]


def shapes_for(family) -> list[tuple[int, ...]]:
    return [{"1d": SHAPE_1D, "2d": SHAPE_2D}[k] for k in family.signal_kinds]


def int8_ops(model, input_shape) -> list[str]:
    """Full-int8 TFLite conversion; returns the op names in the converted graph."""
    import tensorflow as tf

    def representative():
        rng = np.random.default_rng(0)
        for _ in range(4):
            yield [rng.standard_normal((1, *input_shape)).astype(np.float32)]

    conv = tf.lite.TFLiteConverter.from_keras_model(model)
    conv.optimizations = [tf.lite.Optimize.DEFAULT]
    conv.representative_dataset = representative
    conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    conv.inference_input_type = conv.inference_output_type = tf.int8
    interp = tf.lite.Interpreter(model_content=conv.convert())
    assert interp.get_input_details()[0]["dtype"] == np.int8
    assert interp.get_output_details()[0]["dtype"] == np.int8
    return [op["op_name"] for op in interp._get_ops_details()]


def test_registry():
    assert set(FAMILIES) == {"spectral_cnn", "ds_cnn", "mlp"}
    assert get_family("mlp") is FAMILIES["mlp"]
    with pytest.raises(KeyError, match="unknown model family"):
        get_family("resnet")


@pytest.mark.parametrize("name", sorted(FAMILIES))
def test_sample_build_shapes_and_qat(name):
    import tensorflow_model_optimization as tfmot

    family = get_family(name)
    space = family()
    for shape in shapes_for(family):
        for i, params in enumerate(sample_points(space)):
            model = space.build(params, shape, CLASSES)
            assert model.input_shape == (None, *shape)
            assert model.output_shape == (None, CLASSES)
            assert space.weighted_layers(params) == len(weighted_layers(model)), params
            free = [j for j, layer in enumerate(weighted_layers(model)[:-1]) if type(layer).__name__ != "DepthwiseConv2D"]
            assert space.channel_layers(params) == free, params  # the layers channel pruning may choose
            if i < 2:  # QAT wrapping costs about a second per model: two points per shape suffice
                tfmot.quantization.keras.quantize_model(model)


def test_per_block_params_follow_blocks():
    for p in sample_points(get_family("spectral_cnn")(), n=10):
        assert sorted(k for k in p if k.startswith("filters_")) == [f"filters_{i}" for i in range(p["blocks"])]
    for p in sample_points(get_family("mlp")(), n=10):
        assert sorted(k for k in p if k.startswith("units_")) == [f"units_{i}" for i in range(p["layers"])]


def test_overrides_narrow_and_unknown_keys_raise():
    space = get_family("spectral_cnn")({"blocks": IntRange(2, 2), "filters": Choice((16,))})
    for p in sample_points(space):
        assert p["blocks"] == 2 and p["filters_0"] == p["filters_1"] == 16
        model = space.build(p, SHAPE_1D, CLASSES)
        assert sum(type(layer).__name__ == "BatchNormalization" for layer in model.layers) >= 2
    assert all(p["layers"] == 3 for p in sample_points(get_family("mlp")({"layers": IntRange(3, 3)})))
    for name in FAMILIES:
        with pytest.raises(KeyError, match="unknown parameter"):
            get_family(name)({"no_such_param": IntRange(1, 2)})


def test_spectral_rejects_2d_input():
    space = get_family("spectral_cnn")()
    with pytest.raises(ValueError, match=r"\(1, L, C\)"):
        space.build(sample_points(space, n=1)[0], SHAPE_2D, CLASSES)


def test_parameter_count_grows_with_filters():
    spectral = get_family("spectral_cnn")()
    base = dict(blocks=3, kernel=5, pool=2, separable=True, dense=16, stem_stride=2)
    counts = [spectral.build({**base, **{f"filters_{i}": f for i in range(3)}}, SHAPE_1D, CLASSES).count_params()
              for f in (8, 16, 32)]
    assert counts[0] < counts[1] < counts[2]

    ds = get_family("ds_cnn")()
    base = dict(first_kernel=3, first_stride=2, blocks=2, block_stride=2)
    counts = [ds.build({**base, "first_filters": f, "block_filters": 2 * f}, SHAPE_2D, CLASSES).count_params()
              for f in (8, 16, 32)]
    assert counts[0] < counts[1] < counts[2]

    mlp = get_family("mlp")()
    counts = [mlp.build({"layers": 2, "units_0": u, "units_1": u}, SHAPE_1D, CLASSES).count_params()
              for u in (16, 32, 64)]
    assert counts[0] < counts[1] < counts[2]


def test_spectral_stem_stride_and_pool_skip():
    space = get_family("spectral_cnn")()
    p = dict(blocks=4, filters_0=8, filters_1=8, filters_2=8, filters_3=8, kernel=3, pool=4, separable=False,
             dense=8, stem_stride=4)
    model = space.build(p, SHAPE_1D, CLASSES)
    # 256 -> stem stride 4 -> 64 -> pool 16 -> pool 4 -> (4 // 4 < 4: no more pooling)
    pools = [layer for layer in model.layers if type(layer).__name__ == "MaxPooling2D"]
    assert len(pools) == 2 and pools[-1].output_shape == (None, 1, 4, 8)


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore::UserWarning")  # tf.lite.Interpreter deprecation, converter notes
@pytest.mark.parametrize("name,overrides,shape", [
    ("spectral_cnn", {"separable": Choice((True,)), "blocks": IntRange(3, 3)}, SHAPE_1D),
    ("ds_cnn", {"block_stride": Choice((2,))}, SHAPE_2D),
    ("ds_cnn", {}, SHAPE_1D),
    ("mlp", {}, SHAPE_2D),
])
def test_full_int8_conversion(name, overrides, shape):
    import tensorflow_model_optimization as tfmot

    space = get_family(name)(overrides)
    params = sample_points(space, n=1)[0]
    model = space.build(params, shape, CLASSES)
    tfmot.quantization.keras.quantize_model(model)  # also QAT-wraps the separable / 1D DS-CNN variants
    ops = int8_ops(model, shape)
    assert set(ops) <= ALLOWED_OPS, (params, ops)
    if name == "spectral_cnn":
        assert "DEPTHWISE_CONV_2D" in ops
    print(name, params, ops)
