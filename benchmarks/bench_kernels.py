"""Cortex-M0+ cycles of the generated kernels, and the analytic latency model against them.

Models of every search-space family at several sizes (random weights: timing does not depend on
them) are generated, built for the rp2040 and run on rp2040-sim. Per op kind, zero-wait cycles
are fitted as `a x MACs + b x outputs + c x output pixels` (non-negative least squares; the
constants in cost_models/analytic.py come from this fit), or per output element for ops without
MACs. The XIP term of the analytic model (cost_models.analytic.FlashCache) is fitted on MLPs of
15-170 KB of code and weights run twice (cold, then warm): the fraction of the lines they touch
that miss per warm inference against how far they exceed the cache. Writes
benchmarks/results/kernels.json: the fits, and per model the simulated cycles (warm, with the
XIP cache) against the analytic prediction. The same models built for the nano33ble run on
nano33ble-sim (Cortex-M4, instructions only): per op kind, the instructions the M4 executes per
M0+ instruction, from which cost_models/analytic.py scales its M4 table.
"""
from __future__ import annotations

import json
import tempfile
from collections import defaultdict
from pathlib import Path

import numpy as np
from scipy.optimize import nnls

from autotune.capture import import_tensorflow
from autotune.codegen import generate_c
from autotune.ir.tflite_import import import_tflite
from autotune.quantize import to_int8_tflite
from cost_models.analytic import AnalyticCostModel
from cost_models.features import extract_features
from device_runners.build import build
from device_runners.rp2040_sim import Rp2040Sim
from device_runners.runners import open_runner
from search_spaces import get_family

ROOT = Path(__file__).resolve().parents[1]
SPECTRAL = {"blocks": 3, "filters_0": 8, "filters_1": 16, "filters_2": 16, "kernel": 5, "pool": 2,
            "separable": False, "dense": 16, "stem_stride": 4}
MODELS = {  # name: (family, parameters, input shape)
    "spectral_plain": ("spectral_cnn", SPECTRAL, (1, 1024, 1)),
    "spectral_separable": ("spectral_cnn", {**SPECTRAL, "separable": True, "kernel": 7}, (1, 1024, 1)),
    "spectral_wide": ("spectral_cnn", {**SPECTRAL, "blocks": 2, "filters_0": 32, "filters_1": 32, "kernel": 3,
                                       "pool": 4, "dense": 32, "stem_stride": 2}, (1, 512, 1)),
    "spectral_deep": ("spectral_cnn", {**SPECTRAL, "blocks": 4, "filters_3": 32, "kernel": 11, "separable": True,
                                       "stem_stride": 2}, (1, 1024, 2)),
    "spectral_tiny": ("spectral_cnn", {**SPECTRAL, "blocks": 2, "filters_1": 8, "kernel": 3, "pool": 4,
                                       "dense": 8, "stem_stride": 8}, (1, 1024, 1)),
    "ds_cnn_small": ("ds_cnn", {"first_filters": 8, "first_kernel": 3, "first_stride": 2, "blocks": 2,
                                "block_filters": 16, "block_stride": 2}, (24, 24, 1)),
    "ds_cnn_wide": ("ds_cnn", {"first_filters": 32, "first_kernel": 5, "first_stride": 2, "blocks": 3,
                               "block_filters": 32, "block_stride": 1}, (16, 16, 3)),
    "mlp": ("mlp", {"layers": 2, "units_0": 64, "units_1": 32}, (1, 128, 1)),
}
# MLPs whose weights stream through the XIP cache: (units of the first layer, input length)
XIP_LADDER = ((96, 128), (112, 128), (128, 128), (160, 128), (256, 256), (256, 512))


def _firmware(family: str, params: dict, shape: tuple[int, ...], scratch: Path):
    import tf_keras

    tf_keras.utils.set_random_seed(0)
    model = get_family(family)({}).build(params, shape, 6)
    calibration = np.random.default_rng(0).normal(size=(64, *shape)).astype(np.float32)
    graph = import_tflite(to_int8_tflite(model, calibration), "bench")
    generate_c(graph, scratch / "src")
    return graph, {t: build(scratch / "src", t, out_dir=scratch, cache_dir=scratch / "cache")
                   for t in ("rp2040", "nano33ble")}


def main() -> dict:
    import_tensorflow()
    samples: dict[str, list[tuple[int, ...]]] = defaultdict(list)  # kind -> (MACs, outputs, pixels, cycles)
    m4_instructions: dict[str, list[tuple[int, int]]] = defaultdict(list)  # kind -> (M0+, M4) instructions
    models, glue = [], []
    for name, (family, params, shape) in MODELS.items():
        with tempfile.TemporaryDirectory() as scratch:
            graph, builds = _firmware(family, params, shape, Path(scratch))
            firmware = builds["rp2040"]
            x = np.random.default_rng(0).integers(-128, 128, graph.tensor(graph.inputs[0]).shape[1:]).astype(np.int8)
            sim = Rp2040Sim(firmware.elf_path)
            sim.run(x)  # warms the XIP cache
            result = sim.run(x)
            m4 = open_runner("nano33ble-sim", builds["nano33ble"].elf_path).run(x)
        features = extract_features(graph, activation_bytes=0)
        kernels = [f for f in features.ops if f.kind != "RESHAPE"]  # RESHAPE calls no kernel
        for f, measured, on_m4 in zip(kernels, result.ops, m4.ops):
            assert measured.kernel == on_m4.kernel, (name, measured.kernel, on_m4.kernel)
            samples[f.cost_kind].append((f.macs, f.output_elems, f.output_elems // f.channels,
                                         measured.zero_wait_cycles))
            m4_instructions[f.cost_kind].append((measured.instructions, on_m4.instructions))
        glue.append((result.zero_wait_cycles - sum(o.zero_wait_cycles for o in result.ops)) / len(result.ops))
        predicted = AnalyticCostModel("rp2040").cycles(features)
        models.append({"name": name, "macs": features.macs, "cycles": result.cycles,
                       "zero_wait_cycles": result.zero_wait_cycles, "xip_misses": result.xip_misses,
                       "cycles_per_mac": round(result.cycles / features.macs, 1),
                       "predicted_cycles": round(predicted), "predicted_over_measured": round(predicted / result.cycles, 3),
                       "flash_bytes": firmware.flash_bytes})
        print(f"{name}: {features.macs} MACs, {result.cycles} cycles ({result.milliseconds:.2f} ms), "
              f"analytic {predicted / result.cycles:.2f}x")

    fit = {}
    for kind, rows in sorted(samples.items()):
        macs, outputs, pixels, cycles = (np.array(c, float) for c in zip(*rows))
        if macs.any():
            terms = np.stack([macs, outputs, pixels], 1)
            coef, _ = nnls(terms / cycles[:, None], np.ones_like(cycles))  # relative error
            error = np.abs(terms @ coef / cycles - 1).max()
            fit[kind] = {"cycles_per_mac": round(float(coef[0]), 1), "cycles_per_output": round(float(coef[1]), 1),
                         "cycles_per_pixel": round(float(coef[2]), 1), "max_relative_error": round(float(error), 3),
                         "ops": len(rows)}
        else:
            per = cycles / outputs
            fit[kind] = {"cycles_per_element": round(float(per.mean()), 1),
                         "max_relative_error": round(float(np.abs(per / per.mean() - 1).max()), 3), "ops": len(rows)}
    xip = fit_xip()
    result = {"simulator": "rp2040-sim (Cortex-M0+ timings; fit on zero-wait cycles, models warm with the XIP cache)",
              "fit": fit, "xip": xip,
              "cycles_per_op_call": round(float(np.mean(glue)), 1), "models": models,
              "analytic_worst_ratio": max((m["predicted_over_measured"] for m in models), key=lambda r: abs(r - 1)),
              "cortex_m4_instruction_ratio": {
                  kind: round(sum(m for _, m in rows) / sum(m0 for m0, _ in rows), 3)
                  for kind, rows in sorted(m4_instructions.items())}}
    out = ROOT / "benchmarks" / "results" / "kernels.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    for kind, f in fit.items():
        print(f"{kind}: {f}")
    return result


def fit_xip() -> dict:
    """The FlashCache slope: warm misses as a fraction of the lines the model touches, against
    the excess of its footprint over the cache (least squares through the origin, on the models
    not yet missing every line)."""
    model = AnalyticCostModel("rp2040")
    cache = model.table.flash_cache
    points = []
    for units, length in XIP_LADDER:
        with tempfile.TemporaryDirectory() as scratch:
            params = {"layers": 2, "units_0": units, "units_1": units // 2}
            graph, builds = _firmware("mlp", params, (1, length, 1), Path(scratch))
            sim = Rp2040Sim(builds["rp2040"].elf_path)
            x = np.zeros(graph.tensor(graph.inputs[0]).shape[1:], np.int8)
            cold, warm = sim.run(x), sim.run(x)
        features = extract_features(graph, activation_bytes=0)
        footprint = model.flash_bytes(features) - model.table.board_flash
        points.append({"units": units, "input": length, "flash_bytes": builds["rp2040"].flash_bytes,
                       "footprint_bytes": round(footprint), "cold_misses": cold.xip_misses,
                       "warm_misses": warm.xip_misses, "zero_wait_cycles": warm.zero_wait_cycles,
                       "warm_cycles": warm.cycles, "predicted_cycles": round(model.cycles(features)),
                       "miss_fraction": round(warm.xip_misses / (footprint / cache.line_bytes), 3),
                       "excess": round(max(0.0, footprint - cache.bytes) / cache.bytes, 3)})
        print(f"mlp {units}x{length}: footprint {footprint:.0f} B, warm misses {warm.xip_misses} "
              f"(cold {cold.xip_misses}), cycles {warm.cycles} (zero-wait {warm.zero_wait_cycles})")
    rising = [p for p in points if 0 < p["excess"] and p["miss_fraction"] < 0.9]
    slope = sum(p["miss_fraction"] * p["excess"] for p in rising) / sum(p["excess"] ** 2 for p in rising)
    return {"slope": round(slope, 2), "line_bytes": cache.line_bytes, "miss_cycles": cache.miss_cycles,
            "cache_bytes": cache.bytes, "points": points}


if __name__ == "__main__":
    main()
