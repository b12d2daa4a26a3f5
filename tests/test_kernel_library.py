"""Per-core kernel libraries: a variant in kernels/<library>/ replaces the generic file of the same
name in the builds of targets that list the library, in the search's builds and in bundles.

The fixture is a variant for a core without one yet: FULLY_CONNECTED on the Cortex-M4's
SMLAD (tests/fixtures/kernels/cortex-m4/), in a copy of the kernel library.
"""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import yaml

import model_zoo
from autotune import executor
from autotune.bundle import write_bundle
from autotune.codegen import generate_c, integer_core, kernel_library
from autotune.ir.tflite_import import import_tflite
from device_runners.build import build, measure_elf, select_sources
from device_runners.runners import open_runner
from device_runners.targets import get_target

FIXTURE = Path(__file__).parent / "fixtures" / "kernels"
VARIANT = "at_fully_connected_s8.c"


@pytest.fixture
def library(tmp_path, monkeypatch) -> Path:
    """The kernel library plus the fixture's cortex-m4 variant, in place of the real one."""
    root = tmp_path / "kernels"
    shutil.copytree(kernel_library.KERNEL_DIR, root)
    shutil.copytree(FIXTURE / "cortex-m4", root / "cortex-m4")
    monkeypatch.setattr(kernel_library, "KERNEL_DIR", root)
    return root


def disassembly(elf: Path, function: str) -> str:
    listing = subprocess.run(["arm-none-eabi-objdump", "-d", str(elf)], capture_output=True, text=True,
                             check=True).stdout
    return listing.split(f"<{function}>:")[1].split("\n\n")[0]


def dense_graph(zoo_dir: Path):
    return integer_core(import_tflite(model_zoo.tflite_bytes("dense", zoo_dir), "dense"))


def test_variants_are_copied_beside_the_generic_files_and_stale_ones_removed(library, tmp_path):
    out = tmp_path / "src"
    kernel_library.copy_kernels(["at_common.h", "at_common.c", VARIANT], out)
    assert (out / VARIANT).read_text() == (library / VARIANT).read_text()
    assert (out / "cortex-m4" / VARIANT).read_text() == (FIXTURE / "cortex-m4" / VARIANT).read_text()
    kernel_library.copy_kernels(["at_common.h", "at_common.c", "at_add_s8.c"], out)
    assert not (out / VARIANT).exists() and not (out / "cortex-m4").exists()
    assert sorted(p.name for p in out.glob("*.[ch]")) == ["at_add_s8.c", "at_common.c", "at_common.h"]
    # at_common.c's Cortex-M0+ variant, add's Helium one
    assert sorted(p.name for p in out.iterdir() if p.is_dir()) == ["cortex-m0plus", "cortex-m55-mve"]


def test_targets_that_list_the_library_build_the_variant(library, zoo_dir, tmp_path):
    graph = dense_graph(zoo_dir)
    generate_c(graph, tmp_path / "src")
    m4, m0 = get_target("nano33ble"), get_target("rp2040")
    assert "cortex-m4" in m4.kernel_libraries and "cortex-m4" not in m0.kernel_libraries
    assert tmp_path / "src" / "cortex-m4" / VARIANT in select_sources(tmp_path / "src", m4)
    assert tmp_path / "src" / "cortex-m0plus" / VARIANT in select_sources(tmp_path / "src", m0)  # its own

    cache = tmp_path / "cache"
    with_variant = build(tmp_path / "src", "nano33ble", cache_dir=cache)
    generic = build(tmp_path / "src", "rp2040", cache_dir=cache)
    assert "smlad" in disassembly(with_variant.elf_path, "at_fully_connected_s8")
    assert "smlad" not in disassembly(generic.elf_path, "at_fully_connected_s8")
    x = np.random.default_rng(3).integers(-128, 128, (6, *graph.tensor(graph.inputs[0]).shape[1:])).astype(np.int8)
    want = executor.run(graph, x).reshape(len(x), -1)
    for firmware, runner in ((with_variant, "nano33ble-sim"), (generic, "rp2040-sim")):
        sim = open_runner(runner, firmware.elf_path)
        for n in range(len(x)):
            assert np.array_equal(sim.run(x[n]).output, want[n]), (runner, n)

    shutil.rmtree(tmp_path / "src" / "cortex-m4")  # the same sources without the variant
    plain = build(tmp_path / "src", "nano33ble", cache_dir=cache)
    assert not plain.cached and "smlad" not in disassembly(plain.elf_path, "at_fully_connected_s8")


@pytest.mark.slow
def test_bundles_build_the_variant_for_its_targets(library, zoo_dir, tmp_path):
    graph = dense_graph(zoo_dir)
    x = np.random.default_rng(4).integers(-128, 128, (4, *graph.tensor(graph.inputs[0]).shape[1:])).astype(np.int8)
    tflite = model_zoo.tflite_bytes("dense", zoo_dir)
    bundle = write_bundle(import_tflite(tflite, "dense"), tflite, tmp_path / "bundle", x, {"name": "dense"})
    assert (bundle.path / "src" / "cortex-m4" / VARIANT).is_file()
    proc = subprocess.run(["make", "-C", str(bundle.path), "nano33ble", "rp2040"], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert f"src/cortex-m4/{VARIANT}" in proc.stdout
    built = bundle.path / "build" / "nano33ble"
    assert "smlad" in disassembly(built / "firmware.elf", "at_fully_connected_s8")
    assert "smlad" not in disassembly(bundle.path / "build" / "rp2040" / "firmware.elf", "at_fully_connected_s8")
    card = yaml.safe_load((bundle.path / "model_card.yaml").read_text())
    measured = measure_elf("nano33ble", built / "firmware.elf", sorted(built.glob("*.ci")))
    assert card["measured"]["nano33ble"]["flash_bytes"] == measured.flash_bytes == bundle.builds["nano33ble"].flash_bytes
    assert card["simulated"]["nano33ble"]["instructions"] == bundle.simulated["nano33ble"].instructions
