"""The microcontrollers we build for, each declared once: its core and compiler flags, the
toolchain, the kernel libraries, linker script and memories, clock, cost table and runners.

Everything that needs the list of targets reads `TARGETS` (the config's `target:` choices, the
CLI's `--target`, bundles' Makefiles); nothing else lists them. Adding a target is one entry here,
its linker script in `device_runners/harness/`, a cost table in `cost_models/analytic.py`, and
the tests parametrised over `TARGETS` then build, measure and run it (README "Targets").
"""
from __future__ import annotations

from dataclasses import dataclass

from autotune.errors import ConfigError


@dataclass(frozen=True)
class Toolchain:
    compiler: str  # C compiler driver (compiles, links)
    objdump: str
    objcopy: str  # ELF -> flash binary, for UF2 images
    size: str  # what bundles' Makefiles print sizes with
    install_hint: str  # what to run when a tool is missing


ARM_GNU = Toolchain(
    compiler="arm-none-eabi-gcc",
    objdump="arm-none-eabi-objdump",
    objcopy="arm-none-eabi-objcopy",
    size="arm-none-eabi-size",
    install_hint="install with: apt-get install -y --no-install-recommends "
                 "gcc-arm-none-eabi libnewlib-arm-none-eabi",
)


@dataclass(frozen=True)
class Target:
    name: str
    board: str  # what a user owns
    core: str
    cpu_flags: tuple[str, ...]  # compile and link flags that select the core, ABI and FPU
    toolchain: Toolchain
    # Per-core kernel directories under autotune/codegen/kernels/: a file there replaces the
    # generic kernel file of the same name; the first library listed that has the file wins.
    # A library without a directory yet means generic C only.
    kernel_libraries: tuple[str, ...]
    linker_script: str  # in device_runners/harness/; its MEMORY matches the regions below
    flash_origin: int  # where the application image (vector table first) starts
    flash_bytes: int  # flash the application may use
    ram_origin: int
    sram_bytes: int
    clock_hz: int
    cost_table: str  # key of cost_models.analytic.TABLES
    runners: tuple[str, ...]  # names in device_runners.runners.RUNNERS, the default first
    # Firmware files of device_runners/harness/ linked with the model. Every image holds
    # autotune_io.c (the buffers, `autotune_measure` and `halt` that runners drive); the main
    # either runs the model once (autotune_main.c) or is a board's request loop.
    harness: tuple[str, ...] = ("autotune_io.c", "autotune_main.c", "autotune_startup.c", "autotune_libc.c")
    uf2_family: int | None = None  # a UF2 image (for drag-and-drop flashing) beside the ELF
    # Build placements (device_runners.build.PLACEMENTS) this target offers besides "flash".
    placements: tuple[str, ...] = ()


TARGETS: dict[str, Target] = {
    "rp2040": Target(
        name="rp2040",
        board="Raspberry Pi RP2040 (e.g. Pico)",
        core="cortex-m0plus",
        cpu_flags=("-mcpu=cortex-m0plus", "-mthumb"),
        toolchain=ARM_GNU,
        kernel_libraries=("cortex-m0plus",),
        linker_script="rp2040.ld",
        flash_origin=0x10000000,  # QSPI flash, executed in place; boot2, then the vectors at +0x100
        flash_bytes=2 * 1024 * 1024,
        ram_origin=0x20000000,
        sram_bytes=264 * 1024,
        clock_hz=133_000_000,
        cost_table="cortex-m0plus",
        runners=("rp2040-sim", "rp2040js", "rp2040"),
        # The board image: boot2 (quad XIP), clocks to 133 MHz, the UART request loop.
        harness=("rp2040_boot2_padded.S", "autotune_io.c", "rp2040_board.c", "rp2040_cycles.c",
                 "autotune_protocol.c", "autotune_startup.c", "autotune_libc.c"),
        uf2_family=0xE48BFF56,
        placements=("sram_weights", "sram_kernels", "sram_all"),
    ),
    "apollo5": Target(
        name="apollo5",
        board="Ambiq Apollo5",
        core="cortex-m55",
        cpu_flags=("-mcpu=cortex-m55", "-mthumb", "-mfloat-abi=hard", "-mfpu=auto"),
        toolchain=ARM_GNU,
        kernel_libraries=("cortex-m55-mve",),
        linker_script="apollo5.ld",
        # The image's memories (harness/apollo5.ld): code and weights in MRAM above Ambiq's
        # secure boot loader, data and stack in DTCM; of the chip's 3.75 MB of RAM the 3 MB
        # shared SRAM and the ITCM are not used.
        flash_origin=0x00410000,
        flash_bytes=4032 * 1024,
        ram_origin=0x20000000,
        sram_bytes=496 * 1024,
        clock_hz=250_000_000,  # high-performance mode
        cost_table="cortex-m55",
        runners=("apollo5-sim",),
    ),
    "nano33ble": Target(
        name="nano33ble",
        board="Arduino Nano 33 BLE Sense (nRF52840)",
        core="cortex-m4",
        cpu_flags=("-mcpu=cortex-m4", "-mthumb", "-mfloat-abi=hard", "-mfpu=fpv4-sp-d16"),
        toolchain=ARM_GNU,
        kernel_libraries=("cortex-m4",),
        linker_script="nano33ble.ld",
        flash_origin=0x00010000,  # the Arduino bootloader holds the first 64 KB of the 1 MB
        flash_bytes=960 * 1024,
        ram_origin=0x20000000,
        sram_bytes=256 * 1024,
        clock_hz=64_000_000,
        cost_table="cortex-m4",
        runners=("nano33ble-sim",),
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
