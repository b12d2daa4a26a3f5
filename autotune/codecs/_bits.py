"""Fields of `bits` bits packed LSB first (element i at bit i x bits), as at_decode_common.c reads them."""
from __future__ import annotations

import numpy as np


def pack(fields: np.ndarray, bits: int) -> bytes:
    """Unsigned fields < 2**bits, packed; the last byte padded with zero bits."""
    if bits == 0:
        return b""
    f = np.asarray(fields, np.uint8).reshape(-1, 1)
    planes = (f >> np.arange(bits, dtype=np.uint8)) & 1
    return np.packbits(planes.reshape(-1), bitorder="little").tobytes()


def unpack(data: bytes, bits: int, n: int) -> np.ndarray:
    """`n` unsigned fields (uint8) from packed bytes."""
    if bits == 0:
        return np.zeros(n, np.uint8)
    planes = np.unpackbits(np.frombuffer(data, np.uint8), bitorder="little")[:n * bits]
    weights = (1 << np.arange(bits)).astype(np.uint16)
    return (planes.reshape(n, bits) * weights).sum(1).astype(np.uint8)


def packed_bytes(n: int, bits: int) -> int:
    return (n * bits + 7) // 8
