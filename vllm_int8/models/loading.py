"""One entry point for every command: a model by name or path, float or on the int8 kernels."""

from __future__ import annotations

import torch

from vllm_int8.linear import Int8Linear
from vllm_int8.models.checkpoint import is_w8a8_checkpoint, load_quantized_model
from vllm_int8.models.embedded import EMBEDDED_ALIASES, load_float_model

FLOAT = "float"


def load_model(
    model: str = "embedded",
    scheme: str = "dynamic-asym",
    device: str = "cpu",
    progress: bool = True,
    dtype: torch.dtype | None = None,
    smoothquant: float | str | None = "default",
) -> tuple[torch.nn.Module, object, dict[str, Int8Linear]]:
    """(model, tokenizer, {name: Int8Linear}).

    `model`: "embedded" (SmolLM2 GGUF; quantized schemes come from the checkpoint cache,
    `vllm_int8.models.cache`, built on first use), a float HF model directory, or a W8A8 checkpoint
    directory (used as saved, `scheme` ignored). `scheme`: one of ACTIVATION_SCHEMES to quantize a float
    model now (smoothed, and for static schemes calibrated, on the OS's license texts), or "float" for no quantization.
    `smoothquant`: a SmoothQuant alpha, None for none, or "default" (`smoothquant.default_alpha`).
    """
    from vllm_int8.models import quantize_in_place
    from vllm_int8.models.calibration import calibration_batches
    from vllm_int8.models.smoothquant import resolve_alpha

    if dtype is None:
        dtype = torch.bfloat16 if device == "cuda" else torch.float32
    if model in EMBEDDED_ALIASES and scheme != FLOAT:  # quantized once per scheme, then read from the cache
        from vllm_int8.models.cache import embedded_checkpoint

        model = str(embedded_checkpoint(scheme, smoothquant, progress=progress))
    if is_w8a8_checkpoint(model):
        from transformers import AutoTokenizer

        quantized, layers = load_quantized_model(model, device=device, dtype=dtype)
        return quantized, AutoTokenizer.from_pretrained(model), layers
    float_model, tokenizer = load_float_model(model, dtype=dtype, device=device)
    if scheme == FLOAT:
        return float_model, tokenizer, {}
    alpha = resolve_alpha(scheme, smoothquant)
    batches = calibration_batches(tokenizer) if scheme.startswith("static") or alpha is not None else ()
    layers = quantize_in_place(float_model, scheme, batches, progress=progress, smoothquant=alpha)
    return float_model, tokenizer, layers


def describe_layers(layers: dict[str, Int8Linear]) -> tuple[str, str]:
    """(activation schemes, kernel classes) of the int8 layers, as the CLI names them."""
    if not layers:
        return FLOAT, "torch (float)"
    schemes = sorted(
        {
            f"{'static' if c.is_static_input_scheme else 'dynamic'}-{'sym' if c.input_symmetric else 'asym'}"
            for c in (layer.config for layer in layers.values())
        }
    )
    kernels = sorted({type(layer.kernel).__name__ for layer in layers.values()})
    return ", ".join(schemes), ", ".join(kernels)
