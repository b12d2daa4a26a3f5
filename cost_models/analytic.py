"""Analytic cost model of the generated C (autotune.codegen), per core, from kernel-plan features.

flash   = start-up code + code of each kernel library file used + per call its parameter struct
          and call site, its weights as stored and its other constants (channel tables, LUTs)
RAM     = activations (the planned arena, plus the caller's input and output buffers where the
          model does not keep them in its arena: GeneratedC.activation_bytes) + stack
          (a base plus the deepest frame of the kernels used, where a core's kernels differ)
latency = the entry function's own cycles + per kernel call its set-up there and the sum over
          its work terms of cycles per unit x units (KernelCall.work and MACs), at the target's
          clock; plus, on a core behind a flash cache (the RP2040's XIP cache), the misses of a
          warm inference: none while the code and data the model touches fit the cache, rising to
          every line touched once per inference (`FlashCache`)

Every kernel symbol has its own terms: a convolution costs per MAC, per output (requantization
and store), per output position, per window gathered into scratch, per gathered tap and per
byte filled, copied or repeated into it; a pool per value read and per output; an element-wise
kernel per output. A kernel the table does not know is an error, never a default.
The Cortex-M0+ constants are fitted by benchmarks/bench_kernels.py to the generated kernels run
on rp2040-sim (M0+ timings, each call's zero-wait cycles), which writes them to
cost_models/fitted_cycles.json, read here (never pasted), and
its XIP term to rp2040-sim's XIP cache model on MLPs of 15-170 KB. The Cortex-M4
figures are the M0+ ones scaled by measured instruction counts at an assumed equal cycles per
instruction (see TABLES). The Cortex-M55 constants are fitted by the same benchmark, the same
way, to the Helium kernels (cortex-m55-mve) run on apollo5-sim (LLVM's Cortex-M55 scheduling
model, zero-wait TCM); the vectorised kernels cost per iteration of their vector loops (work
terms mve_*: blocks of four pixels, 16-byte chunks, groups of four or eight channels, each
requantization's rounding fix-up) in place of per MAC and per output. apollo5-sim counts the
entry function's code between calls to the call that follows, so the M55 per-call set-up is in
each kernel's "calls" term. Its flash and stack are those of the Helium kernels as built. Each
target names its table (`Target.cost_table`), and each table the runner it is fitted to. The search measures flash and RAM from real builds; device runners
and learned models replace the latency prediction.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from pathlib import Path

from autotune.measurement import Measurement
from cost_models.base import CallFeatures, CostModel, Costs, ModelFeatures
from device_runners.targets import get_target


@dataclass(frozen=True)
class FlashCache:
    """A cache in front of flash holding code and weights: the RP2040's XIP cache
    (device_runners/rp2040_xip.py). Warm misses per inference, with T the bytes of code and data
    the model touches (flash less what runs only outside inference, `CoreTable.board_flash`):
    0 while T <= the cache, else T / line x min(1, slope x (T - cache) / cache)."""

    bytes: int
    line_bytes: int
    miss_cycles: int
    slope: float  # fitted (benchmarks/bench_kernels.py, "xip" in kernels.json)

    def misses(self, footprint: float) -> float:
        excess = max(0.0, footprint - self.bytes) / self.bytes
        return footprint / self.line_bytes * min(1.0, self.slope * excess)


@dataclass(frozen=True)
class CoreTable:
    runtime_flash: int  # vector table, start-up, shared helpers (at_common.c): bytes
    kernel_flash: dict[str, int]  # code of each kernel library file used, bytes
    stack_ram: int
    cycles: dict[str, dict[str, float]]  # kernel symbol -> work term ("macs", ...) -> cycles per unit
    invoke_cycles: float  # the entry function's prologue and epilogue
    call_cycles: float  # the entry function's set-up of one kernel call
    call_flash: int = 100  # parameter struct and call site, per kernel call
    board_flash: int = 0  # boot code and the board's request loop: flash that inference never reads
    flash_cache: FlashCache | None = None
    # Stack of a kernel (and what it calls) above stack_ram, by symbol; the deepest used counts.
    kernel_stack: dict[str, int] = field(default_factory=dict)
    # cycles per unit of work a fused kernel (FUSED) costs beyond the sum of its parts'
    fused_extra: dict[str, dict[str, float]] = field(default_factory=dict)
    # A fused conv + max pool that pools its largest sums (the Cortex-M0+'s, work terms m0_pool_*,
    # autotune.ops.conv.m0_pools_sums): cycles per conv output so pooled (a max of two sums, in
    # place of its requantization and pool read) and per conv pixel (in place of the conv's
    # per-position cost); each pool output then costs one requantization.
    pooled_sums: tuple[float, float] | None = None
    fitted_to: str = ""  # the runner whose measurements the cycle constants are fitted to


# Weight decoders (autotune/codecs): code bytes of each file's whole-tensor decoder, as built for
# the M0+ (arm-none-eabi-gcc -Os symbol sizes; at_decode_common.c without the one-row helpers), for
# every core until one has its own. Their cycles come from the fit on rp2040-sim that
# benchmarks/bench_codecs.py writes (cost_models/codec_cycles.json, `decoder_cycles`).
DECODER_FLASH = {"at_decode_common.c": 448, "at_decode_dense.c": 102, "at_decode_bitpack.c": 178,
                 "at_decode_palette.c": 198, "at_decode_rle.c": 320, "at_decode_sparse.c": 192,
                 "at_decode_rans.c": 566, "at_decode_heatshrink.c": 430, "at_decode_lz4.c": 314,
                 "at_decode_rans_binned.c": 578, "at_decode_rans_grid.c": 600}


def decoder_cycles(symbol: str) -> dict[str, float] | None:
    """Cycles per work term of weight decoder `symbol` (at_decode_<storage>, or its one-filter
    form at_decode_<storage>_row: the same terms, `calls` once per filter), None for another."""
    from autotune.codecs.auto import load_cycle_model

    storage = symbol.removeprefix("at_decode_").removesuffix("_row")
    model = load_cycle_model()
    if storage == symbol or storage not in model.per_call:
        return None
    return {"calls": model.per_call[storage], "decoded_bytes": model.per_output_byte[storage],
            "payload_bytes": model.per_payload_byte[storage]}


# The fitted constants, written by `make bench BENCH=kernels` (benchmarks/bench_kernels.py): per
# core table its cycles per unit of each kernel's work terms, the entry function's own cycles and
# what it was fitted to; for the Cortex-M0+ also the XIP slope and the M4 instruction ratios.
FITTED_PATH = Path(__file__).with_name("fitted_cycles.json")
FITTED: dict[str, dict] = json.loads(FITTED_PATH.read_text())


# Kernels the single-op fit does not reach (they only run inside whole models), solved from the
# simulators on the test zoo's calls; kept here so a refit does not drop them.
ZOO_SOLVED = {
    # the zoo's concat and activations slot copies (96, 144 and 384 bytes)
    "cortex-m0plus": {"at_concat_slot_s8": {"bytes": 9.44, "calls": 175.0, "copies": 27.9}},
    "cortex-m55": {"at_concat_slot_s8": {"bytes": 13.8, "calls": 110.0}},
}


def _fitted(core: str) -> dict:
    """The CoreTable fields fitted for `core`, with the kernels solved on the zoo."""
    fit = FITTED[core]
    cycles = {**fit["cycles"], **ZOO_SOLVED[core]}
    return {"cycles": cycles, "invoke_cycles": fit["invoke_cycles"], "call_cycles": fit["call_cycles"],
            "fitted_to": fit["fitted_to"], **({"pooled_sums": tuple(fit["pooled_sums"])} if "pooled_sums" in fit else {})}


# The RP2040's: 16 KB, 8-byte lines, 56 cycles per miss (device_runners/boot2.py FLASH).
RP2040_XIP = FlashCache(bytes=16 * 1024, line_bytes=8, miss_cycles=56, slope=FITTED["cortex-m0plus"]["xip_slope"])


CORTEX_M0PLUS = CoreTable(
    runtime_flash=300,
    board_flash=1460,  # boot2 (256 B), clocks, UART0, the request loop and the cycle counter
    flash_cache=RP2040_XIP,
    # the cortex-m0plus variants of conv, dense and pools with the assembly helpers they use
    # (cortex-m0plus/at_common.c: the MAC loops, the requantization, the pixel loop and window
    # walker conv and depthwise share); depthwise: its own file's code beyond the conv's helpers,
    # which every zoo model with a depthwise call also links (measured, rp2040 ELF, -Os; the
    # others: fitted)
    kernel_flash={"at_conv_s8.c": 1280, "at_depthwise_conv_s8.c": 714, "at_fully_connected_s8.c": 716,
                  "at_mean_s8.c": 400, "at_softmax_s8.c": 772, "at_pool_s8.c": 1230, "at_add_s8.c": 804,
                  "at_pad_s8.c": 198, "at_concat_s8.c": 66, "at_requantize_s8.c": 176, "at_lut_s8.c": 32,
                  "at_mul_s8.c": 482, "at_gather_s8.c": 102,
                  # the fused kernel: its object (with the generic pool of its fallback path),
                  # at_m0_dot4_max and, for that path, the shared pixel loop
                  "at_conv_max_pool_s8.c": 970},
    stack_ram=220,  # the deepest path runs from the board's request loop
    # the variants' frames above it (measured, rp2040 ELF: the zoo's deepest path less stack_ram):
    # the sums (up to 32), the fused kernel's largest sums (32), the assembly's saved registers
    kernel_stack={"at_conv_s8": 252, "at_conv_reverse_s8": 212, "at_depthwise_conv_s8": 244,
                  "at_fully_connected_s8": 52, "at_conv_max_pool_s8": 412},
    # the fused conv + max pool pools each window over scratch with one call of the pool's
    # assembly, not one per input row: least squares through the origin on the zoo's eight fused
    # calls on rp2040-sim
    fused_extra={"at_conv_max_pool_s8": {"pool_reads": 5.7}},
    **_fitted("cortex-m0plus"),
)

# The generic C on the Cortex-M4 executes, per kernel, this many instructions per instruction it
# executes on the Cortex-M0+ (measured: nano33ble-sim against rp2040-sim on the same calls,
# benchmarks/bench_kernels.py, `cortex_m4_instruction_ratio` in benchmarks/results/kernels.json):
# Thumb-2's post-indexed loads, MLA and wider immediates do the same work in fewer instructions.
M4_INSTRUCTION_RATIO = {**FITTED["cortex-m0plus"]["cortex_m4_instruction_ratio"],
                        "at_concat_slot_s8": FITTED["cortex-m0plus"]["cortex_m4_instruction_ratio"]["at_concat_s8"]}
M4_ENTRY_RATIO = 0.72  # the entry function's own code (argument set-up): about the convolutions' ratio


def _scaled(table: CoreTable, ratios: dict[str, float], entry_ratio: float, **changes) -> CoreTable:
    """`table` with each kernel's cycle constants times its instruction ratio."""
    cycles = {symbol: {term: round(c * ratios[symbol], 2) for term, c in terms.items()}
              for symbol, terms in table.cycles.items()}
    return replace(table, cycles=cycles, invoke_cycles=table.invoke_cycles * entry_ratio,
                   call_cycles=table.call_cycles * entry_ratio, **changes)


TABLES = {
    "cortex-m0plus": CORTEX_M0PLUS,
    # ASSUMPTION until a runner times the M4 (nano33ble-sim counts instructions only): the M0+
    # cycles scaled by the measured instruction ratio, i.e. equal cycles per instruction on both
    # cores (the M4 takes 2 cycles per load, 1 when pipelined, 2-4 per taken branch; the M0+ 2
    # and 2). The M4 has a single-cycle 32x32 multiply-accumulate (MLA, which the generic C
    # uses) and SMLAD, two 16x16 MACs per cycle, which it does not: a cortex-m4 kernel library
    # with SMLAD would cut the per-MAC term further. Memory assumed zero-wait (the nRF52840
    # runs from flash through its cache). Flash: the kernels' code as built for the M4.
    "cortex-m4": _scaled(
        CORTEX_M0PLUS, M4_INSTRUCTION_RATIO, M4_ENTRY_RATIO, runtime_flash=310, board_flash=0, flash_cache=None,
        stack_ram=180, kernel_stack={}, fused_extra={}, pooled_sums=None,
        fitted_to="rp2040-sim, scaled by nano33ble-sim instruction counts",
        kernel_flash={"at_conv_s8.c": 681, "at_depthwise_conv_s8.c": 632, "at_fully_connected_s8.c": 313,
                      "at_mean_s8.c": 329, "at_softmax_s8.c": 536, "at_pool_s8.c": 1000, "at_add_s8.c": 630,
                      "at_pad_s8.c": 188, "at_concat_s8.c": 64, "at_requantize_s8.c": 128, "at_lut_s8.c": 30,
                      "at_mul_s8.c": 378, "at_gather_s8.c": 90, "at_conv_max_pool_s8.c": 450}),
    # Flash: the Helium kernels' code as built (cortex-m55-mve objects, -Os, their assembly loops
    # and at_window_s8 included); the generic C for the rest.
    "cortex-m55": CoreTable(
        runtime_flash=310,
        kernel_flash={"at_conv_s8.c": 4248, "at_depthwise_conv_s8.c": 2806, "at_fully_connected_s8.c": 2700,
                      "at_mean_s8.c": 836, "at_softmax_s8.c": 582, "at_pool_s8.c": 2598, "at_add_s8.c": 746,
                      "at_pad_s8.c": 188, "at_concat_s8.c": 64, "at_requantize_s8.c": 148, "at_lut_s8.c": 38,
                      "at_mul_s8.c": 426, "at_gather_s8.c": 90, "at_conv_max_pool_s8.c": 4308},
        stack_ram=252,  # start-up, main, the entry and a dense layer
        # the Helium conv and depthwise frames (saved q4-q7, copied windows, a group's constants);
        # the fused conv + max pool's runs with their copied windows and run records (one for pairs
        # of pool windows besides); the dense kernel's general path into short_layer (saved q4-q7)
        # and its rare redo through at_mve_rows
        kernel_stack={"at_conv_s8": 224, "at_depthwise_conv_s8": 356, "at_conv_max_pool_s8": 484,
                      "at_conv_reverse_s8": 224, "at_fully_connected_s8": 164},
        **_fitted("cortex-m55"),
    ),
}


# Kernels priced by others' where a table has none of their own: a fused kernel costs what its
# parts do, the first's terms, the others' as pool_<term> (autotune.ops.conv.fuse_max_pool names
# the fused call's work so); a variant in another order what the kernel does.
FUSED = {"at_conv_max_pool_s8": ("at_conv_s8", "at_max_pool_s8"), "at_conv_reverse_s8": ("at_conv_s8",)}


class AnalyticCostModel(CostModel):
    def __init__(self, target: str, placement: str = "flash", table: CoreTable | None = None):
        """`placement` (device_runners.build.PLACEMENTS): what the build copies to SRAM, which
        the flash cache then never sees. `table` replaces the target's (a benchmark's new fit)."""
        self.target = target
        self.placement = placement
        self.table = table or TABLES[get_target(target).cost_table]

    @property
    def source(self) -> str:
        return f"predicted:analytic-{self.target}"

    def call_cycles(self, call: CallFeatures) -> float:
        """Zero-wait cycles of one kernel call, its set-up in the entry function included; 0 for
        a call with no code."""
        if call.symbol is None:
            return 0.0
        if call.symbol in FUSED and call.symbol not in self.table.cycles:
            parts = FUSED[call.symbol]
            missing = [s for s in parts if s not in self.table.cycles]
            if missing:
                raise ValueError(f"analytic-{self.target}: no cycle figures for kernel {missing[0]}")
            terms = dict(self.table.cycles[parts[0]])
            terms.update({f"pool_{t}": c for s in parts[1:] for t, c in self.table.cycles[s].items() if t != "calls"})
            for term, extra in self.table.fused_extra.get(call.symbol, {}).items():
                terms[term] = terms.get(term, 0.0) + extra
            if self.table.pooled_sums is not None:
                per_sum, per_pixel = self.table.pooled_sums
                requantize = terms.get("outputs" if call.count("outputs") else "relu_outputs", 0.0)
                terms.update(m0_pool_sums=per_sum - requantize - terms.get("pool_reads", 0.0),
                             m0_pool_pixels=per_pixel - terms.get("positions", 0.0), m0_pool_outputs=requantize)
        else:
            terms = self.table.cycles.get(call.symbol) or decoder_cycles(call.symbol)
            if terms is None:
                raise ValueError(f"analytic-{self.target}: no cycle figures for kernel {call.symbol}")
        return self.table.call_cycles + sum(per_unit * call.count(term) for term, per_unit in terms.items())

    def compute_cycles(self, features: ModelFeatures) -> float:
        """Cycles with zero-wait memory."""
        return self.table.invoke_cycles + sum(self.call_cycles(c) for c in features.calls)

    def cycles(self, features: ModelFeatures) -> float:
        """Compute (zero-wait) cycles plus the flash cache's warm misses, where there is one."""
        t = self.table
        total = self.compute_cycles(features)
        if t.flash_cache is not None:
            total += t.flash_cache.misses(self.cached_footprint(features)) * t.flash_cache.miss_cycles
        return total

    def cached_footprint(self, features: ModelFeatures) -> float:
        """Bytes of code and data an inference reads through the flash cache: the flash image
        less the board's own code and what the placement copies to SRAM."""
        return self.flash_bytes(features) - self.table.board_flash - self.placed_bytes(features)

    def placed_bytes(self, features: ModelFeatures) -> float:
        """What the placement copies from flash to SRAM at start-up: weights and tables, kernel code."""
        placed = 0.0
        if self.placement in ("sram_weights", "sram_all"):
            placed += sum(c.weight_bytes + c.const_bytes for c in features.calls if c.symbol)
        if self.placement in ("sram_kernels", "sram_all"):
            placed += sum(self._code_bytes(s) for s in self._sources(features))
        return placed

    def flash_bytes(self, features: ModelFeatures) -> float:
        t = self.table
        code = t.runtime_flash + t.board_flash + sum(self._code_bytes(s) for s in self._sources(features))
        return code + sum(t.call_flash + c.weight_bytes + c.const_bytes for c in features.calls if c.symbol)

    def _code_bytes(self, source: str) -> int:
        return self.table.kernel_flash.get(source) or DECODER_FLASH[source]

    def _sources(self, features: ModelFeatures) -> set[str]:
        sources = {c.source for c in features.calls if c.source}
        if any(s in DECODER_FLASH for s in sources):
            sources.add("at_decode_common.c")
        unknown = sources - set(self.table.kernel_flash) - set(DECODER_FLASH)
        if unknown:
            raise ValueError(f"analytic-{self.target}: no code size for kernel file {sorted(unknown)[0]}")
        return sources

    def predict(self, features: ModelFeatures) -> Costs:
        t = self.table
        flash = self.flash_bytes(features)
        stack = t.stack_ram + max((t.kernel_stack.get(c.symbol, 0) for c in features.calls), default=0)
        ram = features.activation_bytes + stack + self.placed_bytes(features)
        ms = self.cycles(features) / get_target(self.target).clock_hz * 1e3
        return Costs(
            flash=Measurement(float(flash), "bytes", self.source),
            ram=Measurement(float(ram), "bytes", self.source),
            latency=Measurement(ms, "ms", self.source),
        )
