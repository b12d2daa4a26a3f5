"""`autotune export` (a trial of a run -> bundle) and `autotune import` (a .tflite -> bundle)."""
from __future__ import annotations

import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from autotune import executor
from autotune.bundle import Bundle, check_out_dir, write_bundle
from autotune.compress.search import layer_choices
from autotune.compress.lossless import StoragePoint, choose_point, storage_front
from autotune.compress.storage import store, with_storage
from autotune.config import Experiment
from autotune.data import SMALL_TEST, DataSpec, describe_data, load_dataset
from autotune.errors import AutotuneError, DataError
from autotune.ir.graph import Graph
from autotune.ir.tflite_import import import_tflite
from autotune.lowering import integer_core
from autotune.report.outputs import accuracy_entry, model_path
from autotune.report.pick import pick
from autotune.report.records import TrialRecord, read_records
from autotune.study import open_study
from cost_models.analytic import AnalyticCostModel
from cost_models.features import extract_features
from device_runners.targets import TARGETS
from search_spaces import get_family


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
    space = get_family(experiment.family)(experiment.space)
    _, codecs = layer_choices(record.params, experiment.compression, space.weighted_layers(record.params))
    graph = store(graph, codecs, experiment.compression.decode_budget_cycles)  # as the trial was costed
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


def read_inputs(path: Path, key: str | None, shape: tuple[int, ...]) -> np.ndarray:
    """Test inputs from a .npy array or one array of an .npz archive (`key`; default `x`, or
    the only array), one row per input, shaped like the model's input (size-1 axes may be
    left out). Errors name the file and exit with code 2."""
    try:
        data = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        raise DataError(f"{path}: cannot read a .npy array or .npz archive ({exc})") from None
    if isinstance(data, np.lib.npyio.NpzFile):
        with data:
            names = data.files
            if key is None:
                if "x" not in names and len(names) != 1:
                    raise DataError(f"{path}: holds {', '.join(names) or 'no arrays'}; choose one with --inputs-key")
                key = "x" if "x" in names else names[0]
            if key not in names:
                raise DataError(f"{path}: no array {key!r} (found: {', '.join(names) or 'none'})")
            try:
                x = data[key]
            except ValueError as exc:  # object arrays need pickle, which is refused
                raise DataError(f"{path}: cannot read array {key!r} ({exc})") from None
        where = f"{path}:{key}"
    else:
        if key is not None:
            raise DataError(f"{path}: --inputs-key applies to an .npz archive; this is a single .npy array")
        x, where = data, str(path)
    if x.dtype.kind not in "iuf":
        raise DataError(f"{where}: inputs must be numbers, got dtype {x.dtype}")
    if x.ndim < 1 or len(x) == 0:
        raise DataError(f"{where}: no inputs (shape {x.shape})")
    squeeze = lambda dims: tuple(d for d in dims if d != 1)  # noqa: E731
    if tuple(x.shape[1:]) != tuple(shape) and squeeze(x.shape[1:]) != squeeze(shape):
        raise DataError(f"{where}: inputs shaped {x.shape}, the model takes (N, {', '.join(map(str, shape))})")
    with np.errstate(over="ignore"):
        finite = np.isfinite(x.astype(np.float32).reshape(len(x), -1))  # beyond float32 is infinite too
    if not finite.all():
        bad = np.argwhere(~finite)
        raise DataError(f"{where}: {len(bad)} NaN or infinite values (the first in row {bad[0][0]})")
    return x.reshape(len(x), *shape)


def import_model(tflite_path: Path, out_dir: Path, inputs_path: Path | None = None, vectors: int | None = None,
                 seed: int = 0, inputs_key: str | None = None, compress: StorageLimits | None = None,
                 on_front: Callable[[Graph, list[StoragePoint], StoragePoint, list[tuple[str, str]]], None]
                 | None = None) -> Bundle:
    """A user's own int8 model: IR, checks against TFLM, C bundle, measured builds. The test
    vectors are every row of `inputs_path` (or the first `vectors`), else `vectors` (default
    20) random int8 inputs. With `compress`, each weight tensor takes the storage of the point
    of the storage front (autotune.compress.lossless) that `compress` chooses: the values, so
    the outputs, stay the model's; `on_front` is shown the front, the choice and the
    configurations that do not fit first."""
    graph = import_tflite(Path(tflite_path))  # errors name the file
    tflite = Path(tflite_path).read_bytes()
    check_out_dir(Path(out_dir))  # bad input first, before the storage search
    core = integer_core(graph)  # the C takes and returns the int8 integer path; storage keeps its edges
    shape = core.tensor(core.inputs[0]).shape[1:]
    if inputs_path is not None:
        x = read_inputs(inputs_path, inputs_key, shape)
        if vectors is not None and vectors > len(x):
            raise DataError(f"{inputs_path}: {len(x)} inputs, but --vectors asks for {vectors}")
        x = x[:vectors]
        inputs = x.astype(np.int8) if x.dtype == np.int8 else executor.quantize_input(core, x.astype(np.float32))
    else:
        inputs = np.random.default_rng(seed).integers(-128, 128, (vectors or 20, *shape)).astype(np.int8)
    search = None
    if compress is not None:
        points, unfit = storage_front(graph, compress.target)
        chosen = choose_point(points, compress.max_latency_increase_pct, compress.max_ram_increase_bytes)
        if on_front is not None:
            on_front(graph, points, chosen, unfit)
        graph = with_storage(graph, dict(chosen.encodings))
        search = {"target": compress.target,
                  "rule": f"the smallest flash within +{compress.max_latency_increase_pct:g} % latency and "
                          f"+{compress.max_ram_increase_bytes} B RAM of the plain int8 arrays (the smallest "
                          "that fits if they do not)",
                  "chosen": points.index(chosen),
                  "points": [{"how": p.how, "storages": p.storages(graph), "flash_bytes": p.flash_bytes,
                              "ram_bytes": p.ram_bytes, "latency_ms": round(p.latency_ms, 4),
                              "flash_source": p.flash_source, "ram_source": p.flash_source,
                              "latency_source": p.latency_source, "on_front": p.on_front} for p in points],
                  "does_not_fit": [{"how": how, "why": why} for how, why in unfit]}
    features = extract_features(graph, activation_bytes=0)  # only the latency prediction is used
    card = {
        "name": graph.name,
        "model": {"parameters": features.params, "macs": features.macs,
                  "ops": [op.kind for op in graph.ops]},
        "costs": {t: {"latency_ms": {"value": AnalyticCostModel(t).predict(features).latency.value,
                                     "source": f"predicted:analytic-{t}"}} for t in TARGETS},
        "provenance": {"imported_from": str(tflite_path),
                       "test_vectors": (f"{inputs_path}" + (f":{inputs_key}" if inputs_key else "") if inputs_path
                                        else f"random int8, seed {seed}"),
                       "exported": datetime.now(timezone.utc).isoformat(timespec="seconds")},
    }
    if search is not None:
        card["storage_search"] = search
    return write_bundle(graph, tflite, out_dir, inputs, card)


@dataclass(frozen=True)
class StorageLimits:
    """`autotune import --compress`: the target the storage front is measured for, and how far
    the chosen point may be from the plain int8 arrays (the seed bar by default)."""

    target: str = "rp2040"
    max_latency_increase_pct: float = 5.0
    max_ram_increase_bytes: int = 100
