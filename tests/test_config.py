import subprocess
import sys
from pathlib import Path

import pytest

from autotune.config import EarlyStop, load_experiment
from autotune.errors import ConfigError
from search_spaces import Choice, FloatRange, IntRange

ROOT = Path(__file__).resolve().parents[1]


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "exp.yaml"
    path.write_text(text)
    return path


def test_default_experiment_loads():
    exp = load_experiment(ROOT / "experiments" / "spectral.yaml")
    assert exp.name == "spectral" and exp.target == "rp2040"
    assert exp.constraints.max_flash_kb == 100 and exp.constraints.max_params == 100000
    assert exp.space["blocks"] == IntRange(2, 4)
    assert exp.space["filters"] == Choice((8, 16, 32))
    assert exp.objectives == ("accuracy", "flash", "ram", "latency")
    assert exp.storage_url == f"sqlite:///{(Path('runs') / 'spectral' / 'study.db').resolve()}"


def test_minimal_experiment_takes_defaults(tmp_path):
    exp = load_experiment(write(tmp_path, "name: tiny\n"))
    assert exp.family == "spectral_cnn" and exp.sampler == "gp" and exp.workers == 1
    assert exp.starting_points and exp.early_stop == EarlyStop()
    assert exp.budget.trials == 40 and exp.space == {}


def test_float_range_and_relative_data_path(tmp_path):
    exp = load_experiment(write(tmp_path, "name: t\ndata:\n  source: npz\n  path: d.npz\n"
                                          "model:\n  family: mlp\n  space:\n    layers: {low: 1, high: 2}\n"))
    assert exp.data.path == str(tmp_path / "d.npz")
    assert exp.space["layers"] == IntRange(1, 2)
    assert not isinstance(exp.space["layers"], FloatRange)


# Each malformed YAML, and the exact pieces its message must carry: file, line, key path, problem.
MALFORMED = [
    ("name: a\nbudget:\n  trials: -3\n", ":3: budget.trials: expected an integer in [1, 1000000], got -3"),
    ("name: a\nbudget:\n  trails: 5\n", ":3: budget.trails: unknown key; expected one of: trials, timeout_minutes, epochs"),
    ("name: a\ntarget: esp32\n", ":2: target: expected one of rp2040, apollo5, nano33ble, got 'esp32'"),
    ("name: a\nconstraints:\n  max_flash_kb: lots\n", ":3: constraints.max_flash_kb: expected a number in (0, 1e+09], got 'lots'"),
    ("name: a\nmodel:\n  family: resnet\n", ":3: model.family: expected one of spectral_cnn, ds_cnn, mlp, got 'resnet'"),
    ("name: a\nmodel:\n  space:\n    filters: {low: 1, high: 4}\n",
     ":4: model.space.filters: expected a list of choices like [8, 16, 32]"),
    ("name: a\nmodel:\n  space:\n    depth: [1, 2]\n", ":4: model.space.depth: unknown key"),
    ("name: a\nmodel:\n  space:\n    kernel: [3, five]\n", ":4: model.space.kernel: expected values like [3, 5, 7, 11], got 'five'"),
    ("name: a\ndata:\n  split: [0.5, 0.5]\n", ":3: data.split: expected three positive fractions"),
    ("name: a\ndata:\n  source: csv\n", ":3: data.path: required when data.source is csv"),
    ("name: a\ncompression:\n  bitwidths: [8, 3]\n", ":3: compression.bitwidths: expected 8, 4 or 2, got 3"),
    ("name: a\ncompression:\n  codecs: [auto, zip]\n", ":3: compression.codecs: expected one of none, auto, "),
    ("name: a\ncompression:\n  sparsity: [0.0, 1.5]\n", ":3: compression.sparsity: expected a number in [0, 0.99], got 1.5"),
    ("name: a\ncompression:\n  clusters: [0, 1]\n", ":3: compression.clusters: expected 0 (none) or 2 to 64 clusters"),
    ("name: a\ncompression:\n  channel_keep: [1.0, 0]\n", ":3: compression.channel_keep: expected a number in (0, 1], got 0"),
    ("name: a\ncompression:\n  channel_keep: [0.5, 0.5]\n", ":3: compression.channel_keep: a choice is listed twice"),
    ("name: a\ncompression:\n  ratio: 4\n", ":3: compression.ratio: unknown key"),
    ("name: a\ncompression:\n  first_last_int8: 1\n", ":3: compression.first_last_int8: expected true or false, got 1"),
    ("name: a\nobjectives: [accuracy, accuracy]\n", ":2: objectives: each objective may appear once"),
    ("name: a\nworkers: 0\n", ":2: workers: expected an integer in [1, 1024], got 0"),
    ("name: a\nbudget: 5\n", ":2: budget: expected a mapping"),
    ("seed: 1\n", ": name: missing"),
    ("name: a\nbudget:\n  trials: [1\n", ": not valid YAML"),
    ("- just\n- a list\n", ": the experiment must be a YAML mapping"),
]


@pytest.mark.parametrize("text,expected", MALFORMED, ids=[str(i) for i in range(len(MALFORMED))])
def test_malformed_yaml_names_file_line_and_key(tmp_path, text, expected):
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as err:
        load_experiment(path)
    message = str(err.value)
    assert message.startswith(str(path)), message
    assert expected in message, message


def test_missing_file_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="cannot read the experiment file"):
        load_experiment(tmp_path / "nope.yaml")


def test_cli_exits_2_without_traceback(tmp_path):
    path = write(tmp_path, "name: a\nbudget:\n  epochs: 0\n")
    proc = subprocess.run([sys.executable, "-m", "autotune", "run", str(path)], capture_output=True,
                          text=True, cwd=tmp_path)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert f"autotune: error: {path}:3: budget.epochs: expected an integer in [1, 1000], got 0" in proc.stderr


def test_placement_is_one_the_target_offers(tmp_path):
    assert load_experiment(write(tmp_path, "name: t\n")).placement == "flash"
    assert load_experiment(write(tmp_path, "name: t\nplacement: sram_weights\n")).placement == "sram_weights"
    with pytest.raises(ConfigError, match=r"exp.yaml:3: placement: expected one of flash, got 'sram_weights'"):
        load_experiment(write(tmp_path, "name: t\ntarget: nano33ble\nplacement: sram_weights\n"))
