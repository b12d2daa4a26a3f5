"""device_runners.build with the real compilers: measured flash/RAM/stack, errors, cache, host build.

No skips when a compiler is missing: the build raises ToolchainError saying what to install.
"""
from __future__ import annotations

import random
import re
import subprocess
from pathlib import Path

import pytest
from elftools.elf.elffile import ELFFile

from autotune.errors import ConfigError, ToolchainError
from device_runners.build import (
    HARNESS_DIR,
    DoesNotFitError,
    StackError,
    build,
    build_host,
)
from device_runners.targets import TARGETS, get_target

TARGET_NAMES = sorted(TARGETS)
N_IN, N_OUT = 64, 4
CHAIN = ["Reset_Handler", "main", "model_invoke", "chain_a", "chain_b", "chain_c"]


def weight(o: int, i: int) -> int:
    return (o * 7 + i * 3) % 11 - 5


MODEL_H = f"""\
#ifndef MODEL_H
#define MODEL_H
#include <stdint.h>
#define MODEL_INPUT_SIZE {N_IN}
#define MODEL_OUTPUT_SIZE {N_OUT}
int ENTRY(const int8_t *input, int8_t *output);
#endif
"""

WEIGHTS = ",\n".join(
    "{" + ", ".join(str(weight(o, i)) for i in range(N_IN)) + "}" for o in range(N_OUT)
)

# A dense int8 layer with a static arena and an int64 requantisation (a libgcc call on M0+);
# EXTRA defines extra(), which the variants use to add const data or a static buffer.
MODEL_C = """\
#include "model.h"

int chain_a(int x);
static const int8_t weights[MODEL_OUTPUT_SIZE][MODEL_INPUT_SIZE] = {
WEIGHTS
};
static int32_t arena[MODEL_OUTPUT_SIZE];

EXTRA

__attribute__((noinline, noclone)) int32_t requantize(int32_t acc)
{
    return (int32_t)(((int64_t)acc * 1518500250 + (1LL << 30)) >> 31) >> 6;
}

int ENTRY(const int8_t *input, int8_t *output)
{
    for (int o = 0; o < MODEL_OUTPUT_SIZE; o++) {
        int32_t acc = 0;
        for (int i = 0; i < MODEL_INPUT_SIZE; i++) {
            acc += (int32_t)input[i] * weights[o][i];
        }
        arena[o] = acc;
    }
    for (int o = 0; o < MODEL_OUTPUT_SIZE; o++) {
        int32_t v = requantize(arena[o]);
        output[o] = (int8_t)(v > 127 ? 127 : v < -128 ? -128 : v);
    }
    output[0] = (int8_t)(output[0] + extra(input[0]));
    return CALL_CHAIN;
}
""".replace("WEIGHTS", WEIGHTS)

# The deepest call chain, in its own translation unit; frames grow so it dominates.
CHAIN_C = """\
#include <stdint.h>
#define NOINLINE __attribute__((noinline, noclone))
int chain_a(int x);
int chain_b(int x);
int chain_c(int x);
NOINLINE int chain_c(int x) { volatile int8_t b[96]; b[x & 63] = (int8_t)x; return b[3]; }
NOINLINE int chain_b(int x) { volatile int8_t b[64]; b[x & 31] = (int8_t)x; return chain_c(b[7]); }
NOINLINE int chain_a(int x) { volatile int8_t b[32]; b[x & 15] = (int8_t)x; return chain_b(b[1]); }
"""

NO_EXTRA = "static int extra(int i) { (void)i; return 0; }"
CONST_1000 = """\
static const int8_t table[1000] = {1, 2, 3};
static int extra(int i) { return table[(uint8_t)i * 3]; }"""
BUFFER_1000 = """\
static int8_t buffer[1000];
static int extra(int i) { buffer[(uint8_t)i * 3] = (int8_t)i; return buffer[5]; }"""


def write_model(d: Path, extra: str = NO_EXTRA, entry: str = "model_invoke",
                chain: bool = True) -> Path:
    d.mkdir(parents=True, exist_ok=True)
    (d / "model.h").write_text(MODEL_H.replace("ENTRY", entry))
    body = MODEL_C.replace("EXTRA", extra).replace("ENTRY", entry)
    (d / "model.c").write_text(
        body.replace("CALL_CHAIN", "chain_a(input[1]) & 0" if chain else "0"))
    if chain:
        (d / "chain.c").write_text(CHAIN_C)
    return d


def reference(x: list[int]) -> list[int]:
    out = []
    for o in range(N_OUT):
        acc = sum(x[i] * weight(o, i) for i in range(N_IN))
        v = ((acc * 1518500250 + (1 << 30)) >> 31) >> 6
        out.append(max(-128, min(127, v)))
    return out


def su_frames(build_dir: Path) -> dict[str, int]:
    """Function name -> frame bytes from GCC's .su files."""
    frames = {}
    for su in build_dir.glob("*.su"):
        for line in su.read_text().splitlines():
            where, size, _ = line.split("\t")
            frames[where.rsplit(":", 1)[1]] = int(size)
    return frames


def size_tool(elf: Path) -> tuple[int, int, dict[str, int]]:
    """(flash, static RAM, section sizes) from arm-none-eabi-size, Berkeley and -A formats."""
    berkeley = subprocess.run(["arm-none-eabi-size", str(elf)], capture_output=True,
                              text=True, check=True).stdout.splitlines()[1].split()
    text, data, bss = (int(v) for v in berkeley[:3])
    sysv = subprocess.run(["arm-none-eabi-size", "-A", str(elf)], capture_output=True,
                          text=True, check=True).stdout
    sections = {m.group(1): int(m.group(2))
                for m in re.finditer(r"^(\S+)\s+(\d+)\s+\d+$", sysv, re.M)}
    return text + data, data + bss, sections


@pytest.fixture(scope="module")
def cache(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("build-cache")


@pytest.fixture(scope="module")
def base_model(tmp_path_factory) -> Path:
    return write_model(tmp_path_factory.mktemp("base") / "model")


@pytest.mark.parametrize("target", TARGET_NAMES)
def test_linker_script_matches_the_declaration(target):
    t = get_target(target)
    script = (HARNESS_DIR / t.linker_script).read_text()
    regions = {name: (int(origin, 16), int(length) * 1024) for name, origin, length in
               re.findall(r"^\s*(FLASH|RAM)\b.*ORIGIN = (0x[0-9A-Fa-f]+), LENGTH = (\d+)K", script, re.M)}
    assert regions == {"FLASH": (t.flash_origin, t.flash_bytes), "RAM": (t.ram_origin, t.sram_bytes)}


@pytest.mark.parametrize("target", TARGET_NAMES)
def test_image_lies_where_the_declaration_says(target, base_model, cache):
    """The vector table first in the application's flash (after the rp2040's 256-byte boot2,
    where the bootrom loads it from), the stack at the top of its RAM."""
    t = get_target(target)
    result = build(base_model, target, cache_dir=cache)
    with result.elf_path.open("rb") as f:
        elf = ELFFile(f)
        vectors = elf.get_section_by_name(".vectors")
        boot2 = elf.get_section_by_name(".boot2")
        assert (boot2 is not None) == (target == "rp2040")
        assert vectors["sh_addr"] == t.flash_origin + (256 if boot2 else 0)
        if boot2:
            assert (boot2["sh_addr"], boot2["sh_size"]) == (t.flash_origin, 256)
        initial_sp = int.from_bytes(vectors.data()[:4], "little")
    assert initial_sp == t.ram_origin + t.sram_bytes
    assert build(base_model, target, cache_dir=cache).cached


def test_unknown_target_lists_valid_names():
    assert get_target("rp2040").clock_hz == 133_000_000
    with pytest.raises(ConfigError, match="apollo5, nano33ble, rp2040"):
        get_target("esp32")


def test_the_nano33ble_application_sits_above_the_arduino_bootloader():
    t = get_target("nano33ble")
    assert (t.flash_origin, t.flash_origin + t.flash_bytes) == (64 * 1024, 1024 * 1024)  # 1 MB part
    assert "bootloader" in (HARNESS_DIR / t.linker_script).read_text()


@pytest.mark.parametrize("target", TARGET_NAMES)
def test_flash_and_ram_match_size_tool(target, base_model, cache):
    result = build(base_model, target, cache_dir=cache)
    flash, static_ram, sections = size_tool(result.elf_path)
    assert result.flash_bytes == flash
    assert result.ram_bytes == static_ram + result.stack_bytes
    assert result.sections == {name: sections[name] for name in result.sections}
    assert result.sections[".rodata"] >= N_IN * N_OUT
    assert result.symbols["weights"] == N_IN * N_OUT
    assert result.ram_symbols["arena"] == 4 * N_OUT
    assert result.ram_symbols["autotune_input"] == N_IN
    assert result.fits


@pytest.mark.parametrize("target", TARGET_NAMES)
def test_stack_is_the_deepest_chain(target, base_model, cache):
    """From the reset handler through the main (the rp2040 board's request loop, or the call of
    autotune_measure elsewhere) into the model."""
    result = build(base_model, target, cache_dir=cache)
    main = ["main", "at_protocol_serve"] if target == "rp2040" else ["main", "autotune_measure"]
    chain = [CHAIN[0], *main, *CHAIN[2:]]
    assert list(result.stack_path) == chain
    frames = su_frames(result.elf_path.parent)
    assert result.stack_bytes == sum(frames[f] for f in chain)


def test_library_frames_are_counted(tmp_path):
    """Without the chain the deepest path is the requantisation: libgcc's 64-bit multiply on
    the M0+ (its frame read from the disassembly), an inline SMULL on the M4 and the M55."""
    model = write_model(tmp_path / "model", chain=False)
    m0 = build(model, "rp2040", cache_dir=tmp_path / "cache")
    compiled = ["Reset_Handler", "main", "at_protocol_serve", "model_invoke", "requantize"]  # the board loop
    assert list(m0.stack_path) == compiled + ["__aeabi_lmul"]
    assert m0.stack_bytes > sum(su_frames(m0.elf_path.parent)[f] for f in compiled)
    for target in ("nano33ble", "apollo5"):
        inline = build(model, target, cache_dir=tmp_path / "cache")
        compiled = ["Reset_Handler", "main", "autotune_measure", "model_invoke", "requantize"]
        assert list(inline.stack_path) == compiled
        assert inline.stack_bytes == sum(su_frames(inline.elf_path.parent)[f] for f in compiled)


@pytest.mark.parametrize("target", TARGET_NAMES)
def test_const_data_adds_flash_and_static_buffer_adds_ram(target, base_model, cache, tmp_path):
    base = build(base_model, target, cache_dir=cache)
    const = build(write_model(tmp_path / "const", CONST_1000), target, cache_dir=cache)
    buffer = build(write_model(tmp_path / "buffer", BUFFER_1000), target, cache_dir=cache)

    def static_ram(r):
        return r.ram_bytes - r.stack_bytes

    assert 1000 <= const.flash_bytes - base.flash_bytes <= 1000 + 48
    assert static_ram(const) == static_ram(base)
    assert const.symbols["table"] == 1000
    assert 1000 <= static_ram(buffer) - static_ram(base) <= 1000 + 8
    assert 0 <= buffer.flash_bytes - base.flash_bytes <= 48
    assert buffer.ram_symbols["buffer"] == 1000


def test_compile_error_names_the_file(tmp_path):
    model = write_model(tmp_path / "model")
    (model / "broken.c").write_text("int broken(void) { return }\n")
    with pytest.raises(ToolchainError, match=r"arm-none-eabi-gcc.*compiling .*broken\.c") as e:
        build(model, "rp2040", cache_dir=tmp_path / "cache")
    assert "broken.c:1:" in str(e.value) and "error" in str(e.value)


def test_missing_entry_is_a_link_error(base_model, tmp_path):
    with pytest.raises(ToolchainError, match=r"linking(.|\n)*undefined reference to .other_invoke"):
        build(base_model, "rp2040", entry="other_invoke", cache_dir=tmp_path / "cache")


def test_static_ram_beyond_the_target_does_not_fit(tmp_path):
    model = write_model(tmp_path / "model", BUFFER_1000.replace("1000", "300000"))
    with pytest.raises(DoesNotFitError, match="region `RAM' overflowed"):
        build(model, "rp2040", cache_dir=tmp_path / "cache")
    assert build(model, "apollo5", cache_dir=tmp_path / "cache").fits


UNBOUNDED = {
    # The volatile read after the call keeps GCC from turning the recursion into a loop.
    "recursion": ("int r(int n) { volatile int b = n; int v = n > 0 ? r(n - 1) : 0; "
                  "return v + b; }\nint chain_a(int x) { return r(x); }\n", "recursion.*r -> r"),
    "vla": ("int chain_a(int x) { volatile int8_t b[x & 63]; b[0] = 1; return b[0]; }\n",
            "chain_a has a dynamic stack frame"),
    "indirect": ("int (*volatile hook)(int);\nint chain_a(int x) { return hook(x); }\n",
                 "chain_a makes an indirect call"),
}


@pytest.mark.parametrize("case", sorted(UNBOUNDED))
def test_unbounded_stack_is_an_error(case, tmp_path):
    source, message = UNBOUNDED[case]
    model = write_model(tmp_path / "model")
    (model / "chain.c").write_text("#include <stdint.h>\nint chain_a(int x);\n" + source)
    with pytest.raises(StackError, match=message):
        build(model, "apollo5", cache_dir=tmp_path / "cache")


def test_second_build_is_a_cache_hit(tmp_path):
    model = write_model(tmp_path / "model")
    cache = tmp_path / "cache"
    first = build(model, "rp2040", cache_dir=cache)
    second = build(model, "rp2040", cache_dir=cache, out_dir=tmp_path / "out")
    assert not first.cached and second.cached
    assert second.seconds == first.seconds  # the stored build's time, not a new compile
    assert (second.flash_bytes, second.ram_bytes, second.stack_bytes, second.symbols) == (
        first.flash_bytes, first.ram_bytes, first.stack_bytes, first.symbols)
    assert second.elf_path == tmp_path / "out" / "rp2040.elf"
    assert second.elf_path.read_bytes() == first.elf_path.read_bytes()
    assert not build(model, "apollo5", cache_dir=cache).cached
    (model / "model.c").write_text((model / "model.c").read_text() + "\n/* changed */\n")
    assert not build(model, "rp2040", cache_dir=cache).cached


def test_cache_dir_from_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("AUTOTUNE_CACHE_DIR", str(tmp_path / "env-cache"))
    result = build(write_model(tmp_path / "model"), "rp2040")
    assert result.elf_path.parent.parent == tmp_path / "env-cache" and not result.cached


def test_custom_entry_name(tmp_path):
    model = write_model(tmp_path / "model", entry="kws_invoke")
    result = build(model, "rp2040", entry="kws_invoke", cache_dir=tmp_path / "cache")
    assert result.stack_path[3] == "kws_invoke"  # Reset_Handler, main, at_protocol_serve, the entry


def test_missing_compiler_says_what_to_install(base_model, tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(ToolchainError, match="arm-none-eabi-gcc not found.*apt-get install"):
        build(base_model, "rp2040", cache_dir=tmp_path / "cache")


@pytest.mark.parametrize("sanitize", [False, True])
def test_host_build_matches_reference(sanitize, base_model, tmp_path):
    exe = build_host(base_model, tmp_path / "model", sanitize=sanitize)
    rng = random.Random(0)
    inputs = [[rng.randint(-128, 127) for _ in range(N_IN)] for _ in range(3)]
    inputs.append([127] * N_IN)
    stdin = b"".join(bytes(v & 0xFF for v in x) for x in inputs)
    proc = subprocess.run([str(exe)], input=stdin, capture_output=True, check=True)
    got = [int.from_bytes(proc.stdout[k:k + 1], "little", signed=True)
           for k in range(len(proc.stdout))]
    assert got == [v for x in inputs for v in reference(x)]
    assert len(set(got)) > 2  # not all saturated


def test_host_build_rejects_a_truncated_record(base_model, tmp_path):
    exe = build_host(base_model, tmp_path / "model")
    proc = subprocess.run([str(exe)], input=b"\x01" * (N_IN + 3), capture_output=True)
    assert proc.returncode == 2 and len(proc.stdout) == N_OUT
