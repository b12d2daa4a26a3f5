"""The whole corruption corpus (tests/corruption.py): corrupted copies of eight test models, each
imported and judged; what TFLM itself does with the refused ones; a sample of refusals through
`autotune import` (exit 2, one line, no bundle folder) and a sample of accepted ones as generated
C under ASan/UBSan against the executor.
Writes benchmarks/results/import_corpus.json: counts by model, mutation and outcome, and every
problem (there should be none)."""
from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

import model_zoo  # noqa: E402
from autotune import executor  # noqa: E402
from autotune.codegen import generate_c  # noqa: E402
from autotune.ir.tflite_import import import_tflite  # noqa: E402
from corruption import TflmWorker, check, cli_refusal, variants  # noqa: E402
from device_runners.build import build_host  # noqa: E402

MODELS = ("dense", "conv1d", "depthwise", "pools", "residual", "activations", "arithmetic", "slices")
PER_MODEL = 130
CLI_SAMPLE = 24  # refusals run through the command line
C_SAMPLE = 24  # accepted variants built and run as C


def _c_matches(data: bytes, name: str, scratch: Path) -> str | None:
    graph = import_tflite(data, name)
    generated = generate_c(graph, scratch / "c")
    exe = build_host(generated.out_dir, scratch / "model", sanitize=True)
    shape = graph.tensor(graph.inputs[0]).shape
    x = np.random.default_rng(0).integers(-128, 128, (20, *shape[1:])).astype(np.int8)
    proc = subprocess.run([str(exe)], input=x.tobytes(), capture_output=True, timeout=120)
    if proc.returncode != 0:
        return f"C exits {proc.returncode}: {proc.stderr.decode(errors='replace')[-300:]}"
    if not np.array_equal(np.frombuffer(proc.stdout, np.int8).reshape(20, -1), executor.run(graph, x).reshape(20, -1)):
        return "the C differs from the executor"
    return None


def main() -> dict:
    from autotune.capture import import_tensorflow

    import_tensorflow()
    start = time.perf_counter()
    worker = TflmWorker()
    corpus = []
    with tempfile.TemporaryDirectory() as cache:
        for name in MODELS:
            model = model_zoo.tflite_bytes(name, Path(cache))
            corpus += [(v, check(v, worker)) for v in variants(model, name, PER_MODEL, seed=1000 + len(name))]
    # what TFLM itself does with the variants refused here (one input of zeros)
    tflm_on_refused = Counter(worker.run(v.data, None)[0] for v, o in corpus if o.result == "refused")
    worker.close()
    check_seconds = time.perf_counter() - start
    problems = [f"{o.variant}: {o.problem}" for _, o in corpus if o.problem]

    refused = [v for v, o in corpus if o.result == "refused" and not o.problem]
    accepted = [v for v, o in corpus if o.result == "accepted" and not o.problem]
    rng = np.random.default_rng(0)
    for k in rng.choice(len(refused), min(CLI_SAMPLE, len(refused)), replace=False):
        with tempfile.TemporaryDirectory() as tmp:
            if (problem := cli_refusal(refused[k], Path(tmp))) is not None:
                problems.append(f"{refused[k].name} (autotune import): {problem}")
    for k in rng.choice(len(accepted), min(C_SAMPLE, len(accepted)), replace=False):
        with tempfile.TemporaryDirectory() as tmp:
            if (problem := _c_matches(accepted[k].data, accepted[k].name, Path(tmp))) is not None:
                problems.append(f"{accepted[k].name} (generated C): {problem}")

    outcomes = Counter((o.mutation, o.result) for _, o in corpus)
    result = {
        "variants": len(corpus),
        "models": {name: PER_MODEL for name in MODELS},
        "refused": sum(o.result == "refused" for _, o in corpus),
        "accepted": sum(o.result == "accepted" for _, o in corpus),
        "by_mutation": {m: {r: n for (mm, r), n in sorted(outcomes.items()) if mm == m}
                        for m in sorted({m for m, _ in outcomes})},
        "tflm_on_accepted": dict(Counter(o.tflm for _, o in corpus if o.result == "accepted")),
        "tflm_on_refused": dict(tflm_on_refused),
        "cli_refusals_checked": min(CLI_SAMPLE, len(refused)),
        "accepted_built_as_c": min(C_SAMPLE, len(accepted)),
        "problems": problems,
        "seconds": round(time.perf_counter() - start, 1),
        "check_seconds": round(check_seconds, 1),
    }
    out = ROOT / "benchmarks" / "results" / "import_corpus.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"{result['variants']} variants: {result['refused']} refused (TFLM on them: {result['tflm_on_refused']}), "
          f"{result['accepted']} accepted (TFLM: {result['tflm_on_accepted']}), {len(problems)} problems, "
          f"{result['seconds']} s")
    for p in problems:
        print(" ", p)
    return result


if __name__ == "__main__":
    main()
