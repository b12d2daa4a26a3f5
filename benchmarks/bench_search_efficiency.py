"""Search efficiency: the default search (the family's starting points, random draws until 10
trials count, then Optuna's GP sampler; early stopping) against random sampling, on two search
spaces, several seeds, equal trial budgets.

Spaces: the synthetic spectral experiment (experiments/spectral.yaml) and GunPoint (UCR, official
50/150 split, experiments/gunpoint.yaml): their model space, data source, target, limits and
objectives. To fit this shared 2-core machine every candidate trains with a shorter schedule than
the shipped experiments, pinned here with every training setting and compression off (BENCH_CHANGES,
BENCH_TRAINING; the same for every sampler), so other changes to the experiments' training keys or
the training defaults do not move these runs.

Hypervolume: the feasible front's, each objective a loss scaled by its limit (1 - accuracy,
flash / max_flash_kb, RAM / max_ram_kb, latency / max_latency_ms), reference point (1, 1, 1, 1):
fixed per space, so runs compare (autotune.report.records.hypervolume). A 48-trial run gives its
24-trial hypervolume from its first 24 trials that count against the budget. Minutes: the sum of
the trial durations up to there (rejections and duplicate draws included); they depend on what
else the machine runs at the time.

Every run is an ordinary resumable study under benchmarks/runs/search_efficiency/ and records the
commit it started on: an interrupted benchmark continues where it stopped when run again, and
`python benchmarks/bench_search_efficiency.py run SPACE SAMPLER SEED TRIALS` runs one (several
may run at once, one per process); `... 24` then writes the results file from the finished studies
without the default's trials 25-48. Writes benchmarks/results/search_efficiency.json. `... screen`
adds the sampler screen (spectral, first seed, 24 trials: NSGA-II without starting points or early
stopping; `tpe`, the default before, with both, TPE after 24 trials count).
"""
from __future__ import annotations

import dataclasses
import json
import statistics
import subprocess
import sys
from pathlib import Path

from autotune.config import SAMPLERS, Augment, Compression, EarlyStop, Training, load_experiment
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
# sampler, the starting points, early stopping; the others search without either.
CONFIGS = {
    DEFAULT: {"sampler": DEFAULT, "starting_points": True, "early_stop": EarlyStop()},
    "random": {"sampler": "random", "starting_points": False, "early_stop": None},
    "nsga2": {"sampler": "nsga2", "population": 8, "starting_points": False, "early_stop": None},
    "tpe": {"sampler": "tpe", "starting_points": True, "early_stop": EarlyStop()},  # the default before
}
SCREEN = ("nsga2", "tpe")
# Cheaper trials than the shipped experiments (spectral: 400 examples a class, 20 epochs; GunPoint: 5
# folds, 60 epochs), the same for every sampler: what this shared machine allows for 432 trials. Only
# the model space, the data source, target, limits and objectives come from experiments/*.yaml; the
# data subset, epochs and every training setting are pinned here, and compression is off, so a change
# to the experiments' training or compression keys or to the training defaults leaves these runs as
# they are (the values are the training defaults of the commit that first ran the benchmark).
BENCH_TRAINING = Training(batch_size=None, learning_rate=0.005, weight_decay=1e-4, warmup_epochs=3,
                          label_smoothing=0.1, class_weights=True, min_steps=600, patience=10, restarts=1,
                          qat_epochs=0, augment=Augment(shift=0.1, scale=0.1, jitter=0.03, mixup=0.2, flip=False))
BENCH_CHANGES = {
    "spectral": {"data": {"samples_per_class": 200, "length": 1024, "split": (0.7, 0.15, 0.15),
                          "normalize": "per_sample"},
                 "epochs": 10, "training": {"min_steps": 200}},
    "gunpoint": {"data": {"cv_below": 500, "cv_folds": 2, "cv_repeats": 1, "normalize": "per_sample"},
                 "epochs": 30, "training": {"min_steps": 600}},
}


def experiment_for(space: str, config: str, seed: int, trials: int):
    e = load_experiment(ROOT / "experiments" / f"{space}.yaml")
    changes = BENCH_CHANGES[space]
    return dataclasses.replace(
        e, name=f"{space}-{config}-s{seed}", seed=seed, output_dir=RUNS, **CONFIGS[config],
        data=dataclasses.replace(e.data, **changes["data"]), compression=Compression(),
        budget=dataclasses.replace(e.budget, trials=trials, timeout_minutes=None, epochs=changes["epochs"]),
        training=dataclasses.replace(BENCH_TRAINING, **changes["training"]))


def curve_of(experiment) -> list[list[float]]:
    """The run's [hypervolume, minutes] after each trial that counts, from its study."""
    return [[round(p.hypervolume, 4), round(p.minutes, 2)]
            for p in progress(read_records(open_study(experiment)), experiment)]


def run(space: str, config: str, seed: int, trials: int) -> tuple[list[list[float]], int]:
    """The run's curve (resumed if stored) and the signal that interrupted it (0 if none)."""
    experiment = experiment_for(space, config, seed, trials)
    started = RUNS / f"{experiment.name}.commit"  # the code a run started on (it may resume on later code)
    if not started.exists():
        RUNS.mkdir(parents=True, exist_ok=True)
        started.write_text(commit() + "\n")
    summary = run_search(experiment, progress=False)
    return curve_of(experiment), summary.interrupted


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


def main(mode: str = "all", *run_args: str) -> dict:
    """mode "all": every run of the plan, then the default's trials 25-48; "24": the plan without
    them; "screen": the sampler screen too; "run SPACE CONFIG SEED TRIALS": one run, no results file
    (a later "all" or "24" reads it back from its study); "collect": the results file from the
    plan's studies as they stand, running nothing (an unfinished run gives its curve so far); a run
    whose study is not here keeps its curve and commit from the results file."""
    write_all(ROOT / "experiments" / "data")
    if mode == "run":
        space, config, seed, trials = run_args
        curve, _ = run(space, config, int(seed), int(trials))
        print(f"{space} {config} seed {seed}: {len(curve)} trials, hypervolume {curve[-1][0] if curve else 0:.4f}")
        return {}
    # Seed by seed; the default's trials 25-48 last (the default is compared with random's 48 trials at 24).
    plan = [(space, c, s, t) for s in SEEDS for space in SPACES for c, t in ((DEFAULT, 24), ("random", 48))]
    if mode == "screen":
        plan += [("spectral", c, SEEDS[0], 24) for c in SCREEN]
    if mode not in ("24", "collect"):
        plan += [(space, DEFAULT, s, 48) for s in SEEDS for space in SPACES]
    curves, code, result, budgets = {}, commit(), {}, {}  # every curve from a study resumed, ran or read
    kept_commits: dict[str, str] = {}
    if mode == "collect":
        stored = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
        for space, config, seed, trials in plan:
            key = f"{space}|{config}|{seed}"
            if not (RUNS / f"{space}-{config}-s{seed}" / "study.db").exists() and key in stored.get("curves", {}):
                curves[key], budgets[key] = stored["curves"][key], trials
                kept_commits[key] = stored["run_commits"][key]
        plan = [p for p in plan if (RUNS / f"{p[0]}-{p[1]}-s{p[2]}" / "study.db").exists()]
    for space, config, seed, trials in plan:
        curve, interrupted = (curve_of(experiment_for(space, config, seed, trials)), 0) if mode == "collect" \
            else run(space, config, seed, trials)
        curves[f"{space}|{config}|{seed}"] = curve
        budgets[f"{space}|{config}|{seed}"] = trials
        result = {
            "runs": [e for k, c in sorted(curves.items()) for e in entries(*_split(k), c)],
            "default": DEFAULT,
            "trials_to_match_random_48": {sp: trials_to_match(curves, sp) for sp in SPACES},
            # beside the schema: what the numbers rest on
            "default_search": "the family's starting points first, then random draws until 10 trials count "
                              "against the budget (starting points included), then Optuna's GP sampler reading "
                              "every trial's constraints; early stopping after a quarter of the training rounds",
            "hypervolume": "feasible front; losses 1 - accuracy and cost / limit per cost objective; reference "
                           "point 1 in each",
            "changes_from_the_experiments": {**BENCH_CHANGES, "training": dataclasses.asdict(BENCH_TRAINING),
                                             "compression": "off"},
            "seeds": list(SEEDS),
            "commit": code,  # the code that wrote this file; run_commits: the code each run started on
            "run_commits": {k: kept_commits.get(k) or (RUNS / f"{_split(k)[0]}-{_split(k)[1]}-s{_split(k)[2]}.commit"
                                                       ).read_text().strip() for k in sorted(curves)},
            "unfinished": {k: f"{len(c)} of {budgets[k]} trials" for k, c in sorted(curves.items())
                           if len(c) < budgets[k]},
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
