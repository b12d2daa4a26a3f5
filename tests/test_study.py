"""End to end: tiny real searches (real training, TFLM, SQLite, Ray) and every output they write."""
import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest

from autotune.cli import load_run, main
from autotune.report.records import pareto_front, read_records
from autotune.study import open_study
from faults import busy_ray_workers, start, trials_of, wait_for
from tiny import TINY, cli, tiny

pytestmark = pytest.mark.slow

def test_run_writes_every_output(tiny_run):
    run, proc = tiny_run
    assert "4/4 trials finished (4 in this run)" in proc.stdout
    for name in ("study.db", "trials.csv", "pareto.json", "dashboard.html", "experiment.yaml"):
        assert (run / name).is_file(), name
    rows = list(csv.DictReader((run / "trials.csv").open()))
    assert sum(r["state"] == "COMPLETE" for r in rows) == 4 and {r["state"] for r in rows} <= {"COMPLETE", "PRUNED"}
    params = lambda row: {k: v for k, v in row.items() if k.startswith("param_")}  # noqa: E731
    for row in rows:
        if row["state"] == "PRUNED":  # the sampler drew a point already evaluated: not trained again
            original = rows[int(row["reason"].removeprefix("duplicate of trial "))]
            assert original["state"] == "COMPLETE" and params(original) == params(row)
    for row in (r for r in rows if r["state"] == "COMPLETE"):
        assert 0.0 <= float(row["accuracy"]) <= 1.0
        assert float(row["flash_kb"]) > 0 and float(row["ram_kb"]) > 0 and float(row["latency_ms"]) > 0
        assert row["accuracy_source"] == row["test_accuracy_source"] == "measured:reference-executor"
        low, high = map(float, row["accuracy_ci95"].split("-"))
        assert low <= float(row["accuracy"]) <= high and int(row["accuracy_n"]) == 36  # 15 % of 240
        low, high = map(float, row["test_accuracy_ci95"].split("-"))
        assert low <= float(row["test_accuracy"]) <= high and int(row["test_accuracy_n"]) == 36
        assert row["flash_source"] == row["ram_source"] == "measured:elf-rp2040"
        assert row["latency_source"] == "predicted:analytic-rp2040"
        assert all(float(row[f"{s}_s"]) > 0 for s in ("precost", "train", "convert", "evaluate", "cost"))
        assert row["param_blocks"] == "2" and row["param_kernel"] in ("3", "5")
    pareto = json.loads((run / "pareto.json").read_text())
    assert pareto["points"], "no feasible point in the tiny run"
    for point in pareto["points"]:
        assert (run / point["tflite"]).read_bytes()[4:8] == b"TFL3"
        assert point["accuracy"]["source"] == "measured:reference-executor"
        assert point["accuracy"]["n"] == point["test_accuracy"]["n"] == 36
        assert point["accuracy"]["value"] >= pareto["constraints"]["min_accuracy"]
        assert point["flash_kb"]["value"] < 100 and point["params_count"] < 100000
    on_front = {int(r["number"]) for r in rows if r["on_front"] == "True"}
    assert on_front == {p["trial"] for p in pareto["points"]}


def test_front_is_non_dominated_and_feasible(tiny_run):
    run, _ = tiny_run
    exp = load_run(run)
    records = read_records(open_study(exp))
    front = pareto_front(records, exp.objectives)
    assert front and all(r.feasible for r in front)
    for a in front:
        for b in records:
            if b.feasible and b.number != a.number:
                better_or_equal = (b.metrics["accuracy"] >= a.metrics["accuracy"] and
                                   all(b.metrics[k] <= a.metrics[k] for k in ("flash_kb", "ram_kb", "latency_ms")))
                strictly = (b.metrics["accuracy"] > a.metrics["accuracy"] or
                            any(b.metrics[k] < a.metrics[k] for k in ("flash_kb", "ram_kb", "latency_ms")))
                assert not (better_or_equal and strictly), f"trial {b.number} dominates front trial {a.number}"


def test_dashboard_holds_the_expected_traces(tiny_run):
    run, _ = tiny_run
    page = (run / "dashboard.html").read_text()
    for needle in ('"name":"Pareto front"', '"name":"feasible"', '"name":"infeasible"', '"type":"parcoords"',
                   'over search time', "accuracy vs flash (KB)", "accuracy vs RAM (KB)",
                   "accuracy vs latency (ms)", "limit 100", "limit 50", "limit 10", "validation accuracy 0.",
                   "(95% CI ", "n=36)", "test accuracy 0.", "held out from the data by data.split"):
        assert needle in page, needle


def test_report_regenerates_outputs(tiny_run):
    run, _ = tiny_run
    (run / "dashboard.html").unlink()
    (run / "trials.csv").unlink()
    before = json.loads((run / "pareto.json").read_text())
    assert main(["report", str(run)]) == 0
    assert (run / "dashboard.html").stat().st_size > 100_000
    assert sum(r["state"] == "COMPLETE" for r in csv.DictReader((run / "trials.csv").open())) == 4
    assert json.loads((run / "pareto.json").read_text()) == before


def _finished(db: Path, name: str) -> list[optuna.trial.FrozenTrial]:
    """Trials that count toward the budget: trained and completed (duplicates and rejections do not)."""
    study = optuna.load_study(study_name=name, storage=f"sqlite:///{db}")
    return [t for t in study.get_trials(states=(optuna.trial.TrialState.COMPLETE,)) if "rejected" not in t.user_attrs]


def _training(db: Path, name: str) -> bool:
    """A trial is running and still training: its model is not written yet (a trial whose model
    is written is being recorded, which an interrupt waits for)."""
    study = optuna.load_study(study_name=name, storage=f"sqlite:///{db}")
    models = db.parent / "models"
    return any(not (models / f"trial_{t.number}.tflite").exists()
               for t in study.get_trials(states=(optuna.trial.TrialState.RUNNING,)))


def _completed(db: Path, name: str) -> list[optuna.trial.FrozenTrial]:
    return _finished(db, name)


@pytest.mark.serial  # signals and worker processes on a timetable: run alone
def test_interrupt_then_resume_repeats_no_trial(tmp_path):
    exp = tiny(tmp_path, name="resume", trials=4)
    db = tmp_path / "runs" / "resume" / "study.db"
    proc = subprocess.Popen([sys.executable, "-m", "autotune", "run", str(exp), "--no-progress"],
                            cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    models = tmp_path / "runs" / "resume" / "models"  # written as each trial completes
    deadline = time.monotonic() + 300
    while (not (len(list(models.glob("*.tflite"))) >= 2 and _training(db, "resume"))
           and time.monotonic() < deadline and proc.poll() is None):
        time.sleep(0.5)
    assert proc.poll() is None, "the run ended before it could be interrupted"
    proc.send_signal(signal.SIGINT)  # Ctrl-C, in the middle of the third trial
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err[-2000:]
    assert "run the same command to continue" in err
    first = {t.number: (t.params, t.values, t.datetime_complete) for t in _finished(db, "resume")}
    assert len(first) >= 2

    again = cli("run", str(exp), "--no-progress", cwd=tmp_path)
    assert again.returncode == 0, again.stderr[-3000:]
    assert f"4/4 trials finished ({4 - len(first)} in this run)" in again.stdout, again.stdout
    assert len(_finished(db, "resume")) == 4
    final = _completed(db, "resume")
    for t in final:
        if t.number in first:  # completed before the interrupt: untouched, not re-run
            assert (t.params, t.values, t.datetime_complete) == first[t.number]
    study = optuna.load_study(study_name="resume", storage=f"sqlite:///{db}")
    interrupted = [t for t in study.trials if t.user_attrs.get("fail_reason") == "interrupted"]
    assert len(interrupted) == 1 and interrupted[0].state == optuna.trial.TrialState.FAIL
    params = [tuple(sorted(t.params.items())) for t in final]
    assert len(set(params)) == len(params), "a completed trial was repeated"


@pytest.mark.serial  # signals and worker processes on a timetable: run alone
def test_two_workers_on_ray_run_trials_at_once_and_survive_a_killed_worker(tmp_path, tiny_run):
    exp = tiny(tmp_path, name="ray", trials=4)
    db = tmp_path / "runs" / "ray" / "study.db"
    proc = start(exp, "--workers", "2")
    # Once trial 0 is done, kill -9 a Ray worker in the middle of another trial: that trial
    # fails with the reason, the study still finishes its budget.
    zero_done = lambda: any(t.number == 0 and t.state.name == "COMPLETE" for t in trials_of(db.parent))  # noqa: E731
    assert wait_for(lambda: zero_done() and busy_ray_workers(proc.pid) or proc.poll() is not None)
    os.kill(busy_ray_workers(proc.pid)[0], signal.SIGKILL)
    out, err = proc.communicate(timeout=900)
    assert proc.returncode == 0, err[-3000:]
    assert "4/4 trials finished" in out and len(_finished(db, "ray")) == 3
    study = optuna.load_study(study_name="ray", storage=f"sqlite:///{db}")
    assert [t.user_attrs["fail_reason"].split(":")[0] for t in study.trials
            if t.state == optuna.trial.TrialState.FAIL] == ["worker failed"]
    trials = _completed(db, "ray")
    assert len(trials) >= 2
    # Trials were told as they finished; with 2 workers some ran while another was running.
    spans = sorted((t.datetime_start, t.datetime_complete) for t in trials)
    assert any(spans[i + 1][0] < spans[i][1] for i in range(len(spans) - 1)), spans
    assert (tmp_path / "runs" / "ray" / "dashboard.html").exists()
    # Same seed, same sampler: trial 0 is the tiny run's trial 0, trained to the same weights
    # in a Ray worker as in the main process.
    local = {r["number"]: r for r in csv.DictReader((tiny_run[0] / "trials.csv").open())}["0"]
    remote = {r["number"]: r for r in csv.DictReader((tmp_path / "runs" / "ray" / "trials.csv").open())}["0"]
    for key in ("state", "accuracy", "float_val_accuracy", "flash_kb", "ram_kb", "latency_ms"):
        assert local[key] == remote[key], (key, local[key], remote[key])


def test_model_that_does_not_fit_fails_and_the_study_goes_on(tmp_path):
    # A 16384-sample signal through 32 full-resolution filters needs 512 KB of activations: more
    # SRAM than the RP2040 has. Each such trial is recorded as failed with its reason.
    path = tmp_path / "big.yaml"
    path.write_text(TINY.format(name="big", trials=2).replace("length: 128", "length: 16384")
                    .replace("filters: [8, 16]", "filters: [32]\n    stem_stride: [1]")
                    .replace("samples_per_class: 40", "samples_per_class: 12"))
    proc = cli("run", str(path), "--no-progress", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "2/2 trials finished" in proc.stdout
    rows = list(csv.DictReader((tmp_path / "runs" / "big" / "trials.csv").open()))
    assert [r["state"] for r in rows] == ["FAIL", "FAIL"]
    for row in rows:
        assert "does not fit rp2040" in row["reason"] and "KB SRAM" in row["reason"], row["reason"]
