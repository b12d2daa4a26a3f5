"""Bundles: export from a real run, import of a user's model; built with the real toolchains."""
import csv
import json
import subprocess
from pathlib import Path

import numpy as np
import pytest
import yaml

import model_zoo
from autotune.cli import load_run, main
from autotune.lowering import integer_core
from autotune.export import choose_trial, read_inputs
from autotune.ir.tflite_import import import_tflite
from autotune.report.pick import PickError, pick
from autotune.report.records import pareto_front, read_records
from autotune.study import open_study
from device_runners import uf2
from device_runners.build import measure_elf
from device_runners.targets import TARGETS
from tiny import cli

pytestmark = pytest.mark.slow


def make(bundle: Path, *targets: str) -> subprocess.CompletedProcess:
    proc = subprocess.run(["make", "-C", str(bundle), *targets], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert "warning" not in (proc.stdout + proc.stderr).lower(), proc.stderr
    return proc


def elf_costs(bundle: Path, target: str) -> tuple[int, int]:
    build = bundle / "build" / target
    result = measure_elf(target, build / "firmware.elf", sorted(build.glob("*.ci")))
    return result.flash_bytes, result.ram_bytes


def test_export_knee_builds_everywhere_and_matches_the_search(tiny_run, tmp_path):
    run, _ = tiny_run
    out = tmp_path / "bundle"
    assert main(["export", str(run), "--pick", "knee", "--out", str(out)]) == 0
    for name in ("Makefile", "src/model.c", "src/model.h", "test/test_vectors.h", "test/test_main.c",
                 "model.tflite", "memory_report.md", "model_card.yaml", "harness/rp2040.ld"):
        assert (out / name).is_file(), name
    host = make(out, "host")
    assert "test vectors: 20 of 20 match" in host.stdout
    make(out, *TARGETS)
    # the Makefile's board image is the prebuilt one, byte for byte, and passes the UF2 checks
    made = (out / "build" / "rp2040" / "firmware.uf2").read_bytes()
    assert made == (out / "firmware" / "rp2040.uf2").read_bytes()
    assert uf2.check(made).base == 0x10000000
    for target in TARGETS:
        assert (out / "firmware" / f"{target}.elf").is_file()
    assert "pico_sdk_import.cmake" in (out / "pico_sdk" / "CMakeLists.txt").read_text()

    card = yaml.safe_load((out / "model_card.yaml").read_text())
    trial = card["provenance"]["trial"]
    row = next(r for r in csv.DictReader((run / "trials.csv").open()) if int(r["number"]) == trial)
    assert row["on_front"] == "True"
    flash, ram = elf_costs(out, "rp2040")  # the run's target
    assert float(row["flash_kb"]) * 1024 == flash and float(row["ram_kb"]) * 1024 == ram
    assert card["costs"]["flash_bytes"] == {"value": flash, "source": "measured:elf-rp2040"}
    assert card["costs"]["ram_bytes"] == {"value": ram, "source": "measured:elf-rp2040"}
    assert card["costs"]["latency_ms"] == card["search"]["latency_ms"]  # the run's prediction, same model
    assert card["costs"]["latency_ms"]["source"] == "predicted:analytic-rp2040"
    assert card["search"]["flash_bytes"] == card["costs"]["flash_bytes"]
    assert card["accuracy"]["validation"]["value"] == float(row["accuracy"])
    assert card["accuracy"]["test"]["value"] == float(row["test_accuracy"]) and card["accuracy"]["test"]["n"] == 36
    assert card["data"] == {"source": "synthetic_spectral", "samples_per_class": 40, "length": 128,
                            "split": [0.7, 0.15, 0.15], "normalize": "per_sample"}
    for target in TARGETS:
        flash, ram = elf_costs(out, target)
        assert card["measured"][target]["flash_bytes"] == flash and card["measured"][target]["ram_bytes"] == ram
        report = (out / "memory_report.md").read_text()
        assert f"## Flash and RAM by section, {target}" in report
    assert "| .text |" in report and "## Activation arena" in report and "memory plan for" in report
    assert card["quantization"]["input"]["dtype"] == "int8"
    simulated = card["simulated"]["rp2040"]
    assert simulated["source"].startswith("measured:rp2040-sim") and "XIP cache warm" in simulated["source"]
    assert simulated["zero_wait_cycles"] <= simulated["cycles"] < simulated["cold_cycles"]
    assert simulated["cold_xip_misses"] > simulated["xip_misses"]
    assert abs(simulated["latency_ms"] / card["costs"]["latency_ms"]["value"] - 1) < 0.15  # the analytic model
    m4 = card["simulated"]["nano33ble"]  # ran bit-exact on the Cortex-M4 core; no timing model yet
    assert m4["instructions"] > 0 and "latency_ms" not in m4 and "no timing model" in m4["source"]
    m55 = card["simulated"]["apollo5"]  # the apollo5 objects relinked for QEMU, timed
    assert m55["source"].startswith("measured:apollo5-sim") and m55["cycles"] > 0 and m55["latency_ms"] > 0
    assert set(card["simulated"]) == {t for t, d in TARGETS.items() if d.runners}

    # per kernel call on each simulator: in the bundle as CSV, in the run's exports and dashboard
    calls = list(csv.DictReader((out / "profile_apollo5-sim.csv").open()))
    assert sum(int(c["cycles"]) for c in calls) == pytest.approx(m55["cycles"], rel=0.01)
    conv = max((c for c in calls if "CONV_2D" in c["op"]), key=lambda c: int(c["macs"]))  # any conv kernel the knee has
    assert float(conv["macs_per_cycle"]) == pytest.approx(int(conv["macs"]) / int(conv["cycles"]), abs=1e-3)
    assert int(conv["weight_bytes"]) > 0 and "CONV_2D" in conv["op"]
    [export] = [e for e in json.loads((run / "exports.json").read_text()) if e["bundle"] == str(out.resolve())]
    assert export["trial"] == trial
    assert export["profiles"]["rp2040"]["cycles"] == simulated["cycles"]
    assert export["profiles"]["apollo5"]["calls"][0]["kernel"] == calls[0]["kernel"]
    dashboard = (run / "dashboard.html").read_text()
    assert f"trial {trial} on apollo5: {m55['cycles']:,} cycles" in dashboard and "MACs/cycle" in dashboard


@pytest.mark.parametrize("target", sorted(set(TARGETS) - {"rp2040"}))
def test_export_for_another_target_measures_that_target(target, tiny_run, tmp_path):
    """An rp2040 run exported for another target: the card's costs are that target's ELF and
    model, the run's own figures stay apart under `search`."""
    run, _ = tiny_run
    out = tmp_path / "bundle"
    assert main(["export", str(run), "--pick", "knee", "--target", target, "--out", str(out)]) == 0
    make(out, target)
    card = yaml.safe_load((out / "model_card.yaml").read_text())
    flash, ram = elf_costs(out, target)
    costs = card["costs"]
    assert costs["target"] == target
    assert costs["flash_bytes"] == {"value": flash, "source": f"measured:elf-{target}"}
    assert costs["ram_bytes"] == {"value": ram, "source": f"measured:elf-{target}"}
    assert costs["latency_ms"]["source"] == f"predicted:analytic-{target}"
    row = next(r for r in csv.DictReader((run / "trials.csv").open())
               if int(r["number"]) == card["provenance"]["trial"])
    search = card["search"]
    assert search["target"] == "rp2040" and search["flash_bytes"]["source"] == "measured:elf-rp2040"
    assert search["flash_bytes"]["value"] == float(row["flash_kb"]) * 1024 != flash
    assert search["latency_ms"]["value"] == float(row["latency_ms"]) != costs["latency_ms"]["value"]


def test_pick_queries(tiny_run):
    run, _ = tiny_run
    exp = load_run(run)
    records = read_records(open_study(exp))
    feasible = [r for r in records if r.feasible]
    best = max(feasible, key=lambda r: r.metrics["accuracy"])
    assert pick(records, exp, "max accuracy").metrics["accuracy"] == best.metrics["accuracy"]
    smallest = min(r.metrics["flash_kb"] for r in feasible)
    chosen = pick(records, exp, f"max accuracy where flash<={smallest}KB")
    assert chosen.metrics["flash_kb"] == smallest
    fastest = pick(records, exp, "min latency where accuracy>=0")
    assert fastest.metrics["latency_ms"] == min(r.metrics["latency_ms"] for r in feasible)
    assert pick(records, exp, "knee").number in {r.number for r in pareto_front(records, exp.objectives)}
    with pytest.raises(PickError, match="no feasible trial meets the conditions"):
        pick(records, exp, "max accuracy where flash<1B")
    with pytest.raises(PickError, match="unit 'ms' does not fit flash"):
        pick(records, exp, "max accuracy where flash<64ms")
    with pytest.raises(PickError, match="expected 'knee' or"):
        pick(records, exp, "best one please")
    assert choose_trial(exp, best.number, None).number == best.number


def test_export_errors_name_the_problem(tiny_run, tmp_path):
    run, _ = tiny_run
    proc = cli("export", str(run), "--trial", "99", cwd=tmp_path)
    assert proc.returncode == 1 and "there is no trial 99" in proc.stderr and "Traceback" not in proc.stderr
    proc = cli("export", str(tmp_path), cwd=tmp_path)
    assert proc.returncode == 1 and "not a run folder" in proc.stderr


# A file name (no '/' can be in one) that tries the ways out of a comment in the files a bundle holds.
HOSTILE = "evil\nCC = touch INJECTED; gcc * $(shell touch SHELLED) `touch TICKED` 'q\"??=\\"


@pytest.mark.parametrize("name", ["residual", "concat"])
def test_import_a_users_model(name, zoo_dir, tmp_path):
    """The model's file name is hostile: it goes into C comments, the Makefile, the memory report
    and the model card, escaped everywhere (the C builds with -Werror, no injected command
    runs). The test vectors are every row of the chosen array of an .npz."""
    source = tmp_path / f"{name} {HOSTILE}.tflite"
    tflite = model_zoo.tflite_bytes(name, zoo_dir)
    source.write_bytes(tflite)
    core = integer_core(import_tflite(tflite))
    shape = core.tensor(core.inputs[0]).shape[1:]
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "inputs.npz", other=np.zeros((3, *shape)), mine=rng.normal(size=(50, *shape)))
    proc = cli("import", str(source), "--inputs", str(tmp_path / "inputs.npz"), "--inputs-key", "mine", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "rp2040: flash" in proc.stdout and "measured from the ELF" in proc.stdout
    [bundle] = (tmp_path / "bundles").iterdir()  # the default folder: a safe name made from the stem
    assert bundle.name.startswith(f"{name}_evil_CC") and all(c.isalnum() or c in "._-" for c in bundle.name)
    assert "test vectors: 50 of 50 match" in make(bundle, "host").stdout
    make(bundle, *TARGETS)
    for marker in ("INJECTED", "SHELLED", "TICKED"):
        assert not list(tmp_path.rglob(marker)) and not (Path.cwd() / marker).exists(), marker
    makefile = (bundle / "Makefile").read_text().splitlines()
    assert makefile[0].startswith(f"# Generated by autotune from {name} evil_CC = touch INJECTED; gcc")
    assert not any(line.startswith("CC =") for line in makefile)
    cmake = (bundle / "pico_sdk" / "CMakeLists.txt").read_text().splitlines()
    assert cmake[0].startswith(f"# Generated by autotune from {name} evil_CC = touch INJECTED; gcc")
    assert all(line.startswith("#") for line in cmake[:6])  # the name added no line of CMake
    for generated in ("src/model.c", "src/model.h", "test/test_vectors.h"):
        text = (bundle / generated).read_text()
        assert "evil_CC" in text and "??" not in text and "$(shell touch SHELLED) `touch TICKED`" in text, generated
    card = yaml.safe_load((bundle / "model_card.yaml").read_text())
    assert card["provenance"]["imported_from"] == str(source)
    assert card["name"] == source.stem and card["provenance"]["test_vectors"].endswith("inputs.npz:mine")


def test_import_corrupt_model_is_a_clear_error(tmp_path):
    bad = tmp_path / "broken.tflite"
    bad.write_bytes(b"\x18\x00\x00\x00TFL3" + bytes(40))
    proc = cli("import", str(bad), cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr
    assert str(bad) in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "bundles").exists()


def test_npy_inputs_keep_every_row(tmp_path):
    x = np.random.default_rng(1).normal(size=(30, 1, 20))  # the model's size-1 axis may be there or not
    np.save(tmp_path / "x.npy", x)
    got = read_inputs(tmp_path / "x.npy", None, (20,))
    assert got.shape == (30, 20) and np.array_equal(got, x.reshape(30, 20))
    np.savez(tmp_path / "x.npz", x=x[:, 0])
    assert read_inputs(tmp_path / "x.npz", None, (1, 20)).shape == (30, 1, 20)


def _bad_inputs(folder: Path) -> list[tuple[list[str], str]]:
    """(arguments after --inputs, a piece of the one-line error)."""
    x = np.random.default_rng(2).normal(size=(30, 20))
    nan, big = x.copy(), x.copy()
    nan[2, 3] = np.nan
    big[4, 0] = 1e39  # finite as float64, infinite as the model's float32
    np.save(folder / "nan.npy", nan)
    np.save(folder / "big.npy", big)
    np.save(folder / "shape.npy", x[:, :19])
    np.save(folder / "words.npy", np.array(["a"] * 30))
    np.save(folder / "objects.npy", np.array([{}, None], dtype=object), allow_pickle=True)
    np.save(folder / "empty.npy", x[:0])
    np.savez(folder / "two.npz", a=x, b=x)
    (folder / "text.npy").write_text("1,2,3\n")
    return [
        (["nan.npy"], "nan.npy: 1 NaN or infinite values (the first in row 2)"),
        (["big.npy"], "big.npy: 1 NaN or infinite values (the first in row 4)"),
        (["shape.npy"], "shape.npy: inputs shaped (30, 19), the model takes (N, 20)"),
        (["words.npy"], "words.npy: inputs must be numbers, got dtype <U1"),
        (["objects.npy"], "objects.npy: cannot read a .npy array or .npz archive"),
        (["empty.npy"], "empty.npy: no inputs (shape (0, 20))"),
        (["two.npz"], "two.npz: holds a, b; choose one with --inputs-key"),
        (["two.npz", "--inputs-key", "c"], "two.npz: no array 'c' (found: a, b)"),
        (["nan.npy", "--inputs-key", "x"], "nan.npy: --inputs-key applies to an .npz archive"),
        (["text.npy"], "text.npy: cannot read a .npy array or .npz archive"),
        (["missing.npy"], "missing.npy: cannot read a .npy array or .npz archive"),
        (["shape.npy", "--vectors", "40"], "shape.npy: inputs shaped"),
        (["two.npz", "--inputs-key", "a", "--vectors", "40"], "two.npz: 30 inputs, but --vectors asks for 40"),
    ]


def test_bad_inputs_are_one_line_errors(zoo_dir, tmp_path, capsys):
    source = tmp_path / "dense.tflite"
    source.write_bytes(model_zoo.tflite_bytes("dense", zoo_dir))
    for args, expected in _bad_inputs(tmp_path):
        capsys.readouterr()
        code = main(["import", str(source), "--inputs", str(tmp_path / args[0]), *args[1:],
                     "--out", str(tmp_path / "bundle")])
        err = capsys.readouterr().err
        assert code == 2 and len(err.strip().splitlines()) == 1 and expected in err, (args, err)
        assert not (tmp_path / "bundle").exists()


def test_an_out_folder_that_is_a_file_is_a_one_line_error(zoo_dir, tmp_path, capsys):
    """--out naming a file, or a folder under one, was a NotADirectoryError traceback (exit 1);
    a folder with files in it is bad input too (exit 2), left as it was."""
    source = tmp_path / "dense.tflite"
    source.write_bytes(model_zoo.tflite_bytes("dense", zoo_dir))
    taken = tmp_path / "taken"
    taken.write_text("keep me")
    for out in (taken, taken / "deeper" / "bundle"):
        capsys.readouterr()
        code = main(["import", str(source), "--out", str(out)])
        err = capsys.readouterr().err
        assert code == 2 and len(err.strip().splitlines()) == 1, err
        assert f"{out}: {taken} is a file, not a folder; choose another --out" in err
    assert taken.read_text() == "keep me" and sorted(p.name for p in tmp_path.iterdir()) == ["dense.tflite", "taken"]
    full = tmp_path / "full"
    full.mkdir()
    (full / "notes.txt").write_text("keep me")
    capsys.readouterr()
    assert main(["import", str(source), "--out", str(full)]) == 2
    assert f"{full}: exists and is not empty; choose another --out or remove it" in capsys.readouterr().err
    assert [p.name for p in full.iterdir()] == ["notes.txt"]


def test_a_failed_bundle_leaves_nothing_behind(zoo_dir, tmp_path):
    """Test inputs of the wrong shape are refused before any folder exists (TFLite Micro, which
    checks them, can abort the process); a bundle that fails half-way (here: a model card that
    cannot be written, after the builds) leaves no bundle folder, no temporary one and no parents
    it created."""
    import numpy as np

    from autotune.bundle import write_bundle
    from autotune.ir.tflite_import import import_tflite

    model = model_zoo.tflite_bytes("dense", zoo_dir)
    graph = import_tflite(model, "dense")
    out = tmp_path / "deep" / "er" / "bundle"
    with pytest.raises(ValueError, match="input must be int8"):
        write_bundle(graph, model, out, np.zeros((2, 21), np.int8), {})
    assert list(tmp_path.iterdir()) == []
    inputs = np.zeros((1, *graph.tensor(graph.inputs[0]).shape[1:]), np.int8)
    with pytest.raises(yaml.representer.RepresenterError):
        write_bundle(graph, model, out, inputs, {"note": object()})
    assert list(tmp_path.iterdir()) == []


def test_import_a_model_too_big_for_some_targets(tmp_path):
    """A Fashion-MNIST CNN with 1.1 MB of weights fits the rp2040 (2 MB) and apollo5 (4 MB) but not
    the nano33ble (960 KB) nor apollo5-sim's QEMU image (512 KB): the bundle holds the targets it
    fits, says which it does not and by how much, and skips the simulator it cannot run on."""
    import tf_keras
    from tf_keras import layers as L

    from autotune.data.public import _idx
    from autotune.quantize import to_int8_tflite

    x = (_idx("t10k-images-idx3-ubyte.gz")[:32, ..., None] / 255).astype(np.float32)
    tf_keras.utils.set_random_seed(0)
    i = tf_keras.Input((28, 28, 1))
    h = L.Dense(60, activation="relu")(L.Flatten()(L.Conv2D(24, 3, padding="same", activation="relu")(i)))
    (tmp_path / "big.tflite").write_bytes(to_int8_tflite(tf_keras.Model(i, L.Dense(10)(h)), x))
    np.save(tmp_path / "images.npy", x[:3])
    proc = cli("import", "big.tflite", "--inputs", "images.npy", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "nano33ble: no firmware, the model does not fit: FLASH overflowed by" in proc.stdout, proc.stdout
    bundle = tmp_path / "bundles" / "big"
    card = yaml.safe_load((bundle / "model_card.yaml").read_text())
    assert set(card["measured"]) == set(TARGETS) and card["measured"]["rp2040"]["flash_bytes"] > 1_100_000
    assert card["measured"]["nano33ble"]["does_not_fit"].startswith("FLASH overflowed by")
    assert card["simulated"]["apollo5"]["source"].startswith("not run: the apollo5-sim image's FLASH overflowed by")
    assert card["simulated"]["rp2040"]["source"].startswith("measured:rp2040-sim")
    assert sorted(p.name for p in (bundle / "firmware").glob("*.elf")) == ["apollo5.elf", "rp2040.elf"]
    assert "test vectors: 3 of 3 match" in make(bundle, "host").stdout
    proc = cli("profile", str(bundle), "--target", "apollo5-sim", cwd=tmp_path)
    assert proc.returncode == 2 and "whose model does not fit apollo5-sim" in proc.stderr, proc.stderr
