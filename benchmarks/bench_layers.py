"""Cycles per layer of every test-zoo model on rp2040-sim and apollo5-sim, and the simulators' speed.

Each model of tests/model_zoo.py (`larun_design` is the LARUN-like CNN exactly as DESIGN.md
describes it, max pools where the zoo's `larun` strides) is generated, built for each target in
the image its runner takes (`runner_image`) and run on one random input, whose output must equal
the reference executor's. The functions the entry called are matched to the kernel plan's calls
by symbol (`attribute_cycles`), every call of the plan found. MACs are the kernel plan's: the
multiply-accumulates of conv, depthwise and dense layers only (padding taps included, as TFLM
computes them). The apollo5-sim goals of
issue 11 are summarised under "apollo5_goals".

Writes into benchmarks/results/runners.json (other benchmarks add their own keys there):
  "layers": [{target, model, layer (op index), op, kernel, macs, cycles}],
  "sim_instructions_per_second": {runner: instructions of the models' entry functions per second
      of wall time, a second run of each model (apollo5-sim: a QEMU boot with the block-counting
      plugin, block timings from the llvm-mca cache)}.
"""
from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

import model_zoo  # noqa: E402
from bench_runners import RESULTS, merge_results  # noqa: E402
from autotune import executor  # noqa: E402
from autotune.capture import import_tensorflow  # noqa: E402
from autotune.codegen import generate_c, integer_core  # noqa: E402
from autotune.ir.kernel_plan import attribute_cycles  # noqa: E402
from autotune.ir.tflite_import import import_tflite  # noqa: E402
from device_runners.runners import open_runner, runner_image  # noqa: E402

RUNNERS = {"rp2040": "rp2040-sim", "apollo5": "apollo5-sim"}


def _model(name: str, tflite: bytes, scratch: Path, speed: dict, runners: dict) -> list[dict]:
    graph = integer_core(import_tflite(tflite, name))
    generated = generate_c(graph, scratch / name / "src")
    plan = generated.kernel_plan
    x = np.random.default_rng(0).integers(-128, 128, graph.tensor(graph.inputs[0]).shape[1:]).astype(np.int8)
    want = executor.run(graph, x[None]).reshape(-1)
    rows = []
    for target, runner_name in runners.items():
        image = runner_image(runner_name, generated.out_dir, target, cache_dir=scratch / "cache")
        runner = open_runner(runner_name, image.elf_path)
        runner.run(x)  # first run: translation, plugin build, block timings measured
        start = time.perf_counter()
        result = runner.run(x)
        seconds = time.perf_counter() - start
        speed[runner_name][0] += result.instructions
        speed[runner_name][1] += seconds
        assert np.array_equal(result.output, want), f"{name} on {runner_name} differs from the executor"
        profile = attribute_cycles(plan, result.ops)
        assert [p.call for p in profile] == [k for k, c in enumerate(plan.calls) if c.symbol], (
            f"{name} on {runner_name}: calls {[op.kernel for op in result.ops]}, kernel plan "
            f"{[c.symbol for c in plan.calls]}")
        for p in profile:
            call = plan.calls[p.call]
            rows.append({"target": target, "model": name, "layer": call.op, "op": call.kind, "kernel": p.symbol,
                         "macs": call.macs, "cycles": p.cycles})
        macs = sum(r["macs"] for r in rows if r["target"] == target)
        print(f"{name} on {runner_name}: {result.cycles} cycles, {macs / result.cycles:.3f} MACs per cycle")
    return rows


def _goals(layers: list[dict], graphs: dict) -> dict:
    """Issue 11's apollo5-sim goals: pointwise and dense layers with >= 16 input and output
    channels at >= 2 MACs per cycle; the whole LARUN-like CNN at >= 1."""
    apollo5 = [r for r in layers if r["target"] == "apollo5"]
    checked = []
    for r in apollo5:
        graph = graphs[r["model"]]
        op = graph.ops[r["layer"]]
        if op.kind not in ("CONV_2D", "FULLY_CONNECTED"):
            continue
        filt = graph.tensor(op.inputs[1]).shape
        if op.kind == "CONV_2D" and filt[1:3] != (1, 1):
            continue
        in_c, out_c = graph.tensor(op.inputs[0]).shape[-1], graph.tensor(op.outputs[0]).shape[-1]
        if in_c >= 16 and out_c >= 16:
            checked.append({"model": r["model"], "layer": r["layer"], "op": "POINTWISE" if op.kind == "CONV_2D" else op.kind,
                            "in": in_c, "out": out_c, "macs": r["macs"], "cycles": r["cycles"],
                            "macs_per_cycle": round(r["macs"] / r["cycles"], 3)})
    whole = {m: round(sum(r["macs"] for r in apollo5 if r["model"] == m)
                      / sum(r["cycles"] for r in apollo5 if r["model"] == m), 3) for m in ("larun", "larun_design")}
    return {"pointwise_and_dense_16": checked, "whole_model_macs_per_cycle": whole}


def main(targets: tuple[str, ...] = tuple(RUNNERS)) -> dict:
    """Every target, or the named ones alone (`python benchmarks/bench_layers.py apollo5`): the
    layers and simulator speed of a target not run are kept from runners.json."""
    import_tensorflow()
    runners = {t: RUNNERS[t] for t in targets}
    layers, graphs = [], {}
    speed = {runner: [0, 0.0] for runner in runners.values()}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        models = {name: model_zoo.tflite_bytes(name, tmp) for name in model_zoo.SUPPORTED}
        for name, tflite in models.items():
            graphs[name] = integer_core(import_tflite(tflite, name))
            layers += _model(name, tflite, tmp, speed, runners)
    kept = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    layers = [r for r in kept.get("layers", []) if r["target"] not in runners] + layers
    result = {
        "layers_source": "measured: rp2040-sim and apollo5-sim, one random input per model, output equal "
                         "to the reference executor",
        "layers": layers,
        "sim_instructions_per_second": {**kept.get("sim_instructions_per_second", {}),
                                        **{r: round(n / s) for r, (n, s) in speed.items()}},
        "apollo5_goals": _goals(layers, graphs),
    }
    for key, value in result.items():
        merge_results(key, value)
    return result


if __name__ == "__main__":
    main(tuple(sys.argv[1:]) or tuple(RUNNERS))
