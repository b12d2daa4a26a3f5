"""A Cortex-M firmware image run instruction by instruction on Unicorn, with counts per kernel call.

Unicorn executes the real Thumb code of the ELF (`device_runners.build`), so its outputs are those
of the firmware itself. Memory is laid out from the target's declaration: flash and SRAM where
its linker script puts them, plus the System Control Space page as plain memory (Unicorn has no
SCB; the start-up code's CPACR write, which enables the FPU on hardware, lands there, and
Unicorn's FPU is enabled regardless).

A run goes from reset to `main` (start-up code), the input is written into `autotune_input`, then
it continues at `autotune_measure` (which calls the entry once) and runs to `halt`; so a board
image whose `main` serves requests runs too. Counted are the instructions of the model's entry
function from its first instruction to its return, split by kernel call; cycles too when a
timing table is given (one per core, e.g. rp2040-sim's Cortex-M0+ table), with zero-wait memory,
plus the stalls of a memory model where one is given (rp2040-sim's XIP cache,
`device_runners.rp2040_xip`), which sees every instruction fetch and load from its address range.
Unicorn set-up: the CPU model is set before memory is mapped (`UC_MODE_MCLASS` would silently
make it a Cortex-M33), and the translation cache is flushed before the counting hook is added:
blocks translated during start-up (the memcpy and memset `Reset_Handler` calls) would otherwise
run later without the hook.
"""
from __future__ import annotations

import re
import struct
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Protocol

import numpy as np
from elftools.common.exceptions import ELFError
from elftools.elf.elffile import ELFFile
from unicorn import UC_ARCH_ARM, UC_HOOK_BLOCK, UC_HOOK_MEM_READ, UC_MODE_THUMB, Uc, UcError
from unicorn.arm_const import (UC_ARM_REG_LR, UC_ARM_REG_PC, UC_ARM_REG_SP, UC_CPU_ARM_CORTEX_M0,
                               UC_CPU_ARM_CORTEX_M4)

from device_runners.build import find_tool
from device_runners.runners import OpCycles, SimResult, SimulationError
from device_runners.targets import get_target

MAX_INSTRUCTIONS = 2_000_000_000
SCS_PAGE = 0xE000E000  # System Control Space: SCB, CPACR at 0xE000ED88
UNICORN_CPUS = {"cortex-m0plus": UC_CPU_ARM_CORTEX_M0,  # ARMv6-M: the M0+ instruction set
                "cortex-m4": UC_CPU_ARM_CORTEX_M4}
HARNESS_SYMBOLS = ("main", "halt", "autotune_measure", "autotune_vectors", "autotune_input", "autotune_output",
                   "autotune_status")

# (mnemonic, operands) -> (cycles, whether it is a conditional branch: one more cycle when taken)
Timing = Callable[[str, str], tuple[int, bool]]


class MemoryModel(Protocol):
    """A cache in front of slow memory (rp2040_xip.XipCache): every fetch and load in `cached`
    reads its lines through it; each miss stalls the core `miss_cycles`."""

    cached: range  # the addresses that go through it
    miss_cycles: int
    description: str

    def lines(self, address: int, size: int) -> range: ...

    def read(self, lines: range) -> int: ...  # reads each line in turn; the number of hits

    def load(self, address: int) -> bool: ...  # an aligned load (one line); True on a hit


def _pages(start: int, size: int) -> tuple[int, int]:
    """The 4 KB-aligned span covering [start, start + size), as Unicorn maps memory."""
    first = start & ~0xFFF
    return first, -(-(start + size - first) // 0x1000) * 0x1000


@dataclass(frozen=True)
class FirmwareImage:
    """What a runner loads from an autotune firmware ELF."""

    segments: tuple[tuple[int, bytes], ...]  # PT_LOAD segments: (physical address, contents)
    symbols: dict[str, tuple[int, int]]  # functions and objects: name -> (address, size)

    def word(self, symbol: str, index: int) -> int:
        """The `index`-th 32-bit word of an initialised object, e.g. the vector table."""
        address = self.symbols[symbol][0] + 4 * index
        for start, data in self.segments:
            if start <= address < start + len(data):
                return int.from_bytes(data[address - start:address - start + 4], "little")
        raise SimulationError(f"{symbol} is not in a loaded segment")


def read_image(elf_path: Path, target: str, entry: str = "model_invoke") -> FirmwareImage:
    """Segments and symbols of an autotune firmware image for `target`; a SimulationError naming
    the file if it is not one. A function's address is given without the Thumb bit. Where the
    model keeps its input and output in its arena, `autotune_input` and `autotune_output` are
    those buffers, as the harness's section `.autotune_io` gives them."""
    t = get_target(target)
    try:
        with Path(elf_path).open("rb") as f:
            elf = ELFFile(f)
            if elf["e_machine"] != "EM_ARM":
                raise SimulationError(f"{elf_path}: not an Arm ELF")
            segments = tuple((s["p_paddr"], s.data()) for s in elf.iter_segments()
                             if s["p_type"] == "PT_LOAD" and s["p_filesz"])
            symbols = {}
            for sym in elf.get_section_by_name(".symtab").iter_symbols():
                kind = sym["st_info"]["type"]
                if kind in ("STT_FUNC", "STT_OBJECT"):
                    address = sym["st_value"] & ~1 if kind == "STT_FUNC" else sym["st_value"]
                    symbols[sym.name] = (address, sym["st_size"])
            io = elf.get_section_by_name(".autotune_io")  # the model's input and output live in its arena
            if io is not None:
                words = struct.unpack("<4I", io.data()[:16])
                symbols["autotune_input"], symbols["autotune_output"] = (words[0], words[2]), (words[1], words[3])
    except ELFError as exc:
        raise SimulationError(f"{elf_path}: not a readable ELF file: {exc}") from None
    missing = {entry, *HARNESS_SYMBOLS} - set(symbols)
    if missing:
        raise SimulationError(f"{elf_path}: not an autotune firmware image; missing {', '.join(sorted(missing))}")
    flash = range(t.flash_origin, t.flash_origin + t.flash_bytes)
    ram = range(t.ram_origin, t.ram_origin + t.sram_bytes)
    if any(address not in flash and address not in ram for address, _ in segments):
        raise SimulationError(f"{elf_path}: not a {target} image (a segment lies outside its memories)")
    return FirmwareImage(segments, symbols)


class CortexMSim:
    """One firmware image for `target`, loaded once, run on as many inputs as wanted."""

    def __init__(self, elf_path: Path, target: str, entry: str = "model_invoke", *, name: str,
                 description: str, timing: Timing | None = None, memory: MemoryModel | None = None):
        """`name` and `description` make the runner's `source`; without `timing` it counts
        instructions only (cycles None), which `description` must say. `memory` keeps its state
        from one run to the next, and so does SRAM, as on a board answering request after
        request: the first run is the first inference after reset (each weight blob's CRC-32
        checked), the later ones are not."""
        self.elf_path = Path(elf_path)
        self.target = get_target(target)
        if self.target.core not in UNICORN_CPUS:
            raise SimulationError(f"Unicorn has no {self.target.core} model; {target} cannot run on it")
        self.name = name
        self.source = f"measured:{name} ({description})"
        self.timing = timing
        self.memory = memory
        self.image = read_image(self.elf_path, target, entry)
        self._symbols = self.image.symbols
        self._entry = self._symbols[entry]
        flash = range(self.target.flash_origin, self.target.flash_origin + self.target.flash_bytes)
        # Kernel calls by address; a call through a linker veneer (to code placed in SRAM) is the kernel's.
        self._functions = {addr: name.removeprefix("__").removesuffix("_veneer") if name.endswith("_veneer") else name
                           for name, (addr, size) in self._symbols.items() if size and addr in flash}
        self._costs = self._instruction_costs()
        self._blocks: dict[tuple[int, int], tuple[int, int, int | None, range]] = {}
        self._sram: bytes | None = None  # after the last run

    def _instruction_costs(self) -> dict[int, tuple[int, int, bool]]:
        """Address -> (size in bytes, cycles, conditional branch) for every instruction."""
        tools = self.target.toolchain
        listing = subprocess.run([find_tool(tools.objdump, tools.install_hint), "-d", str(self.elf_path)],
                                 capture_output=True, text=True, check=True).stdout
        costs = {}
        for m in re.finditer(r"^\s*([0-9a-f]+):\t((?:[0-9a-f]{4} ?)+)\s*\t(\S+)\s*([^;@\n]*)", listing, re.M):
            if m.group(3).startswith("."):  # literal pools
                continue
            cycles, conditional = self.timing(m.group(3), m.group(4).strip()) if self.timing else (0, False)
            costs[int(m.group(1), 16)] = (2 * len(m.group(2).split()), cycles, conditional)
        return costs

    def _block(self, address: int, size: int) -> tuple[int, int, int | None, range]:
        """(instructions, cycles if every conditional branch falls through, fall-through address
        of a block ending in a conditional branch, else None, the memory model's lines it is
        fetched from)."""
        key = (address, size)
        if key not in self._blocks:
            count = cycles = 0
            end, conditional = address, False
            while end < address + size:
                length, c, conditional = self._costs[end]
                count, cycles, end = count + 1, cycles + c, end + length
            lines = self.memory.lines(address, size) if self.memory and address in self.memory.cached else range(0)
            self._blocks[key] = (count, cycles, end if conditional else None, lines)
        return self._blocks[key]

    def run(self, x: np.ndarray) -> SimResult:
        t = self.target
        uc = Uc(UC_ARCH_ARM, UC_MODE_THUMB)
        uc.ctl_set_cpu_model(UNICORN_CPUS[t.core])  # before mapping: UC_MODE_MCLASS would be an M33
        uc.mem_map(*_pages(t.flash_origin, t.flash_bytes))
        uc.mem_map(*_pages(t.ram_origin, t.sram_bytes))
        uc.mem_map(SCS_PAGE, 0x1000)
        for address, data in self.image.segments:
            uc.mem_write(address, data)
        uc.reg_write(UC_ARM_REG_SP, self.image.word("autotune_vectors", 0))
        reset = self.image.word("autotune_vectors", 1)
        main, halt, measure = (self._symbols[s][0] for s in ("main", "halt", "autotune_measure"))
        input_addr, input_size = self._symbols["autotune_input"]
        data = np.ascontiguousarray(x, np.int8).tobytes()
        if len(data) != input_size:
            raise SimulationError(f"{self.elf_path}: input of {len(data)} bytes, the model takes {input_size}")
        try:
            uc.emu_start(reset | 1, main, count=MAX_INSTRUCTIONS)  # start-up: .data, .bss
            if self._sram is not None:
                uc.mem_write(t.ram_origin, self._sram)
            uc.mem_write(input_addr, data)
            uc.ctl_flush_tb()  # blocks translated so far would run without the hook
            counter = _Counter(self)
            uc.hook_add(UC_HOOK_BLOCK, counter.block, UC_ARM_REG_LR)
            if self.memory is not None:
                cached = self.memory.cached
                uc.hook_add(UC_HOOK_MEM_READ, counter.load, None, cached.start, cached.stop - 1)
            uc.emu_start(measure | 1, halt, count=MAX_INSTRUCTIONS)
        except UcError as exc:
            pc = uc.reg_read(UC_ARM_REG_PC)
            raise SimulationError(f"{self.elf_path}: {exc} at {pc:#010x}") from None
        if uc.reg_read(UC_ARM_REG_PC) & ~1 != halt:
            raise SimulationError(f"{self.elf_path}: did not reach halt in {MAX_INSTRUCTIONS:,} instructions")
        self._sram = bytes(uc.mem_read(t.ram_origin, t.sram_bytes))
        out_addr, out_size = self._symbols["autotune_output"]
        status_addr, _ = self._symbols["autotune_status"]
        return SimResult(
            target=t.name,
            output=np.frombuffer(bytes(uc.mem_read(out_addr, out_size)), np.int8).copy(),
            status=int(np.frombuffer(bytes(uc.mem_read(status_addr, 4)), "<i4")[0]),
            **counter.totals.result(self),
            ops=tuple(OpCycles(kernel, **c.result(self)) for kernel, c in counter.ops))


class _Counts:
    """Instructions, zero-wait cycles and memory-model hits and misses of one span."""

    __slots__ = ("instructions", "cycles", "hits", "misses")

    def __init__(self, *parts: _Counts):
        self.instructions = sum(p.instructions for p in parts)
        self.cycles = sum(p.cycles for p in parts)
        self.hits = sum(p.hits for p in parts)
        self.misses = sum(p.misses for p in parts)

    def result(self, sim: CortexMSim) -> dict:
        if sim.timing is None:
            return {"instructions": self.instructions, "cycles": None}
        if sim.memory is None:
            return {"instructions": self.instructions, "cycles": self.cycles, "zero_wait_cycles": self.cycles}
        return {"instructions": self.instructions, "cycles": self.cycles + self.misses * sim.memory.miss_cycles,
                "zero_wait_cycles": self.cycles, "xip_hits": self.hits, "xip_misses": self.misses}


class _Counter:
    """Block and load hooks: instructions, cycles and memory-model hits and misses of the entry
    function from its call to its return, split by kernel call. The memory model sees every
    fetch and load (its state carries on), the counts only those of the span."""

    def __init__(self, sim: CortexMSim):
        self.sim = sim
        self.memory = sim.memory
        start, size = sim._entry
        self.entry = range(start, start + size)
        self.return_to: int | None = None
        self.fall_through: int | None = None
        self.in_entry_body = False
        self.body = _Counts()  # the entry function's own instructions, between its calls
        self.ops: list[tuple[str, _Counts]] = []  # each kernel call: (kernel, its counts)
        self.current: _Counts | None = None  # where the running code counts; None outside the span

    @property
    def totals(self) -> _Counts:
        return _Counts(self.body, *(c for _, c in self.ops))

    def block(self, uc, address: int, size: int, lr_reg: int) -> None:
        count, cycles, fall_through, lines = self.sim._block(address, size)
        hits = self.memory.read(lines) if lines else 0
        taken = self.fall_through is not None and address != self.fall_through
        self.fall_through = fall_through
        if self.return_to is None:
            if address != self.entry.start:
                return
            self.return_to = uc.reg_read(lr_reg) & ~1
        elif address == self.return_to:
            self.return_to = -1  # returned: count nothing more
            self.current = None
            return
        if self.return_to == -1:
            return
        in_body = address in self.entry
        if not in_body and self.in_entry_body and address in self.sim._functions:
            self.ops.append((self.sim._functions[address], _Counts()))  # the entry calls a kernel
        self.in_entry_body = in_body
        counts = self.current = self.ops[-1][1] if self.ops and not in_body else self.body
        counts.cycles += cycles + taken  # a taken branch led here: one more cycle, the branch's block
        counts.instructions += count
        counts.hits += hits
        counts.misses += len(lines) - hits

    def load(self, uc, access: int, address: int, size: int, value: int, user) -> None:
        hit = self.memory.load(address)  # the M0+ faults on unaligned loads: one line each
        if counts := self.current:
            if hit:
                counts.hits += 1
            else:
                counts.misses += 1
