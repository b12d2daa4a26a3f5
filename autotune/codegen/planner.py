"""Static memory plan: one arena offset for every activation tensor of a graph.

Tensors live from the op that writes them to the last op that reads them (ops run in graph
order). Buffers are placed greedily, largest first, each at the lowest offset that overlaps no
buffer live at the same time: TFLM's GreedyMemoryPlanner. Storage is shared where that is
legal: a RESHAPE output is its input (no copy), an ADD writes into an input of its own size
that dies at the ADD (the kernel reads element i of its inputs before writing element i), and a
pool without leading padding writes into its input if that dies at the pool (every output
reads only input elements at or after its own index, and outputs are written in index order).
A buffer shared by several tensors takes, at each op, only the bytes of those live then: a
pool's smaller output frees the tail of its input's storage. The graph's input and output stay
in the caller's buffers; only what lies between them takes arena space. Per-op scratch, if a kernel or decoder needs it, is a buffer live during its op.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace

from autotune.ir.graph import Graph, Op
from autotune.ir.params import compute_padding


@dataclass(frozen=True)
class Buffer:
    """One stretch of memory and the tensors stored in it, one after another or aliased."""

    tensors: tuple[int, ...]  # empty for scratch
    nbytes: int  # the most it holds at once
    first: int  # first op during which the buffer is live
    last: int  # last op during which it is live
    place: str  # "arena" | "scratch" (both in the arena) | "input" | "output" (the caller's)
    offset: int = 0  # in the arena
    op: int = -1  # the op a scratch buffer serves
    extents: tuple[tuple[int, int, int], ...] = ()  # (first op, last op, bytes) of each tensor

    @property
    def in_arena(self) -> bool:
        return self.place in ("arena", "scratch")

    def bytes_during(self, first: int, last: int) -> int:
        """The most bytes in use while any op of first..last runs (0 if not live then)."""
        return max((n for a, z, n in self.extents or ((self.first, self.last, self.nbytes),)
                    if a <= last and first <= z), default=0)


@dataclass(frozen=True)
class MemoryPlan:
    graph_name: str
    num_ops: int
    buffers: tuple[Buffer, ...]
    arena_bytes: int  # the peak, rounded up to the alignment
    alignment: int

    def buffer_of(self, tensor: int) -> Buffer:
        for b in self.buffers:
            if tensor in b.tensors:
                return b
        raise KeyError(f"tensor {tensor} has no storage in the plan for {self.graph_name}")

    def scratch_of(self, op: int) -> Buffer | None:
        return next((b for b in self.buffers if b.place == "scratch" and b.op == op), None)

    def live_bytes(self, op: int) -> int:
        """Arena bytes in use while `op` runs."""
        return sum(b.bytes_during(op, op) for b in self.buffers if b.in_arena)

    def format(self, graph: Graph) -> str:
        """The map: arena buffers by offset with their lifetimes drawn over the op sequence."""
        arena = sorted((b for b in self.buffers if b.in_arena), key=lambda b: (b.offset, b.first))
        outside = [b for b in self.buffers if not b.in_arena]
        lines = [f"memory plan for {self.graph_name}: arena {self.arena_bytes} bytes "
                 f"(alignment {self.alignment}), {self.num_ops} ops"]
        for b in outside:
            lines.append(f"  caller's {b.place} buffer, {b.nbytes} bytes: {_names(graph, b)}")
        lines.append(f"  {'offset':>7} {'bytes':>7}  {'ops':<9} {'lifetime':<{self.num_ops}}  tensors")
        for b in arena:
            bar = "".join("#" if b.first <= i <= b.last else "." for i in range(self.num_ops))
            what = f"scratch of op {b.op}" if b.place == "scratch" else _names(graph, b)
            lines.append(f"  {b.offset:>7} {b.nbytes:>7}  {f'{b.first}-{b.last}':<9} {bar}  {what}")
        live = [self.live_bytes(i) for i in range(self.num_ops)]
        lines.append(f"  live bytes per op: {live}")
        return "\n".join(lines)


def tensor_label(graph: Graph, index: int) -> str:
    """`t<index> <short name> <shape>`: TFLite names list every fused op after ';'."""
    t = graph.tensor(index)
    name = t.name.split(";")[0]
    name = name if len(name) <= 40 else "..." + name[-37:]
    return f"t{index} {name} {'x'.join(map(str, t.shape))}"


def _names(graph: Graph, b: Buffer) -> str:
    return ", ".join(tensor_label(graph, t) for t in b.tensors)


def plan_memory(graph: Graph, scratch: Mapping[int, int] | None = None, alignment: int = 4) -> MemoryPlan:
    """Place every activation tensor of `graph` (and `scratch[op]` bytes per op) in one arena."""
    n = len(graph.ops)
    producer: dict[int, int] = {t: 0 for t in graph.inputs}
    last_use: dict[int, int] = {}
    for i, op in enumerate(graph.ops):
        for t in op.outputs:
            producer[t] = i
        for t in op.inputs:
            if t >= 0 and not graph.tensor(t).is_constant:
                last_use[t] = i
    for t in graph.outputs:
        last_use[t] = n  # read by the caller after the last op: never dies

    group = {t: [t] for t in producer}  # tensor -> the list of tensors sharing its storage

    def merge(keep: int, other: int) -> None:
        if group[keep] is group[other]:
            return
        for t in group[other]:
            group[keep].append(t)
            group[t] = group[keep]

    def holds(t: int, io: list[int]) -> bool:
        return any(m in io for m in group[t])

    def overwritable(src: int, i: int) -> bool:
        """An arena tensor whose storage is read for the last time by op i."""
        return (src in producer and not holds(src, graph.inputs)
                and max(last_use.get(m, producer[m]) for m in group[src]) == i)

    for i, op in enumerate(graph.ops):
        out = op.outputs[0] if op.outputs else -1
        if op.kind == "RESHAPE" and not (holds(op.inputs[0], graph.inputs) and out in graph.outputs):
            merge(op.inputs[0], out)
        elif op.kind == "ADD":
            for src in op.inputs[:2]:
                if overwritable(src, i) and graph.tensor(src).nbytes == graph.tensor(out).nbytes:
                    merge(src, out)
                    break
        elif (op.kind in ("MAX_POOL_2D", "AVERAGE_POOL_2D") and out not in graph.outputs
              and overwritable(op.inputs[0], i) and _no_leading_padding(graph, op)):
            merge(op.inputs[0], out)

    buffers = []
    for members in {id(g): g for g in group.values()}.values():
        members = sorted(members)
        place = ("input" if any(t in graph.inputs for t in members)
                 else "output" if any(t in graph.outputs for t in members) else "arena")
        extents = tuple((producer[t], min(n - 1, last_use.get(t, producer[t])), graph.tensor(t).nbytes)
                        for t in members)
        buffers.append(Buffer(
            tensors=tuple(members),
            nbytes=max(e[2] for e in extents),
            first=min(e[0] for e in extents),
            last=max(e[1] for e in extents),
            place=place,
            extents=extents,
        ))
    buffers += [Buffer((), size, i, i, "scratch", op=i)
                for i, size in sorted((scratch or {}).items()) if size > 0]
    return _place(graph.name, n, buffers, alignment)


def _no_leading_padding(graph: Graph, op: Op) -> bool:
    o, shape = op.options, graph.tensor(op.inputs[0]).shape
    return all(compute_padding(o["padding"], size, o[f"filter_{d}"], o[f"stride_{d}"])[1] == 0
               for d, size in (("h", shape[1]), ("w", shape[2])))


def _align(x: int, alignment: int) -> int:
    return -(-x // alignment) * alignment


def _place(name: str, num_ops: int, buffers: list[Buffer], alignment: int) -> MemoryPlan:
    """Greedy by size: each buffer at the lowest offset clear of every placed buffer it meets,
    both counted at the bytes they hold while they meet."""
    placed: list[Buffer] = []
    for b in sorted((b for b in buffers if b.in_arena),
                    key=lambda b: (-b.nbytes, b.first, b.tensors, b.op)):
        met = []  # (offset, bytes of the other, bytes of b) over their common lifetime
        for p in placed:
            first, last = max(b.first, p.first), min(b.last, p.last)
            if first <= last:
                met.append((p.offset, p.bytes_during(first, last), b.bytes_during(first, last)))
        candidates = sorted({0, *(_align(o + n, alignment) for o, n, _ in met)})
        offset = next(c for c in candidates
                      if all(c + need <= o or o + n <= c for o, n, need in met if n and need))
        placed.append(replace(b, offset=offset))
    outside = [b for b in buffers if not b.in_arena]
    peak = max((b.offset + b.nbytes for b in placed), default=0)
    ordered = sorted(placed + outside, key=lambda b: (b.first, b.tensors, b.op))
    return MemoryPlan(name, num_ops, tuple(ordered), _align(peak, alignment), alignment)
