"""The cortex-m55-mve kernel library (Helium intrinsics) on apollo5-sim, against the executor.

apollo5 lists the library, so its builds compile the variants in place of the generic files.
Every zoo model runs 50 inputs in QEMU's Cortex-M55 with outputs identical to the reference
executor; the conv, depthwise and dense kernels hold MVE instructions.
"""
from __future__ import annotations

import re
import subprocess

import numpy as np
import pytest

import model_zoo
from autotune import executor
from autotune.codegen import generate_c, integer_core
from autotune.ir.graph import Graph, Op, Quant, Tensor
from autotune.codegen.kernel_library import KERNEL_DIR
from autotune.ir.tflite_import import import_tflite
from device_runners.apollo5_sim import Apollo5Sim
from device_runners.targets import get_target
from test_apollo5_sim import check_outputs, check_profile, sim_image

LIBRARY = "cortex-m55-mve"
MVE = re.compile(r"\t(vldrb|vmladav|vmlav|vmul|vqrdmulh|vrshl|vstrb|vctp|dlstp)", re.M)


def test_variants_replace_generic_files_one_for_one():
    assert LIBRARY in get_target("apollo5").kernel_libraries
    variants = {f.name for f in (KERNEL_DIR / LIBRARY).iterdir()}
    generic = {f.name for f in KERNEL_DIR.iterdir() if f.is_file()}
    assert {"at_conv_s8.c", "at_depthwise_conv_s8.c", "at_fully_connected_s8.c", "at_pool_s8.c",
            "at_add_s8.c", "at_requantize_s8.c"} <= variants
    assert variants - generic == {"at_mve.h", "at_mve_conv.h"}  # its own helpers; every .c replaces a generic one


@pytest.mark.slow
@pytest.mark.parametrize("name", model_zoo.SUPPORTED)
def test_helium_kernels_match_the_executor(name, zoo_dir, tmp_path, sim_cache):
    graph = integer_core(import_tflite(model_zoo.tflite_bytes(name, zoo_dir), name))
    generated = generate_c(graph, tmp_path / "src")
    assert (generated.out_dir / LIBRARY).is_dir()
    sim = Apollo5Sim(sim_image(generated.out_dir, tmp_path).elf_path, cache_dir=sim_cache)
    check_outputs(sim, graph, name)
    if name in ("larun", "residual", "pools", "requantize"):
        check_profile(sim, generated.kernel_plan, name)


def _max_pools(channels: int) -> Graph:
    """Max pools one after another on a row of `channels` channels: a ReLU's clamp (zero point
    -3) and none, two to four taps (max4_run) with SAME padding's clipped columns, five taps (the
    tap loop), and a 2D pool (filter rows)."""
    q = Quant((0.05,), (-3,))
    layers = [(1, 3, 1, 1, "SAME", "RELU"), (1, 2, 1, 2, "VALID", "NONE"), (1, 4, 1, 3, "SAME", "NONE"),
              (1, 5, 1, 1, "SAME", "RELU6"), (2, 2, 1, 1, "SAME", "NONE")]
    shape, tensors, ops = (1, 2, 97, channels), [Tensor("x", (1, 2, 97, channels), "int8", q)], []
    for fh, fw, sh, sw, padding, act in layers:
        width = -(-shape[2] // sw) if padding == "SAME" else (shape[2] - fw) // sw + 1
        shape = (1, shape[1] if padding == "SAME" else shape[1] - fh + 1, width, channels)
        tensors.append(Tensor(f"y{len(ops)}", shape, "int8", q))
        ops.append(Op("MAX_POOL_2D", (len(tensors) - 2,), (len(tensors) - 1,),
                      dict(filter_h=fh, filter_w=fw, stride_h=sh, stride_w=sw, padding=padding, activation=act)))
    return Graph(f"max_pools_{channels}", tensors, ops, [0], [len(tensors) - 1])


@pytest.mark.parametrize("channels", [8, 16, 20])
def test_helium_max_pool_paths_match_the_executor(channels, tmp_path, sim_cache):
    graph = _max_pools(channels)
    generated = generate_c(graph, tmp_path / "src")
    sim = Apollo5Sim(sim_image(generated.out_dir, tmp_path).elf_path, cache_dir=sim_cache)
    check_outputs(sim, graph, graph.name)
    work = [call.work for call in generated.kernel_plan.calls]
    assert (work[0]["mve_max4_pixels"] > 0) == (channels <= 16)  # the path the C takes, as planned
    assert work[3]["mve_tap_slices"] > 0  # five taps: the tap loop (its clipped columns max4_run)


@pytest.mark.parametrize("positions", [256, 257])
def test_helium_mean_sums_at_the_int16_limit(positions, tmp_path, sim_cache):
    """A global average pool of 12 channels over 256 positions sums in int16 lanes, over 257 in
    int32: all -128 and all 127 (the sums' extremes) and random rows, against the executor."""
    axis = Tensor("axis", (2,), "int32", None, np.array([1, 2], np.int32))
    graph = Graph(f"mean_{positions}", [Tensor("x", (1, 1, positions, 12), "int8", Quant((0.05,), (3,))), axis,
                                         Tensor("y", (1, 12), "int8", Quant((0.02,), (-1,)))],
                  [Op("MEAN", (0, 1), (2,), dict(axis=(1, 2), keep_dims=False))], [0], [2])
    generated = generate_c(graph, tmp_path / "src")
    assert generated.kernel_plan.calls[0].work["mve_sum_loads"] == positions * (2 if positions <= 256 else 3)
    sim = Apollo5Sim(sim_image(generated.out_dir, tmp_path).elf_path, cache_dir=sim_cache)
    x = np.random.default_rng(3).integers(-128, 128, (6, 1, positions, 12)).astype(np.int8)
    x[0], x[1] = -128, 127
    got, status = sim.outputs(x)
    assert (status == 0).all()
    np.testing.assert_array_equal(got, executor.run(graph, x).reshape(6, -1))


def test_mac_kernels_hold_mve_instructions(zoo_dir, tmp_path):
    """objdump -marmv8.1-m.main of the image: the code reachable from the conv, depthwise and
    dense kernels (their per-mode bodies, the assembly loops) uses Helium, MACs included."""
    _, generated, silicon = model_zoo.firmware("image2d", zoo_dir, tmp_path, "apollo5")  # flash/RAM image
    assert silicon.fits and silicon.flash_bytes < sim_image(generated.out_dir, tmp_path).flash_bytes + 64
    tools = get_target("apollo5").toolchain
    listing = subprocess.run([tools.objdump, "-d", "-marmv8.1-m.main", str(silicon.elf_path)], capture_output=True,
                             text=True, check=True).stdout
    functions = dict(re.findall(r"^[0-9a-f]+ <(\w+(?:\.\w+)*)>:\n(.*?)(?=\n\n)", listing, re.M | re.S))
    for kernel in ("at_conv_s8", "at_depthwise_conv_s8", "at_fully_connected_s8"):
        code = "".join(functions[f] for f in reachable(functions, kernel))
        assert MVE.search(code), f"{kernel} holds no MVE instruction"
        assert re.search(r"\tvml(a|ada)v|\tvmull[bt]", code), f"{kernel} does no MVE multiply-accumulate"


def reachable(functions: dict[str, str], root: str) -> set[str]:
    """`root` and the functions it calls or branches to, transitively (at_window_s8, the scalar
    window gathering, aside)."""
    seen, todo = set(), [root]
    while todo:
        name = todo.pop()
        if name in seen or name not in functions or name.startswith("at_window"):
            continue
        seen.add(name)
        todo += re.findall(r"\tb(?:l|\.w)?\s+[0-9a-f]+ <([\w.]+)>", functions[name])
    return seen
