"""The RP2040's XIP cache, as rp2040-sim times it.

Code and constant data in flash are read through a 16 KB two-way set-associative cache with
8-byte lines (RP2040 datasheet 2.6.3.1 and 2.6.3.2: "16 kB, two way set-associative, 1 cycle
hit"; the flush takes "16 kB total size / 8 bytes per line / 2 ways per set" = 1024 steps), so
1024 sets indexed by address bits [12:3]. Only the cacheable, allocating alias 0x10000000 is
modelled; the firmware uses no other. Parameters and their sources:

| parameter | value | source |
|---|---|---|
| size, ways, line | 16 KB, 2, 8 bytes | RP2040 datasheet 2.6.3.1, 2.6.3.2 |
| hit | no cycle beyond the M0+ timing table (loads 2, fetch 1) | "1 cycle hit", as SRAM |
| replacement | least recently used of the two ways | an assumption: the datasheet does not say |
| miss | `FLASH.miss_cycles` = clkdiv x (8 address+mode + 4 dummy + 16 data SCK clocks) = 56 | our boot2's SSI set-up (device_runners/boot2.py), W25Q16JV EBh timing |

A miss stalls the core for the whole line fill and is added to the zero-wait cycles (an
instruction fetch miss and a data miss alike; the M0+ fetches 32 bits at a time and has no
prefetch buffer to hide it). Each block the core executes from flash reads every line its
instructions span, once; each load from flash reads its line. SRAM (and code or weights placed
there by a build placement) is zero-wait, as in the timing table.

The cache keeps its contents from one run to the next, as on a board that answers one request
after another; a new `XipCache` is empty, as after boot (the bootrom flushes it).
"""
from __future__ import annotations

from device_runners.boot2 import FLASH, FlashInterface

CACHE_BYTES = 16 * 1024
WAYS = 2
XIP_BASE = 0x10000000  # cacheable, allocating alias
XIP_END = 0x11000000  # 0x11.. non-allocating, 0x12.. non-cacheable, 0x13.. neither: unused here


class XipCache:
    """Tags of the two ways of every set, and which way was used last."""

    cached = range(XIP_BASE, XIP_END)

    def __init__(self, flash: FlashInterface = FLASH):
        self.flash = flash
        self.line_shift = flash.line_bytes.bit_length() - 1
        self.sets = CACHE_BYTES // WAYS // flash.line_bytes
        self.miss_cycles = flash.miss_cycles
        self.flush()

    def flush(self) -> None:
        self._way0 = [-1] * self.sets
        self._way1 = [-1] * self.sets
        self._last1 = bytearray(self.sets)  # 1 where way 1 was used last

    def lines(self, address: int, size: int) -> range:
        """The line numbers a read of `size` bytes at `address` touches."""
        return range(address >> self.line_shift, ((address + size - 1) >> self.line_shift) + 1)

    def load(self, address: int) -> bool:
        """One aligned load (it never spans two lines): True on a hit."""
        line = address >> self.line_shift
        s = line % self.sets
        if self._way0[s] == line:
            self._last1[s] = 0
            return True
        if self._way1[s] == line:
            self._last1[s] = 1
            return True
        return self.read((line,)) == 1

    def read(self, lines: range) -> int:
        """Read `lines` in turn; the number of hits. A miss fills the least recently used way of
        its set. (One call per block or load: the simulator calls this about a million times
        per inference of a mid-size model, so it is written for speed.)"""
        way0, way1, last1, sets = self._way0, self._way1, self._last1, self.sets
        hits = 0
        for line in lines:
            s = line % sets
            if way0[s] == line:
                last1[s] = 0
                hits += 1
            elif way1[s] == line:
                last1[s] = 1
                hits += 1
            elif last1[s]:
                way0[s] = line
                last1[s] = 0
            else:
                way1[s] = line
                last1[s] = 1
        return hits

    @property
    def description(self) -> str:
        f = self.flash
        return (f"XIP cache {CACHE_BYTES // 1024} KB {WAYS}-way, {f.line_bytes}-byte lines, "
                f"{self.miss_cycles} cycles per miss (quad EBh, flash clock clk_sys/{f.clkdiv})")
