"""AMD AITER's CK int8 GEMM on ROCm gfx9, for symmetric schemes, and the policy that switches it on.

UNTESTED ON HARDWARE: no AMD GPU was available to this project. The call follows aiter's
documented `gemm_a8w8_CK(XQ [M, K] int8, WQ [N, K] int8, x_scale [M, 1] fp32, w_scale [1, N] fp32,
bias [1, N], dtype)`; selection and argument preparation are tested with stand-in platforms and a
stand-in `aiter` module only.

What it cannot do, it refuses at selection (so Triton takes the layer, with the reason logged):
asymmetric activations (no zero-point epilogue), N or K not a multiple of 16 (CK's int8 tiles).
What it cannot do per call (an fp32 activation: CK writes fp16/bf16 only) goes to the Triton GEMM
on the same processed weights, so the layer still answers correctly.
"""

from __future__ import annotations

import importlib.util

import torch

from vllm_int8.linear.kernel import Int8ScaledMMLinearKernel, Int8ScaledMMLinearLayerConfig
from vllm_int8.platform import Platform, current_platform, env_flag

AITER_ALIGNMENT = 16
AITER_OUT_DTYPES = (torch.float16, torch.bfloat16)


def aiter_importable() -> bool:
    """Whether the `aiter` package is installed (found without importing it)."""
    return importlib.util.find_spec("aiter") is not None


def aiter_linear_status(platform: Platform | None = None) -> tuple[bool, str | None]:
    """(usable, why not) for AITER's int8 GEMM, checked in the order a user would fix things."""
    platform = platform or current_platform()
    if not platform.is_rocm:
        return False, f"AITER needs ROCm, this platform is {platform.kind}"
    if not env_flag("VLLM_ROCM_USE_AITER", False):
        return False, "AITER is switched off (set VLLM_ROCM_USE_AITER=1)"
    if not env_flag("VLLM_ROCM_USE_AITER_LINEAR", True):
        return False, "AITER linear is switched off (VLLM_ROCM_USE_AITER_LINEAR=0)"
    if not (platform.gfx_arch or "").startswith("gfx9"):
        return False, f"AITER's int8 GEMM needs a gfx9 GPU (MI200/MI300), this is {platform.gfx_arch}"
    if not aiter_importable():
        return False, "the aiter package is not installed"
    return True, None


class AiterInt8ScaledMMLinearKernel(Int8ScaledMMLinearKernel):
    ops_backend = "triton"  # activation quantization (and the fallback GEMM) stay on our Triton kernels

    @classmethod
    def is_supported(
        cls, compute_capability: int | None = None, platform: Platform | None = None
    ) -> tuple[bool, str | None]:
        return aiter_linear_status(platform)

    @classmethod
    def can_implement(cls, config: Int8ScaledMMLinearLayerConfig) -> tuple[bool, str | None]:
        if not config.input_symmetric:
            return False, "AITER's int8 GEMM has no zero-point epilogue: symmetric activations only"
        return True, None

    @classmethod
    def can_implement_shape(cls, in_features: int, out_features: int) -> tuple[bool, str | None]:
        if in_features % AITER_ALIGNMENT or out_features % AITER_ALIGNMENT:
            return False, (
                f"AITER's CK int8 GEMM needs N and K multiples of {AITER_ALIGNMENT}, "
                f"this layer has N={out_features}, K={in_features}"
            )
        return True, None

    def process_weights_after_loading(self, layer: torch.nn.Module) -> None:
        super().process_weights_after_loading(layer)
        w_q, w_s = getattr(layer, self.w_q_name), getattr(layer, self.w_s_name)
        ok, reason = self.can_implement_shape(w_q.shape[0], w_q.shape[1])
        if not ok:
            raise ValueError(reason)
        # The broadcast weight scale CK wants, made once here rather than in every forward.
        self._w_scale = w_s.reshape(1, -1).expand(1, w_q.shape[1]).contiguous()
        # Static schemes: the per-token broadcast of the one input scale, grown (never freed: a
        # captured graph may hold an older one) when a larger batch comes.
        self._x_scale_buffers: list[torch.Tensor] = []

    def _static_x_scale(self, input_scale: torch.Tensor, m: int) -> torch.Tensor:
        if not self._x_scale_buffers or self._x_scale_buffers[-1].shape[0] < m:
            rows = max(m, 256, 2 * self._x_scale_buffers[-1].shape[0] if self._x_scale_buffers else 0)
            self._x_scale_buffers.append(input_scale.reshape(1, 1).expand(rows, 1).contiguous())
        return self._x_scale_buffers[-1][:m]

    def _apply(self, x: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
        if x.dtype not in AITER_OUT_DTYPES:  # CK has no fp32 output: the Triton GEMM answers instead
            return super()._apply(x, bias)
        import aiter

        from vllm_int8.ops.dispatch import launch_scaled_int8_quant

        w_q, i_s = self._bound.weight, self._bound.input_scale
        x_q, x_s, _ = launch_scaled_int8_quant(x, i_s, None, True)
        if i_s is not None:
            x_s = self._static_x_scale(i_s, x.shape[0])
        bias = None if bias is None else bias.reshape(1, -1).to(x.dtype)
        return aiter.gemm_a8w8_CK(x_q, w_q.t(), x_s, self._w_scale, bias, x.dtype)
