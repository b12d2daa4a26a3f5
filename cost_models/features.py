"""Cost features read off the IR: per-op MACs, element counts and weight bytes."""
from __future__ import annotations

import numpy as np

from autotune.ir.graph import Graph, Op
from cost_models.base import ModelFeatures, OpFeatures


def _macs(graph: Graph, op: Op) -> int:
    out = graph.tensors[op.outputs[0]]
    if op.kind == "CONV_2D":
        filt = graph.tensors[op.inputs[1]]  # (out_c, kh, kw, in_c)
        return out.size * int(np.prod(filt.shape[1:]))
    if op.kind == "DEPTHWISE_CONV_2D":
        filt = graph.tensors[op.inputs[1]]  # (1, kh, kw, out_c)
        return out.size * filt.shape[1] * filt.shape[2]
    if op.kind == "FULLY_CONNECTED":
        filt = graph.tensors[op.inputs[1]]  # (units, depth)
        return out.size * filt.shape[1]
    if op.kind in ("AVERAGE_POOL_2D", "MAX_POOL_2D"):
        return out.size * op.options["filter_h"] * op.options["filter_w"]
    if op.kind == "MEAN":
        return graph.tensors[op.inputs[0]].size
    return 0


def extract_features(graph: Graph, activation_bytes: int) -> ModelFeatures:
    ops = []
    for op in graph.ops:
        consts = [graph.tensors[i] for i in op.inputs if i >= 0 and graph.tensors[i].is_constant]
        acts = [graph.tensors[i] for i in op.inputs if i >= 0 and not graph.tensors[i].is_constant]
        out = graph.tensors[op.outputs[0]]
        pointwise = op.kind == "CONV_2D" and graph.tensors[op.inputs[1]].shape[1:3] == (1, 1)
        ops.append(OpFeatures(
            kind=op.kind,
            macs=_macs(graph, op),
            input_elems=sum(t.size for t in acts),
            output_elems=out.size,
            weight_bytes=sum(t.nbytes for t in consts) if op.kind != "RESHAPE" else 0,
            channels=out.shape[-1] if out.shape else 1,
            pointwise=pointwise,
        ))
    return ModelFeatures(ops=tuple(ops), params=graph.parameter_count, activation_bytes=activation_bytes)
