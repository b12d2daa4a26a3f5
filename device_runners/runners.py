"""Runners: what executes a target's firmware image and reports its outputs and counts.

A target names its runners (`Target.runners`); `open_runner(name, elf)` gives one. Every runner
takes the ELF that `device_runners.build` made, writes one input into `autotune_input`, runs from
reset to `halt` and returns a `SimResult`. A runner that has no timing model reports
instructions only (`cycles` None) and says so in its `source`.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Protocol

import numpy as np

from autotune.errors import AutotuneError
from device_runners.targets import get_target


class SimulationError(AutotuneError):
    """The firmware did not reach `halt` (a fault, a runaway loop) or is not an image for the runner."""


@dataclass(frozen=True)
class OpCycles:
    kernel: str  # the function the entry called
    cycles: int | None  # in it and everything it called; None without a timing model
    instructions: int
    zero_wait_cycles: int | None = None  # the same with zero-wait memory (the lower bound)
    xip_hits: int | None = None  # cache lines read through the XIP cache; None where not modelled
    xip_misses: int | None = None


@dataclass(frozen=True)
class SimResult:
    target: str
    output: np.ndarray  # int8, what the firmware wrote into autotune_output
    status: int  # what the entry function returned
    instructions: int  # the entry function, call to return
    cycles: int | None  # the same span, with the runner's memory model; None without a timing model
    ops: tuple[OpCycles, ...]  # each kernel call of the entry function, in order
    zero_wait_cycles: int | None = None  # the same span with zero-wait memory (the lower bound)
    xip_hits: int | None = None  # cache lines read through the XIP cache; None where not modelled
    xip_misses: int | None = None

    @property
    def milliseconds(self) -> float | None:
        return None if self.cycles is None else self.cycles / get_target(self.target).clock_hz * 1e3


class Runner(Protocol):
    name: str
    source: str  # provenance of its figures, e.g. "measured:rp2040-sim (...)"

    def run(self, x: np.ndarray) -> SimResult: ...


def _rp2040_sim(elf_path: Path, entry: str) -> Runner:
    from device_runners.rp2040_sim import Rp2040Sim

    return Rp2040Sim(elf_path, entry)


def _rp2040js(elf_path: Path, entry: str) -> Runner:
    from device_runners.rp2040js_runner import Rp2040js

    return Rp2040js(elf_path, entry)


def _nano33ble_sim(elf_path: Path, entry: str) -> Runner:
    from device_runners.cortex_m_sim import CortexMSim

    return CortexMSim(elf_path, "nano33ble", entry, name="nano33ble-sim",
                      description="Unicorn Cortex-M4; instructions only, no timing model yet")


# name -> factory(elf_path, entry); targets refer to these names.
RUNNERS: dict[str, Callable[[Path, str], Runner]] = {
    "rp2040-sim": _rp2040_sim,
    "rp2040js": _rp2040js,
    "nano33ble-sim": _nano33ble_sim,
}


def open_runner(name: str, elf_path: Path, entry: str = "model_invoke") -> Runner:
    """The runner `name` loaded with the firmware `elf_path`."""
    if name not in RUNNERS:
        raise AutotuneError(f"unknown runner {name!r}; runners: {', '.join(sorted(RUNNERS))}")
    return RUNNERS[name](Path(elf_path), entry)
