"""Cheap early answers: a short first training decides whether a candidate trains fully.

Optuna has no multi-objective pruner; this is ours. Every trained candidate first runs a fraction
of its training rounds (`search.early_stop.fraction`, 0.25 by default; at least one round past the
learning-rate warm-up) and its float model's
accuracy is measured on the validation data (on k-fold data: the first fold's held-out part).
Its costs are exact before training (the untrained model's build), so the rule compares it with
the candidates trained before it, at equal training:

    stop when an earlier candidate costs no more flash, RAM and latency and its short-run
    accuracy is higher by more than max(margin, 1.96 standard errors of the difference).

Such a candidate is dominated on every cost and clearly, not by noise, on accuracy after the same
short training; successive halving on validation accuracy, with the bin being "no costlier". It is
recorded as early-stopped with its partial accuracy, counts against the trial budget (it trained),
is infeasible to the sampler and never reaches the front.
"""
from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class Rival:
    """A candidate trained before, as the rule sees it."""

    number: int
    flash_kb: float
    ram_kb: float
    latency_ms: float
    short_accuracy: float
    n: int  # examples the short-run accuracy was measured on


def short_rounds(rounds: int, fraction: float, warmup: int) -> int:
    """Rounds of the short run: the fraction of the schedule's rounds, but at least one round past
    the learning-rate warm-up (during it every model is still near chance)."""
    return min(rounds, max(round(rounds * fraction), warmup + 1))


def noise_margin(a: float, b: float, n_a: int, n_b: int) -> float:
    """1.96 standard errors of the difference of two accuracies on n_a and n_b examples."""
    return 1.96 * math.sqrt(a * (1 - a) / max(n_a, 1) + b * (1 - b) / max(n_b, 1))


def dominating_rival(accuracy: float, n: int, costs: tuple[float, float, float], rivals: tuple[Rival, ...],
                     margin: float) -> Rival | None:
    """The first earlier candidate that clearly dominates this one after the short run, else None.
    `costs` is (flash KB, RAM KB, latency ms)."""
    flash, ram, latency = costs
    for r in rivals:
        no_costlier = r.flash_kb <= flash and r.ram_kb <= ram and r.latency_ms <= latency
        if no_costlier and r.short_accuracy - accuracy > max(margin, noise_margin(r.short_accuracy, accuracy, r.n, n)):
            return r
    return None
