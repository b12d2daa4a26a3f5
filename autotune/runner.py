"""Where trials run: in this process, or as tasks on a local or remote Ray cluster."""
from __future__ import annotations

from dataclasses import dataclass

from autotune.config import Experiment
from autotune.data import Dataset
from autotune.trial import Candidate, EarlyStopped, Rejected, TrialResult, evaluate


@dataclass(frozen=True)
class TrialFailure:
    number: int
    reason: str


Outcome = TrialResult | Rejected | EarlyStopped | TrialFailure


def evaluate_or_fail(candidate: Candidate, experiment: Experiment, dataset: Dataset) -> Outcome:
    """A failing candidate (a model that does not build, train or convert) is a result, not a crash."""
    try:
        return evaluate(candidate, experiment, dataset)
    except Exception as exc:  # noqa: BLE001 - any failure of one candidate is recorded, the study goes on
        return TrialFailure(candidate.number, f"{type(exc).__name__}: {exc}".strip()[:1000])


class LocalRunner:
    capacity = 1

    def __init__(self, experiment: Experiment, dataset: Dataset):
        self.experiment, self.dataset = experiment, dataset
        self.pending: list[Candidate] = []

    def submit(self, candidate: Candidate) -> None:
        self.pending.append(candidate)

    def next_done(self) -> tuple[int, Outcome]:
        candidate = self.pending.pop(0)
        return candidate.number, evaluate_or_fail(candidate, self.experiment, self.dataset)

    def cancel(self) -> None:
        self.pending.clear()

    def close(self) -> None:
        pass


class RayRunner:
    """N trials at once, one CPU each. Joins `address` if given, else starts a local Ray."""

    def __init__(self, experiment: Experiment, dataset: Dataset, workers: int, address: str | None = None):
        import ray

        self.ray = ray
        env = {"TF_USE_LEGACY_KERAS": "1", "OMP_NUM_THREADS": "1", "TF_CPP_MIN_LOG_LEVEL": "2",
               "TF_NUM_INTRAOP_THREADS": "1", "TF_NUM_INTEROP_THREADS": "1"}
        if address:
            ray.init(address=address, runtime_env={"env_vars": env}, log_to_driver=False)
        else:
            ray.init(num_cpus=workers, include_dashboard=False, runtime_env={"env_vars": env},
                     log_to_driver=False, configure_logging=False)
        self.capacity = workers
        self.experiment = experiment
        self.dataset_ref = ray.put(dataset)
        self.task = ray.remote(num_cpus=1, max_retries=0)(evaluate_or_fail)
        self.running: dict = {}  # ObjectRef -> trial number

    def submit(self, candidate: Candidate) -> None:
        ref = self.task.remote(candidate, self.experiment, self.dataset_ref)
        self.running[ref] = candidate.number

    def next_done(self) -> tuple[int, Outcome]:
        [ref], _ = self.ray.wait(list(self.running), num_returns=1)
        number = self.running.pop(ref)
        try:
            return number, self.ray.get(ref)
        except self.ray.exceptions.RayError as exc:  # the worker died (e.g. out of memory)
            return number, TrialFailure(number, f"worker failed: {str(exc).splitlines()[0]}")

    def cancel(self) -> None:
        for ref in self.running:
            self.ray.cancel(ref, force=True)
        self.running.clear()

    def close(self) -> None:
        self.ray.shutdown()
