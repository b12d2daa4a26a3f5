"""The analytic cost model against what it predicts: ELF sizes, rp2040-sim and apollo5-sim cycles.

The search measures flash and RAM from builds, but the learned cost models will start from these
predictions, and latency comes from them: they must stay calibrated as the kernels change.
"""
from __future__ import annotations

import numpy as np
import pytest

import model_zoo
from autotune.codegen import generate_c
from autotune.ir.kernel_plan import attribute_cycles
from autotune.ir.tflite_import import import_tflite
from autotune.lowering import integer_core
from cost_models.analytic import FUSED, TABLES, AnalyticCostModel
from cost_models.features import extract_features
from device_runners.apollo5_sim import Apollo5Sim
from device_runners.build import build
from device_runners.rp2040_sim import Rp2040Sim
from device_runners.runners import runner_image
from device_runners.targets import TARGETS

SPECTRAL = ("larun", "spectral_small", "spectral_separable", "conv1d", "gap_mean", "mlp")
MIXED = ("conv_dilated", "pools", "residual", "zero_pad", "concat", "image2d", "ds_cnn")


@pytest.mark.slow
@pytest.mark.parametrize("target", sorted(TARGETS))
@pytest.mark.parametrize("name", SPECTRAL + MIXED)
def test_flash_and_ram_predictions_track_the_elf(name, target, zoo_dir, tmp_path):
    graph, generated, firmware = model_zoo.firmware(name, zoo_dir, tmp_path, target)
    costs = AnalyticCostModel(target).predict(extract_features(graph, activation_bytes=generated.activation_bytes))
    assert 0.9 < costs.flash.value / firmware.flash_bytes < 1.25, (name, costs.flash.value, firmware.flash_bytes)
    assert abs(costs.ram.value - firmware.ram_bytes) < 0.1 * firmware.ram_bytes + 64, (
        name, costs.ram.value, firmware.ram_bytes)


@pytest.mark.slow
@pytest.mark.parametrize("name", model_zoo.SUPPORTED)
def test_latency_prediction_tracks_rp2040_sim(name, zoo_dir, tmp_path):
    """Every model of the zoo within 10 % of a warm run with rp2040-sim's XIP cache, which the
    prediction includes (mlp: 22 KB of code and weights, about half its lines miss per inference),
    and every kernel call within 25 % of its own zero-wait cycles."""
    graph, generated, firmware = model_zoo.firmware(name, zoo_dir, tmp_path)
    x = np.random.default_rng(0).integers(-128, 128, graph.tensor(graph.inputs[0]).shape[1:]).astype(np.int8)
    sim = Rp2040Sim(firmware.elf_path)
    sim.run(x)  # warms the cache
    result = sim.run(x)
    model = AnalyticCostModel("rp2040")
    features = extract_features(generated.kernel_plan, activation_bytes=0)
    predicted = model.cycles(features)
    assert abs(predicted / result.cycles - 1) < 0.10, f"{name}: predicted {predicted:.0f}, simulated {result.cycles}"
    for record in attribute_cycles(generated.kernel_plan, result.ops):
        call = features.calls[record.call]
        call_predicted = model.call_cycles(call) - model.table.call_cycles
        assert abs(call_predicted / record.zero_wait_cycles - 1) < 0.25, (
            f"{name}: call {record.call} {call.symbol}: predicted {call_predicted:.0f}, "
            f"simulated {record.zero_wait_cycles} (zero-wait)")


# A representative part of the zoo for apollo5-sim (0.2-0.3 M instructions a second): 1-D and 2-D
# convolutions through each path of the Helium conv (runs, gathered windows, at_mve_rows), depthwise
# with and without a depth multiplier, pools, dense (short rows, long, grouped tails), element-wise
# and table ops. Every zoo model is checked by benchmarks/bench_kernels.py ("apollo5" in
# benchmarks/results/kernels.json).
APOLLO5 = ("larun", "image2d", "ds_cnn", "depthwise", "conv_dilated", "pools", "residual", "activations", "mlp",
           "dense")


@pytest.mark.slow
@pytest.mark.parametrize("name", APOLLO5)
def test_latency_prediction_tracks_apollo5_sim(name, zoo_dir, sim_cache, tmp_path):
    """The apollo5 table is fitted to apollo5-sim: the Helium kernels' cycles within 10 % of it
    per model, and every kernel call of at least 2,000 cycles within 25 % of its own."""
    graph = integer_core(import_tflite(model_zoo.tflite_bytes(name, zoo_dir), name))
    generated = generate_c(graph, tmp_path / "src")
    image = runner_image("apollo5-sim", generated.out_dir, "apollo5", cache_dir=tmp_path / "cache")
    x = np.random.default_rng(0).integers(-128, 128, graph.tensor(graph.inputs[0]).shape[1:]).astype(np.int8)
    result = Apollo5Sim(image.elf_path, cache_dir=sim_cache).run(x)
    model = AnalyticCostModel("apollo5")
    assert model.source == "predicted:analytic-apollo5" and model.table.fitted_to == "apollo5-sim"
    features = extract_features(generated.kernel_plan, activation_bytes=0)
    predicted = model.cycles(features)
    assert abs(predicted / result.cycles - 1) < 0.10, f"{name}: predicted {predicted:.0f}, simulated {result.cycles}"
    for record in attribute_cycles(generated.kernel_plan, result.ops):
        call_predicted = model.call_cycles(features.calls[record.call])
        assert record.cycles < 2000 or abs(call_predicted / record.cycles - 1) < 0.25, (
            f"{name}: call {record.call} {record.symbol}: predicted {call_predicted:.0f}, simulated {record.cycles}")


@pytest.mark.slow
def test_weights_in_sram_leave_the_xip_term(zoo_dir, tmp_path):
    """The MLP (22.5 KB) misses the XIP cache warm; with its weights placed in SRAM it does not,
    and the prediction follows: the compute cycles only, the weights' bytes added to RAM."""
    graph, generated, _ = model_zoo.firmware("mlp", zoo_dir, tmp_path)
    placed = build(generated.out_dir, "rp2040", cache_dir=tmp_path / "cache", placement="sram_weights")
    x = np.random.default_rng(0).integers(-128, 128, graph.tensor(graph.inputs[0]).shape[1:]).astype(np.int8)
    sim = Rp2040Sim(placed.elf_path)
    sim.run(x)
    measured = sim.run(x)
    features = extract_features(graph, activation_bytes=0)
    in_flash, in_sram = AnalyticCostModel("rp2040"), AnalyticCostModel("rp2040", "sram_weights")
    assert measured.xip_misses == 0
    assert in_sram.cycles(features) == in_sram.compute_cycles(features) < in_flash.cycles(features)
    assert abs(in_sram.cycles(features) / measured.cycles - 1) < 0.10
    ram = in_sram.predict(features).ram.value - in_flash.predict(features).ram.value
    flash_placed = model_zoo.firmware("mlp", zoo_dir, tmp_path / "flash")[2]
    assert ram > features.weight_bytes and abs(ram / (placed.ram_bytes - flash_placed.ram_bytes) - 1) < 0.1


def test_every_kernel_has_cycles_and_code_size_on_every_target():
    """No kernel costs a silent default: the op registry's kernels are all in every table. (The
    weight decoders, at_decode_*.c, are priced by cost_models/codec_cycles.json until decoder
    calls join the kernel plan.)"""
    from autotune.codegen.kernel_library import KERNEL_DIR

    files = [p for p in KERNEL_DIR.glob("at_*.c") if p.name != "at_common.c" and not p.name.startswith("at_decode")]
    library = {p.name for p in files}
    symbols = {line.split("(")[0].split()[-1] for p in files
               for line in p.read_text().splitlines() if line.startswith("void at_")}
    for target, table in TABLES.items():
        assert set(table.kernel_flash) == library, target
        # a fused kernel is priced by its parts (FUSED) where the table has no figures of its own
        assert symbols - set(FUSED) | {"memcpy"} <= set(table.cycles) <= symbols | {"memcpy"}, target
        assert {part for parts in FUSED.values() for part in parts} <= set(table.cycles), target


@pytest.mark.slow
def test_macs_are_multiply_accumulates_only(zoo_dir):
    """The LARUN-like CNN of DESIGN.md: its conv, depthwise and dense layers' 135,680 MACs; its
    pools and MEAN do work of their own, counted as what it is (values read), not as MACs."""
    from autotune.ir.tflite_import import import_tflite

    tflite = model_zoo.tflite_bytes("larun_design", zoo_dir)
    features = extract_features(import_tflite(tflite, "larun_design"), activation_bytes=0)
    assert features.macs == 135_680
    assert {c.kind for c in features.calls if c.macs} == {"CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED"}
    # the max pools are fused into the convs before them: their reads are the calls' pool_reads
    assert [c.count("reads") + c.count("pool_reads") for c in features.calls
            if c.count("reads") + c.count("pool_reads")] == [1024 * 8, 256 * 16, 62 * 32]
