"""Generated C against the reference executor and TFLite Micro, bit for bit; and what it links."""
from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

import model_zoo
from autotune import executor
from autotune.codegen import CodegenError, generate_c, integer_core, plan_memory
from autotune.codegen.kernel_library import KERNEL_DIR
from autotune.ir.graph import Graph, Op, Quant, Tensor, WeightEncoding
from autotune.ir.tflite_import import import_tflite
from autotune.ops import fixedpoint as P
from autotune.ops.pool import average_reciprocal
from device_runners.build import build_host

N_INPUTS = 200
ARM_CPUS = {
    "cortex-m0plus": ("-mcpu=cortex-m0plus", "-mthumb"),
    "cortex-m55": ("-mcpu=cortex-m55", "-mthumb", "-mfloat-abi=hard", "-mfpu=auto"),
}
# Soft-float helpers (M0+) and, with a hardware FPU (M55), float instructions; and the heap.
FLOAT_SYMBOL = re.compile(r"^(__aeabi_[fd]\w*|__aeabi_[ilu]+2[fd]|__\w*[sd]f\d*\w*)$")
FLOAT_INSN = re.compile(r"\tv\w*\.f(16|32|64)\b|\tvcvt")
HEAP = {"malloc", "calloc", "realloc", "free"}


_generated: dict[str, tuple[bytes, Graph, Path]] = {}


def _generate(name: str, zoo_dir: Path, tmp_root: Path) -> tuple[bytes, Graph, Path]:
    """The model, its graph and its generated C directory; generated once per session."""
    if name not in _generated:
        model = model_zoo.tflite_bytes(name, zoo_dir)
        graph = import_tflite(model, name)
        out = tmp_root / "codegen" / name
        generate_c(graph, out)
        _generated[name] = (model, graph, out)
    return _generated[name]


def _run_host(exe: Path, x: np.ndarray, output_size: int) -> np.ndarray:
    """All inputs through one process: raw int8 records on stdin, outputs on stdout."""
    proc = subprocess.run([str(exe)], input=np.ascontiguousarray(x, np.int8).tobytes(),
                          capture_output=True, timeout=120)
    assert proc.returncode == 0, proc.stderr.decode(errors="replace")[-2000:]
    return np.frombuffer(proc.stdout, np.int8).reshape(len(x), output_size)


def _tflm(model: bytes, graph: Graph, core: Graph, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Random inputs through TFLM: the int8 input and output of the integer path, per input.
    Reading tensors (kPreserveAllTensors) also covers float models past their QUANTIZE."""
    from tflite_micro.python.tflite_micro import runtime

    it = runtime.Interpreter.from_bytes(
        model, intrepreter_config=runtime.InterpreterConfig.kPreserveAllTensors)
    t = graph.tensor(graph.inputs[0])
    rng = np.random.default_rng(0)
    if t.dtype == "float32":
        xs = rng.normal(0.0, 2.0, (n,) + t.shape).astype(np.float32)
    else:
        xs = rng.integers(-128, 128, (n,) + t.shape).astype(np.int8)  # the full range: saturation too
    ins, outs = [], []
    for x in xs:
        it.set_input(x, 0)
        it.invoke()
        ins.append(np.array(it.GetTensor(core.inputs[0], 0)["tensor_data"]).reshape(-1))
        outs.append(np.array(it.GetTensor(core.outputs[0], 0)["tensor_data"]).reshape(-1))
    return np.stack(ins).astype(np.int8), np.stack(outs).astype(np.int8)


def _assert_same(name: str, got: np.ndarray, want: np.ndarray, who: str) -> None:
    bad = np.argwhere(got != want)
    if len(bad):
        n, k = bad[0]
        pytest.fail(f"{name}: generated C differs from {who} on {len(bad)} values; first at input "
                    f"{n}, output index {k}: C {got[n, k]}, {who} {want[n, k]}")


# ------------------------------------------------------------------ bit-exact on the host


@pytest.mark.slow
@pytest.mark.parametrize("name", model_zoo.SUPPORTED)
def test_matches_executor_and_tflm(name, zoo_dir, tmp_path_factory):
    model, graph, c_dir = _generate(name, zoo_dir, tmp_path_factory.getbasetemp())
    core = integer_core(graph)
    exe = build_host(c_dir, tmp_path_factory.mktemp(name) / "model", sanitize=True)
    x, tflm_out = _tflm(model, graph, core, N_INPUTS)
    got = _run_host(exe, x, core.tensor(core.outputs[0]).size)
    want = executor.run(core, x.reshape((N_INPUTS,) + core.tensor(core.inputs[0]).shape[1:]))
    _assert_same(name, got, want.reshape(N_INPUTS, -1), "the reference executor")
    _assert_same(name, got, tflm_out, "TFLite Micro")


@pytest.mark.slow
@pytest.mark.parametrize("name", ["residual", "depthwise", "pools", "slices"])
@pytest.mark.parametrize("io", ["arena", "caller"])
def test_input_and_output_in_the_arena_or_the_callers_buffers(name, io, zoo_dir, tmp_path):
    """Both places for the input and output, bit-exact: in the arena, run on MODEL_INPUT and
    MODEL_OUTPUT (the copies of the caller's buffers are the test above); in the caller's
    buffers, which the arena then leaves out."""
    graph = integer_core(import_tflite(model_zoo.tflite_bytes(name, zoo_dir), name))
    gen = generate_c(graph, tmp_path / "c", io=io)
    header = gen.header.read_text()
    assert ("#define MODEL_INPUT (model_arena.bytes + " in header) == (io == "arena")
    in_arena = {gen.plan.buffer_of(t).in_arena for t in (graph.inputs[0], graph.outputs[0])}
    assert in_arena == {io == "arena"}
    assert gen.activation_bytes == gen.arena_bytes + (0 if io == "arena" else gen.input_size + gen.output_size)
    flags = ["-DAUTOTUNE_HOST_ARENA_IO", "-DMODEL_ARENA_IO_ONLY"] if io == "arena" else []
    exe = build_host(gen.out_dir, tmp_path / "model", extra_flags=flags, sanitize=True)
    x = np.random.default_rng(5).integers(-128, 128, (N_INPUTS,) + graph.tensor(graph.inputs[0]).shape[1:])
    got = _run_host(exe, x.astype(np.int8), gen.output_size)
    _assert_same(name, got, executor.run(graph, x.astype(np.int8)).reshape(N_INPUTS, -1), "the reference executor")


@pytest.mark.slow
@pytest.mark.parametrize("name", ["depthwise", "conv_dilated", "image2d", "conv1d", "zero_pad"])
def test_scratch_is_what_the_kernels_ask_for(name, zoo_dir, tmp_path_factory):
    """Each call's scratch in the kernel plan equals its kernel's own <kernel>_get_buffer_size on
    the generated parameters, and the memory plan reserves exactly that."""
    from autotune.lowering import lower

    _, graph, c_dir = _generate(name, zoo_dir, tmp_path_factory.getbasetemp())
    plan = lower(graph)
    sized = [c for c in plan.calls if c.scratch_symbol]
    assert sized, name
    main = tmp_path_factory.mktemp(f"{name}-sizes") / "sizes.c"
    main.write_text('#include <stdio.h>\n#include "model.c"\nint main(void)\n{\n'
                    + "".join(f'    printf("%ld\\n", (long){c.scratch_symbol}(&{c.name}));\n' for c in sized)
                    + "    return 0;\n}\n")
    exe = main.with_suffix("")
    subprocess.run(["gcc", "-std=c99", "-Wall", "-Wextra", "-Wno-unused-function", "-I", str(c_dir), str(main),
                    *map(str, sorted(p for p in c_dir.glob("at_*.c"))), "-o", str(exe)], check=True)
    got = [int(v) for v in subprocess.run([str(exe)], capture_output=True, text=True, check=True).stdout.split()]
    assert got == [c.scratch_bytes for c in sized], name
    memory = plan_memory(plan)
    for k, c in enumerate(plan.calls):
        buffer = memory.scratch_of(k)
        assert (buffer.nbytes if buffer else 0) == c.scratch_bytes, (name, k)
    assert any(c.scratch_bytes for c in sized), name


# ------------------------------------------------------------------ the targets


def _arm_objects(c_dir: Path, flags: tuple[str, ...], obj_dir: Path) -> list[Path]:
    gcc = shutil.which("arm-none-eabi-gcc")
    assert gcc is not None, "arm-none-eabi-gcc not installed: run scripts/install.sh"
    obj_dir.mkdir(parents=True, exist_ok=True)
    proc = subprocess.run([gcc, *flags, "-Os", "-Wall", "-Wextra", "-Werror", "-std=c99", "-c",
                           *map(str, sorted(c_dir.glob("*.c")))], cwd=obj_dir, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return sorted(obj_dir.glob("*.o"))


@pytest.mark.slow
@pytest.mark.parametrize("name", model_zoo.SUPPORTED)
def test_arm_objects_have_no_float_or_heap(name, zoo_dir, tmp_path_factory):
    _, _, c_dir = _generate(name, zoo_dir, tmp_path_factory.getbasetemp())
    for cpu, flags in ARM_CPUS.items():
        objs = _arm_objects(c_dir, flags, tmp_path_factory.mktemp(f"{name}-{cpu}"))
        symbols = subprocess.run(["arm-none-eabi-nm", *map(str, objs)], capture_output=True,
                                 text=True, check=True).stdout.split()
        assert not [s for s in symbols if FLOAT_SYMBOL.match(s) or s in HEAP], f"{name} ({cpu})"
        code = subprocess.run(["arm-none-eabi-objdump", "-d", "-marmv8.1-m.main", *map(str, objs)],
                              capture_output=True, text=True, check=True).stdout
        assert not FLOAT_INSN.search(code), f"{name} ({cpu}): {FLOAT_INSN.search(code).group(0)}"


# ------------------------------------------------------------------ fast checks, no TensorFlow


def _tiny(encoding: WeightEncoding = WeightEncoding()) -> Graph:
    """float32 (1, 8) -> QUANTIZE -> FULLY_CONNECTED(4, RELU) -> DEQUANTIZE -> float32 (1, 4)."""
    rng = np.random.default_rng(1)
    q = lambda s, z: Quant((s,), (z,))  # noqa: E731
    tensors = [
        Tensor("x", (1, 8), "float32"),
        Tensor("x_q", (1, 8), "int8", q(0.05, 3)),
        Tensor("w", (4, 8), "int8", q(0.02, 0), rng.integers(-127, 128, (4, 8)).astype(np.int8), encoding),
        Tensor("b", (4,), "int32", q(0.001, 0), rng.integers(-500, 500, 4).astype(np.int32)),
        Tensor("y_q", (1, 4), "int8", q(0.1, -5)),
        Tensor("y", (1, 4), "float32"),
    ]
    ops = [Op("QUANTIZE", (0,), (1,)),
           Op("FULLY_CONNECTED", (1, 2, 3), (4,), {"activation": "RELU", "keep_num_dims": False}),
           Op("DEQUANTIZE", (4,), (5,))]
    return Graph("tiny", tensors, ops, [0], [5])


def test_tiny_float_edges(tmp_path):
    graph = _tiny()
    core = integer_core(graph)
    assert [op.kind for op in core.ops] == ["FULLY_CONNECTED"] and (core.inputs, core.outputs) == ([1], [4])
    gen = generate_c(graph, tmp_path / "c")
    header = gen.header.read_text()
    assert header.startswith("/* generated by autotune from tiny; do not edit */")
    for line in ("#define MODEL_INPUT_SIZE 8", "#define MODEL_OUTPUT_SIZE 4",
                 "#define MODEL_INPUT_ZERO_POINT (3)", "#define MODEL_OUTPUT_ZERO_POINT (-5)",
                 "int model_invoke(const int8_t *input, int8_t *output);"):
        assert line in header
    assert "float32 input" in header and "float32 output" in header
    source = gen.source.read_text()
    assert not re.search(r"\b(float|double)\b", source)
    assert {p.name for p in gen.sources} == {"model.c", "at_common.c", "at_fully_connected_s8.c"}
    x = np.random.default_rng(2).integers(-128, 128, (N_INPUTS, 8)).astype(np.int8)
    got = _run_host(build_host(gen.out_dir, tmp_path / "model", sanitize=True), x, 4)
    _assert_same("tiny", got, executor.run(core, x), "the reference executor")


def _copy() -> Graph:
    """RESHAPE from the caller's input straight to its output: a memcpy, no arena at all."""
    q = Quant((0.5,), (1,))
    return Graph("copy", [Tensor("x", (1, 8), "int8", q), Tensor("y", (1, 2, 4), "int8", q)],
                 [Op("RESHAPE", (0,), (1,))], [0], [1])


def _broadcast_add() -> Graph:
    """ADD of a (1, 2, 5, 3) activation and a (1, 1, 1, 3) int8 constant, RELU6."""
    c = np.array([[[[-7, 0, 90]]]], dtype=np.int8)
    tensors = [Tensor("x", (1, 2, 5, 3), "int8", Quant((0.03,), (-4,))),
               Tensor("c", (1, 1, 1, 3), "int8", Quant((0.02,), (2,)), c),
               Tensor("y", (1, 2, 5, 3), "int8", Quant((0.04,), (-128,)))]
    return Graph("broadcast_add", tensors, [Op("ADD", (0, 1), (2,), {"activation": "RELU6"})], [0], [2])


@pytest.mark.parametrize("io", ["arena", "caller"])
@pytest.mark.parametrize("build", [_copy, _broadcast_add], ids=["copy", "broadcast_add"])
def test_small_graphs(build, io, tmp_path):
    graph = build()
    gen = generate_c(graph, tmp_path / "c", io=io)
    shape = graph.tensor(graph.inputs[0]).shape[1:]
    x = np.random.default_rng(4).integers(-128, 128, (N_INPUTS,) + shape).astype(np.int8)
    got = _run_host(build_host(gen.out_dir, tmp_path / "model", sanitize=True), x, gen.output_size)
    _assert_same(graph.name, got, executor.run(graph, x).reshape(N_INPUTS, -1), "the reference executor")


def test_accumulator_start_wraps(tmp_path):
    """bias + input_offset * sum(filter) beyond INT32_MAX, while every accumulator TFLM forms
    fits (inputs near the zero point): the kernels' acc_init wraps and wraps back, no overflow."""
    q = lambda s, z: Quant((s,), (z,))  # noqa: E731
    w = np.random.default_rng(5).integers(100, 128, (4, 8)).astype(np.int8)
    bias = np.array([2**31 - 9000, 2**31 - 20000, -2**31 + 5, 7], dtype=np.int32)
    tensors = [Tensor("x", (1, 8), "int8", q(1.0, -128)), Tensor("w", (4, 8), "int8", q(1.0, 0), w),
               Tensor("b", (4,), "int32", q(1.0, 0), bias), Tensor("y", (1, 4), "int8", q(2.0**25, 0))]
    graph = Graph("big_bias", tensors, [Op("FULLY_CONNECTED", (0, 1, 2), (3,),
                                           {"activation": "NONE", "keep_num_dims": False})], [0], [3])
    assert int(bias[0]) + 128 * int(w[0].astype(np.int64).sum()) > 2**31  # the premise
    gen = generate_c(graph, tmp_path / "c")
    x = np.random.default_rng(6).integers(-128, -120, (N_INPUTS, 8)).astype(np.int8)
    got = _run_host(build_host(gen.out_dir, tmp_path / "model", sanitize=True), x, 4)
    want = executor.run(graph, x)
    assert len(np.unique(want)) > 1
    _assert_same("big_bias", got, want, "the reference executor")


def test_average_pool_reciprocal_is_exact_or_absent():
    """The generator's reciprocal divides every rounded sum a full window can have exactly (it
    checks that itself, exhaustively); it exists for every window up to 19 x 19."""
    assert all(average_reciprocal(count) for count in range(1, 362))
    for count in (1, 2, 3, 4, 9, 25, 361):
        r = average_reciprocal(count)
        n = np.arange(128 * count + count // 2 + 1, dtype=np.int64)
        assert np.array_equal((n * r) >> 24, n // count) and int(n[-1]) * r < 2**32
    assert average_reciprocal(1000) == 0  # too wide: the kernel divides


def test_weights_a_storage_cannot_hold_name_the_op(tmp_path):
    with pytest.raises(CodegenError, match=r"tiny: op 0 FULLY_CONNECTED .*cannot be stored as bitpack: .*4-bit"):
        generate_c(_tiny(WeightEncoding("bitpack", (("bits", 4),), bitwidth=4)), tmp_path)


@pytest.mark.parametrize("split", [False, True], ids=["int64", "split16"])
def test_fixed_point_helpers_are_exact(split, tmp_path):
    """at_srdhm and at_mbqm, both multiply forms (the split one is what Cortex-M0+ runs), against
    the executor's fixed point on edge values and random ones."""
    main = tmp_path / "main.c"
    main.write_text('#include <stdio.h>\n#include "at_common.h"\n'
                    "int main(void) {\n    long a, b, m, s;\n"
                    '    while (scanf("%ld %ld %ld %ld", &a, &b, &m, &s) == 4)\n'
                    '        printf("%ld %ld\\n", (long)at_srdhm((int32_t)a, (int32_t)b),\n'
                    "               (long)at_mbqm((int32_t)a, (int32_t)m, (int32_t)s));\n"
                    "    return 0;\n}\n")
    exe = tmp_path / "helpers"
    subprocess.run(["gcc", "-std=c99", "-Wall", "-Wextra", "-Werror", "-O2", "-fsanitize=undefined",
                    "-fno-sanitize-recover=all", *(["-DAT_SPLIT_MULTIPLY"] if split else []),
                    "-I", str(KERNEL_DIR), str(main), str(KERNEL_DIR / "at_common.c"), "-o", str(exe)],
                   check=True)
    edges = np.array([-2**31, -2**31 + 1, -2**30, -65537, -65536, -65535, -32768, -1, 0, 1,
                      32767, 65535, 65536, 65537, 2**30, 2**31 - 1], dtype=np.int64)
    rng = np.random.default_rng(3)
    ties = np.arange(-600, 601)  # with b = 2**30 every odd a is a half in both roundings
    a = np.concatenate([np.repeat(edges, len(edges)), ties, rng.integers(-2**31, 2**31, 20000)])
    b = np.concatenate([np.tile(edges, len(edges)), np.full(len(ties), 2**30),
                        rng.integers(-2**31, 2**31, 20000)])
    m = np.where(b < 0, -(b + 1), b)  # quantized multipliers are >= 0
    shift = rng.integers(-31, 8, len(a))
    shift[len(edges) ** 2:len(edges) ** 2 + len(ties)] = -(np.abs(ties) % 9)
    text = "".join(f"{x} {y} {z} {s}\n" for x, y, z, s in zip(a, b, m, shift))
    out = subprocess.run([str(exe)], input=text, capture_output=True, text=True, check=True).stdout
    got = np.array(out.split(), dtype=np.int64).reshape(-1, 2)
    want_srdhm = P.saturating_rounding_doubling_high_mul(a, b)
    want_mbqm = P.multiply_by_quantized_multiplier(a, m, shift)
    for col, want, what in ((0, want_srdhm, "at_srdhm"), (1, want_mbqm, "at_mbqm")):
        bad = np.flatnonzero(got[:, col] != want)
        k = bad[0] if len(bad) else 0
        assert not len(bad), (f"{what}: a {a[k]}, b {b[k]}, m {m[k]}, shift {shift[k]}: "
                              f"{got[k, col]}, want {want[k]}")
