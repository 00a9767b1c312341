"""Tensor-level INT8 W8A8 ops: activation quantization and the fused scaled GEMM."""

from vllm_int8.ops.dispatch import (
    scaled_int8_quant,
    scaled_mm,
    torch_scaled_int8_quant,
    torch_scaled_mm,
    triton_scaled_int8_quant,
    triton_scaled_mm,
    use_triton,
)
from vllm_int8.ops.mm_configs import MMConfig
from vllm_int8.ops.quant_mm import quant_scaled_mm
from vllm_int8.ops.validation import MAX_K_ASYMMETRIC, MAX_K_SYMMETRIC

__all__ = [
    "MAX_K_ASYMMETRIC",
    "MAX_K_SYMMETRIC",
    "MMConfig",
    "quant_scaled_mm",
    "scaled_int8_quant",
    "scaled_mm",
    "torch_scaled_int8_quant",
    "torch_scaled_mm",
    "triton_scaled_int8_quant",
    "triton_scaled_mm",
    "use_triton",
]
