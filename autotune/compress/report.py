"""Per weight tensor of a kernel plan: its entropy, the bound it sets, what each storage achieves,
decode cycles and scratch, and the storage chosen (the bundle's memory report, benchmarks)."""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass

from autotune.codecs import entropy_bits, entropy_bound_bytes
from autotune.codecs.auto import choose, load_cycle_model
from autotune.codecs.base import unsplittable
from autotune.escape import one_line
from autotune.ir.kernel_plan import KernelPlan


@dataclass(frozen=True)
class WeightRow:
    call: int  # the kernel call that reads the tensor
    tensor: str
    elements: int
    entropy_bits: float  # per weight, empirical, order 0
    bound_bytes: float  # elements x entropy / 8
    storage: str  # what the plan stores it as: "none" (plain int8 array) or a storage
    stored_bytes: int
    decode_cycles: float  # per inference, predicted (0 for the plain array)
    scratch_bytes: int  # of its decoder call: the decoded tensor and the decoder's work memory
    alternatives: tuple[tuple[str, int, float], ...]  # (storage and params, bytes, predicted cycles)
    source: str  # of the decode cycles


def weight_rows(plan: KernelPlan) -> list[WeightRow]:
    rows = []
    for i, call in enumerate(plan.calls):
        for w in call.weights:
            tensor = plan.graph.tensor(w.tensor)
            if tensor.dtype != "int8" or w.format == "coded":
                continue
            # every storage that holds the values; none where a row is longer than a blob's
            considered = choose(tensor.data).considered if unsplittable(tensor.data) is None else ()
            decoder = next((d for d in plan.calls if d.decodes and d.decodes.tensor == w.tensor), None)
            if decoder is not None:
                enc = decoder.decodes.encoded
                label = enc.storage + "".join(f" {k}={v}" for k, v in enc.params)
                cycles = next((c for s, b, c in considered if s == label and b == enc.bytes), None)
                stored, scratch = enc.bytes, decoder.scratch_bytes
            else:
                label, cycles, stored, scratch = "none", 0.0, w.stored_bytes, 0
            rows.append(WeightRow(i, tensor.name.split(";")[0], tensor.size, round(entropy_bits(tensor.data), 3),
                                  round(entropy_bound_bytes(tensor.data), 1), label, stored,
                                  cycles if cycles is not None else float("nan"), scratch, considered,
                                  load_cycle_model().source))
    return rows


COLUMNS = ("call", "tensor", "weights", "entropy (bits)", "bound (bytes)", "stored as", "bytes", "decode cycles",
           "scratch (bytes)", "every storage (bytes)")


def row_cells(r: WeightRow) -> list[str]:
    """One row's cells, in COLUMNS order (the markdown report and the dashboard)."""
    every = ", ".join(f"{s} {b}" for s, b, _ in r.alternatives)
    return [str(r.call), one_line(r.tensor[-40:]), str(r.elements), str(r.entropy_bits), str(r.bound_bytes),
            r.storage, str(r.stored_bytes), f"{r.decode_cycles:.0f}", str(r.scratch_bytes), every]


def format_rows(rows: list[WeightRow]) -> list[str]:
    """A markdown table of the rows."""
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    lines += ["| " + " | ".join(c.replace("|", "_") for c in row_cells(r)) + " |" for r in rows]
    return lines


def table_note(rows: list[WeightRow]) -> str:
    """What the table's columns mean, and where its decode cycles come from."""
    return ("Entropy: of the tensor's int8 values (order 0); bound: no order-0 lossless storage holds them in "
            "fewer payload bytes. Every storage: bytes of each storage that can hold the values (a blob with "
            "its 12-byte header and CRC-32). Decode cycles per inference, "
            + (rows[0].source if rows else "predicted") + "; scratch: the decoder call's, planned in the arena.")


def rows_to_json(rows: list[WeightRow]) -> list[dict]:
    """The rows as JSON values (unknown decode cycles as null, not NaN)."""
    return [{**asdict(r), "decode_cycles": None if math.isnan(r.decode_cycles) else r.decode_cycles} for r in rows]


def rows_from_json(items: list[dict]) -> list[WeightRow]:
    """Rows as rows_to_json wrote them (a run's exports.json)."""
    return [WeightRow(**{**d, "alternatives": tuple(tuple(a) for a in d["alternatives"]),
                         "decode_cycles": float("nan") if d["decode_cycles"] is None else d["decode_cycles"]})
            for d in items]
