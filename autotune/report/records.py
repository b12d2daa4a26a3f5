"""Trial records read back from the study, the Pareto front and its hypervolume."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import optuna

from autotune.config import Experiment
from device_runners.targets import get_target

# A failed trial without a reason of ours was failed by a heartbeat check (autotune.storage).
HEARTBEAT_LOST = "interrupted: its process stopped (no heartbeat)"
INTERRUPTED = "interrupted"  # failed by a signal to its process
OVER_BUDGET = "not run: other processes took the rest of the budget"

# objective -> (user attribute holding its value, direction)
OBJECTIVE_ATTRS = {
    "accuracy": ("accuracy", "maximize"),
    "flash": ("flash_kb", "minimize"),
    "ram": ("ram_kb", "minimize"),
    "latency": ("latency_ms", "minimize"),
}


@dataclass(frozen=True)
class TrialRecord:
    number: int
    state: str  # COMPLETE | REJECTED (over a hard limit before training) | STOPPED (early-stopped after its
    # short run, partial accuracy) | FAIL | PRUNED | RUNNING | WAITING
    params: dict[str, Any]
    metrics: dict[str, Any] = field(default_factory=dict)  # accuracy, flash_kb, ..., sources, stage_seconds
    constraints: dict[str, float] = field(default_factory=dict)  # <= 0 is satisfied
    reason: str = ""
    duration_s: float | None = None

    @property
    def complete(self) -> bool:
        return self.state == "COMPLETE"

    @property
    def feasible(self) -> bool:
        return self.complete and all(c <= 0 for c in self.constraints.values())

    @property
    def counts_toward_budget(self) -> bool:
        """Trained (fully or early-stopped) or failed by the candidate itself (autotune.study)."""
        return self.state in ("COMPLETE", "STOPPED") or \
            (self.state == "FAIL" and self.reason not in (INTERRUPTED, OVER_BUDGET, HEARTBEAT_LOST))


def read_records(study: optuna.Study) -> list[TrialRecord]:
    records = []
    for t in study.get_trials(deepcopy=False):
        attrs = dict(t.user_attrs)
        duration = (t.datetime_complete - t.datetime_start).total_seconds() \
            if t.datetime_complete and t.datetime_start else None
        rejected = attrs.pop("rejected", None)
        stopped = attrs.pop("early_stopped", None)
        state = "REJECTED" if rejected else "STOPPED" if stopped else t.state.name
        records.append(TrialRecord(
            number=t.number, state=state, params=dict(t.params),
            metrics={k: v for k, v in attrs.items() if k != "fail_reason"},
            constraints=dict(t.constraints or {}), duration_s=duration,
            reason=rejected or stopped or attrs.get("fail_reason")
            or (HEARTBEAT_LOST if t.state.name == "FAIL" else "")))
    return records


def losses(records: list[TrialRecord], objectives: tuple[str, ...]) -> np.ndarray:
    """Objective values with every objective turned into one to minimise."""
    rows = []
    for r in records:
        row = []
        for name in objectives:
            attr, direction = OBJECTIVE_ATTRS[name]
            value = float(r.metrics[attr])
            row.append(-value if direction == "maximize" else value)
        rows.append(row)
    return np.array(rows, dtype=float).reshape(len(records), len(objectives))


def pareto_front(records: list[TrialRecord], objectives: tuple[str, ...]) -> list[TrialRecord]:
    """Feasible trials no other feasible trial dominates; ties in every objective keep the first."""
    feasible = [r for r in records if r.feasible]
    if not feasible:
        return []
    values = losses(feasible, objectives)
    front = []
    for i, row in enumerate(values):
        dominated = np.any(np.all(values <= row, axis=1) & np.any(values < row, axis=1))
        duplicate = np.any(np.all(values[:i] == row, axis=1))
        if not dominated and not duplicate:
            front.append(feasible[i])
    return front


def reference_point(experiment: Experiment) -> dict[str, float]:
    """Limits that bound the hypervolume: the constraints, else what the target can hold."""
    target = get_target(experiment.target)
    c = experiment.constraints
    return {
        "accuracy": 0.0,
        "flash": c.max_flash_kb or target.flash_bytes / 1024,
        "ram": c.max_ram_kb or target.sram_bytes / 1024,
        "latency": c.max_latency_ms or 1000.0,
    }


def scaled_losses(records: list[TrialRecord], experiment: Experiment) -> np.ndarray:
    """Objectives as losses in units of their limits: 1 - accuracy, and each cost divided by its
    constraint (or by what the target has): 1.0 is the limit, 0.0 a perfect, free model."""
    objectives = experiment.objectives
    ref = reference_point(experiment)
    scale = np.array([1.0 if n == "accuracy" else ref[n] for n in objectives])
    points = losses(records, objectives) / scale
    points[:, [i for i, n in enumerate(objectives) if n == "accuracy"]] += 1.0  # 1 - accuracy
    return points


def hypervolume(front: list[TrialRecord], experiment: Experiment) -> float:
    """Hypervolume of the front, each objective scaled to [0, 1] by the reference point."""
    from optuna._hypervolume import compute_hypervolume

    if not front:
        return 0.0
    objectives = experiment.objectives
    points = scaled_losses(front, experiment)
    points = points[np.all(points < 1.0, axis=1)]
    return float(compute_hypervolume(points, np.ones(len(objectives)))) if len(points) else 0.0


@dataclass(frozen=True)
class ProgressPoint:
    trials: int  # trials counted against the budget so far (trained, early-stopped, failed)
    minutes: float  # search time so far: durations of every trial up to here, rejections and duplicates too
    hypervolume: float  # of the feasible front of the trials up to here


def progress(records: list[TrialRecord], experiment: Experiment) -> list[ProgressPoint]:
    """The hypervolume after each trial that counts against the budget, in trial order (a
    rejection or a duplicate adds its seconds, not a trial)."""
    points, seen, seconds, trials = [], [], 0.0, 0
    for r in sorted(records, key=lambda r: r.number):
        seconds += r.duration_s or 0.0
        seen.append(r)
        if r.counts_toward_budget:
            trials += 1
            points.append(ProgressPoint(trials, seconds / 60,
                                        hypervolume(pareto_front(seen, experiment.objectives), experiment)))
    return points
