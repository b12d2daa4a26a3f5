"""delta_rle: differences of consecutive values (mod 256, the first from 0 at each chunk start),
then the zero-run coding of rle0. For constant or slowly varying data."""
from __future__ import annotations

import numpy as np

from autotune.codecs import _rle
from autotune.codecs.base import Storage


class DeltaRle(Storage):
    name, codec_id, c_file = "delta_rle", 4, "at_decode_rle.c"

    def encode_chunk(self, ctx, chunk: np.ndarray) -> bytes:
        u = chunk.astype(np.uint8)
        return _rle.encode(np.diff(u, prepend=np.uint8(0)))

    def decode_chunk(self, ctx, data: bytes, n: int) -> np.ndarray:
        deltas = _rle.decode(data, n).astype(np.uint8)
        return np.cumsum(deltas, dtype=np.uint8).astype(np.int8)
