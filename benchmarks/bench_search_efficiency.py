"""Search efficiency: the default search (multivariate TPE, the family's starting points, early
stopping) against random sampling, on two search spaces, several seeds, equal trial budgets.

Spaces: the synthetic spectral experiment (experiments/spectral.yaml) and GunPoint (UCR, official
50/150 split, experiments/gunpoint.yaml). To fit this shared 2-core machine every candidate trains
with a shorter schedule than the shipped experiments (BENCH_TRAINING below, the same for every
sampler); limits, objectives and data are the experiments' own.

Hypervolume: the feasible front's, each objective a loss scaled by its limit (1 - accuracy,
flash / max_flash_kb, RAM / max_ram_kb, latency / max_latency_ms), reference point (1, 1, 1, 1):
fixed per space, so runs compare (autotune.report.records.hypervolume). A 48-trial run gives its
24-trial hypervolume from its first 24 trials that count against the budget. Minutes: the sum of
the trial durations up to there (rejections and duplicate draws included).

Every run is an ordinary resumable study under benchmarks/runs/search_efficiency/: an interrupted
benchmark continues where it stopped when run again. Runs go seed by seed, and the default's
trials 25-48 come last, so a partial benchmark still compares both samplers at 24 trials.
Writes benchmarks/results/search_efficiency.json. `python benchmarks/bench_search_efficiency.py
screen` runs only the sampler screen (NSGA-II and TPE without starting points or early stopping,
spectral, first seed, 24 trials) beside the default and random runs of that seed.
"""
from __future__ import annotations

import dataclasses
import json
import statistics
import subprocess
import sys
from pathlib import Path

from autotune.config import SAMPLERS, EarlyStop, load_experiment
from autotune.data.public import write_all
from autotune.report.records import progress, read_records
from autotune.study import open_study, run_search

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "search_efficiency.json"
RUNS = ROOT / "benchmarks" / "runs" / "search_efficiency"
SPACES = ("spectral", "gunpoint")
SEEDS = (1, 2, 3)
BUDGETS = (24, 48)
DEFAULT = SAMPLERS[0]
# name -> Experiment fields. The default is what an experiment gets when it says nothing: its
# sampler, the family's starting points, early stopping; the others search without either.
CONFIGS = {
    DEFAULT: {"sampler": DEFAULT, "starting_points": True, "early_stop": EarlyStop()},
    "random": {"sampler": "random", "starting_points": False, "early_stop": None},
    "nsga2": {"sampler": "nsga2", "population": 8, "starting_points": False, "early_stop": None},
    "tpe-plain": {"sampler": "tpe", "starting_points": False, "early_stop": None},
}
SCREEN = ("nsga2", "tpe-plain")
# Cheaper trials than the shipped experiments (spectral: 400 examples a class, 20 epochs; GunPoint: 5
# folds, 60 epochs; both at least 600 steps), the same for every sampler: what this shared machine
# allows for 576 trials. Limits, objectives and the official GunPoint split are the experiments' own.
BENCH_CHANGES = {
    "spectral": {"data": {"samples_per_class": 200}, "budget": {"epochs": 10}, "training": {"min_steps": 200}},
    "gunpoint": {"data": {"cv_folds": 2}, "budget": {"epochs": 30}, "training": {"min_steps": 600}},
}


def experiment_for(space: str, config: str, seed: int, trials: int):
    e = load_experiment(ROOT / "experiments" / f"{space}.yaml")
    changes = BENCH_CHANGES[space]
    return dataclasses.replace(
        e, name=f"{space}-{config}-s{seed}", seed=seed, output_dir=RUNS, **CONFIGS[config],
        data=dataclasses.replace(e.data, **changes["data"]),
        budget=dataclasses.replace(e.budget, trials=trials, timeout_minutes=None, **changes["budget"]),
        training=dataclasses.replace(e.training, **changes["training"]))


def run(space: str, config: str, seed: int, trials: int) -> tuple[list[list[float]], int]:
    """The run's [hypervolume, minutes] after each trial that counts (resumed if stored), and the
    signal that interrupted it (0 if none)."""
    experiment = experiment_for(space, config, seed, trials)
    summary = run_search(experiment, progress=False)
    return [[round(p.hypervolume, 4), round(p.minutes, 2)]
            for p in progress(read_records(open_study(experiment)), experiment)], summary.interrupted


def entries(space: str, config: str, seed: int, curve: list) -> list[dict]:
    return [{"space": space, "sampler": config, "seed": seed, "trials": n, "hypervolume": curve[n - 1][0],
             "minutes": curve[n - 1][1]} for n in BUDGETS if len(curve) >= n]


def trials_to_match(curves: dict, space: str) -> int | None:
    """The fewest trials at which the default's hypervolume, averaged over seeds, reaches random
    sampling's after 48 trials (averaged over the same seeds); None when it does not within its runs."""
    key = lambda config, seed: f"{space}|{config}|{seed}"  # noqa: E731
    seeds = [s for s in SEEDS if len(curves.get(key("random", s), [])) >= 48 and key(DEFAULT, s) in curves]
    if not seeds:
        return None
    target = statistics.mean(curves[key("random", s)][47][0] for s in seeds)
    longest = min(len(curves[key(DEFAULT, s)]) for s in seeds)
    for n in range(1, longest + 1):
        if statistics.mean(curves[key(DEFAULT, s)][n - 1][0] for s in seeds) >= target:
            return n
    return None


def commit() -> str:
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT, capture_output=True,
                           text=True).stdout.strip()
    return head + ("+uncommitted" if dirty else "")


def main(mode: str = "all") -> dict:
    write_all(ROOT / "experiments" / "data")
    # Seed by seed; the sampler screen after the first seed's spectral runs; the default's trials
    # 25-48 last (the default is compared with random's 48 trials at 24).
    screen = [("spectral", c, SEEDS[0], 24) for c in SCREEN]
    plan = [(space, c, s, t) for s in SEEDS for space in SPACES for c, t in ((DEFAULT, 24), ("random", 48))]
    plan = plan[:2] + screen + plan[2:] + [(space, DEFAULT, s, 48) for s in SEEDS for space in SPACES]
    if mode == "screen":
        plan = plan[:2] + screen
    result = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    curves, code = result.get("curves", {}), commit()  # the code this process runs
    for space, config, seed, trials in plan:
        curve, interrupted = run(space, config, seed, trials)
        curves[f"{space}|{config}|{seed}"] = curve
        result = {
            "runs": [e for k, c in sorted(curves.items()) for e in entries(*_split(k), c)],
            "default": DEFAULT,
            "trials_to_match_random_48": {sp: trials_to_match(curves, sp) for sp in SPACES},
            # beside the schema: what the numbers rest on
            "default_search": "multivariate TPE reading every trial's constraints, the family's starting points "
                              "first, early stopping after a quarter of the training rounds",
            "hypervolume": "feasible front; losses 1 - accuracy and cost / limit per cost objective; reference "
                           "point 1 in each",
            "changes_from_the_experiments": BENCH_CHANGES,
            "seeds": list(SEEDS),
            "commit": code,
            "curves": dict(sorted(curves.items())),  # space|sampler|seed -> [hypervolume, minutes] per trial
        }
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        RESULTS.write_text(json.dumps(result, indent=1) + "\n")
        hv, minutes = curve[-1] if curve else (0.0, 0.0)
        print(f"{space} {config} seed {seed}: {len(curve)} trials, hypervolume {hv:.4f}, {minutes:.1f} min",
              flush=True)
        if interrupted:  # Ctrl-C or SIGTERM stops the benchmark, not only the run in progress
            print("interrupted: run the benchmark again to continue", file=sys.stderr)
            break
    return result


def _split(key: str) -> tuple[str, str, int]:
    space, config, seed = key.split("|")
    return space, config, int(seed)


if __name__ == "__main__":
    main(*sys.argv[1:])
