"""compressed-tensors W8A8 checkpoint directories: write one, and load one into HF transformers.

A directory holds config.json (the model config with `quantization_config`), model.safetensors
and, when given, the tokenizer and generation config: the layout vLLM and llm-compressor use.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from compressed_tensors.quantization import QuantizationConfig
from safetensors.torch import load_file, save_file

from vllm_int8.errors import UserInputError
from vllm_int8.linear import Int8Linear, Int8ScaledMMLinearKernel
from vllm_int8.models.patching import load_quantized_state, replace_linear_layers
from vllm_int8.models.scheme import config_to_dict, parse_quantization_config

WEIGHTS_FILE = "model.safetensors"
INDEX_FILE = "model.safetensors.index.json"  # sharded: {"weight_map": {tensor name: shard file}}


def save_checkpoint(
    directory: str | Path,
    model_config,
    quantization_config: QuantizationConfig,
    tensors: dict[str, torch.Tensor],
    tokenizer=None,
    generation_config=None,
) -> Path:
    """Write a W8A8 checkpoint directory; returns its path."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    config = model_config.to_dict()
    config.pop("_name_or_path", None)  # where the float model was read: this machine's path, not the checkpoint's
    config["architectures"] = config.get("architectures") or [causal_lm_architecture(config["model_type"])]
    config["quantization_config"] = config_to_dict(quantization_config)
    (directory / "config.json").write_text(json.dumps(config, indent=2, default=str))
    save_file(
        {k: v.contiguous().cpu() for k, v in tensors.items()}, directory / WEIGHTS_FILE, metadata={"format": "pt"}
    )
    if tokenizer is not None:
        tokenizer.save_pretrained(directory)
    if generation_config is not None:
        generation_config.save_pretrained(directory)
    return directory


def causal_lm_architecture(model_type: str) -> str:
    """The causal-LM class of a model type ("llama" -> "LlamaForCausalLM"): what vLLM reads from
    config.json's `architectures` to pick its model code (a GGUF-loaded config has none)."""
    from transformers.models.auto.modeling_auto import MODEL_FOR_CAUSAL_LM_MAPPING_NAMES

    if model_type not in MODEL_FOR_CAUSAL_LM_MAPPING_NAMES:
        raise ValueError(f"model_type {model_type!r} has no causal-LM class in transformers")
    return MODEL_FOR_CAUSAL_LM_MAPPING_NAMES[model_type]


def is_w8a8_checkpoint(directory: str | Path) -> bool:
    config = Path(directory) / "config.json"
    if not config.is_file():
        return False
    try:
        return "quantization_config" in json.loads(config.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise UserInputError(f"--model {directory}: config.json is not valid JSON ({error})") from None


def read_tensors(directory: str | Path, device: str | torch.device = "cpu") -> dict[str, torch.Tensor]:
    """Every tensor of a checkpoint: one `model.safetensors`, or the shards its index file names
    (what `save_pretrained` writes past its shard size). A missing, truncated or corrupt file is
    a `UserInputError` naming it."""
    directory = Path(directory)
    index = directory / INDEX_FILE
    if index.is_file():
        try:
            weight_map = json.loads(index.read_text())["weight_map"]
        except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError) as error:
            raise UserInputError(f"{index}: not a safetensors index with a weight_map ({error!r})") from None
        files = sorted(set(weight_map.values()))
    else:
        files = [WEIGHTS_FILE]
    tensors: dict[str, torch.Tensor] = {}
    for name in files:
        path = directory / name
        if not path.is_file():
            where = f"named by {INDEX_FILE}" if index.is_file() else f"(nor a {INDEX_FILE})"
            raise UserInputError(f"{path}: no such weights file {where}")
        try:
            tensors.update(load_file(path, device=str(device)))
        except Exception as error:  # noqa: BLE001 - safetensors raises its own error types for bad files
            raise UserInputError(f"{path}: not a readable safetensors file ({type(error).__name__}: {error})") from None
    if index.is_file():
        missing = sorted(set(weight_map) - set(tensors))
        if missing:
            raise UserInputError(f"{index}: names {len(missing)} tensors its shards lack, e.g. {missing[0]}")
    return tensors


def load_quantized_model(
    directory: str | Path,
    device: str | torch.device = "cpu",
    dtype: torch.dtype = torch.float32,
    kernel: type[Int8ScaledMMLinearKernel] | None = None,
) -> tuple[torch.nn.Module, dict[str, Int8Linear]]:
    """An HF causal LM whose quantized linears run on our kernels; returns (model, {name: layer})."""
    from transformers import AutoConfig, AutoModelForCausalLM

    directory = Path(directory)
    raw = json.loads((directory / "config.json").read_text())
    if "quantization_config" not in raw:
        raise ValueError(f"{directory}/config.json has no quantization_config: not a W8A8 checkpoint")
    quantization_config = parse_quantization_config(raw["quantization_config"])
    model_config = AutoConfig.from_pretrained(directory)
    if hasattr(model_config, "quantization_config"):
        del model_config.quantization_config  # ours, not transformers' compressed-tensors path
    with torch.device(device):
        model = AutoModelForCausalLM.from_config(model_config, dtype=dtype)
    layers = replace_linear_layers(model, quantization_config, kernel)
    tensors = read_tensors(directory, device)
    load_quantized_state(model, layers, tensors)
    return model.eval(), layers
