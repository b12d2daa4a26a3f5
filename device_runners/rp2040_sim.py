"""rp2040-sim: an rp2040 firmware image on a Cortex-M0+ instruction-set simulator, with cycles.

The run is `device_runners.cortex_m_sim`'s (Unicorn, Cortex-M0 model: the ARMv6-M instruction
set of the M0+). Cycles come from a static Cortex-M0+ timing table applied to the executed
instructions (ARM DDI 0484C, 3.3): 1 cycle for ALU and MULS (the RP2040 has the single-cycle
multiplier), 2 for loads and stores, 1 + N for PUSH/LDM/STM, 3 for BL, 2 for a taken branch and 1
for one not taken, with zero-wait memory (`zero_wait_cycles`, the lower bound). On top of that,
by default, the XIP cache (`device_runners.rp2040_xip`): every fetch and load from flash reads
its line through it, and each miss adds the line fill time of the flash interface our boot2
sets up (`cycles`; hits and misses per kernel call). The cache and SRAM keep their contents from
one run to the next, as a board serving requests does: the first run of a runner is a cold
start (the cache empty, each weight blob's CRC-32 checked), later runs are warm.
"""
from __future__ import annotations

from pathlib import Path

from device_runners.cortex_m_sim import CortexMSim
from device_runners.rp2040_xip import XipCache
from device_runners.runners import OpCycles, SimResult, SimulationError

__all__ = ["OpCycles", "Rp2040Sim", "SimResult", "SimulationError", "m0plus_cycles"]

_CONDITIONS = {"eq", "ne", "cs", "cc", "hs", "lo", "mi", "pl", "vs", "vc", "hi", "ls", "ge", "lt", "gt", "le"}


def _register_count(operands: str) -> int:
    count = 0
    for reg in operands[operands.index("{") + 1:operands.index("}")].split(","):
        first, _, last = reg.strip().partition("-")
        count += int(last[1:]) - int(first[1:]) + 1 if last else 1
    return count


def m0plus_cycles(mnemonic: str, operands: str) -> tuple[int, bool]:
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


class Rp2040Sim(CortexMSim):
    """One rp2040 firmware image, loaded once, run on as many inputs as wanted; `xip` False
    times zero-wait memory only (no cache: `cycles` equal `zero_wait_cycles`)."""

    def __init__(self, elf_path: Path, entry: str = "model_invoke", xip: bool = True):
        cache = XipCache() if xip else None
        memory = cache.description if cache else "zero-wait memory"
        super().__init__(elf_path, "rp2040", entry, timing=m0plus_cycles, name="rp2040-sim",
                         description=f"Unicorn Cortex-M0+, M0+ timing table, {memory}", memory=cache)

