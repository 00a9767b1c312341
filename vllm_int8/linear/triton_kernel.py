"""The portable GPU kernel: the Triton quant and the one-launch fused GEMM (CUDA and ROCm)."""

from __future__ import annotations

from vllm_int8.linear.kernel import Int8ScaledMMLinearKernel
from vllm_int8.ops.split_k_workspace import reserve_capture_counters
from vllm_int8.platform import Platform, current_platform

MIN_CUDA_CAPABILITY = 75  # Triton's int8 tensor-core dot needs Turing or newer


class TritonInt8ScaledMMLinearKernel(Int8ScaledMMLinearKernel):
    ops_backend = "triton"

    @classmethod
    def is_supported(
        cls, compute_capability: int | None = None, platform: Platform | None = None
    ) -> tuple[bool, str | None]:
        platform = platform or current_platform()
        if platform.is_rocm:
            return True, None
        if not platform.is_cuda:
            return False, f"Triton int8 GEMM needs a CUDA or ROCm GPU, this platform is {platform.kind}"
        capability = compute_capability if compute_capability is not None else platform.capability
        if capability is not None and capability < MIN_CUDA_CAPABILITY:
            return False, f"needs compute capability >= {MIN_CUDA_CAPABILITY}, this GPU has {capability}"
        return True, None

    def process_weights_after_loading(self, layer) -> None:
        super().process_weights_after_loading(layer)
        # Zeroed split-K counters for launches captured later (no allocation may happen in a graph).
        reserve_capture_counters(getattr(layer, self.w_q_name).device)
