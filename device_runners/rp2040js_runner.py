"""rp2040js: an rp2040 firmware image on Wokwi's RP2040 emulator (npm `rp2040js`, run by Node).

An emulator written independently of Unicorn and of our timing table, used to cross-check
rp2040-sim: the same image must give the same outputs and the same instruction count of the
entry function (tests/test_rp2040js.py). Its cycle counts differ from ours by a known amount:
rp2040js charges nothing for moving LR in a PUSH and PC in a POP, where the Cortex-M0+ takes
1 + N and 3 + N cycles with N counting every register of the list (DDI 0484C, table 3-1), so
its cycles are lower by one per such PUSH and POP (`Rp2040jsRun.link_transfers`). The rp2040js
run is not split by kernel call (`ops` is empty).

The package is installed by scripts/install.sh into device_runners/rp2040js/ (`npm ci`).
"""
from __future__ import annotations

import base64
import json
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from autotune.errors import ToolchainError
from device_runners.cortex_m_sim import MAX_INSTRUCTIONS, read_image
from device_runners.runners import SimResult, SimulationError

PACKAGE_DIR = Path(__file__).parent / "rp2040js"
SCRIPT = PACKAGE_DIR / "run.mjs"


@dataclass(frozen=True)
class Rp2040jsRun:
    result: SimResult
    link_transfers: int  # PUSH {..., lr} and POP {..., pc} in the counted span


class Rp2040js:
    """One rp2040 firmware image; each run starts one Node process."""

    name = "rp2040js"
    source = "measured:rp2040js (Wokwi RP2040 emulator 1.4.1; undercharges PUSH with LR)"

    def __init__(self, elf_path: Path, entry: str = "model_invoke"):
        self.elf_path = Path(elf_path)
        self.node = shutil.which("node")
        if self.node is None:
            raise ToolchainError("node not found on PATH; install the Debian package nodejs (scripts/install.sh)")
        if not (PACKAGE_DIR / "node_modules" / "rp2040js").is_dir():
            raise ToolchainError(f"rp2040js is not installed; run `npm ci` in {PACKAGE_DIR} (scripts/install.sh)")
        self.image = read_image(self.elf_path, "rp2040", entry)
        self.entry = entry

    def run(self, x: np.ndarray) -> SimResult:
        return self.measure(x).result

    def measure(self, x: np.ndarray) -> Rp2040jsRun:
        """The run, and how many PUSH/POP instructions moved LR or PC in it."""
        symbols = self.image.symbols
        data = np.ascontiguousarray(x, np.int8).tobytes()
        input_addr, input_size = symbols["autotune_input"]
        if len(data) != input_size:
            raise SimulationError(f"{self.elf_path}: input of {len(data)} bytes, the model takes {input_size}")
        request = {
            "segments": [[address, base64.b64encode(d).decode()] for address, d in self.image.segments],
            "sp": self.image.word("autotune_vectors", 0), "reset": self.image.word("autotune_vectors", 1),
            "main": symbols["main"][0], "measure": symbols["autotune_measure"][0], "halt": symbols["halt"][0],
            "entry": symbols[self.entry][0],
            "input": [input_addr, base64.b64encode(data).decode()],
            "output": list(symbols["autotune_output"]), "status": symbols["autotune_status"][0],
            "max_instructions": MAX_INSTRUCTIONS,
        }
        proc = subprocess.run([self.node, str(SCRIPT)], input=json.dumps(request), capture_output=True,
                              text=True, cwd=PACKAGE_DIR)
        if proc.returncode != 0:
            lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
            error = next((ln for ln in lines if ln.startswith("Error")), lines[-1] if lines else "no output")
            raise SimulationError(f"{self.elf_path}: rp2040js failed: {error}")
        result = json.loads(proc.stdout)
        if not result["returned"]:
            raise SimulationError(f"{self.elf_path}: {self.entry} did not return on rp2040js")
        output = np.frombuffer(base64.b64decode(result["output"]), np.int8).copy()
        return Rp2040jsRun(SimResult(target="rp2040", output=output, status=result["status"],
                                     instructions=result["instructions"], cycles=result["cycles"], ops=()),
                           result["linkTransfers"])
