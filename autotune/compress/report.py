"""Per weight tensor of a kernel plan: its entropy, the bound it sets, what each storage achieves,
decode cycles and scratch, and the storage chosen (the bundle's memory report, benchmarks)."""
from __future__ import annotations

from dataclasses import dataclass

from autotune.codecs import entropy_bits, entropy_bound_bytes
from autotune.codecs.auto import choose
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
            choice = choose(tensor.data)
            decoder = next((d for d in plan.calls if d.decodes and d.decodes.tensor == w.tensor), None)
            if decoder is not None:
                enc = decoder.decodes.encoded
                label = enc.storage + "".join(f" {k}={v}" for k, v in enc.params)
                cycles = next((c for s, b, c in choice.considered if s == label and b == enc.bytes), None)
                stored, scratch = enc.bytes, decoder.scratch_bytes
            else:
                label, cycles, stored, scratch = "none", 0.0, w.stored_bytes, 0
            rows.append(WeightRow(i, tensor.name.split(";")[0], tensor.size, round(entropy_bits(tensor.data), 3),
                                  round(entropy_bound_bytes(tensor.data), 1), label, stored,
                                  cycles if cycles is not None else float("nan"), scratch, choice.considered,
                                  choice.source))
    return rows


def format_rows(rows: list[WeightRow]) -> list[str]:
    """A markdown table of the rows."""
    lines = ["| call | tensor | weights | entropy (bits) | bound (bytes) | stored as | bytes | decode cycles | "
             "scratch (bytes) | every storage (bytes) |", "|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        every = ", ".join(f"{s} {b}" for s, b, _ in r.alternatives)
        lines.append(f"| {r.call} | {one_line(r.tensor[-40:]).replace('|', '_')} | {r.elements} | {r.entropy_bits} | {r.bound_bytes} | "
                     f"{r.storage} | {r.stored_bytes} | {r.decode_cycles:.0f} | {r.scratch_bytes} | {every} |")
    return lines
