"""Seconds per stage of a trial and trials per hour, at the default experiment's settings.

Runs a few trials of experiments/spectral.yaml in a scratch folder and writes
benchmarks/results/search.json.
"""
from __future__ import annotations

import dataclasses
import json
import os
import statistics
import sys
import tempfile
from pathlib import Path

from autotune.config import load_experiment
from autotune.report.records import read_records
from autotune.study import open_study, run_search
from autotune.trial import STAGES
from device_runners.build import CACHE_ENV

ROOT = Path(__file__).resolve().parents[1]


def main(trials: int = 6) -> dict:
    experiment = load_experiment(ROOT / "experiments" / "spectral.yaml")
    with tempfile.TemporaryDirectory() as scratch:
        os.environ[CACHE_ENV] = str(Path(scratch) / "builds")  # every build measured, none cached
        try:
            experiment = dataclasses.replace(experiment, output_dir=Path(scratch),
                                             budget=dataclasses.replace(experiment.budget, trials=trials))
            run_search(experiment, progress=False)
            records = [r for r in read_records(open_study(experiment)) if r.complete]
        finally:
            del os.environ[CACHE_ENV]
    stages = {s: statistics.mean(r.metrics["stage_seconds"][s] for r in records) for s in STAGES}
    per_trial = statistics.mean(r.duration_s for r in records)
    result = {"trials_per_hour": round(3600 / per_trial, 1),
              "stage_seconds": {s: round(v, 3) for s, v in stages.items()},
              "trials_measured": len(records), "seconds_per_trial": round(per_trial, 3)}
    out = ROOT / "benchmarks" / "results" / "search.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"{out.relative_to(ROOT)}: {json.dumps(result)}")
    return result


if __name__ == "__main__":
    main(*(int(a) for a in sys.argv[1:]))
