"""AMD AITER's CK int8 GEMM on ROCm gfx9, for symmetric schemes.

UNTESTED ON HARDWARE: no AMD GPU was available to this project. The call follows aiter's
documented `gemm_a8w8_CK(XQ [M, K] int8, WQ [N, K] int8, x_scale [M, 1], w_scale [1, N], bias,
dtype)`; selection logic is tested with stand-in platforms only.
"""

from __future__ import annotations

import torch

from vllm_int8.linear.kernel import Int8ScaledMMLinearKernel, Int8ScaledMMLinearLayerConfig
from vllm_int8.platform import aiter_linear_status


class AiterInt8ScaledMMLinearKernel(Int8ScaledMMLinearKernel):
    ops_backend = "triton"  # activation quantization stays on our Triton kernel

    @classmethod
    def is_supported(cls, compute_capability: int | None = None) -> tuple[bool, str | None]:
        return aiter_linear_status()

    @classmethod
    def can_implement(cls, config: Int8ScaledMMLinearLayerConfig) -> tuple[bool, str | None]:
        if not config.input_symmetric:
            return False, "AITER's int8 GEMM has no zero-point epilogue: symmetric activations only"
        return True, None

    def _gemm(self, x_q, w_q, x_s, w_s, out_dtype, bias, azp_adj, azp) -> torch.Tensor:
        import aiter

        m, n = x_q.shape[0], w_q.shape[1]
        # AITER wants per-token and per-channel scales: broadcast per-tensor ones.
        x_s = x_s.reshape(-1, 1).expand(m, 1).contiguous()
        w_s = w_s.reshape(1, -1).expand(1, n).contiguous()
        bias = None if bias is None else bias.reshape(1, n).to(out_dtype)
        return aiter.gemm_a8w8_CK(x_q, w_q.t(), x_s, w_s, bias, out_dtype)
