"""Our kernels as subclasses of vLLM's own `Int8ScaledMMLinearKernel`, for vLLM's INT8 selection.

vLLM builds one kernel object per linear layer (`CompressedTensorsW8A8Int8.create_weights`), hands
it its layer after loading and calls `apply_weights` on every forward. Each class here wraps the
matching `vllm_int8.linear` kernel, which does the work on vLLM's layer and parameter objects:
the weight processing and the bound fast path are the ones `Int8Linear` uses. Imported only by
`register()`, after `compat.check_vllm` found vLLM's base class.
"""

from __future__ import annotations

import importlib.util

import torch
from vllm.model_executor.kernels.linear import Int8ScaledMMLinearKernel as VllmInt8Kernel

from vllm_int8.linear import CPUInt8ScaledMMLinearKernel, TritonInt8ScaledMMLinearKernel
from vllm_int8.linear.kernel import Int8ScaledMMLinearKernel, Int8ScaledMMLinearLayerConfig
from vllm_int8.vllm_plugin import announce


def our_config(c) -> Int8ScaledMMLinearLayerConfig:
    """vLLM's layer config (same three fields) as ours."""
    return Int8ScaledMMLinearLayerConfig(
        is_static_input_scheme=bool(c.is_static_input_scheme),
        is_channelwise=bool(c.is_channelwise),
        input_symmetric=bool(c.input_symmetric),
    )


class _Wrapped(VllmInt8Kernel):
    """vLLM's contract, delegated to one of our kernel classes (`ours`)."""

    ours: type[Int8ScaledMMLinearKernel]

    @classmethod
    def is_supported(cls, compute_capability: int | None = None) -> tuple[bool, str | None]:
        return cls.ours.is_supported(compute_capability)

    @classmethod
    def can_implement(cls, c) -> tuple[bool, str | None]:
        return cls.ours.can_implement(our_config(c))

    def __init__(self, c, layer_param_names) -> None:
        super().__init__(c, layer_param_names)
        announce()
        self.impl = self.ours(our_config(c), tuple(layer_param_names))

    def process_weights_after_loading(self, layer: torch.nn.Module) -> None:
        self.impl.process_weights_after_loading(layer)

    def apply_weights(self, layer: torch.nn.Module, x: torch.Tensor, bias: torch.Tensor | None = None) -> torch.Tensor:
        return self.impl.apply_weights(layer, x, bias)


class VllmInt8TritonKernel(_Wrapped):
    """The Triton quant + fused-epilogue GEMM (CUDA and ROCm): `TritonInt8ScaledMMLinearKernel`."""

    ours = TritonInt8ScaledMMLinearKernel

    @classmethod
    def is_supported(cls, compute_capability: int | None = None) -> tuple[bool, str | None]:
        if importlib.util.find_spec("triton") is None:
            return False, "needs the triton package"
        return super().is_supported(compute_capability)


class VllmInt8CPUKernel(_Wrapped):
    """The exact torch reference (CPU): `CPUInt8ScaledMMLinearKernel`."""

    ours = CPUInt8ScaledMMLinearKernel
