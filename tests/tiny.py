"""A tiny real experiment (short signals, few samples, 2 epochs) and a way to run the CLI on it."""
import subprocess
import sys
from pathlib import Path

TINY = """\
name: {name}
seed: 3
data:
  source: synthetic_spectral
  samples_per_class: 40
  length: 128
  cv_below: 0                 # a validation split, not k-fold: keeps the tiny run fast
model:
  family: spectral_cnn
  space:
    blocks: {{low: 2, high: 2}}
    filters: [8, 16]
    kernel: [3, 5]
    pool: [2]
    dense: [8]
constraints:
  max_flash_kb: 100
  max_ram_kb: 50
  max_latency_ms: 10
  max_params: 100000
budget:
  trials: {trials}
  epochs: 2
training:
  min_steps: 150
  restarts: 0
search:
  sampler: random
"""


def tiny(tmp_path: Path, name: str = "tiny", trials: int = 4) -> Path:
    path = tmp_path / f"{name}.yaml"
    path.write_text(TINY.format(name=name, trials=trials))
    return path


def cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "autotune", *args], cwd=cwd, capture_output=True, text=True)


def run_tiny(tmp: Path, name: str = "tiny", trials: int = 4) -> tuple[Path, subprocess.CompletedProcess]:
    proc = cli("run", str(tiny(tmp, name, trials)), "--no-progress", cwd=tmp)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return tmp / "runs" / name, proc
