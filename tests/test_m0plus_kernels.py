"""The cortex-m0plus kernel library (the rp2040's): every variant against the reference executor.

rp2040 lists the library, so its builds compile the variants in place of the generic files; the
host build compiles them too when asked (`build_host(libraries=...)`, their portable C where a
variant has ARMv6-M assembly). Single-op graphs reach each path of each variant (blocks of four
channels and the channels left over, chunks of sums past 16 channels, several pixels a
requantization up to 16 channels, windows read in place and gathered, strides, dilation, depth
multiplier, batches of dense rows, 1-D and 2-D pools), and conv + max pool pairs the fused kernel
(pooling the largest sums, or requantized pixels where the channels are not in blocks of four or
past 32), 200 inputs each, bit-exact on the host under AddressSanitizer and UBSan and on
rp2040-sim; the requantization, portable and assembly, is checked against the generic
at_output_s8 on edge and random values.
"""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from autotune import executor
from autotune.codegen import generate_c
from autotune.codegen.kernel_library import KERNEL_DIR, copy_kernels
from autotune.ir.graph import Graph, Op, Tensor
from device_runners.build import build, build_host
from device_runners.rp2040_sim import Rp2040Sim
from device_runners.targets import get_target
from test_codegen import _assert_same, _run_host

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import bench_kernels as ops  # noqa: E402  (the benchmark's single-op graph builders)

LIBRARY = "cortex-m0plus"
N_INPUTS = 200


def conv_max_pool(rng, h: int, w: int, cin: int, cout: int, kh: int, kw: int, pool: int, act: str = "RELU"):
    """CONV_2D then MAX_POOL_2D (pool x pool, or 1 x pool in 1-D) over its output: one fused call."""
    graph = ops.conv(rng, h, w, cin, cout, kh, kw, act=act)
    conv_out = graph.tensors[-1]
    ph = pool if h > 1 else 1
    pooled = Tensor("p", (1, conv_out.shape[1] // ph, conv_out.shape[2] // pool, cout), "int8", conv_out.quant)
    options = dict(filter_h=ph, filter_w=pool, stride_h=ph, stride_w=pool, padding="VALID", activation="NONE")
    return Graph(f"{graph.name}_maxpool{pool}", [*graph.tensors, pooled],
                 [*graph.ops, Op("MAX_POOL_2D", (3,), (4,), options)], [0], [4])


def graphs():
    rng = np.random.default_rng(11)
    return [
        ops.conv(rng, 1, 64, 1, 8, 1, 7, act="RELU"),  # DESIGN.md's first layer: runs in place
        ops.conv(rng, 1, 32, 8, 16, 1, 1),  # pointwise
        ops.conv(rng, 1, 33, 6, 7, 1, 3, stride=2, padding="VALID"),  # three channels left over
        ops.conv(rng, 6, 7, 3, 5, 3, 3, stride=2, act="RELU"),  # 2-D, gathered at the borders
        ops.conv(rng, 5, 9, 4, 6, 2, 3, dilation=2),
        ops.conv(rng, 1, 40, 8, 0, 1, 5, depthwise=True, act="RELU"),
        ops.conv(rng, 6, 6, 6, 0, 3, 3, stride=2, depthwise=True, dm=2),
        ops.conv(rng, 1, 20, 3, 0, 1, 3, depthwise=True),
        # past 16 channels (chunks of sums), past 32
        ops.conv(rng, 1, 12, 4, 20, 1, 3, act="RELU"),
        ops.conv(rng, 1, 9, 3, 40, 1, 3),
        ops.conv(rng, 1, 10, 20, 0, 1, 3, depthwise=True),
        ops.conv(rng, 1, 10, 19, 0, 1, 3, depthwise=True),  # a chunk of 16, then an odd one of 3
        ops.fully_connected(rng, 1, 12, 40),
        ops.fully_connected(rng, 2, 24, 10),  # two rows, two blocks and two left over
        ops.fully_connected(rng, 1, 16, 8, act="RELU"),
        ops.fully_connected(rng, 1, 7, 3),
        ops.pool(rng, "MAX_POOL_2D", 1, 64, 8, 1, 4, 4, "VALID"),
        ops.pool(rng, "MAX_POOL_2D", 5, 7, 3, 3, 3, 2, "SAME"),
        ops.pool(rng, "AVERAGE_POOL_2D", 5, 5, 4, 2, 2, 2, "VALID"),
        # fused: pooled by the largest sums (blocks of four rows, no ReLU, 2-D with gathered
        # windows), and by requantized pixels where the channels are not in blocks of four or past 32
        conv_max_pool(rng, 1, 64, 1, 8, 1, 7, 4),
        conv_max_pool(rng, 1, 64, 2, 12, 1, 3, 4, act="NONE"),
        conv_max_pool(rng, 1, 64, 2, 6, 1, 3, 4, act="NONE"),
        conv_max_pool(rng, 6, 6, 3, 8, 3, 3, 2),
        conv_max_pool(rng, 1, 16, 4, 36, 1, 3, 2),
        # stride 2 over its input from no lead (ds_cnn's): each pixel behind the windows after it
        ops.conv(rng, 12, 12, 16, 0, 3, 3, stride=2, depthwise=True, act="RELU"),
    ]


def test_variants_replace_generic_files_one_for_one():
    assert LIBRARY in get_target("rp2040").kernel_libraries
    variants = {f.name for f in (KERNEL_DIR / LIBRARY).iterdir()}
    generic = {f.name for f in KERNEL_DIR.iterdir() if f.is_file()}
    assert {"at_conv_s8.c", "at_depthwise_conv_s8.c", "at_fully_connected_s8.c", "at_pool_s8.c"} <= variants
    assert variants - generic == {"at_m0plus.h"}  # its own helpers; every .c replaces a generic one


# check(cases): how many of `cases` requantizations at_m0_requantize gets other than at_output_s8,
# for accumulators at the int32 edges and at random magnitudes, every shift TFLM uses (and left
# shifts), zero and random multipliers, ReLU or not.
REQUANTIZE_CHECK = (
    "static uint32_t state = 12345u;\n"
    "static uint32_t next(void) { state ^= state << 13; state ^= state >> 17; state ^= state << 5; return state; }\n"
    "static long check(long cases) {\n"
    "    static const int32_t edges[] = {INT32_MIN, INT32_MIN + 1, -65537, -65536, -1, 0, 1,\n"
    "                                    65535, 65536, INT32_MAX - 1, INT32_MAX};\n"
    "    long bad = 0, i;\n"
    "    for (i = 0; i < cases; ++i) {\n"
    "        at_channel_t ch;\n"
    "        at_output_t q;\n"
    "        int8_t got;\n"
    "        const int32_t sum = i < 11 * 64 ? edges[i % 11] : (int32_t)next() >> (next() % 31);\n"
    "        q.offset = (int32_t)(next() % 256) - 128;\n"
    "        q.min = (next() & 1) ? q.offset : -128;\n"
    "        q.max = 127;\n"
    "        ch.acc_init = (int32_t)(next() % 4001) - 2000;\n"
    "        ch.multiplier = i % 97 == 0 ? 0 : (int32_t)((1u << 30) | (next() >> 2));\n"
    "        ch.shift = (int32_t)(next() % 40) - 31;\n"
    "        at_m0_requantize(&sum, &ch, &q, &got, 1, 1);\n"
    "        bad += got != at_output_s8(at_add_wrap(ch.acc_init, sum), ch.multiplier, ch.shift, q.offset, q.min,\n"
    "                                   q.max);\n"
    "    }\n"
    "    return bad;\n"
    "}\n")


def test_requantization_matches_the_generic_one(tmp_path):
    """at_m0_requantize (the variants' requantization from the channels' at_channel_t: its short
    path for accumulators in [0, 2^16) and the 16-bit-piece multiply of the whole way) in its
    portable form against at_output_s8 on 2,000,000 cases; the assembly below."""
    main = tmp_path / "main.c"
    main.write_text(f'#include <stdio.h>\n#include "at_m0plus.h"\n{REQUANTIZE_CHECK}int main(void) {{\n'
                    '    const long bad = check(2000000);\n    printf("%ld\\n", bad);\n    return bad != 0;\n}\n')
    exe = tmp_path / "requantize"
    subprocess.run(["gcc", "-std=c99", "-Wall", "-Wextra", "-Werror", "-O2", "-fsanitize=undefined",
                    "-fno-sanitize-recover=all", "-I", str(KERNEL_DIR), "-I", str(KERNEL_DIR / LIBRARY), str(main),
                    str(KERNEL_DIR / LIBRARY / "at_common.c"), "-o", str(exe)], check=True)
    proc = subprocess.run([str(exe)], capture_output=True, text=True)
    assert proc.returncode == 0 and proc.stdout.strip() == "0", proc.stdout[-1000:]


@pytest.mark.slow
def test_requantization_assembly_matches_the_generic_one(tmp_path):
    """The same check on rp2040-sim, where at_m0_requantize is the ARMv6-M assembly: 100,000 cases
    in a firmware whose entry runs check() and returns the count of mismatches as its output."""
    src = tmp_path / "src"
    copy_kernels(["at_common.h", "at_common.c", "at_kernels.h"], src)
    (src / "model.h").write_text("#define MODEL_INPUT_SIZE 1\n#define MODEL_OUTPUT_SIZE 4\n")
    (src / "model.c").write_text(f'#include "{LIBRARY}/at_m0plus.h"\n#include "model.h"\n{REQUANTIZE_CHECK}'
                                 "int model_invoke(const int8_t *input, int8_t *output) {\n"
                                 "    const long bad = check(100000);\n    (void)input;\n"
                                 "    output[0] = (int8_t)bad, output[1] = (int8_t)(bad >> 8);\n"
                                 "    output[2] = (int8_t)(bad >> 16), output[3] = (int8_t)(bad >> 24);\n"
                                 "    return 0;\n}\n")
    firmware = build(src, "rp2040", cache_dir=tmp_path / "cache")
    assert "at_m0_requantize" in firmware.symbols
    result = Rp2040Sim(firmware.elf_path, xip=False).run(np.zeros(1, np.int8))
    assert result.output.view("<i4")[0] == 0


@pytest.mark.slow
@pytest.mark.parametrize("graph", graphs(), ids=lambda g: g.name)
def test_variants_match_the_executor(graph, tmp_path):
    """200 inputs through the variant on the host (ASan, UBSan) and on rp2040-sim."""
    generated = generate_c(graph, tmp_path / "src")
    assert (generated.out_dir / LIBRARY).is_dir()
    assert ("maxpool" in graph.name) == any(c.symbol == "at_conv_max_pool_s8" for c in generated.kernel_plan.calls)
    shape = graph.tensor(graph.inputs[0]).shape[1:]
    x = np.random.default_rng(7).integers(-128, 128, (N_INPUTS, *shape)).astype(np.int8)
    want = executor.run(graph, x).reshape(N_INPUTS, -1)
    exe = build_host(generated.out_dir, tmp_path / "model", sanitize=True, libraries=(LIBRARY,))
    _assert_same(graph.name, _run_host(exe, x, generated.output_size), want, "the reference executor")
    firmware = build(generated.out_dir, "rp2040", cache_dir=tmp_path / "cache")
    sim = Rp2040Sim(firmware.elf_path, xip=False)
    got = np.stack([sim.run(x[n]).output for n in range(N_INPUTS)])
    _assert_same(graph.name, got, want, "the reference executor (rp2040-sim)")
