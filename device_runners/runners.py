"""Runners: what executes a target's firmware image and reports its outputs and counts.

A target names its runners (`Target.runners`); `open_runner(name, elf, **options)` gives one.
Every runner takes the ELF that `device_runners.build` made and runs the model on one input per
`run`, returning a `SimResult`: a simulator writes the input into `autotune_input` and runs the
image's `autotune_measure` to `halt`; the board runner ("rp2040", option `port`) sends it to a
board over serial. A runner that has no timing model reports instructions only (`cycles` None)
and says so in its `source`; a board reports cycles but no instructions.

Most runners execute the target's own image. A simulator whose machine lacks the target's memory
map runs the same objects linked for its machine instead (`LAYOUTS`: apollo5-sim links the
apollo5 build for QEMU's mps3-an547); `runner_image` builds the image a runner takes.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Protocol

import numpy as np

from autotune.errors import AutotuneError
from device_runners.build import BuildResult, Layout, build
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
    instructions: int | None  # the entry function, call to return; None from a board
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


def _rp2040_sim(elf_path: Path, entry: str, xip: bool = True) -> Runner:
    from device_runners.rp2040_sim import Rp2040Sim

    return Rp2040Sim(elf_path, entry, xip=xip)


def _rp2040js(elf_path: Path, entry: str) -> Runner:
    from device_runners.rp2040js_runner import Rp2040js

    return Rp2040js(elf_path, entry)


def _rp2040_board(elf_path: Path, entry: str, port: str | None = None) -> Runner:
    from device_runners.rp2040_board import Rp2040Board

    return Rp2040Board(elf_path, entry, port=port)


def _nano33ble_sim(elf_path: Path, entry: str) -> Runner:
    from device_runners.cortex_m_sim import CortexMSim

    return CortexMSim(elf_path, "nano33ble", entry, name="nano33ble-sim",
                      description="Unicorn Cortex-M4; instructions only, no timing model yet")


def _apollo5_sim(elf_path: Path, entry: str) -> Runner:
    from device_runners.apollo5_sim import Apollo5Sim

    return Apollo5Sim(elf_path, entry)


# name -> factory(elf_path, entry, **options); targets refer to these names.
RUNNERS: dict[str, Callable[..., Runner]] = {
    "rp2040-sim": _rp2040_sim,  # option xip (default True): the XIP cache model
    "rp2040js": _rp2040js,
    "rp2040": _rp2040_board,  # option port: the board's serial port
    "nano33ble-sim": _nano33ble_sim,
    "apollo5-sim": _apollo5_sim,
}

# Runners that take the target's objects linked for another memory map: name -> its layout.
LAYOUTS: dict[str, Layout] = {
    # QEMU's mps3-an547 has no memory at the apollo5's MRAM address and boots from 0x0: read-only
    # part in its ITCM, RAM at the silicon's DTCM addresses; a main that runs a file of inputs.
    "apollo5-sim": Layout("apollo5-sim", "apollo5_sim.ld",
                          ("autotune_sim_main.c", "autotune_startup.c", "autotune_libc.c")),
}


def _check_name(name: str) -> None:
    if name not in RUNNERS:
        raise AutotuneError(f"unknown runner {name!r}; runners: {', '.join(sorted(RUNNERS))}")


def open_runner(name: str, elf_path: Path, entry: str = "model_invoke", **options) -> Runner:
    """The runner `name` loaded with the firmware `elf_path` (as `runner_image` builds it);
    `options` as its factory takes them."""
    _check_name(name)
    return RUNNERS[name](Path(elf_path), entry, **options)


def runner_target(name: str) -> str:
    """The target whose firmware runner `name` runs (the target that lists it)."""
    from device_runners.targets import TARGETS

    for target in TARGETS.values():
        if name in target.runners:
            return target.name
    raise AutotuneError(f"unknown runner {name!r}; runners: {', '.join(sorted(RUNNERS))}")


def image_name(name: str) -> str:
    """What the image runner `name` takes is called: its layout's name, else its target's (a
    bundle's firmware/<image name>.elf)."""
    return LAYOUTS[name].name if name in LAYOUTS else runner_target(name)


def runner_image(name: str, sources_dir: Path, target: str, entry: str = "model_invoke",
                 out_dir: Path | None = None, cache_dir: Path | None = None) -> BuildResult:
    """The firmware of `sources_dir` for `target` that runner `name` executes: the target's own
    build, or the same objects in the runner's layout (`LAYOUTS`). Arguments as `build`'s."""
    _check_name(name)
    return build(sources_dir, target, out_dir, entry, cache_dir, layout=LAYOUTS.get(name))
