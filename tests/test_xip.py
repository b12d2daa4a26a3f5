"""rp2040-sim's XIP cache model (device_runners/rp2040_xip.py) and the SRAM placements.

The acceptance figures of the board path: a model whose code and weights fit the 16 KB cache
runs within 2 % of the zero-wait count once warm; one that streams 64 KB of weights per
inference pays 64 KB / 8-byte lines x 56 cycles on top; with the weights placed in SRAM it pays
nothing.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import model_zoo
from c_model import write_c_model
from device_runners.boot2 import FLASH
from device_runners.build import build
from device_runners.rp2040_sim import Rp2040Sim
from device_runners.rp2040_xip import XipCache

WEIGHT_BYTES = 64 * 1024


def test_cache_geometry_and_lru_replacement():
    cache = XipCache()
    assert (cache.sets, FLASH.line_bytes, cache.miss_cycles) == (1024, 8, 56)  # 16 KB / 8 B / 2 ways
    line = 0x10000000 >> 3
    a, b, c = line, line + 1024, line + 2048  # three lines of one set
    assert cache.read((a, b)) == 0  # both miss, both fit (two ways)
    assert cache.read((a, b, a)) == 3  # a is now the most recently used
    assert cache.read((c,)) == 0  # evicts b, the least recently used
    assert cache.read((a,)) == 1 and cache.read((b,)) == 0  # a stayed, b was evicted (and now evicts c)
    assert cache.read((a, b, c)) == 2
    assert cache.load(c << 3) and not cache.load(a << 3)  # c evicted a, the least recent; loads read one line
    assert cache.lines(0x10000004, 8) == range(line, line + 2)  # 8 bytes across a line boundary
    cache.flush()
    assert cache.read((a,)) == 0


def test_a_model_that_fits_the_cache_runs_at_zero_wait_speed_once_warm(zoo_dir, tmp_path):
    graph, _, firmware = model_zoo.firmware("conv1d", zoo_dir, tmp_path)
    assert firmware.flash_bytes < 16 * 1024
    x = np.random.default_rng(0).integers(-128, 128, graph.tensor(graph.inputs[0]).shape[1:]).astype(np.int8)
    sim = Rp2040Sim(firmware.elf_path)
    cold, warm = sim.run(x), sim.run(x)
    assert cold.xip_misses > 100  # every line the inference touches, once
    assert cold.cycles == cold.zero_wait_cycles + 56 * cold.xip_misses
    assert warm.zero_wait_cycles == cold.zero_wait_cycles
    assert warm.cycles <= 1.02 * warm.zero_wait_cycles, (warm.cycles, warm.zero_wait_cycles)
    assert sum(op.xip_misses for op in warm.ops) <= warm.xip_misses
    assert sum(op.cycles for op in cold.ops) < cold.cycles
    no_cache = Rp2040Sim(firmware.elf_path, xip=False).run(x)
    assert no_cache.cycles == no_cache.zero_wait_cycles == warm.zero_wait_cycles
    assert no_cache.xip_misses is None and "zero-wait" in Rp2040Sim(firmware.elf_path, xip=False).source


def _streaming_model(src: Path) -> Path:
    """64 KB of weights, each byte read once per inference; named as generated weights are
    (op<N>_filter), so the sram_weights placement moves them."""
    return write_c_model(
        src, "    const volatile int8_t *w = op0_filter;  /* every byte loaded */\n"
             "    int32_t acc = input[0];\n"
             f"    for (uint32_t i = 0; i < {WEIGHT_BYTES}u; i++) {{\n        acc += w[i];\n    }}\n"
             "    output[0] = (int8_t)acc;\n    output[1] = output[2] = output[3] = 0;\n    return 0;\n",
        4, 4, f"static const int8_t op0_filter[{WEIGHT_BYTES}] = {{1, 2, 3, 4, 5}};\n")


@pytest.mark.slow
def test_streaming_64_kb_of_weights_costs_what_the_parameters_predict(tmp_path):
    src = _streaming_model(tmp_path / "src")
    x = np.array([7, 0, 0, 0], np.int8)
    firmware = build(src, "rp2040", cache_dir=tmp_path / "cache")
    sim = Rp2040Sim(firmware.elf_path)
    sim.run(x)
    warm = sim.run(x)
    assert warm.output[0] == 7 + 1 + 2 + 3 + 4 + 5
    lines = WEIGHT_BYTES // FLASH.line_bytes
    predicted = lines * FLASH.miss_cycles  # 8192 lines x 2 x (8 + 4 + 16) SCK = 458,752 cycles
    assert lines <= warm.xip_misses <= lines + 16, warm.xip_misses  # the loop's own lines stay cached
    assert abs((warm.cycles - warm.zero_wait_cycles) / predicted - 1) < 0.005
    assert warm.cycles > 1.5 * warm.zero_wait_cycles  # the flash, not the core, sets the pace

    in_sram = build(src, "rp2040", cache_dir=tmp_path / "cache", placement="sram_weights")
    assert in_sram.ram_bytes >= firmware.ram_bytes + WEIGHT_BYTES  # the copy lives in SRAM...
    assert in_sram.flash_bytes >= WEIGHT_BYTES  # ...and its initial image in flash
    sim = Rp2040Sim(in_sram.elf_path)
    sim.run(x)
    fast = sim.run(x)
    assert np.array_equal(fast.output, warm.output)
    assert fast.xip_misses == 0 and fast.cycles == fast.zero_wait_cycles
    assert fast.zero_wait_cycles == warm.zero_wait_cycles  # the same instructions, SRAM is zero-wait


@pytest.mark.parametrize("placement", ["sram_kernels", "sram_all"])
def test_kernels_run_from_sram_bit_exact(placement, zoo_dir, tmp_path):
    graph, generated, firmware = model_zoo.firmware("conv1d", zoo_dir, tmp_path)
    placed = build(generated.out_dir, "rp2040", cache_dir=tmp_path / "cache", placement=placement)
    x = np.random.default_rng(3).integers(-128, 128, graph.tensor(graph.inputs[0]).shape[1:]).astype(np.int8)
    sim = Rp2040Sim(placed.elf_path)
    cold = sim.run(x)
    assert np.array_equal(cold.output, Rp2040Sim(firmware.elf_path).run(x).output)
    assert [op.kernel for op in cold.ops] == [op.kernel for op in Rp2040Sim(firmware.elf_path).run(x).ops]
    assert placed.ram_bytes > firmware.ram_bytes
    assert sim.run(x).xip_misses == 0
    kernel_misses = sum(op.xip_misses for op in cold.ops)
    assert kernel_misses < cold.xip_misses  # kernel code is fetched from SRAM, not through the cache


def test_an_unoffered_placement_is_refused(zoo_dir, tmp_path):
    _, generated, _ = model_zoo.firmware("dense", zoo_dir, tmp_path)
    with pytest.raises(Exception, match="placement 'sram_weights' is not offered by nano33ble"):
        build(generated.out_dir, "nano33ble", cache_dir=tmp_path / "cache", placement="sram_weights")
