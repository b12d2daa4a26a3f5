"""rans: range asymmetric numeral systems with a static table, the entropy coder that reaches the
empirical entropy within a fraction of a percent (Huffman cannot go below one bit per weight,
which pruned tensors need).

Byte-wise renormalisation as in ryg_rans (state in [2^23, 2^31)), frequencies quantised to a
total of 2^scale_bits. Table: a 32-byte bitmap of the symbols present (bit v for the byte
value v), then each present symbol's frequency as a LEB128 varint, in symbol order. A chunk is
the final encoder state (u32 LE) followed by the renormalisation bytes; decoding ends with the
state back at 2^23 and every byte read, which catches most corruption even without the CRC.
The decoder builds cumulative frequencies and the symbol list in scratch (3 x symbols + 2 bytes)
and finds each symbol by binary search.
"""
from __future__ import annotations

import numpy as np

from autotune.codecs._container import CodecError
from autotune.codecs.base import Storage

RANS_L = 1 << 23


def quantize_frequencies(counts: np.ndarray, total: int) -> np.ndarray:
    """Integer frequencies >= 1 summing to `total`, close to `counts` in coding cost."""
    counts = np.asarray(counts, np.float64)
    freq = np.maximum(1, np.floor(counts * total / counts.sum())).astype(np.int64)
    # Hand out (or take back) the difference one unit at a time where it costs least.
    while freq.sum() != total:
        if freq.sum() < total:
            gain = counts * np.log2((freq + 1) / freq)
            freq[int(np.argmax(gain))] += 1
        else:
            loss = np.where(freq > 1, counts * np.log2(freq / np.maximum(freq - 1, 1)), np.inf)
            freq[int(np.argmin(loss))] -= 1
    return freq


def _varint(v: int) -> bytes:
    out = bytearray()
    while True:
        out.append((v & 0x7F) | (0x80 if v > 0x7F else 0))
        v >>= 7
        if not v:
            return bytes(out)


class _Table:
    def __init__(self, symbols: np.ndarray, freq: np.ndarray, scale_bits: int):
        self.symbols = symbols.astype(np.uint8)  # byte values, increasing
        self.freq = freq.astype(np.int64)
        self.cum = np.concatenate([[0], np.cumsum(self.freq)])
        self.scale_bits = scale_bits
        self.index = {int(s): i for i, s in enumerate(self.symbols)}


class Rans(Storage):
    name, codec_id, c_file = "rans", 6, "at_decode_rans.c"

    def __init__(self, scale_bits: int = 12):
        if not 8 <= scale_bits <= 15:
            raise CodecError(f"rans: scale_bits must be 8 to 15, got {scale_bits}", "header")
        self.scale_bits = scale_bits

    def params(self):
        return (("scale_bits", self.scale_bits),)

    def header_params(self, ctx):
        return self.scale_bits, 0

    @classmethod
    def from_header(cls, param0: int, param1: int) -> Storage:
        if param1:
            raise CodecError("rans: param1 must be 0", "header")
        return cls(param0)

    def table(self, values: np.ndarray):
        symbols, counts = np.unique(values.astype(np.uint8), return_counts=True)
        freq = quantize_frequencies(counts, 1 << self.scale_bits)
        bitmap = np.zeros(256, np.uint8)
        bitmap[symbols] = 1
        table = np.packbits(bitmap, bitorder="little").tobytes() + b"".join(_varint(int(f)) for f in freq)
        return table, _Table(symbols, freq, self.scale_bits)

    def parse_table(self, table: bytes, param0: int, param1: int):
        if len(table) < 32:
            raise CodecError("rans: table shorter than its symbol bitmap", "header")
        symbols = np.flatnonzero(np.unpackbits(np.frombuffer(table[:32], np.uint8), bitorder="little"))
        freq, i = [], 32
        for _ in symbols:
            v = shift = 0
            while True:
                if i >= len(table) or shift > 14:
                    raise CodecError("rans: frequency table cut short or malformed", "header")
                b = table[i]
                i += 1
                v |= (b & 0x7F) << shift
                shift += 7
                if not b & 0x80:
                    break
            freq.append(v)
        if i != len(table) or not len(freq) or min(freq) < 1 or sum(freq) != 1 << param0:
            raise CodecError(f"rans: frequencies do not sum to 2^{param0}", "header")
        return _Table(symbols, np.array(freq), param0)

    def encode_chunk(self, t: _Table, chunk: np.ndarray) -> bytes:
        scale, out, x = t.scale_bits, bytearray(), RANS_L
        for s in reversed(chunk.astype(np.uint8).tolist()):
            i = t.index[s]
            f, c = int(t.freq[i]), int(t.cum[i])
            x_max = ((RANS_L >> scale) << 8) * f
            while x >= x_max:
                out.append(x & 0xFF)
                x >>= 8
            x = ((x // f) << scale) + (x % f) + c
        return x.to_bytes(4, "little") + bytes(reversed(out))

    def decode_chunk(self, t: _Table, data: bytes, n: int) -> np.ndarray:
        if len(data) < 4:
            raise CodecError("rans: chunk shorter than its 4-byte state", "truncated")
        scale, mask = t.scale_bits, (1 << t.scale_bits) - 1
        x, i = int.from_bytes(data[:4], "little"), 4
        out = np.empty(n, np.uint8)
        cum = t.cum.tolist()
        for k in range(n):
            slot = x & mask
            s = int(np.searchsorted(t.cum, slot, side="right")) - 1
            out[k] = t.symbols[s]
            x = int(t.freq[s]) * (x >> scale) + slot - cum[s]
            while x < RANS_L:
                if i >= len(data):
                    raise CodecError("rans: stream ends before the last value", "truncated")
                x = (x << 8) | data[i]
                i += 1
        if x != RANS_L or i != len(data):
            raise CodecError("rans: final state or length wrong: corrupt stream", "corrupt")
        return out.astype(np.int8)

    def scratch_bytes(self, t: _Table) -> int:
        return 3 * len(t.symbols) + 2
