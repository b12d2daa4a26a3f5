"""C generation: IR graph -> readable C99 calling a fixed int8 kernel library, bit-exact with TFLM."""
from autotune.codegen.generate import CodegenError, GeneratedC, generate_c, integer_core
from autotune.codegen.planner import Buffer, MemoryPlan, plan_memory

__all__ = ["Buffer", "CodegenError", "GeneratedC", "MemoryPlan", "generate_c", "integer_core", "plan_memory"]
