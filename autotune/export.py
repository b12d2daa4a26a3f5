"""`autotune export` (a trial of a run -> bundle) and `autotune import` (a .tflite -> bundle)."""
from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from autotune import executor
from autotune.bundle import Bundle, write_bundle
from autotune.codegen.generate import integer_core
from autotune.config import Experiment
from autotune.data import SMALL_TEST, DataSpec, describe_data, load_dataset
from autotune.errors import AutotuneError
from autotune.ir.tflite_import import import_tflite
from autotune.report.outputs import accuracy_entry, model_path
from autotune.report.pick import pick
from autotune.report.records import TrialRecord, read_records
from autotune.study import open_study
from cost_models.analytic import AnalyticCostModel
from cost_models.features import extract_features
from device_runners.targets import TARGETS


def choose_trial(experiment: Experiment, trial: int | None, query: str | None) -> TrialRecord:
    records = read_records(open_study(experiment))
    if trial is None:
        return pick(records, experiment, query or "knee")
    match = [r for r in records if r.number == trial]
    if not match:
        raise AutotuneError(f"{experiment.run_dir}: there is no trial {trial}")
    if not match[0].complete:
        raise AutotuneError(f"{experiment.run_dir}: trial {trial} is {match[0].state}, not complete"
                            + (f" ({match[0].reason})" if match[0].reason else ""))
    return match[0]


def export_trial(experiment: Experiment, record: TrialRecord, out_dir: Path, vectors: int = 20,
                 target: str | None = None) -> Bundle:
    """A bundle for one trial, its card's costs measured for `target` (default: the run's).

    The card's `costs` are this bundle's: flash and RAM of the target's ELF, the latency its
    analytic model predicts. `search` keeps what the run recorded for the trial, on the run's
    target, so figures from another target are never mixed into the costs.
    """
    target = target or experiment.target
    path = model_path(experiment.run_dir, record.number)
    if not path.exists():
        raise AutotuneError(f"{path}: the model of trial {record.number} is missing")
    tflite = path.read_bytes()
    graph = import_tflite(tflite, name=f"{experiment.name}_trial_{record.number}")
    dataset = load_dataset(experiment.data, experiment.seed)
    inputs = executor.quantize_input(graph, dataset.x_test[:vectors])
    m = record.metrics
    sources = m["sources"]
    data = describe_data(dataset)
    card = {
        "name": graph.name,
        "task": {"classes": list(dataset.class_names), "input_shape": list(dataset.input_shape),
                 "signal": dataset.signal_kind},
        "data": _data_fields(experiment.data),
        "accuracy": {
            "validation": {**accuracy_entry(m, "accuracy"), "how": data["validation"]},
            "test": {**accuracy_entry(m, "test_accuracy"), "how": data["test"]
                     + (" (fewer than 100 examples: a rough guide)" if data["n_test"] < SMALL_TEST else "")},
            "note": "int8 model, reference executor (bit-exact with TFLite Micro); the search optimised the "
                    "validation accuracy, the test split was never used to train or choose",
        },
        "costs": None,  # this bundle's, for `target`: write_bundle measures them
        "search": {"target": experiment.target,
                   "flash_bytes": {"value": round(m["flash_kb"] * 1024), "source": sources["flash"]},
                   "ram_bytes": {"value": round(m["ram_kb"] * 1024), "source": sources["ram"]},
                   "latency_ms": {"value": m["latency_ms"], "source": sources["latency"]}},
        "model": {"family": experiment.family, "params": record.params, "parameters": m["params_count"],
                  "macs": m["macs"]},
        "provenance": {"experiment": str(experiment.path), "run": str(experiment.run_dir),
                       "trial": record.number, "seed": experiment.seed,
                       "exported": datetime.now(timezone.utc).isoformat(timespec="seconds")},
    }
    placement = experiment.placement if target == experiment.target else "flash"
    return write_bundle(graph, tflite, out_dir, inputs, card, target=target, placement=placement)


def _data_fields(spec: DataSpec) -> dict:
    """The data fields that apply to this source (no csv shape for an npz, no paths for synthetic data)."""
    fields = {"synthetic_spectral": ("source", "samples_per_class", "length", "split"),
              "npz": ("source", "path", "split"),
              "csv": ("source", "path", "val_path", "test_path", "input_shape", "split")}[spec.source]
    out = {k: getattr(spec, k) for k in (*fields, "normalize") if getattr(spec, k) is not None}
    return {k: list(v) if isinstance(v, tuple) else v for k, v in out.items()}


def import_model(tflite_path: Path, out_dir: Path, inputs_path: Path | None = None, vectors: int = 20,
                 seed: int = 0) -> Bundle:
    """A user's own int8 model: IR, checks against TFLM, C bundle, measured builds."""
    graph = import_tflite(Path(tflite_path))  # errors name the file
    tflite = Path(tflite_path).read_bytes()
    core = integer_core(graph)  # the C takes and returns the int8 integer path
    shape = core.tensor(core.inputs[0]).shape[1:]
    if inputs_path is not None:
        try:
            x = np.load(inputs_path)
        except (OSError, ValueError) as exc:
            raise AutotuneError(f"{inputs_path}: cannot read a .npy array ({exc})") from None
        if tuple(x.shape[1:]) != tuple(shape):
            raise AutotuneError(f"{inputs_path}: inputs shaped {x.shape}, the model takes (N, {', '.join(map(str, shape))})")
        x = x[:vectors]
        inputs = x.astype(np.int8) if x.dtype == np.int8 else executor.quantize_input(core, x.astype(np.float32))
    else:
        inputs = np.random.default_rng(seed).integers(-128, 128, (vectors, *shape)).astype(np.int8)
    features = extract_features(graph, activation_bytes=0)  # only the latency prediction is used
    card = {
        "name": graph.name,
        "model": {"parameters": features.params, "macs": features.macs,
                  "ops": [op.kind for op in graph.ops]},
        "costs": {t: {"latency_ms": {"value": AnalyticCostModel(t).predict(features).latency.value,
                                     "source": f"predicted:analytic-{t}"}} for t in TARGETS},
        "provenance": {"imported_from": str(tflite_path),
                       "test_vectors": str(inputs_path) if inputs_path else f"random int8, seed {seed}",
                       "exported": datetime.now(timezone.utc).isoformat(timespec="seconds")},
    }
    return write_bundle(graph, tflite, out_dir, inputs, card)
