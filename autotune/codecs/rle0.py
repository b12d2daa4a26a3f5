"""rle0: runs of zeros as one token, other bytes as literal runs (_rle.py). For pruned weights
whose zeros come in runs."""
from __future__ import annotations

import numpy as np

from autotune.codecs import _rle
from autotune.codecs.base import Storage


class Rle0(Storage):
    name, codec_id, c_file = "rle0", 3, "at_decode_rle.c"

    def encode_chunk(self, ctx, chunk: np.ndarray) -> bytes:
        return _rle.encode(chunk)

    def decode_chunk(self, ctx, data: bytes, n: int) -> np.ndarray:
        return _rle.decode(data, n)
