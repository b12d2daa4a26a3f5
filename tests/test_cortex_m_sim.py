"""Every target's runner on the firmware of generated C, instruction by instruction.

The firmware's outputs must equal the reference executor's: the integer requantization path as
compiled for each core (ARMv6-M on the rp2040, ARMv7E-M with hard float on the nano33ble).
"""
from __future__ import annotations

import numpy as np
import pytest

import model_zoo
from autotune import executor
from autotune.ir.kernel_plan import attribute_cycles
from device_runners.cortex_m_sim import UNICORN_CPUS, CortexMSim
from device_runners.runners import SimulationError, open_runner
from device_runners.targets import TARGETS

N_INPUTS = {"rp2040-sim": 8}  # inputs per model; 3 on other runners, to keep the suite's time
# Outputs do not depend on the memory timing: rp2040-sim runs here without its XIP cache model
# (three times faster on the largest models); tests/test_xip.py tests the cache.
OPTIONS = {"rp2040-sim": {"xip": False}}
# Unicorn runners; apollo5-sim (QEMU) has its own tests: tests/test_apollo5_sim.py, test_mve_kernels.py
SIMULATED = [(name, t.runners[0]) for name, t in sorted(TARGETS.items()) if t.runners and t.core in UNICORN_CPUS]


@pytest.mark.slow
@pytest.mark.parametrize("target,runner", SIMULATED)
@pytest.mark.parametrize("name", model_zoo.SUPPORTED)
def test_firmware_matches_the_executor(name, target, runner, zoo_dir, tmp_path):
    graph, generated, firmware = model_zoo.firmware(name, zoo_dir, tmp_path, target)
    shape = graph.tensor(graph.inputs[0]).shape[1:]
    inputs = N_INPUTS.get(runner, 3)
    x = np.random.default_rng(1).integers(-128, 128, (inputs, *shape)).astype(np.int8)
    want = executor.run(graph, x).reshape(inputs, -1)
    sim = open_runner(runner, firmware.elf_path, **OPTIONS.get(runner, {}))
    for n in range(inputs):
        result = sim.run(x[n])
        assert result.status == 0
        bad = np.flatnonzero(result.output != want[n])
        assert not len(bad), (f"{name}: {target} firmware on {runner} differs from the executor on input {n} at "
                              f"{len(bad)} outputs, first {bad[0]}: {result.output[bad[0]]} vs {want[n][bad[0]]}")
    # Every call of the kernel plan is found among the functions the entry called, by symbol, and
    # the calls account for the entry's work but its own few instructions per call.
    profile = attribute_cycles(generated.kernel_plan, result.ops)
    assert [p.call for p in profile] == [k for k, c in enumerate(generated.kernel_plan.calls) if c.symbol], (
        result.ops, generated.kernel_plan.calls)
    assert 0.98 * result.instructions < sum(p.instructions for p in profile) < result.instructions
    if result.cycles is None:  # no timing model for this core yet, and the result says so
        assert "no timing model" in sim.source and result.milliseconds is None
    else:
        assert 0.99 * result.cycles < sum(p.cycles for p in profile) < result.cycles


def test_a_core_unicorn_lacks_is_refused(zoo_dir, tmp_path):
    _, _, firmware = model_zoo.firmware("dense", zoo_dir, tmp_path, "apollo5")
    with pytest.raises(SimulationError, match="Unicorn has no cortex-m55 model"):
        CortexMSim(firmware.elf_path, "apollo5", name="m55-sim", description="none")


def test_an_image_for_another_target_is_refused(zoo_dir, tmp_path):
    _, _, firmware = model_zoo.firmware("dense", zoo_dir, tmp_path, "rp2040")
    with pytest.raises(SimulationError, match="not a nano33ble image"):
        open_runner("nano33ble-sim", firmware.elf_path)
