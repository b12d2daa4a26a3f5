"""dense: the int8 values as they are. A kernel can read them in place (no decode, no scratch)."""
from __future__ import annotations

import numpy as np

from autotune.codecs._container import CodecError
from autotune.codecs.base import Storage


class Dense(Storage):
    name, codec_id, c_file, fixed_rows = "dense", 0, "at_decode_dense.c", True

    def encode_chunk(self, ctx, chunk: np.ndarray) -> bytes:
        return chunk.astype(np.int8).tobytes()

    def decode_chunk(self, ctx, data: bytes, n: int) -> np.ndarray:
        if len(data) != n:
            raise CodecError(f"dense: {len(data)} bytes for {n} values", "corrupt")
        return np.frombuffer(data, np.int8).copy()

    def chunk_bytes(self, ctx, n: int) -> int:
        return n
