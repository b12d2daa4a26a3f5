"""Static memory plan: one arena offset for every activation tensor of a kernel plan.

Calls run in plan order; a tensor lives from the call that writes it to the last call that reads
it. Buffers are placed greedily, largest first, each at the lowest offset that overlaps no buffer
live at the same time: TFLM's GreedyMemoryPlanner. Storage is shared where the kernel plan says
it may be: a call whose output aliases its input (a RESHAPE) shares it always; a call that may
overwrite an input (`KernelCall.overwrites`: an element-wise ADD, a pool without leading padding,
a convolution, a strided slice) writes into that input if it dies at the call, its output
starting `KernelCall.overwrite_lead` bytes before it (after it where that is negative). A buffer shared by several tensors holds each at an
offset of its own in the buffer and takes, at each call, the bytes up to the end of those live
then: a pool's smaller output frees the tail of its input's storage. A call's scratch (the bytes
its kernel's size function asks for) is a buffer live during that call, and for a weight
decoder's call (its output) until the kernel call that reads it (`KernelCall.scratch_keep`).

Where the graph's input and output live (`io`): "arena" places them in the arena like any other
tensor, so the input's bytes are reused once it dies and the output's before it is written;
"caller" leaves them in the caller's buffers (the input is then never written, a call
overwrites into the output buffer only what fits there, and no output starts before the input it
overwrites): only what lies between them takes arena space.
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
    # of each tensor: (first call, last call, where it starts and ends in the buffer)
    extents: tuple[tuple[int, int, int, int], ...] = ()
    offsets: tuple[int, ...] = ()  # of each tensor in the buffer (all 0 unless a call overwrites with a lead)

    @property
    def in_arena(self) -> bool:
        return self.place in ("arena", "scratch")

    def offset_of(self, tensor: int) -> int:
        """Where `tensor` starts in the buffer."""
        return self.offsets[self.tensors.index(tensor)] if self.offsets else 0

    def span_during(self, first: int, last: int) -> tuple[int, int]:
        """The stretch of the buffer in use while any call of first..last runs ((0, 0) if not live
        then)."""
        live = [(lo, hi) for a, z, lo, hi in self.extents or ((self.first, self.last, 0, self.nbytes),)
                if a <= last and first <= z]
        return (min(lo for lo, _ in live), max(hi for _, hi in live)) if live else (0, 0)

    def bytes_during(self, first: int, last: int) -> int:
        lo, hi = self.span_during(first, last)
        return hi - lo


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

    def offset_of(self, tensor: int) -> int:
        """Where `tensor` starts in the arena (in the caller's buffer for its input and output)."""
        b = self.buffer_of(tensor)
        return (b.offset if b.in_arena else 0) + b.offset_of(tensor)

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
    """The buffer's tensors; with its offset in the buffer, where a tensor does not start it."""
    return ", ".join(tensor_label(graph, t) + (f" at +{b.offset_of(t)}" if b.offset_of(t) else "")
                     for t in b.tensors)


IO_MODES = ("arena", "caller")
EXHAUSTIVE = 6  # calls that may overwrite an input: up to this many, every choice of them is planned


def plan_memory(plan: KernelPlan, alignment: int = 4, io: str = "arena") -> MemoryPlan:
    """Place every activation tensor of the plan's graph, and each call's scratch, in one arena;
    the graph's input and output too unless `io` is "caller". Which calls that may overwrite an
    input do so is searched: sharing can make the arena larger, as the longer-lived buffer it
    makes crowds others out, and a chain of outputs that each start before their input drifts
    down the arena; so is, in the arena, which of those with a `lead_step` sink their output to
    the bottom of the buffer they share (more lead), which lowers a chain growing upwards after
    them. Every choice where there are at most EXHAUSTIVE such calls; else a local search from
    all of them and from none: flipping one call, or two a place or two apart in the list, or
    one's sinking, while that makes the arena smaller. The smallest arena wins, the first on a
    tie (sinking none first)."""
    if io not in IO_MODES:
        raise ValueError(f"io must be one of {IO_MODES}, got {io!r}")
    caller = io == "caller"
    calls = sorted(i for i, c in enumerate(plan.calls) if c.overwrites and not (caller and c.overwrite_lead))
    sinkable = [i for i in calls if plan.calls[i].lead_step and not caller]

    def placed(choice: tuple[frozenset[int], frozenset[int]]) -> MemoryPlan:
        shared, sunk = choice
        return _place(plan.graph.name, len(plan.calls), _buffers(plan, io, shared, sunk & shared), alignment)

    if len(calls) <= EXHAUSTIVE:
        shares = [frozenset(c for k, c in enumerate(calls) if not mask >> k & 1) for mask in range(1 << len(calls))]
        sinks = [frozenset(c for k, c in enumerate(sinkable) if mask >> k & 1) for mask in range(1 << len(sinkable))]
        choices = ((shared, sunk) for sunk in sinks for shared in shares if sunk <= shared)
        return replace(min((placed(c) for c in choices), key=lambda r: r.arena_bytes), io=io)
    flips = ([(frozenset({i}), frozenset()) for i in calls]
             + [(frozenset({i, j}), frozenset()) for k, i in enumerate(calls) for j in calls[k + 1:k + 3]]
             + [(frozenset(), frozenset({i})) for i in sinkable])
    results = []
    for start in (frozenset(calls), frozenset()):
        choice = (start, frozenset())
        best, improved = placed(choice), True
        while improved:
            improved = False
            for flip in flips:
                trial_choice = (choice[0] ^ flip[0], choice[1] ^ flip[1])
                trial = placed(trial_choice)
                if trial.arena_bytes < best.arena_bytes:
                    choice, best, improved = trial_choice, trial, True
        results.append(best)
    return replace(min(results, key=lambda r: r.arena_bytes), io=io)


def _buffers(plan: KernelPlan, io: str, shared: set[int], sunk: set[int] = frozenset()) -> list[Buffer]:
    """The plan's tensors grouped into buffers (unplaced), and each call's scratch; only calls in
    `shared` write over an input, those in `sunk` with their output from the buffer's bottom
    (the least lead from there that is their overwrite_lead plus whole lead_steps)."""
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
    at = {t: 0 for t in producer}  # tensor -> its offset in that storage

    def merge(keep: int, other: int, lead: int = 0) -> None:
        """`other`'s storage joins `keep`'s, `other` starting `lead` bytes before `keep`."""
        if group[keep] is group[other]:
            return
        shift = at[keep] - lead - at[other]
        for t in group[other]:
            at[t] += shift
            group[keep].append(t)
            group[t] = group[keep]
        low = min(at[t] for t in group[keep])
        for t in group[keep]:
            at[t] -= low

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
        if i not in shared:  # (no lead in the caller's buffers, which hold their tensor at their start)
            continue
        for src in call.overwrites:  # the caller's output buffer only holds the output's bytes
            if overwritable(src, i) and (not caller or out not in graph.outputs
                                         or graph.tensor(src).logical_bytes <= graph.tensor(out).logical_bytes):
                lead = call.overwrite_lead
                if i in sunk and at[src] > lead:  # (the buffer's bottom is at 0)
                    lead += -(-(at[src] - lead) // call.lead_step) * call.lead_step
                merge(src, out, lead)
                break

    buffers = []
    for members in {id(g): g for g in group.values()}.values():
        members = sorted(members)
        place = ("arena" if not caller else "input" if any(t in graph.inputs for t in members)
                 else "output" if any(t in graph.outputs for t in members) else "arena")
        extents = tuple((producer[t], min(n - 1, last_use.get(t, producer[t])), at[t],
                         at[t] + graph.tensor(t).logical_bytes) for t in members)
        buffers.append(Buffer(
            tensors=tuple(members),
            nbytes=max(e[3] for e in extents),
            first=min(e[0] for e in extents),
            last=max(e[1] for e in extents),
            place=place,
            extents=extents,
            offsets=tuple(at[t] for t in members),
        ))
    buffers += [Buffer((), c.scratch_bytes, i, i + c.scratch_keep, "scratch", call=i)
                for i, c in enumerate(calls) if c.scratch_bytes]
    return buffers


def _align(x: int, alignment: int) -> int:
    return -(-x // alignment) * alignment


# Orders to place buffers in; the one giving the smallest arena is kept (TFLM's, largest first,
# on a tie).
_ORDERS = (lambda b: (-b.nbytes, b.first), lambda b: (b.first, -b.nbytes), lambda b: (b.first, b.nbytes),
           lambda b: (-b.nbytes * (b.last - b.first + 1), b.first))


def _place(name: str, num_calls: int, buffers: list[Buffer], alignment: int) -> MemoryPlan:
    """Greedy: each buffer at the lowest offset clear of every placed buffer it meets, both counted
    at the stretch they use while they meet; in each of _ORDERS, the smallest arena kept."""
    return min((_place_in_order(name, num_calls, buffers, alignment, order) for order in _ORDERS),
               key=lambda plan: plan.arena_bytes)


def _place_in_order(name: str, num_calls: int, buffers: list[Buffer], alignment: int, order) -> MemoryPlan:
    placed: list[Buffer] = []
    for b in sorted((b for b in buffers if b.in_arena), key=lambda b: (*order(b), b.tensors, b.call)):
        met = []  # the other's stretch in the arena and b's in its buffer, over their common lifetime
        for p in placed:
            first, last = max(b.first, p.first), min(b.last, p.last)
            if first <= last:
                (lo, hi), need = p.span_during(first, last), b.span_during(first, last)
                if hi > lo and need[1] > need[0]:
                    met.append((p.offset + lo, p.offset + hi, *need))
        candidates = sorted({0, *(c for lo, hi, need_lo, _ in met if (c := _align(hi, alignment) - need_lo) >= 0)})
        offset = next(c for c in candidates
                      if all(c + need_hi <= lo or hi <= c + need_lo for lo, hi, need_lo, need_hi in met))
        placed.append(replace(b, offset=offset))
    outside = [b for b in buffers if not b.in_arena]
    peak = max((b.offset + b.nbytes for b in placed), default=0)
    ordered = sorted(placed + outside, key=lambda b: (b.first, b.tensors, b.call))
    return MemoryPlan(name, num_calls, tuple(ordered), _align(peak, alignment), alignment)
