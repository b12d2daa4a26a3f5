"""rp2040-sim: the Cortex-M0+ timing table and errors. Outputs against the executor for every
target's runner: tests/test_cortex_m_sim.py; against rp2040js: tests/test_rp2040js.py."""
from __future__ import annotations

import numpy as np
import pytest

import model_zoo
from c_model import write_c_model
from device_runners.build import build
from device_runners.rp2040_sim import Rp2040Sim, SimulationError


def test_cycles_follow_the_m0plus_timings(tmp_path):
    """A loop of known instructions: each extra iteration costs exactly its M0+ cycles."""
    src = write_c_model(tmp_path / "src", "    uint32_t n = (uint8_t)input[0], acc = 0;\n"
                        "    const volatile uint32_t *p = (const volatile uint32_t *)(const void *)output;\n"
                        "    while (n--) {\n        acc += *p;\n    }\n"
                        "    output[0] = (int8_t)acc;\n    return 0;\n", 4, 4)
    sim = Rp2040Sim(build(src, "rp2040", cache_dir=tmp_path / "cache").elf_path)
    cycles = [sim.run(np.array([n, 0, 0, 0], np.int8)).zero_wait_cycles for n in (10, 11, 50)]
    # Per iteration: a load (2), an add (1), the counter's subtract (1), compare-free branch
    # back (2 taken) and their set-up: whatever GCC emits, the cost per iteration is fixed and
    # between the bare minimum (5) and a generous bound (10).
    per_iteration = cycles[1] - cycles[0]
    assert cycles[2] - cycles[0] == 40 * per_iteration
    assert 5 <= per_iteration <= 10, per_iteration


def test_errors_name_the_file(tmp_path, zoo_dir):
    not_firmware = tmp_path / "x.elf"
    not_firmware.write_bytes(b"\x7fELF" + bytes(60))
    with pytest.raises(Exception, match=str(not_firmware)):
        Rp2040Sim(not_firmware)
    _, _, firmware = model_zoo.firmware("dense", zoo_dir, tmp_path)
    with pytest.raises(SimulationError, match="input of 3 bytes, the model takes 20"):
        Rp2040Sim(firmware.elf_path).run(np.zeros(3, np.int8))
