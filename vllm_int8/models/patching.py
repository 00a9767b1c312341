"""Swap an HF model's targeted nn.Linear layers for Int8Linear, load their tensors, process once.

Sibling projections that read the same input are fused the way vLLM builds its models
(QKVParallelLinear, MergedColumnParallelLinear): q/k/v and gate/up become one Int8Linear each with
logical widths, so the activation is quantized once and one GEMM streams all their weights. HF's
forward still calls `q_proj(x)`, `k_proj(x)`, `v_proj(x)`: those names now hold `FusedOutput`
modules that run the fused layer once per input and hand out its slices. Checkpoints keep the
compressed-tensors per-module layout; `load_quantized_state` concatenates the shards on load.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from compressed_tensors.quantization import QuantizationConfig

from vllm_int8.linear import Int8Linear, Int8ScaledMMLinearKernel
from vllm_int8.models.scheme import UnsupportedSchemeError, layer_config, scheme_for

# Tensors a compressed-tensors int8 linear may carry beside ours; symmetric zero points are zeros.
_ZERO_POINT_SUFFIXES = (".weight_zero_point",)
# (sibling modules reading one input, the fused module's name): Llama, Mistral, Qwen2, SmolLM, ...
FUSED_GROUPS = ((("q_proj", "k_proj", "v_proj"), "qkv_proj"), (("gate_proj", "up_proj"), "gate_up_proj"))


class _SharedOutput:
    """Runs the fused layer once per input tensor and serves each sibling its slice."""

    def __init__(self, layer: Int8Linear):
        self.layer = layer
        self._input = self._parts = None
        self._version = -1
        self._served: set[int] = set()

    def part(self, x: torch.Tensor, index: int) -> torch.Tensor:
        fresh = self._input is not x or self._version != x._version or index in self._served
        if fresh:  # a new input (or one modified in place, or a slice asked twice): run the GEMM
            self._parts = self.layer(x).split(self.layer.logical_widths, dim=-1)
            self._input, self._version, self._served = x, x._version, set()
        self._served.add(index)
        part = self._parts[index]
        if len(self._served) == len(self.layer.logical_widths):  # every sibling served: let go
            self._input = self._parts = None
        return part


class FusedOutput(torch.nn.Module):
    """Stands where one projection of a fused group was: returns its slice of the fused output."""

    def __init__(self, shared: _SharedOutput, index: int):
        super().__init__()
        self._shared, self.index = shared, index  # not a submodule: the fused layer is registered once

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._shared.part(x, self.index)

    def extra_repr(self) -> str:
        return f"slice {self.index} of {self._shared.layer.logical_widths}"


def _fusable(parent: torch.nn.Module, names: tuple[str, ...], config: QuantizationConfig, prefix: str):
    """The group's Linear modules and their common layer config, or None when they cannot fuse."""
    modules = [getattr(parent, name, None) for name in names]
    if not all(isinstance(m, torch.nn.Linear) for m in modules):
        return None
    if len({m.in_features for m in modules}) != 1 or len({m.bias is None for m in modules}) != 1:
        return None
    schemes = [scheme_for(config, prefix + name, m) for name, m in zip(names, modules)]
    if any(s is None for s in schemes):
        return None
    configs = {layer_config(s, prefix + name) for name, s in zip(names, schemes)}
    return (modules, configs.pop()) if len(configs) == 1 else None


def replace_linear_layers(
    model: torch.nn.Module,
    config: QuantizationConfig,
    kernel: type[Int8ScaledMMLinearKernel] | None = None,
    fuse: bool = True,
) -> dict[str, Int8Linear]:
    """Replace every targeted, non-ignored nn.Linear in place; returns {name: Int8Linear}.

    With `fuse`, q/k/v and gate/up siblings with one scheme become one layer each, named
    `<parent>.qkv_proj` / `<parent>.gate_up_proj`, whose `shard_names` list the checkpoint modules.
    """
    replaced = {}
    for parent_name, parent in list(model.named_modules()) if fuse else ():
        prefix = f"{parent_name}." if parent_name else ""
        for names, fused_name in FUSED_GROUPS:
            found = _fusable(parent, names, config, prefix)
            if found is None:
                continue
            modules, layer_cfg = found
            layer = Int8Linear(
                modules[0].in_features,
                [m.out_features for m in modules],
                layer_cfg,
                bias=modules[0].bias is not None,
                kernel=kernel,
                device=modules[0].weight.device,
            )
            layer.shard_names = [prefix + name for name in names]
            parent.add_module(fused_name, layer)
            shared = _SharedOutput(layer)
            for index, name in enumerate(names):
                setattr(parent, name, FusedOutput(shared, index))
            replaced[prefix + fused_name] = layer
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
        layer.shard_names = [name]
        parent_name, _, child = name.rpartition(".")
        setattr(model.get_submodule(parent_name) if parent_name else model, child, layer)
        replaced[name] = layer
    return replaced


def fuse_shard_tensors(layers: Mapping[str, Int8Linear], tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Per-module checkpoint tensors -> the fused layers' tensors (weights, scales and biases
    concatenated along N; per-tensor scales and zero points one per shard, as vLLM loads them)."""
    tensors = dict(tensors)
    for fused_name, layer in layers.items():
        shards = getattr(layer, "shard_names", [fused_name])
        if shards == [fused_name]:
            continue
        for suffix in ("weight", "weight_scale", "input_scale", "input_zero_point", "bias"):
            parts = [tensors.pop(f"{s}.{suffix}", None) for s in shards]
            if all(p is None for p in parts):
                continue
            if any(p is None for p in parts):
                raise ValueError(f"checkpoint has {suffix} for some of {shards} but not all")
            if suffix == "weight" or suffix == "bias" or (suffix == "weight_scale" and layer.config.is_channelwise):
                tensors[f"{fused_name}.{suffix}"] = torch.cat(parts, dim=0)
            else:  # one value per shard
                tensors[f"{fused_name}.{suffix}"] = torch.cat([p.reshape(-1) for p in parts])
    return tensors


def load_quantized_state(
    model: torch.nn.Module, layers: Mapping[str, Int8Linear], tensors: Mapping[str, torch.Tensor]
) -> None:
    """Load a checkpoint's tensors by name, then run each Int8Linear's weight processing once."""
    tensors = dict(tensors)
    for key in [k for k in tensors if k.endswith(_ZERO_POINT_SUFFIXES)]:
        if tensors[key].any():
            raise UnsupportedSchemeError(f"{key} is nonzero: asymmetric int8 weights are not supported")
        del tensors[key]
    tensors = fuse_shard_tensors(layers, tensors)
    missing, unexpected = model.load_state_dict(tensors, strict=False)
    tied = set(getattr(model, "_tied_weights_keys", None) or [])
    if getattr(getattr(model, "config", None), "tie_word_embeddings", False):
        tied.add("lm_head.weight")
    missing = [k for k in missing if k not in tied]
    if missing or unexpected:
        raise ValueError(f"checkpoint does not fit the model: missing {missing[:8]}, unexpected {unexpected[:8]}")
    for layer in layers.values():
        layer.process_weights_after_loading()
