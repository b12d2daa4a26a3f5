"""The user's own data: .npz (arrays `x`, `y`, optional `class_names`) or .csv (label, values...).

Both return raw arrays: x (N, ...) float32 as stored, y (N,) int64 in [0, len(class_names)).
Shaping into model inputs, normalisation and splitting happen in `dataset.load_dataset`.
"""
from __future__ import annotations

import csv
import zipfile
from pathlib import Path

import numpy as np

from autotune.errors import DataError


def _check_file(path: str | Path) -> Path:
    p = Path(path)
    if not p.is_file():
        raise DataError(f"{p}: data file not found")
    return p


def _labels_to_indices(where: str, labels: np.ndarray | list) -> tuple[np.ndarray, tuple[str, ...]]:
    """Integer labels keep their values (names "0", "1", ...); strings map to sorted indices."""
    labels = np.asarray(labels)
    if labels.dtype.kind in "iu":
        if labels.size and labels.min() < 0:
            raise DataError(f"{where}: negative class label {labels.min()}")
        top = int(labels.max()) + 1 if labels.size else 0
        return labels.astype(np.int64), tuple(str(i) for i in range(top))
    if labels.dtype.kind == "f":
        if not np.all(np.isfinite(labels)) or np.any(labels != np.round(labels)):
            raise DataError(f"{where}: class labels must be integers or strings, got non-integer floats")
        return _labels_to_indices(where, labels.astype(np.int64))
    if labels.dtype.kind in "US":
        names, idx = np.unique(labels.astype(str), return_inverse=True)
        return idx.astype(np.int64), tuple(str(s) for s in names)
    raise DataError(f"{where}: class labels must be integers or strings, got dtype {labels.dtype}")


def _check_xy(where: str, x: np.ndarray, y: np.ndarray, class_names: tuple[str, ...]) -> None:
    if x.ndim not in (2, 3, 4):
        raise DataError(
            f"{where}: x has shape {x.shape}; expected (N, L), (N, L, C) or (N, H, W, C)"
        )
    if y.ndim != 1:
        raise DataError(f"{where}: y must be one label per example, got shape {y.shape}")
    if len(x) != len(y):
        raise DataError(f"{where}: x has {len(x)} examples but y has {len(y)} labels (length mismatch)")
    if not np.all(np.isfinite(x)):
        raise DataError(f"{where}: x contains NaN or infinite values")
    if len(y) and y.max() >= len(class_names):
        raise DataError(
            f"{where}: label {int(y.max())} is out of range for {len(class_names)} class_names"
        )
    if len(np.unique(y)) < 2:
        raise DataError(f"{where}: fewer than 2 classes in y ({len(np.unique(y))} found); need at least 2")


def load_npz(path: str | Path) -> tuple[np.ndarray, np.ndarray, tuple[str, ...]]:
    """Read x, y and optional class_names from an .npz archive."""
    p = _check_file(path)
    try:
        archive = np.load(p, allow_pickle=False)
    except (ValueError, OSError, zipfile.BadZipFile, EOFError) as e:
        raise DataError(f"{p}: not an npz archive ({e})") from None
    if not isinstance(archive, np.lib.npyio.NpzFile):
        raise DataError(f"{p}: not an npz archive (a single .npy array); save with np.savez(x=..., y=...)")
    with archive:
        for key in ("x", "y"):
            if key not in archive.files:
                raise DataError(f"{p}: missing key '{key}' (found: {', '.join(archive.files) or 'none'})")
        try:
            x, y_raw = archive["x"], archive["y"]
            names = tuple(str(s) for s in archive["class_names"]) if "class_names" in archive.files else None
        except ValueError as e:  # object arrays need pickle, which we refuse for safety
            raise DataError(f"{p}: cannot read arrays ({e})") from None
    if x.dtype.kind not in "biuf":
        raise DataError(f"{p}: x must be numeric, got non-numeric dtype {x.dtype}")
    y, default_names = _labels_to_indices(str(p), y_raw)
    if names is None or y_raw.dtype.kind in "US":  # string labels name themselves
        names = default_names
    _check_xy(str(p), x, y, names)
    return x.astype(np.float32), y, names


def _is_number(s: str) -> bool:
    try:
        float(s)
        return True
    except ValueError:
        return False


def load_csv(
    path: str | Path, input_shape: tuple[int, ...] | None
) -> tuple[np.ndarray, np.ndarray, tuple[str, ...]]:
    """Read one example per row: label, then the flattened input, reshaped to `input_shape`.

    A first row whose values are not numbers is taken as a header and skipped.
    """
    p = _check_file(path)
    if not input_shape:
        raise DataError(f"{p}: csv data needs data.input_shape, e.g. [1024, 1] or [32, 32, 1]")
    input_shape = tuple(int(d) for d in input_shape)
    if not 1 <= len(input_shape) <= 3 or min(input_shape) < 1:
        raise DataError(f"{p}: input_shape {input_shape} must be (L,), (L, C) or (H, W, C) of positive sizes")
    size = int(np.prod(input_shape))
    labels: list[str] = []
    rows: list[np.ndarray] = []
    try:
        with open(p, newline="") as f:
            for line_no, row in enumerate(csv.reader(f), start=1):
                row = [v.strip() for v in row]
                if not any(row):
                    continue
                values = row[1:]
                if line_no == 1 and values and not any(_is_number(v) for v in values):
                    continue  # header
                if len(values) != size:
                    raise DataError(
                        f"{p}: line {line_no} has {len(values)} values but input_shape "
                        f"{input_shape} needs {size}"
                    )
                try:
                    rows.append(np.array(values, dtype=np.float32))
                except ValueError:
                    bad = next(v for v in values if not _is_number(v))
                    raise DataError(f"{p}: line {line_no}: non-numeric value {bad!r}") from None
                labels.append(row[0])
    except UnicodeDecodeError:
        raise DataError(f"{p}: not a text csv file") from None
    if not rows:
        raise DataError(f"{p}: no examples found")
    try:
        label_arr = np.array([int(s) for s in labels], dtype=np.int64)
    except ValueError:
        label_arr = np.array(labels)
    y, names = _labels_to_indices(str(p), label_arr)
    x = np.stack(rows).reshape((len(rows),) + input_shape)
    _check_xy(str(p), x, y, names)
    return x, y, names
