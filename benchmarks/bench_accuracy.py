"""Accuracy of the default searches on public data with official test splits, and of the
synthetic spectral front against an unconstrained ceiling model.

For each data set: the experiment YAML in experiments/ (LARUN-like limits on the rp2040), its
search, and for the front point with the best validation accuracy its accuracy on the official
test split. Collapsed trials: trained trials whose validation accuracy stays below the run's
min_accuracy (majority-class rate plus a margin). Writes benchmarks/results/accuracy.json; run
one part at a time with `python benchmarks/bench_accuracy.py gunpoint` (results merge; the
spectral ceiling is its own part, `spectral_ceiling`, so it can train beside the search). Each
part records the commit of the code it ran (`code_commit`).
"""
from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from autotune.config import load_experiment
from autotune.data import load_dataset
from autotune.data.public import write_all
from autotune.report.records import pareto_front, read_records
from autotune.study import open_study, run_search

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "accuracy.json"
RUNS = ROOT / "benchmarks" / "runs"
DATASETS = ("gunpoint", "basic_motions", "fashion_mnist", "spectral")
PARTS = (*DATASETS, "spectral_ceiling")
# Trials per data set: the issue allows at most 40; this 2-core shared machine allows fewer.
TRIALS = {name: int(os.environ.get("BENCH_TRIALS", 40)) for name in DATASETS}
CEILING_WIDTHS = (32, 64, 96, 128)  # spectral_cnn filters per block, scaled up until >= 20x the front's parameters


def ceiling_params(scale: float) -> dict:
    params = {f"filters_{i}": int(w * scale) for i, w in enumerate(CEILING_WIDTHS)}
    return {"blocks": 4, **params, "kernel": 7, "pool": 4, "separable": False, "dense": int(128 * scale),
            "stem_stride": 2}


def run_dataset(name: str) -> dict:
    experiment = load_experiment(ROOT / "experiments" / f"{name}.yaml")
    experiment = dataclasses.replace(experiment, output_dir=RUNS,
                                     budget=dataclasses.replace(experiment.budget, trials=TRIALS[name]))
    # A run resumed (BENCH_TRIALS raised, or after an interruption) adds a session: its minutes are
    # the sum of every session's wall time, each kept beside the study.
    sessions_file = experiment.run_dir / "bench_minutes.json"
    sessions = json.loads(sessions_file.read_text()) if sessions_file.exists() else []
    start = time.monotonic()
    try:  # an interrupted session's minutes count too: resumed with BENCH_TRIALS at the trials done, it ends
        run_search(experiment, progress=False)
    finally:
        sessions.append(round((time.monotonic() - start) / 60, 1))
        sessions_file.write_text(json.dumps(sessions))
    minutes = sum(sessions)
    study = open_study(experiment)
    records = read_records(study)
    trained = [r for r in records if r.complete]
    useful = study.user_attrs["min_accuracy"]
    front = pareto_front(records, experiment.objectives)
    best = max(front, key=lambda r: r.metrics["accuracy"])
    m = best.metrics
    return {"name": name, "family": experiment.family, "target": experiment.target, "trials": len(trained),
            "n_test": m["test_accuracy_n"], "front_best_accuracy": round(m["test_accuracy"], 4),
            "front_best_flash_kb": round(m["flash_kb"], 2), "front_best_ram_kb": round(m["ram_kb"], 2),
            "front_best_latency_ms": round(m["latency_ms"], 3),
            "collapsed_trials": sum(r.metrics["accuracy"] < useful for r in trained),
            "completed_trials": len(trained), "minutes": round(minutes, 1), "minutes_sessions": sessions,
            # beside the schema: what the numbers rest on
            "front_best_trial": best.number, "front_best_val_accuracy": round(m["accuracy"], 4),
            "front_best_test_ci95": [round(v, 4) for v in m["test_accuracy_ci95"]],
            "front_best_params": m["params_count"], "min_accuracy": useful,
            "rejected_before_training": sum(r.state == "REJECTED" for r in records)}


def code_commit() -> str:
    """The commit the benchmark's code is at, "+dirty" when the work tree has changes."""
    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, check=True).stdout.strip()

    dirty = git("status", "--porcelain", "--untracked-files=no", "--", "autotune", "search_spaces",
                "experiments", "benchmarks/bench_accuracy.py")
    return git("rev-parse", "--short", "HEAD") + ("+dirty" if dirty else "")


CEILING_SEEDS = 2  # the ceiling is one model too: its own training noise shows in the spread


def spectral_ceiling(front_best_params: int, epochs_factor: int = 3) -> dict:
    """An unconstrained spectral_cnn (>= 20x the parameters of the front's best point, no limits)
    trained with the search's recipe on the same split at `epochs_factor` times the epochs, the
    early-stopping patience scaled with them; its int8 test accuracy over CEILING_SEEDS trainings
    (mean, and each with the epochs run). `front_best_params` 0 (the search not run yet): the
    smallest ceiling, checked against the front when both are in the results (`params_ratio`)."""
    from autotune.trial import int8_model, predict_labels, train_candidate, trainer_for
    from search_spaces import get_family

    experiment = load_experiment(ROOT / "experiments" / "spectral.yaml")
    experiment = dataclasses.replace(
        experiment, budget=dataclasses.replace(experiment.budget, epochs=epochs_factor * experiment.budget.epochs),
        training=dataclasses.replace(experiment.training, patience=epochs_factor * experiment.training.patience))
    dataset = load_dataset(experiment.data, experiment.seed)
    space = get_family("spectral_cnn")({})
    scale = 1.0
    while space.build(params := ceiling_params(scale), dataset.input_shape, dataset.num_classes).count_params() \
            < 20 * front_best_params:
        scale *= 1.25
    trainer = trainer_for(lambda: space.build(params, dataset.input_shape, dataset.num_classes), dataset, experiment)
    runs = []
    for seed in range(experiment.seed, experiment.seed + CEILING_SEEDS):
        model, stats = train_candidate(trainer, dataset.x_train, dataset.y_train, (dataset.x_val, dataset.y_val),
                                       experiment, seed)
        _, graph = int8_model(model, dataset.x_train, "ceiling")
        runs.append({"test_accuracy": round(float(np.mean(predict_labels(graph, dataset.x_test) == dataset.y_test)), 4),
                     "epochs_run": stats.epochs_run, "best_epoch": stats.best_epoch})
    return {"ceiling_accuracy": round(float(np.mean([r["test_accuracy"] for r in runs])), 4),
            "ceiling_params": int(model.count_params()), "ceiling_epochs": experiment.budget.epochs,
            "ceiling_patience": experiment.training.patience, "ceiling_runs": runs}


def link_ceiling(result: dict) -> None:
    """The front's best test accuracy beside the ceiling's, and their parameter ratio (>= 20)."""
    ceiling = result.get("spectral_ceiling")
    front = next((d for d in result["datasets"] if d["name"] == "spectral"), None)
    if ceiling and front:
        ceiling["front_best_accuracy"] = front["front_best_accuracy"]
        ceiling["params_ratio"] = round(ceiling["ceiling_params"] / front["front_best_params"], 1)


def _read_results() -> dict:
    return json.loads(RESULTS.read_text()) if RESULTS.exists() else {"datasets": [], "spectral_ceiling": {}}


def main(names: list[str] | None = None) -> dict:
    write_all(ROOT / "experiments" / "data")
    commit = code_commit()
    for name in names or PARTS:
        if name not in PARTS:
            sys.exit(f"bench_accuracy.py: unknown part {name!r}; choose from {', '.join(PARTS)}")
        if name == "spectral_ceiling":
            front = next((d["front_best_params"] for d in _read_results()["datasets"] if d["name"] == "spectral"), 0)
            # the ceiling (3x the epochs), and the same model at the search's epochs: with
            # early stopping on validation loss a longer cosine schedule can end lower
            entry = {**spectral_ceiling(front), "at_search_epochs": spectral_ceiling(front, 1), "code_commit": commit}
        else:
            entry = {**run_dataset(name), "code_commit": commit}
        result = _read_results()  # the latest: parts may run side by side
        if name == "spectral_ceiling":
            result["spectral_ceiling"] = entry
        else:
            result["datasets"] = [d for d in result["datasets"] if d["name"] != name] + [entry]
        link_ceiling(result)
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        RESULTS.write_text(json.dumps(result, indent=2) + "\n")
        print(f"{RESULTS.relative_to(ROOT)}: {json.dumps(entry)}", flush=True)
    return _read_results()


if __name__ == "__main__":
    main(sys.argv[1:] or None)
