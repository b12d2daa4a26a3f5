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
from autotune.ops.fully_connected import MVE_PATHS, grouped_tails, mve_path
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


def _conv_pools_and_dense() -> Graph:
    """Two convolutions each fused with the 2x2 max pool after it, into two dense layers: a 3x3
    conv of 18-byte windows (two-pixel blocks, windows copied, the padding's at a border, pool
    rows accumulated), a 1x1 conv of 8-byte windows (read in place: four-pixel blocks of two pool
    windows, the odd last window a two-pixel block), dense 80 -> 16 (at_mve_long_run) and 16 -> 8
    (short_layer, 16-byte rows)."""
    rng = np.random.default_rng(7)
    tensors, ops = [Tensor("x", (1, 4, 20, 2), "int8", Quant((0.05,), (-3,)))], []

    def layer(kind: str, weights: tuple[int, ...], out: tuple[int, ...], options: dict, zero_point: int) -> None:
        units, taps = weights[0], int(np.prod(weights[1:]))
        scales = rng.uniform(0.005, 0.02, units)
        tensors.append(Tensor(f"w{len(ops)}", weights, "int8", Quant(tuple(scales), (0,) * units, 0),
                              rng.integers(-127, 128, weights).astype(np.int8)))
        tensors.append(Tensor(f"b{len(ops)}", (units,), "int32", Quant(tuple(scales * 0.05), (0,) * units),
                              rng.integers(-2000, 2000, units).astype(np.int32)))
        out_scale = 0.05 * scales.mean() * np.sqrt(taps) * 2.5
        tensors.append(Tensor(f"y{len(ops)}", out, "int8", Quant((out_scale,), (zero_point,))))
        ops.append(Op(kind, (len(tensors) - 4 if ops else 0, len(tensors) - 3, len(tensors) - 2), (len(tensors) - 1,),
                      options))

    def max_pool(out: tuple[int, ...]) -> None:
        tensors.append(Tensor(f"p{len(ops)}", out, "int8", tensors[-1].quant))
        ops.append(Op("MAX_POOL_2D", (len(tensors) - 2,), (len(tensors) - 1,),
                      dict(filter_h=2, filter_w=2, stride_h=2, stride_w=2, padding="VALID", activation="NONE")))

    conv = dict(stride_h=1, stride_w=1, dilation_h=1, dilation_w=1, padding="SAME", depth_multiplier=1)
    layer("CONV_2D", (8, 3, 3, 2), (1, 4, 20, 8), {**conv, "activation": "RELU"}, -128)
    max_pool((1, 2, 10, 8))
    layer("CONV_2D", (16, 1, 1, 8), (1, 2, 10, 16), {**conv, "activation": "NONE"}, 5)
    max_pool((1, 1, 5, 16))
    dense = dict(keep_num_dims=False)
    layer("FULLY_CONNECTED", (16, 80), (1, 16), {**dense, "activation": "NONE"}, -2)
    layer("FULLY_CONNECTED", (8, 16), (1, 8), {**dense, "activation": "RELU"}, -128)
    return Graph("conv_pools_and_dense", tensors, ops, [0], [len(tensors) - 1])


def test_helium_fused_pools_and_dense_paths_match_the_executor(tmp_path, sim_cache):
    graph = _conv_pools_and_dense()
    generated = generate_c(graph, tmp_path / "src")
    calls = [c for c in generated.kernel_plan.calls if c.symbol]
    assert [c.symbol for c in calls] == ["at_conv_max_pool_s8"] * 2 + ["at_fully_connected_s8"] * 2
    assert calls[0].work["mve_border_windows"] > 0 and calls[0].work["mve_window_copies"] > 0
    assert calls[1].work["mve_pair_blocks"] > 0 and calls[1].work["mve_run_blocks"] > 0
    assert not calls[1].work["mve_window_copies"]
    assert calls[2].work["mve_long_groups"] == 4 and calls[3].work["mve_short_groups"] == 2
    sim = Apollo5Sim(sim_image(generated.out_dir, tmp_path).elf_path, cache_dir=sim_cache)
    check_outputs(sim, graph, graph.name)


@pytest.mark.parametrize("gain, shifts", [(1.1, "above 0"), (0.7, "0")])
def test_helium_dense_with_shifts_of_0_or_above_matches_the_executor(gain, shifts, tmp_path, sim_cache):
    """Dense 24 -> 8 whose scales exceed 1 (shifts above 0), or lie in [0.5, 1) (shifts of 0,
    where mode AT_MVE_RIGHT's -1 on negative lanes would stay): short_layer finds them as it goes
    and does the layer again in mode AT_MVE_ANY. Sparse weights of -1, 0 and 1 and a small bias
    keep most outputs off the clamp, where a left shift done after the multiply would round
    differently and the -1 would show."""
    rng = np.random.default_rng(3)
    units, depth = 8, 24
    scales = rng.uniform(0.01, 0.02, units) if shifts == "above 0" else np.full(units, 0.015)
    tensors = [Tensor("x", (1, depth), "int8", Quant((0.05,), (0,))),
               Tensor("w", (units, depth), "int8", Quant(tuple(scales), (0,) * units, 0),
                      rng.choice([-1, 0, 1], (units, depth), p=[0.03, 0.94, 0.03]).astype(np.int8)),
               Tensor("b", (units,), "int32", Quant(tuple(scales * 0.05), (0,) * units),
                      rng.integers(-40, 40, units).astype(np.int32)),
               Tensor("y", (1, units), "int8", Quant((0.05 * scales.min() / gain,), (4,)))]
    graph = Graph("dense_left_shifts", tensors, [Op("FULLY_CONNECTED", (0, 1, 2), (3,),
                                                    dict(keep_num_dims=False, activation="NONE"))], [0], [3])
    generated = generate_c(graph, tmp_path / "src")
    call = next(c for c in generated.kernel_plan.calls if c.symbol)
    assert call.work["mve_short_groups"] == 2
    assert (min(call.params.shift) > 0) if shifts == "above 0" else set(call.params.shift) == {0}
    x = np.random.default_rng(1).integers(-128, 128, (50, depth)).astype(np.int8)
    y = executor.run(graph, x)
    assert np.mean((y > -128) & (y < 127)) > 0.5 and np.mean(y < 4) > 0.2  # off the clamp, some below the zero point
    check_outputs(Apollo5Sim(sim_image(generated.out_dir, tmp_path).elf_path, cache_dir=sim_cache), graph,
                  graph.name)


def _dense_chain(depths: list[int], acts: list[str], gains: list[float | None], seed: int) -> Graph:
    """Dense layers one after another, layer k from depths[k] to depths[k + 1] values, activation
    acts[k]; gains[k] None: per-channel scales whose multipliers come out below 0.5 (shifts below
    0), else one scale whose multiplier is gains[k] (0.7: shifts of 0)."""
    rng = np.random.default_rng(seed)
    tensors, ops = [Tensor("x", (1, depths[0]), "int8", Quant((0.05,), (-3,)))], []
    for k, (depth, units) in enumerate(zip(depths, depths[1:])):
        gain = gains[k]
        scales = rng.uniform(0.005, 0.02, units) if gain is None else np.full(units, 0.015)
        in_scale = tensors[-1].quant.scale[0]
        out_scale = in_scale * scales.mean() * np.sqrt(depth) * 30 if gain is None else in_scale * 0.015 / gain
        tensors += [Tensor(f"w{k}", (units, depth), "int8", Quant(tuple(scales), (0,) * units, 0),
                           rng.integers(-128, 128, (units, depth)).astype(np.int8)),
                    Tensor(f"b{k}", (units,), "int32", Quant(tuple(scales * in_scale), (0,) * units),
                           rng.integers(-3000, 3000, units).astype(np.int32)),
                    Tensor(f"y{k}", (1, units), "int8", Quant((out_scale,), (int(rng.integers(-20, 20)),)))]
        ops.append(Op("FULLY_CONNECTED", (len(tensors) - 4, len(tensors) - 3, len(tensors) - 2), (len(tensors) - 1,),
                      dict(keep_num_dims=False, activation=acts[k])))
    return Graph(f"dense_chain_{seed}", tensors, ops, [0], [len(tensors) - 1])


@pytest.mark.parametrize("seed", [0, 1])
def test_helium_dense_grouped_tails_match_the_executor(seed, tmp_path, sim_cache):
    """Dense layers of 20 and 24 inputs (grouped-tails layout) through all four tails_<T>_<mode>:
    ReLU with shifts below 0 and of 0 (mode AT_MVE_RELU), none with shifts below 0
    (AT_MVE_RIGHT); then random shapes of 16 to 40 inputs (the other paths too); weights over all
    of int8. A layer of 20 inputs without a ReLU whose shifts are 0 keeps its rows one after
    another (short_layer)."""
    rng = np.random.default_rng(seed)
    depths = [20, 24, 20, 16, 20, 24, 20, 24, 20, *rng.integers(16, 41, 5).tolist(), 24, 8]
    acts = ["RELU", "NONE", "RELU", "RELU", "NONE", "RELU", "NONE", "RELU", *rng.choice(["RELU", "NONE"], 6).tolist(),
            "NONE", "NONE"]
    gains = [None, None, 0.7, None, 0.7, None, None, 0.7, *[None] * 8]
    graph = _dense_chain(depths, acts, gains, seed)
    generated = generate_c(graph, tmp_path / "src")
    calls = [c for c in generated.kernel_plan.calls if c.symbol]
    paths = [MVE_PATHS[mve_path(1, d, u, 0, grouped_tails(1, d, u, c.params))]
             for c, d, u in zip(calls, depths, depths[1:])]
    assert paths[:8] == ["tails_4_relu", "tails_8_right", "tails_4_relu", "short_layer", "short_layer",
                         "tails_8_relu", "tails_4_right", "tails_8_relu"]
    assert set(calls[2].params.shift) == {0} and set(calls[4].params.shift) == {0} and set(calls[7].params.shift) == {0}
    assert [bool(c.work.get("mve_grouped_runs")) for c in calls] == [p.startswith("tails") for p in paths]
    assert "#if AT_GROUPED_TAILS" in (generated.out_dir / "model.c").read_text()
    check_outputs(Apollo5Sim(sim_image(generated.out_dir, tmp_path).elf_path, cache_dir=sim_cache), graph,
                  graph.name)


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
        todo += re.findall(r"\tb(?:l|[a-z]{2})?(?:\.w)?\s+[0-9a-f]+ <([\w.]+)>", functions[name])
    return seen
