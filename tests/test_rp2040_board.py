"""The RP2040 board path: boot2 and UF2, the board protocol, and the board runner end to end.

The board is rp2040js (Wokwi's RP2040 emulator) booting the bundle's own firmware.uf2 from boot2
at 0x10000000, its UART0 on a pseudo-terminal that the runner opens with pyserial as it would a
Pico's port (device_runners.rp2040js_runner.Rp2040jsBoard). Nothing is mocked: the firmware
sets the clocks, the UART and SysTick through the emulated peripherals and answers real frames.
"""
from __future__ import annotations

import csv
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest
import serial
import yaml

import model_zoo
from c_model import write_c_model
from autotune import executor
from autotune.cli import main
from autotune.export import StorageLimits, import_model
from autotune.ir.tflite_import import import_tflite
from autotune.profile import profile_bundle
from device_runners import boot2, uf2
from device_runners.board_protocol import BoardClient, BoardError, frame
from device_runners.build import build
from device_runners.rp2040js_runner import Rp2040js, Rp2040jsBoard
from device_runners.runners import open_runner
from tiny import cli

ZOO_MODELS = ("conv1d", "depthwise", "ds_cnn")  # 1D, depth multiplier 2, 2D
VECTORS = 20


def test_checked_in_boot2_is_the_assembled_source():
    """rp2040_boot2_padded.S is generated: it must be what the source assembles to today."""
    fresh = boot2.assemble()
    text = boot2.PADDED.read_text()
    assert text == boot2.padded_source(fresh)
    assert len(fresh) == 256
    assert int.from_bytes(fresh[252:], "little") == uf2.crc32_mpeg2(fresh[:252])
    assert uf2.crc32_mpeg2(b"123456789") == 0x0376E6E7  # the CRC-32/MPEG-2 check value


def test_uf2_holds_the_elf_and_the_checker_catches_a_corrupt_boot2(zoo_dir, tmp_path):
    _, _, firmware = model_zoo.firmware("dense", zoo_dir, tmp_path)
    data = firmware.uf2_path.read_bytes()
    image = uf2.check(data)
    assert image.base == 0x10000000 and image.blocks == len(data) // 512
    assert image.data[:256] == boot2.assemble()
    assert image.initial_sp == 0x20042000 and image.reset_handler & 1
    assert struct.unpack_from("<I", data, 28)[0] == 0xE48BFF56  # the RP2040 family id

    corrupt = bytearray(data)
    corrupt[32 + 100] ^= 0x01  # one bit of boot2's code, in the first block's payload
    with pytest.raises(uf2.Uf2Error, match="boot2 CRC is 0x[0-9a-f]+, its first 252 bytes give"):
        uf2.check(bytes(corrupt), "bad.uf2")
    bad = tmp_path / "bad.uf2"
    bad.write_bytes(corrupt)
    proc = subprocess.run([sys.executable, uf2.__file__, "check", str(bad)], capture_output=True, text=True)
    assert proc.returncode == 2 and "boot2 CRC" in proc.stderr and "Traceback" not in proc.stderr
    # rp2040js refuses it too, as the bootrom would
    with Rp2040jsBoard(bad) as board:
        pass
    assert "boot2 CRC mismatch" in board.stderr

    other_family = bytearray(data)
    other_family[28:32] = struct.pack("<I", 0xADA52840)
    with pytest.raises(uf2.Uf2Error, match="block 0: family 0xada52840"):
        uf2.check(bytes(other_family))
    with pytest.raises(uf2.Uf2Error, match="not a whole number"):
        uf2.check(data[:-1])


def _long_loop_model(src: Path) -> Path:
    """About 20 M cycles: longer than SysTick's 24 bits, so the firmware's count must combine it
    with the microsecond timer."""
    return write_c_model(src, "    volatile uint32_t acc = 0;\n"
                              "    for (uint32_t i = 0; i < (uint32_t)input[0] * 500000u; i++) {\n        acc += i;\n    }\n"
                              "    output[0] = (int8_t)acc;\n    return 0;\n", 1, 1)


@pytest.mark.slow
def test_board_protocol_cycles_and_errors_on_rp2040js(tmp_path):
    firmware = build(_long_loop_model(tmp_path / "src"), "rp2040", cache_dir=tmp_path / "cache")
    x = np.array([5], np.int8)
    reference = Rp2040js(firmware.elf_path).run(x)  # rp2040js's own cycle count of the entry function
    assert reference.cycles > 1 << 24
    with Rp2040jsBoard(firmware.uf2_path) as board:
        runner = open_runner("rp2040", firmware.elf_path, port=board.port)
        result = runner.run(x)
        assert result.status == 0 and np.array_equal(result.output, reference.output)
        # SysTick and the timer, read around the call: the entry's cycles and a few of the reads'
        assert 0 <= result.cycles - reference.cycles < 100, (result.cycles, reference.cycles)
        assert result.instructions is None and runner.source.startswith("measured:rp2040 ")

        client = BoardClient(runner.serial, board.port)
        bad_crc = bytearray(frame(0x02, b"\x01"))
        bad_crc[-1] ^= 0xFF
        runner.serial.write(bytes(bad_crc))
        with pytest.raises(BoardError, match="refused the request: the frame's CRC did not match"):
            client._request(0x02, b"\x01", 0x82)  # the board answers the bad frame first...
        client._read_frame()  # ...then this one, in step again
        with pytest.raises(BoardError, match="wrong length"):
            client.invoke(b"\x01\x02")
        with pytest.raises(BoardError, match="unknown request type"):
            client._request(0x07, b"", 0x87)
        assert client.info().input_bytes == 1  # still serving
        runner.close()
    with pytest.raises(BoardError, match="no answer"):
        BoardClient(serial.serial_for_url("loop://", timeout=0.2), "loop://")._read_frame()
    assert zlib.crc32(b"") == 0  # the frame CRC is zlib's


@pytest.mark.slow
@pytest.mark.parametrize("name", ZOO_MODELS)
def test_zoo_models_on_the_board_match_the_executor(name, zoo_dir, tmp_path):
    """The model's rp2040 image booted from boot2; 20 random inputs give the reference
    executor's outputs, and the board's cycles track rp2040-sim's."""
    graph, _, firmware = model_zoo.firmware(name, zoo_dir, tmp_path)
    x = np.random.default_rng(4).integers(-128, 128, (VECTORS, *graph.tensor(graph.inputs[0]).shape[1:]))
    x = x.astype(np.int8)
    want = executor.run(graph, x).reshape(VECTORS, -1)
    sim = open_runner("rp2040-sim", firmware.elf_path, xip=False)
    with Rp2040jsBoard(firmware.uf2_path) as board:
        runner = open_runner("rp2040", firmware.elf_path, port=board.port)
        for n in range(VECTORS):
            result = runner.run(x[n])
            assert result.status == 0 and np.array_equal(result.output, want[n]), (name, n)
        # rp2040js charges one cycle less than the M0+ per PUSH {lr} / POP {pc} (about 1 %)
        assert abs(result.cycles / sim.run(x[-1]).zero_wait_cycles - 1) < 0.03
        runner.close()


@pytest.mark.slow
def test_profile_the_default_runs_knee_on_the_board(tiny_run, tmp_path):
    run, _ = tiny_run
    bundle = tmp_path / "knee"
    assert main(["export", str(run), "--pick", "knee", "--out", str(bundle)]) == 0
    with Rp2040jsBoard(bundle / "firmware" / "rp2040.uf2") as board:
        proc = cli("profile", str(bundle), "--target", "rp2040", "--port", board.port, cwd=tmp_path)
        assert proc.returncode == 0, proc.stderr[-2000:]
        assert f"{VECTORS} test vectors, every output as expected" in proc.stdout
        assert "source: measured:rp2040 (board on" in proc.stdout
        profile = profile_bundle(bundle, "rp2040", port=board.port)  # the same, in process
    assert len(profile.runs) == VECTORS and all(r.cycles > 0 and r.status == 0 for r in profile.runs)
    warm = open_runner("rp2040-sim", bundle / "firmware" / "rp2040.elf", xip=False)
    x = np.load(bundle / "test" / "test_vectors.npz")["inputs"][-1]
    assert abs(profile.runs[-1].cycles / warm.run(x).zero_wait_cycles - 1) < 0.03
    assert (bundle / "profile_rp2040.csv").is_file()


def test_profile_on_rp2040_sim_reports_each_kernel_call(zoo_dir, tmp_path):
    tflite = tmp_path / "dense.tflite"
    tflite.write_bytes(model_zoo.tflite_bytes("dense", zoo_dir))
    bundle = import_model(tflite, tmp_path / "bundle", vectors=3).path
    proc = cli("profile", str(bundle), "--target", "rp2040-sim", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "first run (cold)" in proc.stdout and "zero-wait lower bound" in proc.stdout
    rows = list(csv.DictReader((bundle / "profile_rp2040-sim.csv").open()))
    assert [r["kernel"] for r in rows] == ["at_fully_connected_s8"] * 3
    # each call matched to its kernel-plan call by symbol: op, MACs and weight bytes from the plan
    assert [(r["op"], r["macs"], r["weight_bytes"]) for r in rows] == [("0 FULLY_CONNECTED", "320", "320"),
                                                                       ("1 FULLY_CONNECTED", "128", "128"),
                                                                       ("2 FULLY_CONNECTED", "32", "32")]
    for r in rows:
        assert float(r["macs_per_cycle"]) == pytest.approx(int(r["macs"]) / int(r["cycles"]), abs=1e-3)
        assert float(r["microseconds"]) == pytest.approx(int(r["cycles"]) / 133, rel=1e-6)  # at 133 MHz
    m4 = cli("profile", str(bundle), "--target", "nano33ble-sim", "--vectors", "1", cwd=tmp_path)
    assert m4.returncode == 0 and "instructions" in m4.stdout, m4.stderr
    m55 = cli("profile", str(bundle), "--target", "apollo5-sim", cwd=tmp_path)  # firmware/apollo5-sim.elf
    assert m55.returncode == 0 and "source: measured:apollo5-sim" in m55.stdout, m55.stderr
    rows = (bundle / "profile_apollo5-sim.csv").read_text().splitlines()
    assert [r.split(",")[1] for r in rows[1:]] == ["at_fully_connected_s8"] * 3 and int(rows[1].split(",")[2]) > 0

    no_port = cli("profile", str(bundle), "--target", "rp2040", cwd=tmp_path)
    assert no_port.returncode != 0 and "needs --port" in no_port.stderr and "Traceback" not in no_port.stderr
    missing = cli("profile", str(tmp_path / "nowhere"), "--target", "rp2040-sim", cwd=tmp_path)
    assert missing.returncode == 2 and "not a bundle with firmware" in missing.stderr
    assert len(missing.stderr.strip().splitlines()) == 1


def test_profile_a_bundle_with_coded_weights(zoo_dir, tmp_path, capsys):
    """A pruned model imported with --compress: its firmware decodes a weight blob before the
    layer that reads it. The profile lowers model.tflite with the storages of the card's
    weight_storage, so each call the firmware makes is its kernel-plan call."""
    (tmp_path / "mlp.tflite").write_bytes(model_zoo.pruned_mlp(zoo_dir))
    limits = StorageLimits(max_latency_increase_pct=1000, max_ram_increase_bytes=100000)
    bundle = import_model(tmp_path / "mlp.tflite", tmp_path / "bundle", vectors=3, compress=limits).path
    card_path = bundle / "model_card.yaml"
    card = yaml.safe_load(card_path.read_text())
    [coded] = card["weight_storage"]  # the pruned layer, in the storage the search chose
    pruned = import_tflite(bundle / "model.tflite").tensor(coded["tensor"])
    assert pruned.name == coded["name"] and pruned.size == 128 * 2 * 64, coded
    assert coded["storage"] in ("rans", "rans_binned") and coded["params"]["scale_bits"] >= 8, coded

    profile = profile_bundle(bundle, "rp2040-sim")
    assert len(profile.runs) == 3
    firmware_plan = list(csv.DictReader((bundle / "profile_rp2040-sim.csv").open()))  # written with the C
    assert [(c.kernel, c.op, c.macs, c.weight_bytes) for c in profile.calls] == [
        (r["kernel"], r["op"], int(r["macs"]), int(r["weight_bytes"])) for r in firmware_plan]
    decoder, layer = profile.calls[0], profile.calls[1]
    assert decoder.kernel == f"at_decode_{coded['storage']}" and decoder.op == layer.op == "1 FULLY_CONNECTED"
    assert layer.macs == 128 * 2 * 64 and layer.weight_bytes == 0 < decoder.weight_bytes < 128 * 2 * 64 // 2
    total = profile.runs[-1].cycles  # the calls' cycles add up to the run's, but for the entry's own few
    assert 0.99 * total < sum(c.cycles for c in profile.calls) <= total

    def profile_with(entries) -> tuple[int, str]:
        card_path.write_text(yaml.safe_dump({**card, "weight_storage": entries} if entries is not None else
                                            {k: v for k, v in card.items() if k != "weight_storage"}))
        code = main(["profile", str(bundle), "--target", "rp2040-sim", "--vectors", "1"])
        err = capsys.readouterr().err
        assert len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
        return code, err

    for entry, message in (({"storage": "zstd"}, "weight_storage[0]: unknown storage 'zstd'"),
                           ({"params": {"scale_bits": 99}}, "weight_storage[0]: rans"),
                           ({"params": {"bits": "four"}}, "weight_storage[0]: expected a storage name and params"),
                           ({"storage": "bitpack", "params": {"bits": 2}}, "weight_storage[0]: bitpack cannot hold"),
                           ({"tensor": 0}, "weight_storage[0]: the model has no weight tensor 0")):
        code, err = profile_with([{**coded, **entry}])
        assert code == 2 and f"{card_path}: {message}" in err, err
    code, err = profile_with(None)  # a card from before weight_storage: the firmware is not the plain plan
    assert code == 1 and "the firmware calls at_decode_" in err and "has no weight_storage" in err, err
