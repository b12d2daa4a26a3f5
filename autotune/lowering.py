"""IR graph -> kernel plan (autotune.ir.kernel_plan): each op lowered by its registry definition.

The plan runs the integer path: a model with float32 edges (QUANTIZE first, DEQUANTIZE last) is
lowered without them, and the generated C takes and returns int8.
"""
from __future__ import annotations

from autotune.errors import CodegenError
from autotune.ir.graph import Graph, tensor_label
from autotune.ir.kernel_plan import KernelPlan
from autotune.ops import OpError, get_op


def integer_core(graph: Graph) -> Graph:
    """`graph` without a float32 -> int8 QUANTIZE at its input or an int8 -> float32 DEQUANTIZE at
    its output: the integer path the generated C runs. Other graphs come back unchanged."""
    ops, inputs, outputs = list(graph.ops), list(graph.inputs), list(graph.outputs)
    for k, t in enumerate(inputs):
        edge = [op for op in ops if op.kind == "QUANTIZE" and op.inputs[0] == t]
        if graph.tensor(t).dtype == "float32" and len(edge) == 1:
            inputs[k] = edge[0].outputs[0]
            ops.remove(edge[0])
    for k, t in enumerate(outputs):
        edge = [op for op in ops if op.kind == "DEQUANTIZE" and op.outputs[0] == t]
        if graph.tensor(t).dtype == "float32" and len(edge) == 1:
            outputs[k] = edge[0].inputs[0]
            ops.remove(edge[0])
    if (ops, inputs, outputs) == (graph.ops, graph.inputs, graph.outputs):
        return graph
    return Graph(graph.name, graph.tensors, ops, inputs, outputs)


def lower(graph: Graph) -> KernelPlan:
    """The kernel calls that run `graph`'s integer path, in order. CodegenError names the op
    (and tensor) the kernel library cannot run."""
    core = integer_core(graph)
    if len(core.inputs) != 1 or len(core.outputs) != 1:
        raise CodegenError(f"{graph.name}: the C entry point takes one input and one output, "
                           f"the graph has {len(core.inputs)} and {len(core.outputs)}")
    for t in (core.inputs[0], core.outputs[0]):
        if core.tensor(t).dtype != "int8":
            raise CodegenError(f"{graph.name}: {tensor_label(core, t)} is {core.tensor(t).dtype}, "
                               "the C entry point takes and returns int8")
    calls = []
    for i, op in enumerate(core.ops):
        try:
            definition = get_op(op.kind)
            calls += definition.lower(core, i, op, definition.prepare(core, op))
        except OpError as e:
            where = tensor_label(core, e.tensor if e.tensor is not None else op.outputs[0])
            raise CodegenError(f"{graph.name}: op {i} {op.kind} ({where}): {e}") from None
    return KernelPlan(core, graph, tuple(calls))
