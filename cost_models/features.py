"""Cost features read off the kernel plan: per kernel call, MACs, the rest of its work and its
constants as stored."""
from __future__ import annotations

from autotune.ir.graph import Graph
from autotune.ir.kernel_plan import KernelPlan
from autotune.lowering import lower
from cost_models.base import CallFeatures, ModelFeatures


def extract_features(model: KernelPlan | Graph, activation_bytes: int) -> ModelFeatures:
    """The features of every call of `model`'s kernel plan (a graph is lowered first)."""
    plan = model if isinstance(model, KernelPlan) else lower(model)
    calls = tuple(CallFeatures(symbol=c.symbol, kind=c.kind, source=c.source, macs=c.macs,
                               work=tuple(sorted(c.work.items())), weight_bytes=c.weight_bytes,
                               const_bytes=c.const_bytes)
                  for c in plan.calls)
    return ModelFeatures(calls=calls, params=plan.source.parameter_count, activation_bytes=activation_bytes)
