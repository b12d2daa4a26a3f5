"""The search: an Optuna multi-objective study driven by ask/tell, resumable from its storage.

Trials run in this process (one worker) or as Ray tasks (`--workers N`, `--ray-address`).
Every finished trial is told to the study at once, so an interrupt loses only trials in flight;
running the same command again continues up to the trial budget. The budget counts trained
trials (and failures): a candidate rejected before training and a duplicate draw do not count.
"""
from __future__ import annotations

import dataclasses
import signal
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass

import optuna
from tqdm import tqdm

from autotune.config import Experiment
from autotune.data import Dataset, describe_data, load_dataset
from autotune.errors import ConfigError
from autotune.report.outputs import model_path, write_outputs
from autotune.report.records import OBJECTIVE_ATTRS, TrialRecord, hypervolume, pareto_front, read_records
from autotune.runner import LocalRunner, RayRunner, TrialFailure
from autotune.trial import Candidate, Rejected, TrialResult
from autotune.training import chance_margin
from search_spaces import get_family

INTERRUPTED = "interrupted"
REJECTED = "rejected"  # user attribute of a trial rejected before training: the reason
# Draws in a row that neither train nor fail (duplicates, rejections) before the search gives up:
# the space has no new candidate within the limits.
MAX_IDLE_DRAWS = 200


@dataclass(frozen=True)
class SearchSummary:
    finished: int  # trials finished in total (this and earlier runs)
    new: int  # trials finished by this run (trained or failed)
    feasible: int
    front: int
    hypervolume: float
    interrupted: bool
    rejected: int  # candidates rejected before training, in total
    exhausted: bool  # stopped early: MAX_IDLE_DRAWS draws in a row were duplicates or over the limits
    best: TrialRecord | None  # the front point with the best validation accuracy


def min_accuracy(experiment: Experiment, dataset: Dataset) -> float:
    """The validation accuracy a useful trial must reach: `constraints.min_accuracy`, else the
    majority-class rate plus 1.96 binomial standard errors on the validation examples (at least
    5 points)."""
    if experiment.constraints.min_accuracy is not None:
        return experiment.constraints.min_accuracy
    rate = dataset.majority_rate
    return round(min(1.0, rate + chance_margin(rate, dataset.n_val)), 4)


def constraint_values(outcome: TrialResult | Rejected, experiment: Experiment, useful: float) -> dict[str, float]:
    """One value per constraint; <= 0 means satisfied (Optuna's convention). A rejected candidate
    has no accuracy: it breaks min_accuracy by the whole threshold."""
    c, costs = experiment.constraints, outcome.costs
    accuracy = outcome.val_accuracy.value if isinstance(outcome, TrialResult) else 0.0
    pairs = {"max_flash_kb": (costs.flash.value / 1024, c.max_flash_kb),
             "max_ram_kb": (costs.ram.value / 1024, c.max_ram_kb),
             "max_latency_ms": (costs.latency.value, c.max_latency_ms),
             "max_params": (costs.params, c.max_params)}
    values = {name: float(value - limit) for name, (value, limit) in pairs.items() if limit is not None}
    values["min_accuracy"] = float(useful - accuracy)
    return values


def make_sampler(experiment: Experiment, trials_so_far: int) -> optuna.samplers.BaseSampler:
    # Offset the seed by the trials already run so a resumed study does not redraw the same points.
    seed = experiment.seed + trials_so_far
    if experiment.sampler == "tpe":
        return optuna.samplers.TPESampler(seed=seed, multivariate=True)
    if experiment.sampler == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    return optuna.samplers.NSGAIISampler(population_size=experiment.population, seed=seed)


def open_study(experiment: Experiment) -> optuna.Study:
    """Create or load the run's study. Feasibility is stored with every trial, so a study refuses
    to continue under other constraints than it started with (never a front of mixed rules)."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)  # our progress bar and summary say enough
    experiment.run_dir.mkdir(parents=True, exist_ok=True)
    directions = [OBJECTIVE_ATTRS[name][1] for name in experiment.objectives]
    study = optuna.create_study(study_name=experiment.name, storage=experiment.storage_url,
                                directions=directions, load_if_exists=True)
    if [d.name.lower() for d in study.directions] != directions:
        raise ConfigError(f"{experiment.path}: objectives: the study in {experiment.storage_url} was "
                          f"created with other objectives; use a new name or output_dir")
    constraints = dataclasses.asdict(experiment.constraints)
    stored = study.user_attrs.get("constraints")
    if stored is None:
        study.set_user_attr("constraints", constraints)
    elif stored != constraints:
        changed = ", ".join(f"{k} {stored.get(k)} -> {v}" for k, v in constraints.items() if stored.get(k) != v)
        raise ConfigError(f"{experiment.path}: constraints: changed since the study in {experiment.run_dir} "
                          f"started ({changed}); its trials were judged by the old limits. Use a new name "
                          f"or output_dir for the new limits")
    return study


def _counts_toward_budget(trial: optuna.trial.FrozenTrial) -> bool:
    """Trained trials and failures count; interruptions, rejections and duplicates do not."""
    if trial.state == optuna.trial.TrialState.FAIL:
        return trial.user_attrs.get("fail_reason") != INTERRUPTED
    return trial.state == optuna.trial.TrialState.COMPLETE and REJECTED not in trial.user_attrs


def _fail_stale(study: optuna.Study) -> None:
    """Trials left RUNNING by a killed process can never finish: record them as interrupted."""
    for t in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,)):
        study._storage.set_trial_user_attr(t._trial_id, "fail_reason", INTERRUPTED)
        study._storage.set_trial_state_values(t._trial_id, optuna.trial.TrialState.FAIL)


def _duplicate_of(study: optuna.Study, trial: optuna.Trial, params: dict) -> int | None:
    """An earlier trial (finished, rejected or running) with the same parameters."""
    states = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.RUNNING)
    for t in study.get_trials(deepcopy=False, states=states):
        if t.number != trial.number and t.params == params:
            return t.number
    return None


class _CtrlC:
    """Ctrl-C, seen by the search itself: native code (TensorFlow calling back into Python) can
    turn a KeyboardInterrupt into an ordinary error, which would fail the trial and go on; and
    while a finished trial is being recorded (`recording`) the interrupt waits for the end."""

    def __init__(self):
        self.pressed = False
        self.recording = False

    def __call__(self, signum, frame) -> None:
        self.pressed = True
        if not self.recording:
            raise KeyboardInterrupt

    @contextmanager
    def installed(self):
        if threading.current_thread() is not threading.main_thread():  # only there can it be set
            yield
            return
        previous = signal.signal(signal.SIGINT, self)
        try:
            yield
        finally:
            signal.signal(signal.SIGINT, previous)

    @contextmanager
    def deferred(self):
        self.recording = True
        try:
            yield
        finally:
            self.recording = False
        self.check()

    def check(self) -> None:
        if self.pressed:
            raise KeyboardInterrupt


def _cost_attrs(costs) -> dict:
    return {
        "flash_kb": costs.flash.value / 1024,
        "ram_kb": costs.ram.value / 1024,
        "latency_ms": costs.latency.value,
        "params_count": costs.params,
        "macs": costs.macs,
        "predicted": {"flash_kb": costs.predicted.flash.value / 1024, "ram_kb": costs.predicted.ram.value / 1024,
                      "latency_ms": costs.predicted.latency.value, "source": costs.predicted.flash.source},
    }


def _accuracy_attrs(prefix: str, accuracy) -> dict:
    low, high = accuracy.interval
    attrs = {prefix: accuracy.value, f"{prefix}_n": accuracy.n, f"{prefix}_ci95": [low, high]}
    if accuracy.spread is not None:
        attrs[f"{prefix}_fold_std"] = accuracy.spread
    return attrs


def _tell(study: optuna.Study, trial: optuna.Trial, outcome: TrialResult | Rejected | TrialFailure,
          experiment: Experiment, useful: float) -> None:
    if isinstance(outcome, TrialFailure):
        trial.set_user_attr("fail_reason", outcome.reason)
        study.tell(trial, state=optuna.trial.TrialState.FAIL)
        return
    costs = outcome.costs
    metrics = {**_cost_attrs(costs), "stage_seconds": outcome.stage_seconds,
               "sources": {"flash": costs.flash.source, "ram": costs.ram.source, "latency": costs.latency.source}}
    if isinstance(outcome, Rejected):  # told as infeasible without an accuracy: never trained
        metrics.update({REJECTED: outcome.reason, "accuracy": 0.0})
    else:
        model_path(experiment.run_dir, outcome.number).write_bytes(outcome.tflite)
        metrics.update({**_accuracy_attrs("accuracy", outcome.val_accuracy),
                        **_accuracy_attrs("test_accuracy", outcome.test_accuracy),
                        "float_val_accuracy": outcome.float_val_accuracy, "epochs_run": outcome.epochs_run,
                        "restarts": outcome.restarts})
        metrics["sources"].update(accuracy=outcome.val_accuracy.source, test_accuracy=outcome.test_accuracy.source)
    for key, value in metrics.items():
        trial.set_user_attr(key, value)
    for name, value in constraint_values(outcome, experiment, useful).items():  # samplers and fronts read these
        trial.set_constraint(name, value)
    study.tell(trial, [metrics[OBJECTIVE_ATTRS[name][0]] for name in experiment.objectives])


def run_search(experiment: Experiment, workers: int | None = None, ray_address: str | None = None,
               progress: bool = True, dataset: Dataset | None = None) -> SearchSummary:
    workers = workers or experiment.workers
    study = open_study(experiment)
    _fail_stale(study)
    trials = study.get_trials(deepcopy=False)
    finished = sum(_counts_toward_budget(t) for t in trials)
    study.sampler = make_sampler(experiment, len(trials))
    remaining = max(0, experiment.budget.trials - finished)
    (experiment.run_dir / "models").mkdir(exist_ok=True)

    dataset = dataset or load_dataset(experiment.data, experiment.seed)
    space = get_family(experiment.family)(experiment.space)
    if dataset.signal_kind not in space.signal_kinds:
        raise ConfigError(f"{experiment.path}: model.family: {experiment.family} takes "
                          f"{'/'.join(space.signal_kinds)} inputs, but the data are {dataset.signal_kind}")
    useful = min_accuracy(experiment, dataset)
    study.set_user_attr("min_accuracy", useful)
    study.set_user_attr("data", describe_data(dataset))
    deadline = time.monotonic() + experiment.budget.timeout_minutes * 60 if experiment.budget.timeout_minutes else None
    runner = (RayRunner(experiment, dataset, workers, ray_address) if workers > 1 or ray_address
              else LocalRunner(experiment, dataset))
    bar = tqdm(total=experiment.budget.trials, initial=finished, disable=not progress, unit="trial",
               desc=experiment.name, dynamic_ncols=True)
    in_flight: dict[int, optuna.Trial] = {}
    counted = new = idle = 0  # idle: draws in a row that did not train (duplicates, rejections)
    interrupted = exhausted = False
    ctrl_c = _CtrlC()
    with ctrl_c.installed():
        try:
            while True:
                while counted + len(in_flight) < remaining and len(in_flight) < runner.capacity and \
                        (deadline is None or time.monotonic() < deadline) and not exhausted:
                    trial = study.ask()
                    params = space.sample(trial)
                    original = _duplicate_of(study, trial, params)
                    if original is not None:  # re-sampled: a duplicate does not use the budget
                        trial.set_user_attr("fail_reason", f"duplicate of trial {original}")
                        study.tell(trial, state=optuna.trial.TrialState.PRUNED)
                        idle += 1
                        exhausted = idle >= MAX_IDLE_DRAWS
                        continue
                    in_flight[trial.number] = trial
                    runner.submit(Candidate(trial.number, params))
                if not in_flight:
                    break
                number, outcome = runner.next_done()
                ctrl_c.check()  # an interrupt the trial's code swallowed: the trial was interrupted
                with ctrl_c.deferred():
                    _tell(study, in_flight.pop(number), outcome, experiment, useful)
                if isinstance(outcome, Rejected):
                    idle += 1
                    exhausted = idle >= MAX_IDLE_DRAWS
                else:
                    idle = 0
                    counted += 1
                    new += 1
                    bar.update()
                bar.set_postfix_str(_progress_text(study, experiment), refresh=True)
        except KeyboardInterrupt:
            interrupted = True
            runner.cancel()
            for trial in in_flight.values():
                trial.set_user_attr("fail_reason", INTERRUPTED)
                study.tell(trial, state=optuna.trial.TrialState.FAIL)
        finally:
            bar.close()
            runner.close()
    write_outputs(experiment, study)
    records = read_records(study)
    front = pareto_front(records, experiment.objectives)
    return SearchSummary(
        finished=sum(_counts_toward_budget(t) for t in study.get_trials(deepcopy=False)),
        new=new, feasible=sum(r.feasible for r in records), front=len(front),
        hypervolume=hypervolume(front, experiment), interrupted=interrupted,
        rejected=sum(r.state == "REJECTED" for r in records), exhausted=exhausted,
        best=max(front, key=lambda r: r.metrics["accuracy"], default=None))


def _progress_text(study: optuna.Study, experiment: Experiment) -> str:
    records = read_records(study)
    front = pareto_front(records, experiment.objectives)
    return (f"feasible={sum(r.feasible for r in records)} front={len(front)} "
            f"hv={hypervolume(front, experiment):.4f}")
