"""Firmware bundles: one model as C sources with a Makefile for the host and every target's build,
test vectors and a test main, a memory report and a model card.

    bundle/
      Makefile            make host (builds and runs the test vectors), make <target> for each target
      src/                model.h, model.c and the kernels (generated; never edit by hand); per-core
                          kernel variants in src/<library>/, compiled for the targets that list them
      harness/            firmware start-up, mains, board protocol, boot2, linker scripts, uf2.py
      firmware/           <target>.elf for every target, rp2040.uf2 (flash it: drag and drop)
      pico_sdk/           CMakeLists.txt and sdk_main.c: the rp2040 firmware built with the Pico SDK
      test/               test_vectors.h and .npz (inputs and expected outputs), test_main.c
      model.tflite        the int8 model the C was generated from
      memory_report.md    flash by section and by layer, RAM, stack path, the arena map
      profile_<runner>.csv  per kernel call on each target's simulator: op, MACs, cycles, us, MACs
                          per cycle, weight bytes (the first test vector; `autotune profile` reruns it)
      model_card.yaml     data, accuracy, costs (measured or predicted), quantization, the coded
                          weight tensors' storages and params (weight_storage), provenance
"""
from __future__ import annotations

import hashlib
import shutil
import tempfile
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import yaml

from autotune import __version__, executor
from autotune.codegen import generate_c
from autotune.compress.report import WeightRow, format_rows, table_note, weight_rows
from autotune.compress.storage import card_entries
from autotune.config import folder_problem
from autotune.errors import AutotuneError, ConfigError
from autotune.escape import c_comment, make_comment, one_line
from autotune.ir.graph import Graph
from autotune.ir.kernel_plan import KernelPlan
from autotune.lowering import integer_core
from autotune.measurement import Measurement
from autotune.profile import CARD, TEST_VECTORS, WEIGHT_STORAGE, CallProfile, call_profiles, write_csv
from autotune.tflm import check_matches_tflm
from cost_models.analytic import AnalyticCostModel
from cost_models.features import extract_features
from device_runners.build import (HARNESS_DIR, HOST_FLAGS, PLACEMENTS, SANITIZE_FLAGS, BuildResult, DoesNotFitError,
                                  build, firmware_command, harness_files, select_sources)
from device_runners import uf2
from device_runners.runners import LAYOUTS, Runner, SimResult, open_runner, runner_image
from device_runners.targets import TARGETS

HARNESS_FILES = tuple(sorted({f for t in TARGETS.values() for p in ("flash", *t.placements)
                              for f in harness_files(t, p)}))
SDK_TARGET = "rp2040"  # the target the Pico SDK project builds for


@dataclass(frozen=True)
class Bundle:
    path: Path
    builds: dict[str, BuildResult]  # target -> measured firmware of this bundle's sources
    simulated: dict[str, SimResult]  # target -> its default runner on the first test vector
    profiles: dict[str, tuple[CallProfile, ...]]  # target -> that run per kernel call
    weights: tuple[WeightRow, ...] = ()  # per weight tensor, its storage (the memory report's table)
    unfit: dict[str, str] = field(default_factory=dict)  # target -> the memory its firmware overflows


def write_bundle(graph: Graph, tflite: bytes, out_dir: Path, test_inputs: np.ndarray, card: dict,
                 target: str | None = None, placement: str = "flash") -> Bundle:
    """Generate, check and measure a bundle. `test_inputs` are int8 inputs of the integer path.

    The expected outputs come from the reference executor and must equal TFLite Micro's. Every
    target is built (into firmware/) and its flash and RAM measured from the ELF; every target
    with a runner runs the first test vector, which must give the expected output (rp2040-sim
    runs it twice: cold, then with the XIP cache warm). With `target`, the card's `costs` are
    this bundle's figures for that target: flash and RAM of its ELF, the latency its analytic
    model predicts; `placement` (device_runners.build.PLACEMENTS) applies to that target's build.
    The bundle is written into a temporary folder beside `out_dir` and moved into place once
    complete: a failure leaves no bundle folder behind, nor the parent folders it created.
    """
    out_dir = Path(out_dir)
    check_out_dir(out_dir)
    # Before any folder exists: TFLite Micro aborts the process on some models it cannot run.
    core = integer_core(graph)
    expected = executor.run(core, test_inputs)
    if core is graph:  # int8 edges: TFLM takes the same inputs (float-edge models are checked in tests)
        check_matches_tflm(tflite, test_inputs, expected, graph.name)
    created = [p for p in (out_dir.parent, *out_dir.parent.parents) if not p.exists()]
    try:
        out_dir.parent.mkdir(parents=True, exist_ok=True)
        work = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", dir=out_dir.parent))
    except OSError as exc:  # no permission, a read-only file system
        _remove_empty(created)
        raise ConfigError(f"{out_dir}: cannot create the bundle folder ({exc.strerror}); choose another --out") from None
    work.chmod(0o755)  # mkdtemp makes it private; a bundle is an ordinary folder
    try:
        builds, simulated, profiles, weights, unfit = _write_bundle(graph, core, tflite, work, test_inputs, expected,
                                                                    card, target, placement)
        if out_dir.exists():
            out_dir.rmdir()  # empty, as checked above
        work.rename(out_dir)
        builds = {t: _moved(b, work, out_dir) for t, b in builds.items()}
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        _remove_empty(created)
        raise
    return Bundle(out_dir, builds, simulated, profiles, weights, unfit)


def check_out_dir(out_dir: Path) -> None:
    """ConfigError unless a bundle can be written to `out_dir`: a new or empty folder."""
    problem = folder_problem(out_dir)
    if problem:
        raise ConfigError(f"{out_dir}: {problem}; choose another --out")
    if out_dir.exists() and any(out_dir.iterdir()):
        raise ConfigError(f"{out_dir}: exists and is not empty; choose another --out or remove it")


def _remove_empty(created: list[Path]) -> None:
    """The folders a failed bundle created on its way, innermost first, where still empty."""
    for parent in created:
        if parent.exists() and not any(parent.iterdir()):
            parent.rmdir()


def _moved(b: BuildResult, old: Path, new: Path) -> BuildResult:
    """A build whose files were in folder `old`, now `new`."""
    def move(p: Path | None) -> Path | None:
        return new / p.relative_to(old) if p is not None and p.is_relative_to(old) else p

    return replace(b, elf_path=move(b.elf_path), uf2_path=move(b.uf2_path))


def _write_bundle(graph: Graph, core: Graph, tflite: bytes, out_dir: Path, test_inputs: np.ndarray,
                  expected: np.ndarray, card: dict, target: str | None, placement: str
                  ) -> tuple[dict[str, BuildResult], dict[str, SimResult], dict[str, tuple[CallProfile, ...]],
                             tuple[WeightRow, ...], dict[str, str]]:
    generated = generate_c(graph, out_dir / "src")
    harness = out_dir / "harness"
    harness.mkdir()
    for name in HARNESS_FILES:
        (harness / name).parent.mkdir(exist_ok=True)
        shutil.copyfile(HARNESS_DIR / name, harness / name)
    shutil.copyfile(Path(uf2.__file__), harness / "uf2.py")
    (out_dir / "test").mkdir()
    (out_dir / "test" / "test_vectors.h").write_text(_test_vectors(test_inputs, expected, graph.name))
    np.savez(out_dir / TEST_VECTORS, inputs=test_inputs, expected=expected)
    (out_dir / "test" / "test_main.c").write_text(TEST_MAIN)
    (out_dir / "model.tflite").write_bytes(tflite)
    placements = {t: placement if t == target else "flash" for t in TARGETS}
    (out_dir / "Makefile").write_text(_makefile(out_dir, generated.entry, graph.name, placements))
    (out_dir / "pico_sdk").mkdir()
    (out_dir / "pico_sdk" / "CMakeLists.txt").write_text(_sdk_cmake(out_dir, generated.entry, graph.name))
    shutil.copyfile(HARNESS_DIR / "pico_sdk_main.c", out_dir / "pico_sdk" / "sdk_main.c")

    builds, unfit = {}, {}
    for t in TARGETS:  # the bundle holds the targets the model fits; `target` must be one of them
        try:
            builds[t] = build(out_dir / "src", t, out_dir=out_dir / "firmware", entry=generated.entry,
                              placement=placements[t])
        except DoesNotFitError as exc:
            if t == target:
                raise
            unfit[t] = _overflow(exc)
    if not builds:
        raise AutotuneError(f"{graph.name}: fits no target: " + "; ".join(f"{t} {w}" for t, w in unfit.items()))
    simulated, sim_card, profiles = {}, {}, {}
    coded = any(c.decodes for c in generated.kernel_plan.calls)
    for t, d in TARGETS.items():
        if d.runners and t in builds:
            # a runner that takes the objects linked for its own machine: that image beside
            # the target's (firmware/<image name>.elf, as `autotune profile` reads it)
            try:
                firmware = builds[t] if d.runners[0] not in LAYOUTS else runner_image(
                    d.runners[0], out_dir / "src", t, generated.entry, out_dir=out_dir / "firmware")
            except DoesNotFitError as exc:  # the runner's machine has less memory than the target
                sim_card[t] = {"source": f"not run: the {d.runners[0]} image's {_overflow(exc)}"}
                continue
            runner = open_runner(d.runners[0], firmware.elf_path, generated.entry)
            cold = _simulate(runner, t, test_inputs[0], expected[0], graph.name)
            simulated[t] = _simulate(runner, t, test_inputs[0], expected[0], graph.name) if cold.xip_misses else cold
            sim_card[t] = _simulated_card(simulated[t], cold, runner.source, coded)
            profiles[t] = call_profiles(generated.kernel_plan, simulated[t], t)
            write_csv(profiles[t], out_dir / f"profile_{d.runners[0]}.csv")
    weights = tuple(weight_rows(generated.kernel_plan))
    (out_dir / "memory_report.md").write_text(_memory_report(generated.kernel_plan, generated.plan.format(core),
                                                             builds, weights))
    if target is not None:
        features = extract_features(generated.kernel_plan, activation_bytes=generated.activation_bytes)
        latency = AnalyticCostModel(target, placement).predict(features).latency
        card = {**card, "costs": _costs(target, builds[target], latency)}
    card = {**card, "quantization": _quantization(core), WEIGHT_STORAGE: card_entries(graph),
            "tflite_sha256": hashlib.sha256(tflite).hexdigest(),
            "generated_by": f"autotune {__version__}",
            "measured": {t: {"flash_bytes": b.flash_bytes, "ram_bytes": b.ram_bytes, "stack_bytes": b.stack_bytes,
                             "source": f"measured:elf-{t}"} for t, b in builds.items()}
            | {t: {"does_not_fit": w, "source": f"measured:link-{t}"} for t, w in unfit.items()},
            "simulated": sim_card,
            "arena_bytes": generated.arena_bytes}
    (out_dir / CARD).write_text(yaml.safe_dump(card, sort_keys=False))
    return builds, simulated, profiles, weights, unfit


def _overflow(exc: DoesNotFitError) -> str:
    return f"{exc.region} overflowed by {exc.overflow_bytes} B"


def _costs(target: str, firmware: BuildResult, latency: Measurement) -> dict:
    """The card's costs for `target`: measured from this bundle's ELF, latency as predicted."""
    return {"target": target,
            "flash_bytes": {"value": firmware.flash_bytes, "source": f"measured:elf-{target}"},
            "ram_bytes": {"value": firmware.ram_bytes, "source": f"measured:elf-{target}"},
            "latency_ms": {"value": latency.value, "source": latency.source}}


def _simulate(runner: Runner, target: str, x: np.ndarray, want: np.ndarray, name: str) -> SimResult:
    """A target's firmware on one test vector, its output checked bit for bit."""
    result = runner.run(x)
    if result.status != 0 or not np.array_equal(result.output, want.reshape(-1)):
        raise AutotuneError(f"{name}: the {target} firmware on {runner.name} gives {result.output.tolist()} "
                            f"(status {result.status}) on the first test vector, expected {want.reshape(-1).tolist()}")
    return result


def _simulated_card(result: SimResult, cold: SimResult, source: str, coded: bool) -> dict:
    """A runner's figures on the first test vector; with an XIP cache model, warm (a second run),
    with the zero-wait lower bound and the first, cold, run beside them. A first run of a model
    with `coded` weights checks each blob's CRC-32, which a board does once after reset."""
    entry = {"instructions": result.instructions}
    if result.cycles is not None:
        entry = {"latency_ms": round(result.milliseconds, 4), "cycles": result.cycles, **entry}
    if result.xip_misses is not None:
        entry.update(zero_wait_cycles=result.zero_wait_cycles, xip_misses=result.xip_misses,
                     cold_cycles=cold.cycles, cold_xip_misses=cold.xip_misses)
        source += ", XIP cache warm (the first test vector run twice)"
    if result is cold and coded:
        source += ", the first inference after reset (each weight blob's CRC-32 checked, once per reset)"
    return {**entry, "source": f"{source}, first test vector"}


def _c_rows(rows: np.ndarray) -> str:
    return ",\n".join("    {" + ", ".join(str(int(v)) for v in row) + "}" for row in rows)


def _test_vectors(inputs: np.ndarray, expected: np.ndarray, name: str) -> str:
    n = len(inputs)
    return (f"/* Generated by autotune from {c_comment(name)}: inputs and the outputs TFLite Micro and the reference\n"
            " * executor give for them. Do not edit. */\n"
            "#ifndef TEST_VECTORS_H\n#define TEST_VECTORS_H\n#include <stdint.h>\n#include \"model.h\"\n"
            f"#define TEST_VECTOR_COUNT {n}\n"
            f"static const int8_t test_inputs[TEST_VECTOR_COUNT][MODEL_INPUT_SIZE] = {{\n"
            f"{_c_rows(inputs.reshape(n, -1))}\n}};\n"
            f"static const int8_t test_expected[TEST_VECTOR_COUNT][MODEL_OUTPUT_SIZE] = {{\n"
            f"{_c_rows(expected.reshape(n, -1))}\n}};\n#endif\n")


TEST_MAIN = """\
/* Runs the model on every test vector and compares with the expected outputs. Exit 0 if all match. */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "model.h"
#include "test_vectors.h"

int main(void)
{
    static int8_t output[MODEL_OUTPUT_SIZE];
    int mismatches = 0;
    for (int i = 0; i < TEST_VECTOR_COUNT; i++) {
        if (model_invoke(test_inputs[i], output) != 0) {
            printf("vector %d: model_invoke failed\\n", i);
            return 1;
        }
        for (int j = 0; j < MODEL_OUTPUT_SIZE; j++) {
            if (output[j] != test_expected[i][j]) {
                printf("vector %d: output %d is %d, expected %d\\n", i, j, output[j], test_expected[i][j]);
                mismatches++;
                break;
            }
        }
    }
    printf("test vectors: %d of %d match\\n", TEST_VECTOR_COUNT - mismatches, TEST_VECTOR_COUNT);
    return mismatches != 0;
}
"""


def _makefile(bundle: Path, entry: str, name: str, placements: dict[str, str]) -> str:
    """Targets' builds use the sources `select_sources` picks for them, and the placement, as the
    search's builds do; a target with a UF2 family also gets build/<target>/firmware.uf2."""
    src = [Path("src") / p.name for p in sorted((bundle / "src").glob("*.c"))]
    lines = [f"# Generated by autotune from {make_comment(name)}. `make host` builds and runs the test vectors;",
             f"# `make {' / make '.join(TARGETS)}` build firmware with the flags the search measured.",
             "CC ?= gcc", "",
             ".PHONY: all host " + " ".join(TARGETS) + " clean", "",
             "all: host " + " ".join(TARGETS), ""]
    headers = "$(wildcard src/*.h) $(wildcard harness/*)"
    for target, t in TARGETS.items():
        elf = Path("build") / target / "firmware.elf"
        sources = [p.relative_to(bundle) for p in select_sources(bundle / "src", t, entry)]
        command = " ".join(firmware_command(target, Path("src"), sources, Path("harness"), elf, entry,
                                            placement=placements[target]))
        library_headers = "".join(f" $(wildcard src/{lib}/*.h)" for lib in t.kernel_libraries)
        image = []
        if t.uf2_family is not None:
            binary, uf2_image = elf.with_suffix(".bin"), elf.with_suffix(".uf2")
            image = [f"\t{t.toolchain.objcopy} -O binary {elf} {binary}",
                     f"\tpython3 harness/uf2.py pack {binary} {uf2_image} --base {t.flash_origin:#x} "
                     f"--family {t.uf2_family:#x}",
                     f"\tpython3 harness/uf2.py check {uf2_image}"]
        lines += [f"{target}: {elf}", f"\t{t.toolchain.size} {elf}", "",
                  f"{elf}: {' '.join(map(str, sources))} {headers}{library_headers}",
                  f"\tmkdir -p {elf.parent}", f"\t{command}", *image, ""]
    host_flags = " ".join((*HOST_FLAGS, *SANITIZE_FLAGS))
    lines += ["host: build/host/test_main", "\t./build/host/test_main", "",
              f"build/host/test_main: {' '.join(map(str, src))} {headers} test/test_main.c test/test_vectors.h",
              "\tmkdir -p build/host",
              f"\t$(CC) {host_flags} -I src {' '.join(map(str, src))} test/test_main.c -o $@", "",
              "clean:", "\trm -rf build", ""]
    return "\n".join(lines)


def _sdk_cmake(bundle: Path, entry: str, name: str) -> str:
    """The Pico SDK project: the model's sources as the rp2040 build selects them, the board
    protocol over USB CDC (sdk_main.c); the SDK brings boot2, start-up and clocks."""
    sources = [f"${{CMAKE_CURRENT_LIST_DIR}}/../{p.relative_to(bundle)}"
               for p in select_sources(bundle / "src", TARGETS[SDK_TARGET], entry)]
    harness = [f"${{CMAKE_CURRENT_LIST_DIR}}/../harness/{n}"
               for n in ("autotune_io.c", "autotune_protocol.c", "rp2040_cycles.c")]
    files = "\n".join(f"    {f}" for f in (*sources, *harness, "${CMAKE_CURRENT_LIST_DIR}/sdk_main.c"))
    return f"""\
# Generated by autotune from {make_comment(name)}: the rp2040 firmware built with the Raspberry Pi Pico SDK, the
# board protocol over USB CDC (the plain `make rp2040` build speaks it over UART0, without the SDK).
#   export PICO_SDK_PATH=/path/to/pico-sdk
#   cp $PICO_SDK_PATH/external/pico_sdk_import.cmake pico_sdk/
#   cmake -S pico_sdk -B build/pico_sdk && cmake --build build/pico_sdk
# gives build/pico_sdk/autotune_model.uf2.
cmake_minimum_required(VERSION 3.13)
include(${{CMAKE_CURRENT_LIST_DIR}}/pico_sdk_import.cmake)
project(autotune_model C CXX ASM)
set(CMAKE_C_STANDARD 99)
pico_sdk_init()

add_executable(autotune_model
{files}
)
target_include_directories(autotune_model PRIVATE ${{CMAKE_CURRENT_LIST_DIR}}/../src ${{CMAKE_CURRENT_LIST_DIR}}/../harness)
target_compile_definitions(autotune_model PRIVATE AUTOTUNE_ENTRY={entry} MODEL_ARENA_IO_ONLY)
target_link_libraries(autotune_model pico_stdlib)
pico_enable_stdio_usb(autotune_model 1)
pico_enable_stdio_uart(autotune_model 0)
pico_add_extra_outputs(autotune_model)
"""


def _quantization(graph: Graph) -> dict:
    def q(index: int) -> dict:
        t = graph.tensor(index)
        return {"shape": list(t.shape), "dtype": t.dtype, "scale": float(t.quant.scale[0]),
                "zero_point": int(t.quant.zero_point[0])}

    return {"input": q(graph.inputs[0]), "output": q(graph.outputs[0]),
            "weights": "int8 (per-channel for convolutions), biases int32", "activations": "int8"}


def _memory_report(plan: KernelPlan, arena_map: str, builds: dict[str, BuildResult],
                   rows: tuple[WeightRow, ...]) -> str:
    lines = [f"# Memory report: {one_line(plan.graph.name)}", ""]
    lines += ["| target | flash (bytes) | RAM (bytes) | of which stack | worst stack path |", "|---|---|---|---|---|"]
    lines += [f"| {t} | {b.flash_bytes} | {b.ram_bytes} | {b.stack_bytes} | {' > '.join(b.stack_path)} |"
              for t, b in builds.items()]
    lines += ["", "All figures are measured from the ELF (each target's compiler, -Os): flash = every allocated",
              "section with contents; RAM = .data + .bss + worst-case stack.", ""]
    for t, b in builds.items():
        lines += [f"## Flash and RAM by section, {t}", "", "| section | bytes |", "|---|---|"]
        lines += [f"| {s} | {n} |" for s, n in b.sections.items()]
        lines += ["", f"Largest symbols in flash ({t}):", "", "| symbol | bytes |", "|---|---|"]
        lines += [f"| {s} | {n} |" for s, n in list(b.symbols.items())[:25]]
        lines.append("")
    lines += ["## Constants by kernel call", "",
              "| call | op | kind | kernel | weights as stored (bytes) | storage | other constants (bytes) |",
              "|---|---|---|---|---|---|---|"]
    for i, c in enumerate(plan.calls):
        storage = ", ".join(f"{w.role} {w.format}" for w in c.weights) or "-"
        lines.append(f"| {i} | {c.op} | {c.kind} | {c.symbol or '(no code)'} | {c.weight_bytes} | {storage} | "
                     f"{c.const_bytes} |")
    lines += ["", "Other constants: per-channel accumulator starts, multipliers and shifts; lookup tables."]
    lines += ["", "## Weight storage by layer", "", *format_rows(rows), "", table_note(rows)]
    lines += ["", "## Activation arena", "", "```", arena_map, "```", ""]
    return "\n".join(lines)
