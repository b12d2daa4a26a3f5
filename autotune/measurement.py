"""A number with its provenance: every reported cost says whether it was predicted or measured."""
from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class Measurement:
    value: float
    unit: str
    source: str  # e.g. "measured:tflm-interpreter", "predicted:analytic-rp2040"

    @property
    def measured(self) -> bool:
        return self.source.startswith("measured:")

    def as_dict(self) -> dict:
        return {"value": self.value, "unit": self.unit, "source": self.source}


def wilson_interval(fraction: float, n: int, z: float = 1.96) -> tuple[float, float]:
    """The 95 % Wilson score interval of a proportion measured on `n` examples."""
    if n <= 0:
        return 0.0, 1.0
    centre = (fraction + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(fraction * (1 - fraction) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


@dataclass(frozen=True)
class Accuracy:
    """An accuracy with the number of examples behind it and its 95 % Wilson interval."""

    value: float
    n: int  # distinct examples
    source: str  # e.g. "measured:reference-executor"
    spread: float | None = None  # k-fold: standard deviation of the per-fold accuracies

    @property
    def interval(self) -> tuple[float, float]:
        return wilson_interval(self.value, self.n)

    def as_dict(self) -> dict:
        low, high = self.interval
        out = {"value": self.value, "n": self.n, "ci95": [round(low, 4), round(high, 4)], "source": self.source}
        if self.spread is not None:
            out["fold_std"] = self.spread
        return out

    def text(self) -> str:
        low, high = self.interval
        spread = f", fold std {self.spread:.3f}" if self.spread is not None else ""
        return f"{self.value:.3f} (95% CI {low:.3f}-{high:.3f}, n={self.n}{spread})"
