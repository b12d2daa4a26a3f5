"""`autotune import model.tflite --compress`: a storage per weight tensor for the user's own int8
model, chosen from a measured flash/RAM/latency front; the outputs stay TFLite Micro's."""
import os
import subprocess

import numpy as np
import pytest
import yaml

import model_zoo
from autotune.codegen import integer_core
from autotune.compress.lossless import StoragePoint, choose_point, configurations
from autotune.compress.report import weight_rows
from autotune.compress.storage import weight_tensors
from autotune.ir.graph import WeightEncoding
from autotune.ir.tflite_import import import_tflite
from autotune.lowering import lower
from autotune.profile import TEST_VECTORS
from autotune.tflm import tflm_outputs
from cost_models.analytic import DECODER_FLASH
from tiny import cli

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")


@pytest.mark.slow
def test_import_compress_keeps_the_outputs_and_saves_flash(zoo_dir, tmp_path):
    tflite = model_zoo.pruned_mlp(zoo_dir)
    (tmp_path / "mlp.tflite").write_bytes(tflite)
    proc = cli("import", "mlp.tflite", "--compress", "--max-latency-increase", "1000", "--max-ram-increase",
               "100000", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "latency predicted:analytic-rp2040" in proc.stdout and "flash and RAM measured:elf-rp2040" in proc.stdout
    bundle = tmp_path / "bundles" / "mlp"
    card = yaml.safe_load((bundle / "model_card.yaml").read_text())
    search = card["storage_search"]
    plain, chosen = search["points"][0], search["points"][search["chosen"]]
    assert plain["storages"] == "plain" and plain["on_front"]
    assert chosen["on_front"] and chosen["flash_bytes"] < plain["flash_bytes"]  # the limits allow it
    assert chosen["flash_bytes"] == card["measured"]["rp2040"]["flash_bytes"]  # the bundle is that point
    assert chosen["ram_bytes"] == card["measured"]["rp2040"]["ram_bytes"]
    assert len({p["storages"] for p in search["points"]}) == len(search["points"]) >= 3
    report = (bundle / "memory_report.md").read_text().split("## Weight storage by layer")[1]
    assert f"| {chosen['storages'].split(': ')[1]}" in report  # the dense layer decoded, not the plain array
    # outputs identical: the C (host, rp2040-sim) gives the executor's, which are TFLite Micro's for the original
    host = subprocess.run(["make", "-C", str(bundle), "host"], capture_output=True, text=True)
    assert "test vectors: 20 of 20 match" in host.stdout, host.stdout + host.stderr
    vectors = np.load(bundle / TEST_VECTORS)
    assert np.array_equal(tflm_outputs(tflite, vectors["inputs"]).reshape(vectors["expected"].shape),
                          vectors["expected"])
    assert card["simulated"]["rp2040"]["source"].startswith("measured:rp2040-sim")
    assert "CRC-32" not in card["simulated"]["rp2040"]["source"]  # warm: checked by the first run only
    assert "the first inference after reset (each weight blob's CRC-32" in card["simulated"]["apollo5"]["source"]
    # with the default limits (+5 % latency, +100 B RAM) the decoders' scratch rules these points out
    points = [StoragePoint(p["how"], () if p["storages"] == "plain" else ((0, WeightEncoding("coded")),),
                           p["flash_bytes"], p["ram_bytes"], p["latency_ms"], p["flash_source"], p["latency_source"])
              for p in search["points"]]
    assert choose_point(points, 5.0, 100) is points[0]
    assert choose_point(points, 1000.0, 100000).flash_bytes == chosen["flash_bytes"]


def test_choose_point_takes_the_smallest_flash_within_the_limits():
    def point(flash, ram, latency, coded=True):
        return StoragePoint("p", ((0, WeightEncoding("coded")),) if coded else (), flash, ram, latency,
                            "measured:elf-rp2040", "predicted:analytic-rp2040")

    plain, slow, big_ram = point(1000, 500, 1.0, coded=False), point(600, 500, 1.2), point(500, 700, 1.0)
    good = point(800, 580, 1.04)
    assert choose_point([slow, plain, big_ram, good], 5.0, 100) is good
    assert choose_point([plain, slow, big_ram, good], 25.0, 100) is slow
    assert choose_point([plain, slow, big_ram], 5.0, 100) is plain
    assert choose_point([slow, big_ram, good], 5.0, 100) is big_ram  # the plain arrays did not fit


@pytest.mark.parametrize("args, message", [
    (["--max-ram-increase", "10"], "--max-ram-increase: applies with --compress"),
    (["--compress", "--max-latency-increase", "-1"], "--max-latency-increase must be a number >= 0"),
    (["--compress", "--max-latency-increase", "nan"], "--max-latency-increase must be a number >= 0"),
])
def test_compress_flag_errors_are_one_line(args, message, tmp_path):
    (tmp_path / "m.tflite").write_bytes(b"TFL3 not a model")
    proc = cli("import", "m.tflite", *args, cwd=tmp_path)
    assert proc.returncode == 2 and proc.stderr.strip() == f"autotune: error: {message}", proc.stderr
    assert not (tmp_path / "bundles").exists()


def test_compress_reports_a_bad_out_or_inputs_before_its_storage_search(zoo_dir, tmp_path):
    """The storage search builds about eight firmwares: bad input is refused before it starts."""
    (tmp_path / "mlp.tflite").write_bytes(model_zoo.pruned_mlp(zoo_dir))
    (tmp_path / "taken").write_text("a file")
    np.save(tmp_path / "x.npy", np.zeros((3, 7), np.float32))  # not the model's input shape
    for args, message in ((["--out", "taken"], "autotune: error: taken: taken is a file"),
                          (["--inputs", "x.npy"], "autotune: error: x.npy")):
        proc = cli("import", "mlp.tflite", "--compress", *args, cwd=tmp_path)
        assert proc.returncode == 2 and proc.stderr.startswith(message), proc.stderr
        assert proc.stdout == ""  # no storage front printed: the search never ran
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mlp.tflite", "taken", "x.npy"]


def test_compress_of_a_corrupt_model_names_the_file(tmp_path):
    (tmp_path / "m.tflite").write_bytes(b"TFL3 not a model")
    proc = cli("import", "m.tflite", "--compress", cwd=tmp_path)
    assert proc.returncode == 2 and proc.stderr.startswith("autotune: error: m.tflite") \
        and len(proc.stderr.strip().splitlines()) == 1, proc.stderr


def test_a_weight_row_longer_than_a_blob_holds_stays_plain():
    """A Fashion-MNIST CNN whose dense layer reads a flattened 28 x 28 x 84 map: rows of 65,856
    weights, more than a blob's header can describe (65,535). That tensor keeps its plain array,
    the convolution's is still searched, and the memory report lists no storage for it."""
    import tf_keras
    from tf_keras import layers as L

    from autotune.data.public import _idx
    from autotune.quantize import to_int8_tflite

    x = (_idx("t10k-images-idx3-ubyte.gz")[:32, ..., None] / 255).astype(np.float32)
    tf_keras.utils.set_random_seed(0)
    i = tf_keras.Input((28, 28, 1))
    h = L.Flatten()(L.Conv2D(84, 3, padding="same", activation="relu")(i))
    model = tf_keras.Model(i, L.Dense(10)(h))
    kernel, bias = model.layers[-1].get_weights()
    kernel[np.abs(kernel) < np.quantile(np.abs(kernel), 0.9)] = 0  # pruned: it would compress
    model.layers[-1].set_weights([kernel, bias])
    graph = integer_core(import_tflite(to_int8_tflite(model, x), "fm_long_rows"))
    conv, dense = weight_tensors(graph)
    assert graph.tensor(dense).shape == (10, 65856)
    stored = [dict(encodings) for _, encodings in configurations(graph, DECODER_FLASH)]
    assert stored[0] == {} and all(dense not in e for e in stored)
    rows = {r.tensor: r for r in weight_rows(lower(graph))}
    long_row = rows[graph.tensor(dense).name.split(";")[0]]
    assert (long_row.storage, long_row.stored_bytes, long_row.alternatives) == ("none", 658560, ())
    assert rows[graph.tensor(conv).name.split(";")[0]].alternatives  # the convolution's storages are listed


@pytest.mark.slow
def test_import_compress_names_the_storages_that_do_not_fit(tmp_path):
    """A Fashion-MNIST CNN with a 301,056-weight dense layer pruned to 90 % zeros: the storages
    that decode the whole tensor into the arena need more than the rp2040's 264 KB of SRAM. They
    are listed, with what they need, in the output and the card; palette, decoded one filter at a
    time, fits and is chosen."""
    import tf_keras
    from tf_keras import layers as L

    from autotune.data.public import _idx
    from autotune.quantize import to_int8_tflite

    x = (_idx("t10k-images-idx3-ubyte.gz")[:32, ..., None] / 255).astype(np.float32)
    tf_keras.utils.set_random_seed(3)
    i = tf_keras.Input((28, 28, 1))
    h = L.Flatten()(L.Conv2D(24, 3, padding="same", activation="relu")(i))
    model = tf_keras.Model(i, L.Dense(10)(L.Dense(16, activation="relu")(h)))
    kernel, bias = model.layers[3].get_weights()
    kernel[np.abs(kernel) < np.quantile(np.abs(kernel), 0.9)] = 0
    model.layers[3].set_weights([kernel, bias])
    (tmp_path / "fm.tflite").write_bytes(to_int8_tflite(model, x))
    proc = cli("import", "fm.tflite", "--compress", "--max-latency-increase", "1000", "--max-ram-increase", "100000",
               "--vectors", "2", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "rle0 where it is smaller: does not fit rp2040: needs 312 KB RAM before the stack, 264 KB SRAM" \
        in proc.stdout, proc.stdout
    search = yaml.safe_load((tmp_path / "bundles" / "fm" / "model_card.yaml").read_text())["storage_search"]
    unfit = {u["how"] for u in search["does_not_fit"]}
    assert {"sparse where it is smaller", "lz4 where it is smaller"} <= unfit
    assert not unfit & {p["how"] for p in search["points"]}
    chosen = search["points"][search["chosen"]]["storages"]
    assert chosen.endswith("/MatMul: palette") and "," not in chosen, chosen  # the large dense layer alone
