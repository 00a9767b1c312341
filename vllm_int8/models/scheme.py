"""compressed-tensors W8A8 schemes: read them with the library's own classes, make them, refuse the rest.

A checkpoint's `quantization_config` is parsed by `compressed_tensors.QuantizationConfig`; each
linear layer gets the scheme of the first config group whose targets match it (the library's
`is_match`, which honours `ignore` and `re:` patterns), and that scheme becomes an
`Int8ScaledMMLinearLayerConfig`, or a clear error naming the layer and the field.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
from compressed_tensors.quantization import QuantizationArgs, QuantizationConfig, QuantizationScheme
from compressed_tensors.utils import is_match

from vllm_int8.errors import UserInputError
from vllm_int8.linear import Int8ScaledMMLinearLayerConfig
from vllm_int8.linear.schemes import ACTIVATION_SCHEMES

# The four activation schemes a user picks by name (weights: int8, per channel, symmetric).
SUPPORTED_FORMATS = ("int-quantized", "naive-quantized")


class UnsupportedSchemeError(UserInputError):
    """A quantization scheme this INT8 W8A8 plugin cannot run."""


def parse_quantization_config(raw: Mapping) -> QuantizationConfig:
    """Validate a checkpoint's `quantization_config` dict through compressed-tensors."""
    if raw.get("quant_method") != "compressed-tensors":
        raise UnsupportedSchemeError(
            f"quantization_config.quant_method must be 'compressed-tensors', got {raw.get('quant_method')!r}"
        )
    try:
        config = QuantizationConfig.model_validate(dict(raw))
    except ValueError as e:  # pydantic's ValidationError names the offending fields
        raise UnsupportedSchemeError(f"quantization_config is not a valid compressed-tensors config: {e}") from e
    if config.format not in SUPPORTED_FORMATS:
        raise UnsupportedSchemeError(f"quantization_config.format {config.format!r} is not one of {SUPPORTED_FORMATS}")
    if config.kv_cache_scheme is not None:
        raise UnsupportedSchemeError(
            "quantization_config.kv_cache_scheme is set: KV-cache quantization is not supported"
        )
    return config


def scheme_for(config: QuantizationConfig, name: str, module: torch.nn.Module) -> QuantizationScheme | None:
    """The scheme of the first group targeting this module (None: not quantized, or ignored)."""
    for scheme in config.config_groups.values():
        try:
            if is_match(name, module, scheme.targets, config.ignore or []):
                return scheme
        except Exception as e:  # a malformed regex in targets/ignore
            raise UnsupportedSchemeError(
                f"layer {name}: cannot apply targets {scheme.targets} / ignore {config.ignore}: {e}"
            ) from e
    return None


def _require(layer: str, field: str, ok: bool, got, expected: str) -> None:
    if not ok:
        raise UnsupportedSchemeError(f"layer {layer}: {field}={got!r} is not supported (expected {expected})")


def layer_config(scheme: QuantizationScheme, layer: str) -> Int8ScaledMMLinearLayerConfig:
    """The kernel config for one layer's scheme, or UnsupportedSchemeError naming layer and field."""
    w, a = scheme.weights, scheme.input_activations
    _require(layer, "weights", w is not None, w, "int8 weights")
    _require(layer, "weights.type", w.type == "int", w.type, "'int'")
    _require(layer, "weights.num_bits", w.num_bits == 8, w.num_bits, "8")
    _require(layer, "weights.strategy", w.strategy in ("channel", "tensor"), w.strategy, "'channel' or 'tensor'")
    _require(layer, "weights.symmetric", w.symmetric, w.symmetric, "True: asymmetric weights have no kernel")
    _require(layer, "weights.dynamic", not w.dynamic, w.dynamic, "False")
    _require(layer, "input_activations", a is not None, a, "int8 activations (weight-only schemes have no kernel here)")
    _require(layer, "input_activations.type", a.type == "int", a.type, "'int'")
    _require(layer, "input_activations.num_bits", a.num_bits == 8, a.num_bits, "8")
    if a.dynamic:
        _require(layer, "input_activations.strategy", a.strategy == "token", a.strategy, "'token' when dynamic")
    else:
        _require(layer, "input_activations.strategy", a.strategy == "tensor", a.strategy, "'tensor' when static")
    _require(layer, "output_activations", scheme.output_activations is None, scheme.output_activations, "None")
    return Int8ScaledMMLinearLayerConfig(
        is_static_input_scheme=not a.dynamic,
        is_channelwise=w.strategy == "channel",
        input_symmetric=a.symmetric,
    )


def make_quantization_config(activation_scheme: str, ignore: Sequence[str] = ("lm_head",)) -> QuantizationConfig:
    """The compressed-tensors config of our quantizer's output for a named activation scheme."""
    if activation_scheme not in ACTIVATION_SCHEMES:
        raise ValueError(f"activation scheme must be one of {', '.join(ACTIVATION_SCHEMES)}, got {activation_scheme!r}")
    c = ACTIVATION_SCHEMES[activation_scheme]
    weights = QuantizationArgs(num_bits=8, type="int", symmetric=True, strategy="channel", dynamic=False)
    activations = QuantizationArgs(
        num_bits=8,
        type="int",
        symmetric=c.input_symmetric,
        strategy="tensor" if c.is_static_input_scheme else "token",
        dynamic=not c.is_static_input_scheme,
    )
    scheme = QuantizationScheme(targets=["Linear"], weights=weights, input_activations=activations)
    return QuantizationConfig(
        config_groups={"group_0": scheme},
        format="int-quantized",
        ignore=list(ignore),
        quantization_status="compressed",
    )


def config_to_dict(config: QuantizationConfig) -> dict:
    """JSON-ready `quantization_config` (the form config.json holds)."""
    return config.model_dump(mode="json", exclude_none=False)
