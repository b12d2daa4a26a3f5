"""Analytic cost model of the generated C (autotune.codegen), per core.

flash   = start-up code + code of each kernel used + per-op parameter structs and calls + weights,
          biases and per-channel constants (initial accumulator, multiplier, shift: 12 bytes)
RAM     = activations (the planned arena plus the caller's input and output buffers) + stack
          (a base plus the deepest frame of the kernels used, where a core's kernels differ)
latency = sum over ops of (a x MACs + b x outputs + c x output pixels) for ops with MACs, or
          elements x cycles per element, plus the call of each kernel, at the target's clock,
          plus, on a core behind a flash cache (the RP2040's XIP cache), the misses of a warm
          inference: none while the code and data the model touches fit the cache, rising to
          every line touched once per inference (`FlashCache`)

`b` is the requantization and store of one output; `c` the set-up of one output position (a
window gathered for padded, dilated and 2D convolutions, a pooling window, the call of a fully
connected or MEAN kernel). The Cortex-M0+ constants are those benchmarks/bench_kernels.py fitted
to the generated kernels run on rp2040-sim (M0+ timings, zero-wait cycles per kernel call), and
its XIP term fitted to rp2040-sim's XIP cache model on MLPs of 15-170 KB; before rp2040-sim
counted the memcpy that gathers 2D and dilated convolution windows: such models now run up to
about 25 % slower than predicted (the features do not see window gathering); the element-wise
figures were measured the same way on single ops. Features from the kernel plan (issue 7) will
replace these IR-op features and be refitted the same way. A depthwise convolution with a depth
multiplier > 1 gathers every window and runs about 30 % slower than predicted. The Cortex-M55
flash and stack are those of the Helium kernels as built; its latency constants are still
assumptions, not yet fitted to apollo5-sim.
The Cortex-M4 figures are the M0+ ones scaled by measured instruction counts at an assumed equal
cycles per instruction (see TABLES). Each target names its table (`Target.cost_table`).
The search measures flash and RAM from real builds; device runners and learned models replace
the latency prediction.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from autotune.measurement import Measurement
from cost_models.base import CostModel, Costs, ModelFeatures
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
    runtime_flash: int  # vector table, start-up, shared loops: bytes
    kernel_flash: dict[str, int]  # code of each kernel used, bytes
    stack_ram: int
    mac_cycles: dict[str, tuple[float, float, float]]  # op with MACs -> cycles per MAC, output, pixel
    cycles_per_elem: dict[str, float]  # other ops, per output element
    cycles_per_op: float  # the call of one kernel
    op_flash: int = 100  # parameter struct and call site, per op
    channel_flash: int = 12  # initial accumulator, multiplier and shift, per output channel
    default_kernel_flash: int = 400  # an op kind not in the table
    board_flash: int = 0  # boot code and the board's request loop: flash that inference never reads
    flash_cache: FlashCache | None = None
    # Stack of a kernel (and what it calls) above stack_ram, by op kind; the deepest used counts.
    kernel_stack: dict[str, int] = field(default_factory=dict)


# The RP2040's: 16 KB, 8-byte lines, 56 cycles per miss (device_runners/boot2.py FLASH).
RP2040_XIP = FlashCache(bytes=16 * 1024, line_bytes=8, miss_cycles=56, slope=1.44)

CORTEX_M0PLUS = CoreTable(
        runtime_flash=300,
        board_flash=1460,  # boot2 (256 B), clocks, UART0, the request loop and the cycle counter
        flash_cache=RP2040_XIP,
        kernel_flash={"CONV_2D": 700, "DEPTHWISE_CONV_2D": 650, "FULLY_CONNECTED": 384, "MEAN": 400,
                      "SOFTMAX": 772 + 1024, "AVERAGE_POOL_2D": 680, "MAX_POOL_2D": 346, "ADD": 774,
                      "PAD": 198, "CONCATENATION": 66, "QUANTIZE": 176, "RESHAPE": 0},
        stack_ram=220,  # the deepest path runs from the board's request loop
        mac_cycles={"CONV_2D": (8.6, 104.0, 229.0), "CONV_2D_1x1": (8.1, 123.0, 0.0),
                    "DEPTHWISE_CONV_2D": (12.0, 96.0, 77.0), "FULLY_CONNECTED": (8.7, 93.0, 377.0),
                    "AVERAGE_POOL_2D": (7.6, 117.0, 0.0), "MAX_POOL_2D": (17.1, 9.7, 153.0),
                    "MEAN": (11.3, 104.0, 690.0)},
        cycles_per_elem={"SOFTMAX": 253.0, "ADD": 243.0, "PAD": 45.0, "CONCATENATION": 20.0,
                         "RESHAPE": 1.0, "QUANTIZE": 100.0, "DEQUANTIZE": 100.0},
        cycles_per_op=10.5,
)

# The generic C on the Cortex-M4 executes, per op kind, this many instructions per instruction
# it executes on the Cortex-M0+ (measured: nano33ble-sim against rp2040-sim on the same models,
# benchmarks/bench_kernels.py, `cortex_m4_instruction_ratio` in benchmarks/results/kernels.json):
# Thumb-2's post-indexed loads, MLA and wider immediates do the same work in fewer instructions.
M4_INSTRUCTION_RATIO = {"CONV_2D": 0.726, "CONV_2D_1x1": 0.727, "DEPTHWISE_CONV_2D": 0.765,
                        "FULLY_CONNECTED": 0.739, "MAX_POOL_2D": 0.988, "MEAN": 0.862, "SOFTMAX": 0.515}
M4_DEFAULT_RATIO = 0.73  # op kinds the benchmark's models do not use: the convolutions' ratio


def _scaled(table: dict, ratios: dict[str, float], default: float):
    """Cycle constants times each op kind's instruction ratio."""
    return {kind: (tuple(c * ratios.get(kind, default) for c in v) if isinstance(v, tuple)
                   else v * ratios.get(kind, default)) for kind, v in table.items()}


TABLES = {
    "cortex-m0plus": CORTEX_M0PLUS,
    # ASSUMPTION until a runner times the M4 (nano33ble-sim counts instructions only): the M0+
    # cycles scaled by the measured instruction ratio, i.e. equal cycles per instruction on both
    # cores (the M4 takes 2 cycles per load, 1 when pipelined, 2-4 per taken branch; the M0+ 2
    # and 2). The M4 has a single-cycle 32x32 multiply-accumulate (MLA, which the generic C
    # uses) and SMLAD, two 16x16 MACs per cycle, which it does not: a cortex-m4 kernel library
    # with SMLAD would cut the per-MAC term further. Memory assumed zero-wait (the nRF52840
    # runs from flash through its cache). Flash: the kernels' code as built for the M4.
    "cortex-m4": CoreTable(
        runtime_flash=310,
        kernel_flash={"CONV_2D": 681, "DEPTHWISE_CONV_2D": 632, "FULLY_CONNECTED": 313, "MEAN": 329,
                      "SOFTMAX": 536 + 1024, "AVERAGE_POOL_2D": 656, "MAX_POOL_2D": 344, "ADD": 596,
                      "PAD": 188, "CONCATENATION": 64, "QUANTIZE": 128, "RESHAPE": 0},
        stack_ram=180,
        mac_cycles=_scaled(CORTEX_M0PLUS.mac_cycles, M4_INSTRUCTION_RATIO, M4_DEFAULT_RATIO),
        cycles_per_elem=_scaled(CORTEX_M0PLUS.cycles_per_elem, M4_INSTRUCTION_RATIO, M4_DEFAULT_RATIO),
        cycles_per_op=CORTEX_M0PLUS.cycles_per_op * M4_DEFAULT_RATIO,
    ),
    # Flash: the Helium kernels' code as built (cortex-m55-mve objects, -Os, their assembly loops
    # and at_window_s8 included); the generic C for the rest.
    "cortex-m55": CoreTable(
        runtime_flash=310,
        kernel_flash={"CONV_2D": 3506, "DEPTHWISE_CONV_2D": 2210, "FULLY_CONNECTED": 428, "MEAN": 448,
                      "SOFTMAX": 582 + 1024, "AVERAGE_POOL_2D": 680, "MAX_POOL_2D": 1004, "ADD": 724,
                      "PAD": 188, "CONCATENATION": 64, "QUANTIZE": 148, "RESHAPE": 0},
        stack_ram=252,  # start-up, main, the entry and a dense layer
        # the Helium conv and depthwise frames (saved q4-q7, copied windows, a group's constants)
        kernel_stack={"CONV_2D": 224, "DEPTHWISE_CONV_2D": 356},
        mac_cycles={"CONV_2D": (0.5, 30.0, 40.0), "CONV_2D_1x1": (0.35, 30.0, 0.0),
                    "DEPTHWISE_CONV_2D": (1.5, 30.0, 20.0), "FULLY_CONNECTED": (0.5, 25.0, 50.0),
                    "AVERAGE_POOL_2D": (0.5, 20.0, 0.0), "MAX_POOL_2D": (0.5, 8.0, 20.0),
                    "MEAN": (0.5, 25.0, 100.0)},
        cycles_per_elem={"SOFTMAX": 40.0, "ADD": 30.0, "PAD": 4.0, "CONCATENATION": 2.0,
                         "RESHAPE": 0.2, "QUANTIZE": 12.0, "DEQUANTIZE": 12.0},
        cycles_per_op=10.0,
    ),
}


class AnalyticCostModel(CostModel):
    def __init__(self, target: str, placement: str = "flash"):
        """`placement` (device_runners.build.PLACEMENTS): what the build copies to SRAM, which
        the flash cache then never sees."""
        self.target = target
        self.placement = placement
        self.table = TABLES[get_target(target).cost_table]

    @property
    def source(self) -> str:
        return f"predicted:analytic-{self.target}"

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
        """What the placement copies from flash to SRAM at start-up: weights, kernel code."""
        t = self.table
        placed = 0.0
        if self.placement in ("sram_weights", "sram_all"):
            placed += sum(self._op_data(op) - t.op_flash for op in features.ops)
        if self.placement in ("sram_kernels", "sram_all"):
            placed += sum(t.kernel_flash.get(k, t.default_kernel_flash) for k in {op.kind for op in features.ops})
        return placed

    def compute_cycles(self, features: ModelFeatures) -> float:
        """Cycles with zero-wait memory."""
        t = self.table
        total = 0.0
        for op in features.ops:
            key = op.cost_kind
            if key in t.mac_cycles:
                per_mac, per_output, per_pixel = t.mac_cycles[key]
                total += op.macs * per_mac + op.output_elems * (per_output + per_pixel / op.channels)
            else:
                total += op.output_elems * t.cycles_per_elem.get(key, 10.0)
            total += t.cycles_per_op
        return total

    def flash_bytes(self, features: ModelFeatures) -> float:
        t = self.table
        kinds = {op.kind for op in features.ops}
        code = t.runtime_flash + t.board_flash + sum(t.kernel_flash.get(k, t.default_kernel_flash) for k in kinds)
        return code + sum(self._op_data(op) for op in features.ops)

    def _op_data(self, op) -> float:
        """An op's parameter struct, weights and per-channel constants in flash."""
        t = self.table
        return t.op_flash + op.weight_bytes + (op.channels * t.channel_flash if op.macs and op.weight_bytes else 0)

    def predict(self, features: ModelFeatures) -> Costs:
        t = self.table
        flash = self.flash_bytes(features)
        kinds = {op.kind for op in features.ops}
        stack = t.stack_ram + max((t.kernel_stack.get(k, 0) for k in kinds), default=0)
        ram = features.activation_bytes + stack + self.placed_bytes(features)
        ms = self.cycles(features) / get_target(self.target).clock_hz * 1e3
        return Costs(
            flash=Measurement(float(flash), "bytes", self.source),
            ram=Measurement(float(ram), "bytes", self.source),
            latency=Measurement(ms, "ms", self.source),
        )
