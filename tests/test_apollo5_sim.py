"""apollo5-sim: QEMU's Cortex-M55 runs the apollo5 image; LLVM's M55 model times its blocks.

The timing model is checked on hand-written instruction sequences whose Cortex-M55 timings are
known (the MVE beat structure: two loads feeding one VMLADAVA take 4 cycles, one load feeding
four take 8), alone and inside firmware run on QEMU; the firmware of generated C must give the
reference executor's outputs.
"""
from __future__ import annotations

import json

import numpy as np
import pytest

import model_zoo
from autotune import executor
from autotune.ir.kernel_plan import KernelPlan, attribute_cycles
from device_runners.apollo5_sim import Apollo5Sim
from device_runners.m55_timing import TAKEN_BRANCH_PENALTY, BlockTiming, Instruction, mca_text, unpredicated
from device_runners.runners import SimulationError, open_runner, runner_image

N_INPUTS = 50

TWO_LOADS_ONE_MAC = "vldrb.u8 q0, [r0], #16\nvldrb.u8 q1, [r1], #16\nvmladava.s8 r2, q0, q1"
ONE_LOAD_FOUR_MACS = ("vldrb.u8 q0, [r0], #16\nvmladava.s8 r2, q0, q1\nvmladava.s8 r4, q0, q2\n"
                      "vmladava.s8 r6, q0, q3\nvmladava.s8 r8, q0, q4")


def sim_image(src, tmp_path):
    return runner_image("apollo5-sim", src, "apollo5", cache_dir=tmp_path / "cache")


@pytest.fixture
def timing(sim_cache) -> BlockTiming:
    return BlockTiming(sim_cache)


def test_mve_sequences_take_their_known_cycles(timing):
    """Each MVE instruction holds its pipe for two beats; a load pipe and the integer pipe
    overlap: 2 loads + 1 VMLADAVA = 4 cycles (16 MACs: 4 per cycle), 1 load + 4 VMLADAVA = 8
    (64 MACs: 8 per cycle, the M55's peak). Scalar ALU instructions: one a cycle (llvm-mca does
    not pair them, though the M55 dual-issues some 16-bit ones: scalar code is timed slow)."""
    two, four, scalar = timing.steady_cycles([TWO_LOADS_ONE_MAC, ONE_LOAD_FOUR_MACS,
                                              "adds r0, #1\nadds r1, #1\nadds r2, #1\nadds r3, #1"])
    assert two == pytest.approx(4.0, abs=0.05)
    assert four == pytest.approx(8.0, abs=0.05)
    assert scalar == pytest.approx(4.0, abs=0.05)
    assert timing.steady_cycles([TWO_LOADS_ONE_MAC]) == [two]  # from the cache


def test_blocks_split_inside_vpt_blocks_are_timed_unpredicated(timing):
    """QEMU ends a translation block after a VPT and a predicated VCMP: a block may start inside a
    VPT block (its first instructions predicated by a VPT before it) or end with one open. Both
    reach llvm-mca as the unpredicated instructions, the open VPT as the VCMP it does."""
    listing = ["vpt.s32 gt, q7, zr", "vshlt.s32 q5, q5, q7", "vqrdmulh.s32 q5, q5, q6", "vptt.s32 lt, q7, zr"]
    code = {}
    for k, text in enumerate(listing):
        code[4 * k] = Instruction(4 * k, 4, text)
    starts_inside = unpredicated(code, sorted(code), [code[4], code[8]])
    assert [i.text for i in starts_inside] == ["vshl.s32 q5, q5, q7", "vqrdmulh.s32 q5, q5, q6"]
    ends_open = mca_text([code[8], code[12]])
    assert ends_open == "vqrdmulh.s32 q5, q5, q6\nvcmp.s32 lt, q7, zr"
    assert all(c > 0 for c in timing.steady_cycles([mca_text(starts_inside), ends_open]))


def test_blocks_split_inside_it_blocks_are_timed_unpredicated(timing):
    """QEMU also ends a block after an SDIV (it may trap), which GCC puts in IT blocks: a block
    starting inside one, or ending with one open, reaches llvm-mca without the IT's condition."""
    listing = ["itt pl", "sdivpl r2, r2, r0", "addpl r3, r2, #0x1", "cmp r1, r3"]
    code = {2 * k: Instruction(2 * k, 2, text) for k, text in enumerate(listing)}
    starts_inside = unpredicated(code, sorted(code), [code[4], code[6]])
    assert [i.text for i in starts_inside] == ["add r3, r2, #0x1", "cmp r1, r3"]
    assert mca_text([code[0], code[2]]) == "nop\nsdiv r2, r2, r0"
    assert all(c > 0 for c in timing.steady_cycles([mca_text(starts_inside), mca_text([code[0], code[2]])]))


def _firmware(tmp_path, sim_cache, body: str, clobbers: str):
    """An image whose model_invoke runs `body` (inline assembly; r0 = input[0] iterations)."""
    src = tmp_path / "src"
    src.mkdir()
    (src / "model.h").write_text(
        "#include <stdint.h>\n#define MODEL_INPUT_SIZE 4\n#define MODEL_OUTPUT_SIZE 4\n"
        "int model_invoke(const int8_t *input, int8_t *output);\n")
    (src / "model.c").write_text(
        '#include "model.h"\n'
        "static int8_t data[4096] __attribute__((aligned(16)));\n"
        "int model_invoke(const int8_t *input, int8_t *output)\n{\n"
        "    register uint32_t n __asm__(\"r3\") = (uint8_t)input[0];\n"
        "    register const int8_t *a __asm__(\"r0\") = data, *b __asm__(\"r1\") = data + 2048;\n"
        f'    __asm__ volatile({json.dumps(body)} : "+r"(n), "+r"(a), "+r"(b) : : {clobbers});\n'
        "    output[0] = 1;\n    return 0;\n}\n")
    return Apollo5Sim(sim_image(src, tmp_path).elf_path, cache_dir=sim_cache)


def _per_iteration(sim: Apollo5Sim) -> float:
    cycles = [r.cycles for r in sim.profile(np.array([[n, 0, 0, 0] for n in (10, 11, 50)], np.int8))]
    assert cycles[2] - cycles[0] == pytest.approx(40 * (cycles[1] - cycles[0]), abs=3)
    return (cycles[2] - cycles[0]) / 40


def test_low_overhead_loop_costs_nothing_per_iteration(tmp_path, sim_cache):
    """A DLS/LE loop of 2 loads + 1 VMLADAVA: 4 cycles an iteration once the loop is cached."""
    body = ("dls lr, r3\n1:\nvldrb.u8 q0, [r0], #16\nvldrb.u8 q1, [r1], #16\n"
            "vmladava.s8 r2, q0, q1\nle lr, 1b\n")
    sim = _firmware(tmp_path, sim_cache, body, '"r2", "lr", "q0", "q1", "memory"')
    assert _per_iteration(sim) == pytest.approx(4.0, abs=0.1)


def test_taken_branch_pays_the_redirect(tmp_path, sim_cache, timing):
    """The same loop closed by SUBS/BNE: llvm-mca's cycles plus the taken-branch penalty."""
    body = ("1:\nvldrb.u8 q0, [r0], #16\nvldrb.u8 q1, [r1], #16\n"
            "vmladava.s8 r2, q0, q1\nsubs r3, #1\nbne 1b\n")
    sim = _firmware(tmp_path, sim_cache, body, '"r2", "q0", "q1", "cc", "memory"')
    steady = timing.steady_cycles([TWO_LOADS_ONE_MAC + "\nsubs r3, #1\nbne 2f"])[0]
    assert _per_iteration(sim) == pytest.approx(steady + TAKEN_BRANCH_PENALTY, abs=0.1)
    assert _per_iteration(sim) > 4.5


def check_outputs(sim: Apollo5Sim, graph, name: str) -> None:
    shape = graph.tensor(graph.inputs[0]).shape[1:]
    x = np.random.default_rng(1).integers(-128, 128, (N_INPUTS, *shape)).astype(np.int8)
    want = executor.run(graph, x).reshape(N_INPUTS, -1)
    got, status = sim.outputs(x)
    assert (status == 0).all()
    bad = np.argwhere(got != want)
    assert not len(bad), (f"{name}: apollo5-sim output differs from the executor on input {bad[0][0]} at "
                          f"{len(bad)} outputs, first output {bad[0][1]}: {got[tuple(bad[0])]} vs {want[tuple(bad[0])]}")


def check_profile(sim: Apollo5Sim, plan: KernelPlan, name: str) -> None:
    """Every call of the kernel plan found among the functions the entry called, by symbol, the
    calls adding up to the invoke's cycles within 1 %."""
    shape = plan.graph.tensor(plan.graph.inputs[0]).shape[1:]
    result = sim.run(np.random.default_rng(2).integers(-128, 128, shape).astype(np.int8))
    profile = attribute_cycles(plan, result.ops)
    assert [p.call for p in profile] == [k for k, c in enumerate(plan.calls) if c.symbol], (name, result.ops)
    assert all(op.kernel.startswith("at_") for op in result.ops), result.ops
    assert sum(p.cycles for p in profile) == pytest.approx(result.cycles, rel=0.01)
    assert sum(p.instructions for p in profile) == result.instructions
    assert result.instructions > 0 and result.cycles > 0


def test_errors_name_the_file(zoo_dir, tmp_path):
    not_firmware = tmp_path / "x.elf"
    not_firmware.write_bytes(b"\x7fELF" + bytes(60))
    with pytest.raises(SimulationError, match=str(not_firmware)):
        open_runner("apollo5-sim", not_firmware)
    _, _, silicon = model_zoo.firmware("dense", zoo_dir, tmp_path, "apollo5")  # MRAM layout: not for QEMU
    with pytest.raises(SimulationError, match="not an apollo5-sim image .* runner_image"):
        open_runner("apollo5-sim", silicon.elf_path)
