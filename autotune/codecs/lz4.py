"""lz4: an LZ4 block (no frame, no size prefix), as `lz4.block.compress(d, store_size=False)`
writes it; the encoder is that package in high-compression mode.

Sequences of: a token (literal count in the high nibble, match length - 4 in the low one, 15
meaning more bytes of 255 follow), the literals, a u16 LE offset (1..65535) and the match length
extension; the last sequence is literals only. Matches copy from the decoder's own output, so
it needs no scratch.
"""
from __future__ import annotations

import lz4.block
import numpy as np

from autotune.codecs._container import CodecError
from autotune.codecs.base import Storage


class Lz4(Storage):
    name, codec_id, c_file = "lz4", 8, "at_decode_lz4.c"

    def encode_chunk(self, ctx, chunk: np.ndarray) -> bytes:
        return lz4.block.compress(chunk.astype(np.int8).tobytes(), mode="high_compression",
                                  compression=12, store_size=False)

    def decode_chunk(self, ctx, data: bytes, n: int) -> np.ndarray:
        out, i = bytearray(), 0

        def length(base: int) -> int:
            nonlocal i
            if base == 15:
                while True:
                    if i >= len(data):
                        raise CodecError("lz4: length cut short", "truncated")
                    base += data[i]
                    i += 1
                    if data[i - 1] != 255 or base > n:
                        break
            return base

        while i < len(data):
            token = data[i]
            i += 1
            lit = length(token >> 4)
            if len(out) + lit > n:
                raise CodecError("lz4: literals past the end", "corrupt")
            if i + lit > len(data):
                raise CodecError("lz4: literals cut short", "truncated")
            out += data[i:i + lit]
            i += lit
            if i == len(data):
                break
            if i + 2 > len(data):
                raise CodecError("lz4: offset cut short", "truncated")
            offset = data[i] | data[i + 1] << 8
            i += 2
            if offset == 0 or offset > len(out):
                raise CodecError(f"lz4: offset {offset} before the start", "corrupt")
            match = length(token & 15) + 4
            if len(out) + match > n:
                raise CodecError("lz4: match past the end", "corrupt")
            for _ in range(match):
                out.append(out[len(out) - offset])
        if len(out) != n:
            raise CodecError(f"lz4: block ends after {len(out)} of {n} bytes", "truncated")
        return np.frombuffer(bytes(out), np.int8).copy()
