"""The kernel plan: an integer graph lowered to the list of kernel calls its generated C makes.

Between the graph and the C sits this one list (TVM's lowered functions, TFLM's per-node data).
Each call names the IR op it implements, the kernel symbol, the dimensions it loops over, how each
of its weights is stored, the scratch bytes its kernel's own size function asks for, whether its
output may share memory with an input, and the work it does (the cost features: the generic
kernels' per-element counts, and for kernels with a Helium variant the iterations of its vector
loops, terms named mve_*, which the Cortex-M55 cost table prices and the scalar ones ignore).
The memory planner, the C generator, the cost features, the memory report and the simulator
profiles all read this list; simulator cycles are attributed to calls by kernel symbol (`attribute_cycles`),
never by position, so a layer may take several calls (a weight decoder, then its kernel).

`autotune.lowering.lower` builds a plan from a graph through the op registry (autotune.ops).
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Protocol

from autotune.ir.graph import Graph

if TYPE_CHECKING:
    from autotune.codecs import Encoded


def frozen_map(**values: int) -> Mapping[str, int]:
    """A read-only mapping for the dims and work of a call."""
    return MappingProxyType(dict(values))


@dataclass(frozen=True)
class WeightStorage:
    """How one constant input of a call is stored in flash and reaches its kernel.

    "dense_int8" / "dense_int32": the plain array the kernel reads; "grouped_int8": the same
    bytes in an order of its op's Helium kernel where the image has Helium (AT_GROUPED_TAILS,
    autotune.ops.fully_connected.grouped_rows). A tensor in a weight storage
    of autotune.codecs takes two calls: its decoder call (`decoder`, just before the kernel's)
    holds the blob, format "coded", its flash bytes stored_bytes, and writes the int8 values into
    its scratch; the kernel call reads them there, format "decoded", no flash of its own. Format
    "decoded_row": the kernel's C calls the decoder (at_decode_<storage>_row) for one output
    channel's filter at a time, for the few channels (dims filters_per_pass) it computes next,
    so the scratch is those filters.
    """

    tensor: int  # graph tensor index
    role: str  # "filter", "bias", "operand", ...
    format: str  # "dense_int8" | "dense_int32" | "grouped_int8" | "coded" | "decoded" | "decoded_row"
    logical_bytes: int  # elements x dtype size: what the kernel reads
    stored_bytes: int  # what flash holds
    decoder: str | None = None  # kernel symbol of the decoder call, for coded storage
    encoded: Encoded | None = None  # the blob and what it costs, for coded storage


@dataclass(frozen=True, eq=False)
class KernelCall:
    """One call of the generated `model_invoke`: `symbol(&<name>, inputs..., outputs..., scratch)`."""

    op: int  # index of the IR op (in KernelPlan.graph.ops) this call implements
    kind: str  # that op's kind
    name: str  # C identifier of the call's parameter struct
    symbol: str | None  # the kernel function called; None: no code (the output aliases the input)
    source: str | None  # the kernel library file defining it (None for libc's memcpy)
    inputs: tuple[int, ...]  # activation tensors read (constants too where the kernel reads them as data)
    outputs: tuple[int, ...]  # tensors written
    dims: Mapping[str, int]  # the dimensions the kernel loops over
    weights: tuple[WeightStorage, ...] = ()
    scratch_bytes: int = 0  # from the kernel's own size function
    scratch_symbol: str | None = None  # its C mirror, `<symbol>_get_buffer_size(&<name>)`
    # The scratch stays live this many calls after this one: a decoder's output, which the
    # kernel call after it reads as its weights.
    scratch_keep: int = 0
    alias: bool = False  # the output is the input's memory: nothing is computed or copied
    overwrites: tuple[int, ...] = ()  # inputs whose storage the output may take if they die here
    # How many bytes before such an input the output then starts: 0 for element-wise ops, more for
    # a windowed kernel that writes an output pixel only over input no later window reads;
    # negative: after the input's start (a conv written last pixel first, ConvParams.reverse).
    overwrite_lead: int = 0
    # A windowed kernel written forward may also start its output further before its input, in
    # steps of this many bytes (0: only at overwrite_lead): the planner may sink it that way.
    lead_step: int = 0
    macs: int = 0  # multiply-accumulates (conv, depthwise and fully connected only)
    work: Mapping[str, int] = field(default_factory=frozen_map)  # what else the kernel does, counted
    const_bytes: int = 0  # other constant data in flash: per-channel tables, lookup tables
    params: Any = None  # the prepared parameters (TFLM's Prepare) the C is written from

    @property
    def weight_bytes(self) -> int:
        """Flash the call's weights take as stored."""
        return sum(w.stored_bytes for w in self.weights)

    @property
    def decodes(self) -> WeightStorage | None:
        """For a weight decoder's call, the coded weights it expands into its scratch."""
        return next((w for w in self.weights if w.format == "coded"), None)


@dataclass(frozen=True, eq=False)
class KernelPlan:
    graph: Graph  # the integer graph the calls run (float32 edges removed)
    source: Graph  # the graph it was lowered from
    calls: tuple[KernelCall, ...]

    @property
    def kernel_sources(self) -> tuple[str, ...]:
        """The kernel library files the calls need, sorted."""
        return tuple(sorted({c.source for c in self.calls if c.source}))

    @property
    def macs(self) -> int:
        return sum(c.macs for c in self.calls)

    @property
    def scratch(self) -> dict[int, int]:
        """Call index -> scratch bytes, for calls that need any."""
        return {i: c.scratch_bytes for i, c in enumerate(self.calls) if c.scratch_bytes}


class MeasuredCall(Protocol):
    """A runner's record of one function the entry called (device_runners.runners.OpCycles)."""

    kernel: str
    cycles: int | None
    instructions: int
    zero_wait_cycles: int | None


@dataclass(frozen=True)
class CallCycles:
    call: int  # index in KernelPlan.calls
    symbol: str
    cycles: int | None  # None from a runner without a timing model
    instructions: int
    zero_wait_cycles: int | None = None  # the same with zero-wait memory, where the runner models memory
    xip_hits: int | None = None  # cache lines read through the XIP cache, where the runner models it
    xip_misses: int | None = None


def attribute_cycles(plan: KernelPlan, measured: Sequence[MeasuredCall]) -> tuple[CallCycles, ...]:
    """Pair each function the firmware's entry called with the plan's next call of that symbol.

    Calls with no code, or whose call the compiler inlined (a small memcpy), get no record. A
    function the plan does not call there is an error: the plan and the firmware disagree. A
    kernel reading its weights a few filters at a time ("decoded_row") calls its decoder once per
    output channel and itself once per pass (their work's `calls`): those calls add up in the
    records of the two plan calls.
    """
    records: list[CallCycles] = []
    made: dict[int, int] = {}  # plan call -> calls of it so far
    start = 0
    for m in measured:
        again = _filter_loop_call(plan, records[-1].call, m.kernel) if records else None
        if again is not None and made[again] < plan.calls[again].work.get("calls", 1):
            made[again] += 1
            i = next(i for i, r in enumerate(records) if r.call == again)
            r = records[i]
            records[i] = replace(r, cycles=_add(r.cycles, m.cycles), instructions=r.instructions + m.instructions,
                                 zero_wait_cycles=_add(r.zero_wait_cycles, getattr(m, "zero_wait_cycles", None)),
                                 xip_hits=_add(r.xip_hits, getattr(m, "xip_hits", None)),
                                 xip_misses=_add(r.xip_misses, getattr(m, "xip_misses", None)))
            continue
        k = next((k for k in range(start, len(plan.calls)) if plan.calls[k].symbol == m.kernel), None)
        if k is None:
            raise ValueError(f"{plan.graph.name}: the firmware calls {m.kernel} where the kernel plan has "
                             f"{[c.symbol for c in plan.calls[start:] if c.symbol]}")
        records.append(CallCycles(k, m.kernel, m.cycles, m.instructions, getattr(m, "zero_wait_cycles", None),
                                  getattr(m, "xip_hits", None), getattr(m, "xip_misses", None)))
        made[k] = 1
        start = k + 1
    return tuple(records)


def _filter_loop_call(plan: KernelPlan, last: int, symbol: str) -> int | None:
    """The call of `symbol` in the filter-at-a-time loop that call `last` belongs to, already
    called (at or before `last`), if any."""
    op = plan.calls[last].op
    loop = [k for k, c in enumerate(plan.calls) if c.op == op]
    if not any(w.format == "decoded_row" for k in loop for w in plan.calls[k].weights):
        return None
    return next((k for k in loop if k <= last and plan.calls[k].symbol == symbol), None)


def _add(a: int | None, b: int | None) -> int | None:
    return None if a is None or b is None else a + b
