"""The analytic cost model against what it predicts: ELF sizes and rp2040-sim cycles.

The search measures flash and RAM from builds, but the learned cost models will start from these
predictions, and latency comes from them: they must stay calibrated as the kernels change.
"""
from __future__ import annotations

import numpy as np
import pytest

import model_zoo
from cost_models.analytic import AnalyticCostModel
from cost_models.features import extract_features
from device_runners.build import build
from device_runners.rp2040_sim import Rp2040Sim
from device_runners.targets import TARGETS

SPECTRAL = ("larun", "spectral_small", "spectral_separable", "conv1d", "gap_mean", "mlp")
MIXED = ("conv_dilated", "pools", "residual", "zero_pad", "concat", "image2d", "ds_cnn")
# A depth multiplier > 1 gathers every window, which the model does not see (documented limit).
UNUSUAL = {"depthwise": 0.35}
# 2D and dilated convolutions gather their windows with memcpy, which rp2040-sim counts since it
# flushes Unicorn's translation cache before counting, and which the features do not see either
# (measured: predicted 0.77-0.84x the simulated cycles); features from the kernel plan will.
GATHERING = {"conv_dilated": 0.25, "image2d": 0.25, "ds_cnn": 0.2}


@pytest.mark.slow
@pytest.mark.parametrize("target", sorted(TARGETS))
@pytest.mark.parametrize("name", SPECTRAL + MIXED)
def test_flash_and_ram_predictions_track_the_elf(name, target, zoo_dir, tmp_path):
    graph, generated, firmware = model_zoo.firmware(name, zoo_dir, tmp_path, target)
    activations = generated.arena_bytes + generated.input_size + generated.output_size
    costs = AnalyticCostModel(target).predict(extract_features(graph, activation_bytes=activations))
    assert 0.9 < costs.flash.value / firmware.flash_bytes < 1.25, (name, costs.flash.value, firmware.flash_bytes)
    assert abs(costs.ram.value - firmware.ram_bytes) < 0.1 * firmware.ram_bytes + 64, (
        name, costs.ram.value, firmware.ram_bytes)


@pytest.mark.slow
@pytest.mark.parametrize("name", SPECTRAL + MIXED + tuple(UNUSUAL))
def test_latency_prediction_tracks_rp2040_sim(name, zoo_dir, tmp_path):
    """1D models, what the spectral search builds, within 10 %; the others within 15 %. Against a
    warm run with rp2040-sim's XIP cache, which the prediction includes (mlp: 22 KB of code and
    weights, 0.45 of its lines miss per inference)."""
    graph, _, firmware = model_zoo.firmware(name, zoo_dir, tmp_path)
    x = np.random.default_rng(0).integers(-128, 128, graph.tensor(graph.inputs[0]).shape[1:]).astype(np.int8)
    sim = Rp2040Sim(firmware.elf_path)
    sim.run(x)  # warms the cache
    measured = sim.run(x).cycles
    predicted = AnalyticCostModel("rp2040").cycles(extract_features(graph, activation_bytes=0))
    tolerance = 0.10 if name in SPECTRAL else {**UNUSUAL, **GATHERING}.get(name, 0.15)
    assert abs(predicted / measured - 1) < tolerance, f"{name}: predicted {predicted:.0f} cycles, simulated {measured}"


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
