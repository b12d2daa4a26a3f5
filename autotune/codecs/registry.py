"""Every storage by name, and decoding a blob whatever storage wrote it."""
from __future__ import annotations

from types import MappingProxyType

import numpy as np

from autotune.codecs import _container as C
from autotune.codecs._container import CodecError
from autotune.codecs.base import Encoded, Storage
from autotune.codecs.bitpack import BitPack
from autotune.codecs.delta_rle import DeltaRle
from autotune.codecs.dense import Dense
from autotune.codecs.heatshrink import Heatshrink
from autotune.codecs.lz4 import Lz4
from autotune.codecs.palette import Palette
from autotune.codecs.rans import Rans, RansBinned, RansGrid
from autotune.codecs.rle0 import Rle0
from autotune.codecs.sparse import Sparse

STORAGES: MappingProxyType[str, type[Storage]] = MappingProxyType(
    {cls.name: cls for cls in (Dense, BitPack, Palette, Rle0, DeltaRle, Sparse, Rans, Heatshrink, Lz4,
                                         RansBinned, RansGrid)})
_BY_ID = {cls.codec_id: cls for cls in STORAGES.values()}


def get_storage(name: str, **params: int) -> Storage:
    """The storage `name` with its hyperparameters, e.g. get_storage("bitpack", bits=2)."""
    if name not in STORAGES:
        raise CodecError(f"unknown storage {name!r}; valid: {', '.join(STORAGES)}")
    try:
        return STORAGES[name](**params)
    except TypeError as e:
        raise CodecError(f"{name}: {e}") from None


def encode(values: np.ndarray, storage: str | Storage, rows: int | None = None,
           per_row: bool = False, **params: int) -> Encoded:
    """`values` (int8) stored as `storage` (a name with `params`, or a Storage)."""
    if isinstance(storage, str):
        storage = get_storage(storage, **params)
    return storage.encode(values, rows, per_row)


def storage_of(blob: bytes) -> Storage:
    """The storage that wrote `blob`, with the parameters in its header."""
    if len(blob) < C.HEADER_BYTES or blob[1] not in _BY_ID:
        raise CodecError("not a weight blob of a known storage", "header")
    _, codec_id, _, param0, param1, *_ = C.HEADER.unpack_from(blob)  # checked by the storage's decode
    return _BY_ID[codec_id].from_header(param0, param1)


def decode(blob: bytes) -> np.ndarray:
    """The int8 tensor of any blob, as (rows, row_len); CodecError if it is corrupt."""
    return storage_of(blob).decode(blob)


def decode_row(blob: bytes, row: int) -> np.ndarray:
    """One output channel's filter of any blob."""
    return storage_of(blob).decode_row(blob, row)
