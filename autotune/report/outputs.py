"""The files of a run folder, all regenerated from the study: trials.csv, pareto.json,
pareto/*.tflite and dashboard.html (and plots/*.png on request). Trained models are kept as
models/trial_<n>.tflite; `autotune export` records each bundle it writes in exports.json, whose
per-kernel-call profiles the dashboard shows.

`accuracy` is always the int8 model's validation accuracy (what the search optimises);
`test_accuracy` is the same model on the test split, reported beside it and never optimised.
Each comes with its example count and 95 % Wilson interval."""
from __future__ import annotations

import csv
import json
import os
from pathlib import Path

import optuna
import yaml

from autotune.compress.report import rows_to_json
from autotune.config import Experiment
from autotune.report.dashboard import dashboard_html, write_pngs
from autotune.report.records import TrialRecord, hypervolume, pareto_front, read_records
from autotune.trial import STAGES

METRIC_COLUMNS = ("accuracy", "accuracy_n", "accuracy_ci95", "accuracy_fold_std", "cv_accuracy", "train_accuracy",
                  "test_accuracy", "test_accuracy_n", "test_accuracy_ci95", "flash_kb", "ram_kb", "latency_ms",
                  "params_count", "macs", "float_val_accuracy", "short_accuracy", "epochs_run", "restarts")


def model_path(run_dir: Path, number: int) -> Path:
    return run_dir / "models" / f"trial_{number}.tflite"


EXPORTS = "exports.json"


def read_exports(run_dir: Path) -> list[dict]:
    path = run_dir / EXPORTS
    return json.loads(path.read_text()) if path.exists() else []


def record_export(run_dir: Path, trial: int, bundle) -> None:
    """Add an exported bundle (autotune.bundle.Bundle) to exports.json: its trial, folder and,
    per target with a simulator, the run of the first test vector per kernel call; the storage of
    each weight tensor (autotune.compress.report)."""
    sources = yaml.safe_load((bundle.path / "model_card.yaml").read_text())["simulated"]
    entry = {"trial": trial, "bundle": str(bundle.path.resolve()),
             "profiles": {t: {"source": sources[t]["source"], "cycles": bundle.simulated[t].cycles,
                              "calls": [c.row() for c in calls]}
                          for t, calls in bundle.profiles.items()},
             "weights": rows_to_json(list(bundle.weights))}
    exports = [e for e in read_exports(run_dir) if e["bundle"] != entry["bundle"]] + [entry]
    _write_whole(run_dir / EXPORTS, json.dumps(exports, indent=1))


def _partial(path: Path) -> Path:
    """Where a file is written before it replaces `path` whole: several processes on one run
    folder write the outputs, and a reader (or a kill) never sees half a file."""
    return path.with_name(f".{path.name}.{os.getpid()}")


def _write_whole(path: Path, data: str | bytes) -> None:
    partial = _partial(path)
    partial.write_bytes(data.encode() if isinstance(data, str) else data)
    os.replace(partial, path)


def _cell(value):
    if isinstance(value, list):  # an interval
        return "-".join(f"{v:.4f}" for v in value)
    return "" if value is None else value


def accuracy_entry(m: dict, prefix: str) -> dict:
    """One accuracy of a trial as reported: value, example count, 95 % interval, source."""
    entry = {"value": m[prefix], "n": m[f"{prefix}_n"], "ci95": m[f"{prefix}_ci95"], "source": m["sources"][prefix]}
    if f"{prefix}_fold_std" in m:
        entry["fold_std"] = m[f"{prefix}_fold_std"]
    return entry


def write_trials_csv(records: list[TrialRecord], front: set[int], path: Path) -> None:
    param_names = sorted({k for r in records for k in r.params})
    header = (["number", "state", "feasible", "on_front", "reason", "duration_s"] + list(METRIC_COLUMNS)
              + [f"{s}_s" for s in STAGES] + [f"{k}_source" for k in ("accuracy", "test_accuracy", "flash", "ram", "latency")]
              + [f"param_{k}" for k in param_names])
    partial = _partial(path)
    with partial.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        for r in records:
            m = r.metrics
            stages = m.get("stage_seconds", {})
            sources = m.get("sources", {})
            writer.writerow(
                [r.number, r.state, r.feasible, r.number in front, r.reason,
                 "" if r.duration_s is None else round(r.duration_s, 3)]
                + [_cell(m.get(c, "")) for c in METRIC_COLUMNS]
                + [round(stages[s], 3) if s in stages else "" for s in STAGES]
                + [sources.get(k, "") for k in ("accuracy", "test_accuracy", "flash", "ram", "latency")]
                + [r.params.get(k, "") for k in param_names])
    os.replace(partial, path)


def pareto_document(front: list[TrialRecord], experiment: Experiment, hv: float, study_attrs: dict) -> dict:
    points = []
    for r in front:
        m = r.metrics
        sources = m["sources"]
        points.append({
            "trial": r.number,
            "params": r.params,
            "accuracy": accuracy_entry(m, "accuracy"),
            "test_accuracy": accuracy_entry(m, "test_accuracy"),
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
        "constraints": {**{k: getattr(c, k) for k in ("max_flash_kb", "max_ram_kb", "max_latency_ms", "max_params")},
                        "min_accuracy": study_attrs.get("min_accuracy")},
        "accuracy": "int8 model, validation data drawn from the training data (optimised); test_accuracy: "
                    "the same model on the test split (reported only)",
        "data": study_attrs.get("data", {}),
        "hypervolume": hv,
        "points": points,
    }


def _write_dashboard(experiment: Experiment, records: list[TrialRecord], study_attrs: dict) -> None:
    html = dashboard_html(records, experiment, study_attrs, read_exports(experiment.run_dir))
    _write_whole(experiment.run_dir / "dashboard.html", html)


def write_dashboard(experiment: Experiment, study: optuna.Study) -> None:
    """dashboard.html alone (after `autotune export` added a bundle to exports.json)."""
    _write_dashboard(experiment, read_records(study), study.user_attrs)


def write_outputs(experiment: Experiment, study: optuna.Study, png: bool = False) -> list[TrialRecord]:
    """(Re)write every output of the run folder from the study; returns the Pareto front.
    `png`: also each plot of the dashboard as plots/<name>.png."""
    run_dir = experiment.run_dir
    records = read_records(study)
    front = pareto_front(records, experiment.objectives)
    write_trials_csv(records, {r.number for r in front}, run_dir / "trials.csv")
    pareto_dir = run_dir / "pareto"
    pareto_dir.mkdir(parents=True, exist_ok=True)
    keep = {model_path(run_dir, r.number).name for r in front}
    for old in pareto_dir.glob("*.tflite"):
        if old.name not in keep:
            old.unlink(missing_ok=True)
    for r in front:
        source = model_path(run_dir, r.number)
        if source.exists():
            _write_whole(pareto_dir / source.name, source.read_bytes())
    doc = pareto_document(front, experiment, hypervolume(front, experiment), study.user_attrs)
    _write_whole(run_dir / "pareto.json", json.dumps(doc, indent=2))
    _write_dashboard(experiment, records, study.user_attrs)
    if png:
        write_pngs(records, experiment, study.user_attrs, run_dir / "plots")
    return front
