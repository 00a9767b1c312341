"""`Int8Linear`: a torch module holding a compressed-tensors W8A8 layer, usable without vLLM."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from vllm_int8.linear.kernel import Int8ScaledMMLinearKernel, Int8ScaledMMLinearLayerConfig
from vllm_int8.linear.selection import choose_scaled_mm_linear_kernel
from vllm_int8.platform import CPU, Platform


def kernel_for_device(
    config: Int8ScaledMMLinearLayerConfig,
    device: torch.device | str | None,
    shape: tuple[int, int] | None = None,
) -> type[Int8ScaledMMLinearKernel]:
    """The platform's kernel, except that a layer placed on the CPU gets the CPU platform's kernel
    (a CPU model on a GPU machine must not reach for a GPU kernel)."""
    on_cpu = torch.device(device if device is not None else "cpu").type == "cpu"
    return choose_scaled_mm_linear_kernel(config, platform=Platform(CPU) if on_cpu else None, shape=shape)


class Int8Linear(torch.nn.Module):
    """y = x W^T + b with int8 weights and int8 activations.

    Parameters are created in the compressed-tensors layout: `weight` [N, K] int8, `weight_scale`
    [N, 1] (channelwise) or one per logical width (per-tensor), and for static schemes
    `input_scale` / `input_zero_point` one per logical width. Load them (e.g. `load_state_dict`),
    then call `process_weights_after_loading()` once before the first forward.
    """

    def __init__(
        self,
        in_features: int,
        out_features: int | Sequence[int],
        config: Int8ScaledMMLinearLayerConfig,
        bias: bool = False,
        kernel: type[Int8ScaledMMLinearKernel] | None = None,
        device: torch.device | str | None = None,
    ):
        super().__init__()
        widths = [out_features] if isinstance(out_features, int) else list(out_features)
        if in_features < 1 or not widths or min(widths) < 1:
            raise ValueError(f"in_features and out_features must be positive, got {in_features}, {out_features}")
        self.in_features, self.out_features, self.logical_widths = in_features, sum(widths), widths
        self.config = config
        n, shards = self.out_features, len(widths)

        def frozen(*shape, dtype=torch.float32):
            return torch.nn.Parameter(torch.zeros(shape, dtype=dtype, device=device), requires_grad=False)

        self.weight = frozen(n, in_features, dtype=torch.int8)
        self.weight_scale = frozen(n, 1) if config.is_channelwise else frozen(shards)
        self.input_scale = frozen(shards) if config.is_static_input_scheme else None
        static_asym = config.is_static_input_scheme and not config.input_symmetric
        self.input_zero_point = frozen(shards, dtype=torch.int8) if static_asym else None
        self.azp_adj = None
        self.bias = torch.nn.Parameter(torch.zeros(n, device=device), requires_grad=False) if bias else None
        self.kernel = (kernel or kernel_for_device(config, device, (in_features, self.out_features)))(config)

    def process_weights_after_loading(self) -> None:
        self.kernel.process_weights_after_loading(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.kernel.apply_weights(self, x, self.bias)

    def extra_repr(self) -> str:
        return (
            f"in_features={self.in_features}, out_features={self.out_features}, "
            f"config={self.config}, kernel={type(self.kernel).__name__}"
        )
