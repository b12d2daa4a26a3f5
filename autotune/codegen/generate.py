"""Kernel plan -> plain C99: `model.h`, `model.c` and the fixed kernels they call.

`model.c` holds the weights as `static const` arrays, one precomputed parameter struct per kernel
call (integers from the op definitions' `prepare`, exactly TFLM's Prepare() values), the static
activation arena laid out by `planner.plan_memory`, and `<prefix>_invoke`: the kernel plan's
calls in order. No floating point, no allocation, nothing computed at start-up. Each op's C is
written by its registry definition (`OpDef.emit`, autotune.ops); a weight decoder's call
(a coded weight tensor, autotune.codecs) by `CSource.decoder`, and `<prefix>_invoke` returns
its error code if the blob is corrupt.

With `io="arena"` (the default) the input and output live in the arena, which `model.h`
exposes as `<prefix>_arena`: the caller writes the input to `<PREFIX>_INPUT` and calls
`<prefix>_invoke(<PREFIX>_INPUT, <PREFIX>_OUTPUT)`, nothing is copied, and the input's bytes are
reused once it dies. Other pointers are the caller's own buffers: the input is copied in and the
output out (code that `-D<PREFIX>_ARENA_IO_ONLY` leaves out, for callers that never pass them). With `io="caller"` the entry point reads and writes the caller's buffers directly
and the arena holds only what lies between them (the caller pays for both buffers).

A model with float32 edges (QUANTIZE first, DEQUANTIZE last) is generated without them: the C
entry point takes the int8 input of the integer path and returns its int8 output. `model.h`
gives both scales and zero points, so the caller quantizes and dequantizes if it needs floats.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from autotune.codegen.kernel_library import copy_kernels
from autotune.codegen.planner import IO_MODES, MemoryPlan, plan_memory
from autotune.codegen.writer import CSource, comment
from autotune.errors import CodegenError
from autotune.escape import c_comment
from autotune.ir.graph import Graph, tensor_label
from autotune.ir.kernel_plan import KernelPlan
from autotune.lowering import lower
from autotune.ops import get_op

KERNEL_COMMON = ("at_common.h", "at_common.c", "at_kernels.h")  # every model needs these


@dataclass(frozen=True)
class GeneratedC:
    out_dir: Path
    header: Path  # <prefix>.h
    source: Path  # <prefix>.c
    kernel_files: tuple[Path, ...]  # the kernel library files copied beside them
    entry: str  # <prefix>_invoke
    input_size: int  # bytes (int8 elements)
    output_size: int
    kernel_plan: KernelPlan
    plan: MemoryPlan
    io: str  # where the input and output live: "arena" | "caller" (plan_memory)

    @property
    def sources(self) -> tuple[Path, ...]:
        """Every .c file to compile."""
        return (self.source,) + tuple(p for p in self.kernel_files if p.suffix == ".c")

    @property
    def arena_bytes(self) -> int:
        return self.plan.arena_bytes

    @property
    def activation_bytes(self) -> int:
        """The model's activation RAM: the arena, plus the caller's input and output buffers where
        the model does not keep them in its arena."""
        return self.arena_bytes + (self.input_size + self.output_size if self.io == "caller" else 0)


def generate_c(model: Graph | KernelPlan, out_dir: Path | str, prefix: str = "model",
               io: str = "arena") -> GeneratedC:
    """Write `<prefix>.h`, `<prefix>.c` and the kernels they use into `out_dir`; a graph is
    lowered to its kernel plan first.

    The entry point is `int <prefix>_invoke(const int8_t *input, int8_t *output)`; the sizes are
    `<PREFIX>_INPUT_SIZE` and `<PREFIX>_OUTPUT_SIZE` (the device harness expects the default
    prefix). `io` (module docstring): "arena" keeps the input and output in the arena at
    `<PREFIX>_INPUT` and `<PREFIX>_OUTPUT`; "caller": in the caller's buffers, which must not
    overlap (the output buffer may hold intermediate values while the model runs).
    """
    if not re.fullmatch(r"[A-Za-z_]\w*", prefix):
        raise ValueError(f"prefix {prefix!r} is not a C identifier")
    if io not in IO_MODES:
        raise ValueError(f"io must be one of {IO_MODES}, got {io!r}")
    plan = model if isinstance(model, KernelPlan) else lower(model)
    core = plan.graph
    memory = plan_memory(plan, io=io)
    c = CSource(plan, memory, arena="arena" if io == "caller" else f"{prefix}_arena")
    last_op = -1
    for call in plan.calls:
        op = core.ops[call.op]
        if call.op != last_op:
            c.line(_op_comment(core, call.op))
            last_op = call.op
        try:
            if call.decodes:
                c.decoder(call)
            else:
                get_op(op.kind).emit(c, call)
        except (ValueError, KeyError) as e:
            raise CodegenError(f"{core.name}: op {call.op} {op.kind} (output "
                               f"{tensor_label(core, op.outputs[0])}): {e}") from None

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    header = out_dir / f"{prefix}.h"
    source = out_dir / f"{prefix}.c"
    header.write_text(_header(plan, memory, prefix))
    source.write_text(_source(c, prefix))
    kernel_files = copy_kernels((*KERNEL_COMMON, *sorted(c.kernel_sources)), out_dir)
    return GeneratedC(out_dir, header, source, kernel_files, f"{prefix}_invoke",
                      core.tensor(core.inputs[0]).size, core.tensor(core.outputs[0]).size, plan, memory, io)


def _op_comment(graph: Graph, i: int) -> str:
    op = graph.ops[i]
    shapes = " + ".join("x".join(map(str, graph.tensor(t).shape)) for t in op.inputs
                        if t >= 0 and not graph.tensor(t).is_constant)
    act = op.options.get("activation", "NONE")
    return (f"    /* op {i}: {op.kind} {shapes} -> {'x'.join(map(str, graph.tensor(op.outputs[0]).shape))}"
            f"{'' if act == 'NONE' else ', ' + act} */")


def _arena_tail(plan: KernelPlan) -> str:
    """What the arena's size gains past the planned bytes: AT_WEIGHT_TAIL (at_kernels.h) where a
    kernel reads weights a decoder wrote into the arena, as it reads them past their end in a
    weight array's tail."""
    decoded = any(w.format == "decoded" for call in plan.calls for w in call.weights)
    return " + AT_WEIGHT_TAIL" if decoded else ""


def _header(plan: KernelPlan, memory: MemoryPlan, prefix: str) -> str:
    g, original, macro = plan.graph, plan.source, prefix.upper()
    inp, out = g.tensor(g.inputs[0]), g.tensor(g.outputs[0])
    guard = f"{macro}_H"
    lines = [
        f"/* generated by autotune from {c_comment(original.name)}; do not edit */",
        f"#ifndef {guard}", f"#define {guard}", "", "#include <stdint.h>",
        *(['#include "at_kernels.h" /* AT_WEIGHT_TAIL */'] if _arena_tail(plan) and memory.io == "arena" else []), "",
    ]
    for what, t, float_edge in (("INPUT", inp, original.inputs != g.inputs),
                                ("OUTPUT", out, original.outputs != g.outputs)):
        scale, zp = t.quant.scale[0], t.quant.zero_point[0]
        shape = "x".join(map(str, t.shape))
        lines.append(f"/* {what.lower()}: int8 {shape}, real value = {scale!r} * (q - ({zp})) */")
        if float_edge:
            lines.append("/* (the .tflite model has a float32 "
                         + ("input: quantize q = round(x / scale) + zero point, clamped to int8"
                            if what == "INPUT" else "output: dequantize it as above") + ") */")
        lines += [f"#define {macro}_{what}_SIZE {t.size}",
                  f"#define {macro}_{what}_ZERO_POINT ({zp})", ""]
    if memory.io == "caller":
        lines += [
            "/* static RAM the model uses besides the caller's input and output buffers */",
            f"#define {macro}_ARENA_SIZE {memory.arena_bytes}", "",
            f"/* Runs the model on one int8 input; writes {macro}_OUTPUT_SIZE int8 values to output.",
            " * input and output must not overlap. Returns 0, or a negative AT_DECODE_E_* code",
            " * (at_decode.h) if a weight blob is corrupt. */",
        ]
    else:
        at = {what: memory.offset_of(t) for what, t in (("INPUT", g.inputs[0]), ("OUTPUT", g.outputs[0]))}
        lines += [
            "/* static RAM of the model's activations, its input and output included */",
            f"#define {macro}_ARENA_SIZE {memory.arena_bytes}", "",
            "/* The model's own input and output buffers lie in its arena: write the input to",
            f" * {macro}_INPUT, call {prefix}_invoke({macro}_INPUT, {macro}_OUTPUT), read {macro}_OUTPUT. */",
            f"extern union {prefix}_arena {{",
            "    int32_t align;", f"    int8_t bytes[{macro}_ARENA_SIZE{_arena_tail(plan)}];", f"}} {prefix}_arena;",
            f"#define {macro}_INPUT_OFFSET {at['INPUT']}", f"#define {macro}_OUTPUT_OFFSET {at['OUTPUT']}",
            f"#define {macro}_INPUT ({prefix}_arena.bytes + {macro}_INPUT_OFFSET)",
            f"#define {macro}_OUTPUT ({prefix}_arena.bytes + {macro}_OUTPUT_OFFSET)", "",
            f"/* Runs the model on one int8 input; writes {macro}_OUTPUT_SIZE int8 values to output.",
            f" * input and output are {macro}_INPUT and {macro}_OUTPUT (nothing is copied), or the",
            " * caller's own buffers outside the arena (copied in and out). The model overwrites",
            f" * {macro}_INPUT. Returns 0, or a negative AT_DECODE_E_* code (at_decode.h) if a",
            f" * weight blob is corrupt. A program that only ever passes {macro}_INPUT and",
            f" * {macro}_OUTPUT may compile {prefix}.c with -D{macro}_ARENA_IO_ONLY: no copy code then. */",
        ]
    lines += [
        f"int {prefix}_invoke(const int8_t *input, int8_t *output);", "",
        f"#endif /* {guard} */", "",
    ]
    return "\n".join(lines)


def _source(c: CSource, prefix: str) -> str:
    g, memory = c.graph, c.memory
    prologue, epilogue = ([], []) if memory.io == "caller" else _copies(prefix.upper())
    uses_memcpy = any("memcpy(" in line for line in c.body + prologue)
    lines = [
        f"/* generated by autotune from {c_comment(g.name)}; do not edit */",
        *(["#include <string.h>", ""] if uses_memcpy else []),
        f'#include "{prefix}.h"', '#include "at_kernels.h"',
        *(['#include "at_decode.h"'] if "at_decode.h" in c.kernel_sources else []), "",
        "/*", *(" * " + ln for ln in comment(memory.format(g)).splitlines()), " */", "",
    ]
    if memory.io == "caller" and memory.arena_bytes:
        lines += [
            "/* The activation arena. Tensor offsets are multiples of 4: word-aligned. */",
            "static union {", "    int32_t align;", f"    int8_t bytes[{memory.arena_bytes}{_arena_tail(c.plan)}];",
            "} arena;", "",
        ]
    elif memory.io == "arena":
        lines += ["/* The activation arena, input and output included. Tensor offsets are multiples of 4. */",
                  f"union {prefix}_arena {prefix}_arena;", ""]
    lines += c.decls
    lines += [f"int {prefix}_invoke(const int8_t *input, int8_t *output)", "{", *prologue]
    lines += [decl for _, decl in sorted(c.pointers.items()) if decl]
    lines += ["", *c.body, *epilogue, "    return 0;", "}", ""]
    return "\n".join(lines)


def _copies(macro: str) -> tuple[list[str], list[str]]:
    """The arena entry's prologue and epilogue: the caller's input copied in and the output out,
    unless they are the model's own buffers; after the prologue `input` and `output` are those.
    None where <MACRO>_ARENA_IO_ONLY says the caller only ever passes them."""
    prologue = [f"#ifndef {macro}_ARENA_IO_ONLY", "    int8_t *const caller_output = output;",
                f"    if (input != {macro}_INPUT) {{", f"        memcpy({macro}_INPUT, input, {macro}_INPUT_SIZE);",
                "    }", f"    input = {macro}_INPUT;", f"    output = {macro}_OUTPUT;", "#endif",
                "    (void)input;", "    (void)output;"]
    epilogue = [f"#ifndef {macro}_ARENA_IO_ONLY", f"    if (caller_output != {macro}_OUTPUT) {{",
                f"        memcpy(caller_output, {macro}_OUTPUT, {macro}_OUTPUT_SIZE);", "    }", "#endif"]
    return prologue, epilogue
