"""apollo5-sim: run apollo5 firmware in QEMU's Cortex-M55 and count its cycles with a timing model.

The image is the apollo5 build of the same sources, relinked for QEMU's `mps3-an547` board
(`harness/apollo5_sim.ld`) with a harness that reads a file of inputs over semihosting and writes
the outputs back (`harness/autotune_sim_main.c`): one QEMU boot runs every input
(`device_runners.runners.runner_image("apollo5-sim", ...)` builds it). QEMU executes the real
Helium code; its DWT cycle counter reads 0, so cycles come from a TCG plugin
(`qemu_plugin/tb_profile.c`, built with the host gcc on first use) that counts how often each
translation block runs in each kernel call, and from `m55_timing`, which turns each block into
Cortex-M55 cycles with LLVM's scheduling model.

```python
sim = open_runner("apollo5-sim", runner_image("apollo5-sim", sources_dir, "apollo5").elf_path)
outputs, status = sim.outputs(x)    # (N, output bytes) int8; QEMU without the plugin
results = sim.profile(x)            # per input a SimResult: output, cycles, ops per kernel call
```
"""
from __future__ import annotations

import functools
import hashlib
import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np
from elftools.common.exceptions import ELFError
from elftools.elf.elffile import ELFFile

from autotune.errors import ToolchainError
from device_runners.build import CACHE_ENV, find_tool
from device_runners.m55_timing import BlockTiming, disassemble, unpredicated
from device_runners.runners import OpCycles, SimResult, SimulationError
from device_runners.targets import get_target

TARGET = "apollo5"
QEMU = "qemu-system-arm"
QEMU_HINT = "install with: apt-get install -y --no-install-recommends qemu-system-arm"
QEMU_ARGS = ("-M", "mps3-an547", "-cpu", "cortex-m55", "-nographic", "-monitor", "none",
             "-serial", "none", "-semihosting-config", "enable=on,target=native")
PLUGIN_DIR = Path(__file__).parent / "qemu_plugin"
ITCM_BYTES = 512 * 1024  # AN547's ITCM at 0x0, where apollo5_sim.ld puts the read-only part
SECONDS_PER_RUN = 60.0  # QEMU runs millions of instructions a second: only a hang takes this long


def plugin_path(cache_dir: Path | None = None) -> Path:
    """The TCG plugin, compiled once per source version into the cache directory."""
    sources = [PLUGIN_DIR / "tb_profile.c", PLUGIN_DIR / "qemu_plugin_api.h"]
    key = hashlib.sha256(b"".join(p.read_bytes() for p in sources)).hexdigest()[:16]
    if cache_dir is None:
        cache_dir = Path(os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "autotune")
    path = Path(cache_dir) / f"tb_profile-{key}.so"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        proc = subprocess.run([find_tool("gcc", "install gcc"), "-shared", "-fPIC", "-O2", "-std=c11", "-Wall",
                               "-Wextra", "-Werror", "-fvisibility=hidden", "-o", str(tmp), str(sources[0])],
                              capture_output=True, text=True)
        if proc.returncode != 0:
            raise ToolchainError(f"building the QEMU plugin failed:\n{proc.stderr[:800]}")
        os.replace(tmp, path)
    return path


class Apollo5Sim:
    """One apollo5-sim image, run on as many inputs as wanted."""

    name = "apollo5-sim"
    source = ("measured:apollo5-sim (QEMU mps3-an547 Cortex-M55, cycles from LLVM's Cortex-M55 "
              "scheduling model per executed block, zero-wait TCM, warm caches)")

    def __init__(self, elf_path: Path, entry: str = "model_invoke", cache_dir: Path | None = None):
        self.elf_path = Path(elf_path)
        self.cache_dir = cache_dir
        try:
            with self.elf_path.open("rb") as f:
                symbols = {s.name: (s["st_value"] & ~1, s["st_size"])
                           for s in ELFFile(f).get_section_by_name(".symtab").iter_symbols()
                           if s["st_info"]["type"] in ("STT_FUNC", "STT_OBJECT")}
        except (ELFError, AttributeError) as exc:
            raise SimulationError(f"{elf_path}: not a readable ELF file: {exc}") from None
        missing = {entry, "main", "autotune_vectors"} - set(symbols)
        if missing:
            raise SimulationError(f"{elf_path}: not an apollo5-sim image; missing {', '.join(sorted(missing))}")
        if symbols["autotune_vectors"][0] != 0:
            raise SimulationError(f"{elf_path}: not an apollo5-sim image (vectors at "
                                  f"{symbols['autotune_vectors'][0]:#x}, not 0x0; build it with "
                                  f"runner_image('apollo5-sim', ...))")
        missing = {"autotune_input", "autotune_output"} - set(symbols)  # autotune_sim_main.c's records
        if missing:
            raise SimulationError(f"{elf_path}: not an apollo5-sim image; missing {', '.join(sorted(missing))}")
        self.entry = entry
        self.input_size = symbols["autotune_input"][1]
        self.output_size = symbols["autotune_output"][1]
        self._entry_range = (symbols[entry][0], symbols[entry][0] + symbols[entry][1])
        self._return = self._return_address(entry, symbols["main"][0])
        self._functions = {addr: name for name, (addr, size) in symbols.items() if size and addr < ITCM_BYTES}

    def _return_address(self, entry: str, main: int) -> int:
        """Where `main`'s one call of the entry returns to."""
        tools = get_target(TARGET).toolchain
        listing = subprocess.run([find_tool(tools.objdump, tools.install_hint), "-d", str(self.elf_path)],
                                 capture_output=True, text=True, check=True).stdout
        body = listing[listing.index(f"{main:08x} <main>:"):]
        m = re.search(rf"^\s*[0-9a-f]+:\s+(?:[0-9a-f]{{4}} ?)+\s+bl\s+[0-9a-f]+ <{entry}>\n\s*([0-9a-f]+):",
                      body, re.M)
        if m is None:
            raise SimulationError(f"{self.elf_path}: main does not call {entry}")
        return int(m.group(1), 16)

    def _inputs(self, x: np.ndarray) -> np.ndarray:
        data = np.ascontiguousarray(x, np.int8).reshape(len(x), -1)
        if data.shape[1] != self.input_size:
            raise SimulationError(f"{self.elf_path}: inputs of {data.shape[1]} bytes, the model takes {self.input_size}")
        return data

    def _qemu(self, x: np.ndarray, plugin: list[str]) -> tuple[np.ndarray, np.ndarray, Path]:
        """Boot once on every input; (outputs, statuses, working directory)."""
        data = self._inputs(x)
        work = Path(tempfile.mkdtemp(prefix="apollo5-sim."))
        (work / "input.bin").write_bytes(data.tobytes())
        command = [find_tool(QEMU, QEMU_HINT), *QEMU_ARGS, "-kernel", str(self.elf_path.resolve()), *plugin]
        try:
            proc = subprocess.run([c.replace("{work}", str(work)) for c in command], cwd=work,
                                  capture_output=True, text=True, timeout=SECONDS_PER_RUN * (1 + len(data) / 50))
        except subprocess.TimeoutExpired:
            shutil.rmtree(work, ignore_errors=True)
            raise SimulationError(f"{self.elf_path}: QEMU did not finish (a runaway loop?)") from None
        record = self.output_size + 4
        raw = (work / "output.bin").read_bytes() if (work / "output.bin").exists() else b""
        if proc.returncode != 0 or len(raw) != record * len(data):
            shutil.rmtree(work, ignore_errors=True)
            done = len(raw) // record
            raise SimulationError(f"{self.elf_path}: the firmware faulted on input {done} "
                                  f"(QEMU exit {proc.returncode}) {proc.stderr.strip()[:300]}")
        rows = np.frombuffer(raw, np.uint8).reshape(len(data), record)
        outputs = rows[:, :self.output_size].view(np.int8).copy()
        status = rows[:, self.output_size:].copy().view("<i4")[:, 0]
        return outputs, status, work

    def outputs(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The firmware's outputs (N, output bytes) and entry return values (N,) for inputs `x`."""
        outputs, status, work = self._qemu(x, [])
        shutil.rmtree(work, ignore_errors=True)
        return outputs, status

    def profile(self, x: np.ndarray) -> list[SimResult]:
        """Run every input with the block-counting plugin and time each call of the entry."""
        start, end = self._entry_range
        plugin = ["-plugin", f"{plugin_path(self.cache_dir)},entry={start:#x},entry_end={end:#x},"
                             f"ret={self._return:#x},out={{work}}/blocks.txt"]
        outputs, status, work = self._qemu(x, plugin)
        try:
            invocations, blocks = _read_profile(work / "blocks.txt")
        finally:
            shutil.rmtree(work, ignore_errors=True)
        if len(invocations) != len(outputs):
            raise SimulationError(f"{self.elf_path}: profiled {len(invocations)} calls of {self.entry} "
                                  f"for {len(outputs)} inputs")
        return [self._time(o, s, segments, blocks) for o, s, segments in zip(outputs, status, invocations)]

    def run(self, x: np.ndarray) -> SimResult:
        """One input, profiled."""
        return self.profile(np.asarray(x)[None])[0]

    def _time(self, output: np.ndarray, status: int, segments: list, blocks: dict) -> SimResult:
        """Cycles of one call of the entry. The entry's own code between kernel calls sets up the
        next call's arguments: it counts to the call that follows (the code after the last call
        to the last), so the calls add up to the total."""
        timed = []  # [kernel address or None, cycles, instructions]
        for kernel_address, counts in segments:
            rows = [(unpredicated(self._code, self._addresses, _block(self._code, *blocks[b], self.elf_path)),
                     count, fall) for b, count, fall in counts]
            timed.append([kernel_address, sum(self._timing.cycles(rows)),
                          sum(len(body) * count for body, count, _ in rows)])
        total_cycles, total_instructions = sum(t[1] for t in timed), sum(t[2] for t in timed)
        calls = [t for t in timed if t[0] is not None]
        pending = [0.0, 0]
        for t in timed:
            if t[0] is None:
                pending = [pending[0] + t[1], pending[1] + t[2]]
            else:
                t[1], t[2] = t[1] + pending[0], t[2] + pending[1]
                pending = [0.0, 0]
        if calls:
            calls[-1][1] += pending[0]
            calls[-1][2] += pending[1]
        ops = tuple(OpCycles(self._functions.get(a, f"{a:#x}"), round(c), n) for a, c, n in calls)
        return SimResult(TARGET, output, int(status), total_instructions, round(total_cycles), ops)

    @functools.cached_property
    def _code(self) -> dict:
        return disassemble(self.elf_path)

    @functools.cached_property
    def _addresses(self) -> list[int]:
        return sorted(self._code)

    @functools.cached_property
    def _timing(self) -> BlockTiming:
        return BlockTiming(self.cache_dir)


def _block(code: dict, start: int, count: int, size: int, elf_path: Path) -> list:
    """The `count` instructions from `start` in the listing; they must span `size` bytes."""
    body, address = [], start
    for _ in range(count):
        if address not in code:
            raise SimulationError(f"{elf_path}: QEMU ran an instruction at {address:#x}, not in the listing")
        body.append(code[address])
        address += code[address].size
    if address != start + size:
        raise SimulationError(f"{elf_path}: the block at {start:#x} spans {size} bytes in QEMU, "
                              f"{address - start} in the listing")
    return body


def _read_profile(path: Path) -> tuple[list, dict]:
    """The plugin's output: calls of the entry, each a list of segments (kernel address or None
    for the entry's own code, [(block id, executions, fall-throughs)]), and block id ->
    (address, instructions, bytes)."""
    blocks, invocations = {}, []
    segments: list = []
    for line in path.read_text().splitlines():
        tag, *rest = line.split()
        if tag == "B":
            blocks[int(rest[0])] = (int(rest[1], 16), int(rest[2]), int(rest[3]))
        elif tag == "I":
            segments = []
        elif tag == "G":
            segments.append((None, []))
        elif tag == "C":
            segments.append((int(rest[0], 16), []))
        elif tag == "E":
            invocations.append(segments)
        else:
            segments[-1][1].append((int(tag), int(rest[0]), int(rest[1])))
    return invocations, blocks
