"""The search: an Optuna multi-objective study driven by ask/tell, resumable from its storage.

Trials run in this process (one worker) or as Ray tasks (`--workers N`, `--ray-address`).
Every finished trial is told to the study at once, so an interrupt loses only trials in flight;
running the same command again continues up to the trial budget. The budget counts trained
trials (and failures): a candidate rejected before training and a duplicate draw do not count.
Several processes may run the same experiment against one storage at once: they share the
budget, and a trial whose process died is failed by the others once its heartbeat stops
(`autotune.storage`).
"""
from __future__ import annotations

import dataclasses
import fcntl
import os
import signal
import sys
import tempfile
import threading
import time
import warnings
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import optuna
from sqlalchemy import exc as sa_exc
from tqdm import tqdm

from autotune.compress.search import sample_compression
from autotune.config import Experiment, folder_problem, load_experiment, locate
from autotune.data import Dataset, describe_data, load_dataset
from autotune.errors import AutotuneError, ConfigError
from autotune.report.outputs import model_path, write_outputs
from autotune.report.records import (INTERRUPTED, OVER_BUDGET, OBJECTIVE_ATTRS, TrialRecord, hypervolume, pareto_front,
                                     read_records)
from autotune.runner import LocalRunner, RayRunner, TrialFailure
from autotune.starting_points import spanning_points
from autotune.storage import Heartbeats, open_storage
from autotune.early_stop import Rival
from autotune.trial import Candidate, EarlyStopped, Rejected, TrialResult, trial_seed
from autotune.training import chance_margin
from search_spaces import get_family
from search_spaces.base import SearchSpace

EXPERIMENT_COPY = "experiment.yaml"  # the run folder keeps the YAML it was started from
REJECTED = "rejected"  # user attribute of a trial rejected before training: the reason
EARLY_STOPPED = "early_stopped"  # user attribute of a trial stopped after its short run: the reason
ORIGIN = "origin"  # user attribute of an enqueued trial: "starting point" or "warm start from RUN"
# The default sampler (`gp`) draws at random until this many trials count against the budget,
# starting points included (Optuna's own default for GPSampler), then a Gaussian process models
# the rest (benchmarks/bench_search_efficiency.py; README "Search").
GP_STARTUP_TRIALS = 10
# `tpe`, the default before: random draws until this many trials count, then TPE (at laptop budgets
# TPE's draws did worse than random ones).
TPE_STARTUP_TRIALS = 24
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
    interrupted: int  # the signal that stopped the run (SIGINT, SIGTERM); 0 if it ran to the end
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


def constraint_values(outcome: TrialResult | Rejected | EarlyStopped, experiment: Experiment,
                      useful: float) -> dict[str, float]:
    """One value per constraint; <= 0 means satisfied (Optuna's convention). A rejected candidate
    has no accuracy: it breaks min_accuracy by the whole threshold. An early-stopped one breaks
    `early_stopped`: its accuracy is partial, so it is never feasible."""
    c, costs = experiment.constraints, outcome.costs
    accuracy = 0.0
    if isinstance(outcome, TrialResult):
        accuracy = outcome.val_accuracy.value
    elif isinstance(outcome, EarlyStopped):
        accuracy = outcome.short_accuracy.value
    pairs = {"max_flash_kb": (costs.flash.value / 1024, c.max_flash_kb),
             "max_ram_kb": (costs.ram.value / 1024, c.max_ram_kb),
             "max_latency_ms": (costs.latency.value, c.max_latency_ms),
             "max_params": (costs.params, c.max_params)}
    values = {name: float(value - limit) for name, (value, limit) in pairs.items() if limit is not None}
    values["min_accuracy"] = float(useful - accuracy)
    values[EARLY_STOPPED] = 1.0 if isinstance(outcome, EarlyStopped) else 0.0
    return values


class _SeededPerTrial(optuna.samplers.BaseSampler):
    """The experiment's sampler, made afresh for each trial with the trial's seed (hashed from the
    run's seed and the trial number) and the number of trials that count against the budget so
    far: processes sharing a study draw different points, runs of different seeds draw independent
    ones, and a random draw does not depend on which process asked for it or how often
    the run was resumed."""

    def __init__(self, make: Callable[[int, int], optuna.samplers.BaseSampler]):
        self._make = make
        self._sampler = make(0, 0)

    def before_trial(self, study, trial) -> None:
        self._sampler = self._make(trial.number, _finished(study))
        self._sampler.before_trial(study, trial)

    def infer_relative_search_space(self, study, trial):
        return self._sampler.infer_relative_search_space(study, trial)

    def sample_relative(self, study, trial, search_space):
        return self._sampler.sample_relative(study, trial, search_space)

    def sample_independent(self, study, trial, param_name, param_distribution):
        return self._sampler.sample_independent(study, trial, param_name, param_distribution)

    def after_trial(self, study, trial, state, values) -> None:
        self._sampler.after_trial(study, trial, state, values)


def make_sampler(experiment: Experiment) -> optuna.samplers.BaseSampler:
    """The default (`gp`), chosen by benchmarks/bench_search_efficiency.py: random draws until
    GP_STARTUP_TRIALS trials count against the budget, then Optuna's GP sampler (expected
    hypervolume improvement over every objective, reading every trial's constraints; a parameter
    not every trial has, such as a third block's filters, is drawn at random). `tpe` (random draws
    until TPE_STARTUP_TRIALS, then multivariate TPE, `group`: the per-block filters exist only for
    their block count), NSGA-II and random sampling alone for comparison."""
    def make(number: int, finished: int) -> optuna.samplers.BaseSampler:
        seed = trial_seed(experiment.seed, number)
        startup = {"gp": GP_STARTUP_TRIALS, "tpe": TPE_STARTUP_TRIALS}.get(experiment.sampler, 0)
        if experiment.sampler == "random" or finished < startup:
            return optuna.samplers.RandomSampler(seed=seed)
        if experiment.sampler == "gp":  # what only some points have (a third block's filters): drawn at random
            return optuna.samplers.GPSampler(seed=seed, n_startup_trials=0, warn_independent_sampling=False)
        if experiment.sampler == "tpe":
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                return optuna.samplers.TPESampler(seed=seed, multivariate=True, group=True, n_startup_trials=0)
        return optuna.samplers.NSGAIISampler(population_size=experiment.population, seed=seed)

    return _SeededPerTrial(make)


def _storage(experiment: Experiment) -> optuna.storages.RDBStorage:
    def forget_model(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        model_path(experiment.run_dir, trial.number).unlink(missing_ok=True)  # a failed trial keeps no model

    try:
        return open_storage(experiment.storage_url, experiment.heartbeat_seconds, experiment.grace_seconds,
                            on_stale=forget_model)
    except (sa_exc.SQLAlchemyError, optuna.exceptions.StorageInternalError, ImportError, ValueError) as exc:
        raise _storage_error(experiment, exc) from None


def _storage_error(experiment: Experiment, exc: Exception) -> ConfigError:
    key = "storage" if experiment.storage else "output_dir"
    reason = str(getattr(exc, "orig", None) or exc).splitlines()[0]
    return ConfigError(f"{locate(experiment.path, key)}: {key}: cannot open the study "
                       f"({type(exc).__name__}: {reason})")


def open_study(experiment: Experiment, storage: optuna.storages.RDBStorage | None = None) -> optuna.Study:
    """Create or load the run's study. Feasibility is stored with every trial, so a study refuses
    to continue under other constraints than it started with (never a front of mixed rules)."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)  # our progress bar and summary say enough
    directions = [OBJECTIVE_ATTRS[name][1] for name in experiment.objectives]
    try:
        study = optuna.create_study(study_name=experiment.name, storage=storage or _storage(experiment),
                                    directions=directions, load_if_exists=True)
    except (sa_exc.SQLAlchemyError, optuna.exceptions.StorageInternalError) as exc:
        raise _storage_error(experiment, exc) from None
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


def load_run(run: Path) -> Experiment:
    """The experiment of an existing run folder, pointing at that folder."""
    copy = run / EXPERIMENT_COPY
    if not copy.exists():
        raise AutotuneError(f"{run}: not a run folder (no {EXPERIMENT_COPY}; start one with `autotune run`)")
    experiment = load_experiment(copy)
    if run.resolve().name != experiment.name:
        raise AutotuneError(f"{run}: the folder name must match the experiment name {experiment.name!r}")
    return dataclasses.replace(experiment, output_dir=run.resolve().parent)


def warm_start_points(run: Path, experiment: Experiment, space: SearchSpace) -> list[dict]:
    """Points from a previous run of the same family, best validation accuracy first: its front;
    when the data or the target changed, also its other feasible trials (their results there say
    where to look, not what they score here), up to half the trial budget. Points outside this
    experiment's space are left out."""
    previous = load_run(run)
    if previous.family != experiment.family:
        raise ConfigError(f"--warm-start {run}: model.family: the run searched {previous.family}, this experiment "
                          f"{experiment.family}; a warm start needs the same family")
    if previous.storage is None and not (previous.run_dir / "study.db").exists():
        raise ConfigError(f"--warm-start {run}: no study.db in it; give a run folder that `autotune run` wrote")
    try:  # read only: the previous run's study is not changed
        records = read_records(optuna.load_study(study_name=previous.name, storage=_storage(previous)))
    except KeyError:
        raise ConfigError(f"--warm-start {run}: no study named {previous.name!r} in {previous.storage_url}") from None
    by_accuracy = lambda rs: sorted(rs, key=lambda r: -r.metrics["accuracy"])  # noqa: E731
    front = by_accuracy(pareto_front(records, previous.objectives))
    points = [r.params for r in front]
    if previous.data != experiment.data or previous.target != experiment.target:
        on_front = {r.number for r in front}
        rest = by_accuracy(r for r in records if r.feasible and r.number not in on_front)
        points += [r.params for r in rest][:max(0, experiment.budget.trials // 2 - len(points))]
    return [p for p in points if space.contains(p)]


def _enqueue_first(study: optuna.Study, experiment: Experiment, space: SearchSpace, dataset: Dataset,
                   warm: tuple[Path, list[dict]] | None) -> None:
    """A new study tries the warm start's points (`warm`: the run and its points), then the
    starting points (three spanning the space's cost range within the limits, then the family's
    known-good ones), before the sampler's own; a resumed one has them queued already. Processes
    starting on one run folder at once take turns (a lock file there): only the first queues them."""
    with (experiment.run_dir / ".queue.lock").open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
        _enqueue_if_new(study, experiment, space, dataset, warm)


def _enqueue_if_new(study: optuna.Study, experiment: Experiment, space: SearchSpace, dataset: Dataset,
                    warm: tuple[Path, list[dict]] | None) -> None:
    if study.get_trials(deepcopy=False):
        if warm is not None:
            print(f"--warm-start {warm[0]}: ignored, the study in {experiment.run_dir} has trials already "
                  "(it was warm-started, if at all, when it began)", file=sys.stderr)
        return
    queued: list[dict] = []
    sources = [(warm[1], f"warm start from {warm[0]}")] if warm is not None else []
    if experiment.starting_points:
        known_good = [p for p in space.starting_points if space.contains(p)]
        sources.append((spanning_points(space, experiment, dataset) + known_good, "starting point"))
    for points, origin in sources:
        for params in points:
            if params not in queued:
                queued.append(params)
                study.enqueue_trial(params, user_attrs={ORIGIN: origin})


def _run_folder_error(experiment: Experiment, reason: str) -> ConfigError:
    return ConfigError(f"{locate(experiment.path, 'output_dir')}: output_dir: cannot write the run folder "
                       f"{experiment.run_dir} ({reason})")


def _check_run_folder(experiment: Experiment) -> None:
    """The run folder can be created and written, checked without leaving anything behind."""
    run_dir = experiment.run_dir
    problem = folder_problem(run_dir)
    if problem:
        raise _run_folder_error(experiment, problem)
    existing = next(p for p in (run_dir, *run_dir.parents) if p.exists())
    try:
        tempfile.TemporaryDirectory(dir=existing).cleanup()  # os.access says yes to root, even on /sys
    except OSError as exc:
        raise _run_folder_error(experiment, exc.strerror or str(exc)) from None


def _start_run_folder(experiment: Experiment) -> None:
    try:
        (experiment.run_dir / "models").mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise _run_folder_error(experiment, exc.strerror or str(exc)) from None


def _keep_experiment(experiment: Experiment) -> None:
    """The run folder keeps the YAML it was started from, with data paths made absolute so that
    `report` and `export` find the data from anywhere. Written whole: processes may start together."""
    import yaml

    text = experiment.path.read_text()
    document = yaml.safe_load(text)
    data = document.get("data") if isinstance(document, dict) else None
    if isinstance(data, dict) and any(k in data for k in ("path", "val_path", "test_path")):
        for key in ("path", "val_path", "test_path"):
            if key in data:
                data[key] = getattr(experiment.data, key)
        text = (f"# {experiment.path.resolve()}, data paths made absolute\n"
                + yaml.safe_dump(document, sort_keys=False))
    copy = experiment.run_dir / EXPERIMENT_COPY
    partial = copy.with_name(f".{copy.name}.{os.getpid()}")
    try:
        partial.write_text(text)
        os.replace(partial, copy)
    except OSError as exc:
        raise _run_folder_error(experiment, exc.strerror or str(exc)) from None


def _counts_toward_budget(trial: optuna.trial.FrozenTrial) -> bool:
    """Trained trials and candidate failures count. Interruptions (by a signal, or failed by a
    heartbeat check: no reason of ours), rejections, duplicates and trials not run for want of
    budget do not."""
    if trial.state == optuna.trial.TrialState.FAIL:
        reason = trial.user_attrs.get("fail_reason")
        return bool(reason) and reason not in (INTERRUPTED, OVER_BUDGET)
    return trial.state == optuna.trial.TrialState.COMPLETE and REJECTED not in trial.user_attrs


def _taken(trials: list[optuna.trial.FrozenTrial]) -> int:
    """Budget used up: trials that count, and trials running in any process."""
    return sum(_counts_toward_budget(t) or t.state == optuna.trial.TrialState.RUNNING for t in trials)


def _claim(study: optuna.Study, budget: int, heartbeats: Heartbeats) -> optuna.Trial | None:
    """A new trial if the budget has room, counting every process's running trials; else None.

    Two processes asking at once may both see room for one more: the trial with the lower
    number keeps it, the other is recorded as not run (OVER_BUDGET) and does not count.
    """
    if _taken(study.get_trials(deepcopy=False)) >= budget:
        return None
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Heartbeat of storage")  # we keep it ourselves
        trial = study.ask()
    heartbeats.add(trial._trial_id)
    if _taken([t for t in study.get_trials(deepcopy=False) if t.number < trial.number]) < budget:
        return trial
    trial.set_user_attr("fail_reason", OVER_BUDGET)
    study.tell(trial, state=optuna.trial.TrialState.FAIL)
    heartbeats.discard(trial._trial_id)
    return None


def _duplicate_of(study: optuna.Study, trial: optuna.Trial, params: dict) -> int | None:
    """An earlier trial (finished, rejected or running) with the same parameters."""
    states = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.RUNNING)
    for t in study.get_trials(deepcopy=False, states=states):
        if t.number != trial.number and t.params == params:
            return t.number
    return None


class _Interrupt:
    """Ctrl-C (SIGINT) and SIGTERM (what schedulers and `docker stop` send), seen by the search
    itself: native code (TensorFlow calling back into Python) can turn a KeyboardInterrupt into
    an ordinary error, which would fail the trial and go on; and while a trial is being asked for
    or recorded (`deferred`) the interrupt waits for the end, so no trial is left half-told."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self):
        self.signum = 0
        self.deferring = False

    def __call__(self, signum, frame) -> None:
        self.signum = signum
        if not self.deferring:
            raise KeyboardInterrupt

    @contextmanager
    def installed(self):
        if threading.current_thread() is not threading.main_thread():  # only there can it be set
            yield
            return
        previous = {s: signal.signal(s, self) for s in self.SIGNALS}
        hook = sys.unraisablehook
        sys.unraisablehook = self._unraisable
        try:
            yield
        finally:
            sys.unraisablehook = hook
            for s, handler in previous.items():
                signal.signal(s, handler)

    def _unraisable(self, unraisable) -> None:
        """An interrupt raised inside a finalizer (TensorFlow objects collected mid-training)
        cannot propagate, and Python would print it as "Exception ignored". Not printed: the
        signal is raised again, to land in ordinary code a moment later."""
        if not isinstance(unraisable.exc_value, KeyboardInterrupt):
            sys.__unraisablehook__(unraisable)
        elif self.signum:
            threading.Timer(0.05, os.kill, (os.getpid(), self.signum)).start()

    @contextmanager
    def deferred(self):
        self.deferring = True
        try:
            yield
        finally:
            self.deferring = False
        self.check()

    def check(self) -> None:
        if self.signum:
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


def _tell(study: optuna.Study, trial: optuna.Trial, outcome: TrialResult | Rejected | EarlyStopped | TrialFailure,
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
    elif isinstance(outcome, EarlyStopped):  # told as infeasible with its partial accuracy: no model kept
        metrics.update({EARLY_STOPPED: outcome.reason, **_accuracy_attrs("accuracy", outcome.short_accuracy),
                        **_accuracy_attrs("short_accuracy", outcome.short_accuracy)})
        metrics["sources"].update(accuracy=outcome.short_accuracy.source)
    else:
        model_path(experiment.run_dir, outcome.number).write_bytes(outcome.tflite)
        metrics.update({**_accuracy_attrs("accuracy", outcome.val_accuracy),
                        **_accuracy_attrs("test_accuracy", outcome.test_accuracy),
                        "float_val_accuracy": outcome.float_val_accuracy, "epochs_run": outcome.epochs_run,
                        "restarts": outcome.restarts})
        metrics["sources"].update(accuracy=outcome.val_accuracy.source, test_accuracy=outcome.test_accuracy.source)
        if outcome.short_accuracy is not None:
            metrics.update(_accuracy_attrs("short_accuracy", outcome.short_accuracy))
        if outcome.cv_accuracy is not None:  # k-fold: what the objective is the lower of
            metrics.update(cv_accuracy=outcome.cv_accuracy, train_accuracy=outcome.train_accuracy)
    for key, value in metrics.items():
        trial.set_user_attr(key, value)
    for name, value in constraint_values(outcome, experiment, useful).items():  # samplers and fronts read these
        trial.set_constraint(name, value)
    study.tell(trial, [metrics[OBJECTIVE_ATTRS[name][0]] for name in experiment.objectives])


def _space_for(experiment: Experiment, dataset: Dataset) -> SearchSpace:
    space = get_family(experiment.family)(experiment.space)
    if dataset.signal_kind not in space.signal_kinds:
        raise ConfigError(f"{locate(experiment.path, 'model.family')}: model.family: {experiment.family} takes "
                          f"{'/'.join(space.signal_kinds)} inputs, but the data are {dataset.signal_kind}")
    return space


def run_search(experiment: Experiment, workers: int | None = None, ray_address: str | None = None,
               progress: bool = True, dataset: Dataset | None = None, warm_start: Path | None = None) -> SearchSummary:
    workers = workers or experiment.workers
    dataset = dataset or load_dataset(experiment.data, experiment.seed)
    space = _space_for(experiment, dataset)  # bad data or family: an error before anything is written
    warm = (warm_start, warm_start_points(warm_start, experiment, space)) if warm_start is not None else None
    _check_run_folder(experiment)
    storage = _storage(experiment) if experiment.storage else None  # a user's database: reachable?
    _start_run_folder(experiment)
    storage = storage or _storage(experiment)
    study = open_study(experiment, storage)  # refuses a study that started under other constraints
    _keep_experiment(experiment)  # only then: the copy must describe the study
    study.sampler = make_sampler(experiment)
    _enqueue_first(study, experiment, space, dataset, warm)
    useful = min_accuracy(experiment, dataset)
    study.set_user_attr("min_accuracy", useful)
    study.set_user_attr("data", describe_data(dataset))
    budget = experiment.budget.trials
    deadline = time.monotonic() + experiment.budget.timeout_minutes * 60 if experiment.budget.timeout_minutes else None
    runner = (RayRunner(experiment, dataset, workers, ray_address) if workers > 1 or ray_address
              else LocalRunner(experiment, dataset))
    bar = tqdm(total=budget, initial=_finished(study), disable=not progress, unit="trial",
               desc=experiment.name, dynamic_ncols=True)
    in_flight: dict[int, optuna.Trial] = {}
    new = idle = 0  # idle: draws in a row that did not train (duplicates, rejections)
    exhausted = False
    interrupt = _Interrupt()
    with interrupt.installed(), Heartbeats(study, storage, experiment.heartbeat_seconds) as heartbeats:
        try:
            while True:
                bar.update(_finished(study) - bar.n)  # this process's trials and the others'
                while len(in_flight) < runner.capacity and (deadline is None or time.monotonic() < deadline) \
                        and not exhausted:
                    with interrupt.deferred():  # a trial asked for is always in flight, or told
                        trial = _claim(study, budget, heartbeats)
                        if trial is None:
                            break
                        in_flight[trial.number] = trial
                    params = space.sample(trial)
                    if experiment.compression.searched:
                        params |= sample_compression(trial, experiment.compression, space.weighted_layers(params),
                                                     space.channel_layers(params))
                    original = _duplicate_of(study, trial, params)
                    if original is not None:  # re-sampled: a duplicate does not use the budget
                        with interrupt.deferred():
                            trial.set_user_attr("fail_reason", f"duplicate of trial {original}")
                            study.tell(in_flight.pop(trial.number), state=optuna.trial.TrialState.PRUNED)
                            heartbeats.discard(trial._trial_id)
                        idle += 1
                        exhausted = idle >= MAX_IDLE_DRAWS
                        continue
                    runner.submit(Candidate(trial.number, params, _rivals(study)))
                if not in_flight:
                    if exhausted or (deadline is not None and time.monotonic() >= deadline) or not _running(study):
                        break
                    time.sleep(experiment.heartbeat_seconds)  # another process's trial: wait for its end
                    continue
                number, outcome = runner.next_done()
                interrupt.check()  # an interrupt the trial's code swallowed: the trial was interrupted
                with interrupt.deferred():
                    trial = in_flight.pop(number)
                    try:
                        _tell(study, trial, outcome, experiment, useful)
                    except optuna.exceptions.UpdateFinishedTrialError:
                        model_path(experiment.run_dir, number).unlink(missing_ok=True)
                        tqdm.write(f"trial {number}: another process failed it after {experiment.grace_seconds} s "
                                   "without a heartbeat from this one; its result is not kept", file=sys.stderr)
                    heartbeats.discard(trial._trial_id)
                if isinstance(outcome, Rejected):
                    idle += 1
                    exhausted = idle >= MAX_IDLE_DRAWS
                else:
                    idle = 0
                    new += 1
                bar.set_postfix_str(_progress_text(study, experiment), refresh=True)
        except KeyboardInterrupt:
            runner.cancel()
            for trial in in_flight.values():
                try:
                    trial.set_user_attr("fail_reason", INTERRUPTED)
                    study.tell(trial, state=optuna.trial.TrialState.FAIL)
                except optuna.exceptions.UpdateFinishedTrialError:
                    pass  # already failed by another process
        finally:
            bar.close()
            runner.close()
    write_outputs(experiment, study)
    records = read_records(study)
    front = pareto_front(records, experiment.objectives)
    return SearchSummary(
        finished=_finished(study), new=new, feasible=sum(r.feasible for r in records), front=len(front),
        hypervolume=hypervolume(front, experiment), interrupted=interrupt.signum,
        rejected=sum(r.state == "REJECTED" for r in records), exhausted=exhausted,
        best=max(front, key=lambda r: r.metrics["accuracy"], default=None))


def _rivals(study: optuna.Study) -> tuple[Rival, ...]:
    """Trained candidates with a short-run accuracy, for the early-stopping rule."""
    return tuple(Rival(t.number, t.user_attrs["flash_kb"], t.user_attrs["ram_kb"], t.user_attrs["latency_ms"],
                       t.user_attrs["short_accuracy"], t.user_attrs["short_accuracy_n"])
                 for t in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
                 if "short_accuracy" in t.user_attrs)


def _finished(study: optuna.Study) -> int:
    return sum(_counts_toward_budget(t) for t in study.get_trials(deepcopy=False))


def _running(study: optuna.Study) -> bool:
    return bool(study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,)))


def _progress_text(study: optuna.Study, experiment: Experiment) -> str:
    records = read_records(study)
    front = pareto_front(records, experiment.objectives)
    return (f"feasible={sum(r.feasible for r in records)} front={len(front)} "
            f"hv={hypervolume(front, experiment):.4f}")
