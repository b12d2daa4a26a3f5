"""Which storage each weight tensor of an integer graph takes in flash (Tensor.encoding).

A tensor in a storage other than "none" is decoded by a decoder call of the kernel plan into
planned scratch before its kernel runs (autotune.lowering); its values do not change.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace

from autotune.codecs import get_storage
from autotune.codecs.auto import choose, default_candidates
from autotune.ir.graph import Graph, WeightEncoding

# The ops whose weights (input 1) a kernel reads as an int8 array that a decoder can write.
WEIGHTED_OPS = ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED")


def weight_tensors(graph: Graph) -> tuple[int, ...]:
    """The int8 weight tensors of the graph's convolutions and fully connected layers, in op order."""
    found: list[int] = []
    for op in graph.ops:
        t = op.inputs[1] if op.kind in WEIGHTED_OPS and len(op.inputs) > 1 else -1
        if t >= 0 and graph.tensor(t).is_constant and graph.tensor(t).dtype == "int8" and t not in found:
            found.append(t)
    return tuple(found)


def with_storage(graph: Graph, encodings: Mapping[int, WeightEncoding]) -> Graph:
    """`graph` with the weight tensors in `encodings` (tensor index -> encoding) stored so."""
    unknown = set(encodings) - set(weight_tensors(graph))
    if unknown:
        raise ValueError(f"{graph.name}: tensors {sorted(unknown)} are not weight tensors")
    tensors = [replace(t, encoding=encodings[i]) if i in encodings else t for i, t in enumerate(graph.tensors)]
    return Graph(graph.name, tensors, graph.ops, graph.inputs, graph.outputs)


@dataclass(frozen=True)
class StorageChoice:
    """The storage `auto` chose for one weight tensor, and the others it tried."""

    tensor: int
    encoding: WeightEncoding
    stored_bytes: int  # flash: the blob, or the plain array
    decode_cycles: float  # per inference, predicted by `source` (0 for the plain array)
    source: str
    considered: tuple[tuple[str, int, float], ...]  # (storage and params, bytes, predicted cycles)


def auto_storage(graph: Graph, max_decode_cycles: float | None = None, tensors: tuple[int, ...] | None = None,
                 candidates: tuple | None = None) -> dict[int, StorageChoice]:
    """Per weight tensor (all by default), the smallest storage whose predicted decode cycles per
    inference fit `max_decode_cycles` (no limit if None); the plain array where no blob is
    smaller than it (a blob carries a 20-byte header and CRC-32). `candidates`: the storages to
    try (default: autotune.codecs.auto's)."""
    choices = {}
    for t in weight_tensors(graph) if tensors is None else tensors:
        c = choose(graph.tensor(t).data, max_decode_cycles=max_decode_cycles, candidates=candidates)
        plain = graph.tensor(t).logical_bytes
        if c.encoded.storage == "dense" or c.encoded.bytes >= plain:
            choices[t] = StorageChoice(t, WeightEncoding(), plain, 0.0, c.source, c.considered)
        else:
            choices[t] = StorageChoice(t, WeightEncoding(c.encoded.storage, c.encoded.params), c.encoded.bytes,
                                       c.decode_cycles, c.source, c.considered)
    return choices


def storage_for(graph: Graph, codecs: list[str], max_decode_cycles: float | None = None,
                code_bytes: Mapping[str, int] | None = None) -> dict[int, StorageChoice]:
    """Per weight tensor (weight_tensors order), the storage its codec choice names: "none", the
    plain array; "auto", the smallest within the decode budget; a storage name, the smallest of
    that storage's variants (bit widths for bitpack) that holds the values and is smaller than
    the plain array, else the plain array. With `code_bytes`, a storage that saves less flash
    than its decoder's code is dropped (worth_their_code)."""
    tensors = weight_tensors(graph)
    if len(codecs) != len(tensors):
        raise ValueError(f"{graph.name}: {len(codecs)} storage choices for {len(tensors)} weight tensors")
    choices = {}
    for t, codec in zip(tensors, codecs):
        if codec == "none":
            continue
        candidates = None if codec == "auto" else tuple(
            s for s in default_candidates() if s.name == codec) or (get_storage(codec),)
        choices |= auto_storage(graph, max_decode_cycles if codec == "auto" else None, (t,), candidates)
    return worth_their_code(graph, choices, code_bytes or {})


def worth_their_code(graph: Graph, choices: dict[int, StorageChoice],
                     code_bytes: Mapping[str, int]) -> dict[int, StorageChoice]:
    """`choices` less the storages whose tensors save fewer bytes of flash than their decoder's
    code (`code_bytes`, by kernel file; "at_decode_common.c" shared by all), which then stay
    plain arrays: on a small model a decoder can cost more flash than it saves."""
    def saved(group: list[int]) -> int:
        return sum(graph.tensor(t).logical_bytes - choices[t].stored_bytes for t in group)

    groups: dict[str, list[int]] = {}
    for t, c in choices.items():
        if c.encoding.storage != "none":
            groups.setdefault(get_storage(c.encoding.storage, **dict(c.encoding.params)).c_file, []).append(t)
    kept = {f: g for f, g in groups.items() if saved(g) > code_bytes.get(f, 0)}
    if sum(saved(g) - code_bytes.get(f, 0) for f, g in kept.items()) <= code_bytes.get("at_decode_common.c", 0):
        kept = {}
    plain = {t for f, g in groups.items() if f not in kept for t in g}
    return {t: replace(c, encoding=WeightEncoding(), stored_bytes=graph.tensor(t).logical_bytes, decode_cycles=0.0)
            if t in plain else c for t, c in choices.items()}


def store(graph: Graph, codecs: list[str], max_decode_cycles: float | None = None) -> Graph:
    """`graph` with each weight tensor in the storage its codec choice gives (storage_for), but
    for storages whose decoder's code (on the Cortex-M0+) outweighs what they save."""
    from cost_models.analytic import DECODER_FLASH

    if all(c == "none" for c in codecs):
        return graph
    choices = storage_for(graph, codecs, max_decode_cycles, DECODER_FLASH)
    return with_storage(graph, {t: c.encoding for t, c in choices.items()})
