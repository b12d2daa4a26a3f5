"""rp2040js: an rp2040 firmware image on Wokwi's RP2040 emulator (npm `rp2040js`, run by Node).

An emulator written independently of Unicorn and of our timing table, used to cross-check
rp2040-sim: the same image must give the same outputs and the same instruction count of the
entry function (tests/test_rp2040js.py). Its cycle counts differ from ours by a known amount:
rp2040js charges nothing for moving LR in a PUSH and PC in a POP, where the Cortex-M0+ takes
1 + N and 3 + N cycles with N counting every register of the list (DDI 0484C, table 3-1), so
its cycles are lower by one per such PUSH and POP (`Rp2040jsRun.link_transfers`). The rp2040js
run is not split by kernel call (`ops` is empty).

`Rp2040jsBoard` boots a UF2 image on rp2040js as a Pico would (device_runners/rp2040js/board.mjs:
boot2 at 0x10000000, then the firmware's own start-up, clocks and UART request loop) and puts
its UART0 behind a pseudo-terminal, so the board runner (`device_runners.rp2040_board`) talks to
it through a serial device exactly as to a real board.

The package is installed by scripts/install.sh into device_runners/rp2040js/ (`npm ci`).
"""
from __future__ import annotations

import base64
import json
import os
import select
import shutil
import subprocess
import threading
import tty
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from autotune.errors import ToolchainError
from device_runners.cortex_m_sim import MAX_INSTRUCTIONS, read_image
from device_runners.runners import SimResult, SimulationError

PACKAGE_DIR = Path(__file__).parent / "rp2040js"
SCRIPT = PACKAGE_DIR / "run.mjs"
BOARD_SCRIPT = PACKAGE_DIR / "board.mjs"


def _node() -> str:
    node = shutil.which("node")
    if node is None:
        raise ToolchainError("node not found on PATH; install the Debian package nodejs (scripts/install.sh)")
    if not (PACKAGE_DIR / "node_modules" / "rp2040js").is_dir():
        raise ToolchainError(f"rp2040js is not installed; run `npm ci` in {PACKAGE_DIR} (scripts/install.sh)")
    return node


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
        self.node = _node()
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


class Rp2040jsBoard:
    """A UF2 image booted on rp2040js, its UART0 on a pseudo-terminal whose path is `port`.

        with Rp2040jsBoard(bundle / "firmware" / "rp2040.uf2") as board:
            runner = open_runner("rp2040", elf, port=board.port)

    Two threads copy bytes between the terminal and the emulator's stdin and stdout.
    """

    def __init__(self, uf2_path: Path):
        self.uf2_path = Path(uf2_path)
        self.node = _node()
        self.port = ""

    def __enter__(self) -> Rp2040jsBoard:
        self._master, self._slave = os.openpty()
        tty.setraw(self._slave)  # no echo or line editing: a byte stream, as a UART is
        self.port = os.ttyname(self._slave)
        self._proc = subprocess.Popen([self.node, str(BOARD_SCRIPT), str(self.uf2_path)], cwd=PACKAGE_DIR,
                                      stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._to_board, daemon=True),
                         threading.Thread(target=self._from_board, daemon=True)]
        for thread in self._threads:
            thread.start()
        return self

    def _to_board(self) -> None:
        while not self._stop.is_set():
            if select.select([self._master], [], [], 0.05)[0]:
                try:
                    data = os.read(self._master, 4096)
                    self._proc.stdin.write(data)
                    self._proc.stdin.flush()
                except (OSError, ValueError):
                    return

    def _from_board(self) -> None:
        while data := self._proc.stdout.read1(4096):
            os.write(self._master, data)

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._threads[0].join()
        self._proc.stdin.close()
        try:
            self._proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()
        self._threads[1].join()
        self.stderr = self._proc.stderr.read().decode(errors="replace")
        self._proc.stderr.close()
        self._proc.stdout.close()
        os.close(self._master)
        os.close(self._slave)
