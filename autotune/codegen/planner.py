"""Static memory plan: one arena offset for every activation tensor of a kernel plan.

Calls run in plan order; a tensor lives from the call that writes it to the last call that reads
it. Buffers are placed greedily, largest first, each at the lowest offset that overlaps no buffer
live at the same time: TFLM's GreedyMemoryPlanner. Storage is shared where the kernel plan says
it may be: a call whose output aliases its input (a RESHAPE) shares it always; a call that may
overwrite an input (`KernelCall.overwrites`: an element-wise ADD, a pool without leading padding)
writes into that input if it dies at the call. A buffer shared by several tensors takes, at each
call, only the bytes of those live then: a pool's smaller output frees the tail of its input's
storage. A call's scratch (the bytes its kernel's size function asks for) is a buffer live
during that call.

Where the graph's input and output live (`io`): "arena" places them in the arena like any other
tensor, so the input's bytes are reused once it dies and the output's before it is written;
"caller" leaves them in the caller's buffers (the input is then never written, and a call
overwrites into the output buffer only what fits there): only what lies between them takes
arena space.
"""
from __future__ import annotations

from dataclasses import dataclass, replace

from autotune.ir.graph import Graph, tensor_label
from autotune.ir.kernel_plan import KernelPlan


@dataclass(frozen=True)
class Buffer:
    """One stretch of memory and the tensors stored in it, one after another or aliased."""

    tensors: tuple[int, ...]  # empty for scratch
    nbytes: int  # the most it holds at once
    first: int  # first call during which the buffer is live (an index in KernelPlan.calls)
    last: int  # last call during which it is live
    place: str  # "arena" | "scratch" (both in the arena) | "input" | "output" (the caller's buffers)
    offset: int = 0  # in the arena
    call: int = -1  # the call a scratch buffer serves
    extents: tuple[tuple[int, int, int], ...] = ()  # (first call, last call, bytes) of each tensor

    @property
    def in_arena(self) -> bool:
        return self.place in ("arena", "scratch")

    def bytes_during(self, first: int, last: int) -> int:
        """The most bytes in use while any call of first..last runs (0 if not live then)."""
        return max((n for a, z, n in self.extents or ((self.first, self.last, self.nbytes),)
                    if a <= last and first <= z), default=0)


@dataclass(frozen=True)
class MemoryPlan:
    graph_name: str
    num_calls: int
    buffers: tuple[Buffer, ...]
    arena_bytes: int  # the peak, rounded up to the alignment
    alignment: int
    io: str = "arena"  # where the graph's input and output live: "arena" | "caller"

    def buffer_of(self, tensor: int) -> Buffer:
        for b in self.buffers:
            if tensor in b.tensors:
                return b
        raise KeyError(f"tensor {tensor} has no storage in the plan for {self.graph_name}")

    def scratch_of(self, call: int) -> Buffer | None:
        return next((b for b in self.buffers if b.place == "scratch" and b.call == call), None)

    def live_bytes(self, call: int) -> int:
        """Arena bytes in use while `call` runs."""
        return sum(b.bytes_during(call, call) for b in self.buffers if b.in_arena)

    def format(self, graph: Graph) -> str:
        """The map: arena buffers by offset with their lifetimes drawn over the call sequence."""
        arena = sorted((b for b in self.buffers if b.in_arena), key=lambda b: (b.offset, b.first))
        outside = [b for b in self.buffers if not b.in_arena]
        lines = [f"memory plan for {self.graph_name}: arena {self.arena_bytes} bytes "
                 f"(alignment {self.alignment}), {self.num_calls} kernel calls"]
        for b in outside:
            lines.append(f"  caller's {b.place} buffer, {b.nbytes} bytes: {_names(graph, b)}")
        lines.append(f"  {'offset':>7} {'bytes':>7}  {'calls':<9} {'lifetime':<{self.num_calls}}  tensors")
        for b in arena:
            bar = "".join("#" if b.first <= i <= b.last else "." for i in range(self.num_calls))
            what = f"scratch of call {b.call}" if b.place == "scratch" else _names(graph, b)
            lines.append(f"  {b.offset:>7} {b.nbytes:>7}  {f'{b.first}-{b.last}':<9} {bar}  {what}")
        live = [self.live_bytes(i) for i in range(self.num_calls)]
        lines.append(f"  live bytes per call: {live}")
        return "\n".join(lines)


def _names(graph: Graph, b: Buffer) -> str:
    return ", ".join(tensor_label(graph, t) for t in b.tensors)


IO_MODES = ("arena", "caller")


def plan_memory(plan: KernelPlan, alignment: int = 4, io: str = "arena") -> MemoryPlan:
    """Place every activation tensor of the plan's graph, and each call's scratch, in one arena;
    the graph's input and output too unless `io` is "caller"."""
    if io not in IO_MODES:
        raise ValueError(f"io must be one of {IO_MODES}, got {io!r}")
    caller = io == "caller"
    graph, calls = plan.graph, plan.calls
    n = len(calls)
    producer: dict[int, int] = {t: 0 for t in graph.inputs}
    last_use: dict[int, int] = {}
    for i, call in enumerate(calls):
        for t in call.outputs:
            producer.setdefault(t, i)
        for t in call.inputs:
            if not graph.tensor(t).is_constant:
                last_use[t] = i
    for t in graph.outputs:
        last_use[t] = n  # read by the caller after the last call: never dies

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
        """An arena tensor whose storage is read for the last time by call i."""
        return (src in producer and not (caller and holds(src, graph.inputs))
                and max(last_use.get(m, producer[m]) for m in group[src]) == i)

    for i, call in enumerate(calls):
        out = call.outputs[0] if call.outputs else -1
        if call.alias:
            merge(call.inputs[0], out)
            continue
        for src in call.overwrites:  # the caller's output buffer only holds the output's bytes
            if overwritable(src, i) and (not caller or out not in graph.outputs
                                         or graph.tensor(src).logical_bytes <= graph.tensor(out).logical_bytes):
                merge(src, out)
                break

    buffers = []
    for members in {id(g): g for g in group.values()}.values():
        members = sorted(members)
        place = ("arena" if not caller else "input" if any(t in graph.inputs for t in members)
                 else "output" if any(t in graph.outputs for t in members) else "arena")
        extents = tuple((producer[t], min(n - 1, last_use.get(t, producer[t])), graph.tensor(t).logical_bytes)
                        for t in members)
        buffers.append(Buffer(
            tensors=tuple(members),
            nbytes=max(e[2] for e in extents),
            first=min(e[0] for e in extents),
            last=max(e[1] for e in extents),
            place=place,
            extents=extents,
        ))
    buffers += [Buffer((), size, i, i, "scratch", call=i) for i, size in sorted(plan.scratch.items())]
    return replace(_place(graph.name, n, buffers, alignment), io=io)


def _align(x: int, alignment: int) -> int:
    return -(-x // alignment) * alignment


def _place(name: str, num_calls: int, buffers: list[Buffer], alignment: int) -> MemoryPlan:
    """Greedy by size: each buffer at the lowest offset clear of every placed buffer it meets,
    both counted at the bytes they hold while they meet."""
    placed: list[Buffer] = []
    for b in sorted((b for b in buffers if b.in_arena),
                    key=lambda b: (-b.nbytes, b.first, b.tensors, b.call)):
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
    ordered = sorted(placed + outside, key=lambda b: (b.first, b.tensors, b.call))
    return MemoryPlan(name, num_calls, tuple(ordered), _align(peak, alignment), alignment)
