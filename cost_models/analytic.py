"""Analytic cost model of the generated C (autotune.codegen), per core.

flash   = start-up and requantization helper + code of each kernel used + per-op parameter
          structs and calls + weights, biases and per-channel tables (kernel sums, multipliers,
          shifts: 12 bytes a channel)
RAM     = activations (the planned arena plus the caller's input and output buffers) + stack
latency = sum over ops of (MACs x cycles per MAC + outputs x cycles per output for ops with
          MACs, or elements x cycles per element) + a fixed cost per op, at the target's clock

The per-output term is the requantization (about 100 cycles on the M0+, which has no 32 x 32 -> 64
multiply) plus the loop and call set-up of each output; it dominates ops with few MACs per
output (a first convolution over one channel, pools, MEAN).

Code sizes are those of the kernel library built with arm-none-eabi-gcc -Os. The Cortex-M0+
cycle figures are fitted (within 3 % per op) to the generated kernels of three spectral CNNs run
in a Cortex-M0 instruction-set simulator (Unicorn) with the M0+ instruction timings and
zero-wait memory. The Cortex-M55 figures are assumptions (Helium kernels at about a quarter of
their 8 MACs/cycle peak) until a simulator measures them. The search measures flash and RAM from
real builds; device runners and learned models replace the latency prediction.
"""
from __future__ import annotations

from dataclasses import dataclass

from autotune.measurement import Measurement
from cost_models.base import CostModel, Costs, ModelFeatures
from device_runners.targets import get_target


@dataclass(frozen=True)
class CoreTable:
    runtime_flash: int  # vector table, start-up, requantization helper: bytes
    kernel_flash: dict[str, int]  # code of each kernel used, bytes
    stack_ram: int
    cycles_per_mac: dict[str, float]  # CONV_2D, CONV_2D_1x1, DEPTHWISE_CONV_2D, FULLY_CONNECTED, pools
    cycles_per_output: dict[str, float]  # the same ops: requantization and set-up of one output
    cycles_per_elem: dict[str, float]  # element-wise ops, per output element
    cycles_per_op: int  # call and set-up of one kernel
    op_flash: int = 80  # parameter struct and call site, per op
    channel_flash: int = 12  # kernel sum, multiplier and shift, per output channel
    default_kernel_flash: int = 400  # an op kind not in the table


TABLES = {
    "rp2040": CoreTable(
        runtime_flash=700,
        kernel_flash={"CONV_2D": 904, "DEPTHWISE_CONV_2D": 610, "FULLY_CONNECTED": 288, "MEAN": 252,
                      "SOFTMAX": 896 + 1024, "AVERAGE_POOL_2D": 300, "MAX_POOL_2D": 250, "ADD": 400,
                      "PAD": 200, "CONCATENATION": 150, "QUANTIZE": 200, "RESHAPE": 0},
        stack_ram=240,
        cycles_per_mac={"CONV_2D": 9.6, "CONV_2D_1x1": 9.2, "DEPTHWISE_CONV_2D": 36.8,
                        "FULLY_CONNECTED": 11.6, "AVERAGE_POOL_2D": 7.6, "MAX_POOL_2D": 27.0, "MEAN": 27.0},
        cycles_per_output={"CONV_2D": 319.0, "CONV_2D_1x1": 297.0, "DEPTHWISE_CONV_2D": 289.0,
                           "FULLY_CONNECTED": 213.0, "AVERAGE_POOL_2D": 195.0, "MAX_POOL_2D": 73.0,
                           "MEAN": 241.0},
        cycles_per_elem={"SOFTMAX": 250.0, "ADD": 35.0, "PAD": 4.0, "CONCATENATION": 4.0,
                         "RESHAPE": 1.0, "QUANTIZE": 30.0, "DEQUANTIZE": 30.0},
        cycles_per_op=300,
    ),
    "apollo5": CoreTable(
        runtime_flash=650,
        kernel_flash={"CONV_2D": 1076, "DEPTHWISE_CONV_2D": 628, "FULLY_CONNECTED": 332, "MEAN": 236,
                      "SOFTMAX": 616 + 1024, "AVERAGE_POOL_2D": 300, "MAX_POOL_2D": 250, "ADD": 400,
                      "PAD": 200, "CONCATENATION": 150, "QUANTIZE": 200, "RESHAPE": 0},
        stack_ram=280,
        cycles_per_mac={"CONV_2D": 0.5, "CONV_2D_1x1": 0.35, "DEPTHWISE_CONV_2D": 1.5,
                        "FULLY_CONNECTED": 0.5, "AVERAGE_POOL_2D": 0.5, "MAX_POOL_2D": 0.5, "MEAN": 0.5},
        cycles_per_output={"CONV_2D": 30.0, "CONV_2D_1x1": 30.0, "DEPTHWISE_CONV_2D": 30.0,
                           "FULLY_CONNECTED": 25.0, "AVERAGE_POOL_2D": 20.0, "MAX_POOL_2D": 8.0,
                           "MEAN": 25.0},
        cycles_per_elem={"SOFTMAX": 40.0, "ADD": 3.0, "PAD": 0.5, "CONCATENATION": 0.5,
                         "RESHAPE": 0.2, "QUANTIZE": 4.0, "DEQUANTIZE": 4.0},
        cycles_per_op=150,
    ),
}


class AnalyticCostModel(CostModel):
    def __init__(self, target: str):
        self.target = target
        self.table = TABLES[target]

    @property
    def source(self) -> str:
        return f"predicted:analytic-{self.target}"

    def cycles(self, features: ModelFeatures) -> float:
        t = self.table
        total = 0.0
        for op in features.ops:
            key = "CONV_2D_1x1" if op.pointwise else op.kind
            if key in t.cycles_per_mac:
                total += op.macs * t.cycles_per_mac[key] + op.output_elems * t.cycles_per_output[key]
            else:
                total += op.output_elems * t.cycles_per_elem.get(key, 10.0)
            total += t.cycles_per_op
        return total

    def predict(self, features: ModelFeatures) -> Costs:
        t = self.table
        kinds = {op.kind for op in features.ops}
        code = t.runtime_flash + sum(t.kernel_flash.get(k, t.default_kernel_flash) for k in kinds)
        data = sum(t.op_flash + op.weight_bytes + (op.channels * t.channel_flash if op.macs and op.weight_bytes else 0)
                   for op in features.ops)
        flash = code + data
        ram = features.activation_bytes + t.stack_ram
        ms = self.cycles(features) / get_target(self.target).clock_hz * 1e3
        return Costs(
            flash=Measurement(float(flash), "bytes", self.source),
            ram=Measurement(float(ram), "bytes", self.source),
            latency=Measurement(ms, "ms", self.source),
        )
