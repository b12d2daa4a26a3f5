"""rans: range asymmetric numeral systems with a static table, the entropy coder that reaches the
empirical entropy within a fraction of a percent (Huffman cannot go below one bit per weight,
which pruned tensors need).

Byte-wise renormalisation as in ryg_rans (state in [2^23, 2^31)), frequencies quantised to a
total of 2^scale_bits. Table: a byte (rans: the smallest value, int8; rans_binned: 0), the
count - 1 of symbols, then their frequencies as codes: a byte below 0x80 is a frequency; 0x80 | h, l is
the frequency h << 8 | l (h < 64); 0xC0 | r stands for r + 1 symbols that do not occur.

In `rans` a symbol is the value (index s of the table is the value low + s). In `rans_binned`
(lead_bits k, 1..6) it is the value's sign and the class of its magnitude: magnitudes below 2^k
are their own class; a larger one keeps its k leading bits in the class, and its `sh` trailing
bits follow the symbol raw (a uniform rANS step of 2^sh slots). Int8 weights then need a few dozen
symbols, not up to 256: on wide, pruned tensors the table is a large part of the blob, and what
binning costs (trailing bits not quite uniform) is much less. In `rans_grid` (param1 = q, found
in the data) the values are on the symmetric grid of q levels a side that low-bit weights are on
(level k is 127 k / q rounded half up: q = 7 for 4 bits, 1 for 2 bits), and a symbol is a sign
and a level: a 4-bit tensor's table is 17 bytes, not the 31 of plain rans with its runs of
values that do not occur between levels, and its scratch 40 bytes, not 576. Binned and grid
symbols are in zigzag order (0, -1, 1, -2, ...; the table's first byte is 0), most frequent first
for weights, so the decoder finds a slot's symbol by a short search from the start without a
bucket index. Both are further builds of the same C, so a model with plain rans does not carry
their code.

A chunk is the final encoder state (u32 LE) followed by the renormalisation bytes; decoding ends
with the state back at 2^23 and every byte read, which catches most corruption even without the
CRC. The C decoder builds the cumulative frequencies in scratch (rans: and a 64-bucket index
where the search for a slot's symbol starts; 2 x symbols + 66 bytes, rans_binned 2 x symbols + 2,
rans_grid 2 x symbols + 3 + q).
"""
from __future__ import annotations

import numpy as np

from autotune.codecs._container import CodecError
from autotune.codecs.base import Storage

RANS_L = 1 << 23
MAX_LEAD_BITS = 6
MAX_GRID = 127


def grid_magnitudes(q: int) -> np.ndarray:
    """The magnitudes of levels 0..q of the grid with q levels a side: 127 j / q rounded half up,
    (254 j + q) // 2q, as the C computes them."""
    return (254 * np.arange(q + 1) + q) // (2 * q)


def grid_of(values: np.ndarray) -> int:
    """The smallest q whose grid (levels -q..q) holds every value, if it has fewer levels than
    the values' range; else 0."""
    present = np.unique(values.astype(np.int64))
    span = int(present[-1] - present[0]) + 1
    magnitudes = np.abs(present)
    for q in range(1, MAX_GRID + 1):
        if 2 * q + 1 >= span:
            return 0
        if np.isin(magnitudes, grid_magnitudes(q)).all():
            return q
    return 0


def binned(values: np.ndarray, lead_bits: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per value: its symbol (sign x magnitude class), and the count and value of the trailing
    bits coded raw. Class of magnitude a >= 2^k (k = lead_bits): (sh << (k - 1)) + (a >> sh),
    sh = bit length of a - k; below 2^k, a itself (so classes run on without a gap)."""
    a = np.abs(values.astype(np.int64))
    sh = np.maximum(np.floor(np.log2(np.maximum(a, 1))).astype(np.int64) + 1 - lead_bits, 0)
    cls = np.where(sh > 0, (sh << (lead_bits - 1)) + (a >> sh), a)
    return np.sign(values) * cls, sh, a & ((1 << sh) - 1)


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
    def __init__(self, low: int, freq: np.ndarray, scale_bits: int, grid: int = 0):
        self.low = low  # rans: the value at index 0
        self.grid = grid  # rans_grid: q
        self.freq = freq.astype(np.int64)
        self.cum = np.concatenate([[0], np.cumsum(self.freq)])
        self.scale_bits = scale_bits


class Rans(Storage):
    name, codec_id, c_file = "rans", 6, "at_decode_rans.c"

    def __init__(self, scale_bits: int = 12):
        if not 8 <= scale_bits <= 13:
            raise CodecError(f"{self.name}: scale_bits must be 8 to 13, got {scale_bits}", "header")
        self.scale_bits = scale_bits

    def params(self):
        return (("scale_bits", self.scale_bits),)

    def header_params(self, ctx):
        return self.scale_bits, 0

    def grid(self, values: np.ndarray) -> int:
        """rans_grid's q; 0 for the others."""
        return 0

    @classmethod
    def from_header(cls, param0: int, param1: int) -> Storage:
        if param1:
            raise CodecError("rans: param1 must be 0", "header")
        return cls(param0)

    def low(self, values: np.ndarray) -> int:
        """The table's first byte: the value at index 0."""
        return int(values.min())

    def indices(self, values: np.ndarray, low: int, grid: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Per value its symbol's table index (`low` the value at index 0, `grid` rans_grid's q),
        and the count and value of the raw bits that follow the symbol."""
        zeros = np.zeros(len(values), np.int64)
        return values.astype(np.int64) - low, zeros, zeros

    def table(self, values: np.ndarray):
        low, grid = self.low(values), self.grid(values)
        counts = np.bincount(self.indices(values, low, grid)[0])
        freq = np.zeros(len(counts), np.int64)
        freq[counts > 0] = quantize_frequencies(counts[counts > 0], 1 << self.scale_bits)
        table = bytes((low & 0xFF, len(freq) - 1)) + _frequencies(freq)
        return table, _Table(low, freq, self.scale_bits, grid)

    def parse_table(self, table: bytes, param0: int, param1: int):
        if len(table) < 2:
            raise CodecError(f"{self.name}: table shorter than its range", "header")
        low, count = int(np.int8(np.uint8(table[0]))), table[1] + 1  # values past 127 wrap, as in C
        freq, i = [], 2
        while len(freq) < count:
            if i >= len(table) or (0x80 <= table[i] < 0xC0 and i + 1 >= len(table)):
                raise CodecError(f"{self.name}: frequency table cut short", "header")
            b = table[i]
            if b >= 0xC0:
                if (b & 0x3F) + 1 > count - len(freq):
                    raise CodecError(f"{self.name}: a run of absent symbols past the range", "header")
                freq += [0] * ((b & 0x3F) + 1)
                i += 1
            elif b >= 0x80:
                freq.append((b & 0x3F) << 8 | table[i + 1])
                i += 2
            else:
                freq.append(b)
                i += 1
        if i != len(table) or sum(freq) != 1 << param0:
            raise CodecError(f"{self.name}: frequencies do not sum to 2^{param0}", "header")
        return self.checked(_Table(low, np.array(freq), param0), param1)

    def checked(self, t: _Table, param1: int) -> _Table:
        """A parsed table with what param1 says of it; CodecError ("header") if they disagree."""
        return t

    def encode_chunk(self, t: _Table, chunk: np.ndarray) -> bytes:
        index, raw_bits, raw = self.indices(chunk, t.low, t.grid)
        # Per value two steps, its raw bits (a uniform step of 2^sh) and its symbol: the decoder
        # takes the symbol first, so the encoder, which runs backwards, takes the raw bits first.
        freq = np.stack([np.ones_like(index), t.freq[index]], 1)[::-1]
        start = np.stack([raw, t.cum[index]], 1)[::-1]
        bits = np.stack([raw_bits, np.full_like(index, t.scale_bits)], 1)[::-1]
        steps = bits > 0  # no raw bits: no step
        freq, start, bits = freq[steps], start[steps], bits[steps]
        x_max = ((RANS_L >> bits) << 8) * freq
        out, x = bytearray(), RANS_L
        for f, c, b, top in zip(freq.tolist(), start.tolist(), bits.tolist(), x_max.tolist()):
            while x >= top:
                out.append(x & 0xFF)
                x >>= 8
            x = ((x // f) << b) + (x % f) + c
        return x.to_bytes(4, "little") + bytes(reversed(out))

    def symbol(self, t: _Table, s: int) -> tuple[int, int]:
        """Table index s as (value, or its sign and leading magnitude bits; raw bits that follow)."""
        return t.low + s, 0

    def decode_chunk(self, t: _Table, data: bytes, n: int) -> np.ndarray:
        if len(data) < 4:
            raise CodecError(f"{self.name}: chunk shorter than its 4-byte state", "truncated")
        scale, mask = t.scale_bits, (1 << t.scale_bits) - 1
        x, i = int.from_bytes(data[:4], "little"), 4
        out = np.empty(n, np.int16)
        cum = t.cum.tolist()

        def renormalise(x: int) -> int:
            nonlocal i
            while x < RANS_L:
                if i >= len(data):
                    raise CodecError(f"{self.name}: stream ends before the last value", "truncated")
                x = (x << 8) | data[i]
                i += 1
            return x

        for k in range(n):  # as rans_chunk in at_decode_rans.c, check for check
            slot = x & mask
            s = int(np.searchsorted(t.cum, slot, side="right")) - 1
            x = int(t.freq[s]) * (x >> scale) + slot - cum[s]
            value, sh = self.symbol(t, s)
            x = renormalise(x)
            if sh:
                value += (x & ((1 << sh) - 1)) * (-1 if value < 0 else 1)
                x = renormalise(x >> sh)
            out[k] = value  # past 127 wraps, as in C
        if x != RANS_L or i != len(data):
            raise CodecError(f"{self.name}: final state or length wrong: corrupt stream", "corrupt")
        return out.astype(np.int8)

    def scratch_bytes(self, t: _Table) -> int:
        return 2 * len(t.freq) + 66  # cumulative u16[symbols + 1], bucket index u8[64]


class RansBinned(Rans):
    name, codec_id, c_file = "rans_binned", 9, "at_decode_rans_binned.c"
    c_includes = ("at_decode_rans.c",)  # the same decoder source, built with AT_RANS_BINNED

    def __init__(self, scale_bits: int = 12, lead_bits: int = 2):
        super().__init__(scale_bits)
        if not 1 <= lead_bits <= MAX_LEAD_BITS:
            raise CodecError(f"rans_binned: lead_bits must be 1 to {MAX_LEAD_BITS}, got {lead_bits}", "header")
        self.lead_bits = lead_bits

    def params(self):
        return (("scale_bits", self.scale_bits), ("lead_bits", self.lead_bits))

    def header_params(self, ctx):
        return self.scale_bits, self.lead_bits

    @classmethod
    def from_header(cls, param0: int, param1: int) -> Storage:
        return cls(param0, param1)  # the constructor refuses a bad scale or lead bits ("header")

    def unfit(self, values: np.ndarray) -> str | None:
        if int(np.abs(values.astype(np.int64)).max()) < 1 << self.lead_bits:
            return f"every magnitude is below 2^{self.lead_bits}: binning changes nothing (use rans)"
        return None

    def low(self, values: np.ndarray) -> int:
        return 0  # not read: zigzag indices start at 0

    def indices(self, values: np.ndarray, low: int, grid: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        cls, sh, raw = binned(values, self.lead_bits)
        return np.where(cls < 0, -2 * cls - 1, 2 * cls), sh, raw  # zigzag: 0, -1, 1, -2, ...

    def symbol(self, t: _Table, s: int) -> tuple[int, int]:
        """As the C: magnitude class (s + 1) >> 1, negative for odd s; a class past int8 is
        corrupt."""
        magnitude, lead = (s + 1) >> 1, self.lead_bits
        sh = 0
        if magnitude >= 1 << lead:
            sh = (magnitude >> (lead - 1)) - 1
            if sh > 7:
                raise CodecError("rans_binned: a magnitude class past int8: corrupt stream", "corrupt")
            magnitude = (magnitude - (sh << (lead - 1))) << sh
        return (-magnitude if s & 1 else magnitude), sh

    def scratch_bytes(self, t: _Table) -> int:
        return 2 * len(t.freq) + 2  # cumulative u16[symbols + 1]


class RansGrid(Rans):
    name, codec_id, c_file = "rans_grid", 10, "at_decode_rans_grid.c"
    c_includes = ("at_decode_rans.c",)  # the same decoder source, built with AT_RANS_GRID

    def header_params(self, ctx):
        return self.scale_bits, ctx.grid

    @classmethod
    def from_header(cls, param0: int, param1: int) -> Storage:
        if not 1 <= param1 <= MAX_GRID:
            raise CodecError(f"rans_grid: a grid of 1 to {MAX_GRID} levels a side, got {param1}", "header")
        return cls(param0)

    def unfit(self, values: np.ndarray) -> str | None:
        if not grid_of(values):
            return "the values are not on a symmetric grid with fewer levels than their range (use rans)"
        return None

    def grid(self, values: np.ndarray) -> int:
        return grid_of(values)

    def low(self, values: np.ndarray) -> int:
        return 0  # not read: zigzag indices start at 0

    def indices(self, values: np.ndarray, low: int, grid: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        levels = np.searchsorted(grid_magnitudes(grid), np.abs(values.astype(np.int64)))
        zeros = np.zeros(len(values), np.int64)
        return np.where(values < 0, 2 * levels - 1, 2 * levels), zeros, zeros  # zigzag: 0, -1, 1, ...

    def checked(self, t: _Table, param1: int) -> _Table:
        t.grid = param1
        if len(t.freq) > 2 * t.grid + 1:
            raise CodecError(f"rans_grid: {len(t.freq)} symbols on a grid of {t.grid} levels a side", "header")
        return t

    def symbol(self, t: _Table, s: int) -> tuple[int, int]:
        magnitude = int(grid_magnitudes(t.grid)[(s + 1) >> 1])
        return (-magnitude if s & 1 else magnitude), 0

    def scratch_bytes(self, t: _Table) -> int:
        return 2 * len(t.freq) + 3 + t.grid  # cumulative u16[symbols + 1], magnitudes u8[q + 1]
