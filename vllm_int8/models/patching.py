"""Swap an HF model's targeted nn.Linear layers for Int8Linear, load their tensors, process once."""

from __future__ import annotations

from collections.abc import Mapping

import torch
from compressed_tensors.quantization import QuantizationConfig

from vllm_int8.linear import Int8Linear, Int8ScaledMMLinearKernel
from vllm_int8.models.scheme import UnsupportedSchemeError, layer_config, scheme_for

# Tensors a compressed-tensors int8 linear may carry beside ours; symmetric zero points are zeros.
_ZERO_POINT_SUFFIXES = (".weight_zero_point",)


def replace_linear_layers(
    model: torch.nn.Module,
    config: QuantizationConfig,
    kernel: type[Int8ScaledMMLinearKernel] | None = None,
) -> dict[str, Int8Linear]:
    """Replace every targeted, non-ignored nn.Linear in place; returns {name: Int8Linear}."""
    replaced = {}
    for name, module in list(model.named_modules()):
        if not isinstance(module, torch.nn.Linear):
            continue
        scheme = scheme_for(config, name, module)
        if scheme is None:
            continue
        layer = Int8Linear(
            module.in_features,
            module.out_features,
            layer_config(scheme, name),
            bias=module.bias is not None,
            kernel=kernel,
            device=module.weight.device,
        )
        parent_name, _, child = name.rpartition(".")
        setattr(model.get_submodule(parent_name) if parent_name else model, child, layer)
        replaced[name] = layer
    return replaced


def load_quantized_state(
    model: torch.nn.Module, layers: Mapping[str, Int8Linear], tensors: Mapping[str, torch.Tensor]
) -> None:
    """Load a checkpoint's tensors by name, then run each Int8Linear's weight processing once."""
    tensors = dict(tensors)
    for key in [k for k in tensors if k.endswith(_ZERO_POINT_SUFFIXES)]:
        if tensors[key].any():
            raise UnsupportedSchemeError(f"{key} is nonzero: asymmetric int8 weights are not supported")
        del tensors[key]
    missing, unexpected = model.load_state_dict(tensors, strict=False)
    tied = set(getattr(model, "_tied_weights_keys", None) or [])
    if getattr(getattr(model, "config", None), "tie_word_embeddings", False):
        tied.add("lm_head.weight")
    missing = [k for k in missing if k not in tied]
    if missing or unexpected:
        raise ValueError(f"checkpoint does not fit the model: missing {missing[:8]}, unexpected {unexpected[:8]}")
    for layer in layers.values():
        layer.process_weights_after_loading()
