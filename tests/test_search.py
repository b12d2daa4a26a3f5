"""Search efficiency: warm starts, the family's starting points, early stopping after a short first
training (real training, real SQLite studies), and the comparison report."""
import csv
import dataclasses
import json
from pathlib import Path

import numpy as np
import optuna
import pytest

from autotune.cli import load_run
from autotune.config import EarlyStop, load_experiment
from autotune.data import load_dataset
from autotune.early_stop import Rival, dominating_rival
from autotune.report.outputs import write_outputs
from autotune.report.records import pareto_front, progress, read_records
from autotune.starting_points import pick_spanning, spanning_points
from autotune.study import (GP_STARTUP_TRIALS, TPE_STARTUP_TRIALS, _tell, make_sampler, min_accuracy, open_study,
                            run_search)
from autotune.trial import Candidate, EarlyStopped, evaluate, over_limits, trial_seed, untrained_costs
from search_spaces import get_family
from tiny import TINY, cli, tiny

pytestmark = pytest.mark.slow

# Holdout validation on 72 examples, 6 epochs: the short run (4 rounds, one past the warm-up) ends
# before the training does.
RULE = TINY.replace("samples_per_class: 40", "samples_per_class: 80").replace("epochs: 2", "epochs: 6") \
    .replace("min_steps: 150", "min_steps: 0")


@pytest.fixture(scope="module")
def rule_run(tmp_path_factory):
    """Five candidates trained in full with their short-run accuracies recorded (the rule told
    never to stop them: margin 1)."""
    tmp = tmp_path_factory.mktemp("rule")
    path = tmp / "rule.yaml"
    path.write_text(RULE.format(name="rule", trials=5))
    experiment = dataclasses.replace(load_experiment(path), output_dir=tmp / "runs", early_stop=EarlyStop(margin=1.0))
    run_search(experiment, progress=False)
    return experiment


def test_warm_start_tries_the_previous_front_first(tiny_run, tmp_path):
    previous, _ = tiny_run
    records = read_records(open_study(load_run(previous)))
    front = sorted(pareto_front(records, load_run(previous).objectives), key=lambda r: -r.metrics["accuracy"])
    assert front, "the tiny run has no front to start from"
    proc = cli("run", str(tiny(tmp_path, "warm", trials=1)), "--warm-start", str(previous), "--no-progress",
               cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    trials = open_study(load_run(tmp_path / "runs" / "warm")).get_trials()  # one trained, the rest queued
    assert [t.params for t in trials[:len(front)]] == [r.params for r in front]
    assert trials[0].state == optuna.trial.TrialState.COMPLETE
    assert all(t.state == optuna.trial.TrialState.WAITING for t in trials[1:len(front)])
    assert all(t.user_attrs["origin"] == f"warm start from {previous}" for t in trials[:len(front)])
    # then the starting points, the cost ladder's first (the known-good ones lie outside the tiny space)
    experiment = load_run(tmp_path / "runs" / "warm")
    spanning = spanning_points(get_family(experiment.family)(experiment.space), experiment,
                               load_dataset(experiment.data, experiment.seed))
    after = trials[len(front):]  # queued, not run: their points are the fixed parameters
    assert spanning and [t.system_attrs["fixed_params"] for t in after] == \
        [p for p in spanning if p not in [r.params for r in front]]
    assert all(t.user_attrs["origin"] == "starting point" for t in after)


def test_warm_start_from_another_family_is_one_clear_error(tmp_path):
    other = tmp_path / "runs" / "other"
    other.mkdir(parents=True)
    (other / "experiment.yaml").write_text("name: other\nmodel:\n  family: mlp\n")
    proc = cli("run", str(tiny(tmp_path, "warm")), "--warm-start", str(other), cwd=tmp_path)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.strip().count("\n") == 0 and "same family" in proc.stderr
    assert not (tmp_path / "runs" / "warm").exists()  # refused before anything was written


@pytest.mark.parametrize("sampler_name, startup", [("gp", GP_STARTUP_TRIALS), ("tpe", TPE_STARTUP_TRIALS)])
def test_model_samplers_draw_at_random_until_the_startup_trials_count_then_model(tmp_path, sampler_name, startup):
    """The default (gp) and tpe draw exactly as random sampling with the same seed until their
    start-up trials count against the budget (rejections do not), then the model's draws take over."""
    path = tmp_path / "s.yaml"
    path.write_text(TINY.format(name="s", trials=4).replace("sampler: random", f"sampler: {sampler_name}"))
    experiment = load_experiment(path)
    space = {"x": optuna.distributions.FloatDistribution(0.0, 1.0),
             "k": optuna.distributions.CategoricalDistribution((1, 2, 3))}

    def draws(name: str, counted: int, rejected: int) -> dict:
        study = optuna.create_study(directions=["maximize", "minimize"],
                                    sampler=make_sampler(dataclasses.replace(experiment, sampler=name)))
        for i in range(counted + rejected):  # the first `counted` trained, the rest rejected before training
            x = (i * 0.37) % 1.0
            trial = optuna.trial.create_trial(params={"x": x, "k": 1 + i % 3}, distributions=space,
                                              values=[x, 1 - x], user_attrs={"rejected": "over"} if i >= counted else {})
            study.add_trial(trial)
        trial = study.ask(space)
        return trial.params

    assert draws(sampler_name, startup - 1, 5) == draws("random", startup - 1, 5)  # rejections do not end them
    assert draws(sampler_name, startup, 0) != draws("random", startup, 0)


def test_runs_of_different_seeds_draw_independent_points(tmp_path):
    """Seeded with seed + trial number, the run seeded 2 drew (and trained) what the run seeded 1
    did, one trial later: three seeds were one sequence of candidates."""
    path = tmp_path / "s.yaml"
    path.write_text(TINY.format(name="s", trials=4))
    experiment = load_experiment(path)
    space = {"k": optuna.distributions.IntDistribution(0, 10**6)}

    def draws(seed: int) -> list[int]:
        study = optuna.create_study(sampler=make_sampler(dataclasses.replace(experiment, seed=seed)))
        ks = []
        for _ in range(8):
            trial = study.ask(space)
            ks.append(trial.params["k"])
            study.tell(trial, 0.0)
        return ks

    one = draws(1)
    assert draws(1) == one
    assert not set(one) & set(draws(2))
    seeds = {trial_seed(seed, number) for seed in range(50) for number in range(200)}
    assert len(seeds) == 50 * 200 and max(seeds) < 2**31


def test_starting_points_outside_the_space_are_left_out():
    family = get_family("spectral_cnn")
    narrowed = family({"stem_stride": load_experiment(Path("experiments/spectral.yaml")).space["stem_stride"]})
    inside = [p for p in family.starting_points if narrowed.contains(p)]
    assert inside and all(p["stem_stride"] in (4, 8) for p in inside) and len(inside) < len(family.starting_points)
    assert all(family({}).contains(p) for p in family.starting_points)


def test_ds_cnn_starting_points_fit_the_fashion_mnist_limits():
    """ds_cnn's starting points are the image experiment's candidates: inside the space, and on
    28x28 images within its limits (flash, RAM, latency) before any training."""
    from autotune.trial import int8_model, measure_costs, over_limits

    experiment = load_experiment(Path("experiments/fashion_mnist.yaml"))
    family = get_family("ds_cnn")
    x = np.random.default_rng(0).random((16, 28, 28, 1), dtype=np.float32)
    assert family.starting_points
    for params in family.starting_points:
        assert family({}).contains(params)
        _, graph = int8_model(family({}).build(params, (28, 28, 1), 10), x, "start")
        costs = measure_costs(graph, experiment.target)
        assert not over_limits(costs, experiment) and costs.latency.value > 50  # large, yet within 100 ms


def test_cost_ladder_starts_cheapest_and_makes_one_parameter_costlier_per_step():
    space = get_family("spectral_cnn")(load_experiment(Path("experiments/spectral.yaml")).space)
    ladder = space.cost_ladder()
    assert ladder[0] == {"blocks": 2, "filters_0": 8, "filters_1": 8, "kernel": 3, "pool": 4, "separable": True,
                         "dense": 8, "stem_stride": 8}
    assert ladder[-1]["blocks"] == 4 and ladder[-1]["kernel"] == 11 and ladder[-1]["stem_stride"] == 4
    assert all(space.contains(p) for p in ladder) and len({json.dumps(p, sort_keys=True) for p in ladder}) == len(ladder)
    for a, b in zip(ladder, ladder[1:]):
        changed = {k for k in ("blocks", "kernel", "pool", "separable", "dense", "stem_stride") if a[k] != b[k]}
        changed |= {"filters"} if a["filters_0"] != b["filters_0"] else set()
        assert len(changed) == 1, (a, b)


def test_spanning_points_bisect_to_the_costliest_rung_within_the_limits():
    ladder = [{"rung": i} for i in range(13)]
    asked = []

    def within(p):
        asked.append(p["rung"])
        return p["rung"] <= 8

    assert pick_spanning(ladder, within) == [{"rung": 0}, {"rung": 4}, {"rung": 8}]
    assert len(asked) <= 5  # bisection, not the whole ladder
    assert pick_spanning(ladder, lambda p: False) == []
    assert pick_spanning(ladder[:1], lambda p: True) == [{"rung": 0}]


def test_spanning_points_lie_within_the_limits_by_the_cost_model(tmp_path):
    """On the tiny space with a latency limit between the ladder's ends: the costliest point picked
    is within the limits and the rung after it is not."""
    experiment = load_experiment(tiny(tmp_path))
    space = get_family(experiment.family)(experiment.space)
    dataset = load_dataset(experiment.data, experiment.seed)

    def latency(params):
        return untrained_costs(lambda: space.build(params, dataset.input_shape, dataset.num_classes), dataset,
                               experiment, 0, "t", [], [])

    ladder = space.cost_ladder()
    ends = [latency(p).latency.value for p in (ladder[0], ladder[-1])]
    limit = (ends[0] + ends[1]) / 2
    experiment = dataclasses.replace(experiment, constraints=dataclasses.replace(experiment.constraints,
                                                                                max_latency_ms=limit))
    picked = spanning_points(space, experiment, dataset)
    assert picked[0] == ladder[0] and len(picked) == 3
    assert ladder.index(picked[0]) < ladder.index(picked[1]) < ladder.index(picked[2])
    assert not over_limits(latency(picked[-1]), experiment)
    assert over_limits(latency(ladder[ladder.index(picked[-1]) + 1]), experiment)


def test_untrained_pricing_keeps_the_biases_a_trained_model_has(tmp_path):
    """The converter drops an all-zero bias, and untrained biases and batch-norm offsets are zero:
    priced before training, a conv + batch norm + dense model still has every bias a trained one
    has (conv: its folded batch norm), so its parameter count is the trained graph's."""
    import tf_keras

    experiment = load_experiment(tiny(tmp_path))
    dataset = load_dataset(experiment.data, experiment.seed)
    (height, length, channels), classes = dataset.input_shape, dataset.num_classes

    def build():
        layers = tf_keras.layers
        return tf_keras.Sequential([layers.Input(dataset.input_shape),
                                    layers.Conv2D(4, (1, 5), strides=(1, 4), use_bias=False), layers.BatchNormalization(),
                                    layers.ReLU(), layers.Flatten(), layers.Dense(8, activation="relu"),
                                    layers.Dense(classes)])

    costs = untrained_costs(build, dataset, experiment, 0, "t", [], [])
    steps = (length - 5) // 4 + 1
    assert height == 1 and costs.params == (5 * channels * 4 + 4) + (steps * 4 * 8 + 8) + (8 * classes + classes)


def test_early_stopping_rule_never_stops_the_eventual_best(rule_run):
    """Replayed in trial order with the default margin over the recorded short-run accuracies,
    the rule stops neither the most accurate candidate nor any point of the front."""
    records = [r for r in read_records(open_study(rule_run)) if r.complete][:5]
    assert len(records) == 5 and all(r.metrics["short_accuracy"] is not None for r in records)
    stopped = set()
    for i, r in enumerate(records):
        m = r.metrics
        rivals = tuple(Rival(e.number, e.metrics["flash_kb"], e.metrics["ram_kb"], e.metrics["latency_ms"],
                             e.metrics["short_accuracy"], e.metrics["short_accuracy_n"]) for e in records[:i])
        if dominating_rival(m["short_accuracy"], m["short_accuracy_n"], (m["flash_kb"], m["ram_kb"], m["latency_ms"]),
                            rivals, EarlyStop().margin):
            stopped.add(r.number)
    best = max(records, key=lambda r: r.metrics["accuracy"])
    assert best.number not in stopped
    assert not stopped & {r.number for r in pareto_front(records, rule_run.objectives)}


def test_early_stopped_candidate_has_partial_accuracy_and_is_off_the_front(rule_run):
    """A candidate whose short run an earlier, free and perfect candidate dominates stops after the
    short run; it is recorded with that partial accuracy, and neither the front nor pareto.json
    holds it."""
    study = open_study(rule_run)
    front_before = [r.number for r in pareto_front(read_records(study), rule_run.objectives)]
    dataset = load_dataset(rule_run.data, rule_run.seed)
    free_and_perfect = Rival(0, 0.0, 0.0, 0.0, short_accuracy=1.0, n=10_000)
    trial = study.ask()
    params = get_family(rule_run.family)(rule_run.space).sample(trial)
    experiment = dataclasses.replace(rule_run, early_stop=EarlyStop())
    outcome = evaluate(Candidate(trial.number, params, (free_and_perfect,)), experiment, dataset)
    assert isinstance(outcome, EarlyStopped) and "after 4 of 6 rounds" in outcome.reason
    assert outcome.stage_seconds["train"] > 0 and outcome.short_accuracy.n == len(dataset.y_val)
    _tell(study, trial, outcome, experiment, min_accuracy(experiment, dataset))
    write_outputs(rule_run, study)

    records = read_records(study)
    stopped = records[trial.number]
    assert stopped.state == "STOPPED" and not stopped.feasible and stopped.constraints["early_stopped"] == 1.0
    assert stopped.metrics["accuracy"] == stopped.metrics["short_accuracy"] == outcome.short_accuracy.value
    assert stopped.metrics["sources"]["accuracy"] == "measured:float-model-short-run"
    assert [r.number for r in pareto_front(records, rule_run.objectives)] == front_before
    pareto = json.loads((rule_run.run_dir / "pareto.json").read_text())
    assert front_before and [p["trial"] for p in pareto["points"]] == front_before
    rows = {int(r["number"]): r for r in csv.DictReader((rule_run.run_dir / "trials.csv").open())}
    assert rows[trial.number]["state"] == "STOPPED" and rows[trial.number]["on_front"] == "False"
    assert progress(records, rule_run)[-1].trials == 6  # it counts against the budget


def test_report_compares_runs(tiny_run, tmp_path):
    run, _ = tiny_run
    out = tmp_path / "compare.html"
    proc = cli("report", str(run), str(run), "--out", str(out), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    page = out.read_text()
    assert "over search time" in page and "over trials" in page and page.count("tiny (random") >= 2
