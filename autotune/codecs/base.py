"""What every weight storage is: the Storage base class and the records it returns.

A storage turns an int8 tensor, seen as `rows` output-channel filters of `row_len` values each,
into a blob (see _container.py) and back, bit for bit. Subclasses implement a table (shared by
the whole tensor) and a chunk coder: the whole tensor is one chunk, or, laid out per row, each
filter is a chunk of its own so one filter can be decoded at a time into one filter of scratch.
"""
from __future__ import annotations

import functools
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from autotune.codecs import _container as C
from autotune.codecs._container import CodecError
from autotune.codecs.entropy import entropy_bound_bytes

C_HEADER, C_COMMON = "at_decode.h", "at_decode_common.c"  # in autotune/codegen/kernels/


@dataclass(frozen=True)
class DecodeCall:
    """One decoder call of a kernel plan: `symbol(blob, [row,] out, out_bytes, scratch, scratch_bytes)`.

    With `per_row` the plan calls it once per output channel (`calls` times), each writing one
    filter of `out_bytes`; else once for the whole tensor. `scratch_bytes` is the decoder's own
    work memory on top of `out` (at_decode_<storage>_get_buffer_size). With `in_place` a kernel
    may read the weights straight from the blob at `payload_offset` (dense int8) and skip the call
    (once the blob's CRC has been checked, e.g. by a first decode call).
    """

    symbol: str
    c_files: tuple[str, ...]  # kernel library files to compile
    per_row: bool
    calls: int
    out_bytes: int
    scratch_bytes: int
    in_place: bool
    payload_offset: int


@dataclass(frozen=True)
class Encoded:
    """A weight tensor in one storage, and what it costs."""

    storage: str  # registry name
    params: tuple[tuple[str, int], ...]  # the storage's hyperparameters, e.g. (("bits", 4),)
    blob: bytes  # header, table, payload, CRC-32
    shape: tuple[int, ...]
    rows: int
    row_len: int
    per_row_layout: bool  # every row a chunk of its own (length-prefixed for variable-length storages)
    per_row: bool  # one output-channel filter can be decoded on its own
    table_bytes: int  # all but the coded values: header, CRC, storage table, row length prefixes
    entropy_bound_bytes: float  # n * H / 8, H the empirical entropy of the int8 values (bits)
    scratch_bytes: int  # decoder work memory beyond the decoded output

    @property
    def bytes(self) -> int:
        return len(self.blob)

    @property
    def payload_bytes(self) -> int:
        return len(self.blob) - self.table_bytes

    @property
    def elements(self) -> int:
        return self.rows * self.row_len

    def decode_call(self, per_row: bool = False) -> DecodeCall:
        """How a kernel plan decodes this tensor: whole (default) or one filter per call."""
        if per_row and not self.per_row:
            raise CodecError(f"{self.storage}: this blob decodes only as a whole tensor; "
                             "encode it with per_row=True")
        cls = get_class(self.storage)
        return DecodeCall(
            symbol=f"at_decode_{self.storage}{'_row' if per_row else ''}",
            c_files=(C_HEADER, C_COMMON, *cls.c_includes, cls.c_file),
            per_row=per_row, calls=self.rows if per_row else 1,
            out_bytes=self.row_len if per_row else self.elements,
            scratch_bytes=self.scratch_bytes,
            in_place=self.storage == "dense", payload_offset=C.HEADER_BYTES)


def _rows(values: np.ndarray) -> int:
    """A weight tensor's output channels: its first dimension, 1 for a vector."""
    return values.shape[0] if values.ndim > 1 else 1


def unsplittable(values: np.ndarray, rows: int | None = None) -> str | None:
    """Why no blob can hold tensor `values` as `rows` rows (default: its output channels), or
    None: the header's limits."""
    size, rows = values.size, _rows(values) if rows is None else rows
    if (size == 0 or rows < 1 or size % rows or rows > C.MAX_ROWS or size // rows > C.MAX_ROW_LEN
            or size >= C.MAX_BYTES):
        return (f"cannot split {size} values into {rows} rows "
                f"(1 to {C.MAX_ROWS} rows of 1 to {C.MAX_ROW_LEN} values)")
    return None


def get_class(name: str) -> type[Storage]:
    from autotune.codecs.registry import STORAGES  # the registry imports the storages

    return STORAGES[name]


class Storage(ABC):
    """One way to store an int8 weight tensor. The constructor takes only hyperparameters."""

    name: ClassVar[str]  # registry name; the C decoder is at_decode_<name>
    codec_id: ClassVar[int]  # the header's storage id (AT_CODEC_<NAME> in at_decode.h)
    c_file: ClassVar[str]  # the kernel library file with its decoder
    c_includes: ClassVar[tuple[str, ...]] = ()  # kernel library files c_file includes
    fixed_rows: ClassVar[bool] = False  # rows at computable offsets: no row offsets needed

    # --- hyperparameters -------------------------------------------------------------------
    def params(self) -> tuple[tuple[str, int], ...]:
        return ()

    def header_params(self, table_ctx: Any) -> tuple[int, int]:
        """param0 and param1 of the header."""
        return 0, 0

    @classmethod
    def from_header(cls, param0: int, param1: int) -> Storage:
        """The storage a blob was written with (CodecError if the header's params are invalid)."""
        if param0 or param1:
            raise CodecError(f"{cls.name}: header parameters must be 0", "header")
        return cls()

    # --- coding -----------------------------------------------------------------------------
    def unfit(self, values: np.ndarray) -> str | None:
        """Why this storage cannot hold `values` (int8), or None."""
        return None

    def table(self, values: np.ndarray) -> tuple[bytes, Any]:
        """The table shared by every chunk, and what the chunk coder needs from it."""
        return b"", None

    def parse_table(self, table: bytes, param0: int, param1: int) -> Any:
        """The decoder's view of a table; CodecError('corrupt'/'header') if malformed."""
        if table:
            raise CodecError(f"{self.name}: {len(table)} unexpected table bytes", "header")
        return None

    @abstractmethod
    def encode_chunk(self, ctx: Any, chunk: np.ndarray) -> bytes:
        """`chunk` (int8) as payload bytes."""

    @abstractmethod
    def decode_chunk(self, ctx: Any, data: bytes, n: int) -> np.ndarray:
        """`n` int8 values back from payload bytes; CodecError('truncated'/'corrupt')."""

    def chunk_bytes(self, ctx: Any, n: int) -> int:
        """Bytes of a chunk of `n` values, for storages with fixed_rows."""
        raise NotImplementedError

    def scratch_bytes(self, ctx: Any) -> int:
        """Decoder work memory: mirrors at_decode_<name>_get_buffer_size."""
        return 0

    # --- the tensor -------------------------------------------------------------------------
    def encode(self, values: np.ndarray, rows: int | None = None, per_row: bool = False) -> Encoded:
        """`values` (int8, any shape) as a blob; `rows` output channels (default: the first
        dimension, 1 for a vector). `per_row` makes every filter decodable on its own."""
        values = np.asarray(values)
        if values.dtype != np.int8:
            raise CodecError(f"{self.name}: weights must be int8, got {values.dtype}")
        rows = _rows(values) if rows is None else rows
        return _encoded(type(self), self.params(), values.tobytes(), values.shape, rows, per_row)

    def _encode(self, values: np.ndarray, rows: int, per_row: bool) -> Encoded:
        if problem := unsplittable(values, rows):
            raise CodecError(f"{self.name}: {problem}")
        flat = values.reshape(-1)
        if reason := self.unfit(flat):
            raise CodecError(f"{self.name}: {reason}")
        row_len = flat.size // rows
        table, ctx = self.table(flat)
        p0, p1 = self.header_params(ctx)
        parts = flat.reshape(rows, row_len) if per_row else [flat]
        chunks = [self.encode_chunk(ctx, part) for part in parts]
        blob = C.pack(self.codec_id, per_row, p0, p1, rows, row_len, table, chunks,
                      chunked=per_row and not self.fixed_rows)
        payload = sum(map(len, chunks))  # row length prefixes count as table bytes
        return Encoded(self.name, self.params(), blob, tuple(values.shape), rows, row_len, per_row,
                       per_row or self.fixed_rows, len(blob) - payload, entropy_bound_bytes(flat),
                       self.scratch_bytes(ctx))

    def _open(self, blob: bytes) -> tuple[Storage, C.Layout, Any]:
        """The storage the blob was written with (its header's parameters), its parts, its table."""
        layout = C.parse(blob, self.codec_id, self.fixed_rows)
        storage = type(self).from_header(layout.param0, layout.param1)
        return storage, layout, storage.parse_table(layout.table, layout.param0, layout.param1)

    def decode(self, blob: bytes) -> np.ndarray:
        """The int8 tensor of `blob` as (rows, row_len); the parameters come from its header."""
        storage, layout, ctx = self._open(blob)
        rows, n = layout.rows, layout.row_len
        if self.fixed_rows:
            return storage._fixed(layout, ctx, 0, rows * n).reshape(rows, n)
        if not layout.per_row:
            return storage.decode_chunk(ctx, layout.payload, rows * n).reshape(rows, n)
        return np.stack([storage.decode_chunk(ctx, layout.chunk(r), n) for r in range(rows)])

    def decode_row(self, blob: bytes, row: int) -> np.ndarray:
        """Output channel `row`'s filter alone."""
        storage, layout, ctx = self._open(blob)
        if not 0 <= row < layout.rows:
            raise CodecError(f"row {row} of {layout.rows}")
        if self.fixed_rows:
            return storage._fixed(layout, ctx, row, layout.row_len)
        if not layout.per_row:
            raise CodecError(f"{self.name}: blob not laid out per row")
        return storage.decode_chunk(ctx, layout.chunk(row), layout.row_len)

    def _fixed(self, layout: C.Layout, ctx: Any, row: int, n: int) -> np.ndarray:
        """Rows `row`.. of a fixed_rows storage, `n` values."""
        if layout.per_row:
            size = self.chunk_bytes(ctx, layout.row_len)
            if size * layout.rows != len(layout.payload):
                raise CodecError("payload size does not match rows x row bytes", "corrupt")
            parts = [self.decode_chunk(ctx, layout.payload[r * size:(r + 1) * size], layout.row_len)
                     for r in range(row, row + n // layout.row_len)]
            return np.concatenate(parts)
        total = layout.rows * layout.row_len
        if self.chunk_bytes(ctx, total) != len(layout.payload):
            raise CodecError("payload size does not match the tensor", "corrupt")
        return self.decode_chunk(ctx, layout.payload, total)[row * layout.row_len:][:n]

    def blob_scratch_bytes(self, blob: bytes) -> int:
        """Decoder work memory for `blob` (at_decode_<name>_get_buffer_size on the same bytes)."""
        storage, _, ctx = self._open(blob)
        return storage.scratch_bytes(ctx)


@functools.lru_cache(maxsize=64)
def _encoded(cls: type[Storage], params: tuple[tuple[str, int], ...], data: bytes, shape: tuple[int, ...],
             rows: int, per_row: bool) -> Encoded:
    """A tensor's blob, encoded once: choosing a storage, lowering and the report ask for the same
    blobs again (`autotune import --compress` weighs a dozen storage choices, each lowered)."""
    return cls(**dict(params))._encode(np.frombuffer(data, np.int8).reshape(shape), rows, per_row)
