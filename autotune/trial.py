"""One trial: candidate -> trained float model -> int8 .tflite -> IR -> accuracy and costs.

`evaluate` is the narrow waist between the search and everything else: the study loop never
knows how a candidate is trained, compiled or costed.
"""
from __future__ import annotations

import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from autotune.capture import import_tensorflow
from autotune.config import Experiment
from autotune.data import Dataset
from autotune.ir.tflite_import import import_tflite
from autotune.measurement import Measurement
from autotune.quantize import to_int8_tflite
from autotune.tflm import quantize_input, tflm_arena_bytes, tflm_outputs
from autotune.training import train_model
from cost_models.analytic import AnalyticCostModel
from cost_models.base import Costs
from cost_models.features import extract_features
from device_runners.targets import get_target
from search_spaces import get_family

STAGES = ("train", "convert", "evaluate", "cost")


@dataclass(frozen=True)
class Candidate:
    number: int  # the Optuna trial number
    params: dict[str, Any]


@dataclass(frozen=True)
class TrialResult:
    number: int
    accuracy: Measurement  # fraction of the test set, integer path
    flash: Measurement  # bytes
    ram: Measurement  # bytes
    latency: Measurement  # ms
    params: int
    macs: int
    float_val_accuracy: float
    epochs_run: int
    stage_seconds: dict[str, float] = field(default_factory=dict)
    tflite: bytes = b""


class DoesNotFit(Exception):
    """The model needs more flash or RAM than the target has at all (not a soft constraint)."""


def check_fits(costs: Costs, target_name: str) -> None:
    target = get_target(target_name)
    if costs.ram.value > target.sram_bytes:
        raise DoesNotFit(f"does not fit {target_name}: needs {costs.ram.value / 1024:.0f} KB RAM, "
                         f"{target.sram_bytes // 1024} KB SRAM ({costs.ram.source})")
    if costs.flash.value > target.flash_bytes:
        raise DoesNotFit(f"does not fit {target_name}: needs {costs.flash.value / 1024:.0f} KB flash, "
                         f"{target.flash_bytes // 1024} KB flash ({costs.flash.source})")


@contextmanager
def _timed(seconds: dict[str, float], stage: str):
    start = time.perf_counter()
    yield
    seconds[stage] = seconds.get(stage, 0.0) + time.perf_counter() - start


def evaluate(candidate: Candidate, experiment: Experiment, dataset: Dataset) -> TrialResult:
    import_tensorflow()
    import tf_keras

    seconds: dict[str, float] = {}
    tf_keras.backend.clear_session()
    with _timed(seconds, "train"):
        space = get_family(experiment.family)(experiment.space)
        model = space.build(candidate.params, dataset.input_shape, dataset.num_classes)
        stats = train_model(model, dataset, experiment.budget.epochs, experiment.training,
                            seed=experiment.seed + candidate.number)
    with _timed(seconds, "convert"):
        tflite = to_int8_tflite(model, dataset.x_train)
        graph = import_tflite(tflite, name=f"trial_{candidate.number}")
    with _timed(seconds, "evaluate"):
        predictions = tflm_outputs(tflite, quantize_input(tflite, dataset.x_test)).argmax(axis=1)
        accuracy = float(np.mean(predictions == dataset.y_test))
    with _timed(seconds, "cost"):
        features = extract_features(graph, arena_bytes=tflm_arena_bytes(tflite))
        costs = AnalyticCostModel(experiment.target).predict(features)
        check_fits(costs, experiment.target)
    return TrialResult(
        number=candidate.number,
        accuracy=Measurement(accuracy, "fraction", "measured:tflm-interpreter"),
        flash=costs.flash,
        ram=costs.ram,
        latency=costs.latency,
        params=features.params,
        macs=features.macs,
        float_val_accuracy=stats.val_accuracy,
        epochs_run=stats.epochs_run,
        stage_seconds=seconds,
        tflite=tflite,
    )
