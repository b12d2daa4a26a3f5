"""Parameter specs and the model-family interface.

A family declares its parameters with default ranges; the experiment YAML may narrow or override
any of them (same kind of spec). `sample` draws a point with Optuna; `build` turns a point into a
float tf_keras model whose ops quantize to int8 (1D signals are written as 2D, see DESIGN.md).
"""
from __future__ import annotations

import warnings
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, Mapping, Union

import optuna


@dataclass(frozen=True)
class IntRange:
    low: int
    high: int
    step: int = 1


@dataclass(frozen=True)
class FloatRange:
    low: float
    high: float
    log: bool = False


@dataclass(frozen=True)
class Choice:
    options: tuple


ParamSpec = Union[IntRange, FloatRange, Choice]


def suggest(trial: optuna.Trial, name: str, spec: ParamSpec) -> Any:
    if isinstance(spec, IntRange):
        return trial.suggest_int(name, spec.low, spec.high, step=spec.step)
    if isinstance(spec, FloatRange):
        return trial.suggest_float(name, spec.low, spec.high, log=spec.log)
    return trial.suggest_categorical(name, list(spec.options))


class SearchSpace(ABC):
    """A model family. Subclasses set `name`, `signal_kinds` and `defaults`."""

    name: str
    signal_kinds: tuple[str, ...]  # which inputs it accepts: "1d" (1, L, C) and/or "2d" (H, W, C)
    defaults: Mapping[str, ParamSpec]
    # Known-good points, tried first by a search (`search.starting_points`) where they lie in its space,
    # after the points autotune.starting_points picks from the cost ladder.
    starting_points: tuple[Mapping[str, Any], ...] = ()

    def __init__(self, overrides: Mapping[str, ParamSpec] | None = None):
        unknown = set(overrides or {}) - set(self.defaults)
        if unknown:
            raise KeyError(f"unknown parameter(s) for {self.name}: {', '.join(sorted(unknown))}")
        self.ranges: dict[str, ParamSpec] = {**self.defaults, **(overrides or {})}

    @abstractmethod
    def sample(self, trial: optuna.Trial) -> dict[str, Any]:
        """Suggest one point (may be conditional, e.g. per-block filters)."""

    @abstractmethod
    def build(self, params: Mapping[str, Any], input_shape: tuple[int, ...], num_classes: int):
        """A compiled-free float tf_keras.Model ending in softmax over `num_classes`."""

    @abstractmethod
    def weighted_layers(self, params: Mapping[str, Any]) -> int:
        """How many Conv2D, DepthwiseConv2D and Dense layers `build` makes: the layers the
        compression search gives choices of their own (without building the model)."""

    def channel_layers(self, params: Mapping[str, Any]) -> list[int]:
        """The indices (among the `weighted_layers`) of the layers whose output channels structured
        pruning may choose: not a depthwise convolution (its channels follow its input) nor the
        output layer (the last). This default: every layer but the last."""
        return list(range(self.weighted_layers(params) - 1))

    def cost_ladder(self) -> list[dict[str, Any]]:
        """The space's cheapest point, then one parameter one option costlier per step, costs
        growing along it (autotune.starting_points picks the search's first points from it). A
        family without one ([]) starts from its known-good points only."""
        return []

    def contains(self, params: Mapping[str, Any]) -> bool:
        """Whether `params` is a point of this space: every value in its range, none missing or extra."""
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # Optuna warns about a value outside a float or int range
            try:
                return self.sample(optuna.trial.FixedTrial(dict(params))) == dict(params)
            except (ValueError, UserWarning):
                return False
