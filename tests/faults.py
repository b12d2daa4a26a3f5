"""Real processes on one run folder: a small experiment that several `autotune run` processes
share, starting them, reading the study they write, finding their Ray workers, and an audit of
the result (budget met, completed trials lost or repeated, outputs that agree with the study).
Used by tests/test_faults.py and benchmarks/bench_faults.py."""
from __future__ import annotations

import csv
import json
import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import optuna

from tiny import TINY

ROOT = Path(__file__).resolve().parents[1]

GRACE_S = 5


def experiment_text(name: str, trials: int, min_steps: int = 150) -> str:
    """The tiny experiment with a larger space (few duplicate draws) and heartbeats every second;
    more `min_steps` make each trial's training last longer."""
    return (TINY.format(name=name, trials=trials).replace("min_steps: 150", f"min_steps: {min_steps}")
            .replace("blocks: {low: 2, high: 2}", "blocks: {low: 2, high: 3}").replace("kernel: [3, 5]", "kernel: [3, 5, 7]")
            .replace("pool: [2]", "pool: [2, 4]").replace("dense: [8]", "dense: [8, 16]")
            + f"  heartbeat_seconds: 1\n  grace_seconds: {GRACE_S}\n")


def environment() -> dict[str, str]:
    """This checkout's code in every process (and Ray worker) started here."""
    return {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, (str(ROOT), os.environ.get("PYTHONPATH"))))}


def write_experiment(folder: Path, name: str, trials: int, min_steps: int = 150) -> Path:
    path = folder / f"{name}.yaml"
    path.write_text(experiment_text(name, trials, min_steps))
    return path


def start(experiment: Path, *args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "autotune", "run", str(experiment), "--no-progress", *args],
                            cwd=experiment.parent, env=environment(), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def trials_of(run_dir: Path) -> list[optuna.trial.FrozenTrial]:
    db = run_dir / "study.db"
    if not db.exists():
        return []
    try:
        return optuna.load_study(study_name=run_dir.name, storage=f"sqlite:///{db}").get_trials()
    except (KeyError, Exception):  # noqa: BLE001 - not created yet
        return []


def wait_for(condition, timeout: float = 600, poll: float = 0.3) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(poll)
    return False


def running_with_heartbeat(run_dir: Path) -> list[int]:
    """Numbers of running trials that have recorded a heartbeat and are still training (a trial
    whose model is written is being recorded, which an interrupt waits for)."""
    db = run_dir / "study.db"
    if not db.exists():
        return []
    try:
        with sqlite3.connect(db, timeout=30) as con:
            rows = con.execute("SELECT t.number FROM trials t JOIN trial_heartbeats h ON h.trial_id = t.trial_id "
                               "WHERE t.state = 'RUNNING'").fetchall()
        return [n for (n,) in rows if not (run_dir / "models" / f"trial_{n}.tflite").exists()]
    except sqlite3.Error:
        return []


def audit(run_dir: Path, budget: int, before: dict[int, tuple] | None = None) -> dict:
    """Budget met, completed trials lost (recorded complete earlier, now changed or gone; or a
    model written for a trial the study does not hold as complete) or repeated (the same
    parameters completed twice), and whether the output files agree with the study."""
    from autotune.report.records import pareto_front, read_records
    from autotune.study import _counts_toward_budget

    trials = trials_of(run_dir)
    complete = {t.number: (tuple(sorted(t.params.items())), tuple(t.values), t.datetime_complete)
                for t in trials if t.state == optuna.trial.TrialState.COMPLETE}
    lost = sum(1 for n, record in (before or {}).items() if complete.get(n) != record)
    models = {int(p.stem.removeprefix("trial_")) for p in (run_dir / "models").glob("trial_*.tflite")}
    lost += len(models - set(complete))
    params = [record[0] for record in complete.values()]
    repeated = len(params) - len(set(params))
    rows = list(csv.DictReader((run_dir / "trials.csv").open())) if (run_dir / "trials.csv").exists() else []
    pareto = json.loads((run_dir / "pareto.json").read_text()) if (run_dir / "pareto.json").exists() else {}
    study = optuna.load_study(study_name=run_dir.name, storage=f"sqlite:///{run_dir / 'study.db'}")
    objectives = tuple(pareto.get("objectives", ()))
    front = {r.number for r in pareto_front(read_records(study), objectives)} if objectives else set()
    agree = ([(int(r["number"]), r["state"]) for r in rows] == [(t.number, t.state.name) for t in trials]
             and {p["trial"] for p in pareto.get("points", [])} == front
             and {p.stem for p in (run_dir / "pareto").glob("*.tflite")} == {f"trial_{n}" for n in front})
    return {"counted": sum(_counts_toward_budget(t) for t in trials), "budget": budget,
            "budget_met": sum(_counts_toward_budget(t) for t in trials) == budget,
            "lost": lost, "repeated": repeated, "outputs_agree": agree,
            "states": {s: sum(t.state.name == s for t in trials) for s in ("COMPLETE", "PRUNED", "FAIL", "RUNNING")}}


def completed_snapshot(run_dir: Path) -> dict[int, tuple]:
    return {t.number: (tuple(sorted(t.params.items())), tuple(t.values), t.datetime_complete)
            for t in trials_of(run_dir) if t.state == optuna.trial.TrialState.COMPLETE}


def _children(pid: int) -> list[int]:
    out = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                out.append(int(entry.name))
    return out


def descendants(pid: int) -> list[int]:
    found, stack = [], [pid]
    while stack:
        for child in _children(stack.pop()):
            found.append(child)
            stack.append(child)
    return found


def busy_ray_workers(pid: int) -> list[int]:
    """Ray workers started by our run (its descendants) that are running a trial right now."""
    busy = []
    for child in descendants(pid):
        try:
            if (Path("/proc") / str(child) / "cmdline").read_bytes().startswith(b"ray::evaluate_or_fail"):
                busy.append(child)
        except OSError:
            continue
    return busy
