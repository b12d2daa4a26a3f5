"""bitpack: b-bit two's complement values, packed LSB first; a row starts on a byte in the
per-row layout. For b = 4 and 2 this is the layout packed-weight kernels read directly:
value i of a row in byte i*b/8, bits (i*b) % 8 upwards, sign-extended from bit b-1."""
from __future__ import annotations

import numpy as np

from autotune.codecs import _bits
from autotune.codecs._container import CodecError
from autotune.codecs.base import Storage


class BitPack(Storage):
    name, codec_id, c_file, fixed_rows = "bitpack", 1, "at_decode_bitpack.c", True

    def __init__(self, bits: int = 4):
        if not 1 <= bits <= 7:
            raise CodecError(f"bitpack: bits must be 1 to 7, got {bits}", "header")
        self.bits = bits

    def params(self):
        return (("bits", self.bits),)

    def header_params(self, ctx):
        return self.bits, 0

    @classmethod
    def from_header(cls, param0: int, param1: int) -> Storage:
        if param1:
            raise CodecError("bitpack: param1 must be 0", "header")
        return cls(param0)

    def unfit(self, values: np.ndarray) -> str | None:
        lo, hi = -(1 << (self.bits - 1)), (1 << (self.bits - 1)) - 1
        if values.min() < lo or values.max() > hi:
            return f"values {values.min()}..{values.max()} outside the {self.bits}-bit levels {lo}..{hi}"
        return None

    def encode_chunk(self, ctx, chunk: np.ndarray) -> bytes:
        return _bits.pack(chunk.astype(np.int16) & ((1 << self.bits) - 1), self.bits)

    def decode_chunk(self, ctx, data: bytes, n: int) -> np.ndarray:
        if len(data) != _bits.packed_bytes(n, self.bits):
            raise CodecError(f"bitpack: {len(data)} bytes for {n} values", "corrupt")
        f = _bits.unpack(data, self.bits, n).astype(np.int16)
        return (f - ((f >> (self.bits - 1)) << self.bits)).astype(np.int8)

    def chunk_bytes(self, ctx, n: int) -> int:
        return _bits.packed_bytes(n, self.bits)
