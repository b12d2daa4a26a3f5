"""The token stream of rle0 and delta_rle: a control byte c, then
    c < 0x80:  c + 1 literal bytes follow (1..128);
    c >= 0x80: (c & 0x7F) + 1 zero bytes (1..128), nothing follows."""
from __future__ import annotations

import numpy as np

from autotune.codecs._container import CodecError

MAX_RUN = 128
MIN_ZERO_RUN = 2  # a lone zero costs as much in a literal run as a token of its own


def encode(data: np.ndarray) -> bytes:
    b = np.asarray(data).astype(np.uint8).tobytes()
    out, literals, i = bytearray(), bytearray(), 0

    def flush():
        for k in range(0, len(literals), MAX_RUN):
            part = literals[k:k + MAX_RUN]
            out.append(len(part) - 1)
            out.extend(part)
        literals.clear()

    while i < len(b):
        run = 0
        while i + run < len(b) and b[i + run] == 0:
            run += 1
        if run >= MIN_ZERO_RUN:
            flush()
            i += run
            while run:
                step = min(run, MAX_RUN)
                out.append(0x80 | (step - 1))
                run -= step
        else:
            literals.append(b[i])
            i += 1
    flush()
    return bytes(out)


def decode(data: bytes, n: int) -> np.ndarray:
    out, i = bytearray(), 0
    while len(out) < n:
        if i >= len(data):
            raise CodecError(f"RLE stream ends after {len(out)} of {n} values", "truncated")
        c = data[i]
        i += 1
        count = (c & 0x7F) + 1
        if len(out) + count > n:
            raise CodecError(f"RLE run of {count} past the end ({len(out)} of {n})", "corrupt")
        if c & 0x80:
            out.extend(bytes(count))
        else:
            if i + count > len(data):
                raise CodecError("RLE literals past the end of the stream", "truncated")
            out.extend(data[i:i + count])
            i += count
    if i != len(data):
        raise CodecError(f"{len(data) - i} bytes after the last RLE token", "corrupt")
    return np.frombuffer(bytes(out), np.int8).copy()
