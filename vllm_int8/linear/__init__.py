"""The vLLM-style plugin layer: layer config, kernel contract, kernels and per-platform choice."""

from vllm_int8.linear.aiter_kernel import AiterInt8ScaledMMLinearKernel
from vllm_int8.linear.cpu_kernel import CPUInt8ScaledMMLinearKernel
from vllm_int8.linear.int8_linear import Int8Linear
from vllm_int8.linear.kernel import (
    Int8ScaledMMLinearKernel,
    Int8ScaledMMLinearLayerConfig,
    ScaledMMLinearKernel,
    ScaledMMLinearLayerConfig,
)
from vllm_int8.linear.selection import (
    _POSSIBLE_INT8_KERNELS,
    choose_scaled_mm_linear_kernel,
    describe_selection,
    explain_choice,
)
from vllm_int8.linear.triton_kernel import TritonInt8ScaledMMLinearKernel

__all__ = [
    "_POSSIBLE_INT8_KERNELS",
    "AiterInt8ScaledMMLinearKernel",
    "CPUInt8ScaledMMLinearKernel",
    "Int8Linear",
    "Int8ScaledMMLinearKernel",
    "Int8ScaledMMLinearLayerConfig",
    "ScaledMMLinearKernel",
    "ScaledMMLinearLayerConfig",
    "TritonInt8ScaledMMLinearKernel",
    "choose_scaled_mm_linear_kernel",
    "describe_selection",
    "explain_choice",
]
