"""rp2040-sim: run an rp2040 firmware image on a Cortex-M0+ instruction-set simulator and count cycles.

Unicorn executes the real Thumb code of the ELF (`device_runners.build`), so its outputs are those
of the firmware itself. Cycles come from a static Cortex-M0+ timing table applied to the executed
instructions (ARM DDI 0484C, 3.3): 1 cycle for ALU and MULS (the RP2040 has the single-cycle
multiplier), 2 for loads and stores, 1 + N for PUSH/LDM/STM, 3 for BL, 2 for a taken branch and 1
for one not taken. Memory is zero-wait: the RP2040's XIP cache and flash wait states are not
modelled yet.

A run goes from reset to `main` (start-up code), the input is written into `autotune_input`, then
runs to `halt`; the cycles counted are those of the model's entry function, split by kernel call.
"""
from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from elftools.common.exceptions import ELFError
from elftools.elf.elffile import ELFFile

from autotune.errors import AutotuneError
from device_runners.build import ARM_OBJDUMP, find_tool
from device_runners.targets import get_target

FLASH_BASE, RAM_BASE = 0x10000000, 0x20000000
MAX_INSTRUCTIONS = 2_000_000_000
_CONDITIONS = {"eq", "ne", "cs", "cc", "hs", "lo", "mi", "pl", "vs", "vc", "hi", "ls", "ge", "lt", "gt", "le"}


class SimulationError(AutotuneError):
    """The firmware did not reach `halt` (a fault, a runaway loop) or is not an rp2040 image."""


@dataclass(frozen=True)
class OpCycles:
    kernel: str  # the function model_invoke called
    cycles: int  # in it and everything it called
    instructions: int


@dataclass(frozen=True)
class SimResult:
    output: np.ndarray  # int8, what the firmware wrote into autotune_output
    status: int  # what the entry function returned
    cycles: int  # the entry function, call to return
    instructions: int
    ops: tuple[OpCycles, ...]  # each kernel call of the entry function, in order

    @property
    def milliseconds(self) -> float:
        return self.cycles / get_target("rp2040").clock_hz * 1e3


def _register_count(operands: str) -> int:
    count = 0
    for reg in operands[operands.index("{") + 1:operands.index("}")].split(","):
        first, _, last = reg.strip().partition("-")
        count += int(last[1:]) - int(first[1:]) + 1 if last else 1
    return count


def _cost(mnemonic: str, operands: str) -> tuple[int, bool]:
    """Cycles of one instruction and whether it is a conditional branch (+1 when taken)."""
    op = mnemonic.split(".")[0]
    if op == "b" or op == "bx" or op == "blx" or (op in ("mov", "add") and operands.startswith("pc")):
        return 2, False
    if op.startswith("b") and op[1:] in _CONDITIONS:
        return 1, True
    if op == "bl":
        return 3, False
    if op == "pop":
        return _register_count(operands) + (3 if "pc" in operands else 1), False
    if op in ("push", "ldm", "ldmia", "stm", "stmia"):
        return 1 + _register_count(operands), False
    if op.startswith(("ldr", "str")):
        return 2, False
    if op in ("dmb", "dsb", "isb"):
        return 3, False
    return 1, False


class Rp2040Sim:
    """One firmware image, loaded once, run on as many inputs as wanted."""

    def __init__(self, elf_path: Path, entry: str = "model_invoke"):
        self.elf_path = Path(elf_path)
        try:
            with self.elf_path.open("rb") as f:
                elf = ELFFile(f)
                if elf["e_machine"] != "EM_ARM":
                    raise SimulationError(f"{elf_path}: not an Arm ELF")
                segments = [(s["p_paddr"], s.data()) for s in elf.iter_segments()
                            if s["p_type"] == "PT_LOAD" and s["p_filesz"]]
                symbols = self._read_symbols(elf)
        except ELFError as exc:
            raise SimulationError(f"{elf_path}: not a readable ELF file: {exc}") from None
        missing = {entry, "main", "halt", "autotune_input", "autotune_output", "autotune_status"} - set(symbols)
        if missing:
            raise SimulationError(f"{elf_path}: not an autotune firmware image; missing {', '.join(sorted(missing))}")
        self._segments, self._symbols = segments, symbols
        self._entry = symbols[entry]
        self._functions = {addr: name for name, (addr, size) in symbols.items()
                           if size and FLASH_BASE <= addr < RAM_BASE}
        self._costs = self._instruction_costs()
        self._blocks: dict[tuple[int, int], tuple[int, int, int | None]] = {}

    @staticmethod
    def _read_symbols(elf: ELFFile) -> dict[str, tuple[int, int]]:
        """Functions and objects: name -> (address, size); a function's address without the
        Thumb bit."""
        symbols = {}
        for sym in elf.get_section_by_name(".symtab").iter_symbols():
            kind = sym["st_info"]["type"]
            if kind in ("STT_FUNC", "STT_OBJECT"):
                symbols[sym.name] = (sym["st_value"] & ~1 if kind == "STT_FUNC" else sym["st_value"], sym["st_size"])
        return symbols

    def _instruction_costs(self) -> dict[int, tuple[int, int, bool]]:
        """Address -> (size in bytes, cycles, conditional branch) for every instruction."""
        listing = subprocess.run([find_tool(ARM_OBJDUMP), "-d", str(self.elf_path)],
                                 capture_output=True, text=True, check=True).stdout
        costs = {}
        for m in re.finditer(r"^\s*([0-9a-f]+):\t((?:[0-9a-f]{4} ?)+)\s*\t(\S+)\s*([^;@\n]*)", listing, re.M):
            if m.group(3).startswith("."):  # literal pools
                continue
            cycles, conditional = _cost(m.group(3), m.group(4).strip())
            costs[int(m.group(1), 16)] = (2 * len(m.group(2).split()), cycles, conditional)
        return costs

    def _block(self, address: int, size: int) -> tuple[int, int, int | None]:
        """(instructions, cycles if every conditional branch falls through, fall-through address
        of a block ending in a conditional branch, else None)."""
        key = (address, size)
        if key not in self._blocks:
            count = cycles = 0
            end, conditional = address, False
            while end < address + size:
                length, c, conditional = self._costs[end]
                count, cycles, end = count + 1, cycles + c, end + length
            self._blocks[key] = (count, cycles, end if conditional else None)
        return self._blocks[key]

    def run(self, x: np.ndarray) -> SimResult:
        from unicorn import UC_ARCH_ARM, UC_HOOK_BLOCK, UC_MODE_THUMB, Uc, UcError
        from unicorn.arm_const import UC_ARM_REG_LR, UC_ARM_REG_PC, UC_ARM_REG_SP, UC_CPU_ARM_CORTEX_M0

        target = get_target("rp2040")
        uc = Uc(UC_ARCH_ARM, UC_MODE_THUMB)
        uc.ctl_set_cpu_model(UC_CPU_ARM_CORTEX_M0)  # before mapping: UC_MODE_MCLASS would be an M33
        uc.mem_map(FLASH_BASE, target.flash_bytes)
        uc.mem_map(RAM_BASE, -(-target.sram_bytes // 4096) * 4096)
        for address, data in self._segments:
            uc.mem_write(address, data)
        sp, reset = np.frombuffer(bytes(uc.mem_read(FLASH_BASE, 8)), "<u4")
        uc.reg_write(UC_ARM_REG_SP, int(sp))
        main, halt = self._symbols["main"][0], self._symbols["halt"][0]
        input_addr, input_size = self._symbols["autotune_input"]
        data = np.ascontiguousarray(x, np.int8).tobytes()
        if len(data) != input_size:
            raise SimulationError(f"{self.elf_path}: input of {len(data)} bytes, the model takes {input_size}")
        try:
            uc.emu_start(int(reset) | 1, main, count=MAX_INSTRUCTIONS)  # start-up: .data, .bss
            uc.mem_write(input_addr, data)
            counter = _Counter(self)
            uc.hook_add(UC_HOOK_BLOCK, counter.block, UC_ARM_REG_LR)
            uc.emu_start(main | 1, halt, count=MAX_INSTRUCTIONS)
        except UcError as exc:
            pc = uc.reg_read(UC_ARM_REG_PC)
            raise SimulationError(f"{self.elf_path}: {exc} at {pc:#010x}") from None
        if uc.reg_read(UC_ARM_REG_PC) & ~1 != halt:
            raise SimulationError(f"{self.elf_path}: did not reach halt in {MAX_INSTRUCTIONS:,} instructions")
        out_addr, out_size = self._symbols["autotune_output"]
        status_addr, _ = self._symbols["autotune_status"]
        return SimResult(
            output=np.frombuffer(bytes(uc.mem_read(out_addr, out_size)), np.int8).copy(),
            status=int(np.frombuffer(bytes(uc.mem_read(status_addr, 4)), "<i4")[0]),
            cycles=counter.cycles, instructions=counter.instructions,
            ops=tuple(OpCycles(k, c, i) for k, c, i in counter.ops))


class _Counter:
    """Block hook: cycles of the entry function from its call to its return, split by kernel call."""

    def __init__(self, sim: Rp2040Sim):
        self.sim = sim
        start, size = sim._entry
        self.entry = range(start, start + size)
        self.return_to: int | None = None
        self.fall_through: int | None = None
        self.in_entry_body = False
        self.cycles = self.instructions = 0
        self.ops: list[list] = []  # [kernel, cycles, instructions]

    def block(self, uc, address: int, size: int, lr_reg: int) -> None:
        count, cycles, fall_through = self.sim._block(address, size)
        taken = self.fall_through is not None and address != self.fall_through
        self.fall_through = fall_through
        if self.return_to is None:
            if address != self.entry.start:
                return
            self.return_to = uc.reg_read(lr_reg) & ~1
        elif address == self.return_to:
            self.return_to = -1  # returned: count nothing more
            return
        if self.return_to == -1:
            return
        cycles += taken  # the branch that led here was taken: one more cycle, the branch's block
        in_body = address in self.entry
        if not in_body and self.in_entry_body and address in self.sim._functions:
            self.ops.append([self.sim._functions[address], 0, 0])  # the entry calls a kernel
        self.in_entry_body = in_body
        self.cycles += cycles
        self.instructions += count
        if self.ops and not in_body:
            self.ops[-1][1] += cycles
            self.ops[-1][2] += count
