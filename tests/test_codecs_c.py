"""The C weight decoders (autotune/codegen/kernels/at_decode_*.c) against the Python encoders:
bit-exact on the host, robust to 10,000+ corrupted or truncated blobs under ASan/UBSan, in step
with the Python decoders on corrupt input, and plain C99 for the Cortex-M0+ (no library calls)."""
from __future__ import annotations

import random
import subprocess
import zlib

import heatshrink2
import numpy as np
import pytest
from codec_harness import (DECODER_SOURCES, KERNELS, build_harness, corpus, decoder_code_bytes, firmware_sources,
                           grid, mutate, run_requests)

from autotune.codecs import STORAGES, CodecError, decode, decode_row, get_storage, storage_of
from device_runners.build import WARNINGS, build, find_tool, function_stack
from device_runners.rp2040_sim import Rp2040Sim
from device_runners.targets import get_target

OK, E_ARG, E_HEADER, E_CRC = 0, -1, -2, -3


@pytest.fixture(scope="module")
def harness(tmp_path_factory):
    return build_harness(tmp_path_factory.mktemp("codecs") / "harness")


@pytest.fixture(scope="module")
def blobs():
    return corpus(np.random.default_rng(0))


def codec_id(blob: bytes) -> int:
    return storage_of(blob).codec_id


def test_c_decodes_what_python_encodes(harness, blobs):
    requests = []
    for e in blobs:
        requests += [("whole", codec_id(e.blob), e.blob, 0, e.elements, e.scratch_bytes),
                     ("buffer_size", codec_id(e.blob), e.blob, 0, 0, 0)]
        if e.per_row:
            requests += [("row", codec_id(e.blob), e.blob, r, e.row_len, e.scratch_bytes) for r in range(e.rows)]
    answers = iter(run_requests(harness, requests))
    for e in blobs:
        label = f"{e.storage} {e.params} {e.rows}x{e.row_len} per_row_layout={e.per_row_layout}"
        result, out = next(answers)
        assert (result, out) == (OK, decode(e.blob).tobytes()), label
        assert next(answers)[0] == e.scratch_bytes, label  # get_buffer_size mirrors Python
        if e.per_row:
            for r in range(e.rows):
                assert next(answers) == (OK, decode_row(e.blob, r).tobytes()), f"{label} row {r}"
    assert {e.storage for e in blobs} == set(STORAGES)


def test_c_reads_heatshrink2_streams_for_every_window(harness):
    """Raw heatshrink2 streams of arbitrary bytes, every window and lookahead, in a blob."""
    from autotune.codecs.heatshrink import Heatshrink

    rng, requests, expected = random.Random(0), [], []
    for window in range(4, 16):
        for lookahead in range(3, window):
            n = rng.randint(1, 2000)
            data = bytes(rng.choice([0, 0, 0, 1, 2, rng.randrange(256)]) for _ in range(n))
            e = Heatshrink(window, lookahead).encode(np.frombuffer(data, np.int8))
            assert heatshrink2.compress(data, window_sz2=window, lookahead_sz2=lookahead) in e.blob
            requests.append(("whole", 7, e.blob, 0, n, 0))
            expected.append((OK, data))
    assert run_requests(harness, requests) == expected


def test_bad_calls_and_the_crc(harness, blobs):
    e = next(b for b in blobs if b.storage == "rans" and b.per_row_layout)
    cid, n = codec_id(e.blob), e.elements
    bad_payload = bytearray(e.blob)
    bad_payload[-1] ^= 1
    answers = run_requests(harness, [
        ("whole", cid, e.blob, 0, n - 1, e.scratch_bytes),  # out one byte short
        ("whole", cid, e.blob, 0, n, e.scratch_bytes - 1),  # scratch one byte short
        ("whole", codec_id(e.blob) + 1, e.blob, 0, n, e.scratch_bytes),  # another storage's decoder
        ("row", cid, e.blob, e.rows, e.row_len, e.scratch_bytes),  # no such row
        ("whole", cid, bytes(bad_payload), 0, n, e.scratch_bytes),  # the CRC catches it
        ("whole", cid, e.blob[:19], 0, n, e.scratch_bytes),  # shorter than header and CRC
    ])
    assert [a[0] for a in answers] == [E_ARG, E_ARG, E_ARG, E_ARG, E_CRC, E_HEADER]
    whole = next(b for b in blobs if b.storage == "lz4" and not b.per_row_layout)
    assert run_requests(harness, [("row", 8, whole.blob, 0, whole.row_len, 0)])[0][0] == E_ARG


def test_corrupted_and_truncated_blobs_never_escape(harness, blobs):
    """ASan/UBSan abort the harness on any out-of-bounds access or undefined behaviour."""
    seeds = [e.blob for e in blobs]
    counts = mutate(harness, seeds, per_seed=-(-10_000 // len(seeds)))
    assert counts["blobs"] >= 10_000 and counts["other"] == 0, counts
    for kind in ("ok", "arg", "header", "crc", "truncated", "corrupt"):
        assert counts[kind] > 0, (kind, counts)  # the mutations reach every check


def test_c_and_python_agree_on_corrupt_blobs(harness, blobs):
    """Corrupt tables and payloads (CRC fixed so the decoders proper run): C decodes a blob if
    and only if Python does, to the same values."""
    rng = random.Random(3)
    cases = []
    for _ in range(600):
        e = rng.choice(blobs)
        b = bytearray(e.blob)
        for _ in range(rng.randint(1, 3)):
            b[rng.randrange(16, len(b) - 4) if len(b) > 20 else 5] = rng.randrange(256)
        b[-4:] = zlib.crc32(bytes(b[:-4])).to_bytes(4, "little")
        cases.append((e, bytes(b)))
    answers = run_requests(harness, [("whole", codec_id(e.blob), b, 0, e.elements, 4096) for e, b in cases])
    accepted = 0
    for (e, b), (result, out) in zip(cases, answers):
        try:
            expected = decode(b).tobytes()
        except CodecError:
            assert result < 0, f"C accepted what Python rejects: {e.storage} {b.hex()}"
            continue
        assert (result, out) == (OK, expected), f"{e.storage} {b.hex()}"
        accepted += 1
    assert 0 < accepted < len(cases)


def test_decoders_are_plain_c99_for_the_m0plus(tmp_path):
    """-Wall -Wextra -Werror -std=c99 for the Cortex-M0+, and no call outside the decoders but
    the memset/memcpy GCC emits for loops (the firmware harness has them): no malloc, no
    division or floating-point helpers from libgcc."""
    tools = get_target("rp2040").toolchain
    gcc, objdump = find_tool(tools.compiler, tools.install_hint), find_tool(tools.objdump, tools.install_hint)
    for source in DECODER_SOURCES:
        obj = tmp_path / f"{source.stem}.o"
        subprocess.run([gcc, *get_target("rp2040").cpu_flags, "-Os", *WARNINGS, "-I", str(KERNELS), "-c",
                        str(source), "-o", str(obj)], check=True, capture_output=True, text=True)
        table = subprocess.run([objdump, "-t", str(obj)], check=True, capture_output=True, text=True).stdout
        undefined = [line.split()[-1] for line in table.splitlines() if "*UND*" in line]
        assert all(u in ("memset", "memcpy") or u.startswith("at_") for u in undefined), (source.name, undefined)


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(STORAGES))
def test_decoders_on_rp2040_sim(name, tmp_path):
    """Every decoder built for the rp2040 (arm-none-eabi-gcc -Os) and run on rp2040-sim decodes
    Python's blobs, whole and one filter per call, within 1 KB of code."""
    rng = np.random.default_rng(4)
    tensors = [rng.integers(-2, 2, (6, 50), dtype=np.int8), np.where(rng.random((3, 70)) < 0.8, 0, -2).astype(np.int8)]
    if name == "rans_grid":  # it holds only levels of a grid: 2- and 4-bit weights
        tensors = [grid(rng, 1, (6, 50)), grid(rng, 7, (3, 70))]
    storage = get_storage(name, **{"bitpack": {"bits": 2}, "rans_binned": {"lead_bits": 1}}.get(name, {}))
    for per_row in (False, True):
        src = tmp_path / f"src{per_row}"
        src.mkdir()
        symbol = firmware_sources(src, [storage.encode(t, per_row=per_row) for t in tensors], tensors, per_row)
        firmware = build(src, "rp2040", cache_dir=tmp_path / "cache")
        result = Rp2040Sim(firmware.elf_path).run(np.zeros(1, np.int8))
        assert result.status == 0, f"{symbol}: the decoded tensor differs or the decoder failed"
        assert [op.kernel for op in result.ops] == [symbol] * (2 * (9 if per_row else 2))
        assert decoder_code_bytes(firmware.elf_path) <= 1024 and function_stack(firmware, symbol)[0] > 0
