"""heatshrink: LZSS as the heatshrink library writes it, stream-compatible with the
`heatshrink2` package (raw stream, no header; window and lookahead as parameters).

The encoder is heatshrink2 itself. The stream, read MSB first: tag bit 1 and 8 bits of a
literal byte, or tag bit 0, `window_sz2` bits of offset - 1 and `lookahead_sz2` bits of
length - 1 (a copy from `offset` bytes back, overlapping allowed; before the start of a chunk
the window holds zeros, as the library's does). The last byte is padded with zero bits. The
decoder's window is its own output, so it needs no scratch.
"""
from __future__ import annotations

import heatshrink2
import numpy as np

from autotune.codecs._container import CodecError
from autotune.codecs.base import Storage

MIN_WINDOW, MAX_WINDOW, MIN_LOOKAHEAD = 4, 15, 3


class Heatshrink(Storage):
    name, codec_id, c_file = "heatshrink", 7, "at_decode_heatshrink.c"

    def __init__(self, window_sz2: int = 8, lookahead_sz2: int = 4):
        if not (MIN_WINDOW <= window_sz2 <= MAX_WINDOW and MIN_LOOKAHEAD <= lookahead_sz2 < window_sz2):
            raise CodecError(f"heatshrink: window_sz2 {window_sz2} (4..15) and lookahead_sz2 "
                             f"{lookahead_sz2} (3..window_sz2 - 1)", "header")
        self.window_sz2, self.lookahead_sz2 = window_sz2, lookahead_sz2

    def params(self):
        return (("window_sz2", self.window_sz2), ("lookahead_sz2", self.lookahead_sz2))

    def header_params(self, ctx):
        return self.window_sz2, self.lookahead_sz2

    @classmethod
    def from_header(cls, param0: int, param1: int) -> Storage:
        return cls(param0, param1)

    def encode_chunk(self, ctx, chunk: np.ndarray) -> bytes:
        return heatshrink2.compress(chunk.astype(np.int8).tobytes(), window_sz2=self.window_sz2,
                                    lookahead_sz2=self.lookahead_sz2)

    def decode_chunk(self, ctx, data: bytes, n: int) -> np.ndarray:
        w, la = self.window_sz2, self.lookahead_sz2
        bits = int.from_bytes(data, "big") if data else 0
        left = 8 * len(data)  # bits not yet read

        def take(k: int) -> int:
            nonlocal left
            left -= k
            return (bits >> left) & ((1 << k) - 1)

        out = bytearray()
        while len(out) < n:
            literal = left >= 1 and (bits >> (left - 1)) & 1
            if literal and left >= 9:
                take(1)
                out.append(take(8))
            elif not literal and left >= 1 + w + la:
                take(1)
                offset, count = take(w) + 1, take(la) + 1
                if len(out) + count > n:
                    raise CodecError("heatshrink: back-reference past the end", "corrupt")
                for _ in range(count):
                    out.append(out[len(out) - offset] if offset <= len(out) else 0)
            else:
                raise CodecError(f"heatshrink: stream ends after {len(out)} of {n} bytes", "truncated")
        if left >= 8 or bits & ((1 << left) - 1):
            raise CodecError("heatshrink: data after the last value", "corrupt")
        return np.frombuffer(bytes(out), np.int8).copy()
