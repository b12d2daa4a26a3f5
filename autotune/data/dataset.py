"""Datasets ready for training: model-shaped float32 inputs, int64 labels, stratified splits."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from autotune.data.loaders import load_csv, load_npz
from autotune.data.spectral import CLASS_NAMES, generate_spectral
from autotune.errors import DataError

SOURCES = ("synthetic_spectral", "npz", "csv")
NORMALIZE = ("per_sample", "none")


@dataclass(frozen=True)
class DataSpec:
    """The YAML `data:` section."""

    source: str = "synthetic_spectral"  # "synthetic_spectral" | "npz" | "csv"
    path: str | None = None  # for npz / csv
    samples_per_class: int = 500  # synthetic only
    length: int = 1024  # synthetic only
    input_shape: tuple[int, ...] | None = None  # csv only: (length, channels) or (h, w, channels)
    split: tuple[float, float, float] = (0.7, 0.15, 0.15)  # train, val, test fractions
    normalize: str = "per_sample"  # "per_sample" (zero mean, unit std per example) | "none"


@dataclass(frozen=True, eq=False)
class Dataset:
    """x float32 in model shape: 1D signals as (1, L, C), images as (H, W, C); y int64."""

    name: str
    class_names: tuple[str, ...]
    signal_kind: str  # "1d" | "2d"
    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(self.x_train.shape[1:])

    @property
    def num_classes(self) -> int:
        return len(self.class_names)


def _to_model_shape(x: np.ndarray) -> tuple[np.ndarray, str]:
    # 1D signals become (1, L, C) so Conv2D/(1, k) kernels work with tfmot QAT and pruning.
    if x.ndim == 2:
        return x[:, None, :, None], "1d"
    if x.ndim == 3:
        return x[:, None, :, :], "1d"
    return x, "2d"


def _normalize(x: np.ndarray, how: str) -> np.ndarray:
    if how == "none":
        return x
    axes = tuple(range(1, x.ndim))
    mean = x.mean(axis=axes, keepdims=True, dtype=np.float64)
    std = x.std(axis=axes, keepdims=True, dtype=np.float64)
    return ((x - mean) / np.maximum(std, 1e-12)).astype(np.float32)  # constant examples -> zeros


def _split_indices(
    where: str, y: np.ndarray, class_names: tuple[str, ...], split: tuple[float, float, float], seed: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Stratified: each class is split by the fractions, every split gets at least one of each."""
    rng = np.random.default_rng(seed)
    parts: tuple[list, list, list] = ([], [], [])
    for k, name in enumerate(class_names):
        idx = rng.permutation(np.flatnonzero(y == k))
        n = len(idx)
        n_val = max(1, round(n * split[1]))
        n_test = max(1, round(n * split[2]))
        if n - n_val - n_test < 1:
            raise DataError(
                f"{where}: class '{name}' has only {n} examples, too few to split into "
                f"train/val/test {split}; need at least 3"
            )
        parts[0].append(idx[n_val + n_test :])
        parts[1].append(idx[:n_val])
        parts[2].append(idx[n_val : n_val + n_test])
    # Shuffle within each split so batches mix classes.
    return tuple(rng.permutation(np.concatenate(p)) for p in parts)  # type: ignore[return-value]


def load_dataset(spec: DataSpec, seed: int) -> Dataset:
    """Load or generate the data named by `spec`; deterministic in `seed`."""
    if spec.source not in SOURCES:
        raise DataError(f"data.source: unknown source {spec.source!r}; choose one of {', '.join(SOURCES)}")
    if spec.normalize not in NORMALIZE:
        raise DataError(f"data.normalize: unknown {spec.normalize!r}; choose one of {', '.join(NORMALIZE)}")
    split = tuple(float(f) for f in spec.split)
    if len(split) != 3 or min(split) <= 0 or abs(sum(split) - 1) > 1e-6:
        raise DataError(f"data.split: {spec.split} must be three positive fractions summing to 1")
    if spec.source == "synthetic_spectral":
        x, y = generate_spectral(spec.samples_per_class, spec.length, seed)
        name, class_names, where = "synthetic_spectral", CLASS_NAMES, "synthetic_spectral"
    else:
        if not spec.path:
            raise DataError(f"data.path: required for source {spec.source!r}")
        if spec.source == "npz":
            x, y, class_names = load_npz(spec.path)
        else:
            x, y, class_names = load_csv(spec.path, spec.input_shape)
        name, where = Path(spec.path).stem, str(spec.path)
    x, kind = _to_model_shape(x)
    x = _normalize(x.astype(np.float32, copy=False), spec.normalize)
    tr, va, te = _split_indices(where, y, class_names, split, seed)  # type: ignore[arg-type]
    return Dataset(
        name=name,
        class_names=tuple(class_names),
        signal_kind=kind,
        x_train=x[tr], y_train=y[tr],
        x_val=x[va], y_val=y[va],
        x_test=x[te], y_test=y[te],
    )
