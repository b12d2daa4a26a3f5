"""Choosing one trial of a run: by number, the knee of the front, or a small query language.

    knee
    max accuracy
    max accuracy where flash<64KB and latency<=5ms
    min latency where accuracy>=0.8 and ram<32KB
"""
from __future__ import annotations

import re

import numpy as np

from autotune.errors import AutotuneError
from autotune.config import Experiment
from autotune.report.records import TrialRecord, pareto_front, scaled_losses

# query name -> (metric attribute, accepted units with their factor to the attribute's unit)
METRICS = {
    "accuracy": ("accuracy", {"": 1.0, "%": 0.01}),
    "flash": ("flash_kb", {"kb": 1.0, "b": 1 / 1024, "mb": 1024.0, "": 1.0}),
    "ram": ("ram_kb", {"kb": 1.0, "b": 1 / 1024, "mb": 1024.0, "": 1.0}),
    "latency": ("latency_ms", {"ms": 1.0, "us": 1e-3, "s": 1e3, "": 1.0}),
    "params": ("params_count", {"": 1.0, "k": 1e3}),
}
_QUERY = re.compile(r"^\s*(max|min)\s+(\w+)(?:\s+where\s+(.+))?\s*$", re.IGNORECASE)
_CONDITION = re.compile(r"^\s*(\w+)\s*(<=|>=|<|>)\s*([0-9.]+)\s*([a-z%]*)\s*$", re.IGNORECASE)


class PickError(AutotuneError):
    exit_code = 2


def knee(front: list[TrialRecord], experiment: Experiment) -> TrialRecord:
    """The front point closest to the ideal (perfect accuracy at no cost), each objective scaled
    by its limit (the constraint, or what the target has), not by the front's own spread: a
    point twice as fast but 30 points less accurate stays a bad trade however the front looks.
    The front holds useful feasible points only (min_accuracy is a constraint)."""
    scaled = scaled_losses(front, experiment)
    return front[int(np.argmin(np.linalg.norm(scaled, axis=1)))]


def _condition(text: str, query: str):
    m = _CONDITION.match(text)
    if not m or m.group(1).lower() not in METRICS:
        raise PickError(f"--pick {query!r}: cannot read the condition {text.strip()!r}; "
                        f"expected e.g. flash<64KB, latency<=5ms, accuracy>=0.8 "
                        f"(metrics: {', '.join(METRICS)})")
    name, op, number, unit = m.group(1).lower(), m.group(2), float(m.group(3)), m.group(4).lower()
    attr, units = METRICS[name]
    if unit not in units:
        raise PickError(f"--pick {query!r}: unit {m.group(4)!r} does not fit {name} "
                        f"(use {', '.join(u for u in units if u) or 'no unit'})")
    limit = number * units[unit]
    compare = {"<": np.less, "<=": np.less_equal, ">": np.greater, ">=": np.greater_equal}[op]
    return lambda r: bool(compare(r.metrics[attr], limit))


def pick(records: list[TrialRecord], experiment: Experiment, query: str) -> TrialRecord:
    """The trial a --pick query selects, among feasible (and so useful) trials."""
    front = pareto_front(records, experiment.objectives)
    if not front:
        raise PickError("the run has no feasible completed trial to pick from")
    if query.strip().lower() == "knee":
        return knee(front, experiment)
    m = _QUERY.match(query)
    if not m or m.group(2).lower() not in METRICS:
        raise PickError(f"--pick {query!r}: expected 'knee' or '(max|min) <metric> [where <condition> "
                        f"[and ...]]', metrics: {', '.join(METRICS)}")
    conditions = [_condition(c, query) for c in re.split(r"\s+and\s+", m.group(3) or "", flags=re.IGNORECASE)
                  if c.strip()]
    candidates = [r for r in records if r.feasible and all(c(r) for c in conditions)]
    if not candidates:
        raise PickError(f"--pick {query!r}: no feasible trial meets the conditions")
    attr = METRICS[m.group(2).lower()][0]
    sign = 1 if m.group(1).lower() == "min" else -1
    # Ties go to the point that is best on the remaining objectives (a front point).
    on_front = {r.number for r in front}
    return min(candidates, key=lambda r: (sign * r.metrics[attr], r.number not in on_front, r.number))


