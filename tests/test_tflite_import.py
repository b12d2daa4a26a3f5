"""Importing .tflite files into the IR: what comes in, and what is refused with a clear message."""
from __future__ import annotations

import numpy as np
import pytest
from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as fb

import model_zoo
from autotune.errors import ModelImportError
from autotune.ir.tflite_import import import_tflite


# ------------------------------------------------------------------ what comes in


@pytest.mark.slow
@pytest.mark.parametrize("name, kinds", [
    ("conv1d", ["CONV_2D", "CONV_2D", "CONV_2D", "RESHAPE", "FULLY_CONNECTED", "SOFTMAX"]),
    ("gap_mean", ["CONV_2D", "MEAN", "FULLY_CONNECTED", "SOFTMAX"]),
    ("residual", ["CONV_2D", "CONV_2D", "CONV_2D", "ADD", "ADD"]),
    ("concat", ["CONV_2D", "CONV_2D", "CONCATENATION", "CONV_2D"]),
    ("float_io", ["QUANTIZE", "CONV_2D", "RESHAPE", "FULLY_CONNECTED", "DEQUANTIZE"]),
    ("activations", ["RELU", "CONV_2D", "TANH", "QUANTIZE", "CONV_2D", "LEAKY_RELU", "CONV_2D", "HARD_SWISH",
                     "CONV_2D", "LOGISTIC", "QUANTIZE", "CONCATENATION", "RELU6", "RESHAPE", "FULLY_CONNECTED"]),
    ("arithmetic", ["CONV_2D", "MEAN", "CONV_2D", "FULLY_CONNECTED", "LOGISTIC", "MUL", "SUB", "MEAN", "SUB"]),
    ("slices", ["STRIDED_SLICE", "CONV_2D", "STRIDED_SLICE", "TRANSPOSE", "CONV_2D", "RESHAPE", "FULLY_CONNECTED"]),
])
def test_op_kinds(name, kinds, zoo_dir):
    graph = import_tflite(model_zoo.tflite_bytes(name, zoo_dir), name)
    assert sorted(op.kind for op in graph.ops) == sorted(kinds)  # independent branches may swap


@pytest.mark.slow
def test_every_supported_op_is_covered_by_the_zoo(zoo_dir):
    from autotune.ops import OPS

    seen = {op.kind for name in model_zoo.SUPPORTED
            for op in import_tflite(model_zoo.tflite_bytes(name, zoo_dir), name).ops}
    assert seen == set(OPS)


@pytest.mark.slow
def test_larun_tensors_and_options(zoo_dir):
    path = zoo_dir / "larun_design.tflite"
    model_zoo.tflite_bytes("larun_design", zoo_dir)
    graph = import_tflite(path)
    assert graph.name == "larun_design"
    assert graph.parameter_count == 1494  # as DESIGN.md's LARUN-like CNN
    inp = graph.tensor(graph.inputs[0])
    assert (inp.shape, inp.dtype) == ((1, 1, 1024, 1), "int8")
    assert [op.kind for op in graph.ops] == ["CONV_2D", "MAX_POOL_2D", "DEPTHWISE_CONV_2D", "CONV_2D", "MAX_POOL_2D",
                                             "DEPTHWISE_CONV_2D", "CONV_2D", "MEAN", "FULLY_CONNECTED",
                                             "FULLY_CONNECTED", "SOFTMAX"]
    conv = graph.ops[0]
    assert conv.options == dict(stride_h=1, stride_w=1, dilation_h=1, dilation_w=1, padding="SAME",
                                activation="RELU")
    assert graph.ops[2].options["depth_multiplier"] == 1
    filt, bias = graph.tensor(conv.inputs[1]), graph.tensor(conv.inputs[2])
    assert (filt.shape, filt.dtype, filt.data.dtype) == ((8, 1, 7, 1), "int8", np.int8)
    assert filt.quant.per_channel and len(filt.quant.scale) == 8 and filt.quant.axis == 0
    assert (bias.dtype, bias.data.shape) == ("int32", (8,))
    mean = graph.ops[7]
    assert mean.options == dict(axis=(1, 2), keep_dims=False)
    softmax = graph.ops[-1]
    assert softmax.options == dict(beta=1.0)
    assert graph.tensor(softmax.outputs[0]).quant.zero_point == (-128,)


@pytest.mark.slow
def test_depth_multiplier_and_fused_activations(zoo_dir):
    graph = import_tflite(model_zoo.tflite_bytes("depthwise", zoo_dir), "depthwise")
    assert [op.options.get("depth_multiplier") for op in graph.ops] == [1, 2, None]
    assert [op.options["activation"] for op in graph.ops] == ["RELU", "NONE", "RELU6"]


@pytest.mark.slow
def test_dynamic_batch_becomes_one(zoo_dir):
    def dynamic_batch(m):
        for t in m.subgraphs[0].tensors:
            if m.buffers[t.buffer].data is None:  # activations
                t.shapeSignature = np.array([-1] + list(t.shape[1:]), dtype=np.int32)

    model = model_zoo.edit(model_zoo.tflite_bytes("dense", zoo_dir), dynamic_batch)
    graph = import_tflite(model, "dense")
    assert graph.tensor(graph.inputs[0]).shape == (1, 20)
    assert graph.tensor(graph.outputs[0]).shape == (1, 4)


# ------------------------------------------------------------------ what is refused


def test_random_bytes(tmp_path):
    path = tmp_path / "noise.tflite"
    path.write_bytes(np.random.default_rng(0).integers(0, 256, 4000, dtype=np.uint8).tobytes())
    with pytest.raises(ModelImportError, match=rf"{path}: not a TFLite flatbuffer"):
        import_tflite(path)


def test_missing_file(tmp_path):
    with pytest.raises(ModelImportError, match=r"absent\.tflite: cannot read"):
        import_tflite(tmp_path / "absent.tflite")


@pytest.mark.slow
def test_truncated_file(tmp_path, zoo_dir):
    model = model_zoo.tflite_bytes("larun", zoo_dir)
    for cut in (12, 100, len(model) // 3, len(model) // 2, len(model) - 16):
        path = tmp_path / f"cut{cut}.tflite"
        path.write_bytes(model[:cut])
        with pytest.raises(ModelImportError, match=rf"{path}: corrupt or truncated"):
            import_tflite(path)


@pytest.mark.slow
@pytest.mark.parametrize("name, kind", [("dense", "FULLY_CONNECTED"), ("conv1d", "CONV_2D"),
                                        ("depthwise", "DEPTHWISE_CONV_2D")])
def test_a_bias_that_can_overflow_the_accumulator_is_refused(name, kind, zoo_dir):
    """TFLM adds the bias to an int32 accumulator unchecked: a bias near INT32_MIN (one flipped
    bit of a real model's) overflowed it, TFLM's output was not defined and differed from the C's."""
    def near_int32_min(m):
        op = next(o for o in m.subgraphs[0].operators if fb.BuiltinOperator.__dict__[kind] ==
                  m.operatorCodes[o.opcodeIndex].builtinCode)
        bias = m.buffers[m.subgraphs[0].tensors[op.inputs[2]].buffer]
        values = np.frombuffer(bytes(bias.data), np.int32).copy()
        values[-1] = -(2**31) + 50
        bias.data = np.frombuffer(values.tobytes(), np.uint8)

    model = model_zoo.edit(model_zoo.tflite_bytes(name, zoo_dir), near_int32_min)
    with pytest.raises(ModelImportError, match=rf"^{name}: op \d+ \({kind}\) tensor \d+ '.*': output channel \d+: bias "
                                               r"-2147483598 plus the filter's sums over int8 inputs \(-?\d+\.\.\d+\) "
                                               r"overflow TFLM's int32 accumulator$"):
        import_tflite(model, name)


@pytest.mark.slow
def test_a_softmax_without_options_is_refused(zoo_dir):
    """It was read as beta 1; TFLM reads beta 0 and aborts the process (autotune import died with
    SIGABRT and left its temporary bundle folder behind)."""
    def drop_softmax_options(m):
        op = next(o for o in m.subgraphs[0].operators
                  if m.operatorCodes[o.opcodeIndex].builtinCode == fb.BuiltinOperator.SOFTMAX)
        op.builtinOptionsType, op.builtinOptions = fb.BuiltinOptions.NONE, None

    model = model_zoo.edit(model_zoo.tflite_bytes("gap_mean", zoo_dir), drop_softmax_options)
    with pytest.raises(ModelImportError, match=r"^gap_mean: op \d+ \(SOFTMAX\) has no options \(TFLM takes beta 0"):
        import_tflite(model, "gap_mean")


@pytest.mark.slow
def test_a_corrupt_offset_is_named_by_its_schema_field(zoo_dir):
    """An offset pointing outside the file was reported as 'reading the model: error', whatever
    field held it: the message names the field."""
    model = bytearray(model_zoo.tflite_bytes("dense", zoo_dir))
    tensor = fb.Model.GetRootAs(model, 0).Subgraphs(0).Tensors(2)
    at = tensor._tab.Pos + tensor._tab.Offset(4)  # where the tensor's shape (its first field) is
    model[at:at + 4] = (2 * len(model)).to_bytes(4, "little")
    with pytest.raises(ModelImportError, match=r"^dense: corrupt or truncated TFLite file \(reading the model: "
                                               r"subgraphs\[0\]\.tensors\[2\]\.shape: \w+\)$"):
        import_tflite(bytes(model), "dense")


@pytest.mark.slow
def test_unsupported_op(tmp_path, zoo_dir):
    def exp_second_op(m):
        code = fb.OperatorCodeT()
        code.builtinCode = code.deprecatedBuiltinCode = fb.BuiltinOperator.EXP
        m.operatorCodes.append(code)
        m.subgraphs[0].operators[1].opcodeIndex = len(m.operatorCodes) - 1

    path = tmp_path / "exp.tflite"
    path.write_bytes(model_zoo.edit(model_zoo.tflite_bytes("dense", zoo_dir), exp_second_op))
    with pytest.raises(ModelImportError, match=rf"^{path}: op 1 \(EXP\) is not supported$"):
        import_tflite(path)


@pytest.mark.slow
def test_unsupported_fused_activation(zoo_dir):
    def tanh_on_first_op(m):
        m.subgraphs[0].operators[0].builtinOptions.fusedActivationFunction = fb.ActivationFunctionType.TANH

    model = model_zoo.edit(model_zoo.tflite_bytes("dense", zoo_dir), tanh_on_first_op)
    message = r"^dense: op 0 \(FULLY_CONNECTED\) has unsupported fused activation TANH$"
    with pytest.raises(ModelImportError, match=message):
        import_tflite(model, "dense")


@pytest.mark.slow
def test_unsupported_dtype(zoo_dir):
    def int16_input(m):
        m.subgraphs[0].tensors[m.subgraphs[0].inputs[0]].type = fb.TensorType.INT16

    model = model_zoo.edit(model_zoo.tflite_bytes("dense", zoo_dir), int16_input)
    message = r"^dense: op 0 \(FULLY_CONNECTED\) tensor 0 'serving_default_\w+:0' has unsupported dtype INT16$"
    with pytest.raises(ModelImportError, match=message):
        import_tflite(model, "dense")


# ------------------------------------------------------------------ what the file cannot make us trust


def _first_op(m, kind: str):
    """The first operator of builtin `kind` in ModelT m, and its index."""
    code = getattr(fb.BuiltinOperator, kind)
    for i, o in enumerate(m.subgraphs[0].operators):
        c = m.operatorCodes[o.opcodeIndex]
        if max(c.builtinCode, c.deprecatedBuiltinCode) == code:
            return i, o
    raise AssertionError(kind)


@pytest.mark.slow
def test_an_intermediate_shape_that_does_not_follow_is_refused(zoo_dir):
    """A changed activation width (the file's word against the op's semantics): refused, naming the
    op, the tensor and both shapes, where TFLM would run and give other outputs than TensorFlow."""
    def wider(m):
        _, conv = _first_op(m, "CONV_2D")
        t = m.subgraphs[0].tensors[conv.outputs[0]]
        t.shape = t.shape + np.array([0, 0, 1, 0], np.int32)

    with pytest.raises(ModelImportError, match=r"^conv1d: op \d+ \(CONV_2D\) tensor \d+ '.*': has shape "
                                               r"\[1, 1, 65, 8\] in the file; the op gives \[1, 1, 64, 8\]$"):
        import_tflite(model_zoo.edit(model_zoo.tflite_bytes("conv1d", zoo_dir), wider), "conv1d")


@pytest.mark.slow
def test_a_pool_wider_than_its_input_is_refused(zoo_dir):
    def wide_pool(m):
        _, pool = _first_op(m, "MAX_POOL_2D")
        pool.builtinOptions.filterWidth = 260
        pool.builtinOptions.padding = fb.Padding.VALID

    with pytest.raises(ModelImportError, match=r"^pools: op \d+ \(MAX_POOL_2D\) filter 1x260 does not fit"):
        import_tflite(model_zoo.edit(model_zoo.tflite_bytes("pools", zoo_dir), wide_pool), "pools")


@pytest.mark.slow
@pytest.mark.parametrize("field, value, message", [
    ("zero_point", 300, r"tensor \d+ '.*' has zero point 300, outside -128..127"),
    ("scale", float("nan"), r"tensor \d+ '.*' has scale nan"),
    ("shape", 1 << 30, r"tensor \d+ '.*' has shape \[1, 1073741824\]: every dimension and the size must"),
])
def test_out_of_range_fields_are_refused_before_anything_is_built(field, value, message, zoo_dir):
    def corrupt(m):
        t = m.subgraphs[0].tensors[m.subgraphs[0].operators[0].outputs[0]]
        if field == "shape":
            t.shape = np.array([1, value], np.int32)
        elif field == "scale":
            t.quantization.scale = np.array([value], np.float32)
        else:
            t.quantization.zeroPoint = np.array([value], np.int64)

    with pytest.raises(ModelImportError, match=rf"^dense: op 0 \(FULLY_CONNECTED\) {message}"):
        import_tflite(model_zoo.edit(model_zoo.tflite_bytes("dense", zoo_dir), corrupt), "dense")
