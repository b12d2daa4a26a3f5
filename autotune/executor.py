"""Reference executor: runs an integer IR graph on a batch of inputs, bit-exact with TFLite Micro.

Each op runs its registry definition's reference kernel (`OpDef.run`, autotune.ops), which mirrors
TFLM's reference kernel and reads the integers `OpDef.prepare` derives, the same ones the
generated C uses. Kernels are vectorised over the batch: activations are arrays
(N, *tensor.shape[1:]), the graph's batch of 1 becoming N. Convolutions accumulate with BLAS
float matrix products, which are exact: every partial sum is an integer below 2**24 (float32,
checked per layer) or 2**53 (float64).
"""
from __future__ import annotations

import numpy as np

from autotune.ir.graph import Graph
from autotune.ops import get_op
from autotune.ops.quantize import quantize_float


def quantize_input(graph: Graph, x: np.ndarray) -> np.ndarray:
    """Float data -> what `run` takes for the graph's input: int8 as TFLM's QUANTIZE would produce
    it, or the float32 data itself when the graph quantizes its own input."""
    t = graph.tensor(graph.inputs[0])
    x = np.asarray(x, dtype=np.float32)
    if t.dtype == "float32":
        return x
    return quantize_float(x, t.quant.scale[0], t.quant.zero_point[0])


def run_layers(graph: Graph, x: np.ndarray) -> dict[int, np.ndarray]:
    """Every activation tensor (graph input included), by tensor index, each (N, *shape[1:])."""
    t = graph.tensor(graph.inputs[0])
    x = np.asarray(x)
    if x.shape[1:] != t.shape[1:] or x.dtype != np.dtype(t.dtype):
        raise ValueError(f"{graph.name}: input must be {t.dtype} (N, {', '.join(map(str, t.shape[1:]))}), "
                         f"got {x.dtype} {x.shape} (quantize_input converts float data)")
    values = {graph.inputs[0]: x}
    for op in graph.ops:
        definition = get_op(op.kind)
        # the tensors a kernel computes on; the other inputs (weights, shapes, axes) are in its params
        args = [values[i] if i in values else graph.tensor(i).data for i in op.inputs[:definition.data_inputs(op)]]
        values[op.outputs[0]] = definition.run(graph, op, definition.prepare(graph, op), *args)
    return values


# Examples per call of run_layers: its largest activation at about this many elements. Int64
# intermediates that stay in cache run about 3x faster than one pass over 10,000 images.
CHUNK_ELEMENTS = 1 << 20


def run(graph: Graph, x: np.ndarray) -> np.ndarray:
    """The graph's (first) output for a batch x of shape (N, *input_shape[1:]): int8, or float32
    when the graph ends in DEQUANTIZE. Large batches run in chunks."""
    largest = max(int(np.prod(graph.tensor(t).shape[1:])) for op in graph.ops for t in op.outputs)
    chunk = max(1, CHUNK_ELEMENTS // max(largest, 1))
    if len(x) <= chunk:
        return run_layers(graph, x)[graph.outputs[0]]
    return np.concatenate([run_layers(graph, x[i:i + chunk])[graph.outputs[0]] for i in range(0, len(x), chunk)])
