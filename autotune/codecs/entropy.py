"""The lossless floor of a weight tensor: its empirical (order-0) entropy."""
from __future__ import annotations

import numpy as np


def entropy_bits(values: np.ndarray) -> float:
    """Empirical entropy of the int8 values, bits per value."""
    _, counts = np.unique(np.asarray(values).reshape(-1), return_counts=True)
    p = counts / counts.sum()
    return float(-(p * np.log2(p)).sum()) + 0.0  # + 0.0: no -0.0 for constant data


def entropy_bound_bytes(values: np.ndarray) -> float:
    """n x H / 8: no order-0 lossless storage of these values holds them in fewer payload bytes."""
    return np.asarray(values).size * entropy_bits(values) / 8
