"""The C weight decoders under libFuzzer with AddressSanitizer and UBSan: at least 1,000,000
corrupted, truncated or invented blobs, no memory error.

The target (tests/codecs_c/fuzz_decode.c) runs any decoder, whole tensor or one row, on an
input; most inputs get their CRC-32 fixed first so the decoders proper are reached. The seed
corpus is every storage's blobs of tests/codec_harness.py (whole and per row). Debian's clang
builds it (`clang -fsanitize=fuzzer,address,undefined`). Writes
benchmarks/results/codecs_fuzz.json.
"""
from __future__ import annotations

import json
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from codec_harness import DECODER_SOURCES, HERE, KERNELS, corpus  # noqa: E402

from device_runners.build import WARNINGS, find_tool  # noqa: E402

RUNS = 1_000_000
RESULT = ROOT / "benchmarks" / "results" / "codecs_fuzz.json"
ARTIFACTS = ROOT / "build" / "fuzz"


def main(runs: int = RUNS) -> dict:
    clang = find_tool("clang", "install with: apt-get install -y --no-install-recommends clang libclang-rt-14-dev")
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        target = work / "fuzz_decode"
        subprocess.run([clang, *WARNINGS, "-O1", "-g", "-fsanitize=fuzzer,address,undefined",
                        "-fno-sanitize-recover=all", "-I", str(KERNELS), "-I", str(HERE), *map(str, DECODER_SOURCES),
                        str(HERE / "decode_any.c"), str(HERE / "fuzz_decode.c"), "-o", str(target)],
                       check=True, capture_output=True, text=True)
        seeds = work / "corpus"
        seeds.mkdir()
        blobs = corpus(np.random.default_rng(0))
        for i, e in enumerate(blobs):  # first byte: whole tensor (0) or row 0 (1), CRC fixed
            (seeds / f"seed{i:04d}").write_bytes(bytes([i % 2]) + e.blob)
        start = time.perf_counter()
        ARTIFACTS.mkdir(parents=True, exist_ok=True)  # a crashing input is kept there
        proc = subprocess.run([str(target), f"-runs={runs}", "-seed=1", "-max_len=8192", "-rss_limit_mb=2048",
                               f"-artifact_prefix={ARTIFACTS}/", "-print_final_stats=1", str(seeds)],
                              capture_output=True, text=True)
        seconds = time.perf_counter() - start
        log = proc.stderr
        if proc.returncode != 0:
            raise RuntimeError(f"the fuzzer found a failure (exit {proc.returncode}), input in {ARTIFACTS}:\n"
                               f"{log[-4000:]}")
    done = re.search(r"Done (\d+) runs in (\d+) second", log)
    cov = re.findall(r"cov: (\d+) ft: (\d+)", log)
    result = {"runs": int(done.group(1)) if done else None, "seconds": round(seconds, 1),
              "memory_errors": 0, "seed_blobs": len(blobs),
              "edges_covered": int(cov[-1][0]) if cov else None, "features": int(cov[-1][1]) if cov else None,
              "source": "measured: libFuzzer (Debian clang, -fsanitize=fuzzer,address,undefined) on "
                        "tests/codecs_c/fuzz_decode.c, every decoder, whole tensor and one row"}
    RESULT.parent.mkdir(parents=True, exist_ok=True)
    RESULT.write_text(json.dumps(result, indent=1) + "\n")
    print(result)
    return result


if __name__ == "__main__":
    main()
