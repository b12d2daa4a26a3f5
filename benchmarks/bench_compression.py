"""Compression: weight flash against accuracy, and what a deployed model pays for it.

  spectral  a compression search (experiments/spectral_compress.yaml: the spectral task's model
            space with per-layer bit width 8/4/2, 4 clusters or none, 0 or 50 % sparsity, channel
            keep 1/0.75/0.5 and `auto` storage open, the first and last layers plain int8;
            BENCH_TRIALS trials, default the YAML's, in benchmarks/runs, resumed if cut
            short); each point of its front against the int8
            model of the same architecture with every channel kept, same seed, trained the same
            way (float only, as the search trains int8, and with int8 QAT as long as the
            compression's fine-tuning; the better of the two counts): weights as stored, test
            accuracy on the integer path.
  knee      the default run's knee point (trial 0 of that run), compressed: flash and RAM of the
            rp2040 build (ELF), latency on rp2040-sim, against the same model in plain int8.
  lenet5    LeNet-5 on Fashion-MNIST (Debian dataset-fashion-mnist, 60,000 / 10,000 images):
            float32 weights against the compressed int8 model's stored weights, accuracy against
            the float model's.

  channels  structured channel pruning of a mid-size spectral_cnn point (MID), trained as the
            search trains it: unpruned, keep 0.75 and keep 0.5 on every free layer, fine-tuned;
            test accuracy, weight bytes, flash and RAM (rp2040 ELF), cycles on rp2040-sim.

  per_filter  the test zoo's MLP with palette-stored dense weights: arena, RAM and cycles with
            each tensor decoded whole against four units' rows at a time (rp2040 ELF, rp2040-sim).

Writes benchmarks/results/compression.json; `python benchmarks/bench_compression.py lenet5`
runs one part (results merge).
"""
from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from autotune import executor  # noqa: E402
from autotune.codegen import generate_c, integer_core  # noqa: E402
from autotune.compress import auto_storage, with_storage  # noqa: E402
from autotune.codecs import get_storage  # noqa: E402
from autotune.compress.finetune import LayerCompression, compress_finetune, kernel, weighted_layers  # noqa: E402
from autotune.compress.search import DIMENSIONS, layer_choices  # noqa: E402
from autotune.compress.storage import store, weight_tensors, worth_their_code  # noqa: E402
from autotune.config import Compression, Training, load_experiment  # noqa: E402
from autotune.ir.tflite_import import import_tflite  # noqa: E402
from autotune.lowering import lower  # noqa: E402
from autotune.quantize import to_int8_tflite  # noqa: E402
from autotune.training import Trainer, use_one_cpu  # noqa: E402
from cost_models.analytic import DECODER_FLASH  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results" / "compression.json"
RUNS = ROOT / "benchmarks" / "runs"
# The default spectral run's knee (benchmarks/bench_accuracy.py, 40 trials; `autotune export --pick knee`).
KNEE = {"blocks": 3, "filters_0": 8, "filters_1": 8, "filters_2": 8, "kernel": 5, "pool": 4, "separable": True,
        "dense": 32, "stem_stride": 8}


def clone(model):
    import tf_keras

    copy = tf_keras.models.clone_model(model)
    copy.set_weights(model.get_weights())
    return copy


def integer_model(model, x_calibration):
    tflite = to_int8_tflite(model, x_calibration)
    graph = import_tflite(tflite, "bench")
    return graph, integer_core(graph)


def accuracy(graph, x, y) -> float:
    return float(np.mean(executor.run(graph, executor.quantize_input(graph, x)).argmax(axis=1) == y))


def stored(core, max_decode_cycles=None):
    """The graph with `auto` storage per weight tensor (a decoder only where it saves more than its
    code), and per layer what it chose."""
    choices = worth_their_code(core, auto_storage(core, max_decode_cycles), DECODER_FLASH)
    layers = [{"tensor": core.tensor(t).name.split(";")[0][-60:], "int8_bytes": core.tensor(t).logical_bytes,
               "storage": c.encoding.storage, "params": dict(c.encoding.params), "stored_bytes": c.stored_bytes,
               "decode_cycles_predicted": round(c.decode_cycles)} for t, c in choices.items()]
    return with_storage(core, {t: c.encoding for t, c in choices.items()}), layers


def weight_bytes(core) -> int:
    """Flash of the weight tensors as stored (blobs or plain arrays)."""
    plan = lower(core)
    return sum(w.stored_bytes for c in plan.calls for w in c.weights)


def train(build, x, y, classes: int, epochs: int, seed: int, training: Training):
    import tf_keras

    tf_keras.utils.set_random_seed(seed)
    model, _ = Trainer(build, training, len(y), epochs, classes).fit(x, y, None, seed)
    return model


def spectral_data():
    from autotune.data import load_dataset

    experiment = load_experiment(ROOT / "experiments" / "spectral.yaml")
    return experiment, load_dataset(experiment.data, experiment.seed)


def compress_variants(model, specs_by_name: dict, data, training, epochs: int, seed: int, budget=None):
    """Each variant: fine-tuned from the trained model, its int8 accuracy and stored weights."""
    out = {}
    for name, specs in specs_by_name.items():
        start = time.monotonic()
        m = compress_finetune(clone(model), specs, data.x_train, data.y_train, training, data.num_classes,
                              epochs, seed)
        graph, core = integer_model(m, data.x_train)
        coded, layers = stored(core, budget)
        out[name] = {"accuracy": accuracy(graph, data.x_test, data.y_test), "weight_bytes": weight_bytes(coded),
                     "layers": layers, "core": core, "coded": coded, "minutes": round((time.monotonic() - start) / 60, 1)}
        print(f"  {name}: accuracy {out[name]['accuracy']:.4f}, weights {out[name]['weight_bytes']} B", flush=True)
    return out


def by_size(model, small: LayerCompression, big: LayerCompression, threshold: int = 256) -> list[LayerCompression]:
    """The first layer int8 (few weights, the rawest input), then `big` for layers of at least
    `threshold` weights and `small` for the others: pruning costs the small ones most."""
    sizes = [int(np.prod(kernel(layer).shape)) for layer in weighted_layers(model)]
    return [LayerCompression() if i == 0 else big if n >= threshold else small for i, n in enumerate(sizes)]


def trained_spectral(params: dict):
    """A spectral_cnn point trained on experiments/spectral.yaml's data as the search trains it;
    its int8 graph and test accuracy."""
    from search_spaces import get_family

    experiment, data = spectral_data()
    space = get_family("spectral_cnn")(experiment.space)
    model = train(lambda: space.build(params, data.input_shape, data.num_classes), data.x_train, data.y_train,
                  data.num_classes, experiment.budget.epochs, experiment.seed, experiment.training)
    graph, core = integer_model(model, data.x_train)
    return experiment, data, model, graph, core, accuracy(graph, data.x_test, data.y_test)


def _weight_storage(tflite: bytes, codecs: list[str], budget) -> tuple[int, int, list[dict], int]:
    """Weight bytes as stored and as plain int8 arrays (the int8 model of the same shapes), per
    layer what was chosen, and the M0+ code of the decoders used."""
    core = integer_core(import_tflite(tflite, "bench"))
    coded = store(core, codecs, budget)
    encodings = [coded.tensor(t).encoding for t in weight_tensors(coded)]
    files = {get_storage(e.storage, **dict(e.params)).c_file for e in encodings if e.storage != "none"}
    layers = [{"tensor": coded.tensor(t).name.split(";")[0][-60:], "int8_bytes": coded.tensor(t).logical_bytes,
               "storage": coded.tensor(t).encoding.storage} for t in weight_tensors(coded)]
    code = sum(DECODER_FLASH[f] for f in files) + (DECODER_FLASH["at_decode_common.c"] if files else 0)
    return weight_bytes(coded), weight_bytes(core), layers, code


def _unpruned_int8_bytes(space, architecture: dict, dataset, seed: int) -> int:
    """Weight bytes of the int8 model of `architecture` with every channel kept: what a point's
    channel pruning and storage are measured against (weights do not change the count)."""
    import tf_keras

    from autotune.trial import int8_model, nonzero_offsets

    tf_keras.backend.clear_session()
    tf_keras.utils.set_random_seed(seed)
    model = space.build(architecture, dataset.input_shape, dataset.num_classes)
    _, graph = int8_model(nonzero_offsets(model), dataset.x_train[:64], "unpruned")
    return weight_bytes(integer_core(graph))


def _int8_reference(experiment, dataset, number: int, architecture: dict, qat_epochs: int) -> dict:
    """The int8 model of `architecture` as the search trains it without compression, with the
    compressed trial's seed (its number): float training then, with `qat_epochs`, int8
    quantization-aware fine-tuning (the compressed model's fine-tuning length)."""
    from autotune.trial import Candidate, TrialResult, evaluate

    plain = replace(experiment, compression=Compression(), early_stop=None,
                    training=replace(experiment.training, qat_epochs=qat_epochs))
    out = evaluate(Candidate(number, architecture), plain, dataset)
    assert isinstance(out, TrialResult), out
    return {"accuracy": out.test_accuracy.value, "weight_bytes": weight_bytes(integer_core(import_tflite(out.tflite, "b"))),
            "flash_bytes": out.costs.flash.value}


def run_spectral() -> dict:
    """A compression search on the spectral task (experiments/spectral_compress.yaml), then each
    front point against the int8 model of its architecture, same seed, trained the same way."""
    from autotune.data import load_dataset
    from autotune.report.outputs import model_path
    from autotune.report.records import pareto_front, read_records
    from autotune.study import open_study, run_search
    from search_spaces import get_family

    experiment = load_experiment(ROOT / "experiments" / "spectral_compress.yaml")
    trials = int(os.environ.get("BENCH_TRIALS", experiment.budget.trials))
    experiment = replace(experiment, output_dir=RUNS, budget=replace(experiment.budget, trials=trials))
    run_search(experiment, progress=False)  # resumes a run cut short; a finished one is kept
    study = open_study(experiment)
    records = read_records(study)
    done = [t for t in study.get_trials(deepcopy=False) if t.datetime_complete]
    search_minutes = round((max(t.datetime_complete for t in done) - min(t.datetime_start for t in done)
                            ).total_seconds() / 60, 1)
    front = pareto_front(records, experiment.objectives)
    dataset = load_dataset(experiment.data, experiment.seed)
    space = get_family(experiment.family)(experiment.space)
    compression_keys = {f"{key}_" for key, _ in DIMENSIONS}
    def described(r) -> dict:
        specs, codecs = layer_choices(r.params, experiment.compression, space.weighted_layers(r.params))
        stored_bytes, pruned_int8_bytes, layers, decoder_code = _weight_storage(
            model_path(experiment.run_dir, r.number).read_bytes(), codecs, experiment.compression.decode_budget_cycles)
        architecture = {k: v for k, v in r.params.items() if not any(k.startswith(c) for c in compression_keys)}
        int8_bytes = _unpruned_int8_bytes(space, architecture, dataset, r.number)
        return {"trial": r.number, "architecture": architecture,
                "compression": [{"bits": s.bits, "clusters": s.clusters, "sparsity": s.sparsity, "keep": s.keep,
                                 **layer} for s, layer in zip(specs, layers)],
                "accuracy": r.metrics["test_accuracy"], "weight_bytes": stored_bytes,
                "decoder_code_bytes": decoder_code, "flash_bytes": round(r.metrics["flash_kb"] * 1024),
                "ratio": round(int8_bytes / stored_bytes, 2),
                "int8": {"weight_bytes": int8_bytes, "pruned_weight_bytes": pruned_int8_bytes}}

    points = [described(r) for r in sorted(front, key=lambda r: r.number)]
    # Beside the front: the completed trial of the largest ratio, if it is not on it.
    everyone = [described(r) for r in records if r.complete and r.number not in {p["trial"] for p in points}]
    off_front = max(everyone, key=lambda p: p["ratio"], default=None)
    # The int8 references, largest ratio first (each trains the architecture twice): the front's
    # points whose weights are stored in less than int8, at most BENCH_REFERENCES of them
    # (default 6), and the largest ratio off the front.
    compared = sorted((p for p in points if p["ratio"] > 1), key=lambda p: -p["ratio"])
    compared = compared[:int(os.environ.get("BENCH_REFERENCES", 6))]
    for point in compared + ([off_front] if off_front and off_front["ratio"] > 1 else []):
        as_searched = _int8_reference(experiment, dataset, point["trial"], point["architecture"], 0)
        fine_tuned = _int8_reference(experiment, dataset, point["trial"], point["architecture"],
                                     experiment.compression.finetune_epochs)
        assert as_searched["weight_bytes"] == point["int8"]["weight_bytes"]
        point["int8"] |= {"flash_bytes": as_searched["flash_bytes"], "accuracy": as_searched["accuracy"],
                          "accuracy_qat": fine_tuned["accuracy"]}
        point["accuracy_loss_points"] = round(100 * (max(as_searched["accuracy"], fine_tuned["accuracy"])
                                                     - point["accuracy"]), 2)
        print(f"  trial {point['trial']}: {point['ratio']}x, loss {point['accuracy_loss_points']} pt "
              f"({point['accuracy']:.4f} against {as_searched['accuracy']:.4f} / QAT {fine_tuned['accuracy']:.4f})",
              flush=True)
    judged = [p for p in points if "accuracy_loss_points" in p] or points
    within = [p for p in judged if p.get("accuracy_loss_points", 100) <= 1.0]
    best = max(within or judged, key=lambda p: (p["ratio"], -p.get("accuracy_loss_points", 100)))
    return {"int8_weight_bytes": best["int8"]["weight_bytes"], "best_weight_bytes": best["weight_bytes"],
            "accuracy_loss_points": best.get("accuracy_loss_points"), "ratio": best["ratio"], "goal_met":
            best["ratio"] >= 4 and best.get("accuracy_loss_points", 100) <= 1.0, "best_trial": best["trial"],
            "n_test": len(dataset.y_test), "trials": sum(r.complete for r in records), "front_size": len(front),
            "front": points, "largest_ratio_off_front": off_front,
            "front_points_stored_as_int8": sum(p["ratio"] == 1 for p in points),
            "search_minutes": search_minutes,
            "rule": "ratio: the weight bytes of the int8 model of a point's architecture, every channel kept, "
                    "over its weights as stored (channel pruning and storage together); per front point "
                    "stored in less than that (largest ratio first, at most BENCH_REFERENCES): its test accuracy "
                    "against the better of two int8 models of its architecture with its seed (as the search "
                    "trains int8: float training only; and with int8 QAT for the compression's fine-tuning "
                    "epochs); the largest weight ratio within 1 point",
            "sources": {"accuracy": "measured:reference-executor (bit-exact with TFLM), test split",
                        "weight_bytes": "measured: kernel plan, weights as stored (blobs with header and CRC)",
                        "flash_bytes": "measured:elf-rp2040",
                        "decoder_code_bytes": "predicted: cost_models.analytic.DECODER_FLASH (M0+ code per decoder)"}}


def firmware_costs(core, tmp: Path, name: str, x: np.ndarray) -> dict:
    """`core` (a graph, or a kernel plan) built for the rp2040 and run once on rp2040-sim."""
    from device_runners.build import build
    from device_runners.rp2040_sim import Rp2040Sim

    gen = generate_c(core, tmp / name / "src")
    core = gen.kernel_plan.graph
    firmware = build(tmp / name / "src", "rp2040", out_dir=tmp / name, cache_dir=tmp / "cache")
    result = Rp2040Sim(firmware.elf_path).run(x)
    assert result.status == 0
    want = executor.run(core, x[None]).reshape(-1)
    assert np.array_equal(result.output, want), f"{name}: rp2040-sim differs from the executor"
    return {"flash_bytes": firmware.flash_bytes, "ram_bytes": firmware.ram_bytes, "cycles": result.cycles,
            "arena_bytes": gen.arena_bytes}


def run_knee() -> dict:
    experiment, data, model, graph, core, base_acc = trained_spectral(KNEE)
    training = experiment.training
    v = compress_variants(model, {"4-bit": by_size(model, LayerCompression(4), LayerCompression(4))}, data,
                          training, 10, experiment.seed)["4-bit"]
    x = executor.quantize_input(graph, data.x_test[:1])[0]
    with tempfile.TemporaryDirectory() as tmp:
        plain = firmware_costs(core, Path(tmp), "plain", x)
        coded = firmware_costs(v["coded"], Path(tmp), "coded", executor.quantize_input(graph, data.x_test[:1])[0])
    return {"flash_change_pct": round(100 * (coded["flash_bytes"] / plain["flash_bytes"] - 1), 2),
            "ram_change_bytes": coded["ram_bytes"] - plain["ram_bytes"],
            "latency_change_pct": round(100 * (coded["cycles"] / plain["cycles"] - 1), 2),
            "plain": plain, "compressed": coded, "int8_accuracy": base_acc, "compressed_accuracy": v["accuracy"],
            "int8_weight_bytes": weight_bytes(core), "compressed_weight_bytes": v["weight_bytes"],
            "layers": v["layers"], "architecture": KNEE, "compression": "4-bit (first conv int8), auto storage where it saves more than its decoder's code",
            "sources": {"flash_bytes": "measured:elf-rp2040", "ram_bytes": "measured:elf-rp2040",
                        "cycles": "measured:rp2040-sim (XIP cache model, one inference)"}}


def lenet5(input_shape, classes: int):
    import tf_keras
    from tf_keras import layers as L

    i = tf_keras.Input(input_shape)
    x = L.MaxPooling2D(2)(L.Conv2D(6, 5, padding="same", activation="relu")(i))
    x = L.MaxPooling2D(2)(L.Conv2D(16, 5, activation="relu")(x))
    x = L.Dense(84, activation="relu")(L.Dense(120, activation="relu")(L.Flatten()(x)))
    return tf_keras.Model(i, L.Dense(classes, activation="softmax")(x))


def run_lenet5() -> dict:
    from types import SimpleNamespace

    from autotune.data.public import fashion_mnist_npz

    with tempfile.TemporaryDirectory() as tmp:
        d = np.load(fashion_mnist_npz(Path(tmp) / "fmnist.npz"))
        data = SimpleNamespace(x_train=d["x"], y_train=d["y"], x_test=d["x_test"], y_test=d["y_test"], num_classes=10)
    training = Training(min_steps=0, restarts=0, learning_rate=0.002)
    epochs, finetune = int(os.environ.get("BENCH_LENET_EPOCHS", 12)), int(os.environ.get("BENCH_LENET_FT", 8))
    model = lenet5((28, 28, 1), 10)
    cached = RUNS / f"lenet5_float_{epochs}.weights.h5"  # the float model, trained once
    if cached.exists():
        model.load_weights(cached)
    else:
        model = train(lambda: lenet5((28, 28, 1), 10), data.x_train, data.y_train, 10, epochs, 0, training)
        cached.parent.mkdir(parents=True, exist_ok=True)
        model.save_weights(cached)
    float_acc = float(np.mean(model.predict(data.x_test, verbose=0, batch_size=512).argmax(axis=1) == data.y_test))
    float_bytes = 4 * model.count_params()
    biases = sum(int(np.prod(w.shape)) for layer in model.layers for w in layer.weights if "bias" in w.name)
    print(f"lenet5 float: accuracy {float_acc:.4f}, {float_bytes} B", flush=True)
    # Fine-tuning at a tenth of 0.01 (the pruned layers need the larger steps to recover).
    variants = compress_variants(model, {
        "conv2 4-bit 60 %, fc1 2-bit 94 %, fc2 2-bit 88 %, fc3 4-bit 50 %":
            [LayerCompression(), LayerCompression(4, 0, 0.6), LayerCompression(2, 0, 0.94),
             LayerCompression(2, 0, 0.88), LayerCompression(4, 0, 0.5)],
        "conv2 4-bit 50 %, fc1 2-bit 93 %, fc2 2-bit 85 %, fc3 4-bit 50 %":
            [LayerCompression(), LayerCompression(4, 0, 0.5), LayerCompression(2, 0, 0.93),
             LayerCompression(2, 0, 0.85), LayerCompression(4, 0, 0.5)],
    }, data, replace(training, learning_rate=0.01), finetune, 0)
    goal = float_bytes / 50 - 4 * biases  # weight bytes for 50x with the int32 biases
    fits = {k: v for k, v in variants.items() if v["weight_bytes"] <= goal} or variants
    name = min(fits, key=lambda k: (float_acc - fits[k]["accuracy"] > 0.01, fits[k]["weight_bytes"]))
    v = variants[name]
    compressed = v["weight_bytes"] + 4 * biases  # biases stay int32 (in the channel tables)
    return {"dataset": "fashion_mnist (Debian dataset-fashion-mnist, 60,000 train / 10,000 test)",
            "float32_weight_bytes": float_bytes, "compressed_weight_bytes": compressed,
            "ratio": round(float_bytes / compressed, 1), "weights_only_bytes": v["weight_bytes"],
            "accuracy_loss_points": round(100 * (float_acc - v["accuracy"]), 2), "float_accuracy": float_acc,
            "compressed_accuracy": v["accuracy"], "layers": v["layers"], "compression": name + " pruned; conv1 int8; auto",
            "variants": {k: {"accuracy": x["accuracy"], "weight_bytes": x["weight_bytes"]} for k, x in variants.items()},
            "epochs": {"float": epochs, "finetune": finetune},
            "sources": {"accuracy": "measured: float model (tf_keras) against the int8 model (reference executor), "
                        "10,000 test images",
                        "bytes": "float32: 4 x parameters; compressed: weights as stored (kernel plan) + int32 biases"}}


def run_per_filter() -> dict:
    """The test zoo's MLP (128 x 2 -> 64 -> 16 -> 4) with its fully connected weights on 2^3
    levels in palette storage: decoded whole into scratch before each kernel, against four units'
    rows at a time (the plan `lower` picks, its arena the smaller)."""
    sys.path.insert(0, str(ROOT / "tests"))
    import model_zoo
    from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as fb

    from autotune.ir.graph import WeightEncoding
    from autotune.lowering import _lower

    def three_bits(m):
        g = m.subgraphs[0]
        for op in g.operators:
            if m.operatorCodes[op.opcodeIndex].builtinCode == fb.BuiltinOperator.FULLY_CONNECTED:
                buf = m.buffers[g.tensors[op.inputs[1]].buffer]
                w = np.asarray(buf.data, np.uint8).view(np.int8).astype(np.int32)
                buf.data = (np.clip(np.round(w / 32), -4, 3) * 32).astype(np.int8).view(np.uint8)

    with tempfile.TemporaryDirectory() as tmp:
        model = model_zoo.edit(model_zoo.tflite_bytes("mlp", Path(tmp)), three_bits)
        core = integer_core(import_tflite(model, "mlp"))
        coded = with_storage(core, {t: WeightEncoding("palette") for t in weight_tensors(core)})
        x = np.random.default_rng(0).integers(-128, 128, core.tensor(core.inputs[0]).shape[1:], dtype=np.int8)
        runs = {"whole_tensor": firmware_costs(_lower(coded, False, False), Path(tmp), "whole", x),
                "by_filter": firmware_costs(lower(coded), Path(tmp), "rows", x),
                "plain_int8": firmware_costs(core, Path(tmp), "plain", x)}
    rows, whole = runs["by_filter"], runs["whole_tensor"]
    return {**runs, "arena_saved_bytes": whole["arena_bytes"] - rows["arena_bytes"],
            "ram_saved_bytes": whole["ram_bytes"] - rows["ram_bytes"],
            "latency_change_pct": round(100 * (rows["cycles"] / whole["cycles"] - 1), 2),
            "sources": {"flash_bytes": "measured:elf-rp2040", "ram_bytes": "measured:elf-rp2040",
                        "cycles": "measured:rp2040-sim (XIP cache model, one inference, output equal to the executor's)"}}


# A mid-size point of the spectral space (4 KB of int8 weights): separable, 16/32/32 filters.
MID = {"blocks": 3, "filters_0": 16, "filters_1": 32, "filters_2": 32, "kernel": 7, "pool": 4, "separable": True,
       "dense": 32, "stem_stride": 4}


def run_channels() -> dict:
    """Structured channel pruning of MID on the spectral task: the trial (autotune.trial.evaluate,
    same seed, so the same float training) unpruned, and with every free layer (stem, pointwise
    convolutions, hidden dense) keeping 0.75 and 0.5 of its channels, then fine-tuned for the
    compression's epochs (at least the training's step floor); test accuracy on the integer
    path, weights, flash and RAM of the rp2040 ELF, cycles on rp2040-sim for one inference. For
    comparison, the architecture of each pruned width trained from scratch the same way, and the
    unpruned model fine-tuned as long as the pruned ones (`1.0_finetuned`)."""
    from autotune.compress.channels import prune_and_finetune
    from autotune.trial import Candidate, TrialResult, evaluate, int8_model, predict_labels, trainer_for
    from search_spaces import get_family

    experiment, data = spectral_data()
    experiment = replace(experiment, constraints=replace(experiment.constraints, max_latency_ms=None), early_stop=None,
                         compression=Compression(channel_keep=(1.0, 0.75, 0.5), finetune_epochs=10))
    space = get_family("spectral_cnn")(experiment.space)
    free = space.channel_layers(MID)

    def narrower(keep: float) -> dict:  # MID with each free layer's width times keep, unpruned
        return {k: round(v * keep) if k.startswith(("filters_", "dense")) else v for k, v in MID.items()}

    variants = {str(keep): {**MID, **{f"keep_{i}": keep for i in free}} for keep in (1.0, 0.75, 0.5)}
    variants |= {f"scratch_{keep}": narrower(keep) for keep in (0.75, 0.5)}
    rows = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, params in variants.items():
            start = time.monotonic()
            out = evaluate(Candidate(0, params), experiment, data)
            assert isinstance(out, TrialResult), out
            graph = import_tflite(out.tflite, "bench")
            core = integer_core(graph)
            x = executor.quantize_input(graph, data.x_test[:1])[0]
            run = firmware_costs(core, Path(tmp), name, x)
            rows[name] = {
                "test_accuracy": out.test_accuracy.value, "test_n": out.test_accuracy.n,
                "val_accuracy": out.val_accuracy.value, "params": out.costs.params, "macs": out.costs.macs,
                "weight_bytes": weight_bytes(core), "flash_bytes": run["flash_bytes"], "ram_bytes": run["ram_bytes"],
                "cycles": run["cycles"], "latency_ms_analytic": round(out.costs.latency.value, 3),
                "minutes": round((time.monotonic() - start) / 60, 1)}
            print(f"  {name}: {rows[name]}", flush=True)
    # Control: the unpruned model fine-tuned as the pruned ones are (the same extra steps).
    model, _ = trainer_for(lambda: space.build(MID, data.input_shape, data.num_classes), data, experiment).fit(
        data.x_train, data.y_train, (data.x_val, data.y_val), experiment.seed)
    model = prune_and_finetune(model, [1.0] * space.weighted_layers(MID), data.x_train, data.y_train,
                               experiment.training, data.num_classes, experiment.compression.finetune_epochs,
                               experiment.seed)
    _, graph = int8_model(model, data.x_train, "control")
    rows["1.0_finetuned"] = {"test_accuracy": float(np.mean(predict_labels(graph, data.x_test) == data.y_test)),
                             "test_n": len(data.y_test)}
    print(f"  1.0_finetuned: {rows['1.0_finetuned']}", flush=True)
    return {"architecture": MID, "free_layers": free, "finetune_epochs": experiment.compression.finetune_epochs,
            "variants": rows,
            "sources": {"test_accuracy": "measured:reference-executor, the spectral test split",
                        "flash_bytes": "measured:elf-rp2040", "ram_bytes": "measured:elf-rp2040",
                        "cycles": "measured:rp2040-sim (XIP cache model, one inference, output equal to the executor's)",
                        "latency_ms_analytic": "predicted:analytic-rp2040"}}


PARTS = {"spectral": run_spectral, "knee": run_knee, "lenet5": run_lenet5, "per_filter": run_per_filter,
         "channels": run_channels}


def main(parts=None) -> None:
    use_one_cpu()
    results = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    for name in parts or PARTS:
        start = time.monotonic()
        results[name] = PARTS[name]()
        results[name]["minutes"] = round((time.monotonic() - start) / 60, 1)
        RESULTS.write_text(json.dumps(results, indent=1) + "\n")
        print(name, json.dumps({k: v for k, v in results[name].items() if not isinstance(v, (dict, list))}), flush=True)


if __name__ == "__main__":
    main(sys.argv[1:] or None)
