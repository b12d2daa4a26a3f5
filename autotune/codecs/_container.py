"""The blob every storage writes: a 20-byte header, the storage's table, row offsets, the payload.

    offset  field
    0       u8   magic 0xA7
    1       u8   storage id (Storage.codec_id; AT_CODEC_* in at_decode.h)
    2       u8   flags: bit 0 per-row layout, bit 1 row offsets are u16 (else u32)
    3, 4    u8   param0, param1 (the storage's: bits, window and lookahead, scale bits)
    5       u8   0
    6       u16  rows (output channels)
    8       u32  row_len (int8 elements per row)
    12      u32  payload bytes
    16      u32  CRC-32 (IEEE, as zlib.crc32) of bytes [0, 16) and [20, end)
    20      table (the rest: blob size - 20 - row offsets - payload), then row offsets, then payload

All little-endian. Row offsets exist for a variable-length storage laid out per row: one entry
per row, the end of that row's chunk in the payload. The C side (kernels/at_decode_common.c)
reads the same layout; the two are tested against each other.
"""
from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass

from autotune.errors import AutotuneError

MAGIC = 0xA7
HEADER = struct.Struct("<BBBBBBHIII")
HEADER_BYTES = HEADER.size  # 20
FLAG_PER_ROW, FLAG_OFFSETS16 = 1, 2
MAX_ROWS = 0xFFFF
MAX_BYTES = 1 << 28  # AT_BLOB_MAX_BYTES: blobs and tensors below 256 MB, so bit offsets fit 32 bits


class CodecError(AutotuneError):
    """A blob that cannot be decoded, or values a storage cannot hold.

    `kind` mirrors the C decoders' error codes: arg, header, crc, truncated, corrupt."""

    exit_code = 2

    def __init__(self, message: str, kind: str = "arg"):
        super().__init__(message)
        self.kind = kind


@dataclass(frozen=True)
class Layout:
    """A parsed blob: where its parts are."""

    codec_id: int
    per_row: bool
    param0: int
    param1: int
    rows: int
    row_len: int
    table: bytes
    row_ends: tuple[int, ...] | None  # per row, the end of its chunk in the payload
    payload: bytes

    def chunk(self, row: int) -> bytes:
        """Row `row`'s part of the payload (variable-length storages laid out per row)."""
        assert self.row_ends is not None
        start = self.row_ends[row - 1] if row else 0
        end = self.row_ends[row]
        if not start <= end <= len(self.payload):
            raise CodecError(f"row {row}: chunk [{start}, {end}) outside the payload", "header")
        return self.payload[start:end]


def crc32(blob: bytes) -> int:
    return zlib.crc32(blob[20:], zlib.crc32(blob[:16]))


def pack(codec_id: int, per_row: bool, param0: int, param1: int, rows: int, row_len: int,
         table: bytes, chunks: list[bytes], offsets: bool) -> bytes:
    """A blob from its parts; `offsets` stores each chunk's end (variable-length chunks)."""
    payload = b"".join(chunks)
    index, flags = b"", FLAG_PER_ROW if per_row else 0
    if offsets:
        ends, total = [], 0
        for c in chunks:
            total += len(c)
            ends.append(total)
        wide = total > 0xFFFF
        flags |= 0 if wide else FLAG_OFFSETS16
        index = struct.pack(f"<{len(ends)}{'I' if wide else 'H'}", *ends)
    head = HEADER.pack(MAGIC, codec_id, flags, param0, param1, 0, rows, row_len, len(payload), 0)
    blob = bytearray(head + table + index + payload)
    struct.pack_into("<I", blob, 16, crc32(bytes(blob)))
    return bytes(blob)


def parse(blob: bytes, codec_id: int | None = None, fixed_rows: bool = False,
          check_crc: bool = True) -> Layout:
    """The parts of `blob`; CodecError on anything malformed (same checks as at_blob_open)."""
    if not HEADER_BYTES <= len(blob) < MAX_BYTES:
        raise CodecError(f"blob of {len(blob)} bytes: not {HEADER_BYTES} bytes to 256 MB", "header")
    magic, codec, flags, p0, p1, zero, rows, row_len, payload_bytes, crc = HEADER.unpack_from(blob)
    if magic != MAGIC or zero or flags & ~(FLAG_PER_ROW | FLAG_OFFSETS16):
        raise CodecError("not a weight blob: bad magic, flags or reserved byte", "header")
    if codec_id is not None and codec != codec_id:
        raise CodecError(f"blob holds storage id {codec}, expected {codec_id}", "arg")
    per_row = bool(flags & FLAG_PER_ROW)
    with_offsets = per_row and not fixed_rows
    if (flags & FLAG_OFFSETS16) and not with_offsets:
        raise CodecError("u16 row offsets flagged on a blob without row offsets", "header")
    if rows == 0 or row_len == 0:
        raise CodecError("empty tensor", "header")
    if rows * row_len >= MAX_BYTES:
        raise CodecError(f"{rows} x {row_len} elements: 256 M or more", "header")
    index_bytes = rows * (2 if flags & FLAG_OFFSETS16 else 4) if with_offsets else 0
    if HEADER_BYTES + index_bytes + payload_bytes > len(blob):
        raise CodecError(f"header says {payload_bytes} payload bytes, the blob is {len(blob)} bytes", "header")
    if check_crc and crc32(blob) != crc:
        raise CodecError("CRC-32 mismatch: the blob is corrupt", "crc")
    table_end = len(blob) - index_bytes - payload_bytes
    row_ends = None
    if with_offsets:
        fmt = f"<{rows}{'H' if flags & FLAG_OFFSETS16 else 'I'}"
        row_ends = struct.unpack_from(fmt, blob, table_end)
    return Layout(codec, per_row, p0, p1, rows, row_len, bytes(blob[HEADER_BYTES:table_end]), row_ends,
                  bytes(blob[len(blob) - payload_bytes:]))
