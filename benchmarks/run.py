"""`make bench`: every benchmark, each writing benchmarks/results/<name>.json;
`make bench BENCH=name` (or `python benchmarks/run.py name ...`) runs the ones named."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_accuracy  # noqa: E402
import bench_codecs  # noqa: E402
import bench_codecs_fuzz  # noqa: E402
import bench_compression  # noqa: E402
import bench_codegen  # noqa: E402
import bench_faults  # noqa: E402
import bench_import_corpus  # noqa: E402
import bench_kernels  # noqa: E402
import bench_layers  # noqa: E402
import bench_runners  # noqa: E402
import bench_search  # noqa: E402
import bench_search_efficiency  # noqa: E402

BENCHMARKS = {"search": bench_search, "codegen": bench_codegen, "kernels": bench_kernels,
              "codecs": bench_codecs, "codecs_fuzz": bench_codecs_fuzz, "runners": bench_runners,
              "accuracy": bench_accuracy, "layers": bench_layers, "faults": bench_faults,
              "import_corpus": bench_import_corpus, "compression": bench_compression,
              "search_efficiency": bench_search_efficiency}

if __name__ == "__main__":
    names = sys.argv[1:] or list(BENCHMARKS)
    unknown = [n for n in names if n not in BENCHMARKS]
    if unknown:
        print(f"unknown benchmark {', '.join(unknown)}; valid: {', '.join(BENCHMARKS)}", file=sys.stderr)
        sys.exit(2)
    for name in names:
        BENCHMARKS[name].main()
