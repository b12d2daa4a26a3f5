"""palette: the tensor's K distinct values as a table, each weight a packed index into it
(the storage of a clustered layer). Index bits = ceil(log2 K), 0 for a constant tensor."""
from __future__ import annotations

import numpy as np

from autotune.codecs import _bits
from autotune.codecs._container import CodecError
from autotune.codecs.base import Storage

MAX_ENTRIES = 128  # 7-bit indices; beyond that dense int8 is smaller


def index_bits(k: int) -> int:
    return max(0, int(k - 1).bit_length())


class Palette(Storage):
    name, codec_id, c_file, fixed_rows = "palette", 2, "at_decode_palette.c", True

    @classmethod
    def from_header(cls, param0: int, param1: int) -> Storage:
        return cls()  # both parameters describe the table: checked in parse_table

    def unfit(self, values: np.ndarray) -> str | None:
        k = len(np.unique(values))
        return f"{k} distinct values, the palette holds at most {MAX_ENTRIES}" if k > MAX_ENTRIES else None

    def table(self, values: np.ndarray):
        palette = np.unique(values).astype(np.int8)
        return palette.tobytes(), palette

    def header_params(self, palette):
        return index_bits(len(palette)), len(palette) - 1

    def parse_table(self, table: bytes, param0: int, param1: int):
        k = param1 + 1
        if k > MAX_ENTRIES or param0 != index_bits(k) or len(table) != k:
            raise CodecError(f"palette: {len(table)} table bytes, {k} entries, {param0}-bit indices", "header")
        return np.frombuffer(table, np.int8)

    def encode_chunk(self, palette, chunk: np.ndarray) -> bytes:
        return _bits.pack(np.searchsorted(palette, chunk), index_bits(len(palette)))

    def decode_chunk(self, palette, data: bytes, n: int) -> np.ndarray:
        bits = index_bits(len(palette))
        if len(data) != _bits.packed_bytes(n, bits):
            raise CodecError(f"palette: {len(data)} bytes for {n} indices", "corrupt")
        idx = _bits.unpack(data, bits, n)
        if idx.size and idx.max() >= len(palette):
            raise CodecError(f"palette: index {idx.max()} beyond {len(palette)} entries", "corrupt")
        return palette[idx]

    def chunk_bytes(self, palette, n: int) -> int:
        return _bits.packed_bytes(n, index_bits(len(palette)))
