"""rp2040-sim against rp2040js (Wokwi's RP2040 emulator, npm rp2040js@1.4.1 run by Node): the
same firmware image must give the same outputs and execute exactly the same instructions.

rp2040js is written independently of Unicorn and of our timing table. Before rp2040-sim flushed
Unicorn's translation cache ahead of counting, the memcpy blocks translated during start-up ran
uncounted (larun: about 1,000 instructions per inference). Cycles differ by a known amount:
rp2040js charges nothing for LR in a PUSH and PC in a POP, which take one cycle each on the M0+.
"""
from __future__ import annotations

import numpy as np
import pytest

import model_zoo
from autotune import executor
from autotune.errors import ToolchainError
from device_runners.rp2040_sim import Rp2040Sim
from device_runners.rp2040js_runner import Rp2040js

MODELS = ("larun", "conv1d", "depthwise", "spectral_small")  # zoo models and a search-space model
N_INPUTS = 2


@pytest.mark.slow
@pytest.mark.parametrize("name", MODELS)
def test_rp2040js_and_rp2040_sim_agree(name, zoo_dir, tmp_path):
    graph, _, firmware = model_zoo.firmware(name, zoo_dir, tmp_path)
    shape = graph.tensor(graph.inputs[0]).shape[1:]
    x = np.random.default_rng(2).integers(-128, 128, (N_INPUTS, *shape)).astype(np.int8)
    want = executor.run(graph, x).reshape(N_INPUTS, -1)
    ours, theirs = Rp2040Sim(firmware.elf_path), Rp2040js(firmware.elf_path)
    for n in range(N_INPUTS):
        a, b = ours.run(x[n]), theirs.measure(x[n])
        assert a.status == b.result.status == 0
        assert np.array_equal(a.output, want[n]) and np.array_equal(b.result.output, want[n]), name
        assert a.instructions == b.result.instructions, (name, n, a.instructions, b.result.instructions)
        assert b.link_transfers > 0
        assert a.zero_wait_cycles - b.result.cycles == b.link_transfers, (name, a.zero_wait_cycles, b.result.cycles,
                                                                          b.link_transfers)


def test_missing_node_says_what_to_install(zoo_dir, tmp_path, monkeypatch):
    _, _, firmware = model_zoo.firmware("dense", zoo_dir, tmp_path)
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(ToolchainError, match="node not found.*nodejs"):
        Rp2040js(firmware.elf_path)
