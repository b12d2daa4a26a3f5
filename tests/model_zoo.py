"""Small int8 .tflite test models, built with tf_keras and converted with TFLiteConverter.

Between them they cover every op the importer supports. 1D signals are written as 2D
(input (1, L, C), kernels (1, k)), as the search spaces do. Conversion takes 1-3 s per model, so
`tflite_bytes` caches the result in a directory the caller owns (a session temp dir in tests).
"""
from __future__ import annotations

import copy
import os
import warnings
from pathlib import Path
from typing import Callable

import flatbuffers
import numpy as np
from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as fb

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")


def _layers():
    import tf_keras

    return tf_keras, tf_keras.layers


def _input(shape: tuple[int, ...]):
    keras, _ = _layers()
    return keras.Input(shape=shape, batch_size=1)  # static batch: TFLM wants static shapes


def conv1d():
    """Conv2D (1, k) on (1, L, C): SAME, VALID, strides, fused RELU and RELU6; Flatten, Dense, Softmax."""
    keras, L = _layers()
    x = inp = _input((1, 64, 3))
    x = L.Conv2D(8, (1, 5), padding="same", activation="relu")(x)
    x = L.Conv2D(8, (1, 3), strides=(1, 2), padding="valid", activation="relu6")(x)
    x = L.Conv2D(4, (1, 4), strides=(1, 3), padding="same")(x)
    x = L.Flatten()(x)
    x = L.Dense(6)(x)
    return keras.Model(inp, L.Softmax()(x))


def conv_dilated():
    keras, L = _layers()
    x = inp = _input((1, 48, 2))
    x = L.Conv2D(6, (1, 3), dilation_rate=(1, 2), padding="same", activation="relu")(x)
    x = L.Conv2D(6, (1, 3), dilation_rate=(1, 3), padding="valid")(x)
    return keras.Model(inp, x)


def depthwise():
    """DepthwiseConv2D with depth multiplier 1 (SAME) and 2 (VALID, strided)."""
    keras, L = _layers()
    x = inp = _input((1, 40, 4))
    x = L.DepthwiseConv2D((1, 5), padding="same", activation="relu")(x)
    x = L.DepthwiseConv2D((1, 3), strides=(1, 2), depth_multiplier=2, padding="valid")(x)
    x = L.Conv2D(5, (1, 1), activation="relu6")(x)
    return keras.Model(inp, x)


def dense():
    keras, L = _layers()
    x = inp = _input((20,))
    x = L.Dense(16, activation="relu")(x)
    x = L.Dense(8, activation="relu6")(x)
    return keras.Model(inp, L.Dense(4)(x))


def pools():
    keras, L = _layers()
    x = inp = _input((1, 33, 4))
    x = L.Conv2D(4, (1, 3), padding="same", activation="relu")(x)
    x = L.AveragePooling2D((1, 4), strides=(1, 2), padding="same")(x)
    x = L.MaxPooling2D((1, 3), padding="valid")(x)
    a = L.MaxPooling2D((1, 2), strides=(1, 1), padding="same")(x)
    b = L.AveragePooling2D((1, 2), padding="valid")(a)
    return keras.Model(inp, b)


def gap_mean():
    """GlobalAveragePooling2D -> MEAN over axes (1, 2)."""
    keras, L = _layers()
    x = inp = _input((1, 50, 3))
    x = L.Conv2D(12, (1, 5), strides=(1, 2), padding="same", activation="relu")(x)
    x = L.GlobalAveragePooling2D()(x)
    x = L.Dense(5)(x)
    return keras.Model(inp, L.Softmax()(x))


def residual():
    """Add of two branches (a residual), ReLU after the add fuses into ADD."""
    keras, L = _layers()
    x = inp = _input((1, 32, 4))
    a = L.Conv2D(8, (1, 3), padding="same", activation="relu")(x)
    b = L.Conv2D(8, (1, 3), padding="same")(a)
    y = L.ReLU()(L.Add()([a, b]))
    return keras.Model(inp, L.Add()([y, L.Conv2D(8, (1, 1))(x)]))


def zero_pad():
    keras, L = _layers()
    x = inp = _input((1, 30, 3))
    x = L.ZeroPadding2D(((0, 0), (2, 3)))(x)
    x = L.Conv2D(4, (1, 5), padding="valid", activation="relu")(x)
    x = L.ZeroPadding2D(((0, 0), (1, 1)))(x)
    return keras.Model(inp, L.DepthwiseConv2D((1, 3))(x))


def concat():
    keras, L = _layers()
    x = inp = _input((1, 24, 3))
    a = L.Conv2D(4, (1, 3), padding="same", activation="relu")(x)
    b = L.Conv2D(6, (1, 5), padding="same")(x)
    y = L.Concatenate(axis=-1)([a, b])
    return keras.Model(inp, L.Conv2D(5, (1, 1))(y))


def image2d():
    keras, L = _layers()
    x = inp = _input((16, 16, 3))
    x = L.Conv2D(8, 3, strides=2, padding="same", activation="relu")(x)
    x = L.DepthwiseConv2D(3, padding="same", activation="relu6")(x)
    x = L.Conv2D(12, 1, activation="relu")(x)
    x = L.MaxPooling2D(2)(x)
    x = L.AveragePooling2D(2)(x)
    x = L.Flatten()(x)
    return keras.Model(inp, L.Softmax()(L.Dense(4)(x)))


def larun():
    """The LARUN-like spectral CNN of DESIGN.md (1,494 parameters), strided where DESIGN.md's
    max-pools (143,968 MACs), for speed measurements; `larun_design` is DESIGN.md's own layout."""
    keras, L = _layers()
    x = inp = _input((1, 1024, 1))
    x = L.Conv2D(8, (1, 7), strides=(1, 2), padding="same", activation="relu")(x)
    x = L.DepthwiseConv2D((1, 5), strides=(1, 2), padding="same", activation="relu")(x)
    x = L.Conv2D(16, (1, 1), activation="relu")(x)
    x = L.DepthwiseConv2D((1, 3), strides=(1, 2), padding="same", activation="relu")(x)
    x = L.Conv2D(32, (1, 1), activation="relu")(x)
    x = L.GlobalAveragePooling2D()(x)
    x = L.Dense(16, activation="relu")(x)
    return keras.Model(inp, L.Softmax()(L.Dense(6)(x)))


def larun_design():
    """The LARUN-like spectral CNN exactly as DESIGN.md lays it out (1,494 parameters, 135,680
    MACs): conv(1,7)x8 same, maxpool 4, dw(1,5) same, 1x1->16, maxpool 4, dw(1,3) valid, 1x1->32,
    mean, dense 16, dense 6."""
    keras, L = _layers()
    x = inp = _input((1, 1024, 1))
    x = L.Conv2D(8, (1, 7), padding="same", activation="relu")(x)
    x = L.MaxPooling2D((1, 4))(x)
    x = L.DepthwiseConv2D((1, 5), padding="same", activation="relu")(x)
    x = L.Conv2D(16, (1, 1), activation="relu")(x)
    x = L.MaxPooling2D((1, 4))(x)
    x = L.DepthwiseConv2D((1, 3), padding="valid", activation="relu")(x)
    x = L.Conv2D(32, (1, 1), activation="relu")(x)
    x = L.GlobalAveragePooling2D()(x)
    x = L.Dense(16, activation="relu")(x)
    return keras.Model(inp, L.Softmax()(L.Dense(6)(x)))


def float_io():
    """Float32 input and output: QUANTIZE and DEQUANTIZE at the edges."""
    keras, L = _layers()
    x = inp = _input((1, 16, 2))
    x = L.Conv2D(4, (1, 3), padding="same", activation="relu")(x)
    return keras.Model(inp, L.Dense(3)(L.Flatten()(x)))


def activations():
    """Standalone RELU (on the input) and RELU6 (after a concatenation), LOGISTIC, TANH, LEAKY_RELU,
    HARD_SWISH (the converter fuses x * relu6(x + 3) / 6), and the int8 -> int8 QUANTIZE the
    converter inserts to bring the concatenation's inputs to one scale."""
    import tensorflow as tf

    keras, L = _layers()
    inp = _input((1, 48, 4))
    r = L.ReLU()(inp)
    branches = [L.Activation("sigmoid")(L.Conv2D(8, (1, 3), padding="same")(r)),
                L.Activation("tanh")(L.Conv2D(8, (1, 3), padding="same")(r)),
                L.LeakyReLU(0.2)(L.Conv2D(8, (1, 3), padding="same")(r)),
                L.Lambda(lambda v: v * tf.nn.relu6(v + 3.0) / 6.0)(L.Conv2D(8, (1, 3), padding="same")(r))]
    y = L.ReLU(max_value=6.0)(L.Reshape((1, 48 * 32))(L.Concatenate()(branches)))
    return keras.Model(inp, L.Dense(4)(L.Flatten()(y)))


def arithmetic():
    """MUL broadcasting a squeeze-excitation gate (1, C) over a (1, 1, L, C) map, SUB of two
    branches, and SUB broadcasting a MEAN over the length axis."""
    import tensorflow as tf

    keras, L = _layers()
    x = inp = _input((1, 32, 4))
    a = L.Conv2D(8, (1, 3), padding="same", activation="relu")(x)
    gate = L.Reshape((1, 1, 8))(L.Dense(8, activation="sigmoid")(L.GlobalAveragePooling2D()(a)))
    y = L.Subtract()([L.Multiply()([a, gate]), L.Conv2D(8, (1, 3), padding="same")(x)])
    return keras.Model(inp, L.Lambda(lambda v: v - tf.reduce_mean(v, axis=2, keepdims=True))(y))


def slices():
    """STRIDED_SLICE (a crop, and every second sample) and TRANSPOSE (channels to the length axis)."""
    keras, L = _layers()
    x = inp = _input((1, 64, 4))
    x = L.Conv2D(6, (1, 3), padding="same")(L.Cropping2D(((0, 0), (3, 5)))(x))
    x = L.Permute((1, 3, 2))(L.Lambda(lambda v: v[:, :, ::2, :])(x))
    return keras.Model(inp, L.Dense(3)(L.Flatten()(L.Conv2D(4, (1, 3))(x))))


def _family(family: str, params: dict, input_shape: tuple[int, ...], classes: int = 6) -> Callable:
    """A model of one of the search spaces, as the search builds it."""
    def build():
        from search_spaces import get_family

        return get_family(family)().build(params, input_shape, classes)

    build.__doc__ = f"{family} {params}"
    return build


def edit(model: bytes, change: Callable) -> bytes:
    """Re-serialise `model` after `change(ModelT)`: variants without another slow conversion."""
    m = fb.ModelT.InitFromObj(fb.Model.GetRootAsModel(model, 0))
    change(m)
    return pack(m)


def pruned_mlp(cache_dir: Path) -> bytes:
    """The MLP with its first dense layer magnitude-pruned (78 % zeros), as a user's pruned model
    would come: random int8 weights alone do not compress."""
    def prune(m):
        for t in m.subgraphs[0].tensors:
            data = m.buffers[t.buffer].data
            if data is not None and len(data) == 128 * 2 * 64:
                values = np.frombuffer(bytes(bytearray(data)), np.int8).copy()
                values[np.abs(values) < 100] = 0
                m.buffers[t.buffer].data = values.view(np.uint8)

    return edit(tflite_bytes("mlp", cache_dir), prune)


def pack(m) -> bytes:
    """A ModelT as .tflite bytes."""
    builder = flatbuffers.Builder(1024)
    builder.Finish(m.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


def append_requantize(m) -> None:
    """An int8 -> int8 QUANTIZE (a requantization) after the output: the converter only emits one
    where scales must change, which none of the builders above forces."""
    sg = m.subgraphs[0]
    out = copy.deepcopy(sg.tensors[sg.outputs[0]])
    out.name, out.buffer = b"requantized", 0
    out.quantization.scale = out.quantization.scale * np.float32(1.7)
    out.quantization.zeroPoint = out.quantization.zeroPoint + 5
    sg.tensors.append(out)
    code = fb.OperatorCodeT()
    code.builtinCode = code.deprecatedBuiltinCode = fb.BuiltinOperator.QUANTIZE
    code.version = 1
    m.operatorCodes.append(code)
    op = fb.OperatorT()
    op.opcodeIndex, op.inputs, op.outputs = len(m.operatorCodes) - 1, [sg.outputs[0]], [len(sg.tensors) - 1]
    sg.operators.append(op)
    sg.outputs = [len(sg.tensors) - 1]


# name -> (builder, integer input/output?)
MODELS: dict[str, tuple[Callable, bool]] = {
    "conv1d": (conv1d, True),
    "conv_dilated": (conv_dilated, True),
    "depthwise": (depthwise, True),
    "dense": (dense, True),
    "pools": (pools, True),
    "gap_mean": (gap_mean, True),
    "residual": (residual, True),
    "zero_pad": (zero_pad, True),
    "concat": (concat, True),
    "image2d": (image2d, True),
    "larun": (larun, True),
    "larun_design": (larun_design, True),
    "float_io": (float_io, False),
    "activations": (activations, True),
    "arithmetic": (arithmetic, True),
    "slices": (slices, True),
    # The search spaces' families at several sizes.
    "spectral_small": (_family("spectral_cnn", {"blocks": 2, "filters_0": 8, "filters_1": 8, "kernel": 3, "pool": 4,
                                                "separable": False, "dense": 8, "stem_stride": 4}, (1, 512, 1)), True),
    "spectral_separable": (_family("spectral_cnn", {"blocks": 4, "filters_0": 8, "filters_1": 16, "filters_2": 32,
                                                    "filters_3": 32, "kernel": 11, "pool": 2, "separable": True,
                                                    "dense": 32, "stem_stride": 1}, (1, 1024, 1)), True),
    "ds_cnn": (_family("ds_cnn", {"first_filters": 16, "first_kernel": 3, "first_stride": 2, "blocks": 2,
                                  "block_filters": 32, "block_stride": 2}, (24, 24, 1), 10), True),
    "mlp": (_family("mlp", {"layers": 2, "units_0": 64, "units_1": 16}, (1, 128, 2), 4), True),
}
DERIVED = {"requantize": ("dense", append_requantize)}  # name -> (zoo model, edit)
SUPPORTED = tuple(MODELS) + tuple(DERIVED)


def convert(model, int8_io: bool = True, seed: int = 0) -> bytes:
    """Full-int8 conversion with a random representative dataset."""
    import tensorflow as tf

    shape = (1, *model.input_shape[1:])  # the search spaces leave the batch open
    rng = np.random.default_rng(seed)

    def representative():
        for _ in range(32):
            yield [rng.normal(0.0, 1.0, shape).astype(np.float32)]

    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = representative
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    if int8_io:
        converter.inference_input_type = tf.int8
        converter.inference_output_type = tf.int8
    with warnings.catch_warnings():  # int8 I/O takes its ranges from the representative data
        warnings.filterwarnings("ignore", "Statistics for quantized inputs were expected")
        return converter.convert()


def _randomise_biases(model) -> None:
    """Keras starts biases at zero, and the converter drops all-zero ones: make them matter."""
    rng = np.random.default_rng(1)
    for layer in model.layers:
        if getattr(layer, "bias", None) is not None:
            layer.bias.assign(rng.normal(0.0, 0.2, layer.bias.shape))


def tflite_bytes(name: str, cache_dir: Path) -> bytes:
    """The converted model `name`, built once per cache directory."""
    path = Path(cache_dir) / f"{name}.tflite"
    if name in DERIVED:
        base, change = DERIVED[name]
        return edit(tflite_bytes(base, cache_dir), change)
    if not path.exists():
        import tf_keras

        builder, int8_io = MODELS[name]
        tf_keras.utils.set_random_seed(sum(map(ord, name)))
        model = builder()
        _randomise_biases(model)
        path.write_bytes(convert(model, int8_io))
    return path.read_bytes()


def firmware(name: str, cache_dir: Path, out_dir: Path, target: str = "rp2040"):
    """The integer graph of model `name`, its generated C and its firmware for `target`, built in
    `out_dir`."""
    from autotune.codegen import generate_c, integer_core
    from autotune.ir.tflite_import import import_tflite
    from device_runners.build import build

    graph = integer_core(import_tflite(tflite_bytes(name, cache_dir), name))
    generated = generate_c(graph, out_dir / "src")
    return graph, generated, build(out_dir / "src", target, out_dir=out_dir, cache_dir=out_dir / "cache")
