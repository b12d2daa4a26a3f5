"""`make bench`: every benchmark, each writing benchmarks/results/<name>.json."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_codegen  # noqa: E402
import bench_kernels  # noqa: E402
import bench_search  # noqa: E402

if __name__ == "__main__":
    bench_search.main()
    bench_codegen.main()
    bench_kernels.main()
