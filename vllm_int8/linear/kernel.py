"""The ScaledMMLinearKernel contract (vLLM's names and meanings) and the shared INT8 weight processing.

A kernel object is bound to one layer configuration; it turns the checkpoint's parameters into
the layout its GEMM wants (`process_weights_after_loading`) and runs the layer (`apply_weights`).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from vllm_int8.ops.dispatch import plain_eager
from vllm_int8.ops.layer_plans import BoundQuantScaledMM
from vllm_int8.ops.reference import divide
from vllm_int8.ops.validation import FLOAT_DTYPES, check_quant_args, check_weight_args
from vllm_int8.platform import Platform

DEFAULT_PARAM_NAMES = ("weight", "weight_scale", "input_scale", "input_zero_point", "azp_adj")
_PROCESSED_FLAG = "_vllm_int8_weights_processed"
INT8_MIN, INT8_MAX = -128, 127


@dataclass(frozen=True)
class Int8ScaledMMLinearLayerConfig:
    """The activation/weight scheme of one INT8 linear layer (compressed-tensors W8A8)."""

    is_static_input_scheme: bool  # activation scale (and zero point) calibrated ahead, per tensor
    is_channelwise: bool  # weight scale per output channel, else per tensor (per logical width)
    input_symmetric: bool  # activations without a zero point


# vLLM calls the same thing ScaledMMLinearLayerConfig.
ScaledMMLinearLayerConfig = Int8ScaledMMLinearLayerConfig


class ScaledMMLinearKernel(ABC):
    """A GEMM backend for scaled-MM linear layers (vLLM's contract)."""

    @classmethod
    @abstractmethod
    def is_supported(
        cls, compute_capability: int | None = None, platform: Platform | None = None
    ) -> tuple[bool, str | None]:
        """Whether this kernel can run on `platform` (default: this process's) at all."""

    @classmethod
    @abstractmethod
    def can_implement(cls, config: Int8ScaledMMLinearLayerConfig) -> tuple[bool, str | None]:
        """Whether this kernel implements the layer's scheme."""

    @classmethod
    def can_implement_shape(cls, in_features: int, out_features: int) -> tuple[bool, str | None]:
        """Whether this kernel takes a layer of this shape (K = in_features, N = out_features)."""
        return True, None

    def __init__(self, config: Int8ScaledMMLinearLayerConfig, layer_param_names: Sequence[str] = DEFAULT_PARAM_NAMES):
        if len(layer_param_names) != 5:
            raise ValueError(
                "layer_param_names must name (weight, weight_scale, input_scale, input_zero_point, azp_adj), "
                f"got {tuple(layer_param_names)}"
            )
        ok, reason = self.can_implement(config)
        if not ok:
            raise ValueError(f"{type(self).__name__} cannot implement {config}: {reason}")
        self.config = config
        self.w_q_name, self.w_s_name, self.i_s_name, self.i_zp_name, self.azp_adj_name = layer_param_names
        self._bound: BoundQuantScaledMM | None = None  # made by process_weights_after_loading

    @abstractmethod
    def process_weights_after_loading(self, layer: torch.nn.Module) -> None: ...

    @abstractmethod
    def apply_weights(self, layer: torch.nn.Module, x: torch.Tensor, bias: torch.Tensor | None = None) -> torch.Tensor:
        """y = x W^T (+ bias) for x of shape [..., K]; returns [..., N] in x.dtype."""

    def _get_weight_params(self, layer: torch.nn.Module):
        """(weight [K, N], weight scale, input scale, input zero point, azp_adj) after processing."""
        return tuple(
            getattr(layer, name)
            for name in (self.w_q_name, self.w_s_name, self.i_s_name, self.i_zp_name, self.azp_adj_name)
        )


def replace_parameter(layer: torch.nn.Module, name: str, value: torch.Tensor | None) -> None:
    """Swap a layer attribute for a frozen plain Parameter (or None), whatever it was before.

    `value` may itself be a Parameter of a subclass (vLLM's `ModelWeightParameter` and kin, whose
    `.to()`/`.contiguous()` return themselves when nothing changes): its data is taken, since
    `Parameter(subclass_instance)` raises.
    """
    if isinstance(value, torch.nn.Parameter):
        value = value.data
    if name in layer._parameters:
        del layer._parameters[name]
    elif hasattr(layer, name):
        delattr(layer, name)
    if value is None:
        setattr(layer, name, None)
    else:
        layer.register_parameter(name, torch.nn.Parameter(value, requires_grad=False))


def convert_to_channelwise(weight_scale: torch.Tensor, logical_widths: Sequence[int]) -> torch.Tensor:
    """Per-tensor scales of a fused module (one per logical width) -> one per output channel [N, 1]."""
    if weight_scale.numel() != len(logical_widths):
        raise ValueError(
            f"weight_scale has {weight_scale.numel()} elements but the layer has {len(logical_widths)} "
            f"logical widths {list(logical_widths)}: per-tensor scales come one per fused shard"
        )
    widths = torch.tensor(list(logical_widths), device=weight_scale.device)
    return weight_scale.reshape(-1).to(torch.float32).repeat_interleave(widths).reshape(-1, 1)


def static_asymmetric_scale_and_azp(
    input_scale: torch.Tensor, input_zero_point: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """One (scale, azp) covering every shard's activation range, like vLLM's rebuild.

    Each shard i covers [s_i(-128 - zp_i), s_i(127 - zp_i)]; the union (widened to contain 0, so
    azp stays in [-128, 127]) is re-quantized: scale = range / 255, azp = round(-128 - min / scale).
    A zero range (all scales 0) gives scale 0 and azp 0: every activation then quantizes to 0.
    """
    scales = input_scale.reshape(-1).to(torch.float32)
    zps = input_zero_point.reshape(-1).to(torch.int32).to(torch.float32)
    range_max = (scales * (INT8_MAX - zps)).max().clamp(min=0.0)
    range_min = (scales * (INT8_MIN - zps)).min().clamp(max=0.0)
    scale = divide(range_max - range_min, INT8_MAX - INT8_MIN)  # the same float on CPU and GPU
    if scale.item() == 0.0:
        return scale.reshape(1), torch.zeros(1, dtype=torch.int32, device=scale.device)
    azp = torch.round(INT8_MIN - range_min / scale).clamp(INT8_MIN, INT8_MAX)
    return scale.reshape(1), azp.to(torch.int32).reshape(1)


class Int8ScaledMMLinearKernel(ScaledMMLinearKernel):
    """INT8 W8A8 weight processing shared by every INT8 kernel, and the apply through `vllm_int8.ops`.

    Subclasses choose the ops backend (`ops_backend`) and their platform checks.
    """

    ops_backend = "auto"

    @classmethod
    def can_implement(cls, config: Int8ScaledMMLinearLayerConfig) -> tuple[bool, str | None]:
        return True, None

    def process_weights_after_loading(self, layer: torch.nn.Module) -> None:
        if getattr(layer, _PROCESSED_FLAG, False):
            raise RuntimeError(
                f"process_weights_after_loading was already called on this {type(layer).__name__}: its weight "
                "is transposed and its scales folded; a second call would corrupt them. Reload the weights first."
            )
        weight = getattr(layer, self.w_q_name)
        if weight.dtype != torch.int8 or weight.dim() != 2:
            raise TypeError(
                f"{self.w_q_name} must be a 2-D int8 [N, K] tensor, got {weight.dtype} {tuple(weight.shape)}"
            )
        # [N, K] checkpoint tensor -> [K, N] view (column-major: weight.stride(0) == 1).
        replace_parameter(layer, self.w_q_name, weight.t())

        weight_scale = getattr(layer, self.w_s_name)
        logical_widths = list(getattr(layer, "logical_widths", None) or [weight.shape[0]])
        if not self.config.is_channelwise and len(logical_widths) > 1:
            weight_scale = convert_to_channelwise(weight_scale, logical_widths)
        replace_parameter(layer, self.w_s_name, weight_scale.to(torch.float32).contiguous())

        if self.config.is_static_input_scheme:
            input_scale = getattr(layer, self.i_s_name)
            if self.config.input_symmetric:
                replace_parameter(layer, self.i_s_name, input_scale.max().to(torch.float32).reshape(1))
                replace_parameter(layer, self.i_zp_name, None)
            else:
                scale, azp = static_asymmetric_scale_and_azp(input_scale, getattr(layer, self.i_zp_name))
                replace_parameter(layer, self.i_s_name, scale)
                replace_parameter(layer, self.i_zp_name, azp)
        else:
            replace_parameter(layer, self.i_s_name, None)
            replace_parameter(layer, self.i_zp_name, None)

        # azp_adj: the weight's column sums, so that (q - azp) @ W = q @ W - azp * colsum(W).
        if self.config.input_symmetric:
            replace_parameter(layer, self.azp_adj_name, None)
        else:
            azp_adj = weight.sum(dim=1, dtype=torch.int32)  # over K of the [N, K] weight
            if self.config.is_static_input_scheme:
                azp_adj = azp_adj * getattr(layer, self.i_zp_name)  # folded: the kernel gets azp=None
            replace_parameter(layer, self.azp_adj_name, azp_adj)
        self._validate_processed(layer)
        w_q, w_s, i_s, i_zp, azp_adj = self._get_weight_params(layer)
        # The tensors themselves are held (in-place updates show), flattened once for the kernels.
        self._bound = BoundQuantScaledMM(w_q, w_s.reshape(-1), azp_adj, i_s, i_zp, azp_adj is None, self.ops_backend)
        setattr(layer, _PROCESSED_FLAG, True)

    def _validate_processed(self, layer: torch.nn.Module) -> None:
        """Check the processed parameters once, so that apply_weights checks only the activation."""
        w_q, w_s, i_s, i_zp, azp_adj = self._get_weight_params(layer)
        symmetric = self.config.input_symmetric
        if i_s is not None:
            check_quant_args(torch.empty(0, w_q.shape[0], device=w_q.device), i_s, i_zp, symmetric)
        check_weight_args(1, w_q.shape[0], w_q.device, w_q, w_s, torch.float32, None, azp_adj, not symmetric)

    def apply_weights(self, layer: torch.nn.Module, x: torch.Tensor, bias: torch.Tensor | None = None) -> torch.Tensor:
        bound = self._bound
        if bound is None:
            raise RuntimeError("apply_weights before process_weights_after_loading: call that once after loading")
        eager = plain_eager(x)
        if eager and x.dim() >= 2:  # the hot path: a plan that an earlier, checked call made (never empty)
            x_2d = x if x.dim() == 2 else x.reshape(-1, x.shape[-1])
            out = bound.replay(x_2d, x.dtype, bias)
            if out is not None:
                return out if x.dim() == 2 else out.view(*x.shape[:-1], out.shape[-1])
        # The weight side was validated once in process_weights_after_loading; per call only what
        # the activation (and a caller-chosen bias) can get wrong is checked.
        check_activation(x, bound.weight, bias)
        x_2d = x if x.dim() == 2 else x.reshape(-1, x.shape[-1])
        if eager:  # the bound plans (layer_plans.py)
            out = self._apply(x_2d, bias)
        else:  # tracing (torch.compile, fake tensors): the registered op and its fake
            out = torch.ops.vllm_int8.quant_scaled_mm(
                x_2d, bound.weight, bound.scale_b, x.dtype, bias, bound.azp_adj, bound.input_scale,
                bound.input_zero_point, bound.symmetric, self.ops_backend, True,
            )  # fmt: skip
        return out if x.dim() == 2 else out.reshape(*x.shape[:-1], out.shape[-1])

    def _apply(self, x: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
        """Quantize x [M, K] and run the GEMM (one or two kernel launches, see quant_mm and layer_plans).
        A kernel that answers some calls with another GEMM (AITER) overrides this; the hot path in
        `apply_weights` replays only plans this made."""
        return self._bound(x, x.dtype, bias)


def check_activation(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> None:
    """The per-call checks of a layer's input (the weight [K, N] is already validated)."""
    if x.dtype not in FLOAT_DTYPES:
        raise TypeError(f"x must be float16, bfloat16 or float32, got {x.dtype}")
    if x.dim() == 0 or x.shape[-1] != weight.shape[0]:
        raise ValueError(f"x must have shape [..., K={weight.shape[0]}], got {tuple(x.shape)}")
    # Device indices first (ints, no device objects); the devices themselves where both are off-GPU.
    index = x.get_device()
    if index != weight.get_device() or (index < 0 and x.device != weight.device):
        raise ValueError(f"x is on {x.device} but the layer's weight is on {weight.device}")
    if bias is not None and (bias.numel() != weight.shape[1] or bias.dtype not in FLOAT_DTYPES
                             or bias.device != weight.device):  # fmt: skip
        raise ValueError(
            f"bias must be a float tensor of N={weight.shape[1]} elements on {weight.device}, "
            f"got {bias.dtype} {tuple(bias.shape)} on {bias.device}"
        )
