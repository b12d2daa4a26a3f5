"""Datasets ready for training: model-shaped float32 inputs, int64 labels, stratified splits.

The test split is the user's when they give one, else a stratified part held out by
`data.split`. Validation is drawn from the training data only: the user's validation split, a
stratified part of the training data, or, below `data.cv_below` training examples, repeated
stratified k-fold over all of it. The test split never drives training or the search.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from autotune.data.loaders import RawData, load_csv, load_npz
from autotune.data.spectral import CLASS_NAMES, generate_spectral
from autotune.errors import DataError

SOURCES = ("synthetic_spectral", "npz", "csv")
NORMALIZE = ("per_sample", "none")


@dataclass(frozen=True)
class DataSpec:
    """The YAML `data:` section."""

    source: str = "synthetic_spectral"  # "synthetic_spectral" | "npz" | "csv"
    path: str | None = None  # for npz / csv (absolute once the config is read)
    val_path: str | None = None  # csv only: the user's validation split
    test_path: str | None = None  # csv only: the user's test split
    samples_per_class: int = 500  # synthetic only
    length: int = 1024  # synthetic only
    input_shape: tuple[int, ...] | None = None  # csv only: (length, channels) or (h, w, channels)
    split: tuple[float, float, float] = (0.7, 0.15, 0.15)  # train, val, test fractions
    normalize: str = "per_sample"  # "per_sample" (zero mean, unit std per example) | "none"
    cv_below: int = 500  # fewer training examples than this: k-fold validation
    cv_folds: int = 5
    cv_repeats: int = 1


@dataclass(frozen=True, eq=False)
class Dataset:
    """x float32 in model shape: 1D signals as (1, L, C), images as (H, W, C); y int64.

    With k-fold validation (`folds` not empty) `x_val` is None and each fold is a pair of index
    arrays (train, validation) into `x_train`.
    """

    name: str
    class_names: tuple[str, ...]
    signal_kind: str  # "1d" | "2d"
    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray | None
    y_val: np.ndarray | None
    x_test: np.ndarray
    y_test: np.ndarray
    test_source: str = "held out"  # "user" (the user's test split) | "held out" (by data.split)
    folds: tuple[tuple[np.ndarray, np.ndarray], ...] = ()
    cv_repeats: int = 1

    @property
    def kfold(self) -> bool:
        return bool(self.folds)

    @property
    def n_val(self) -> int:
        """Distinct validation examples (each is validated once per repeat under k-fold)."""
        return len(self.y_train) if self.kfold else len(self.y_val)

    @property
    def majority_rate(self) -> float:
        """The accuracy of always answering the most common class, on the validation examples."""
        y = self.y_train if self.kfold else self.y_val
        return float(np.bincount(y).max() / len(y))

    @property
    def validation(self) -> str:
        """How validation accuracy is measured, in words (for summaries and model cards)."""
        if self.kfold:
            repeats = f", repeated {self.cv_repeats} times" if self.cv_repeats > 1 else ""
            return (f"stratified {len(self.folds) // self.cv_repeats}-fold cross-validation{repeats} on the "
                    f"{len(self.y_train)} training examples")
        return f"{len(self.y_val)} validation examples drawn from the training data"

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


def _holdout(
    where: str, y: np.ndarray, class_names: tuple[str, ...], fraction: float, seed: int, what: str
) -> tuple[np.ndarray, np.ndarray]:
    """Stratified: hold out `fraction` of each class (at least one), keep at least one for training."""
    rng = np.random.default_rng(seed)
    keep, held = [], []
    for k, name in enumerate(class_names):
        idx = rng.permutation(np.flatnonzero(y == k))
        if not len(idx):
            continue
        n_held = max(1, round(len(idx) * fraction))
        if len(idx) - n_held < 1:
            raise DataError(
                f"{where}: class '{name}' has only {len(idx)} examples, too few to split off a {what} part; "
                f"need at least 2 in the training data (or give a {what} split)"
            )
        keep.append(idx[n_held:])
        held.append(idx[:n_held])
    # Shuffle within each split so batches mix classes.
    return rng.permutation(np.concatenate(keep)), rng.permutation(np.concatenate(held))


def _folds(where: str, y: np.ndarray, class_names: tuple[str, ...], folds: int, repeats: int,
           seed: int) -> tuple[tuple[np.ndarray, np.ndarray], ...]:
    from sklearn.model_selection import RepeatedStratifiedKFold

    counts = np.bincount(y, minlength=len(class_names))
    smallest = int(np.argmin(np.where(counts > 0, counts, np.iinfo(np.int64).max)))
    k = min(folds, int(counts[smallest]))
    if k < 2:
        raise DataError(f"{where}: class '{class_names[smallest]}' has only {counts[smallest]} training example(s); "
                        f"k-fold validation needs at least 2 per class")
    split = RepeatedStratifiedKFold(n_splits=k, n_repeats=repeats, random_state=seed)
    return tuple((tr, va) for tr, va in split.split(np.zeros(len(y)), y))


def _read(spec: DataSpec, seed: int) -> tuple[str, str, RawData]:
    if spec.source == "synthetic_spectral":
        x, y = generate_spectral(spec.samples_per_class, spec.length, seed)
        return "synthetic_spectral", "synthetic_spectral", RawData(x, y, CLASS_NAMES)
    if not spec.path:
        raise DataError(f"data.path: required for source {spec.source!r}")
    if spec.source == "npz":
        raw = load_npz(spec.path)
    else:
        raw = load_csv(spec.path, spec.input_shape, spec.val_path, spec.test_path)
    return Path(spec.path).stem, str(spec.path), raw


def load_dataset(spec: DataSpec, seed: int) -> Dataset:
    """Load or generate the data named by `spec`; deterministic in `seed`."""
    if spec.source not in SOURCES:
        raise DataError(f"data.source: unknown source {spec.source!r}; choose one of {', '.join(SOURCES)}")
    if spec.normalize not in NORMALIZE:
        raise DataError(f"data.normalize: unknown {spec.normalize!r}; choose one of {', '.join(NORMALIZE)}")
    split = tuple(float(f) for f in spec.split)
    if len(split) != 3 or min(split) <= 0 or abs(sum(split) - 1) > 1e-6:
        raise DataError(f"data.split: {spec.split} must be three positive fractions summing to 1")
    name, where, raw = _read(spec, seed)

    def prepare(x: np.ndarray) -> tuple[np.ndarray, str]:
        x, kind = _to_model_shape(x)
        return _normalize(x.astype(np.float32, copy=False), spec.normalize), kind

    x, kind = prepare(raw.x)
    y = raw.y
    if raw.x_test is not None:
        x_test, y_test, test_source = prepare(raw.x_test)[0], raw.y_test, "user"
    else:
        keep, held = _holdout(where, y, raw.class_names, split[2], seed, "test")
        x, y, x_test, y_test, test_source = x[keep], y[keep], x[held], y[held], "held out"
    folds: tuple = ()
    if raw.x_val is not None:
        x_val, y_val = prepare(raw.x_val)[0], raw.y_val
    elif len(y) < spec.cv_below:
        x_val = y_val = None
        folds = _folds(where, y, raw.class_names, spec.cv_folds, spec.cv_repeats, seed)
    else:
        keep, held = _holdout(where, y, raw.class_names, split[1] / (split[0] + split[1]), seed + 1, "validation")
        x, y, x_val, y_val = x[keep], y[keep], x[held], y[held]
    return Dataset(
        name=name,
        class_names=tuple(raw.class_names),
        signal_kind=kind,
        x_train=x, y_train=y,
        x_val=x_val, y_val=y_val,
        x_test=x_test, y_test=y_test,
        test_source=test_source,
        folds=folds,
        cv_repeats=spec.cv_repeats if folds else 1,
    )


SMALL_TEST = 100  # fewer test examples than this: the test accuracy is only a rough guide


def describe_data(dataset: Dataset) -> dict:
    """What the accuracies of a run rest on, for the study, outputs and model cards."""
    return {
        "name": dataset.name,
        "train_examples": int(len(dataset.y_train)),
        "validation": dataset.validation,
        "n_val": int(dataset.n_val),
        "test": ("the user's test split" if dataset.test_source == "user"
                 else "held out from the data by data.split"),
        "n_test": int(len(dataset.y_test)),
        "majority_rate": round(dataset.majority_rate, 4),
    }
