"""rans: range asymmetric numeral systems with a static table, the entropy coder that reaches the
empirical entropy within a fraction of a percent (Huffman cannot go below one bit per weight,
which pruned tensors need).

Byte-wise renormalisation as in ryg_rans (state in [2^23, 2^31)), frequencies quantised to a
total of 2^scale_bits. Table: the smallest value (int8) and the count - 1 of values from it to
the largest, then their frequencies as codes: a byte below 0x80 is a frequency; 0x80 | h, l is
the frequency h << 8 | l (h < 64); 0xC0 | r stands for r + 1 values that do not occur.
A chunk is the final encoder state (u32 LE) followed by the renormalisation bytes; decoding ends
with the state back at 2^23 and every byte read, which catches most corruption even without the
CRC. The C decoder builds the cumulative frequencies and a 64-bucket index in scratch
(2 x values + 66 bytes) and finds each value from its bucket by a short linear search.
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


def _frequencies(freq: np.ndarray) -> bytes:
    out, i = bytearray(), 0
    while i < len(freq):
        f = int(freq[i])
        if f == 0:  # a run of values that do not occur
            run = 1
            while run < 64 and i + run < len(freq) and freq[i + run] == 0:
                run += 1
            out.append(0xC0 | (run - 1))
            i += run
            continue
        out += bytes((f,)) if f < 0x80 else bytes((0x80 | f >> 8, f & 0xFF))
        i += 1
    return bytes(out)


class _Table:
    def __init__(self, low: int, freq: np.ndarray, scale_bits: int):
        self.low = low  # the value of symbol 0; symbol s is low + s
        self.freq = freq.astype(np.int64)
        self.cum = np.concatenate([[0], np.cumsum(self.freq)])
        self.scale_bits = scale_bits


class Rans(Storage):
    name, codec_id, c_file = "rans", 6, "at_decode_rans.c"

    def __init__(self, scale_bits: int = 12):
        if not 8 <= scale_bits <= 13:
            raise CodecError(f"rans: scale_bits must be 8 to 13, got {scale_bits}", "header")
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
        low, high = int(values.min()), int(values.max())
        counts = np.bincount(values.astype(np.int64) - low, minlength=high - low + 1)
        freq = np.zeros(len(counts), np.int64)
        freq[counts > 0] = quantize_frequencies(counts[counts > 0], 1 << self.scale_bits)
        table = bytes((low & 0xFF, len(freq) - 1)) + _frequencies(freq)
        return table, _Table(low, freq, self.scale_bits)

    def parse_table(self, table: bytes, param0: int, param1: int):
        if len(table) < 2:
            raise CodecError("rans: table shorter than its range", "header")
        low, count = int(np.int8(np.uint8(table[0]))), table[1] + 1  # values past 127 wrap, as in C
        freq, i = [], 2
        while len(freq) < count:
            if i >= len(table) or (0x80 <= table[i] < 0xC0 and i + 1 >= len(table)):
                raise CodecError("rans: frequency table cut short", "header")
            b = table[i]
            if b >= 0xC0:
                if (b & 0x3F) + 1 > count - len(freq):
                    raise CodecError("rans: a run of absent values past the range", "header")
                freq += [0] * ((b & 0x3F) + 1)
                i += 1
            elif b >= 0x80:
                freq.append((b & 0x3F) << 8 | table[i + 1])
                i += 2
            else:
                freq.append(b)
                i += 1
        if i != len(table) or sum(freq) != 1 << param0:
            raise CodecError(f"rans: frequencies do not sum to 2^{param0}", "header")
        return _Table(low, np.array(freq), param0)

    def encode_chunk(self, t: _Table, chunk: np.ndarray) -> bytes:
        scale, out, x = t.scale_bits, bytearray(), RANS_L
        for v in reversed(chunk.tolist()):
            f, c = int(t.freq[v - t.low]), int(t.cum[v - t.low])
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
        out = np.empty(n, np.int16)
        cum = t.cum.tolist()
        for k in range(n):
            slot = x & mask
            s = int(np.searchsorted(t.cum, slot, side="right")) - 1
            out[k] = t.low + s
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
        return 2 * len(t.freq) + 66  # cumulative u16[values + 1], bucket index u8[64]
