"""One trial: candidate -> trained float model -> int8 .tflite -> IR -> accuracy and costs.

`evaluate` is the narrow waist between the search and everything else: the study loop never
knows how a candidate is trained, compiled or costed.
"""
from __future__ import annotations

import tempfile
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from autotune import executor
from autotune.capture import import_tensorflow
from autotune.codegen import generate_c
from autotune.config import Experiment
from autotune.data import Dataset
from autotune.ir.tflite_import import import_tflite
from autotune.measurement import Measurement
from autotune.quantize import to_int8_tflite
from autotune.tflm import check_matches_tflm
from autotune.training import train_model
from cost_models.analytic import AnalyticCostModel
from cost_models.base import Costs
from cost_models.features import extract_features
from device_runners.build import BuildResult, DoesNotFitError, build
from device_runners.targets import get_target
from search_spaces import get_family

STAGES = ("train", "convert", "cost", "evaluate")  # a model that does not fit is not evaluated
TFLM_CHECK_INPUTS = 16


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
    predicted: Costs  # the cost model's figures, kept beside the measured ones
    stage_seconds: dict[str, float] = field(default_factory=dict)
    tflite: bytes = b""


class DoesNotFit(Exception):
    """The model needs more flash or RAM than the target has at all (not a soft constraint)."""


def build_firmware(sources: Path, target_name: str, entry: str, placement: str = "flash") -> BuildResult:
    """Build for the target (cached) and require that the image fits its memories at all."""
    target = get_target(target_name)
    try:
        firmware = build(sources, target_name, entry=entry, placement=placement)
    except DoesNotFitError as exc:
        if exc.region == "RAM":
            needs, has = "RAM before the stack", f"{target.sram_bytes // 1024} KB SRAM"
            size = target.sram_bytes
        else:
            needs, has = "flash", f"{target.flash_bytes // 1024} KB flash"
            size = target.flash_bytes
        raise DoesNotFit(f"does not fit {target_name}: needs {(size + exc.overflow_bytes) / 1024:.0f} KB "
                         f"{needs}, {has}") from None
    if not firmware.fits:  # the linker does not count the stack
        raise DoesNotFit(f"does not fit {target_name}: needs {firmware.ram_bytes / 1024:.0f} KB RAM "
                         f"with the stack, {target.sram_bytes // 1024} KB SRAM")
    return firmware


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
    tf_keras.utils.set_random_seed(experiment.seed + candidate.number)  # initial weights, shuffling
    with _timed(seconds, "train"):
        space = get_family(experiment.family)(experiment.space)
        model = space.build(candidate.params, dataset.input_shape, dataset.num_classes)
        stats = train_model(model, dataset, experiment.budget.epochs, experiment.training)
    with _timed(seconds, "convert"):
        tflite = to_int8_tflite(model, dataset.x_train)
        graph = import_tflite(tflite, name=f"trial_{candidate.number}")
    with _timed(seconds, "cost"):
        with tempfile.TemporaryDirectory() as tmp:
            generated = generate_c(graph, tmp)
            firmware = build_firmware(Path(tmp), experiment.target, generated.entry, experiment.placement)
        features = extract_features(
            graph, activation_bytes=generated.arena_bytes + generated.input_size + generated.output_size)
        predicted = AnalyticCostModel(experiment.target, experiment.placement).predict(features)
        source = f"measured:elf-{experiment.target}"
    with _timed(seconds, "evaluate"):
        x_test = executor.quantize_input(graph, dataset.x_test)
        outputs = executor.run(graph, x_test)
        accuracy = float(np.mean(outputs.argmax(axis=1) == dataset.y_test))
        check_matches_tflm(tflite, x_test[:TFLM_CHECK_INPUTS], outputs[:TFLM_CHECK_INPUTS], graph.name)
    return TrialResult(
        number=candidate.number,
        accuracy=Measurement(accuracy, "fraction", "measured:reference-executor"),
        flash=Measurement(float(firmware.flash_bytes), "bytes", source),
        ram=Measurement(float(firmware.ram_bytes), "bytes", source),
        latency=predicted.latency,
        predicted=predicted,
        params=features.params,
        macs=features.macs,
        float_val_accuracy=stats.val_accuracy,
        epochs_run=stats.epochs_run,
        stage_seconds=seconds,
        tflite=tflite,
    )
