"""autotune.codecs in Python: every storage round-trips random, constant, sparse and adversarial
int8 tensors (hypothesis), whole and one filter at a time; heatshrink and LZ4 streams of the
heatshrink2 and lz4 packages decode; corrupt blobs raise CodecError; the `auto` chooser."""
from __future__ import annotations

import json
import zlib

import heatshrink2
import lz4.block
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from autotune.codecs import (STORAGES, CodecError, choose, decode, decode_row, encode, entropy_bits,
                             entropy_bound_bytes, get_storage)
from autotune.codecs.auto import CYCLES_FILE, CycleModel, default_candidates, load_cycle_model
from autotune.codecs.heatshrink import Heatshrink
from autotune.codecs.rans import grid_magnitudes, grid_of
from autotune.codecs.lz4 import Lz4

SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@st.composite
def tensors(draw, levels: tuple[int, int] = (-128, 127)):
    """(values, rows): random, constant, sparse or adversarial int8 data in `levels`."""
    lo, hi = levels
    rows = draw(st.integers(1, 6))
    row_len = draw(st.integers(1, 90))
    n = rows * row_len
    kind = draw(st.sampled_from(["random", "constant", "sparse", "runs", "extremes", "periodic"]))
    value = st.integers(lo, hi)
    if kind == "random":
        data = draw(st.lists(value, min_size=n, max_size=n))
    elif kind == "constant":
        data = [draw(value)] * n
    elif kind == "sparse":  # mostly zeros (when 0 is a level), a few values anywhere
        zero = min(max(0, lo), hi)
        data = [zero] * n
        for i in draw(st.lists(st.integers(0, n - 1), max_size=max(1, n // 8))):
            data[i] = draw(value)
    elif kind == "runs":  # long runs: past RLE's 128, sparse's 255 gap, heatshrink's lookahead
        data = []
        while len(data) < n:
            data += [draw(value)] * draw(st.integers(1, 300))
        data = data[:n]
    elif kind == "extremes":
        data = draw(st.lists(st.sampled_from([lo, hi, min(max(0, lo), hi)]), min_size=n, max_size=n))
    else:  # a repeating pattern: back-references at every distance
        period = draw(st.lists(value, min_size=1, max_size=40))
        data = (period * (n // len(period) + 1))[:n]
    return np.array(data, np.int8).reshape(rows, row_len), rows


def check_round_trip(storage, values: np.ndarray, rows: int, per_row: bool) -> None:
    e = storage.encode(values, rows=rows, per_row=per_row)
    assert np.array_equal(decode(e.blob), values.reshape(rows, -1)), (storage.name, storage.params())
    assert e.bytes == len(e.blob) == e.table_bytes + e.payload_bytes
    assert e.entropy_bound_bytes == pytest.approx(entropy_bound_bytes(values))
    if e.per_row:
        for r in range(rows):
            assert np.array_equal(decode_row(e.blob, r), values.reshape(rows, -1)[r])
    else:
        with pytest.raises(CodecError):
            decode_row(e.blob, 0)


VARIABLE = ["rle0", "delta_rle", "sparse", "rans", "rans_binned", "lz4"]


@pytest.mark.parametrize("name", VARIABLE + ["dense", "palette"])
@pytest.mark.parametrize("per_row", [False, True])
@SETTINGS
@given(data=st.data())
def test_round_trip(name, per_row, data):
    values, rows = data.draw(tensors())
    storage = get_storage(name)
    if name == "palette" and len(np.unique(values)) > 128:
        values = values // 2  # 128 levels at most
    if name == "rans_binned" and np.abs(values.astype(int)).max() < 4:
        values = values.copy()
        values.flat[-1] = -100  # a magnitude of 4 or more: binning (2 lead bits) changes something
    check_round_trip(storage, values, rows, per_row)


@pytest.mark.parametrize("lead_bits", [1, 2, 3, 6])
@SETTINGS
@given(data=st.data(), scale_bits=st.integers(8, 13), per_row=st.booleans())
def test_rans_binned_round_trip(lead_bits, data, scale_bits, per_row):
    values, rows = data.draw(tensors())
    storage = get_storage("rans_binned", scale_bits=scale_bits, lead_bits=lead_bits)
    if np.abs(values.astype(int)).max() < 1 << lead_bits:
        with pytest.raises(CodecError, match="binning changes nothing"):
            storage.encode(values, rows=rows)
        return
    check_round_trip(storage, values, rows, per_row)


@SETTINGS
@given(data=st.data(), q=st.sampled_from([1, 2, 3, 7, 15, 63]), scale_bits=st.integers(8, 13),
       per_row=st.booleans())
def test_rans_grid_round_trip(data, q, scale_bits, per_row):
    """Levels of any grid, through every level pattern tensors() draws (constant, sparse, runs,
    extremes); off the grid, or on no grid smaller than the values' range, it refuses."""
    levels, rows = data.draw(tensors((-q, q)))
    magnitudes = grid_magnitudes(q)[np.abs(levels.astype(np.int64))]
    values = (np.sign(levels) * magnitudes).astype(np.int8)
    storage = get_storage("rans_grid", scale_bits=scale_bits)
    if not grid_of(values):
        with pytest.raises(CodecError, match="not on a symmetric grid"):
            storage.encode(values, rows=rows)
        return
    check_round_trip(storage, values, rows, per_row)
    assert storage.encode(values, rows=rows).blob[4] <= q  # the smallest grid that holds them


def test_grid_rans_stores_low_bit_tensors_in_less_table_and_scratch():
    """4-bit weights take 15 of the 255 values from -127 to 127: plain rANS codes a run of absent
    values between each two levels and keeps cumulative frequencies for all 255."""
    rng = np.random.default_rng(0)
    levels = np.clip(np.round(rng.laplace(0, 2, (16, 112))), -7, 7).astype(np.int64)
    w = (np.sign(levels) * grid_magnitudes(7)[np.abs(levels)]).astype(np.int8)
    plain = encode(w, "rans", scale_bits=8)
    on_grid = encode(w, "rans_grid", scale_bits=8)  # every frequency below 128: one byte each
    assert on_grid.blob[4] == 7 and np.array_equal(decode(on_grid.blob), w)
    assert on_grid.table_bytes == 16 + 2 + 15 and plain.table_bytes - on_grid.table_bytes == 14  # 14 runs
    assert on_grid.bytes - on_grid.table_bytes <= plain.bytes - plain.table_bytes  # the same coding
    assert on_grid.scratch_bytes == 2 * 15 + 3 + 7 and plain.scratch_bytes == 2 * 255 + 66
    assert choose(w).encoded.storage == "rans_grid"


def test_binned_rans_stores_wide_pruned_tensors_smaller():
    """Pruned int8 weights take most of the 256 values: plain rANS spends a frequency on each,
    binned rANS one on each magnitude class and codes the trailing bits raw."""
    rng = np.random.default_rng(0)
    w = np.round(rng.laplace(0, 25, (32, 80))).clip(-127, 127).astype(np.int8)
    w[np.abs(w) < np.quantile(np.abs(w), 0.75)] = 0  # 75 % pruned
    plain = min((encode(w, "rans", scale_bits=b) for b in range(8, 14)), key=lambda e: e.bytes)
    binned = choose(w, candidates=tuple(s for s in default_candidates() if s.name == "rans_binned")).encoded
    assert binned.bytes < 0.9 * plain.bytes and binned.table_bytes < plain.table_bytes / 3
    assert np.array_equal(decode(binned.blob), w)
    assert choose(w).encoded.storage == "rans_binned"


@pytest.mark.parametrize("bits", [1, 2, 3, 4, 7])
@SETTINGS
@given(data=st.data(), per_row=st.booleans())
def test_bitpack_round_trip(bits, data, per_row):
    values, rows = data.draw(tensors((-(1 << (bits - 1)), (1 << (bits - 1)) - 1)))
    check_round_trip(get_storage("bitpack", bits=bits), values, rows, per_row)


@SETTINGS
@given(data=st.data(), window=st.integers(4, 15), per_row=st.booleans())
def test_heatshrink_round_trip(data, window, per_row):
    values, rows = data.draw(tensors())
    lookahead = data.draw(st.integers(3, window - 1))
    check_round_trip(Heatshrink(window, lookahead), values, rows, per_row)


@SETTINGS
@given(payload=st.binary(min_size=1, max_size=3000), window=st.integers(4, 15), data=st.data())
def test_heatshrink_reads_heatshrink2_streams(payload, window, data):
    lookahead = data.draw(st.integers(3, window - 1))
    stream = heatshrink2.compress(payload, window_sz2=window, lookahead_sz2=lookahead)
    assert Heatshrink(window, lookahead).decode_chunk(None, stream, len(payload)).tobytes() == payload


@SETTINGS
@given(payload=st.binary(min_size=1, max_size=3000), mode=st.sampled_from(["default", "fast", "high_compression"]))
def test_lz4_reads_lz4_blocks(payload, mode):
    block = lz4.block.compress(payload, mode=mode, store_size=False)
    assert Lz4().decode_chunk(None, block, len(payload)).tobytes() == payload


def test_bitpack_layout_is_what_packed_kernels_read():
    """4-bit: value 2i in the low nibble of byte i, 2i+1 in the high one; each row on a byte."""
    values = np.array([[1, -2, 7], [-8, 0, 3]], np.int8)
    e = encode(values, "bitpack", per_row=True, bits=4)
    assert e.blob[12:-4] == bytes([0xE1, 0x07, 0x08, 0x03])
    two = encode(np.array([[1, -2, -1, 0, 1]], np.int8), "bitpack", bits=2)
    assert two.blob[12:-4] == bytes([0b00111001, 0b01])


def test_blob_header_and_crc():
    e = encode(np.arange(-20, 20, dtype=np.int8).reshape(4, 10), "rle0", per_row=True)
    assert e.blob[0] == 0xA7 and e.blob[1] == STORAGES["rle0"].codec_id
    assert int.from_bytes(e.blob[-4:], "little") == zlib.crc32(e.blob[:-4])
    for i in (0, 7, 25, len(e.blob) - 1):  # any flipped bit: the CRC or the header catches it
        bad = bytearray(e.blob)
        bad[i] ^= 0x10
        with pytest.raises(CodecError) as err:
            decode(bytes(bad))
        assert err.value.kind in ("crc", "header")
    with pytest.raises(CodecError, match="CRC-32 mismatch"):  # the header sizes the table, the rest is payload
        decode(e.blob[:-3])
    with pytest.raises(CodecError, match="blob of 15 bytes"):
        decode(e.blob[:15])


def test_scratch_and_self_description():
    values = np.random.default_rng(0).integers(-5, 5, (8, 30)).astype(np.int8)
    e = encode(values, "rans", per_row=True)
    assert e.scratch_bytes == 2 * 10 + 66  # values -5..4
    call = e.decode_call(per_row=True)
    assert (call.symbol, call.calls, call.out_bytes, call.scratch_bytes) == ("at_decode_rans_row", 8, 30, e.scratch_bytes)
    assert call.c_files == ("at_decode.h", "at_decode_common.c", "at_decode_rans.c")
    assert e.decode_call().out_bytes == 240 and not e.decode_call().in_place
    whole = encode(values, "lz4")
    assert not whole.per_row
    with pytest.raises(CodecError, match="per_row=True"):
        whole.decode_call(per_row=True)
    dense = encode(values, "dense")
    assert dense.per_row and dense.decode_call().in_place and dense.decode_call().payload_offset == 12
    assert dense.blob[12:-4] == values.tobytes()


def test_entropy_bound():
    assert entropy_bits(np.zeros(100, np.int8)) == 0.0
    assert entropy_bits(np.array([1, 2, 3, 4] * 8, np.int8)) == pytest.approx(2.0)
    values = np.random.default_rng(1).integers(-128, 128, 4096).astype(np.int8)
    assert 7.9 < entropy_bits(values) <= 8.0
    pruned = values * (np.arange(4096) % 10 == 0)
    e = encode(pruned, "rans")
    assert e.payload_bytes < 1.02 * e.entropy_bound_bytes + 4  # rANS: at the entropy


def test_values_a_storage_cannot_hold():
    with pytest.raises(CodecError, match="4-bit levels -8..7"):
        encode(np.array([8], np.int8), "bitpack", bits=4)
    with pytest.raises(CodecError, match="at most 128"):
        encode(np.arange(-128, 128, dtype=np.int8), "palette")
    with pytest.raises(CodecError, match="int8"):
        encode(np.zeros(4, np.int16), "dense")
    with pytest.raises(CodecError, match="rows"):
        encode(np.zeros(10, np.int8), "dense", rows=3)
    with pytest.raises(CodecError, match="unknown storage 'zip'"):
        get_storage("zip")
    with pytest.raises(CodecError, match="window_sz2"):
        get_storage("heatshrink", window_sz2=8, lookahead_sz2=8)


def test_the_fitted_cycles_cover_every_storage():
    model = load_cycle_model()
    assert model.source.startswith("predicted:codec-cycles fit (measured:rp2040-sim")
    assert set(STORAGES) - {"dense"} <= set(model.per_call)
    assert json.loads(CYCLES_FILE.read_text())["storages"]


def test_rans_takes_the_scale_that_stores_a_tensor_smallest():
    rans = tuple(s for s in default_candidates() if s.name == "rans")
    rng = np.random.default_rng(3)
    two_bit = rng.choice(np.array([-127, 0, 127], np.int8), (24, 36), p=[0.2, 0.6, 0.2])
    few = choose(two_bit, candidates=rans)  # three frequencies: one byte each at a coarse scale
    assert dict(few.encoded.params)["scale_bits"] < 12 and few.encoded.bytes < encode(two_bit, "rans").bytes
    wide = np.clip(rng.normal(0, 30, (64, 64)).round(), -127, 127).astype(np.int8)
    many = choose(wide, candidates=rans)  # about 200 values: a coarse scale codes them poorly
    assert dict(many.encoded.params)["scale_bits"] >= 11
    assert many.encoded.bytes < encode(wide, "rans", scale_bits=8).bytes


def test_auto_picks_the_smallest_within_the_budget():
    model = CycleModel("measured:test", {n: 100.0 for n in STORAGES},
                       {n: 50.0 if n == "rans" else 5.0 for n in STORAGES}, {n: 1.0 for n in STORAGES})
    rng = np.random.default_rng(2)
    pruned = (rng.normal(0, 20, (16, 64)) * (rng.random((16, 64)) < 0.1)).round().astype(np.int8)
    best = choose(pruned, model=model)
    assert best.encoded.bytes == min(b for _, b, _ in best.considered) < pruned.size
    assert len(best.considered) == 19  # all but bit packing hold these (rANS and binned rANS at 6 scales each)
    budget = best.decode_cycles - 1  # the smallest no longer fits: the next smallest that does
    second = choose(pruned, max_decode_cycles=budget, model=model)
    assert (second.encoded.storage, second.encoded.params) != (best.encoded.storage, best.encoded.params)
    assert second.decode_cycles <= budget
    assert second.encoded.bytes == min(b for _, b, c in second.considered if c <= budget)
    assert choose(pruned, max_decode_cycles=0, model=model).encoded.storage == "dense"  # read in place
    assert choose(pruned, per_row=True, model=model).encoded.per_row
