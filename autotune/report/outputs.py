"""The files of a run folder, all regenerated from the study: trials.csv, pareto.json,
pareto/*.tflite and dashboard.html. Trained models are kept as models/trial_<n>.tflite."""
from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import optuna

from autotune.config import Experiment
from autotune.report.dashboard import dashboard_html
from autotune.report.records import TrialRecord, hypervolume, pareto_front, read_records
from autotune.trial import STAGES

METRIC_COLUMNS = ("accuracy", "flash_kb", "ram_kb", "latency_ms", "params_count", "macs",
                  "float_val_accuracy", "epochs_run")


def model_path(run_dir: Path, number: int) -> Path:
    return run_dir / "models" / f"trial_{number}.tflite"


def write_trials_csv(records: list[TrialRecord], front: set[int], path: Path) -> None:
    param_names = sorted({k for r in records for k in r.params})
    header = (["number", "state", "feasible", "on_front", "reason", "duration_s"] + list(METRIC_COLUMNS)
              + [f"{s}_s" for s in STAGES] + [f"{k}_source" for k in ("accuracy", "flash", "ram", "latency")]
              + [f"param_{k}" for k in param_names])
    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        for r in records:
            m = r.metrics
            stages = m.get("stage_seconds", {})
            sources = m.get("sources", {})
            writer.writerow(
                [r.number, r.state, r.feasible, r.number in front, r.reason,
                 "" if r.duration_s is None else round(r.duration_s, 3)]
                + [m.get(c, "") for c in METRIC_COLUMNS]
                + [round(stages[s], 3) if s in stages else "" for s in STAGES]
                + [sources.get(k, "") for k in ("accuracy", "flash", "ram", "latency")]
                + [r.params.get(k, "") for k in param_names])


def pareto_document(front: list[TrialRecord], experiment: Experiment, hv: float) -> dict:
    points = []
    for r in front:
        m = r.metrics
        sources = m["sources"]
        points.append({
            "trial": r.number,
            "params": r.params,
            "accuracy": {"value": m["accuracy"], "source": sources["accuracy"]},
            "flash_kb": {"value": m["flash_kb"], "source": sources["flash"]},
            "ram_kb": {"value": m["ram_kb"], "source": sources["ram"]},
            "latency_ms": {"value": m["latency_ms"], "source": sources["latency"]},
            "params_count": m["params_count"],
            "macs": m["macs"],
            "tflite": f"pareto/trial_{r.number}.tflite",
        })
    c = experiment.constraints
    return {
        "experiment": experiment.name,
        "target": experiment.target,
        "objectives": list(experiment.objectives),
        "constraints": {k: getattr(c, k) for k in ("max_flash_kb", "max_ram_kb", "max_latency_ms", "max_params")},
        "hypervolume": hv,
        "points": points,
    }


def write_outputs(experiment: Experiment, study: optuna.Study) -> list[TrialRecord]:
    """(Re)write every output of the run folder from the study; returns the Pareto front."""
    run_dir = experiment.run_dir
    records = read_records(study)
    front = pareto_front(records, experiment.objectives)
    write_trials_csv(records, {r.number for r in front}, run_dir / "trials.csv")
    pareto_dir = run_dir / "pareto"
    shutil.rmtree(pareto_dir, ignore_errors=True)
    pareto_dir.mkdir(parents=True)
    for r in front:
        source = model_path(run_dir, r.number)
        if source.exists():
            shutil.copyfile(source, pareto_dir / source.name)
    doc = pareto_document(front, experiment, hypervolume(front, experiment))
    (run_dir / "pareto.json").write_text(json.dumps(doc, indent=2))
    (run_dir / "dashboard.html").write_text(dashboard_html(records, experiment))
    return front
