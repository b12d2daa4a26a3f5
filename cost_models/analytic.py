"""Analytic cost model for a TFLite Micro + CMSIS-NN deployment, per core.

flash   = runtime base + code of each op kind used + weights, biases and per-channel params
          + per-tensor metadata
RAM     = the TFLM arena of the model + the runtime's stack and static data
latency = sum over ops of (MACs x cycles per MAC of that op kind, or elements x cycles per
          element) + a fixed dispatch cost per op, at the target's clock

The Cortex-M0+ cycles per MAC are those measured for TFLM + CMSIS-NN on a LARUN-like model
(see DESIGN.md): conv 46, pointwise 25, depthwise 130. The Cortex-M55 figures assume CMSIS-NN's
Helium kernels at about a quarter of their 8 MACs/cycle peak. Device runners and the learned
models replace these predictions with measurements.
"""
from __future__ import annotations

from dataclasses import dataclass

from autotune.measurement import Measurement
from cost_models.base import CostModel, Costs, ModelFeatures
from device_runners.targets import get_target


@dataclass(frozen=True)
class CoreTable:
    runtime_flash: int  # interpreter, op resolver, libgcc: bytes
    op_code_flash: dict[str, int]  # per op kind used, bytes
    stack_and_static_ram: int
    cycles_per_mac: dict[str, float]  # CONV_2D, CONV_2D_1x1, DEPTHWISE_CONV_2D, FULLY_CONNECTED, pools
    cycles_per_elem: dict[str, float]  # element-wise ops, per output element (MEAN: per input)
    cycles_per_op: int  # interpreter dispatch and per-op set-up
    tensor_metadata_flash: int = 64  # flatbuffer tensor table entry, per tensor
    channel_params_flash: int = 8  # per-channel multiplier and shift
    default_code_flash: int = 1500  # an op kind not in the table


_OP_CODE_FLASH = {
    "CONV_2D": 4600, "DEPTHWISE_CONV_2D": 4800, "FULLY_CONNECTED": 2600, "AVERAGE_POOL_2D": 1900,
    "MAX_POOL_2D": 1700, "MEAN": 2100, "SOFTMAX": 2400, "RESHAPE": 300, "ADD": 2200, "PAD": 1100,
    "CONCATENATION": 1200, "QUANTIZE": 1500, "DEQUANTIZE": 900,
}

TABLES = {
    "rp2040": CoreTable(
        runtime_flash=26_500,
        op_code_flash=_OP_CODE_FLASH,
        stack_and_static_ram=1_800,
        cycles_per_mac={"CONV_2D": 46.0, "CONV_2D_1x1": 25.0, "DEPTHWISE_CONV_2D": 130.0,
                        "FULLY_CONNECTED": 25.0, "AVERAGE_POOL_2D": 6.0, "MAX_POOL_2D": 6.0, "MEAN": 9.0},
        cycles_per_elem={"SOFTMAX": 250.0, "ADD": 35.0, "PAD": 4.0, "CONCATENATION": 4.0,
                         "RESHAPE": 0.0, "QUANTIZE": 30.0, "DEQUANTIZE": 30.0},
        cycles_per_op=2_000,
    ),
    "apollo5": CoreTable(
        runtime_flash=20_000,
        op_code_flash={k: int(v * 1.3) for k, v in _OP_CODE_FLASH.items()},  # MVE paths are larger
        stack_and_static_ram=2_000,
        cycles_per_mac={"CONV_2D": 0.5, "CONV_2D_1x1": 0.35, "DEPTHWISE_CONV_2D": 1.5,
                        "FULLY_CONNECTED": 0.5, "AVERAGE_POOL_2D": 0.5, "MAX_POOL_2D": 0.5, "MEAN": 0.5},
        cycles_per_elem={"SOFTMAX": 40.0, "ADD": 3.0, "PAD": 0.5, "CONCATENATION": 0.5,
                         "RESHAPE": 0.0, "QUANTIZE": 4.0, "DEQUANTIZE": 4.0},
        cycles_per_op=1_000,
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
                total += op.macs * t.cycles_per_mac[key]
            else:
                total += op.output_elems * t.cycles_per_elem.get(key, 10.0)
            total += t.cycles_per_op
        return total

    def predict(self, features: ModelFeatures) -> Costs:
        t = self.table
        kinds = {op.kind for op in features.ops}
        code = t.runtime_flash + sum(t.op_code_flash.get(k, t.default_code_flash) for k in kinds)
        data = sum(op.weight_bytes + op.channels * t.channel_params_flash for op in features.ops
                   if op.weight_bytes)
        metadata = t.tensor_metadata_flash * 2 * len(features.ops)  # about two tensors per op
        flash = code + data + metadata
        ram = features.arena_bytes + t.stack_and_static_ram
        ms = self.cycles(features) / get_target(self.target).clock_hz * 1e3
        return Costs(
            flash=Measurement(float(flash), "bytes", self.source),
            ram=Measurement(float(ram), "bytes", self.source),
            latency=Measurement(ms, "ms", self.source),
        )
