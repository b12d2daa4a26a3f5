"""Generated C against TFLite Micro for every Pareto point of the default run.

For each point: our activation RAM (planned arena plus the caller's input and output buffers)
against the arena TFLM allocates for the same model, our flash on the Cortex-M0+ (the whole
firmware image: code and weights), and the time to generate and build it (no cache). Runs the
default experiment first if runs/spectral does not exist. Writes benchmarks/results/codegen.json.
"""
from __future__ import annotations

import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from autotune.cli import load_run
from autotune.codegen import generate_c
from autotune.ir.tflite_import import import_tflite
from autotune.report.outputs import model_path
from autotune.report.records import pareto_front, read_records
from autotune.study import open_study
from autotune.tflm import tflm_arena_bytes
from device_runners.build import build

ROOT = Path(__file__).resolve().parents[1]


def main(run: Path = ROOT / "runs" / "spectral") -> dict:
    if not (run / "study.db").exists():
        subprocess.run([sys.executable, "-m", "autotune", "run", "experiments/spectral.yaml"], cwd=ROOT, check=True)
    experiment = load_run(run)
    front = pareto_front(read_records(open_study(experiment)), experiment.objectives)
    points = []
    for record in front:
        tflite = model_path(experiment.run_dir, record.number).read_bytes()
        graph = import_tflite(tflite, name=f"trial_{record.number}")
        with tempfile.TemporaryDirectory() as scratch:
            start = time.perf_counter()
            generated = generate_c(graph, Path(scratch) / "src")
            firmware = build(Path(scratch) / "src", "rp2040", cache_dir=Path(scratch) / "cache")
            seconds = time.perf_counter() - start
        ours = generated.arena_bytes + generated.input_size + generated.output_size
        tflm = tflm_arena_bytes(tflite)
        points.append({"name": f"trial_{record.number}", "ram_bytes": ours, "tflm_arena_bytes": tflm,
                       "ram_ratio": round(ours / tflm, 3), "flash_bytes_m0plus": firmware.flash_bytes,
                       "build_seconds": round(seconds, 3)})
    result = {"run": str(run.relative_to(ROOT) if run.is_relative_to(ROOT) else run), "points": points,
              "max_ram_ratio": max(p["ram_ratio"] for p in points),
              "mean_build_seconds": round(statistics.mean(p["build_seconds"] for p in points), 3)}
    out = ROOT / "benchmarks" / "results" / "codegen.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    for p in points:
        print(f"{p['name']}: RAM {p['ram_bytes']} B vs TFLM arena {p['tflm_arena_bytes']} B "
              f"({p['ram_ratio']:.2f}x), flash {p['flash_bytes_m0plus']} B, build {p['build_seconds']:.2f} s")
    return result


if __name__ == "__main__":
    main(*(Path(a).resolve() for a in sys.argv[1:]))
