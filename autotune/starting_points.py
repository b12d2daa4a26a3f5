"""Starting points that span the cost range of the experiment's own space, chosen by the cost model
before any training.

A family lists its space as a cost ladder (`SearchSpace.cost_ladder`): the cheapest point of the
space, then one parameter made one option costlier per step. The cost model prices the rungs of
the untrained models exactly as a trial's first stage does (generated C built for the target,
latency predicted), and the search starts from three of them: the cheapest, the costliest within
the hard limits, and the rung half-way between. Costs grow along the ladder, so the costliest
rung within the limits is found by bisection: a handful of untrained models priced, none trained.
"""
from __future__ import annotations

from typing import Any, Callable

from autotune.config import Experiment
from autotune.data import Dataset
from search_spaces.base import SearchSpace


def spanning_points(space: SearchSpace, experiment: Experiment, dataset: Dataset) -> list[dict[str, Any]]:
    """The cheapest, middle and costliest rungs of the family's cost ladder within the limits
    (fewer when they coincide; none when even the cheapest is over a limit)."""
    ladder = [p for p in space.cost_ladder() if space.contains(p)]
    return pick_spanning(ladder, lambda params: _within_limits(params, space, experiment, dataset))


def pick_spanning(ladder: list[dict[str, Any]], within: Callable[[dict[str, Any]], bool]) -> list[dict[str, Any]]:
    """Rungs 0, last // 2 and last, where `last` is the costliest rung `within` the limits,
    found by bisection over a ladder whose costs grow."""
    if not ladder or not within(ladder[0]):
        return []
    low, high = 0, len(ladder)  # ladder[low] is within the limits; ladder[high:] is not (or absent)
    while high - low > 1:
        middle = (low + high) // 2
        low, high = (middle, high) if within(ladder[middle]) else (low, middle)
    picked: list[dict[str, Any]] = []
    for i in (0, low // 2, low):
        if ladder[i] not in picked:
            picked.append(ladder[i])
    return picked


def _within_limits(params: dict[str, Any], space: SearchSpace, experiment: Experiment, dataset: Dataset) -> bool:
    from autotune.compress.search import layer_choices
    from autotune.trial import DoesNotFit, over_limits, untrained_costs

    specs, codecs = layer_choices(params, experiment.compression, space.weighted_layers(params))
    try:
        costs = untrained_costs(lambda: space.build(params, dataset.input_shape, dataset.num_classes), dataset,
                                experiment, experiment.seed, "rung", specs, codecs)
    except DoesNotFit:  # over the target's memories at all: beyond any limit
        return False
    return not over_limits(costs, experiment)
