"""Which storage each weight tensor of an integer graph takes in flash (Tensor.encoding).

A tensor in a storage other than "none" is decoded by a decoder call of the kernel plan into
planned scratch before its kernel runs (autotune.lowering); its values do not change.
"""
from __future__ import annotations

import itertools
from collections.abc import Mapping
from dataclasses import dataclass, replace

import numpy as np

from autotune.codecs import CodecError, get_storage
from autotune.codecs.auto import default_candidates, load_cycle_model
from autotune.codecs.base import Encoded, unsplittable
from autotune.errors import ConfigError
from autotune.escape import one_line
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


def card_entries(graph: Graph) -> list[dict]:
    """The graph's coded weight tensors as a model card lists them (`weight_storage`): what
    `autotune profile` needs to lower the bundle's model.tflite as its firmware was generated."""
    return [{"tensor": t, "name": graph.tensor(t).name, "storage": e.storage,
             "params": {k: int(v) for k, v in e.params}}
            for t in weight_tensors(graph) for e in (graph.tensor(t).encoding,) if e.storage != "none"]


def card_encodings(graph: Graph, entries: object, where: str) -> dict[int, WeightEncoding]:
    """The encodings of a card's `weight_storage` entries (card_entries; `where` names the card
    and field), checked against `graph`: ConfigError naming the entry that is not a weight tensor
    of `graph` in a storage with valid params that holds its values."""
    if not isinstance(entries, list):
        raise ConfigError(f"{where}: expected a list of weight tensors, got {one_line(repr(entries))}")
    encodings = {}
    for n, entry in enumerate(entries):
        at = f"{where}[{n}]"
        if not isinstance(entry, dict) or set(entry) != {"tensor", "name", "storage", "params"}:
            raise ConfigError(f"{at}: expected tensor, name, storage and params, got {one_line(repr(entry))}")
        t, name, params = entry["tensor"], entry["name"], entry["params"]
        if type(t) is not int or t not in weight_tensors(graph) or graph.tensor(t).name != name:
            raise ConfigError(f"{at}: the model has no weight tensor {one_line(repr(t))} named {one_line(repr(name))}")
        if not isinstance(entry["storage"], str) or not isinstance(params, dict) or not all(
                isinstance(k, str) and type(v) is int for k, v in params.items()):
            raise ConfigError(f"{at}: expected a storage name and params of integers, got "
                              f"{one_line(repr(entry['storage']))} and {one_line(repr(params))}")
        values = graph.tensor(t).data
        try:
            storage = get_storage(entry["storage"], **params)
        except CodecError as exc:
            raise ConfigError(f"{at}: {one_line(str(exc))}") from None
        if problem := unsplittable(values) or storage.unfit(values.reshape(-1)):
            raise ConfigError(f"{at}: {storage.name} cannot hold tensor {t} ({problem})")
        encodings[t] = WeightEncoding(storage.name, storage.params())
    return encodings


@dataclass(frozen=True)
class StorageChoice:
    """The storage chosen for one weight tensor, and the others that could hold it."""

    tensor: int
    encoding: WeightEncoding
    stored_bytes: int  # flash: the blob, or the plain array
    decode_cycles: float  # per inference, predicted by `source` (0 for the plain array)
    source: str
    considered: tuple[tuple[str, int, float], ...]  # (storage and params, bytes, predicted cycles)
    # Every storage within the decode budget smaller than the plain array, smallest first:
    # (encoding, bytes, predicted cycles).
    options: tuple[tuple[WeightEncoding, int, float], ...] = ()


def auto_storage(graph: Graph, max_decode_cycles: float | None = None, tensors: tuple[int, ...] | None = None,
                 candidates: tuple | None = None) -> dict[int, StorageChoice]:
    """Per weight tensor (all by default), the smallest storage whose predicted decode cycles per
    inference fit `max_decode_cycles` (no limit if None); the plain array where no blob is
    smaller than it (a blob carries a 12-byte header and a CRC-32) or none can hold it.
    `candidates`: the storages to try (default: autotune.codecs.auto's)."""
    model = load_cycle_model()
    choices = {}
    for t in weight_tensors(graph) if tensors is None else tensors:
        values, plain = graph.tensor(t).data, graph.tensor(t).logical_bytes
        tried = [(e, model.cycles(e)) for s in candidates or default_candidates()
                 if s.name != "dense" and s.unfit(values.reshape(-1)) is None
                 for e in (s.encode(values),)
                 ] if unsplittable(values) is None else []  # rows too long for a blob: the plain array
        options = tuple(sorted(((WeightEncoding(e.storage, e.params), e.bytes, round(c, 1)) for e, c in tried
                                if e.bytes < plain and (max_decode_cycles is None or c <= max_decode_cycles)),
                               key=lambda o: (o[1], o[2])))
        best = options[0] if options else (WeightEncoding(), plain, 0.0)
        considered = tuple((_label(e.storage, e.params), e.bytes, round(c, 1)) for e, c in tried)
        choices[t] = StorageChoice(t, best[0], best[1], best[2], model.source, considered, options)
    return choices


def _label(storage: str, params: tuple[tuple[str, int], ...]) -> str:
    return storage + "".join(f" {k}={v}" for k, v in params)


def storage_for(graph: Graph, codecs: list[str], max_decode_cycles: float | None = None,
                code_bytes: Mapping[str, int] | None = None) -> dict[int, StorageChoice]:
    """Per weight tensor (weight_tensors order), the storage its codec choice names: "none", the
    plain array; "auto", the smallest within the decode budget; a storage name, the smallest of
    that storage's variants (bit widths for bitpack) that holds the values and is smaller than
    the plain array, else the plain array. With `code_bytes`, the decoders kept are those that
    make weights plus decoder code smallest (worth_their_code)."""
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
    """`choices` with the decoders that make weights plus decoder code smallest (`code_bytes`, by
    kernel file; "at_decode_common.c" shared by all): each tensor takes its best option among the
    decoders kept, the plain array if none. So a decoder stays only where it saves more than its
    code, against the plain arrays and against the other decoders (two tensors a few bytes
    smaller in one storage do not bring a second decoder where another one holds both)."""
    # per tensor its options with their decoder files, best first, then the plain array (no file)
    options = {t: [(get_storage(e.storage, **dict(e.params)).c_file, e, b, cy) for e, b, cy in c.options]
               + [(None, WeightEncoding(), graph.tensor(t).logical_bytes, 0.0)] for t, c in choices.items()}

    def picked(kept: tuple[str, ...]) -> dict[int, tuple[str | None, WeightEncoding, int, float]]:
        return {t: next(o for o in opts if o[0] is None or o[0] in kept) for t, opts in options.items()}

    def flash_and_cycles(pick: dict[int, tuple[str | None, WeightEncoding, int, float]]) -> tuple[int, float]:
        used = {f for f, _, _, _ in pick.values() if f is not None}
        code = sum(code_bytes.get(f, 0) for f in used) + (code_bytes.get("at_decode_common.c", 0) if used else 0)
        return sum(b for _, _, b, _ in pick.values()) + code, sum(cy for _, _, _, cy in pick.values())

    files = sorted({f for opts in options.values() for f, _, _, _ in opts if f is not None})
    # every set of decoders, all first: on a tie the choices stand as they are
    best = min((picked(kept) for n in range(len(files), -1, -1) for kept in itertools.combinations(files, n)),
               key=flash_and_cycles)
    return {t: replace(c, encoding=best[t][1], stored_bytes=best[t][2], decode_cycles=best[t][3])
            for t, c in choices.items()}


def store(graph: Graph, codecs: list[str], max_decode_cycles: float | None = None) -> Graph:
    """`graph` with each weight tensor in the storage its codec choice gives (storage_for), but
    for storages whose decoder's code (on the Cortex-M0+) outweighs what they save."""
    from cost_models.analytic import DECODER_FLASH

    if all(c == "none" for c in codecs):
        return graph
    choices = storage_for(graph, codecs, max_decode_cycles, DECODER_FLASH)
    return with_storage(graph, {t: c.encoding for t, c in choices.items()})
