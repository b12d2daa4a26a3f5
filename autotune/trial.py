"""One trial: candidate -> costs of the untrained model (rejected here when over a hard limit)
-> trained float model -> channels pruned and fine-tuned (when chosen) -> quantization-aware or
compression fine-tuning -> int8 .tflite -> IR -> accuracy and costs.

`evaluate` is the narrow waist between the search and everything else: the study loop never
knows how a candidate is trained, compiled or costed. The accuracy the search optimises is the
int8 model's on validation data drawn from the training data (under k-fold: the pooled accuracy of
the fold models, no higher than the exported model's on the training data); the test split is
only reported.
"""
from __future__ import annotations

import tempfile
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from autotune import executor
from autotune.capture import import_tensorflow
from autotune.codegen import generate_c
from autotune.compress.channels import prune_and_finetune, prune_channels
from autotune.compress.finetune import LayerCompression, compress_finetune, project_untrained
from autotune.compress.search import layer_choices
from autotune.compress.storage import store
from autotune.config import Experiment
from autotune.data import Dataset
from autotune.early_stop import Rival, dominating_rival, short_rounds
from autotune.ir.tflite_import import import_tflite
from autotune.measurement import Accuracy, Measurement
from autotune.quantize import to_int8_tflite
from autotune.tflm import check_matches_tflm
from autotune.training import ShortRun, Trainer, TrainStats, quantization_aware_finetune, use_one_cpu
from cost_models.analytic import AnalyticCostModel
from cost_models.base import Costs
from cost_models.features import extract_features
from device_runners.build import BuildResult, DoesNotFitError, build
from device_runners.targets import get_target
from search_spaces import get_family

# A rejected candidate runs only "precost"; a model that does not fit is not evaluated.
STAGES = ("precost", "train", "convert", "cost", "evaluate")
SOURCE = "measured:reference-executor"
SHORT_SOURCE = "measured:float-model-short-run"  # the early-stopping check's partial accuracy
TFLM_CHECK_INPUTS = 16


@dataclass(frozen=True)
class Candidate:
    number: int  # the Optuna trial number
    params: dict[str, Any]
    rivals: tuple[Rival, ...] = ()  # candidates trained before, for the early-stopping rule


@dataclass(frozen=True)
class CostReport:
    """Flash and RAM from the Arm build of an int8 model, latency from the cost model."""

    flash: Measurement  # bytes
    ram: Measurement  # bytes
    latency: Measurement  # ms
    params: int
    macs: int
    predicted: Costs  # the cost model's figures, kept beside the measured ones


@dataclass(frozen=True)
class TrialResult:
    number: int
    val_accuracy: Accuracy  # int8 model, validation data from the training data: the objective
    test_accuracy: Accuracy  # int8 model, test split: reported, never optimised
    costs: CostReport
    float_val_accuracy: float | None  # float model at its best epoch (holdout validation only)
    epochs_run: int
    restarts: int  # training runs started again from new weights: ended at chance, or (k-fold) the exported
                   # model fit the training data worse than the fold models (fit_exported)
    stage_seconds: dict[str, float] = field(default_factory=dict)
    tflite: bytes = b""
    short_accuracy: Accuracy | None = None  # float model after the short run (early_stop on)
    cv_accuracy: float | None = None  # k-fold: the pooled int8 accuracy of the fold models on their folds
    train_accuracy: float | None = None  # k-fold: the exported int8 model on the training data


@dataclass(frozen=True)
class EarlyStopped:
    """A candidate whose short first training was clearly dominated (autotune.early_stop): its
    training ended there. Costs are the untrained model's (exact); the accuracy is partial."""

    number: int
    reason: str
    short_accuracy: Accuracy  # float model after the short run
    costs: CostReport
    stage_seconds: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class Rejected:
    """A candidate whose untrained model already breaks a hard limit: never trained."""

    number: int
    reason: str
    costs: CostReport
    stage_seconds: dict[str, float] = field(default_factory=dict)


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


def measure_costs(graph, target: str, placement: str = "flash") -> CostReport:
    """Generate C, build it for the target (cached) and read flash and RAM from the ELF; predict
    latency. Weights do not change code size, arena or the cycle count of the generated kernels,
    so an untrained model of the same shapes costs what the trained one will."""
    with tempfile.TemporaryDirectory() as tmp:
        generated = generate_c(graph, tmp)
        firmware = build_firmware(Path(tmp), target, generated.entry, placement)
    features = extract_features(
        generated.kernel_plan, activation_bytes=generated.activation_bytes)
    predicted = AnalyticCostModel(target, placement).predict(features)
    source = f"measured:elf-{target}"
    return CostReport(flash=Measurement(float(firmware.flash_bytes), "bytes", source),
                      ram=Measurement(float(firmware.ram_bytes), "bytes", source),
                      latency=predicted.latency, params=features.params, macs=features.macs, predicted=predicted)


def untrained_costs(build: Callable[[], Any], dataset: Dataset, experiment: Experiment, seed: int, name: str,
                    specs: list[LayerCompression], codecs: list[str]) -> CostReport:
    """The costs of the model `build` makes, before training (cost_before_training)."""
    import_tensorflow()
    use_one_cpu()  # before TensorFlow starts, wherever it starts
    import tf_keras

    tf_keras.backend.clear_session()
    tf_keras.utils.set_random_seed(seed)
    return cost_before_training(build(), specs, codecs, experiment, dataset.x_train, name, seed)


def over_limits(costs: CostReport, experiment: Experiment) -> list[str]:
    """The hard limits the costs break, in words ("flash 120.3 KB > 100 KB")."""
    c = experiment.constraints
    checks = (("flash", costs.flash.value / 1024, c.max_flash_kb, "{:.1f} KB"),
              ("RAM", costs.ram.value / 1024, c.max_ram_kb, "{:.1f} KB"),
              ("latency", costs.latency.value, c.max_latency_ms, "{:.2f} ms"),
              ("parameters", costs.params, c.max_params, "{:,.0f}"))
    return [f"{name} {form.format(value)} > {form.format(limit)}"
            for name, value, limit, form in checks if limit is not None and value > limit]


def cost_before_training(untrained, specs: list[LayerCompression], codecs: list[str], experiment: Experiment,
                         x: np.ndarray, name: str, seed: int) -> CostReport:
    """The costs of an untrained model (weights do not change code, arena or kernel cycles), its
    weights compressed and stored as the candidate's choices say: its channels pruned to the
    shapes the trained model will have (prune_channels), projected onto their levels with their
    sparsity (project_untrained), then each tensor in its storage. A storage whose size follows
    from the level count (bitpack, palette) costs what it will after training; an entropy
    coder's (rANS, LZ4, ...) is priced on the untrained values, an estimate."""
    if any(s.keep < 1 for s in specs):
        untrained = prune_channels(untrained, [s.keep for s in specs])
    if any(not s.plain for s in specs):
        untrained = project_untrained(untrained, list(specs), seed)
    _, graph = int8_model(nonzero_offsets(untrained), x, name)
    return measure_costs(store(graph, codecs, experiment.compression.decode_budget_cycles), experiment.target,
                         experiment.placement)


def nonzero_offsets(model):
    """`model` with its all-zero biases and batch-norm offsets set to a small value: the converter
    drops a bias that is all zero, and a trained model's never is, so priced untrained the model
    would miss those tensors' parameters, bytes and bias loads."""
    for variable in model.weights:
        if variable.name.split("/")[-1].startswith(("bias", "beta")) and not np.any(variable.numpy()):
            variable.assign(np.full(variable.shape, 1e-3, variable.dtype.as_numpy_dtype))
    return model


def int8_model(model, x: np.ndarray, name: str):
    """Full-int8 .tflite (calibrated on `x`) and its IR."""
    tflite = to_int8_tflite(model, x)
    return tflite, import_tflite(tflite, name=name)


def predict_labels(graph, x: np.ndarray) -> np.ndarray:
    """Class indices the int8 model gives for float inputs (reference executor)."""
    return executor.run(graph, executor.quantize_input(graph, x)).argmax(axis=1)


def trainer_for(build, dataset: Dataset, experiment: Experiment) -> Trainer:
    """One trainer per candidate: every fit (k-fold models, the final fit) has the schedule of the
    whole training set."""
    return Trainer(build, experiment.training, len(dataset.y_train), experiment.budget.epochs, dataset.num_classes)


def train_candidate(trainer: Trainer, x: np.ndarray, y: np.ndarray, val, experiment: Experiment,
                    seed: int, specs: list[LayerCompression] = (), short: ShortRun | None = None
                    ) -> tuple[object, TrainStats]:
    """The float recipe (`short`: the early-stopping check); with channels pruned (`specs`, one
    per weighted layer), the smaller model fine-tuned; then, with a layer's weights compressed,
    the compression's fine-tuning with its weights projected; else quantization-aware
    fine-tuning (unless `training.qat_epochs` is 0). None of these when the short run stopped the
    training."""
    model, stats = trainer.fit(x, y, val, seed, short)
    if stats.stopped:
        return model, stats
    if any(s.keep < 1 for s in specs):
        model = prune_and_finetune(model, [s.keep for s in specs], x, y, experiment.training, trainer.num_classes,
                                   experiment.compression.finetune_epochs, seed)
    if any(not s.plain for s in specs):
        model = compress_finetune(model, list(specs), x, y, experiment.training, trainer.num_classes,
                                  experiment.compression.finetune_epochs, seed)
    elif experiment.training.qat_epochs:
        model = quantization_aware_finetune(model, x, y, experiment.training, trainer.num_classes, seed)
    return model, stats


def _short_run(candidate: Candidate, experiment: Experiment, dataset: Dataset, rounds: int,
               costs: CostReport, verdict: dict) -> ShortRun | None:
    """The early-stopping check of the first fit (None when `search.early_stop` is off or the
    short run would be the whole training): on the validation data, or on k-fold data on the
    first fold's held-out part."""
    if experiment.early_stop is None:
        return None
    check = short_rounds(rounds, experiment.early_stop.fraction, experiment.training.warmup_epochs)
    if check >= rounds:
        return None
    x, y = (dataset.x_val, dataset.y_val) if not dataset.kfold else \
        (dataset.x_train[dataset.folds[0][1]], dataset.y_train[dataset.folds[0][1]])
    own = (costs.flash.value / 1024, costs.ram.value / 1024, costs.latency.value)

    def keep_going(accuracy: float) -> bool:
        verdict["rival"] = dominating_rival(accuracy, len(y), own, candidate.rivals, experiment.early_stop.margin)
        return verdict["rival"] is None

    return ShortRun(check, x, y, keep_going)


def fit_exported(trainer: Trainer, dataset: Dataset, experiment: Experiment, seed: int,
                 specs: list[LayerCompression], name: str, fold_fit: float, seconds: dict[str, float]):
    """The exported model of a k-fold trial, trained on all the training data with no validation.
    One training run of a small model can converge far worse than the fold models did (GunPoint:
    int8 training accuracy 0.84 against the folds' 0.95-1.0, test 0.79 against their 0.92), so it
    is trained again from new weights, up to `training.restarts` times, while its int8 accuracy on
    the training data is below `fold_fit` (the fold models' mean on their training parts); the run
    that fits best is kept. Returns (tflite, graph, TrainStats with every restart counted, its
    int8 training accuracy)."""
    best, runs = None, 0
    for attempt in range(experiment.training.restarts + 1):
        with _timed(seconds, "train"):
            model, stats = train_candidate(trainer, dataset.x_train, dataset.y_train, None, experiment,
                                           seed + 1000 * (len(dataset.folds) + attempt) if attempt else seed, specs)
        runs += stats.restarts + (attempt > 0)
        with _timed(seconds, "convert"):
            tflite, graph = int8_model(model, dataset.x_train, name)
        with _timed(seconds, "evaluate"):
            fit = float(np.mean(predict_labels(graph, dataset.x_train) == dataset.y_train))
        if best is None or fit > best[3]:
            best = (tflite, graph, stats, fit)
        if fit >= fold_fit:
            break
    tflite, graph, stats, fit = best
    return tflite, graph, TrainStats(stats.epochs_run, stats.best_epoch, None, runs), fit


def trial_seed(seed: int, number: int) -> int:
    """Trial `number`'s seed in a run seeded `seed` (below 2**31: offsets added per attempt and fold
    stay valid numpy seeds). Hashed, not summed: with seed + number, the run seeded 2 would draw and
    train what the run seeded 1 did, one trial later."""
    return int(np.random.SeedSequence([seed, number]).generate_state(1)[0] >> 1)


def evaluate(candidate: Candidate, experiment: Experiment, dataset: Dataset) -> TrialResult | Rejected | EarlyStopped:
    import_tensorflow()
    use_one_cpu()

    seconds: dict[str, float] = {}
    name = f"trial_{candidate.number}"
    seed = trial_seed(experiment.seed, candidate.number)
    space = get_family(experiment.family)(experiment.space)

    def build():
        return space.build(candidate.params, dataset.input_shape, dataset.num_classes)

    specs, codecs = layer_choices(candidate.params, experiment.compression, space.weighted_layers(candidate.params))

    with _timed(seconds, "precost"):
        costs = untrained_costs(build, dataset, experiment, seed, name, specs, codecs)
    broken = over_limits(costs, experiment)
    if broken:
        return Rejected(candidate.number, "over the limits before training: " + ", ".join(broken), costs, seconds)

    with _timed(seconds, "train"):
        trainer = trainer_for(build, dataset, experiment)
    verdict: dict = {}
    short = _short_run(candidate, experiment, dataset, trainer.schedule.rounds, costs, verdict)
    short_accuracy = None

    def stopped(stats: TrainStats) -> EarlyStopped | None:
        nonlocal short_accuracy
        if stats.short_accuracy is not None:
            short_accuracy = Accuracy(stats.short_accuracy, len(short.y), SHORT_SOURCE)
        if not stats.stopped:
            return None
        rival = verdict["rival"]
        return EarlyStopped(candidate.number, f"early-stopped after {short.rounds} of {trainer.schedule.rounds} "
                            f"rounds: trial {rival.number} costs no more and reached {rival.short_accuracy:.3f} "
                            f"against {stats.short_accuracy:.3f}", short_accuracy, costs, seconds)

    if dataset.kfold:  # every fold trains from scratch; the exported model is trained on all of it
        correct, per_fold, fold_fit, restarts = 0, [], [], 0
        for i, (tr, va) in enumerate(dataset.folds):
            with _timed(seconds, "train"):
                model, stats = train_candidate(trainer, dataset.x_train[tr], dataset.y_train[tr], None, experiment,
                                               seed + 1000 * (i + 1), specs, short if i == 0 else None)
            if (early := stopped(stats)) is not None:
                return early
            with _timed(seconds, "convert"):
                _, graph = int8_model(model, dataset.x_train[tr], name)
            with _timed(seconds, "evaluate"):
                hits = predict_labels(graph, dataset.x_train[va]) == dataset.y_train[va]
                fold_fit.append(float(np.mean(predict_labels(graph, dataset.x_train[tr]) == dataset.y_train[tr])))
            correct += int(hits.sum())
            per_fold.append(float(hits.mean()))
            restarts += stats.restarts
        cross_validated = correct / (len(dataset.y_train) * dataset.cv_repeats)
        tflite, graph, stats, train_accuracy = fit_exported(trainer, dataset, experiment, seed, specs, name,
                                                            float(np.mean(fold_fit)), seconds)
        stats = TrainStats(stats.epochs_run, stats.best_epoch, None, restarts + stats.restarts)
        # The folds validate the recipe on this architecture; the exported model is one more training
        # run, unvalidated. It is credited no more than it reaches on the data it was trained on.
        val_accuracy = Accuracy(min(cross_validated, train_accuracy), dataset.n_val, SOURCE,
                                spread=float(np.std(per_fold)))
    else:
        with _timed(seconds, "train"):
            model, stats = train_candidate(trainer, dataset.x_train, dataset.y_train, (dataset.x_val, dataset.y_val),
                                           experiment, seed, specs, short)
        if (early := stopped(stats)) is not None:
            return early
        with _timed(seconds, "convert"):
            tflite, graph = int8_model(model, dataset.x_train, name)
        with _timed(seconds, "evaluate"):
            hits = predict_labels(graph, dataset.x_val) == dataset.y_val
        val_accuracy = Accuracy(float(hits.mean()), len(hits), SOURCE)
    with _timed(seconds, "cost"):
        costs = measure_costs(store(graph, codecs, experiment.compression.decode_budget_cycles), experiment.target, experiment.placement)
    with _timed(seconds, "evaluate"):
        x_test = executor.quantize_input(graph, dataset.x_test)
        outputs = executor.run(graph, x_test)
        test_accuracy = Accuracy(float(np.mean(outputs.argmax(axis=1) == dataset.y_test)), len(dataset.y_test), SOURCE)
        check_matches_tflm(tflite, x_test[:TFLM_CHECK_INPUTS], outputs[:TFLM_CHECK_INPUTS], graph.name)
    return TrialResult(
        number=candidate.number,
        val_accuracy=val_accuracy,
        test_accuracy=test_accuracy,
        costs=costs,
        float_val_accuracy=stats.val_accuracy,
        epochs_run=stats.epochs_run,
        restarts=stats.restarts,
        stage_seconds=seconds,
        tflite=tflite,
        short_accuracy=short_accuracy,
        cv_accuracy=cross_validated if dataset.kfold else None,
        train_accuracy=train_accuracy if dataset.kfold else None,
    )
