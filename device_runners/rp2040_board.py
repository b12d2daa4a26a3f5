"""The rp2040 board runner: a Pico (or any RP2040 board) running a bundle's firmware, over serial.

It flashes nothing: copy the bundle's `firmware/rp2040.uf2` to the board in BOOTSEL mode (or
`picotool load -x`), connect UART0 (GP0 TX, GP1 RX, 115200 8N1) through a USB-serial adapter
or a Debug Probe, and name its port. Each `run` sends one INVOKE request
(device_runners/board_protocol.py) and returns the output, status and the cycles the firmware
counted around the model's entry function with SysTick at 133 MHz: `measured:rp2040`. The
board reports neither instructions nor a split by kernel call.

Tested end to end on rp2040js (tests/test_rp2040_board.py): the same UF2 booted from boot2, its
UART0 behind a pseudo-terminal (`device_runners.rp2040js_runner.Rp2040jsBoard`).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from autotune.errors import ToolchainError
from device_runners.board_protocol import BoardClient, BoardError
from device_runners.cortex_m_sim import read_image
from device_runners.runners import SimResult, SimulationError
from device_runners.targets import get_target

BAUD = 115200
TIMEOUT_S = 30.0  # the largest models take a few seconds per inference on the M0+


class Rp2040Board:
    """A board on `port` (a device path, or any pyserial URL such as socket://host:port)."""

    name = "rp2040"

    def __init__(self, elf_path: Path, entry: str = "model_invoke", *, port: str | None = None,
                 timeout: float = TIMEOUT_S):
        if not port:
            raise SimulationError("the rp2040 board runner needs --port (e.g. /dev/ttyACM0 or /dev/ttyUSB0)")
        try:
            import serial
        except ImportError:
            raise ToolchainError("pyserial is not installed; pip install -e . installs it") from None
        image = read_image(Path(elf_path), "rp2040", entry)
        self.input_bytes = image.symbols["autotune_input"][1]
        self.output_bytes = image.symbols["autotune_output"][1]
        self.port = port
        self.source = f"measured:rp2040 (board on {port}, SysTick cycles of the entry function)"
        try:
            self.serial = serial.serial_for_url(port, baudrate=BAUD, timeout=timeout)
        except (serial.SerialException, ValueError) as exc:
            raise BoardError(f"{port}: cannot open the serial port: {exc}") from None
        self.client = BoardClient(self.serial, port)
        info = self.client.info()
        if (info.input_bytes, info.output_bytes) != (self.input_bytes, self.output_bytes):
            raise BoardError(f"{port}: the board runs a model of {info.input_bytes} input and {info.output_bytes} "
                             f"output bytes, {elf_path} has {self.input_bytes} and {self.output_bytes}: "
                             "flash this bundle's firmware")
        self.clock_hz = info.clock_hz
        if info.clock_hz != get_target("rp2040").clock_hz:
            raise BoardError(f"{port}: the board's clock is {info.clock_hz} Hz, the rp2040 target's "
                             f"{get_target('rp2040').clock_hz}")

    def run(self, x: np.ndarray) -> SimResult:
        data = np.ascontiguousarray(x, np.int8).tobytes()
        if len(data) != self.input_bytes:
            raise SimulationError(f"{self.port}: input of {len(data)} bytes, the model takes {self.input_bytes}")
        answer = self.client.invoke(data)
        if len(answer.output) != self.output_bytes:
            raise BoardError(f"{self.port}: {len(answer.output)} output bytes, expected {self.output_bytes}")
        return SimResult(target="rp2040", output=np.frombuffer(answer.output, np.int8).copy(), status=answer.status,
                         instructions=None, cycles=answer.cycles, ops=())

    def close(self) -> None:
        self.serial.close()
