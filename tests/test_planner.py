"""The static memory planner: checked by simulating every byte of the plan, op by op."""
from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from autotune.codegen.planner import MemoryPlan, plan_memory
from autotune.ir.graph import Graph, Op, Tensor
from autotune.ir.kernel_plan import KernelCall, KernelPlan, frozen_map
from autotune.ops import window
from autotune.ops.layout import _reads_graph_input, gather_lead, slot_lead
from autotune.ops.window import compute_padding


class _Builder:
    """Small int8 graphs for planning: shapes, wiring and the kernel plan's in-place flags (the
    planner reads nothing else)."""

    def __init__(self, name: str, shape: tuple[int, ...]):
        self.name = name
        self.tensors = [Tensor("input", shape, "int8")]
        self.ops: list[Op] = []

    def op(self, kind: str, inputs: list[int], shape: tuple[int, ...], weights: bool = False,
           **options) -> int:
        ins = list(inputs)
        if weights:
            self.tensors.append(Tensor(f"w{len(self.ops)}", (4,), "int8", data=np.zeros(4, np.int8)))
            ins.append(len(self.tensors) - 1)
        self.tensors.append(Tensor(f"{kind.lower()}_{len(self.ops)}", shape, "int8"))
        out = len(self.tensors) - 1
        self.ops.append(Op(kind, tuple(ins), (out,), options))
        return out

    def graph(self, output: int) -> Graph:
        return Graph(self.name, self.tensors, self.ops, [0], [output])

    def plan(self, output: int, scratch: dict[int, int] | None = None) -> KernelPlan:
        """One call per op, with the in-place capability the op definitions declare."""
        g = self.graph(output)
        calls = []
        for i, op in enumerate(g.ops):
            acts = tuple(t for t in op.inputs if not g.tensor(t).is_constant)
            out = op.outputs[0]
            overwrites: tuple[int, ...] = ()
            if op.kind == "ADD":
                overwrites = tuple(t for t in acts if g.tensor(t).shape == g.tensor(out).shape)
            elif op.kind in ("MAX_POOL_2D", "AVERAGE_POOL_2D") and _no_leading_padding(g, op):
                overwrites = acts
            alias = op.kind == "RESHAPE" and not (_reads_graph_input(g, acts[0]) and out in g.outputs)
            calls.append(KernelCall(op=i, kind=op.kind, name=f"op{i}", symbol=None if alias else "k",
                                    source=None, inputs=acts, outputs=(out,), dims=frozen_map(),
                                    alias=alias, overwrites=overwrites,
                                    scratch_bytes=(scratch or {}).get(i, 0)))
        return KernelPlan(g, g, tuple(calls))


def _no_leading_padding(graph: Graph, op: Op) -> bool:
    o, shape = op.options, graph.tensor(op.inputs[0]).shape
    return all(compute_padding(o["padding"], size, o[f"filter_{d}"], o[f"stride_{d}"])[1] == 0
               for d, size in (("h", shape[1]), ("w", shape[2])))


def _chain() -> KernelPlan:
    """LARUN-like: 1x1024x1 -> conv -> dw -> 1x1 -> dw -> 1x1 -> mean -> dense -> dense."""
    b = _Builder("chain", (1, 1, 1024, 1))
    t = 0
    for shape, kind in (((1, 1, 512, 8), "CONV_2D"), ((1, 1, 256, 8), "DEPTHWISE_CONV_2D"),
                        ((1, 1, 256, 16), "CONV_2D"), ((1, 1, 128, 16), "DEPTHWISE_CONV_2D"),
                        ((1, 1, 128, 32), "CONV_2D"), ((1, 32), "MEAN"),
                        ((1, 16), "FULLY_CONNECTED"), ((1, 6), "FULLY_CONNECTED")):
        t = b.op(kind, [t], shape, weights=kind != "MEAN")
    return b.plan(t)


def _random_graph(seed: int) -> tuple[KernelPlan, dict[int, int]]:
    """A random DAG of convs, reshapes, adds, concats and pools, and random scratch per op."""
    rng = np.random.default_rng(seed)
    b = _Builder(f"random{seed}", (1, int(rng.integers(1, 64))))
    for _ in range(int(rng.integers(3, 16))):
        pool = list(range(len(b.tensors)))
        pool = [t for t in pool if b.tensors[t].data is None]
        x = int(rng.choice(pool))
        n = b.tensors[x].size
        kind = rng.choice(["CONV_2D", "RESHAPE", "ADD", "CONCATENATION", "MAX_POOL_2D"])
        if kind == "MAX_POOL_2D" and n >= 2:  # in place when x dies here: shrinks its storage
            row = b.op("RESHAPE", [x], (1, 1, n, 1))
            b.op("MAX_POOL_2D", [row], (1, 1, n // 2, 1), padding="VALID", filter_h=1, filter_w=2,
                 stride_h=1, stride_w=2)
        elif kind == "RESHAPE" or kind == "MAX_POOL_2D":
            b.op("RESHAPE", [x], (1, 1, n))
        elif kind == "ADD":
            same = [t for t in pool if b.tensors[t].size == n]
            b.op("ADD", [x, int(rng.choice(same))], b.tensors[x].shape)
        elif kind == "CONCATENATION":
            y = int(rng.choice(pool))
            b.op("CONCATENATION", [x, y], (1, n + b.tensors[y].size))
        else:
            b.op("CONV_2D", [x], (1, int(rng.integers(1, 64))), weights=True)
    scratch = {i: int(rng.integers(0, 40)) for i in range(len(b.ops)) if rng.random() < 0.3}
    return b.plan(len(b.tensors) - 1, scratch), scratch


def _lifetimes(graph: Graph) -> dict[int, tuple[int, int]]:
    life = {graph.inputs[0]: (0, 0)}
    for i, op in enumerate(graph.ops):
        for t in op.inputs:
            if t in life:
                life[t] = (life[t][0], i)
        life[op.outputs[0]] = (i, i)
    return life


def _simulate(graph: Graph, plan: MemoryPlan, scratch: dict[int, int]) -> None:
    """Run the plan on bytes: every byte remembers which value last wrote it. Before each op, each
    input must still hold its own value; the caller's input is never written; the output holds
    the result at the end. RESHAPE writes nothing (same value, new view)."""
    value = {graph.inputs[0]: graph.inputs[0]}  # tensor -> the value it holds
    memory: dict[tuple[str, int], int] = {}

    def where(t: int) -> range:
        b = plan.buffer_of(t)
        assert b.nbytes >= b.offset_of(t) + graph.tensor(t).logical_bytes
        base = plan.offset_of(t)
        return range(base, base + graph.tensor(t).logical_bytes)

    def space(t: int) -> str:
        return "arena" if plan.buffer_of(t).in_arena else plan.buffer_of(t).place

    for byte in where(graph.inputs[0]):
        memory[(space(graph.inputs[0]), byte)] = graph.inputs[0]
    for i, op in enumerate(graph.ops):
        ins = [t for t in op.inputs if graph.tensor(t).data is None]
        for t in ins:
            for byte in where(t):
                assert memory.get((space(t), byte)) == value[t], (
                    f"{graph.name}: op {i} {op.kind} reads tensor {t}, overwritten at {space(t)} byte {byte}")
        out = op.outputs[0]
        s = plan.scratch_of(i)
        if scratch.get(i):
            assert s is not None and s.nbytes == scratch[i] and s.first == s.last == i
            taken = set(range(s.offset, s.offset + s.nbytes))
            io = {byte for t in ins + [out] if space(t) == "arena" for byte in where(t)}
            assert not taken & io, f"{graph.name}: scratch of op {i} overlaps its input or output"
            for byte in taken:
                memory[("arena", byte)] = -1
        if op.kind == "RESHAPE":
            value[out] = value[op.inputs[0]]
            if where(out) == where(op.inputs[0]) and space(out) == space(op.inputs[0]):
                continue  # aliased: nothing moves
        else:
            value[out] = out
        assert space(out) != "input", f"{graph.name}: op {i} writes into the caller's input"
        for byte in where(out):
            memory[(space(out), byte)] = value[out]
    out = graph.outputs[0]
    assert all(memory.get((space(out), byte)) == value[out] for byte in where(out))
    for b in plan.buffers:
        if b.in_arena:
            assert b.offset % plan.alignment == 0 and b.offset + b.nbytes <= plan.arena_bytes


def _max_live(graph: Graph, plan: MemoryPlan, scratch: dict[int, int]) -> int:
    """Independently: the largest sum over ops of arena bytes in use at that op, a buffer shared
    by several tensors counting its largest tensor live then."""
    life = _lifetimes(graph)
    best = 0
    for i in range(len(graph.ops)):
        held: dict[int, int] = {}
        for t, (a, z) in life.items():
            b = plan.buffer_of(t)
            if a <= i <= z and b.in_arena:
                held[id(b)] = max(held.get(id(b), 0), graph.tensor(t).logical_bytes)
        best = max(best, sum(held.values()) + scratch.get(i, 0))
    return best


@pytest.mark.parametrize("io", ["arena", "caller"])
def test_chain_reuses_memory(io):
    kp = _chain()
    g, plan = kp.graph, plan_memory(kp, io=io)
    _simulate(g, plan, {})
    inner = sum(t.logical_bytes for t in g.tensors[1:] if t.data is None) - g.tensor(g.outputs[0]).logical_bytes
    assert plan.arena_bytes >= _max_live(g, plan, {})
    assert plan.arena_bytes == 4096 + 2048  # the two largest neighbours: the floor for this chain
    assert plan.arena_bytes < 0.5 * inner
    places = (plan.buffer_of(g.inputs[0]).place, plan.buffer_of(g.outputs[0]).place)
    assert places == (("arena", "arena") if io == "arena" else ("input", "output"))


def test_arena_input_is_reused_once_it_dies():
    """In the arena the input's bytes go to a later tensor; the caller's input costs its own."""
    b = _Builder("reuse", (1, 1, 256, 4))
    t = b.op("CONV_2D", [0], (1, 1, 256, 2), weights=True)  # 1024 -> 512 bytes
    t = b.op("CONV_2D", [t], (1, 1, 256, 3), weights=True)  # 512 -> 768: into the input's bytes
    out = b.op("CONV_2D", [t], (1, 4), weights=True)
    kp = b.plan(out)
    arena, caller = plan_memory(kp, io="arena"), plan_memory(kp, io="caller")
    _simulate(kp.graph, arena, {})
    assert arena.buffer_of(t).offset < arena.buffer_of(0).offset + 1024 and arena.buffer_of(t).first > 0
    assert arena.arena_bytes == 1024 + 512  # the input and the first conv's output: the peak
    assert caller.arena_bytes == 512 + 768 and caller.arena_bytes + 1024 + 4 > arena.arena_bytes


@pytest.mark.parametrize("io", ["arena", "caller"])
@pytest.mark.parametrize("seed", range(60))
def test_random_graphs(seed, io):
    kp, scratch = _random_graph(seed)
    g, plan = kp.graph, plan_memory(kp, io=io)
    _simulate(g, plan, scratch)
    assert plan.arena_bytes >= _max_live(g, plan, scratch)
    assert all(plan.live_bytes(i) <= plan.arena_bytes for i in range(len(g.ops)))


def test_reshape_aliases_its_input():
    b = _Builder("reshape", (1, 8))
    a = b.op("CONV_2D", [0], (1, 1, 64), weights=True)
    r = b.op("RESHAPE", [a], (1, 64))
    out = b.op("FULLY_CONNECTED", [r], (1, 4), weights=True)
    plan = plan_memory(b.plan(out), io="caller")
    assert plan.buffer_of(a) == plan.buffer_of(r)
    assert plan.arena_bytes == 64


def test_reshape_of_input_to_output_is_a_copy():
    b = _Builder("copy", (1, 8))
    r = b.op("RESHAPE", [0], (2, 4))
    plan = plan_memory(b.plan(r), io="caller")
    assert plan.buffer_of(0).place == "input" and plan.buffer_of(r).place == "output"
    assert plan.arena_bytes == 0


def test_add_writes_into_a_dead_input_only():
    b = _Builder("residual", (1, 32))
    a = b.op("CONV_2D", [0], (1, 32), weights=True)
    c = b.op("CONV_2D", [a], (1, 32), weights=True)
    s = b.op("ADD", [a, c], (1, 32))  # a and c both die here: s takes a's place
    d = b.op("CONV_2D", [s], (1, 32), weights=True)
    e = b.op("ADD", [d, s], (1, 32))  # s dies here, d too
    out = b.op("ADD", [e, 0], (1, 32))  # never into the caller's input
    kp = b.plan(out)
    g, plan = kp.graph, plan_memory(kp, io="caller")
    _simulate(g, plan, {})
    assert plan.buffer_of(s) == plan.buffer_of(a)
    assert plan.buffer_of(e) in (plan.buffer_of(d), plan.buffer_of(s))
    assert plan.buffer_of(out).place == "output" and plan.buffer_of(0).place == "input"
    assert plan.arena_bytes == 64


def test_add_keeps_a_live_input():
    b = _Builder("keep", (1, 16))
    a = b.op("CONV_2D", [0], (1, 16), weights=True)
    s = b.op("ADD", [a, a], (1, 16))
    t = b.op("ADD", [s, a], (1, 16))  # a is still read here: s cannot take a's place
    out = b.op("CONV_2D", [t], (1, 4), weights=True)
    kp = b.plan(out)
    g, plan = kp.graph, plan_memory(kp)
    _simulate(g, plan, {})
    assert plan.buffer_of(s) != plan.buffer_of(a)
    assert plan.buffer_of(t) in (plan.buffer_of(a), plan.buffer_of(s))  # both die at t


@pytest.mark.parametrize("kind", ["MAX_POOL_2D", "AVERAGE_POOL_2D"])
def test_pool_writes_into_its_dead_input_without_leading_padding(kind):
    pool = dict(filter_h=1, filter_w=3, stride_h=1, stride_w=2)
    b = _Builder("pools", (1, 1, 64, 4))
    a = b.op("CONV_2D", [0], (1, 1, 64, 8), weights=True)
    p = b.op(kind, [a], (1, 1, 31, 8), padding="VALID", **pool)  # a dies here: in place
    q = b.op(kind, [p], (1, 1, 16, 8), padding="SAME", **pool)  # SAME pads 1 in front: a copy
    c = b.op("CONV_2D", [q], (1, 1, 16, 8), weights=True)
    out = b.op(kind, [c], (1, 1, 7, 8), padding="VALID", **pool)  # the caller's output: a copy
    kp = b.plan(out)
    g, plan = kp.graph, plan_memory(kp, io="caller")
    _simulate(g, plan, {})
    assert plan.buffer_of(p) == plan.buffer_of(a)
    assert plan.buffer_of(q) != plan.buffer_of(p) and plan.buffer_of(out).place == "output"
    # p's 248 bytes are all that is left of a's 512 once a dies: q goes in the freed tail.
    assert plan.buffer_of(p).offset + 248 <= plan.buffer_of(q).offset < 512
    assert plan.arena_bytes == 512


def test_format_lists_every_arena_tensor():
    b = _Builder("chain", (1, 1, 1024, 1))
    t = b.op("CONV_2D", [0], (1, 1, 512, 8), weights=True)
    t = b.op("DEPTHWISE_CONV_2D", [t], (1, 1, 256, 8), weights=True)
    t = b.op("CONV_2D", [t], (1, 1, 256, 16), weights=True)
    t = b.op("CONV_2D", [t], (1, 1, 16), weights=True)
    kp = b.plan(t, {3: 100})
    g, plan = kp.graph, plan_memory(kp, io="caller")
    text = plan.format(g)
    assert f"arena {plan.arena_bytes} bytes" in text
    for t in range(1, len(g.tensors) - 1):
        if g.tensor(t).data is None:
            assert f"t{t} {g.tensor(t).name}" in text
    assert "scratch of call 3" in text and "caller's input buffer, 1024 bytes" in text


def _random_window(rng: np.random.Generator, seed: int):
    """A random conv window (1D for odd seeds, else 2D): input, kernel, stride, dilation, leading
    padding and output sizes, and the input pixels each output pixel's window reads; None where
    the output is empty."""
    in_h, in_w = (1, int(rng.integers(1, 60))) if seed % 2 else tuple(int(v) for v in rng.integers(1, 12, 2))
    k_h, k_w = min(in_h, int(rng.integers(1, 4))), min(in_w, int(rng.integers(1, 6)))
    stride, dilation = tuple(int(v) for v in rng.integers(1, 3, 2)), (1, int(rng.integers(1, 3)))
    padding = str(rng.choice(["SAME", "VALID"]))
    (out_h, pad_h), (out_w, pad_w) = (compute_padding(padding, n, k, s, d) for n, k, s, d in
                                      ((in_h, k_h, stride[0], dilation[0]), (in_w, k_w, stride[1], dilation[1])))
    if out_h < 1 or out_w < 1:
        return None
    reads = []
    for oy in range(out_h):
        for ox in range(out_w):
            ys = [oy * stride[0] - pad_h + ky * dilation[0] for ky in range(k_h)]
            xs = [ox * stride[1] - pad_w + kx * dilation[1] for kx in range(k_w)]
            reads.append({y * in_w + x for y in ys for x in xs if 0 <= y < in_h and 0 <= x < in_w})
    return (in_h, in_w), (k_h, k_w), stride, dilation, (pad_h, pad_w), (out_h, out_w), reads


@pytest.mark.parametrize("channel_local", [True, False], ids=["depthwise", "conv"])
@pytest.mark.parametrize("seed", range(30))
def test_overwrite_lead_never_clobbers_a_window_still_to_be_read(seed, channel_local):
    """An output written pixel by pixel from `lead` bytes before its input: when pixel p is
    written, every window a kernel may still read (from pixel p - PIXELS_AHEAD + 1 on; for a
    depthwise kernel from p + 1 on, and p itself where it is read again) is intact, over its own
    channel for a depthwise kernel, over all its bytes for a conv; where windows are
    contiguous, with less lead (by more than the word alignment) some window is not."""
    rng = np.random.default_rng(seed)
    conv = _random_window(rng, seed)
    if conv is None:
        return
    (in_h, in_w), (k_h, k_w), stride, dilation, (pad_h, pad_w), (out_h, out_w), reads = conv
    c_in = int(rng.integers(1, 9))
    c_out = c_in if channel_local else int(rng.integers(1, 17))
    rereads = tuple(int(q) for q in rng.choice(len(reads), size=min(3, len(reads)), replace=False)) \
        if channel_local and seed % 2 else ()
    lead = window.overwrite_lead((in_h, in_w), (out_h, out_w), stride, (pad_h, pad_w), c_in, c_out, channel_local,
                                 rereads=rereads)
    assert lead % 4 == 0 and (not channel_local or lead % c_in == 0)

    def windows_intact(lead: int) -> bool:
        written: set[int] = set()  # input bytes written over (channel 0's, for a depthwise kernel)
        for p in range(len(reads)):
            if channel_local:  # after its own window, unless that one is read again
                written.add(p * c_out - lead)
                needed = {i * c_in for q in range(p if p in rereads else p + 1, len(reads)) for i in reads[q]}
            else:
                written.update(range(p * c_out - lead, (p + 1) * c_out - lead))
                needed = {i * c_in + c for q in range(max(0, p - window.PIXELS_AHEAD + 1), len(reads))
                          for i in reads[q] for c in range(c_in)}
            if written & needed:
                return False
        return True

    assert windows_intact(lead)
    if in_h == 1 and dilation == (1, 1):  # contiguous windows: the lead is the least that works
        step = c_in if channel_local else 1
        assert lead < 4 * step or not windows_intact(lead - 4 * step)


def test_depthwise_writes_over_its_input_from_a_lead():
    """A depthwise convolution whose input dies there: the output starts `lead` bytes before it,
    so the arena holds the pair in lead + input bytes, not input + output (no lead at stride 2)."""
    b = _Builder("dw", (1, 1, 64, 4))
    a = b.op("CONV_2D", [0], (1, 1, 256, 8), weights=True)  # 2048 bytes
    d = b.op("DEPTHWISE_CONV_2D", [a], (1, 1, 128, 8), weights=True)  # stride 2: 1024 bytes
    out = b.op("CONV_2D", [d], (1, 8), weights=True)
    kp = b.plan(out)
    lead = window.overwrite_lead((1, 256), (1, 128), (1, 2), (0, 1), 8, 8, channel_local=True)
    calls = tuple(replace(c, overwrites=(a,), overwrite_lead=lead) if c.kind == "DEPTHWISE_CONV_2D" else c
                  for c in kp.calls)
    kp = KernelPlan(kp.graph, kp.source, calls)
    plan = plan_memory(kp)
    _simulate(kp.graph, plan, {})
    assert plan.buffer_of(d) == plan.buffer_of(a)
    assert plan.offset_of(a) - plan.offset_of(d) == lead
    assert plan.arena_bytes == 256 + 2048  # the input of 256 and the conv's 2048 are the peak
    assert lead == 0  # stride 2: each pixel lands behind the windows after its own
    assert plan_memory(kp, io="caller").buffer_of(d) == plan_memory(kp, io="caller").buffer_of(a)


def test_a_depthwise_output_sinks_under_a_chain_growing_upwards():
    """Strided depthwise convolutions (no lead needed) each followed by a conv written last pixel
    first from after its input's start: each depthwise output taken down to the bottom of the
    buffer, by whole pixels of more lead, lowers the chain above it; the planner sinks it only
    where that makes the arena smaller, and the plan stays bit-safe (simulated)."""
    b = _Builder("sink", (1, 1, 64, 4))
    a = b.op("CONV_2D", [0], (1, 1, 256, 8), weights=True)  # 2048 bytes
    d1 = b.op("DEPTHWISE_CONV_2D", [a], (1, 1, 128, 8), weights=True)
    r1 = b.op("CONV_2D", [d1], (1, 1, 128, 32), weights=True)  # 4096 bytes
    d2 = b.op("DEPTHWISE_CONV_2D", [r1], (1, 1, 64, 32), weights=True)
    r2 = b.op("CONV_2D", [d2], (1, 1, 64, 64), weights=True)  # 4096 bytes
    out = b.op("CONV_2D", [r2], (1, 8), weights=True)
    kp = b.plan(out)
    sharing = {d1: dict(overwrite_lead=0, lead_step=8), r1: dict(overwrite_lead=-128),
               d2: dict(overwrite_lead=0, lead_step=32), r2: dict(overwrite_lead=-256)}
    calls = tuple(replace(c, overwrites=c.inputs, **sharing[c.outputs[0]]) if c.outputs[0] in sharing else c
                  for c in kp.calls)
    sinking = KernelPlan(kp.graph, kp.source, calls)
    fixed = KernelPlan(kp.graph, kp.source, tuple(replace(c, lead_step=0) for c in calls))
    plan, at_least = plan_memory(sinking), plan_memory(fixed)
    _simulate(kp.graph, plan, {})
    assert at_least.arena_bytes == 128 + 256 + 4096  # the second depthwise where its input starts
    assert plan.arena_bytes == 256 + 4096  # ... and 128 bytes (four pixels) lower
    assert plan.offset_of(r1) - plan.offset_of(d2) == 128
    assert plan_memory(sinking, io="caller").arena_bytes == plan_memory(fixed, io="caller").arena_bytes


@pytest.mark.parametrize("blocks", [2, 5], ids=["every-choice", "local-search"])
def test_sharing_is_chosen_where_it_lowers_the_arena(blocks):
    """A chain of depthwise and pointwise convolutions whose outputs may start before their
    inputs: sharing every one drifts the chain down the arena, so the planner picks which; never
    worse than sharing none, and bit-safe (simulated)."""
    b = _Builder("separable", (1, 1, 512, 4))
    t, c = 0, 4
    for _ in range(blocks):
        t = b.op("DEPTHWISE_CONV_2D", [t], (1, 1, 512, c), weights=True)
        t = b.op("CONV_2D", [t], (1, 1, 512, 2 * c), weights=True)
        c *= 2
    out = b.op("CONV_2D", [t], (1, 4), weights=True)
    kp = b.plan(out)
    calls = []
    for call in kp.calls:
        if call.kind in ("CONV_2D", "DEPTHWISE_CONV_2D") and call.outputs[0] != out:
            c_in = kp.graph.tensor(call.inputs[0]).shape[-1]
            c_out = kp.graph.tensor(call.outputs[0]).shape[-1]
            lead = window.overwrite_lead((1, 512), (1, 512), (1, 1), (0, 1), c_in, c_out,
                                         channel_local=call.kind == "DEPTHWISE_CONV_2D")
            call = replace(call, overwrites=call.inputs, overwrite_lead=lead)
        calls.append(call)
    shared = KernelPlan(kp.graph, kp.source, tuple(calls))
    plan, alone = plan_memory(shared), plan_memory(kp)
    _simulate(kp.graph, plan, {})
    assert plan.arena_bytes < alone.arena_bytes
    assert any(plan.buffer_of(c.outputs[0]) == plan.buffer_of(c.inputs[0]) for c in calls if c.overwrite_lead)


@pytest.mark.parametrize("seed", range(40))
def test_gather_lead_keeps_every_element_still_to_be_read(seed):
    """A STRIDED_SLICE or TRANSPOSE written element by element from gather_lead bytes before its
    input, simulated on one buffer: its output equals the gather's, and with one word less of
    lead some element is read after it was written over."""
    rng = np.random.default_rng(seed)
    shape = tuple(int(v) for v in rng.integers(1, 7, 3))
    x = np.arange(int(np.prod(shape))).reshape(shape)
    if seed % 2:
        read = np.transpose(x, tuple(rng.permutation(3)))
    else:
        read = x[tuple(slice(int(rng.integers(0, n)), None, int(rng.integers(1, 3))) for n in shape)]
    read = read.reshape(-1)
    lead = gather_lead(read)
    assert lead % 4 == 0

    def gathered(lead: int) -> bool:
        memory = np.full(lead + x.size, -1)
        memory[lead:] = x.reshape(-1)
        for k, i in enumerate(read):
            memory[k] = memory[lead + i]
        return bool((memory[:len(read)] == read).all())

    assert gathered(lead)
    assert lead == 0 or not gathered(lead - 4)


@pytest.mark.parametrize("seed", range(30))
def test_reverse_lag_never_clobbers_a_window_still_to_be_read(seed):
    """An output written pixel by pixel last first from `lag` bytes after its input's start: when
    pixel p is written, every window a kernel may still read (up to pixel p + REVERSE_AHEAD - 1)
    is intact; with one word less of lag, where windows are contiguous, some window is not."""
    rng = np.random.default_rng(seed)
    conv = _random_window(rng, seed)
    if conv is None:
        return
    (in_h, in_w), (k_h, k_w), stride, dilation, (pad_h, pad_w), (out_h, out_w), reads = conv
    c_in, c_out = int(rng.integers(1, 9)), int(rng.integers(1, 17))
    lag = window.reverse_lag((in_h, in_w), (out_h, out_w), stride, (pad_h, pad_w), (k_h, k_w), dilation, c_in, c_out)
    assert lag % 4 == 0

    def windows_intact(lag: int) -> bool:
        written: set[int] = set()
        for p in reversed(range(len(reads))):
            written.update(range(lag + p * c_out, lag + (p + 1) * c_out))
            needed = {i * c_in + c for q in range(min(len(reads), p + window.REVERSE_AHEAD))
                      for i in reads[q] for c in range(c_in)}
            if written & needed:
                return False
        return True

    assert windows_intact(lag)
    if in_h == 1 and dilation == (1, 1):
        assert not windows_intact(lag - 4)


@pytest.mark.parametrize("seed", range(30))
def test_slot_lead_copies_a_concatenation_input_over_itself(seed):
    """One input of a concatenation copied into its slot, in order, from slot_lead bytes before
    it, simulated on one buffer: the slot holds the input, which started inside the output."""
    rng = np.random.default_rng(seed)
    outer, sizes = int(rng.integers(1, 20)), [int(v) for v in rng.integers(1, 9, int(rng.integers(2, 5)))]
    k = int(rng.integers(len(sizes)))
    total, offset, size = sum(sizes), sum(sizes[:k]), sizes[k]
    x = np.arange(outer * size) + 1000
    lead = slot_lead(outer, size, total, offset)
    assert lead % 4 == 0

    def copied(lead: int) -> bool:
        memory = np.full(max(lead + x.size, outer * total), -1)
        memory[lead:lead + x.size] = x
        for o in range(outer):
            for i in range(size):
                memory[o * total + offset + i] = memory[lead + o * size + i]
        return bool((memory[:outer * total].reshape(outer, total)[:, offset:offset + size] == x.reshape(outer, size)).all())

    assert copied(lead)
    assert lead < outer * total  # the input lies (partly) in the output's own bytes
