"""Real W8A8 models: compressed-tensors checkpoints, the quantizer, HF patching, the embedded model."""

from __future__ import annotations

from collections.abc import Iterable

import torch

from vllm_int8.linear import Int8Linear, Int8ScaledMMLinearKernel
from vllm_int8.models.checkpoint import is_w8a8_checkpoint, load_quantized_model, save_checkpoint
from vllm_int8.models.embedded import EMBEDDED_NAME, embedded_gguf, load_float_model
from vllm_int8.models.patching import load_quantized_state, replace_linear_layers
from vllm_int8.models.quantizer import quantize_model, quantize_weight
from vllm_int8.models.scheme import (
    ACTIVATION_SCHEMES,
    UnsupportedSchemeError,
    layer_config,
    make_quantization_config,
    parse_quantization_config,
)


def quantize_in_place(
    model: torch.nn.Module,
    activation_scheme: str,
    calibration_batches: Iterable[torch.Tensor] = (),
    kernel: type[Int8ScaledMMLinearKernel] | None = None,
    progress: bool = False,
    smoothquant: float | None = None,
) -> dict[str, Int8Linear]:
    """Quantize a float HF model and swap its linears for Int8Linear on our kernels, in memory."""
    config, tensors = quantize_model(
        model, activation_scheme, calibration_batches, progress=progress, smoothquant=smoothquant
    )
    layers = replace_linear_layers(model, config, kernel)
    load_quantized_state(model, layers, tensors)
    return layers


__all__ = [
    "ACTIVATION_SCHEMES",
    "EMBEDDED_NAME",
    "UnsupportedSchemeError",
    "embedded_gguf",
    "is_w8a8_checkpoint",
    "layer_config",
    "load_float_model",
    "load_quantized_model",
    "load_quantized_state",
    "make_quantization_config",
    "parse_quantization_config",
    "quantize_in_place",
    "quantize_model",
    "quantize_weight",
    "replace_linear_layers",
    "save_checkpoint",
]
