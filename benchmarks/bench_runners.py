"""Memory timing of every test-zoo model on rp2040-sim: zero-wait, through the XIP cache, with
the weights in SRAM.

For each model of tests/model_zoo.py the rp2040 firmware is built twice (placement "flash" and
"sram_weights") and run on one input, each twice from a fresh runner (cold: the XIP cache empty
as after boot; then warm). Adds "rp2040_memory" to benchmarks/results/runners.json; other
benchmarks add their own keys to the same file (`merge_results`), none removes another's.
"""
from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

import model_zoo  # noqa: E402
from autotune.capture import import_tensorflow  # noqa: E402
from device_runners.build import build  # noqa: E402
from device_runners.rp2040_sim import Rp2040Sim  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results" / "runners.json"


def merge_results(key: str, value: object, path: Path = RESULTS) -> dict:
    """Set `key` in the JSON object at `path`, keeping every other key."""
    data = json.loads(path.read_text()) if path.exists() else {}
    data[key] = value
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2) + "\n")
    return data


def _cold_and_warm(elf: Path, x: np.ndarray):
    sim = Rp2040Sim(elf)
    return sim.run(x), sim.run(x)


def main() -> dict:
    import_tensorflow()
    rows = {}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        for name in model_zoo.SUPPORTED:
            graph, _, firmware = model_zoo.firmware(name, tmp, tmp / name)
            in_sram = build(tmp / name / "src", "rp2040", cache_dir=tmp / name / "cache", placement="sram_weights")
            x = np.random.default_rng(0).integers(-128, 128, graph.tensor(graph.inputs[0]).shape[1:]).astype(np.int8)
            cold, warm = _cold_and_warm(firmware.elf_path, x)
            sram_cold, sram_warm = _cold_and_warm(in_sram.elf_path, x)
            assert np.array_equal(warm.output, sram_warm.output), name
            rows[name] = {
                "flash_bytes": firmware.flash_bytes, "ram_bytes": firmware.ram_bytes,
                "zero_wait_cycles": warm.zero_wait_cycles,
                "xip_cycles": warm.cycles, "xip_misses": warm.xip_misses,
                "xip_cycles_cold": cold.cycles, "xip_misses_cold": cold.xip_misses,
                "sram_weights_cycles": sram_warm.cycles, "sram_weights_misses": sram_warm.xip_misses,
                "sram_weights_cycles_cold": sram_cold.cycles,
                "sram_weights_flash_bytes": in_sram.flash_bytes, "sram_weights_ram_bytes": in_sram.ram_bytes,
            }
            print(f"{name}: zero-wait {warm.zero_wait_cycles}, XIP warm {warm.cycles} ({warm.xip_misses} misses), "
                  f"cold {cold.cycles} ({cold.xip_misses}), weights in SRAM {sram_warm.cycles}")
    result = {"source": "measured:rp2040-sim, one random input per model; warm = the "
                        "second run of a runner, cold = the first (XIP cache empty)",
              "models": rows}
    merge_results("rp2040_memory", result)
    return result


if __name__ == "__main__":
    main()
