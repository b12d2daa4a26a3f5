"""Build generated C for a target and measure flash, RAM and worst-case stack from the ELF.

Convention for a sources directory (what the code generator emits):
  * every `*.c` file in the directory (not subdirectories) is compiled; `*.h` files may sit beside;
  * `model.h` defines `MODEL_INPUT_SIZE` and `MODEL_OUTPUT_SIZE` (int8 elements = bytes) and
    declares the entry point `int <entry>(const int8_t *input, int8_t *output)`, 0 on success;
    `entry` defaults to `model_invoke` and is passed to the harness as `-DAUTOTUNE_ENTRY=<entry>`;
  * C99, no malloc, no recursion, no variable-length arrays or alloca, no function pointers
    (the stack bound must be computable); `memcpy`, `memmove`, `memset` are available;
  * file names must not start with `autotune_` (reserved for the harness);
  * a subdirectory named after a kernel library (`cortex-m4/`, ...) holds per-core variants: for a
    target that lists the library, `<library>/x.c` is compiled instead of `x.c` (same function
    names and parameter structs; see `select_sources`). Headers in it are private to its files.

Firmware (`build`): the sources plus the target's harness files (`Target.harness`: vector
table and reset handler, `autotune_io.c` with the global `autotune_input`/`autotune_output`
(or, for a model whose input and output live in its arena, the unloaded section `.autotune_io`:
where they are)/`autotune_status` and `autotune_measure`, which runs the entry once and spins in `halt`; a
`main` that calls it, or a board's request loop; on the rp2040 also boot2), linked with the
target's linker script (plus a placement script, see `PLACEMENTS`), `-nostdlib -lgcc`, by the
target's own toolchain (`device_runners.targets`). A target with a UF2 family also gets
`firmware.uf2` (device_runners/uf2.py) beside the ELF. A `Layout` replaces the harness and
linker script, e.g. for a simulator's memory map (apollo5-sim links the apollo5 objects for
QEMU's mps3-an547 with a main that runs a file of inputs).
  flash = every allocated section with contents (.boot2, .vectors, .text, .rodata, .ARM.exidx,
          the .data and SRAM-placed initialisers); RAM = .data + .bss + SRAM-placed sections +
          worst-case stack.
  stack = the deepest path in the call graph from `Reset_Handler`, summing the frames GCC reports
          with `-fcallgraph-info=su`; library functions (libgcc) have no call-graph file, so their
          push/sub-sp instructions are added up from the disassembly. Exceptions are not counted
          (the harness enables no interrupts). Recursion, dynamic frames or indirect calls raise
          StackError.
Results are cached under `cache_dir` (default $AUTOTUNE_CACHE_DIR, else ~/.cache/autotune/builds),
keyed by the contents of
all sources and harness files, target, flags, entry, compiler version and this file.

Host (`build_host`): the sources plus `harness/host_main.c` (raw int8 records on stdin ->
outputs on stdout) compiled with the system gcc, for bit-exactness tests.
"""
from __future__ import annotations

import functools
import hashlib
import json
import os
import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from elftools.elf.constants import SH_FLAGS
from elftools.elf.elffile import ELFFile

from autotune.errors import AutotuneError, ToolchainError
from device_runners import uf2
from device_runners.targets import Target, get_target

HARNESS_DIR = Path(__file__).parent / "harness"
CACHE_ENV = "AUTOTUNE_CACHE_DIR"
HEADERS = ("autotune_io.h", "autotune_protocol.h", "rp2040_cycles.h")  # the harness's own
# Where code and weights live. "flash": everything constant in flash (executed in place on the
# rp2040, through its XIP cache); the others copy part of it to SRAM at start-up, for targets
# that offer them (`Target.placements`): harness/placement_<name>/autotune_placement.ld, put
# first on the linker's -L path, replaces the empty default that autotune_sections.ld includes.
PLACEMENTS = ("flash", "sram_weights", "sram_kernels", "sram_all")

WARNINGS = ("-std=c99", "-Wall", "-Wextra", "-Werror")
# The harness only ever passes MODEL_INPUT and MODEL_OUTPUT: model_invoke needs no copy code.
FIRMWARE_FLAGS = (
    "-Os", *WARNINGS, "-ffunction-sections", "-fdata-sections",
    "-fstack-usage", "-fcallgraph-info=su", "-DMODEL_ARENA_IO_ONLY",
)
# autotune_measure is what simulators run; a board's main does not call it.
LINK_FLAGS = ("-nostdlib", "-Wl,--gc-sections", "-Wl,--undefined=autotune_measure")
HOST_FLAGS = ("-O2", *WARNINGS)
SANITIZE_FLAGS = ("-fsanitize=address,undefined", "-fno-sanitize-recover=all", "-g")

ROOT = "Reset_Handler"


class StackError(AutotuneError):
    """The worst-case stack cannot be bounded: recursion, a dynamic frame or an indirect call."""

    exit_code = 3


class DoesNotFitError(ToolchainError):
    """The linker ran out of flash or RAM: the candidate does not fit the target."""

    def __init__(self, message: str, region: str, overflow_bytes: int):
        super().__init__(message)
        self.region = region  # the linker script's memory region: FLASH or RAM
        self.overflow_bytes = overflow_bytes


@dataclass(frozen=True)
class Layout:
    """How an image is put together from the compiled sources: harness files and linker script
    (in HARNESS_DIR); `name` names the copied ELF."""
    name: str
    linker_script: str
    harness: tuple[str, ...]


def target_layout(target: Target) -> Layout:
    """The image as it is flashed on the target."""
    return Layout(target.name, target.linker_script, target.harness)


@dataclass(frozen=True)
class BuildResult:
    target: str
    elf_path: Path
    flash_bytes: int
    ram_bytes: int  # static RAM + stack_bytes
    stack_bytes: int
    sections: dict[str, int]  # allocated section -> bytes
    symbols: dict[str, int]  # symbols in flash -> bytes, largest first
    ram_symbols: dict[str, int]  # symbols in RAM -> bytes, largest first
    stack_path: tuple[str, ...]  # the deepest call chain, from Reset_Handler
    seconds: float  # compile, link and analysis time of the build that made this result
    cached: bool = False
    uf2_path: Path | None = None  # the image to flash, for targets with a UF2 family
    placement: str = "flash"

    @property
    def fits(self) -> bool:
        """Flash and RAM, stack included, within the target's memories."""
        t = get_target(self.target)
        return self.flash_bytes <= t.flash_bytes and self.ram_bytes <= t.sram_bytes


def build(
    sources_dir: Path,
    target: str,
    out_dir: Path | None = None,
    entry: str = "model_invoke",
    cache_dir: Path | None = None,
    placement: str = "flash",
    layout: Layout | None = None,
) -> BuildResult:
    """Compile `sources_dir` for `target` and link it with the harness of `layout` (default: the
    target's own); measure the ELF.

    The build lives in the cache entry; `out_dir`, if given, receives a copy of the ELF
    (`<layout name>.elf`, and `.uf2` where the target has one) and the result's paths point
    there. `placement` is one of `PLACEMENTS` the target offers; `layout` defaults to the
    target's own (`target_layout`).
    """
    start = time.perf_counter()
    sources_dir = Path(sources_dir)
    tgt = get_target(target)
    check_placement(tgt, placement)
    layout = layout or target_layout(tgt)
    gcc = find_tool(tgt.toolchain.compiler, tgt.toolchain.install_hint)
    sources = select_sources(sources_dir, tgt, entry)
    flags = [*tgt.cpu_flags, *FIRMWARE_FLAGS, f"-DAUTOTUNE_ENTRY={entry}"]
    headers = [h for d in (sources_dir, *(sources_dir / lib for lib in tgt.kernel_libraries))
               for h in sorted(d.glob("*.h"))]
    key_files = [*sources, *headers, *(HARNESS_DIR / f for f in harness_files(tgt, placement, layout)),
                 Path(__file__), Path(uf2.__file__)]
    key = _cache_key(layout.name, [*flags, *LINK_FLAGS, placement], _version(gcc), key_files)

    if cache_dir is None:
        cache_dir = os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "autotune" / "builds"
    cache_root = Path(cache_dir)
    entry_dir = cache_root / key
    if (entry_dir / "result.json").exists():
        result = _load(entry_dir)
    else:
        cache_root.mkdir(parents=True, exist_ok=True)
        work = Path(tempfile.mkdtemp(prefix=f"{key[:12]}.", dir=cache_root))
        try:
            elf = work / "firmware.elf"
            _run(firmware_command(tgt.name, sources_dir, sources, HARNESS_DIR, elf, entry, gcc, placement,
                                  layout), f"{tgt.toolchain.compiler} ({layout.name})")
            result = measure_elf(tgt.name, elf, sorted(work.glob("*.ci")))
            uf2_path = _write_uf2(tgt, elf) if tgt.uf2_family is not None and layout == target_layout(tgt) else None
            result = replace(result, seconds=time.perf_counter() - start, uf2_path=uf2_path, placement=placement)
            _save(work, result)
            try:
                work.rename(entry_dir)  # atomic; a concurrent build of the same key may win
            except OSError:
                if not (entry_dir / "result.json").exists():
                    raise
        finally:
            shutil.rmtree(work, ignore_errors=True)
        result = replace(_load(entry_dir), cached=False)
    if out_dir is not None:
        out_dir = Path(out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        elf = shutil.copyfile(result.elf_path, out_dir / f"{layout.name}.elf")
        copy = shutil.copyfile(result.uf2_path, out_dir / f"{layout.name}.uf2") if result.uf2_path else None
        result = replace(result, elf_path=Path(elf), uf2_path=copy and Path(copy))
    return result


def check_placement(target: Target, placement: str) -> None:
    if placement != "flash" and placement not in target.placements:
        offered = ", ".join(("flash", *target.placements))
        raise ToolchainError(f"placement {placement!r} is not offered by {target.name}; it offers {offered}")


def placement_dir(placement: str) -> str | None:
    """The harness subdirectory whose autotune_placement.ld a placement links with; None for "flash"."""
    return None if placement == "flash" else f"placement_{placement}"


def harness_files(target: Target, placement: str = "flash", layout: Layout | None = None) -> list[str]:
    """Every harness file (relative to the harness directory) a firmware build of `target`
    reads, in `layout` (default the target's own): sources, headers, linker scripts."""
    where = placement_dir(placement)
    layout = layout or target_layout(target)
    return [*layout.harness, *HEADERS, layout.linker_script, "autotune_sections.ld",
            f"{where}/autotune_placement.ld" if where else "autotune_placement.ld"]


def firmware_command(target: str, include_dir: Path, sources: Sequence[Path], harness_dir: Path,
                     elf: Path, entry: str = "model_invoke", compiler: str | None = None,
                     placement: str = "flash", layout: Layout | None = None) -> list[str]:
    """The one compile-and-link command for a firmware image; bundles' Makefiles use it too, so
    their ELFs measure the same as the search's builds. `sources` as `select_sources` gives them;
    `compiler` defaults to the name of the target's compiler (found on PATH)."""
    tgt = get_target(target)
    harness_dir = Path(harness_dir)
    where = placement_dir(placement)
    layout = layout or target_layout(tgt)
    return [compiler or tgt.toolchain.compiler, *tgt.cpu_flags, *FIRMWARE_FLAGS, f"-DAUTOTUNE_ENTRY={entry}",
            "-I", str(include_dir), *map(str, sources), *(str(harness_dir / n) for n in layout.harness),
            *(["-L", str(harness_dir / where)] if where else []), "-L", str(harness_dir),
            "-T", str(harness_dir / layout.linker_script), *LINK_FLAGS, "-o", str(elf), "-lgcc"]


def _write_uf2(target: Target, elf: Path) -> Path:
    """`firmware.uf2` beside `elf`: its flash image (objcopy -O binary) in UF2 blocks, checked."""
    binary, out = elf.with_suffix(".bin"), elf.with_suffix(".uf2")
    tools = target.toolchain
    _run([find_tool(tools.objcopy, tools.install_hint), "-O", "binary", str(elf), str(binary)],
         f"{tools.objcopy} ({target.name})")
    out.write_bytes(uf2.pack(binary.read_bytes(), target.flash_origin, target.uf2_family))
    binary.unlink()
    uf2.check(out.read_bytes(), str(out))
    return out


def select_sources(sources_dir: Path, target: Target, entry: str = "model_invoke") -> list[Path]:
    """Every `.c` file of `sources_dir`, each replaced by its variant in the first of the target's
    kernel libraries (`sources_dir/<library>/`) that has a file of that name."""
    return _with_variants(Path(sources_dir), _sources(sources_dir, entry), target.kernel_libraries)


def _with_variants(sources_dir: Path, sources: Sequence[Path], libraries: Sequence[str]) -> list[Path]:
    """Each source replaced by its variant in the first of `libraries` that has one."""
    selected = []
    for source in sources:
        variants = (sources_dir / lib / source.name for lib in libraries)
        selected.append(next((v for v in variants if v.is_file()), source))
    return selected


def build_host(
    sources_dir: Path,
    out: Path,
    extra_flags: Sequence[str] = (),
    entry: str = "model_invoke",
    sanitize: bool = False,
    libraries: Sequence[str] = (),
) -> Path:
    """Compile `sources_dir` with `harness/host_main.c` into the executable `out`.

    The program reads MODEL_INPUT_SIZE-byte records from stdin and writes MODEL_OUTPUT_SIZE
    bytes per record to stdout. `sanitize` adds AddressSanitizer and UBSan (any finding aborts).
    `libraries`: kernel libraries whose variants replace the generic files, as in the firmware
    of a target that lists them (their portable C, where a variant has core-specific code).
    """
    gcc = find_tool("gcc", "install gcc")
    sources_dir, out = Path(sources_dir), Path(out)
    sources = _with_variants(sources_dir, _sources(sources_dir, entry), libraries)
    out.parent.mkdir(parents=True, exist_ok=True)
    _run(
        [gcc, *HOST_FLAGS, *(SANITIZE_FLAGS if sanitize else ()), *extra_flags,
         f"-DAUTOTUNE_ENTRY={entry}", "-I", str(sources_dir),
         *map(str, sources), str(HARNESS_DIR / "host_main.c"), "-o", str(out)],
        "gcc (host)",
    )
    return out


def _sources(sources_dir: Path, entry: str) -> list[Path]:
    if not re.fullmatch(r"[A-Za-z_]\w*", entry):
        raise ValueError(f"entry {entry!r} is not a C identifier")
    sources = sorted(Path(sources_dir).glob("*.c"))
    if not sources:
        raise ToolchainError(f"no .c files in {sources_dir}")
    clashes = [s.name for s in sources if s.name.startswith("autotune_")]
    if clashes:
        raise ToolchainError(f"{', '.join(clashes)}: names starting with autotune_ are reserved")
    return sources


def find_tool(name: str, install_hint: str) -> str:
    """The path of a compiler or binutil; a ToolchainError saying what to install otherwise."""
    path = shutil.which(name)
    if path is None:
        raise ToolchainError(f"{name} not found on PATH; {install_hint}")
    return path


@functools.cache
def _version(compiler: str) -> str:
    return subprocess.run([compiler, "--version"], capture_output=True, text=True,
                          check=True).stdout.splitlines()[0]


def _cache_key(target: str, flags: list[str], version: str, files: list[Path]) -> str:
    h = hashlib.sha256(json.dumps([target, flags, version]).encode())
    for f in files:
        h.update(f.name.encode() + b"\0" + hashlib.sha256(f.read_bytes()).digest())
    return h.hexdigest()[:32]


def _run(cmd: list[str], tool: str) -> None:
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode == 0:
        return
    lines = proc.stderr.splitlines()
    errors = [ln for ln in lines if re.search(r"error|undefined reference|overflowed", ln)]
    files = sorted({m.group(1) for ln in errors
                    if (m := re.match(r"(\S+?\.[ch]):\d+:", ln))})
    where = f"compiling {', '.join(files)}" if files else "linking"
    detail = "\n".join((errors or lines)[:6])
    message = f"{tool} failed {where}:\n{detail}"
    if overflow := re.search(r"region `(\w+)' overflowed by (\d+) bytes", proc.stderr):
        raise DoesNotFitError(message, overflow.group(1), int(overflow.group(2)))
    raise ToolchainError(message)


def _save(build_dir: Path, result: BuildResult) -> None:
    data = asdict(result)
    data["elf_path"] = result.elf_path.name  # relative: the entry directory is renamed
    data["uf2_path"] = result.uf2_path and result.uf2_path.name
    (build_dir / "result.json").write_text(json.dumps(data, indent=1))


def _load(build_dir: Path) -> BuildResult:
    data = json.loads((build_dir / "result.json").read_text())
    data.update(elf_path=build_dir / data["elf_path"], stack_path=tuple(data["stack_path"]),
                uf2_path=data["uf2_path"] and build_dir / data["uf2_path"], cached=True)
    return BuildResult(**data)


# --- measurement -------------------------------------------------------------------------------

def measure_elf(target: str, elf_path: Path, ci_files: list[Path]) -> BuildResult:
    """Flash, RAM and worst-case stack of a linked firmware; `ci_files` are GCC's call-graph files."""
    with elf_path.open("rb") as f:
        elf = ELFFile(f)
        alloc = [s for s in elf.iter_sections()
                 if s["sh_flags"] & SH_FLAGS.SHF_ALLOC and s["sh_size"] > 0]
        tgt = get_target(target)
        ram = range(tgt.ram_origin, tgt.ram_origin + tgt.sram_bytes)
        in_flash = {s.name for s in alloc if s["sh_type"] != "SHT_NOBITS"}  # contents are loaded from flash
        in_ram = {s.name for s in alloc if s["sh_addr"] in ram}  # .data, .bss, code or weights placed in SRAM
        by_index = {i: s.name for i, s in enumerate(elf.iter_sections())}
        # One name per address: libgcc exports aliases (__aeabi_lmul = __muldi3).
        named: dict[tuple[str, int], tuple[str, int]] = {}
        functions: dict[str, int] = {}
        for sym in elf.get_section_by_name(".symtab").iter_symbols():
            kind = sym["st_info"]["type"]
            if kind not in ("STT_FUNC", "STT_OBJECT") or not isinstance(sym["st_shndx"], int):
                continue
            addr = sym["st_value"] & ~1  # Thumb bit
            if kind == "STT_FUNC":
                functions[sym.name] = addr
            if sym["st_size"]:
                place = (by_index[sym["st_shndx"]], addr)
                if place not in named or sym.name < named[place][0]:
                    named[place] = (sym.name, sym["st_size"])
        sections = {s.name: s["sh_size"] for s in alloc}

    def table(which: set[str]) -> dict[str, int]:
        sizes: dict[str, int] = {}
        for (section, _), (name, size) in named.items():
            if section in which:
                sizes[name] = sizes.get(name, 0) + size  # same-named statics in several files
        return dict(sorted(sizes.items(), key=lambda kv: (-kv[1], kv[0])))

    stack, path = _worst_stack(ci_files, _LibraryFrames(elf_path, functions, tgt))
    return BuildResult(
        target=target,
        elf_path=elf_path,
        flash_bytes=sum(sections[n] for n in in_flash),
        ram_bytes=sum(sections[n] for n in in_ram) + stack,
        stack_bytes=stack,
        sections=sections,
        symbols=table(in_flash),
        ram_symbols=table(in_ram),
        stack_path=tuple(path),
        seconds=0.0,
    )


_NODE = re.compile(r'^node: \{ title: "([^"]*)" label: "([^"]*)"', re.M)
_EDGE = re.compile(r'^edge: \{ sourcename: "([^"]*)" targetname: "([^"]*)"', re.M)
_FRAME = re.compile(r"\\n(\d+) bytes \(([^)]*)\)$")


def function_stack(result: BuildResult, function: str) -> tuple[int, tuple[str, ...]]:
    """Worst-case stack of `function` and everything it calls, and the deepest chain, from the
    call graph of a build (a result whose ELF is still in its cache entry: built without out_dir)."""
    ci_files = sorted(Path(result.elf_path).parent.glob("*.ci"))
    if not ci_files:
        raise StackError(f"no call-graph files beside {result.elf_path}")
    with Path(result.elf_path).open("rb") as f:
        functions = {sym.name: sym["st_value"] & ~1 for sym in ELFFile(f).get_section_by_name(".symtab").iter_symbols()
                     if sym["st_info"]["type"] == "STT_FUNC"}
    stack, path = _worst_stack(ci_files, _LibraryFrames(Path(result.elf_path), functions, get_target(result.target)),
                               function)
    return stack, tuple(path)


def _worst_stack(ci_files: list[Path], library: _LibraryFrames, root: str = ROOT) -> tuple[int, list[str]]:
    """Deepest stack from `root` over the GCC call graph (.ci files); frames in bytes."""
    frames: dict[str, tuple[int, str]] = {}  # title -> (bytes, qualifier); defined functions
    calls: dict[str, list[str]] = {}
    for ci in ci_files:
        text = ci.read_text()
        for title, label in _NODE.findall(text):
            if m := _FRAME.search(label):  # a weak default and its override: the larger frame
                frames[title] = max(frames.get(title, (0, "")), (int(m.group(1)), m.group(2)))
        for caller, callee in _EDGE.findall(text):
            calls.setdefault(caller, []).append(callee)

    done: dict[str, tuple[int, list[str]]] = {}

    def deepest(fn: str, chain: list[str]) -> tuple[int, list[str]]:
        if fn in chain:
            cycle = " -> ".join(_short(f) for f in chain[chain.index(fn):] + [fn])
            raise StackError(f"recursion, stack is unbounded: {cycle}")
        if fn in done:
            return done[fn]
        if fn == "__indirect_call":
            raise StackError(f"{_short(chain[-1])} makes an indirect call; stack is unbounded")
        if fn in frames:
            size, qualifier = frames[fn]
            if qualifier == "dynamic":  # "dynamic,bounded" is a reliable maximum
                raise StackError(f"{_short(fn)} has a dynamic stack frame (VLA or alloca)")
            callees = calls.get(fn, [])
        else:
            size, callees = library.frame(fn)
        below = max((deepest(c, chain + [fn]) for c in set(callees)), default=(0, []))
        done[fn] = (size + below[0], [_short(fn)] + below[1])
        return done[fn]

    return deepest(root, [])


def _short(title: str) -> str:
    """Call-graph titles of static functions are 'file.c:name'."""
    return title.rsplit(":", 1)[-1]


class _LibraryFrames:
    """Stack frames of functions without call-graph info (libgcc), from their disassembly.

    Conservative: every push and `sub sp` in the function is added up, as if all ran.
    """

    _LABEL = re.compile(r"^([0-9a-f]+) <(.+)>:$")
    _INSN = re.compile(r"^\s*[0-9a-f]+:\t(\S+)\s*([^@;]*)")
    _TARGET = re.compile(r"^([0-9a-f]+) <([^>+]+)>$")  # a function start, not <f+0x12>

    def __init__(self, elf_path: Path, functions: dict[str, int], target: Target):
        self.elf_path = elf_path
        self.functions = functions
        self.toolchain = target.toolchain

    @functools.cached_property
    def _code(self) -> dict[int, list[tuple[str, str]]]:
        """Function start address -> (mnemonic, operands) up to the next label."""
        objdump = self.toolchain.objdump
        proc = subprocess.run([find_tool(objdump, self.toolchain.install_hint), "-d", "--no-show-raw-insn",
                               str(self.elf_path)], capture_output=True, text=True)
        if proc.returncode != 0:
            raise ToolchainError(f"{objdump} failed on {self.elf_path}:\n{proc.stderr[:500]}")
        code: dict[int, list[tuple[str, str]]] = {}
        current: list[tuple[str, str]] = []
        for line in proc.stdout.splitlines():
            if m := self._LABEL.match(line):
                current = code.setdefault(int(m.group(1), 16), [])
            elif m := self._INSN.match(line):
                current.append((m.group(1), m.group(2).strip()))
        return code

    def frame(self, name: str) -> tuple[int, list[str]]:
        if name not in self.functions:
            raise StackError(f"no stack information for {name}: not compiled here, not in the ELF")
        start = self.functions[name]
        size, callees = 0, []
        for mnemonic, ops in self._code.get(start, []):
            op = mnemonic.split(".")[0]
            if op in ("push", "vpush") or op in ("stmdb", "vstmdb") and ops.startswith("sp!"):
                size += _register_bytes(ops)
            elif op in ("sub", "subw") and ops.startswith("sp,"):
                imm = re.search(r"#(\d+)$", ops)
                if imm is None:
                    raise StackError(f"{name} moves sp by a register amount: {mnemonic} {ops}")
                size += int(imm.group(1))
            elif (ops.startswith("sp,") and op not in ("add", "addw")) or op == "blx" or (
                    op == "bx" and ops != "lr"):
                raise StackError(f"cannot bound the stack of {name}: {mnemonic} {ops}")
            elif op.startswith("b") and (m := self._TARGET.match(ops)):
                if int(m.group(1), 16) != start:  # a call or tail call to another function
                    callees.append(m.group(2))
        return size, callees


def _register_bytes(operands: str) -> int:
    """Bytes pushed for a register list such as '{r4, r5, lr}', '{r4-r7}' or '{d8-d15}'."""
    total = 0
    for reg in operands[operands.index("{") + 1:operands.index("}")].split(","):
        reg = reg.strip()
        width = 8 if reg.startswith("d") else 4
        if "-" in reg:
            lo, hi = (int(r[1:]) for r in reg.split("-"))
            total += width * (hi - lo + 1)
        else:
            total += width
    return total
