"""`auto`: per tensor, the smallest storage whose decode fits a cycle budget.

Decode cycles are predicted with the per-storage fit that `make bench BENCH=codecs` writes to
cost_models/codec_cycles.json (measured on rp2040-sim): cycles = per call + per output byte x
decoded bytes + per payload byte x payload bytes. Dense int8 costs no decode: kernels read it
in place.
"""
from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from autotune.codecs._container import CodecError
from autotune.codecs.base import Encoded, Storage
from autotune.codecs.registry import get_storage

CYCLES_FILE = Path(__file__).resolve().parents[2] / "cost_models" / "codec_cycles.json"


@dataclass(frozen=True)
class CycleModel:
    """Decode cycles of a storage on one core, fitted to simulator measurements."""

    source: str  # "predicted:codec-cycles fit (measured:rp2040-sim, ...)": a fit to measurements
    per_call: dict[str, float]
    per_output_byte: dict[str, float]
    per_payload_byte: dict[str, float]

    def cycles(self, encoded: Encoded) -> float:
        """Cycles to decode the whole tensor once."""
        if encoded.storage == "dense":
            return 0.0
        name = encoded.storage
        if name not in self.per_call:
            raise CodecError(f"{self.source}: no decode cycles fitted for storage {name!r}")
        return (self.per_call[name] + self.per_output_byte[name] * encoded.elements
                + self.per_payload_byte[name] * encoded.payload_bytes)


@functools.cache
def load_cycle_model(path: Path = CYCLES_FILE) -> CycleModel:
    try:
        data = json.loads(Path(path).read_text())
        fits = data["storages"]
        return CycleModel(f"predicted:codec-cycles fit ({data['source']})",
                          {k: v["cycles_per_call"] for k, v in fits.items()},
                          {k: v["cycles_per_output_byte"] for k, v in fits.items()},
                          {k: v["cycles_per_payload_byte"] for k, v in fits.items()})
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise CodecError(f"{path}: no usable decode-cycle fit ({e}); run `make bench BENCH=codecs`") from None


def default_candidates() -> tuple[Storage, ...]:
    """The storages `auto` tries; those that cannot hold a tensor are skipped. rANS at every
    frequency scale: a coarse one makes the table of a few levels small (one byte a frequency),
    a fine one codes a wide alphabet closely; which is smaller depends on the tensor. Binned rANS
    keeps 2 leading bits of a magnitude in its symbol: a smaller table, slightly worse coding of
    the rest (1 or 3 bits gained a few bytes more on trained weights, for 3x the encoding time).
    Grid rANS holds only low-bit weights (their levels are its symbols)."""
    return (get_storage("dense"), get_storage("bitpack", bits=2), get_storage("bitpack", bits=4),
            get_storage("palette"), get_storage("rle0"), get_storage("delta_rle"), get_storage("sparse"),
            *(get_storage("rans", scale_bits=b) for b in range(8, 14)),
            *(get_storage("rans_binned", scale_bits=b, lead_bits=2) for b in range(8, 14)),
            *(get_storage("rans_grid", scale_bits=b) for b in range(8, 14)),
            get_storage("heatshrink", window_sz2=8, lookahead_sz2=4), get_storage("lz4"))


@dataclass(frozen=True)
class Choice:
    encoded: Encoded
    decode_cycles: float  # predicted, by `source`
    source: str
    considered: tuple[tuple[str, int, float], ...]  # (storage and params, bytes, predicted cycles)


def choose(values: np.ndarray, rows: int | None = None, per_row: bool = False,
           max_decode_cycles: float | None = None, candidates: tuple[Storage, ...] | None = None,
           model: CycleModel | None = None) -> Choice:
    """The smallest blob among `candidates` whose predicted decode cycles are within
    `max_decode_cycles` (no limit if None); dense int8 if nothing else fits."""
    model = model or load_cycle_model()
    tried = []
    for storage in candidates or default_candidates():
        if storage.unfit(np.asarray(values).reshape(-1)) is None:
            encoded = storage.encode(values, rows, per_row)
            tried.append((encoded, model.cycles(encoded)))
    fits = [(e, c) for e, c in tried if max_decode_cycles is None or c <= max_decode_cycles]
    if not fits:
        dense = get_storage("dense").encode(values, rows, per_row)
        fits = [(dense, model.cycles(dense))]
    best, cycles = min(fits, key=lambda ec: (ec[0].bytes, ec[1]))
    considered = tuple((_label(e), e.bytes, round(c, 1)) for e, c in tried)
    return Choice(best, cycles, model.source, considered)


def _label(e: Encoded) -> str:
    return e.storage + "".join(f" {k}={v}" for k, v in e.params)
