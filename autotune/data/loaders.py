"""The user's own data: .npz (arrays `x`, `y`, optional `x_val`/`y_val`, `x_test`/`y_test` and
`class_names` or `classes`) or .csv files (label, values...), one per split.

Both return raw arrays: x (N, ...) float32 as stored, y (N,) int64 in [0, len(class_names)).
Shaping into model inputs, normalisation and splitting happen in `dataset.load_dataset`.
"""
from __future__ import annotations

import csv
import zipfile
from dataclasses import dataclass
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


def _check_xy(where: str, x: np.ndarray, y: np.ndarray, class_names: tuple[str, ...], xk: str = "x",
              training: bool = True) -> None:
    yk = "y" + xk[1:]
    if x.ndim not in (2, 3, 4):
        raise DataError(
            f"{where}: {xk} has shape {x.shape}; expected (N, L), (N, L, C) or (N, H, W, C)"
        )
    if y.ndim != 1:
        raise DataError(f"{where}: {yk} must be one label per example, got shape {y.shape}")
    if len(x) != len(y):
        raise DataError(f"{where}: {xk} has {len(x)} examples but {yk} has {len(y)} labels (length mismatch)")
    if not np.all(np.isfinite(x)):
        raise DataError(f"{where}: {xk} contains NaN or infinite values")
    if len(y) and y.max() >= len(class_names):
        raise DataError(
            f"{where}: label {int(y.max())} is out of range for {len(class_names)} class_names"
        )
    if not training:
        return
    if len(np.unique(y)) < 2:
        raise DataError(f"{where}: fewer than 2 classes in y ({len(np.unique(y))} found); need at least 2")


@dataclass(frozen=True, eq=False)
class RawData:
    """Arrays as stored, labels mapped to indices jointly over every split the user gave."""

    x: np.ndarray  # training examples (everything, when no test split is given)
    y: np.ndarray
    class_names: tuple[str, ...]
    x_val: np.ndarray | None = None
    y_val: np.ndarray | None = None
    x_test: np.ndarray | None = None
    y_test: np.ndarray | None = None


def _joint(parts: dict[str, tuple[str, str, np.ndarray, np.ndarray]], names: tuple[str, ...] | None) -> RawData:
    """Map the labels of every split together (a class seen only in the test split still gets its
    index). `parts`: split -> (file, name of x in the file, x, y)."""
    where = parts["train"][0]
    labels = [np.asarray(y) for *_, y in parts.values()]
    kinds = {y.dtype.kind in "US" for y in labels}
    if len(kinds) > 1:
        raise DataError(f"{where}: the splits mix integer and string labels")
    y_all, default_names = _labels_to_indices(where, np.concatenate(labels))
    if names is None or kinds == {True}:  # string labels name themselves
        names = default_names
    out: dict[str, np.ndarray] = {}
    start = 0
    for split, (file, xk, x, y) in parts.items():
        y_split = y_all[start:start + len(y)]
        start += len(y)
        if x.dtype.kind not in "biuf":
            raise DataError(f"{file}: {xk} must be numeric, got non-numeric dtype {x.dtype}")
        _check_xy(file, x, y_split, names, xk, split == "train")
        out[_key(split, "x")], out[_key(split, "y")] = x.astype(np.float32), y_split
    shapes = {out[_key(s, "x")].shape[1:] for s in parts}
    if len(shapes) > 1:
        raise DataError(f"{where}: the splits have different example shapes {sorted(shapes)}")
    return RawData(class_names=names, **out)


def _key(split: str, array: str) -> str:
    return array if split == "train" else f"{array}_{split}"


def load_npz(path: str | Path) -> RawData:
    """Read x, y, optional x_val/y_val and x_test/y_test, and class_names (or classes)."""
    p = _check_file(path)
    try:
        archive = np.load(p, allow_pickle=False)
    except (ValueError, OSError, zipfile.BadZipFile, EOFError) as e:
        raise DataError(f"{p}: not an npz archive ({e})") from None
    if not isinstance(archive, np.lib.npyio.NpzFile):
        raise DataError(f"{p}: not an npz archive (a single .npy array); save with np.savez(x=..., y=...)")
    with archive:
        found = ", ".join(archive.files) or "none"
        for key in ("x", "y"):
            if key not in archive.files:
                raise DataError(f"{p}: missing key '{key}' (found: {found})")
        for split in ("val", "test"):
            have = [k for k in (f"x_{split}", f"y_{split}") if k in archive.files]
            if len(have) == 1:
                other = ({f"x_{split}", f"y_{split}"} - set(have)).pop()
                raise DataError(f"{p}: has '{have[0]}' but no '{other}' (found: {found})")
        name_key = next((k for k in ("class_names", "classes") if k in archive.files), None)
        try:
            parts = {split: (str(p), _key(split, "x"), archive[_key(split, "x")], archive[_key(split, "y")])
                     for split in ("train", "val", "test") if _key(split, "x") in archive.files}
            names = tuple(str(s) for s in archive[name_key]) if name_key else None
        except ValueError as e:  # object arrays need pickle, which we refuse for safety
            raise DataError(f"{p}: cannot read arrays ({e})") from None
    return _joint(parts, names)


def _is_number(s: str) -> bool:
    try:
        float(s)
        return True
    except ValueError:
        return False


def load_csv(path: str | Path, input_shape: tuple[int, ...] | None, val_path: str | Path | None = None,
             test_path: str | Path | None = None) -> RawData:
    """The training csv and the optional validation and test csv files, labels mapped jointly."""
    paths = {"train": path, "val": val_path, "test": test_path}
    parts = {split: (str(p), "x", *_read_csv(p, input_shape)) for split, p in paths.items() if p is not None}
    return _joint(parts, None)


def _read_csv(path: str | Path, input_shape: tuple[int, ...] | None) -> tuple[np.ndarray, np.ndarray]:
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
    return np.stack(rows).reshape((len(rows),) + input_shape), label_arr
