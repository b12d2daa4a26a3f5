"""The study's storage, shared by every process that runs the same experiment.

Several `autotune run` processes, on one machine or on many, may work on one study: each asks it
for new trials and tells it their results. Each process records a heartbeat for every trial it
has in flight (Optuna's RDB heartbeats); a running trial whose heartbeat has stopped for the
grace period (its process was killed, its machine died) is failed by whichever process notices.
No process ever fails a trial whose owner is alive.
"""
from __future__ import annotations

import random
import threading
import time
import warnings
from typing import Callable

import optuna
from optuna.storages import RDBStorage
from sqlalchemy import exc as sa_exc

SQLITE_TIMEOUT_S = 60  # several writers on one SQLite file wait this long for each other's locks
OPEN_ATTEMPTS = 8  # processes creating one new database at once race on its tables: retry


def open_storage(url: str, heartbeat_seconds: int, grace_seconds: int,
                 on_stale: Callable[[optuna.Study, optuna.trial.FrozenTrial], None] | None = None) -> RDBStorage:
    """The RDB storage at `url` with heartbeats on. Errors (bad URL, unreachable server, locked
    file) propagate as SQLAlchemy or Optuna exceptions for the caller to name."""
    engine_kwargs = {"connect_args": {"timeout": SQLITE_TIMEOUT_S}} if url.startswith("sqlite") else {}

    def connect() -> RDBStorage:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            return RDBStorage(url, engine_kwargs=engine_kwargs, heartbeat_interval=heartbeat_seconds,
                              grace_period=grace_seconds, heartbeat_stale_trial_callback=on_stale)

    for attempt in range(OPEN_ATTEMPTS - 1):
        try:
            return connect()
        except (sa_exc.IntegrityError, sa_exc.OperationalError) as exc:
            if isinstance(exc, sa_exc.OperationalError) and "already exists" not in str(exc):
                raise  # not the race: a locked, missing or unreachable database
            # Another process created the same table or version row a moment earlier.
            time.sleep(0.05 * (attempt + 1) + random.random() * 0.1)
    return connect()


class Heartbeats:
    """From a thread (the main one is busy training or waiting for Ray workers), every interval:
    a heartbeat for each trial this process has in flight, and the check that fails other
    processes' trials whose heartbeat stopped, so that a dead process's trial is failed a grace
    period after its death, not whenever this process's own trial ends."""

    def __init__(self, study: optuna.Study, storage: RDBStorage, interval: float):
        self._study, self._storage, self._interval = study, storage, interval
        self._trial_ids: set[int] = set()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="autotune-heartbeat", daemon=True)

    def __enter__(self) -> Heartbeats:
        fail_stale_trials(self._study, self._storage)  # before this process takes any trial
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()

    def add(self, trial_id: int) -> None:
        self._storage.record_heartbeat(trial_id)
        with self._lock:
            self._trial_ids.add(trial_id)

    def discard(self, trial_id: int) -> None:
        with self._lock:
            self._trial_ids.discard(trial_id)

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            with self._lock:
                trial_ids = list(self._trial_ids)
            try:
                for trial_id in trial_ids:
                    self._storage.record_heartbeat(trial_id)
                fail_stale_trials(self._study, self._storage)
            except Exception:  # noqa: BLE001 - e.g. a lock held too long: the grace period covers a missed beat
                pass


def fail_stale_trials(study: optuna.Study, storage: RDBStorage) -> None:
    """Fail running trials whose heartbeat stopped for the grace period.

    Optuna's check skips a running trial that has no heartbeat at all: its process died between
    asking for it and its first beat, a few milliseconds. Such a trial gets one heartbeat here,
    so it is failed a grace period later unless its owner is alive and beats on.
    """
    for trial_id in _running_without_heartbeat(storage, study._study_id):
        storage.record_heartbeat(trial_id)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        optuna.storages.fail_stale_trials(study)


def _running_without_heartbeat(storage: RDBStorage, study_id: int) -> list[int]:
    from optuna.storages._rdb import models

    session = storage.scoped_session()
    try:
        rows = (session.query(models.TrialModel.trial_id)
                .filter(models.TrialModel.study_id == study_id,
                        models.TrialModel.state == optuna.trial.TrialState.RUNNING,
                        ~models.TrialModel.heartbeats.any())
                .all())
        return [trial_id for (trial_id,) in rows]
    finally:
        session.close()
