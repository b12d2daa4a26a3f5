"""sparse: (gap, value) byte pairs: `gap` zeros, then `value`. A gap longer than 255 is bridged
by fillers (255, 0); zeros after the last pair are implicit. For heavily pruned weights."""
from __future__ import annotations

import numpy as np

from autotune.codecs._container import CodecError
from autotune.codecs.base import Storage

MAX_GAP = 255


class Sparse(Storage):
    name, codec_id, c_file = "sparse", 5, "at_decode_sparse.c"

    def encode_chunk(self, ctx, chunk: np.ndarray) -> bytes:
        out, pos = bytearray(), 0
        for p in np.flatnonzero(chunk):
            gap = int(p) - pos
            while gap > MAX_GAP:
                out += bytes((MAX_GAP, 0))  # 255 zeros and one more
                gap -= MAX_GAP + 1
            out += bytes((gap, int(chunk[p]) & 0xFF))
            pos = int(p) + 1
        return bytes(out)

    def decode_chunk(self, ctx, data: bytes, n: int) -> np.ndarray:
        if len(data) % 2:
            raise CodecError("sparse: odd payload, a pair cut short", "truncated")
        out, pos = np.zeros(n, np.int8), 0
        for i in range(0, len(data), 2):
            pos += data[i]
            if pos >= n:
                raise CodecError(f"sparse: index {pos} beyond {n} values", "corrupt")
            out[pos] = np.int8(np.uint8(data[i + 1]))
            pos += 1
        return out
