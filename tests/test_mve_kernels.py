"""The cortex-m55-mve kernel library (Helium intrinsics) on apollo5-sim, against the executor.

Until targets select their kernel library, the apollo5 image is built here with the variants
compiled in place of the generic files (`use_kernel_library`), as an apollo5 target will. Every
zoo model runs 50 inputs in QEMU's Cortex-M55 with outputs identical to the reference executor;
the conv, depthwise and dense kernels hold MVE instructions.
"""
from __future__ import annotations

import re
import subprocess

import pytest

import model_zoo
from autotune.codegen import generate_c, integer_core, use_kernel_library
from autotune.codegen.generate import KERNEL_DIR
from autotune.ir.tflite_import import import_tflite
from device_runners.apollo5_sim import Apollo5Sim, build_sim
from device_runners.build import ARM_OBJDUMP, build
from test_apollo5_sim import check_outputs, check_profile

LIBRARY = "cortex-m55-mve"
MVE = re.compile(r"\t(vldrb|vmladava|vmlava|vmul|vqrdmulh|vrshl|vstrb|vctp)", re.M)


def _apollo5_image(name: str, zoo_dir, tmp_path):
    graph = integer_core(import_tflite(model_zoo.tflite_bytes(name, zoo_dir), name))
    generated = generate_c(graph, tmp_path / "src")
    use_kernel_library(generated.out_dir, LIBRARY)
    return graph, generated


def test_variants_replace_generic_files_one_for_one():
    variants = {f.name for f in (KERNEL_DIR / LIBRARY).iterdir()}
    generic = {f.name for f in KERNEL_DIR.iterdir() if f.is_file()}
    assert {"at_conv_s8.c", "at_depthwise_conv_s8.c", "at_fully_connected_s8.c", "at_pool_s8.c",
            "at_add_s8.c", "at_requantize_s8.c"} <= variants
    assert variants - generic == {"at_mve.h"}  # its own helpers; every .c replaces a generic one


@pytest.mark.slow
@pytest.mark.parametrize("name", model_zoo.SUPPORTED)
def test_helium_kernels_match_the_executor(name, zoo_dir, tmp_path):
    graph, generated = _apollo5_image(name, zoo_dir, tmp_path)
    sim = Apollo5Sim(build_sim(generated.out_dir, cache_dir=tmp_path / "cache").elf_path, cache_dir=tmp_path)
    check_outputs(sim, graph, name)
    if name in ("larun", "residual", "pools", "requantize"):
        check_profile(sim, graph, name)


def test_mac_kernels_hold_mve_instructions(zoo_dir, tmp_path):
    """objdump -marmv8.1-m.main of the image: conv, depthwise and dense kernels use Helium."""
    _, generated = _apollo5_image("image2d", zoo_dir, tmp_path)
    silicon = build(generated.out_dir, "apollo5", cache_dir=tmp_path / "cache")  # flash/RAM image
    assert silicon.fits and silicon.flash_bytes < build_sim(generated.out_dir, cache_dir=tmp_path / "cache").flash_bytes + 64
    elf = silicon.elf_path
    listing = subprocess.run([ARM_OBJDUMP, "-d", "-marmv8.1-m.main", str(elf)], capture_output=True,
                             text=True, check=True).stdout
    functions = dict(re.findall(r"^[0-9a-f]+ <(\w+)>:\n(.*?)(?=\n\n)", listing, re.M | re.S))
    for kernel in ("at_conv_s8", "at_depthwise_conv_s8", "at_fully_connected_s8"):
        # the kernel's own code and the static helpers it calls (its per-pixel loop, the dot products)
        code = functions[kernel] + "".join(functions[f] for f in re.findall(r"\tbl\s+[0-9a-f]+ <(\w+)>", functions[kernel])
                                           if not f.startswith("at_window"))
        assert MVE.search(code), f"{kernel} holds no MVE instruction"
        assert kernel == "at_depthwise_conv_s8" or re.search(r"\tvmla(da)?va", code), kernel
