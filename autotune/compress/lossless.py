"""Storage search for a user's own int8 model (`autotune import --compress`): per weight tensor,
which storage holds its values in flash. Storage never changes a value, so every point computes
exactly what the model does; what changes is flash, RAM (the decoders' scratch in the arena) and
latency (decode cycles).

Each storage configuration is generated, built for the target and measured: flash and RAM from
the ELF, latency predicted by the target's analytic model (its decoder calls included).
"""
from __future__ import annotations

from dataclasses import dataclass

from autotune.codecs.auto import default_candidates
from autotune.compress.storage import storage_for, weight_tensors, with_storage
from autotune.errors import AutotuneError
from autotune.ir.graph import Graph, WeightEncoding


@dataclass(frozen=True)
class StoragePoint:
    """One storage configuration of the model's weight tensors, built and measured."""

    how: str  # how its storages were chosen
    encodings: tuple[tuple[int, WeightEncoding], ...]  # tensor index -> storage; absent: the plain array
    flash_bytes: int
    ram_bytes: int
    latency_ms: float
    flash_source: str
    latency_source: str
    on_front: bool = False

    def storages(self, graph: Graph) -> str:
        """Tensor name: storage, of each coded tensor ("plain" if none)."""
        return ", ".join(f"{graph.tensor(t).name.split(';')[0]}: {e.storage}" for t, e in self.encodings) or "plain"


def configurations(graph: Graph, code_bytes: dict[str, int]) -> list[tuple[str, dict[int, WeightEncoding]]]:
    """Distinct storage configurations worth building: the plain arrays; the smallest storage per
    tensor; each storage alone; the smallest within each decode budget that the smallest
    storages' decode cycles set. Storages that save less than their decoder's code are dropped."""
    tensors = weight_tensors(graph)
    if not tensors:
        raise AutotuneError(f"{graph.name}: --compress: no int8 weight tensors (CONV_2D, DEPTHWISE_CONV_2D, "
                            "FULLY_CONNECTED) to store")
    n = len(tensors)
    smallest = storage_for(graph, ["auto"] * n, None, code_bytes)
    wanted = [("plain int8 arrays", ["none"] * n, None), ("smallest storage per tensor", ["auto"] * n, None)]
    wanted += [(f"{name} where it is smaller", [name] * n, None)
               for name in dict.fromkeys(s.name for s in default_candidates() if s.name != "dense")]
    budgets = sorted({c.decode_cycles for c in smallest.values() if c.decode_cycles > 0})
    wanted += [(f"smallest within {b:.0f} decode cycles a tensor", ["auto"] * n, b) for b in budgets[:-1]]
    found: dict[tuple, tuple[str, dict[int, WeightEncoding]]] = {}
    for how, codecs, budget in wanted:
        chosen = {t: c.encoding for t, c in storage_for(graph, codecs, budget, code_bytes).items()
                  if c.encoding.storage != "none"}
        found.setdefault(tuple(sorted(chosen.items(), key=lambda i: i[0])), (how, chosen))
    return list(found.values())


def storage_front(graph: Graph, target: str = "rp2040") -> tuple[list[StoragePoint], list[tuple[str, str]]]:
    """Every configuration that fits `target`, built and measured; on_front: no other point has
    flash, RAM and latency all at most its own and one smaller. And those that do not fit: (how
    their storages were chosen, by how much). AutotuneError if none fits."""
    from autotune.trial import DoesNotFit, measure_costs  # generate, build, measure: as a search trial
    from cost_models.analytic import DECODER_FLASH

    points, refused = [], []
    for how, encodings in configurations(graph, DECODER_FLASH):
        try:
            costs = measure_costs(with_storage(graph, encodings), target)
        except DoesNotFit as exc:  # the plain arrays may not fit where a smaller storage does
            refused.append((how, str(exc)))
            continue
        points.append(StoragePoint(how, tuple(sorted(encodings.items(), key=lambda i: i[0])),
                                   int(costs.flash.value), int(costs.ram.value), costs.latency.value,
                                   costs.flash.source, costs.latency.source))
    if not points:
        raise AutotuneError(f"{graph.name}: in no storage of its weights: {refused[0][1]}")
    key = [(p.flash_bytes, p.ram_bytes, p.latency_ms) for p in points]
    dominated = [any(all(o <= m for o, m in zip(other, mine)) and other != mine for other in key) for mine in key]
    return [StoragePoint(**{**p.__dict__, "on_front": not d}) for p, d in zip(points, dominated)], refused


def choose_point(points: list[StoragePoint], max_latency_increase_pct: float,
                 max_ram_increase_bytes: int) -> StoragePoint:
    """The smallest flash among the points within the limits against the plain arrays (the
    point without encodings); the plain arrays if no other point is within them; the smallest
    flash of all if the plain arrays do not fit the target (no such point)."""
    plain = next((p for p in points if not p.encodings), None)
    within = [p for p in points if plain is None or (
        p.latency_ms <= plain.latency_ms * (1 + max_latency_increase_pct / 100)
        and p.ram_bytes <= plain.ram_bytes + max_ram_increase_bytes)]
    return min(within, key=lambda p: (p.flash_bytes, p.latency_ms, p.ram_bytes))
