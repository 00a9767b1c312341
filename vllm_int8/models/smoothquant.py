"""SmoothQuant (Xiao et al. 2023): move activation outliers into the weights before quantizing.

A per-tensor activation scale is set by the largest channel, so a few outlier channels leave the
rest of the activation a handful of int8 levels. For a linear fed by `x`, `x @ W.T ==
(x / s) @ (W * s).T` for any per-input-channel `s > 0`; `s_j = max|x_j|^alpha / max|W[:, j]|^(1-alpha)`
evens out the channel ranges between activation and weight. `1/s` is folded into whatever produces
`x` (an RMSNorm's weight, or the rows of the linear before), so the float model computes the same
function and a checkpoint stays plain W8A8 compressed-tensors: the smoothing lives in the weights.

Mappings follow llm-compressor's Llama ones: input_layernorm -> q/k/v, post_attention_layernorm ->
gate/up, up_proj -> down_proj (the SwiGLU product is linear in up_proj's output).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import torch

from vllm_int8.models.calibration import run_with_pre_hooks

# Measured on SmolLM2-135M, held-out text, CPU (README "Accuracy"). Dynamic schemes: 0.65, the
# alpha with the lowest KL for per-token scales (2026-11-25). Static schemes, with the prose+code
# calibration set and averaged ranges of 2026-11-26: top-1 agreement of static-asym with float
# 0.80 / 0.88 / 0.895 / 0.895 at alpha 0.5 / 0.65 / 0.8 / 0.85 (static-sym 0.76 / 0.86 / 0.89 / -):
# one per-tensor scale needs the activation's channels evened out further than per-token scales do.
DEFAULT_ALPHA = 0.65
STATIC_ALPHA = 0.8
# (producer of the input, the linears that read it), relative to each decoder layer.
LLAMA_MAPPINGS = (
    ("input_layernorm", ("self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj")),
    ("post_attention_layernorm", ("mlp.gate_proj", "mlp.up_proj")),
    ("mlp.up_proj", ("mlp.down_proj",)),
)


def default_alpha(activation_scheme: str) -> float | None:
    """On for every scheme: STATIC_ALPHA for static schemes, DEFAULT_ALPHA for dynamic ones
    (README "Accuracy" has the measurements)."""
    return STATIC_ALPHA if activation_scheme.startswith("static") else DEFAULT_ALPHA


def parse_alpha(text: str | float | None) -> float | str | None:
    """A SmoothQuant setting as users write it (CLI flag, lm-eval model_args string): an alpha in
    [0, 1], "off"/"none" (None), or "default" (the scheme's default)."""
    if text is None or text == "default":
        return text
    if str(text).lower() in ("off", "none"):
        return None
    try:
        alpha = float(text)
    except ValueError:
        raise ValueError(f"smoothquant: expected an alpha in [0, 1], 'off' or 'default', got {text!r}") from None
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"smoothquant alpha must lie in [0, 1], got {alpha}")
    return alpha


def resolve_alpha(activation_scheme: str, setting: float | str | None) -> float | None:
    """The alpha to smooth with: `setting`, or the scheme's default for "default" (None: off)."""
    return default_alpha(activation_scheme) if setting == "default" else setting


@dataclass(frozen=True)
class SmoothGroup:
    previous: str  # an RMSNorm (weight [K]) or a linear (weight [K, *]) whose output the linears read
    linears: tuple[str, ...]


def smooth_groups(model: torch.nn.Module) -> list[SmoothGroup]:
    """Every mapping found in `model`'s decoder layers (empty for families without these names)."""
    modules = dict(model.named_modules())
    groups = []
    for prefix in modules:
        for previous, linears in LLAMA_MAPPINGS:
            names = [f"{prefix}.{n}" if prefix else n for n in (previous, *linears)]
            if all(n in modules for n in names):
                groups.append(SmoothGroup(names[0], tuple(names[1:])))
    return groups


@torch.no_grad()
def observe_channel_maxima(
    model: torch.nn.Module, groups: list[SmoothGroup], batches: Iterable[torch.Tensor], progress: bool = False
) -> dict[str, torch.Tensor]:
    """max |x_j| per input channel of each group's linears (they share one input), over the batches."""
    maxima: dict[str, torch.Tensor] = {}
    modules = dict(model.named_modules())

    def hook(name):
        def record(module, args):
            amax = args[0].detach().abs().flatten(0, -2).amax(0).float()
            maxima[name] = torch.maximum(maxima[name], amax) if name in maxima else amax

        return record

    hooks = {modules[g.linears[0]]: hook(g.linears[0]) for g in groups}
    run_with_pre_hooks(model, hooks, list(batches), "smoothing", progress)
    return maxima


def smoothing_scales(act_max: torch.Tensor, weights: list[torch.Tensor], alpha: float) -> torch.Tensor:
    """s_j = act_max_j^alpha / w_max_j^(1-alpha); 1 where a channel is all zero on either side."""
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"smoothquant alpha must lie in [0, 1], got {alpha}")
    w_max = torch.stack([w.detach().abs().float().amax(0) for w in weights]).amax(0)
    a_max = act_max.to(w_max.device)
    scales = a_max.pow(alpha) / w_max.pow(1.0 - alpha)
    usable = (a_max > 0) & (w_max > 0) & torch.isfinite(scales)
    return torch.where(usable, scales, torch.ones_like(scales)).clamp(1e-5, 1e5)


def _check_scales_linearly(norm: torch.nn.Module, name: str) -> None:
    """Refuse a norm whose output is not proportional to its weight (e.g. Gemma's `x * (1 + w)`)."""
    weight = norm.weight
    probe = torch.randn(2, weight.numel(), dtype=weight.dtype, device=weight.device)
    before = norm(probe)
    saved = weight.detach().clone()
    weight.mul_(2)
    after = norm(probe)
    weight.copy_(saved)
    if not torch.allclose(after, 2 * before, rtol=1e-3, atol=1e-6):
        raise ValueError(f"SmoothQuant cannot fold into {name} ({type(norm).__name__}): its output is not w * f(x)")


@torch.no_grad()
def fold_smoothing(model: torch.nn.Module, group: SmoothGroup, scales: torch.Tensor) -> None:
    """x / s into the producer, W * s into the linears: the float function is unchanged."""
    modules = dict(model.named_modules())
    previous = modules[group.previous]
    if isinstance(previous, torch.nn.Linear):
        previous.weight.div_(scales.to(previous.weight).view(-1, 1))
        if previous.bias is not None:
            previous.bias.div_(scales.to(previous.bias))
    else:
        if getattr(previous, "bias", None) is not None:
            raise ValueError(f"SmoothQuant cannot fold into {group.previous}: it has a bias")
        _check_scales_linearly(previous, group.previous)
        previous.weight.div_(scales.to(previous.weight))
    for name in group.linears:
        modules[name].weight.mul_(scales.to(modules[name].weight).view(1, -1))


@torch.no_grad()
def smooth_model(
    model: torch.nn.Module, batches: Iterable[torch.Tensor], alpha: float = DEFAULT_ALPHA, progress: bool = False
) -> list[SmoothGroup]:
    """Smooth every mapped group of `model` in place; returns the groups smoothed."""
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"smoothquant alpha must lie in [0, 1], got {alpha}")
    groups = smooth_groups(model)
    if not groups:
        raise ValueError(f"SmoothQuant found no mapped layers in {type(model).__name__} (Llama-style names needed)")
    maxima = observe_channel_maxima(model, groups, batches, progress)
    modules = dict(model.named_modules())
    for group in groups:
        weights = [modules[name].weight for name in group.linears]
        fold_smoothing(model, group, smoothing_scales(maxima[group.linears[0]], weights, alpha))
    return groups
