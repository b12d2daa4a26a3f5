"""UF2 images for the RP2040: write one from a flash binary, and check one before it is flashed.

Standalone (standard library only): bundles carry a copy as `harness/uf2.py`, and their Makefile
runs `python3 harness/uf2.py pack` and `check` on the firmware, so a bundle builds without
autotune installed.

UF2 (Microsoft's USB flashing format, which the RP2040 bootrom's mass-storage mode accepts):
512-byte blocks, each with two start magics, flags, a target address, a payload size, its
number, the number of blocks, the family id (flag 0x2000), 476 data bytes and an end magic. The
RP2040 bootrom takes 256-byte payloads at 256-byte aligned flash addresses and family 0xE48BFF56.

`check` also verifies what the bootrom will: the 256-byte boot2 at the start of flash must end
with the CRC-32/MPEG-2 (polynomial 0x04C11DB7, initial value 0xFFFFFFFF, no reflection, no final
xor) of its first 252 bytes, or the chip does not boot from flash; and the vector table at
0x10000100 must hold an initial stack pointer in SRAM and a Thumb reset handler in the image.
"""
from __future__ import annotations

import argparse
import struct
import sys
from dataclasses import dataclass
from pathlib import Path

MAGIC_START0 = 0x0A324655
MAGIC_START1 = 0x9E5D5157
MAGIC_END = 0x0AB16F30
FLAG_FAMILY_ID = 0x00002000
RP2040_FAMILY = 0xE48BFF56
BLOCK_BYTES = 512
PAYLOAD_BYTES = 256
FLASH_BASE = 0x10000000
FLASH_BYTES = 16 * 1024 * 1024  # the XIP window; the Pico's chip holds 2 MB of it
SRAM = range(0x20000000, 0x20042000 + 1)  # an initial stack pointer may be the end of SRAM
BOOT2_BYTES = 256
VECTORS = FLASH_BASE + BOOT2_BYTES
_HEADER = struct.Struct("<8I")  # magics, flags, address, payload size, block number, count, family


class Uf2Error(Exception):
    """A UF2 file the RP2040 would refuse or not boot."""


def crc32_mpeg2(data: bytes) -> int:
    """CRC-32/MPEG-2, the checksum the RP2040 bootrom verifies boot2 with."""
    crc = 0xFFFFFFFF
    for byte in data:
        crc ^= byte << 24
        for _ in range(8):
            crc = ((crc << 1) ^ 0x04C11DB7) if crc & 0x80000000 else crc << 1
            crc &= 0xFFFFFFFF
    return crc


def pack(image: bytes, base: int = FLASH_BASE, family: int = RP2040_FAMILY) -> bytes:
    """UF2 blocks for `image` (a flash binary starting at `base`); the last block is zero-padded."""
    if base % PAYLOAD_BYTES:
        raise Uf2Error(f"base address {base:#x} is not {PAYLOAD_BYTES}-byte aligned")
    chunks = [image[i:i + PAYLOAD_BYTES] for i in range(0, len(image), PAYLOAD_BYTES)]
    blocks = []
    for n, chunk in enumerate(chunks):
        header = _HEADER.pack(MAGIC_START0, MAGIC_START1, FLAG_FAMILY_ID, base + n * PAYLOAD_BYTES,
                              PAYLOAD_BYTES, n, len(chunks), family)
        data = chunk.ljust(PAYLOAD_BYTES, b"\0").ljust(476, b"\0")
        blocks.append(header + data + struct.pack("<I", MAGIC_END))
    return b"".join(blocks)


@dataclass(frozen=True)
class Uf2Image:
    base: int
    data: bytes  # flash contents from `base`, gaps filled with 0xFF (erased flash)
    blocks: int
    boot2_crc: int  # the CRC the boot2 carries (checked equal to the computed one)
    initial_sp: int
    reset_handler: int


def check(uf2: bytes, name: str = "firmware.uf2") -> Uf2Image:
    """The flash image a UF2 file writes, after checking every block, the family, the addresses,
    the boot2 CRC and the vector table; a Uf2Error naming `name` and the fault otherwise."""
    if not uf2 or len(uf2) % BLOCK_BYTES:
        raise Uf2Error(f"{name}: {len(uf2)} bytes, not a whole number of {BLOCK_BYTES}-byte UF2 blocks")
    pages: dict[int, bytes] = {}
    count = len(uf2) // BLOCK_BYTES
    for n in range(count):
        block = uf2[n * BLOCK_BYTES:(n + 1) * BLOCK_BYTES]
        m0, m1, flags, address, size, number, total, family = _HEADER.unpack_from(block)
        where = f"{name}: block {n}"
        if (m0, m1) != (MAGIC_START0, MAGIC_START1) or struct.unpack_from("<I", block, 508)[0] != MAGIC_END:
            raise Uf2Error(f"{where}: bad magic numbers (not a UF2 block)")
        if not flags & FLAG_FAMILY_ID or family != RP2040_FAMILY:
            raise Uf2Error(f"{where}: family {family:#010x}, the RP2040 bootrom takes {RP2040_FAMILY:#010x}")
        if number != n or total != count:
            raise Uf2Error(f"{where}: numbered {number} of {total}, expected {n} of {count}")
        if size != PAYLOAD_BYTES or address % PAYLOAD_BYTES:
            raise Uf2Error(f"{where}: {size}-byte payload at {address:#x}; the RP2040 takes "
                           f"{PAYLOAD_BYTES}-byte payloads at {PAYLOAD_BYTES}-byte aligned addresses")
        if not FLASH_BASE <= address < FLASH_BASE + FLASH_BYTES:
            raise Uf2Error(f"{where}: address {address:#x} is outside flash")
        if address in pages:
            raise Uf2Error(f"{where}: address {address:#x} written twice")
        pages[address] = block[32:32 + PAYLOAD_BYTES]
    base, end = min(pages), max(pages) + PAYLOAD_BYTES
    data = bytearray(b"\xff" * (end - base))
    for address, page in pages.items():
        data[address - base:address - base + PAYLOAD_BYTES] = page
    if base != FLASH_BASE or len(data) < BOOT2_BYTES + 8:
        raise Uf2Error(f"{name}: no boot2 at {FLASH_BASE:#x}: the RP2040 cannot boot it")
    stored = int.from_bytes(data[BOOT2_BYTES - 4:BOOT2_BYTES], "little")
    computed = crc32_mpeg2(bytes(data[:BOOT2_BYTES - 4]))
    if stored != computed:
        raise Uf2Error(f"{name}: boot2 CRC is {stored:#010x}, its first 252 bytes give {computed:#010x}: "
                       "the bootrom would refuse to boot it")
    sp, reset = struct.unpack_from("<2I", data, VECTORS - base)
    if sp not in SRAM or sp % 4:
        raise Uf2Error(f"{name}: initial stack pointer {sp:#x} at {VECTORS:#x} is not in SRAM")
    if not reset & 1 or not base <= (reset & ~1) < base + len(data):
        raise Uf2Error(f"{name}: reset handler {reset:#x} is not Thumb code in the image")
    return Uf2Image(base, bytes(data), count, stored, sp, reset)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="uf2.py", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("pack", help="a flash binary (objcopy -O binary) -> UF2")
    p.add_argument("binary")
    p.add_argument("uf2")
    p.add_argument("--base", type=lambda s: int(s, 0), default=FLASH_BASE)
    p.add_argument("--family", type=lambda s: int(s, 0), default=RP2040_FAMILY)
    c = sub.add_parser("check", help="check a UF2 file: blocks, family, boot2 CRC, vector table")
    c.add_argument("uf2")
    args = parser.parse_args(argv)
    try:
        if args.command == "pack":
            Path(args.uf2).write_bytes(pack(Path(args.binary).read_bytes(), args.base, args.family))
            return 0
        image = check(Path(args.uf2).read_bytes(), args.uf2)
    except (Uf2Error, OSError) as exc:
        print(f"uf2.py: error: {exc}", file=sys.stderr)
        return 2
    print(f"{args.uf2}: {image.blocks} blocks, {len(image.data)} bytes at {image.base:#x}, "
          f"boot2 CRC {image.boot2_crc:#010x} ok, stack {image.initial_sp:#x}, reset {image.reset_handler:#x}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
