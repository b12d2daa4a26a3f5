"""The cost-model interface: features of a compiled candidate -> flash, RAM, latency on a target.

Analytic models come first; learned models (scikit-learn estimators fitted on runner
measurements) implement the same `predict`, so the search never knows which one it talks to.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

from autotune.measurement import Measurement


@dataclass(frozen=True)
class OpFeatures:
    kind: str
    macs: int
    input_elems: int  # all non-constant inputs
    output_elems: int
    weight_bytes: int  # constant inputs as stored
    channels: int  # output channels (per-channel quantization params)
    pointwise: bool = False  # a 1x1 convolution (different cost from a spatial one)

    @property
    def cost_kind(self) -> str:
        """The op kind cost tables are keyed by: a 1x1 convolution is CONV_2D_1x1."""
        return "CONV_2D_1x1" if self.pointwise else self.kind


@dataclass(frozen=True)
class ModelFeatures:
    ops: tuple[OpFeatures, ...]
    params: int
    activation_bytes: int  # planned arena plus the caller's input and output buffers

    @property
    def macs(self) -> int:
        return sum(op.macs for op in self.ops)

    @property
    def weight_bytes(self) -> int:
        return sum(op.weight_bytes for op in self.ops)


@dataclass(frozen=True)
class Costs:
    flash: Measurement  # bytes
    ram: Measurement  # bytes
    latency: Measurement  # milliseconds


class CostModel(ABC):
    target: str

    @abstractmethod
    def predict(self, features: ModelFeatures) -> Costs:
        """Pure: the same features always give the same costs."""
