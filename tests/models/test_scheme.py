"""compressed-tensors configs: supported schemes map to kernel configs, the rest fail naming layer and field."""

import copy

import pytest
import torch

from tests.models.tiny import tiny_llama
from vllm_int8.linear import Int8ScaledMMLinearLayerConfig
from vllm_int8.models import (
    ACTIVATION_SCHEMES,
    UnsupportedSchemeError,
    make_quantization_config,
    parse_quantization_config,
    replace_linear_layers,
)
from vllm_int8.models.scheme import config_to_dict

W8A8 = config_to_dict(make_quantization_config("dynamic-asym"))


def edited(**group_changes) -> dict:
    raw = copy.deepcopy(W8A8)
    group = raw["config_groups"]["group_0"]
    for path, value in group_changes.items():
        section, _, field = path.partition("__")
        if field:
            group[section][field] = value
        else:
            group[section] = value
    return raw


@pytest.mark.parametrize("scheme", list(ACTIVATION_SCHEMES))
def test_our_configs_parse_and_map_back(scheme):
    config = parse_quantization_config(config_to_dict(make_quantization_config(scheme)))
    layers = replace_linear_layers(tiny_llama(), config)
    assert {layer.config for layer in layers.values()} == {ACTIVATION_SCHEMES[scheme]}


UNSUPPORTED = [
    (edited(weights__num_bits=4), "weights.num_bits=4"),
    (edited(weights__type="float"), "weights.type='float'"),
    (edited(weights__strategy="group", weights__group_size=128), "weights.strategy="),
    (edited(weights__symmetric=False), "weights.symmetric=False"),
    (edited(input_activations=None), "input_activations=None"),
    (edited(input_activations__type="float"), "input_activations.type='float'"),
    (edited(input_activations__strategy="tensor"), "input_activations.strategy="),
    (edited(input_activations__dynamic=False, input_activations__strategy="token"), "input_activations.strategy="),
]


@pytest.mark.parametrize("raw, field", UNSUPPORTED, ids=[f for _, f in UNSUPPORTED])
def test_unsupported_schemes_name_the_layer_and_field(raw, field):
    """Refused when parsed (compressed-tensors' own validation) or when the layer is built."""
    with pytest.raises(UnsupportedSchemeError) as err:
        replace_linear_layers(tiny_llama(), parse_quantization_config(raw))
    message = str(err.value)
    if "not a valid compressed-tensors config" in message:
        assert field.split(".")[0] in message  # the section: weights or input_activations
    else:
        assert message.startswith("layer model.layers.0.self_attn.q_proj: " + field)


def test_fp8_checkpoints_are_refused_with_the_field():
    raw = edited(weights__type="float", input_activations__type="float")
    raw["format"] = "float-quantized"
    with pytest.raises(UnsupportedSchemeError, match="format 'float-quantized'"):
        parse_quantization_config(raw)


def test_kv_cache_scheme_is_refused():
    raw = copy.deepcopy(W8A8)
    raw["kv_cache_scheme"] = {"num_bits": 8, "type": "float", "strategy": "tensor", "dynamic": False, "symmetric": True}
    with pytest.raises(UnsupportedSchemeError, match="kv_cache_scheme"):
        parse_quantization_config(raw)


def test_other_quant_methods_are_refused():
    with pytest.raises(UnsupportedSchemeError, match="quant_method"):
        parse_quantization_config({"quant_method": "gptq"})


def test_ignore_list_with_regex_is_honoured():
    raw = copy.deepcopy(W8A8)
    raw["ignore"] = ["lm_head", "re:.*mlp\\.down_proj$"]
    layers = replace_linear_layers(tiny_llama(), parse_quantization_config(raw))
    assert layers and not any(name.endswith("down_proj") for name in layers)
    assert all(isinstance(layer.config, Int8ScaledMMLinearLayerConfig) for layer in layers.values())


def test_targets_by_name_select_only_those_layers():
    raw = copy.deepcopy(W8A8)
    raw["config_groups"]["group_0"]["targets"] = ["re:.*self_attn\\.(q|k|v)_proj$"]
    layers = replace_linear_layers(tiny_llama(), parse_quantization_config(raw))
    shards = {shard.rsplit(".", 1)[1] for layer in layers.values() for shard in layer.shard_names}
    assert shards == {"k_proj", "q_proj", "v_proj"} and {n.rsplit(".", 1)[1] for n in layers} == {"qkv_proj"}


def test_a_group_only_partly_targeted_is_not_fused():
    raw = copy.deepcopy(W8A8)
    raw["config_groups"]["group_0"]["targets"] = [r"re:.*self_attn\.(q|k)_proj$"]
    layers = replace_linear_layers(tiny_llama(), parse_quantization_config(raw))
    assert sorted({name.rsplit(".", 1)[1] for name in layers}) == ["k_proj", "q_proj"]
    assert isinstance(tiny_llama().model.layers[0].mlp.up_proj, torch.nn.Linear)
