"""Generated C against TFLite Micro on memory and flash.

For every model of the test zoo (tests/model_zoo.py), with the input and output in the arena (the
default) and in the caller's buffers (generate_c's `io`): our activation RAM (the planned arena
plus any input and output buffers the caller keeps outside it), our worst-case stack, the
firmware's flash on the Cortex-M0+ (the whole rp2040 image: code and weights) and its RAM as the
ELF measures it, and the same image's flash and stack built with the generic kernels in place of
the cortex-m0plus library (the baseline of issue 10's flash goal), against the arena TFLite Micro
allocates for the same .tflite model: its head (the non-persistent part: planned activations,
input and output included, and kernel scratch; what our activation RAM compares with) and total
(head plus its persistent structs). With the input and output in the arena, both images also
run one random input on rp2040-sim (zero-wait cycles; their outputs must agree): what the
cortex-m0plus kernels save in cycles for the flash they add. Then the ratio ours / TFLM head per
model, its geometric mean and maximum, and the models whose flash exceeds the generic kernels'
image.

For each Pareto point of `runs/spectral`, if that run exists: the same figures and the time to
generate and build the C without cache (`make run` makes the run; this benchmark does not).
Writes benchmarks/results/codegen.json.
"""
from __future__ import annotations

import json
import math
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

import model_zoo  # noqa: E402
import numpy as np  # noqa: E402
from autotune.cli import load_run  # noqa: E402
from autotune.codegen import generate_c  # noqa: E402
from autotune.codegen.planner import IO_MODES  # noqa: E402
from autotune.ir.tflite_import import import_tflite  # noqa: E402
from autotune.report.outputs import model_path  # noqa: E402
from autotune.report.records import pareto_front, read_records  # noqa: E402
from autotune.study import open_study  # noqa: E402
from autotune.tflm import tflm_arena  # noqa: E402
from device_runners.build import build  # noqa: E402
from device_runners.rp2040_sim import Rp2040Sim  # noqa: E402
from device_runners.targets import get_target  # noqa: E402

SOURCE = {"activation_bytes": "predicted:memory plan (arena + the caller's input and output buffers, if outside)",
          "stack_bytes": "measured:elf-rp2040 (deepest call chain from Reset_Handler)",
          "ram_bytes_elf": "measured:elf-rp2040 (.data + .bss + stack)",
          "flash_bytes_m0plus": "measured:elf-rp2040 (whole image)",
          "generic_kernels": "measured:elf-rp2040 (whole image, the generic kernels in place of the cortex-m0plus library)",
          "zero_wait_cycles": "measured:rp2040-sim (zero-wait memory, one random input; I/O in the arena only)",
          "tflm": "measured:TFLM host interpreter, print_allocations (arena head, total)"}


def measure(tflite: bytes, name: str, scratch: Path) -> dict:
    """Our memory and flash for one .tflite model, input and output in the arena and in the
    caller's buffers, against TFLM's arena."""
    graph = import_tflite(tflite, name=name)
    tflm = tflm_arena(tflite)
    row: dict = {"name": name, "tflm_arena_head_bytes": tflm.head, "tflm_arena_total_bytes": tflm.total}
    for io in IO_MODES:
        start = time.perf_counter()
        generated = generate_c(graph, scratch / io / "src", io=io)
        firmware = build(scratch / io / "src", "rp2040", cache_dir=scratch / "cache")
        seconds = time.perf_counter() - start
        generic = scratch / io / "generic"
        shutil.copytree(scratch / io / "src", generic)
        for library in get_target("rp2040").kernel_libraries:
            shutil.rmtree(generic / library)
        baseline = build(generic, "rp2040", cache_dir=scratch / "cache")
        ours = generated.activation_bytes
        row[io] = {"arena_bytes": generated.arena_bytes, "caller_buffer_bytes": ours - generated.arena_bytes,
                   "activation_bytes": ours, "stack_bytes": firmware.stack_bytes,
                   "ram_bytes_elf": firmware.ram_bytes, "flash_bytes_m0plus": firmware.flash_bytes,
                   "generic_kernels": {"flash_bytes_m0plus": baseline.flash_bytes, "stack_bytes": baseline.stack_bytes},
                   "ratio_to_tflm_head": round(ours / tflm.head, 3), "build_seconds": round(seconds, 3)}
        if io == "arena":
            x = np.random.default_rng(0).integers(-128, 128, generated.input_size).astype(np.int8)
            fast, slow = (Rp2040Sim(b.elf_path).run(x) for b in (firmware, baseline))
            if not np.array_equal(fast.output, slow.output):
                raise AssertionError(f"{name}: the cortex-m0plus and generic kernels' outputs differ")
            row[io]["zero_wait_cycles"] = fast.zero_wait_cycles
            row[io]["generic_kernels"]["zero_wait_cycles"] = slow.zero_wait_cycles
    return row


def geometric_mean(values: list[float]) -> float:
    return math.exp(statistics.mean(math.log(v) for v in values))


def summary(rows: list[dict]) -> dict:
    result = {}
    for io in IO_MODES:
        ratios = [r[io]["ratio_to_tflm_head"] for r in rows]
        result[io] = {"geomean_ratio_to_tflm_head": round(geometric_mean(ratios), 3),
                      "max_ratio_to_tflm_head": max(ratios),
                      "models_above_0.85": [r["name"] for r in rows if r[io]["ratio_to_tflm_head"] > 0.85],
                      "total_flash_bytes_m0plus": sum(r[io]["flash_bytes_m0plus"] for r in rows),
                      "total_flash_bytes_m0plus_generic_kernels":
                          sum(r[io]["generic_kernels"]["flash_bytes_m0plus"] for r in rows),
                      "models_flash_above_generic_kernels":
                          [r["name"] for r in rows
                           if r[io]["flash_bytes_m0plus"] > r[io]["generic_kernels"]["flash_bytes_m0plus"]]}
        if io == "arena":  # zero-wait cycles the cortex-m0plus kernels save per byte of flash they add
            result[io]["cycles_saved_per_added_byte"] = {
                r["name"]: round((r[io]["generic_kernels"]["zero_wait_cycles"] - r[io]["zero_wait_cycles"])
                                 / (r[io]["flash_bytes_m0plus"] - r[io]["generic_kernels"]["flash_bytes_m0plus"]), 1)
                for r in rows if r[io]["flash_bytes_m0plus"] > r[io]["generic_kernels"]["flash_bytes_m0plus"]}
    return result


def zoo(zoo_dir: Path) -> list[dict]:
    rows = []
    for name in model_zoo.SUPPORTED:
        with tempfile.TemporaryDirectory() as scratch:
            rows.append(measure(model_zoo.tflite_bytes(name, zoo_dir), name, Path(scratch)))
    return rows


def front(run: Path) -> list[dict]:
    experiment = load_run(run)
    rows = []
    for record in pareto_front(read_records(open_study(experiment)), experiment.objectives):
        with tempfile.TemporaryDirectory() as scratch:
            tflite = model_path(experiment.run_dir, record.number).read_bytes()
            rows.append(measure(tflite, f"trial_{record.number}", Path(scratch)))
    return rows


def main(run: Path = ROOT / "runs" / "spectral", zoo_dir: Path | None = None) -> dict:
    with tempfile.TemporaryDirectory() as converted:
        models = zoo(Path(zoo_dir or converted))
    result = {"source": SOURCE, "target": "rp2040 (cortex-m0plus)", "zoo": models, "zoo_summary": summary(models)}
    if (run / "study.db").exists():
        points = front(run)
        result["front"] = {"run": str(run.relative_to(ROOT) if run.is_relative_to(ROOT) else run),
                           "points": points, "summary": summary(points),
                           "mean_build_seconds": round(statistics.mean(p["arena"]["build_seconds"] for p in points), 3)}
    out = ROOT / "benchmarks" / "results" / "codegen.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    for r in models + result.get("front", {}).get("points", []):
        a, c = r["arena"], r["caller"]
        print(f"{r['name']:<19} TFLM head {r['tflm_arena_head_bytes']:>6}; I/O in arena {a['activation_bytes']:>6} "
              f"{a['ratio_to_tflm_head']:.3f}x flash {a['flash_bytes_m0plus']:>5} "
              f"(generic {a['generic_kernels']['flash_bytes_m0plus']:>5}) stack {a['stack_bytes']}; caller's "
              f"{c['activation_bytes']:>6} {c['ratio_to_tflm_head']:.3f}x flash {c['flash_bytes_m0plus']:>5} "
              f"stack {c['stack_bytes']}; zero-wait cycles {a.get('zero_wait_cycles')} "
              f"(generic {a['generic_kernels'].get('zero_wait_cycles')})")
    print(json.dumps(result["zoo_summary"]))
    return result


if __name__ == "__main__":
    main(*(Path(a).resolve() for a in sys.argv[1:]))
