"""IR graph -> kernel plan (autotune.ir.kernel_plan): each op lowered by its registry definition.

The plan runs the integer path: a model with float32 edges (QUANTIZE first, DEQUANTIZE last) is
lowered without them, and the generated C takes and returns int8. A weight tensor in a weight
storage (Tensor.encoding) gets a decoder call just before the kernel call that reads it.
"""
from __future__ import annotations

from dataclasses import replace

from autotune.codecs import get_storage
from autotune.errors import CodegenError
from autotune.ir.graph import Graph, tensor_label
from autotune.ir.kernel_plan import KernelCall, KernelPlan, frozen_map
from autotune.ops import OpError, get_op
from autotune.ops.conv import ConvParams, fuse_max_pool
from autotune.ops.layout import concat_slots


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
    (and tensor) the kernel library cannot run. Convolutions whose output outgrows their input
    may be written last pixel first (ConvParams.reverse), a convolution and the max pool after
    it may be one call (conv.fuse_max_pool), concatenations done one input at a time
    (layout.concat_slots), coded weights decoded a few filters at a time (OpDef.filter_at_a_time):
    of the plans with and without each, the one whose arena (input and output in it) is the
    smallest, the plainer on a tie (each of these costs code or cycles, and the fused call runs
    slower on the Helium kernels)."""
    from autotune.codegen.planner import plan_memory  # (autotune.codegen imports this module)

    def shape(plan: KernelPlan) -> tuple:  # what tells two lowerings apart
        return tuple((c.symbol, c.outputs, c.overwrite_lead) for c in plan.calls)

    plans = [_lower(graph, may_reverse=False, fuse=False)]
    choices = ((False, False), (True, False), (False, True), (True, True))  # (may_reverse, fuse)
    variants = [(*c, False) for c in choices[1:]]
    if any(get_op(c.kind).filter_at_a_time(plans[0].graph, c) for c in plans[0].calls):
        variants += [(*c, True) for c in choices]
    for may_reverse, fuse, per_filter in variants:
        plan = _lower(graph, may_reverse, fuse, per_filter)
        if all(shape(plan) != shape(p) for p in plans):
            plans.append(plan)
    if any(c.kind == "CONCATENATION" and len(c.inputs) > 1 for c in plans[0].calls):
        plans += [KernelPlan(p.graph, p.source, concat_slots(p.graph, p.calls, eager))
                  for p in list(plans) for eager in (True, False)]
    if len(plans) == 1:
        return plans[0]
    return min(plans, key=lambda plan: plan_memory(plan).arena_bytes)


def _lower(graph: Graph, may_reverse: bool, fuse: bool, per_filter: bool = False) -> KernelPlan:
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
            p = definition.prepare(core, op)
            for call in definition.lower(core, i, op, p if may_reverse or not isinstance(p, ConvParams)
                                         else replace(p, may_reverse=False)):
                call = per_filter and definition.filter_at_a_time(core, call) or call
                calls += [*decoder_calls(call), call]
        except OpError as e:
            where = tensor_label(core, e.tensor if e.tensor is not None else op.outputs[0])
            raise CodegenError(f"{graph.name}: op {i} {op.kind} ({where}): {e}") from None
    fused: list[KernelCall] = []  # a conv and the max pool right after it in one call, where they may
    for call in calls:
        one = fuse_max_pool(core, fused[-1], call) if fused and fuse else None
        fused[-1:] = [one] if one else fused[-1:] + [call]
    return KernelPlan(core, graph, tuple(fused))


def decoder_calls(call: KernelCall) -> list[KernelCall]:
    """The decoder calls that expand `call`'s coded weights into their scratch, in order: each
    decodes the whole tensor, or, for weights read one filter at a time ("decoded_row"), one
    filter per call of the kernel's loop (the kernel's C calls it); its scratch (the tensor or
    the filters of one pass of the kernel's loop, dims filters_per_pass, then the decoder's own
    work memory, at_decode_<storage>_get_buffer_size) lives until `call` has run."""
    coded = [w for w in call.weights if w.format in ("decoded", "decoded_row")]
    decoders = []
    for k, w in enumerate(coded):
        encoded, decode = w.encoded, w.encoded.decode_call(per_row=w.format == "decoded_row")
        decoders.append(KernelCall(
            op=call.op, kind=call.kind, name=f"{call.name}_{w.role}", symbol=decode.symbol,
            source=get_storage(encoded.storage, **dict(encoded.params)).c_file, inputs=(), outputs=(),
            dims=frozen_map(rows=encoded.rows, row_len=encoded.row_len),
            weights=(replace(w, format="coded", stored_bytes=encoded.bytes),),
            scratch_bytes=_align4(decode.out_bytes * call.dims.get("filters_per_pass", 1)) + decode.scratch_bytes,
            scratch_symbol=f"at_decode_{encoded.storage}_get_buffer_size", scratch_keep=len(coded) - k,
            work=frozen_map(calls=decode.calls, decoded_bytes=encoded.elements, payload_bytes=encoded.payload_bytes)))
    return decoders


def _align4(n: int) -> int:
    return -(-n // 4) * 4
