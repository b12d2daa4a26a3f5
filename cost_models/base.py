"""The cost-model interface: features of a compiled candidate -> flash, RAM, latency on a target.

Features come from the kernel plan (autotune.ir.kernel_plan): one record per kernel call, with
its multiply-accumulates and the other work its kernel does, counted as what it is (outputs,
window positions and gathers, values read, bytes copied). Analytic models come first; learned
models (scikit-learn estimators fitted on runner measurements) implement the same `predict`, so
the search never knows which one it talks to.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

from autotune.measurement import Measurement


@dataclass(frozen=True)
class CallFeatures:
    symbol: str | None  # the kernel called; None: no code (a RESHAPE sharing its input's memory)
    kind: str  # the IR op kind the call implements
    source: str | None  # the kernel library file (code size)
    macs: int  # multiply-accumulates: conv, depthwise and fully connected only
    work: tuple[tuple[str, int], ...]  # other work, by term (KernelCall.work)
    weight_bytes: int  # weights as stored in flash
    const_bytes: int  # other constants: per-channel tables, lookup tables

    def count(self, term: str) -> int:
        """Units of `term`: "macs" or a work term; 0 if the kernel does none of it."""
        return self.macs if term == "macs" else dict(self.work).get(term, 0)


@dataclass(frozen=True)
class ModelFeatures:
    calls: tuple[CallFeatures, ...]
    params: int
    activation_bytes: int  # planned arena plus the caller's input and output buffers where outside it

    @property
    def macs(self) -> int:
        return sum(c.macs for c in self.calls)

    @property
    def weight_bytes(self) -> int:
        return sum(c.weight_bytes for c in self.calls)


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
