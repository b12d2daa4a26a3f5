"""C generation: kernel plan -> readable C99 calling a fixed int8 kernel library, bit-exact with TFLM."""
from autotune.codegen.generate import GeneratedC, generate_c
from autotune.codegen.planner import Buffer, MemoryPlan, plan_memory
from autotune.errors import CodegenError
from autotune.lowering import integer_core, lower

__all__ = ["Buffer", "CodegenError", "GeneratedC", "MemoryPlan", "generate_c", "integer_core", "lower",
           "plan_memory"]
