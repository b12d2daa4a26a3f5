"""The search: an Optuna multi-objective study driven by ask/tell, resumable from its storage.

Trials run in this process (one worker) or as Ray tasks (`--workers N`, `--ray-address`).
Every finished trial is told to the study at once, so an interrupt loses only trials in flight;
running the same command again continues up to the trial budget.
"""
from __future__ import annotations

import signal
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass

import optuna
from tqdm import tqdm

from autotune.config import Experiment
from autotune.data import Dataset, load_dataset
from autotune.errors import ConfigError
from autotune.report.outputs import model_path, write_outputs
from autotune.report.records import OBJECTIVE_ATTRS, hypervolume, pareto_front, read_records
from autotune.runner import LocalRunner, RayRunner, TrialFailure
from autotune.trial import Candidate, TrialResult
from search_spaces import get_family

INTERRUPTED = "interrupted"


@dataclass(frozen=True)
class SearchSummary:
    finished: int  # trials finished in total (this and earlier runs)
    new: int  # trials finished by this run
    feasible: int
    front: int
    hypervolume: float
    interrupted: bool


def constraint_values(result: TrialResult, experiment: Experiment) -> dict[str, float]:
    """One value per set constraint; <= 0 means satisfied (Optuna's convention)."""
    c = experiment.constraints
    pairs = {"max_flash_kb": (result.flash.value / 1024, c.max_flash_kb),
             "max_ram_kb": (result.ram.value / 1024, c.max_ram_kb),
             "max_latency_ms": (result.latency.value, c.max_latency_ms),
             "max_params": (result.params, c.max_params)}
    return {name: float(value - limit) for name, (value, limit) in pairs.items() if limit is not None}


def make_sampler(experiment: Experiment, trials_so_far: int) -> optuna.samplers.BaseSampler:
    # Offset the seed by the trials already run so a resumed study does not redraw the same points.
    seed = experiment.seed + trials_so_far
    if experiment.sampler == "tpe":
        return optuna.samplers.TPESampler(seed=seed, multivariate=True)
    if experiment.sampler == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    return optuna.samplers.NSGAIISampler(population_size=experiment.population, seed=seed)


def open_study(experiment: Experiment) -> optuna.Study:
    optuna.logging.set_verbosity(optuna.logging.WARNING)  # our progress bar and summary say enough
    experiment.run_dir.mkdir(parents=True, exist_ok=True)
    directions = [OBJECTIVE_ATTRS[name][1] for name in experiment.objectives]
    study = optuna.create_study(study_name=experiment.name, storage=experiment.storage_url,
                                directions=directions, load_if_exists=True)
    if [d.name.lower() for d in study.directions] != directions:
        raise ConfigError(f"{experiment.path}: objectives: the study in {experiment.storage_url} was "
                          f"created with other objectives; use a new name or output_dir")
    return study


def _counts_toward_budget(trial: optuna.trial.FrozenTrial) -> bool:
    if trial.state == optuna.trial.TrialState.FAIL:
        return trial.user_attrs.get("fail_reason") != INTERRUPTED
    return trial.state in (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)


def _fail_stale(study: optuna.Study) -> None:
    """Trials left RUNNING by a killed process can never finish: record them as interrupted."""
    for t in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,)):
        study._storage.set_trial_user_attr(t._trial_id, "fail_reason", INTERRUPTED)
        study._storage.set_trial_state_values(t._trial_id, optuna.trial.TrialState.FAIL)


def _duplicate_of(study: optuna.Study, params: dict) -> int | None:
    for t in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,)):
        if t.params == params:
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


def _tell(study: optuna.Study, trial: optuna.Trial, outcome: TrialResult | TrialFailure,
          experiment: Experiment) -> None:
    if isinstance(outcome, TrialFailure):
        trial.set_user_attr("fail_reason", outcome.reason)
        study.tell(trial, state=optuna.trial.TrialState.FAIL)
        return
    model_path(experiment.run_dir, outcome.number).write_bytes(outcome.tflite)
    metrics = {
        "accuracy": outcome.accuracy.value,
        "flash_kb": outcome.flash.value / 1024,
        "ram_kb": outcome.ram.value / 1024,
        "latency_ms": outcome.latency.value,
        "params_count": outcome.params,
        "macs": outcome.macs,
        "float_val_accuracy": outcome.float_val_accuracy,
        "epochs_run": outcome.epochs_run,
        "stage_seconds": outcome.stage_seconds,
        "sources": {"accuracy": outcome.accuracy.source, "flash": outcome.flash.source,
                    "ram": outcome.ram.source, "latency": outcome.latency.source},
        "predicted": {"flash_kb": outcome.predicted.flash.value / 1024, "ram_kb": outcome.predicted.ram.value / 1024,
                      "latency_ms": outcome.predicted.latency.value, "source": outcome.predicted.flash.source},
    }
    for key, value in metrics.items():
        trial.set_user_attr(key, value)
    for name, value in constraint_values(outcome, experiment).items():  # samplers and fronts read these
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
    deadline = time.monotonic() + experiment.budget.timeout_minutes * 60 if experiment.budget.timeout_minutes else None
    runner = (RayRunner(experiment, dataset, workers, ray_address) if workers > 1 or ray_address
              else LocalRunner(experiment, dataset))
    bar = tqdm(total=experiment.budget.trials, initial=finished, disable=not progress, unit="trial",
               desc=experiment.name, dynamic_ncols=True)
    in_flight: dict[int, optuna.Trial] = {}
    asked = new = 0
    interrupted = False
    ctrl_c = _CtrlC()
    with ctrl_c.installed():
        try:
            while True:
                while asked < remaining and len(in_flight) < runner.capacity and \
                        (deadline is None or time.monotonic() < deadline):
                    trial = study.ask()
                    params = space.sample(trial)
                    asked += 1
                    original = _duplicate_of(study, params)
                    if original is not None:
                        trial.set_user_attr("fail_reason", f"duplicate of trial {original}")
                        study.tell(trial, state=optuna.trial.TrialState.PRUNED)
                        new += 1
                        bar.update()
                        continue
                    in_flight[trial.number] = trial
                    runner.submit(Candidate(trial.number, params))
                if not in_flight:
                    break
                number, outcome = runner.next_done()
                ctrl_c.check()  # an interrupt the trial's code swallowed: the trial was interrupted
                with ctrl_c.deferred():
                    _tell(study, in_flight.pop(number), outcome, experiment)
                new += 1
                bar.set_postfix_str(_progress_text(study, experiment), refresh=False)
                bar.update()
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
        hypervolume=hypervolume(front, experiment), interrupted=interrupted)


def _progress_text(study: optuna.Study, experiment: Experiment) -> str:
    records = read_records(study)
    front = pareto_front(records, experiment.objectives)
    return (f"feasible={sum(r.feasible for r in records)} front={len(front)} "
            f"hv={hypervolume(front, experiment):.4f}")
