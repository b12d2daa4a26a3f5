"""The blob every storage writes: a 12-byte header, the storage's table, the payload, a CRC-32.

    offset  field
    0       u8   magic 0xA7
    1       u8   storage id (Storage.codec_id; AT_CODEC_* in at_decode.h)
    2       u8   flags: bit 0 per-row layout
    3, 4    u8   param0, param1 (the storage's: bits, window and lookahead, scale bits)
    5       u8   0
    6       u16  rows (output channels), 1..65535
    8       u16  row_len (int8 values per row), 1..65535
    10      u16  table bytes (palette and rans tables are at most 514)
    12      table, then the payload (blob size - 16 - table bytes)
    end-4   u32  CRC-32 (IEEE, as zlib.crc32) of every byte before it

All little-endian; 12 bytes keep a dense payload, read in place, word-aligned. The header is small
because tensors are: 16 bytes of header and CRC on a 100-value tensor are a sixth of its 4-bit
storage. In the per-row layout of a variable-length storage the payload is one record
per row, a u16 length and that row's chunk, so one filter decodes on its own (a storage with
fixed-size rows computes where a row starts instead). The C side
(kernels/at_decode_common.c) reads the same layout; the two are tested against each other.
"""
from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass

from autotune.errors import AutotuneError

MAGIC = 0xA7
HEADER = struct.Struct("<BBBBBBHHH")
HEADER_BYTES, CRC_BYTES = HEADER.size, 4  # 12 + 4: the bytes of a blob besides table and payload
FLAG_PER_ROW = 1
MAX_ROWS = MAX_ROW_LEN = MAX_CHUNK = MAX_TABLE = 0xFFFF
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
    chunked: bool  # the payload is [u16 length][chunk] records, one per row
    param0: int
    param1: int
    rows: int
    row_len: int
    table: bytes
    payload: bytes

    def chunk(self, row: int) -> bytes:
        """Row `row`'s chunk of a chunked payload; found by walking the records before it, as the
        C decoder does. The last row's chunk must end the payload."""
        p = 0
        for r in range(row + 1):
            if len(self.payload) - p < 2:
                raise CodecError(f"row {r}: the payload ends before its length", "truncated")
            n = int.from_bytes(self.payload[p:p + 2], "little")
            p += 2
            if n > len(self.payload) - p:
                raise CodecError(f"row {r}: a chunk of {n} bytes past the payload's end", "truncated")
            p += n
        if row == self.rows - 1 and p != len(self.payload):
            raise CodecError("bytes after the last row", "corrupt")
        return self.payload[p - n:p]


def pack(codec_id: int, per_row: bool, param0: int, param1: int, rows: int, row_len: int,
         table: bytes, chunks: list[bytes], chunked: bool) -> bytes:
    """A blob from its parts; `chunked` prefixes each chunk with its length."""
    if chunked:
        if max(map(len, chunks)) > MAX_CHUNK:
            raise CodecError(f"a row codes to more than {MAX_CHUNK} bytes; use the whole-tensor layout")
        chunks = [struct.pack("<H", len(c)) + c for c in chunks]
    if len(table) > MAX_TABLE:
        raise CodecError(f"a table of {len(table)} bytes: at most {MAX_TABLE}")
    blob = HEADER.pack(MAGIC, codec_id, int(per_row), param0, param1, 0, rows, row_len, len(table)) + table + b"".join(chunks)
    return blob + struct.pack("<I", zlib.crc32(blob))


def parse(blob: bytes, codec_id: int | None = None, fixed_rows: bool = False,
          check_crc: bool = True) -> Layout:
    """The parts of `blob`; CodecError on anything malformed (same checks as at_decode_common.c)."""
    if not HEADER_BYTES + CRC_BYTES <= len(blob) < MAX_BYTES:
        raise CodecError(f"blob of {len(blob)} bytes: not {HEADER_BYTES + CRC_BYTES} bytes to 256 MB", "header")
    magic, codec, flags, p0, p1, zero, rows, row_len, table_bytes = HEADER.unpack_from(blob)
    if magic != MAGIC or zero or flags & ~FLAG_PER_ROW:
        raise CodecError("not a weight blob: bad magic, flags or reserved byte", "header")
    if codec_id is not None and codec != codec_id:
        raise CodecError(f"blob holds storage id {codec}, expected {codec_id}", "arg")
    if rows == 0 or row_len == 0 or rows * row_len >= MAX_BYTES:
        raise CodecError(f"{rows} rows of {row_len} values: 1 to {MAX_ROWS} rows of 1 to {MAX_ROW_LEN}, "
                         "fewer than 2^28 in all", "header")
    end = len(blob) - CRC_BYTES
    if table_bytes > end - HEADER_BYTES:
        raise CodecError(f"header says {table_bytes} table bytes, the blob is {len(blob)} bytes", "header")
    if check_crc and zlib.crc32(blob[:end]) != int.from_bytes(blob[end:], "little"):
        raise CodecError("CRC-32 mismatch: the blob is corrupt", "crc")
    per_row = bool(flags & FLAG_PER_ROW)
    return Layout(codec, per_row, per_row and not fixed_rows, p0, p1, rows, row_len,
                  bytes(blob[HEADER_BYTES:HEADER_BYTES + table_bytes]), bytes(blob[HEADER_BYTES + table_bytes:end]))
