"""A number with its provenance: every reported cost says whether it was predicted or measured."""
from __future__ import annotations

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
