"""Cortex-M55 cycles of executed basic blocks, from LLVM's Cortex-M55 scheduling model.

A block's cycles are llvm-mca's steady-state cycles per iteration of its instructions
(`llvm-mca-19 -mtriple=thumbv8.1m.main -mcpu=cortex-m55`, llvm/lib/Target/ARM/ARMScheduleM55.td:
in-order, dual issue of some 16-bit pairs, MVE instructions two beats on one of four vector
pipes, load and multiply latencies), plus the terms llvm-mca does not see, all in `BlockTiming`
below and in the README's table:
  * taken branches: TAKEN_BRANCH_PENALTY cycles of fetch redirect on top of the branch's issue
    slot, for every execution of a block that did not fall through;
  * low-overhead loops: the model has no timing for DLS/WLS/LE (llvm-mca skips them). DLS and
    WLS cost as a MOV to LR; WLS taken (zero iterations) as a taken branch; LE costs a taken
    branch at the end of a loop's first iteration only, later iterations branch back for free
    (the loop is then in the LOB cache), and one cycle when the loop exits;
  * memory: in the apollo5 layout data and stack sit in DTCM, zero wait states, as llvm-mca
    assumes; code and weights in MRAM behind the 64 KB instruction and data caches, assumed warm.
Results are cached per block text in `<cache dir>/m55-mca.json`.
"""
from __future__ import annotations

import bisect
import hashlib
import json
import os
import re
import subprocess
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from autotune.errors import ToolchainError
from device_runners.build import CACHE_ENV, find_tool

LLVM_MCA = "llvm-mca-19"
LLVM_OBJDUMP = "llvm-objdump-19"
MCA_FLAGS = ("-mtriple=thumbv8.1m.main-none-eabi", "-mcpu=cortex-m55")
INSTALL_HINT = "install with: apt-get install -y --no-install-recommends llvm-19"
ITERATIONS = 100
# LLVM's CortexM55Model: MispredictPenalty = 3 cycles. The M55 predicts no branch dynamically, so
# a taken branch redirects fetch: 1 issue cycle (seen by llvm-mca) + 2 more.
TAKEN_BRANCH_PENALTY = 2
LOOP_EXIT_CYCLES = 1  # LE falling through at the end of a loop

_CONDITIONS = "eq|ne|cs|cc|hs|lo|mi|pl|vs|vc|hi|ls|ge|lt|gt|le|al"
_BRANCH = re.compile(rf"^(b|bl|blx|bx|cbn?z|b(?:{_CONDITIONS})|tb[bh])$")
_LOOP_START = re.compile(r"^(dls|wls)(tp)?$")
_LOOP_END = re.compile(r"^le(tp)?$")
_TARGET = re.compile(r"0x[0-9a-f]+ <[^>]*>")


@dataclass(frozen=True)
class Instruction:
    address: int
    size: int
    text: str  # LLVM assembly syntax, branch targets as in the listing

    @property
    def mnemonic(self) -> str:
        return self.text.split()[0].split(".")[0]


def disassemble(elf_path: Path) -> dict[int, Instruction]:
    """Every instruction of the ELF's code, by address (llvm-objdump syntax, which llvm-mca parses)."""
    listing = subprocess.run(
        [find_tool(LLVM_OBJDUMP, INSTALL_HINT), "-d", "--triple=thumbv8.1m.main-none-eabi", "--mcpu=cortex-m55",
         str(elf_path)], capture_output=True, text=True)
    if listing.returncode != 0:
        raise ToolchainError(f"{LLVM_OBJDUMP} failed on {elf_path}: {listing.stderr[:300]}")
    code = {}
    for m in re.finditer(r"^\s*([0-9a-f]+):\s((?:[0-9a-f]{4} ?)+)\s*\t(.*)$", listing.stdout, re.M):
        text = m.group(3).split("@")[0].strip().replace("\t", " ")
        if not text or text.startswith("."):  # literal pools and padding
            continue
        code[int(m.group(1), 16)] = Instruction(int(m.group(1), 16), 2 * len(m.group(2).split()), text)
    return code


_VPT = re.compile(r"^vp(s)?t([te]*)$")
_IT = re.compile(r"^it([te]*)$")


def _opens_block(ins: Instruction) -> tuple[int, bool] | None:
    """(instructions predicated, whether by IT) of a VPT, VPST or IT instruction, else None."""
    m = _VPT.match(ins.mnemonic)
    if m:
        return len(m.group(2)) + 1, False
    m = _IT.match(ins.mnemonic)
    return (len(m.group(1)) + 1, True) if m else None


def unpredicated(code: dict[int, Instruction], addresses: Sequence[int],
                 block: list[Instruction]) -> list[Instruction]:
    """`block` with the predication suffix taken off the instructions at its start that a VPT,
    VPST or IT before it predicates: QEMU ends a translation block after a VPT, after a
    predicated VCMP and after an SDIV or UDIV (which may trap), so a block can start inside a VPT
    or IT block, where llvm-mca refuses `vshlt`, `addpl` and the like without their VPT or IT
    (the timing is the unpredicated instruction's). `addresses`: sorted(code)."""
    i = bisect.bisect_left(addresses, block[0].address)
    covered, by_it = 0, False  # instructions from the block start still inside an earlier block
    for back in range(1, 5):
        if i - back < 0:
            break
        opened = _opens_block(code[addresses[i - back]])
        if opened:
            covered, by_it = opened[0] - (back - 1), opened[1]
            break
    return [_strip_predication(ins, by_it) if k < covered else ins for k, ins in enumerate(block)]


def _strip_predication(ins: Instruction, by_it: bool = False) -> Instruction:
    """The instruction without its VPT suffix (t or e), or with `by_it` its IT condition."""
    op, _, rest = ins.text.partition(" ")
    base, dot, suffix = op.partition(".")
    if by_it:
        if re.fullmatch(rf".+({_CONDITIONS})", base):
            base = base[:-2]
        return Instruction(ins.address, ins.size, f"{base}{dot}{suffix} {rest}".strip())
    return Instruction(ins.address, ins.size, f"{base[:-1]}{dot}{suffix} {rest}".strip())


def _close_vpt_blocks(block: Sequence[Instruction]) -> list[Instruction]:
    """`block` with a VPT or IT block that runs past its end made whole: the VPT timed as the
    VCMP it does (a VPST or an IT as a NOP), the instructions of it inside the block
    unpredicated."""
    out = list(block)
    for j, ins in enumerate(block):
        opened = _opens_block(ins)
        if opened and j + opened[0] >= len(block):
            op, _, operands = ins.text.partition(" ")
            dt = op.partition(".")[2]
            vcmp = not opened[1] and not _VPT.match(ins.mnemonic).group(1)
            out[j] = Instruction(ins.address, ins.size, f"vcmp.{dt} {operands}" if vcmp else "nop")
            out[j + 1:] = [_strip_predication(i, opened[1]) for i in block[j + 1:]]
            break
    return out


def _pops_pc(ins: Instruction) -> bool:
    return ins.mnemonic in ("pop", "ldm", "ldmia") and "pc" in ins.text or ins.text.startswith(("ldr pc", "ldr.w pc", "mov pc"))


def ends_in_branch(ins: Instruction) -> bool:
    """A branch that can redirect fetch (calls and returns included; LE and WLS apart)."""
    return bool(_BRANCH.match(ins.mnemonic)) or _pops_pc(ins)


def mca_text(block: Sequence[Instruction]) -> str:
    """The block as llvm-mca reads it: low-overhead-loop instructions, which the scheduling model
    lacks, replaced by what they cost besides branching (a MOV to LR) or dropped (LE); calls as
    plain branches (llvm-mca assumes 100 cycles for a call); branch targets as a label just after
    the block (only forward branches always assemble)."""
    lines = []
    for ins in _close_vpt_blocks(block):
        op = ins.mnemonic
        if _LOOP_END.match(op):
            continue
        if _LOOP_START.match(op):
            count = ins.text.split(",")[1].strip()
            lines.append(f"mov lr, {count}")
            continue
        text = _TARGET.sub("2f", ins.text)
        if op == "bl":
            text = "b 2f"
        elif op == "blx":
            text = "bx " + text.split(None, 1)[1]
        lines.append(text)
    return "\n".join(lines)


class BlockTiming:
    """Cycles of blocks on the Cortex-M55: llvm-mca per distinct block text, cached on disk."""

    def __init__(self, cache_dir: Path | None = None):
        if cache_dir is None:
            cache_dir = Path(os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "autotune")
        self.cache_file = Path(cache_dir) / "m55-mca.json"
        self.mca = find_tool(LLVM_MCA, INSTALL_HINT)
        try:
            self._cache: dict[str, float] = json.loads(self.cache_file.read_text())
        except (OSError, ValueError):
            self._cache = {}

    @staticmethod
    def _key(text: str) -> str:
        return hashlib.sha256(f"{LLVM_MCA} {MCA_FLAGS} {ITERATIONS}\n{text}".encode()).hexdigest()[:24]

    def steady_cycles(self, texts: Sequence[str]) -> list[float]:
        """llvm-mca's cycles per iteration of each block text, run back to back ITERATIONS times."""
        missing = sorted({t for t in texts if t and self._key(t) not in self._cache})
        if missing:
            self._measure(missing)
        return [self._cache[self._key(t)] if t else 0.0 for t in texts]

    def _measure(self, texts: list[str]) -> None:
        source = "".join(f"# LLVM-MCA-BEGIN b{i}\n{t}\n# LLVM-MCA-END\n2:\n" for i, t in enumerate(texts))
        proc = subprocess.run(
            [self.mca, *MCA_FLAGS, f"-iterations={ITERATIONS}", "-skip-unsupported-instructions=lack-sched",
             "-timeline=false", "-resource-pressure=false", "-instruction-info=false"],
            input=source, capture_output=True, text=True)
        if proc.returncode != 0:
            raise ToolchainError(f"{LLVM_MCA} failed: {proc.stderr.strip()[:500]}")
        totals = [int(c) for c in re.findall(r"^Total Cycles:\s+(\d+)", proc.stdout, re.M)]
        if len(totals) != len(texts):
            raise ToolchainError(f"{LLVM_MCA}: {len(totals)} results for {len(texts)} blocks")
        for text, total in zip(texts, totals):
            self._cache[self._key(text)] = total / ITERATIONS
        self.cache_file.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile("w", dir=self.cache_file.parent, delete=False) as f:
            json.dump(self._cache, f)
        os.replace(f.name, self.cache_file)

    def cycles(self, blocks: Sequence[tuple[Sequence[Instruction], int, int]]) -> list[float]:
        """Total cycles of each (instructions, executions, fall-through executions) block."""
        steady = self.steady_cycles([mca_text(b) for b, _, _ in blocks])
        return [s * count + branch_cycles(b[-1], count, fall) for s, (b, count, fall) in zip(steady, blocks)]


def branch_cycles(last: Instruction, count: int, fall: int) -> float:
    """What the block's closing branch costs beyond llvm-mca's view, over `count` executions of
    which `fall` went on to the next address."""
    taken = count - fall
    if _LOOP_END.match(last.mnemonic):
        # Each loop run: its first LE taken (not yet in the LOB cache), then free, then the exit.
        return min(taken, fall) * (1 + TAKEN_BRANCH_PENALTY) + fall * LOOP_EXIT_CYCLES
    if ends_in_branch(last) or _LOOP_START.match(last.mnemonic):
        return taken * TAKEN_BRANCH_PENALTY
    return 0.0
