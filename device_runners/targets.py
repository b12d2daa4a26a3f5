"""The microcontrollers we build for: core, compiler flags, clock and memory sizes.

The linker scripts in `device_runners/harness/<name>.ld` use the same memory sizes
(tests/test_build.py checks that they agree).
"""
from __future__ import annotations

from dataclasses import dataclass

from autotune.errors import ConfigError


@dataclass(frozen=True)
class Target:
    name: str
    core: str
    cpu_flags: tuple[str, ...]
    clock_hz: int
    sram_bytes: int
    flash_bytes: int


TARGETS: dict[str, Target] = {
    "rp2040": Target(
        name="rp2040",
        core="cortex-m0plus",
        cpu_flags=("-mcpu=cortex-m0plus", "-mthumb"),
        clock_hz=133_000_000,
        sram_bytes=264 * 1024,
        flash_bytes=2 * 1024 * 1024,  # QSPI flash, executed in place
    ),
    "apollo5": Target(
        name="apollo5",
        core="cortex-m55",
        cpu_flags=("-mcpu=cortex-m55", "-mthumb", "-mfloat-abi=hard", "-mfpu=auto"),
        clock_hz=250_000_000,  # high-performance mode
        sram_bytes=3840 * 1024,  # 3.75 MB including TCM
        flash_bytes=4 * 1024 * 1024,  # MRAM
    ),
}


def get_target(name: str) -> Target:
    """The target called `name`; a ConfigError listing the valid names otherwise."""
    try:
        return TARGETS[name]
    except KeyError:
        raise ConfigError(
            f"unknown target {name!r}; valid targets: {', '.join(sorted(TARGETS))}"
        ) from None
