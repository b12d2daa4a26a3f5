"""The C weight decoders as the tests and benchmarks build them: on the host with ASan/UBSan
(tests/codecs_c/harness_main.c), and as an rp2040 firmware that decodes embedded blobs; and the
corpus of blobs they are fed."""
from __future__ import annotations

import json
import struct
import subprocess
from pathlib import Path

import numpy as np

from elftools.elf.elffile import ELFFile

from autotune.codecs import STORAGES, Encoded, get_storage
from autotune.codecs.rans import grid_magnitudes
from autotune.codegen.writer import c_array
from autotune.codegen.kernel_library import KERNEL_DIR, copy_kernels
from device_runners.build import SANITIZE_FLAGS, WARNINGS, find_tool

HERE = Path(__file__).resolve().parent / "codecs_c"
KERNELS = KERNEL_DIR
DECODER_SOURCES = sorted(KERNELS.glob("at_decode_*.c"))
OPS = {"whole": 0, "row": 1, "buffer_size": 2}


def build_harness(out: Path) -> Path:
    """harness_main.c and every decoder, gcc -O1 with AddressSanitizer and UBSan."""
    subprocess.run([find_tool("gcc", "install gcc"), *WARNINGS, "-O1", *SANITIZE_FLAGS, "-I", str(KERNELS), "-I", str(HERE),
                    *map(str, DECODER_SOURCES), str(HERE / "decode_any.c"), str(HERE / "harness_main.c"),
                    "-o", str(out)], check=True, capture_output=True, text=True)
    return out


def request(op: str, codec: int, blob: bytes, row: int = 0, out_size: int = 0, scratch_size: int = 0) -> bytes:
    return struct.pack("<BBIIII", OPS[op], codec, row, out_size, scratch_size, len(blob)) + blob


def run_requests(harness: Path, requests: list[tuple[str, int, bytes, int, int, int]]) -> list[tuple[int, bytes]]:
    """Each (op, codec, blob, row, out_size, scratch_size) -> (result, out bytes)."""
    data = b"".join(request(*r) for r in requests)
    proc = subprocess.run([str(harness), "decode"], input=data, capture_output=True)
    assert proc.returncode == 0, proc.stderr.decode()[-3000:]
    answers, i = [], 0
    for op, *_, out_size, _ in requests:
        (result,) = struct.unpack_from("<i", proc.stdout, i)
        i += 4
        n = 0 if op == "buffer_size" else out_size
        answers.append((result, proc.stdout[i:i + n]))
        i += n
    assert i == len(proc.stdout)
    return answers


def mutate(harness: Path, seeds: list[bytes], per_seed: int, seed: int = 1) -> dict:
    """Decode `per_seed` corrupted or truncated copies of every seed; counts of return codes."""
    data = b"".join(struct.pack("<I", len(s)) + s for s in seeds)
    proc = subprocess.run([str(harness), "mutate", str(per_seed), str(seed)], input=data, capture_output=True)
    assert proc.returncode == 0, proc.stderr.decode()[-3000:]
    return json.loads(proc.stdout)


def sample_tensors(rng: np.random.Generator) -> list[np.ndarray]:
    """Small int8 tensors of every kind the storages meet: random, constant, pruned, clustered,
    low-bit, long runs."""
    pruned = rng.normal(0, 30, (8, 75)).round().clip(-128, 127).astype(np.int8)
    pruned[rng.random(pruned.shape) < 0.85] = 0
    runs = np.zeros((3, 700), np.int8)
    runs[:, ::311] = 5
    return [rng.integers(-128, 128, (6, 40), dtype=np.int8), np.full((4, 33), -7, np.int8), pruned,
            rng.choice(np.array([-90, -3, 0, 12, 77], np.int8), (5, 27)),
            rng.integers(-2, 2, (7, 9), dtype=np.int8), rng.integers(-8, 8, (16, 24), dtype=np.int8), runs,
            np.array([[127, -128, 0, 1]], np.int8), grid(rng, 7, (6, 35)), grid(rng, 1, (3, 20))]


def grid(rng: np.random.Generator, q: int, shape: tuple[int, int]) -> np.ndarray:
    """Low-bit weights: levels -q..q (more of them near 0) on the int8 grid of q levels a side."""
    levels = np.clip(rng.normal(0, q / 2, shape).round(), -q, q).astype(np.int64)
    return (np.sign(levels) * grid_magnitudes(q)[np.abs(levels)]).astype(np.int8)


def storages_for(values: np.ndarray) -> list:
    """Every storage (and parameter setting) that can hold `values`."""
    configs = [get_storage(n) for n in STORAGES if n not in ("bitpack", "heatshrink")]
    configs += [get_storage("bitpack", bits=b) for b in (1, 2, 3, 4, 7)]
    configs += [get_storage("heatshrink", window_sz2=w, lookahead_sz2=lk) for w, lk in ((4, 3), (8, 4), (11, 5))]
    configs += [get_storage("rans_binned", scale_bits=b, lead_bits=k) for b, k in ((8, 1), (13, 6))]
    return [s for s in configs if s.unfit(values.reshape(-1)) is None]


def corpus(rng: np.random.Generator) -> list[Encoded]:
    """Every storage on every sample tensor, whole and per row."""
    return [s.encode(v, per_row=pr) for v in sample_tensors(rng) for s in storages_for(v) for pr in (False, True)]


def firmware_sources(out: Path, encoded: list[Encoded], originals: list[np.ndarray], per_row: bool = False) -> str:
    """A "model" whose entry decodes each blob twice (the CRC-32 is checked on the first call),
    whole or one filter per call, and returns 1 if a decoded tensor differs from its original;
    the sources go to `out`. Returns the decoder's symbol."""
    call = encoded[0].decode_call(per_row)
    scratch = max(max(e.scratch_bytes for e in encoded), 2)
    lines = ['#include <stdint.h>', '#include "at_decode.h"', '#include "model.h"', ""]
    body = []
    for i, (e, w) in enumerate(zip(encoded, originals)):
        lines += [c_array("uint8_t", f"blob{i}_data", np.frombuffer(e.blob, np.uint8)),
                  f"static uint8_t blob{i}_checked;",
                  f"static const at_blob_t blob{i} = {{blob{i}_data, {e.bytes}u, &blob{i}_checked}};",
                  c_array("int8_t", f"expected{i}", w)]
        if per_row:
            body += [f"    for (i = 0; i < {e.rows}u; ++i) {{",
                     *[f"        err |= {call.symbol}(&blob{i}, i, out + i * {e.row_len}u, {e.row_len}u, "
                       f"(uint8_t *)scratch, {scratch}u);"] * 2, "    }"]
        else:
            body += [f"    err |= {call.symbol}(&blob{i}, out, sizeof out, (uint8_t *)scratch, {scratch}u);"] * 2
        body += [f"    for (i = 0; i < {e.elements}u; ++i) {{", f"        err |= out[i] != expected{i}[i];", "    }"]
    lines += [f"static int8_t out[{max(e.elements for e in encoded)}];",
              f"static uint16_t scratch[{(scratch + 1) // 2}];", "",
              "int model_invoke(const int8_t *input, int8_t *output)", "{", "    int err = 0;", "    uint32_t i;",
              "    (void)input;", *body, "    output[0] = (int8_t)err;", "    return err;", "}", ""]
    (out / "model.c").write_text("\n".join(lines))
    (out / "model.h").write_text("#include <stdint.h>\n#define MODEL_INPUT_SIZE 1\n#define MODEL_OUTPUT_SIZE 1\n"
                                 "int model_invoke(const int8_t *input, int8_t *output);\n")
    copy_kernels(call.c_files, out)
    return call.symbol


def decoder_code_bytes(elf_path: Path) -> int:
    """Bytes of the decoder's functions and constants in the image: symbols defined in
    at_decode_*.c (statics follow their file's STT_FILE symbol) and the library's globals."""
    total, current = 0, ""
    with open(elf_path, "rb") as f:
        for sym in ELFFile(f).get_section_by_name(".symtab").iter_symbols():
            kind, bind = sym["st_info"]["type"], sym["st_info"]["bind"]
            if kind == "STT_FILE":
                current = sym.name
            elif kind in ("STT_FUNC", "STT_OBJECT") and sym["st_size"]:
                ours = current.startswith("at_decode") if bind == "STB_LOCAL" else sym.name.startswith(
                    ("at_decode", "at_blob_", "at_crc32", "at_unpack_fields"))
                total += sym["st_size"] if ours else 0
    return total
