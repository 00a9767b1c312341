"""Random compressed-tensors W8A8 layers for the plugin tests."""

import torch

from vllm_int8.linear import Int8Linear, Int8ScaledMMLinearLayerConfig

ALL_CONFIGS = [
    Int8ScaledMMLinearLayerConfig(is_static_input_scheme=static, is_channelwise=channelwise, input_symmetric=sym)
    for static in (False, True)
    for sym in (True, False)
    for channelwise in (True, False)
]


def config_id(c: Int8ScaledMMLinearLayerConfig) -> str:
    return "-".join(
        [
            "static" if c.is_static_input_scheme else "dynamic",
            "sym" if c.input_symmetric else "asym",
            "channel" if c.is_channelwise else "tensor",
        ]
    )


def random_layer(config, kernel, widths=(24, 8, 8), k=48, bias=True, device="cpu") -> Int8Linear:
    """A fused (e.g. QKV) layer with random checkpoint tensors, not yet processed."""
    layer = Int8Linear(k, list(widths), config, bias=bias, kernel=kernel, device=device)
    n, shards = sum(widths), len(widths)
    with torch.no_grad():
        layer.weight.copy_(torch.randint(-128, 128, (n, k), dtype=torch.int8))
        if config.is_channelwise:
            layer.weight_scale.copy_(torch.rand(n, 1) * 0.01 + 1e-3)
        else:
            layer.weight_scale.copy_(torch.rand(shards) * 0.01 + 1e-3)
        if config.is_static_input_scheme:
            layer.input_scale.copy_(torch.rand(shards) * 0.05 + 0.01)
            if not config.input_symmetric:
                layer.input_zero_point.copy_(torch.randint(-20, 20, (shards,), dtype=torch.int8))
        if bias:
            layer.bias.copy_(torch.randn(n))
    return layer
