"""The corruption corpus, fast subset (the whole is benchmarks/bench_import_corpus.py): about 150
corrupted copies of four models. None may escape the importer as a traceback, crash or hang; every
refusal is one line naming the model; every accepted one equals the TFLite Micro interpreter on
20 inputs and generates C (see tests/corruption.py)."""
from __future__ import annotations

import subprocess

import numpy as np
import pytest

import model_zoo
from autotune import executor
from autotune.codegen import generate_c
from autotune.ir.tflite_import import import_tflite
from corruption import TflmWorker, Variant, check, cli_refusal, variants
from device_runners.build import build_host

MODELS = ("dense", "conv1d", "depthwise", "pools")
PER_MODEL = 38

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def corpus(zoo_dir) -> list[tuple[Variant, object]]:
    worker = TflmWorker()
    try:
        return [(v, check(v, worker)) for name in MODELS
                for v in variants(model_zoo.tflite_bytes(name, zoo_dir), name, PER_MODEL, seed=len(name))]
    finally:
        worker.close()


def test_every_variant_is_refused_cleanly_or_runs_as_tflm(corpus):
    problems = [f"{o.variant}: {o.problem}" for _, o in corpus if o.problem]
    assert not problems, "\n".join(problems)
    results = [o.result for _, o in corpus]
    assert len(results) >= 150 and results.count("accepted") >= 10 and results.count("refused") >= 50
    assert {v.mutation for v, _ in corpus} >= {"byte_flip", "truncation", "field_shape", "field_scale",
                                               "field_zero_point", "field_option"}


def test_the_cli_refuses_with_exit_2_and_leaves_nothing(corpus, tmp_path):
    """One refused variant of each of three kinds through `autotune import`."""
    chosen = {}
    for v, o in corpus:
        if o.result == "refused" and v.mutation in ("truncation", "field_shape", "field_zero_point"):
            chosen.setdefault(v.mutation, v)
    assert len(chosen) == 3
    for v in chosen.values():
        assert cli_refusal(v, tmp_path) is None, v.name


def test_accepted_variants_run_as_c(corpus, tmp_path):
    """The generated C of two accepted corrupted models (ASan/UBSan) equals the executor."""
    accepted = [v for v, o in corpus if o.result == "accepted" and v.mutation != "byte_flip"][:2]
    assert len(accepted) == 2
    for k, v in enumerate(accepted):
        graph = import_tflite(v.data, v.name)
        generated = generate_c(graph, tmp_path / f"c{k}")
        exe = build_host(generated.out_dir, tmp_path / f"model{k}", sanitize=True)
        shape = graph.tensor(graph.inputs[0]).shape
        x = np.random.default_rng(k).integers(-128, 128, (20, *shape[1:])).astype(np.int8)
        proc = subprocess.run([str(exe)], input=x.tobytes(), capture_output=True, timeout=60)
        assert proc.returncode == 0, proc.stderr.decode(errors="replace")[-2000:]
        want = executor.run(graph, x).reshape(20, -1)
        np.testing.assert_array_equal(np.frombuffer(proc.stdout, np.int8).reshape(20, -1), want, err_msg=v.name)
